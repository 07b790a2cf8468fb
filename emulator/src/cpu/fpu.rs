//! The x87, MMX and SSE register file, kept in the FXSAVE image every engine exchanges.
//! Teaches: how 8 x87 stack registers, 8 MMX aliases of them and 16 XMM registers share one 512-byte layout.
//!
//! Layout (SDM vol. 1, table 10-2): FCW at 0, FSW at 2, the abridged tag byte at 4 (one bit per
//! *physical* register, 1 = valid), FOP at 6, FIP at 8, FDP at 16, MXCSR at 24, MXCSR_MASK at
//! 28, ST(0)–ST(7) at 32 + 16·i in *stack* order (ST(0) first, whatever TOP is), XMM0–XMM15 at
//! 160 + 16·i. Because the image stores the stack in stack order, a push or pop rotates it
//! ([`FpuState::rotate_stack`]); physical register `p` is ST((p − TOP) mod 8).

/// The x87/SSE state in FXSAVE layout (512 bytes), so any engine can carry it unchanged.
#[derive(serde::Serialize, serde::Deserialize, Clone, PartialEq, Eq)]
pub struct FpuState {
    #[serde(with = "devices::snapshot::byte_array")]
    pub fxsave: [u8; 512],
}

/// FCW after FNINIT/reset: all exceptions masked, 64-bit precision, round to nearest.
pub const FCW_INIT: u16 = 0x037F;
/// MXCSR at reset: all exceptions masked, round to nearest, no DAZ/FTZ.
pub const MXCSR_INIT: u32 = 0x1F80;
/// The MXCSR bits this CPU implements (DAZ included): FXSAVE reports it as MXCSR_MASK, and
/// LDMXCSR/FXRSTOR raise #GP(0) for any other bit set.
pub const MXCSR_MASK: u32 = 0xFFFF;

/// FSW fields.
pub mod fsw {
    pub const IE: u16 = 1 << 0;
    pub const DE: u16 = 1 << 1;
    pub const ZE: u16 = 1 << 2;
    pub const OE: u16 = 1 << 3;
    pub const UE: u16 = 1 << 4;
    pub const PE: u16 = 1 << 5;
    /// Stack fault (with IE: C1 says overflow (1) or underflow (0)).
    pub const SF: u16 = 1 << 6;
    /// Error summary: an unmasked exception is pending.
    pub const ES: u16 = 1 << 7;
    pub const C0: u16 = 1 << 8;
    pub const C1: u16 = 1 << 9;
    pub const C2: u16 = 1 << 10;
    pub const TOP_SHIFT: u32 = 11;
    pub const TOP_MASK: u16 = 7 << TOP_SHIFT;
    pub const C3: u16 = 1 << 14;
    pub const B: u16 = 1 << 15;
}

/// MXCSR fields.
pub mod mxcsr {
    pub const IE: u32 = 1 << 0;
    pub const DE: u32 = 1 << 1;
    pub const ZE: u32 = 1 << 2;
    pub const OE: u32 = 1 << 3;
    pub const UE: u32 = 1 << 4;
    pub const PE: u32 = 1 << 5;
    /// Denormals are zeros (inputs).
    pub const DAZ: u32 = 1 << 6;
    /// The exception masks IM..PM are bits 7..12, in the order of the flags.
    pub const MASK_SHIFT: u32 = 7;
    pub const RC_SHIFT: u32 = 13;
    pub const RC_MASK: u32 = 3 << RC_SHIFT;
    /// Flush to zero (results).
    pub const FTZ: u32 = 1 << 15;
}

impl Default for FpuState {
    fn default() -> Self {
        let mut f = FpuState { fxsave: [0u8; 512] };
        f.set_fcw(FCW_INIT);
        f.set_mxcsr(MXCSR_INIT);
        f
    }
}

impl std::fmt::Debug for FpuState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FpuState {{ fcw: {:#x}, fsw: {:#x}, tags: {:#04x}, mxcsr: {:#x} }}",
            self.fcw(),
            self.fsw(),
            self.tags(),
            self.mxcsr()
        )
    }
}

impl FpuState {
    fn u16_at(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.fxsave[at], self.fxsave[at + 1]])
    }
    fn set_u16_at(&mut self, at: usize, v: u16) {
        self.fxsave[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.fxsave[at..at + 8].try_into().unwrap())
    }
    fn set_u64_at(&mut self, at: usize, v: u64) {
        self.fxsave[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    pub fn fcw(&self) -> u16 {
        self.u16_at(0)
    }
    pub fn set_fcw(&mut self, v: u16) {
        self.set_u16_at(0, v);
    }
    pub fn fsw(&self) -> u16 {
        self.u16_at(2)
    }
    pub fn set_fsw(&mut self, v: u16) {
        self.set_u16_at(2, v);
    }
    /// The stack top (FSW bits 13:11).
    pub fn top(&self) -> u32 {
        ((self.fsw() & fsw::TOP_MASK) >> fsw::TOP_SHIFT) as u32
    }
    /// Sets TOP without moving the stored registers (FXRSTOR, FLDENV: the image is already
    /// in stack order for the new TOP).
    pub fn set_top_field(&mut self, top: u32) {
        let v = (self.fsw() & !fsw::TOP_MASK) | (((top & 7) as u16) << fsw::TOP_SHIFT);
        self.set_fsw(v);
    }
    /// Moves TOP to `top` keeping every physical register's contents (FNINIT, FLDENV): the
    /// stack-ordered image rotates.
    pub fn set_top(&mut self, top: u32) {
        let delta = (top & 7) as i32 - self.top() as i32;
        if delta != 0 {
            self.rotate_stack(delta);
        }
    }
    /// The abridged tag byte: bit p set when physical register p holds a value.
    pub fn tags(&self) -> u8 {
        self.fxsave[4]
    }
    pub fn set_tags(&mut self, v: u8) {
        self.fxsave[4] = v;
    }
    /// Is ST(i) empty?
    pub fn st_empty(&self, i: u32) -> bool {
        self.tags() & (1 << self.physical(i)) == 0
    }
    /// Marks ST(i) valid (`true`) or empty.
    pub fn set_st_tag(&mut self, i: u32, valid: bool) {
        let bit = 1u8 << self.physical(i);
        let t = if valid {
            self.tags() | bit
        } else {
            self.tags() & !bit
        };
        self.set_tags(t);
    }
    /// The physical register number of ST(i).
    pub fn physical(&self, i: u32) -> u32 {
        (self.top() + i) & 7
    }
    /// The last x87 opcode (11 bits), instruction and data pointers.
    pub fn fop(&self) -> u16 {
        self.u16_at(6)
    }
    pub fn set_fop(&mut self, v: u16) {
        self.set_u16_at(6, v & 0x7FF);
    }
    pub fn fip(&self) -> u64 {
        self.u64_at(8)
    }
    pub fn set_fip(&mut self, v: u64) {
        self.set_u64_at(8, v);
    }
    pub fn fdp(&self) -> u64 {
        self.u64_at(16)
    }
    pub fn set_fdp(&mut self, v: u64) {
        self.set_u64_at(16, v);
    }
    pub fn mxcsr(&self) -> u32 {
        u32::from_le_bytes(self.fxsave[24..28].try_into().unwrap())
    }
    pub fn set_mxcsr(&mut self, v: u32) {
        self.fxsave[24..28].copy_from_slice(&v.to_le_bytes());
    }

    /// ST(i) as its 80-bit pattern (bits 79:0: sign, 15-bit exponent, 64-bit significand with
    /// the explicit integer bit).
    pub fn st(&self, i: u32) -> u128 {
        let at = 32 + 16 * (i as usize & 7);
        let mut b = [0u8; 16];
        b[..10].copy_from_slice(&self.fxsave[at..at + 10]);
        u128::from_le_bytes(b)
    }
    /// Writes ST(i)'s 80 bits (the tag is the caller's business); the 6 reserved bytes of the
    /// slot stay zero, as FXSAVE writes them.
    pub fn set_st(&mut self, i: u32, v: u128) {
        let at = 32 + 16 * (i as usize & 7);
        self.fxsave[at..at + 10].copy_from_slice(&v.to_le_bytes()[..10]);
        self.fxsave[at + 10..at + 16].fill(0);
    }
    /// Moves TOP by `delta` (−1 = push, +1 = pop) and rotates the stored registers so that the
    /// image stays in stack order.
    pub fn rotate_stack(&mut self, delta: i32) {
        let mut regs = [0u8; 128];
        regs.copy_from_slice(&self.fxsave[32..160]);
        let shift = (delta.rem_euclid(8) as usize) * 16;
        // New ST(i) is old ST(i + delta).
        for i in 0..8 {
            let from = (i * 16 + shift) % 128;
            self.fxsave[32 + i * 16..48 + i * 16].copy_from_slice(&regs[from..from + 16]);
        }
        let top = (self.top() as i32 + delta).rem_euclid(8) as u32;
        self.set_top_field(top);
    }

    /// MMX register i: the significand of physical register i.
    pub fn mm(&self, i: u32) -> u64 {
        let st = (i + 8 - self.top()) & 7;
        self.u64_at(32 + 16 * st as usize)
    }
    /// Writes MMX register i: significand = value, sign and exponent all ones (SDM vol. 1,
    /// 9.5.1), whatever TOP is; the instruction then makes the state MMX-shaped ([`FpuState::enter_mmx`]).
    pub fn set_mm(&mut self, i: u32, v: u64) {
        let st = (i + 8 - self.top()) & 7;
        let at = 32 + 16 * st as usize;
        self.set_u64_at(at, v);
        self.set_u16_at(at + 8, 0xFFFF);
        self.fxsave[at + 10..at + 16].fill(0);
    }
    /// What every MMX instruction except EMMS does to the x87 state first: TOP = 0 and all
    /// registers valid.
    pub fn enter_mmx(&mut self) {
        self.set_top(0);
        self.set_tags(0xFF);
    }

    pub fn xmm(&self, i: u32) -> u128 {
        let at = 160 + 16 * (i as usize & 15);
        u128::from_le_bytes(self.fxsave[at..at + 16].try_into().unwrap())
    }
    pub fn set_xmm(&mut self, i: u32, v: u128) {
        let at = 160 + 16 * (i as usize & 15);
        self.fxsave[at..at + 16].copy_from_slice(&v.to_le_bytes());
    }

    /// FNINIT: control word 0x37F, status and tags cleared (TOP = 0), pointers cleared; MXCSR
    /// and the physical registers' contents are untouched.
    pub fn finit(&mut self) {
        self.set_top(0);
        self.set_fcw(FCW_INIT);
        self.set_fsw(0);
        self.set_tags(0);
        self.set_fop(0);
        self.set_fip(0);
        self.set_fdp(0);
    }
}

impl FpuState {
    /// The architectural x87/SSE fields that differ between `self` and `other`, each named with
    /// both values (`"ST(2) 3fff8000000000000000 vs 00000000000000000000"`): FCW, FSW, the tag
    /// byte, MXCSR, ST(0)–ST(7), XMM0–XMM15. FOP, FIP, FDP and MXCSR_MASK are left out: CPUs
    /// fill them their own way (AMD stores the pointers only when an exception is pending).
    pub fn differences(&self, other: &FpuState) -> Vec<String> {
        let hex = |f: &FpuState, r: std::ops::Range<usize>| -> String {
            r.rev().map(|i| format!("{:02x}", f.fxsave[i])).collect()
        };
        let mut fields: Vec<(String, std::ops::Range<usize>)> = vec![
            ("FCW".into(), 0..2),
            ("FSW".into(), 2..4),
            ("tags".into(), 4..5),
            ("MXCSR".into(), 24..28),
        ];
        fields.extend((0..8).map(|i| (format!("ST({i})"), 32 + 16 * i..42 + 16 * i)));
        fields.extend((0..16).map(|i| (format!("XMM{i}"), 160 + 16 * i..176 + 16 * i)));
        fields
            .into_iter()
            .filter(|(_, r)| self.fxsave[r.clone()] != other.fxsave[r.clone()])
            .map(|(name, r)| format!("{name} {} vs {}", hex(self, r.clone()), hex(other, r)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_fields_and_skip_the_pointers() {
        let a = FpuState::default();
        let mut b = a.clone();
        b.set_fip(0x1234); // not architectural state to compare
        assert!(a.differences(&b).is_empty());
        b.set_st(2, 0x3FFF_8000_0000_0000_0000);
        b.set_mxcsr(0x1F81);
        assert_eq!(
            a.differences(&b),
            [
                "MXCSR 00001f80 vs 00001f81",
                "ST(2) 00000000000000000000 vs 3fff8000000000000000"
            ]
        );
    }

    #[test]
    fn reset_values_match_the_sdm() {
        let f = FpuState::default();
        assert_eq!(f.fcw(), 0x37F);
        assert_eq!(f.mxcsr(), 0x1F80);
        assert_eq!(f.tags(), 0);
    }

    #[test]
    fn a_push_rotates_the_image_so_st0_is_the_new_top() {
        let mut f = FpuState::default();
        for i in 0..8 {
            f.set_st(i, 100 + i as u128);
        }
        f.rotate_stack(-1); // push: TOP 0 → 7
        assert_eq!(f.top(), 7);
        assert_eq!(f.st(1), 100, "the old ST(0) is now ST(1)");
        assert_eq!(
            f.st(0),
            107,
            "ST(0) is the physical register 7, the old ST(7)"
        );
        f.rotate_stack(1);
        assert_eq!((f.top(), f.st(0)), (0, 100));
    }

    #[test]
    fn mmx_registers_are_physical_registers_whatever_top_is() {
        let mut f = FpuState::default();
        f.rotate_stack(-3); // TOP = 5
        f.set_st(0, 0x1234); // physical 5
        assert_eq!(f.mm(5), 0x1234);
        f.enter_mmx();
        assert_eq!((f.top(), f.tags()), (0, 0xFF));
        assert_eq!(f.mm(5), 0x1234, "MM5 is still physical register 5");
        f.set_mm(2, u64::MAX);
        assert_eq!(
            f.st(2) >> 64,
            0xFFFF,
            "an MMX write sets sign and exponent to ones"
        );
    }
}

//! Packed integer arithmetic on MMX and XMM registers: lane-wise add, compare, shift, shuffle, pack.
//! Teaches: SIMD as one operation on many lanes, with wrapping or saturating arithmetic per lane.
//!
//! [`compute`] is the whole semantics as a pure function of the two operands, the immediate and
//! the register width (8 bytes for MMX, 16 for XMM); `execute` only reads and writes operands.

use iced_x86::{Instruction, Mnemonic, OpKind};

use super::{lane, lanes, read, signed, width, write, Cpu};
use crate::interp::R;

pub(super) fn handles(m: Mnemonic) -> bool {
    matches!(m, Mnemonic::Pextrw | Mnemonic::Pinsrw) || compute(m, 0, 0, 0, 16).is_some()
}

pub(super) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let m = ins.mnemonic();
    let w = width(ins);
    let imm = (0..ins.op_count())
        .find(|&i| ins.op_kind(i) == OpKind::Immediate8)
        .map_or(0, |i| ins.immediate(i) as u8);
    match m {
        // PEXTRW r32, mm/xmm, imm8: a word to a general register.
        M::Pextrw => {
            let src = read(cpu, ins, 1)?;
            let words = if ins.op_register(1).is_mm() { 4 } else { 8 };
            let v = lane(src, 2, imm as usize % words);
            write(cpu, ins, 0, v as u128)
        }
        // PINSRW mm/xmm, r32/m16, imm8: one word in, the rest kept.
        M::Pinsrw => {
            let old = read(cpu, ins, 0)?;
            let words = if ins.op_register(0).is_mm() { 4 } else { 8 };
            let k = imm as usize % words;
            let v = read(cpu, ins, 1)? & 0xFFFF;
            let new = (old & !(0xFFFFu128 << (16 * k))) | (v << (16 * k));
            write(cpu, ins, 0, new)
        }
        _ => {
            let a = read(cpu, ins, 0)?;
            let b = read(cpu, ins, 1)?;
            let r = compute(m, a, b, imm, w).ok_or_else(crate::interp::ud)?;
            write(cpu, ins, 0, r)
        }
    }
}

/// The result of a packed integer or bitwise instruction `m` on destination `a` and source `b`
/// (the immediate `imm` for shuffles and shift counts), on a `w`-byte register. `None`: not one
/// of this module's instructions.
pub(super) fn compute(m: Mnemonic, a: u128, b: u128, imm: u8, w: usize) -> Option<u128> {
    use Mnemonic as M;
    let low = if w == 8 { u64::MAX as u128 } else { u128::MAX };
    let r = match m {
        M::Paddb => lanes(a, b, w, 1, u64::wrapping_add),
        M::Paddw => lanes(a, b, w, 2, u64::wrapping_add),
        M::Paddd => lanes(a, b, w, 4, u64::wrapping_add),
        M::Paddq => lanes(a, b, w, 8, u64::wrapping_add),
        M::Psubb => lanes(a, b, w, 1, u64::wrapping_sub),
        M::Psubw => lanes(a, b, w, 2, u64::wrapping_sub),
        M::Psubd => lanes(a, b, w, 4, u64::wrapping_sub),
        M::Psubq => lanes(a, b, w, 8, u64::wrapping_sub),
        M::Paddsb => saturating(a, b, w, 1, true, |x, y| x + y),
        M::Paddsw => saturating(a, b, w, 2, true, |x, y| x + y),
        M::Psubsb => saturating(a, b, w, 1, true, |x, y| x - y),
        M::Psubsw => saturating(a, b, w, 2, true, |x, y| x - y),
        M::Paddusb => saturating(a, b, w, 1, false, |x, y| x + y),
        M::Paddusw => saturating(a, b, w, 2, false, |x, y| x + y),
        M::Psubusb => saturating(a, b, w, 1, false, |x, y| x - y),
        M::Psubusw => saturating(a, b, w, 2, false, |x, y| x - y),
        M::Pand | M::Andps | M::Andpd => a & b,
        M::Pandn | M::Andnps | M::Andnpd => !a & b,
        M::Por | M::Orps | M::Orpd => a | b,
        M::Pxor | M::Xorps | M::Xorpd => a ^ b,
        M::Pcmpeqb => lanes(a, b, w, 1, |x, y| all_ones(x == y)),
        M::Pcmpeqw => lanes(a, b, w, 2, |x, y| all_ones(x == y)),
        M::Pcmpeqd => lanes(a, b, w, 4, |x, y| all_ones(x == y)),
        M::Pcmpgtb => lanes(a, b, w, 1, |x, y| all_ones(signed(x, 1) > signed(y, 1))),
        M::Pcmpgtw => lanes(a, b, w, 2, |x, y| all_ones(signed(x, 2) > signed(y, 2))),
        M::Pcmpgtd => lanes(a, b, w, 4, |x, y| all_ones(signed(x, 4) > signed(y, 4))),
        M::Pminub => lanes(a, b, w, 1, u64::min),
        M::Pmaxub => lanes(a, b, w, 1, u64::max),
        M::Pminsw => lanes(a, b, w, 2, |x, y| pick(signed(x, 2) <= signed(y, 2), x, y)),
        M::Pmaxsw => lanes(a, b, w, 2, |x, y| pick(signed(x, 2) >= signed(y, 2), x, y)),
        M::Pavgb => lanes(a, b, w, 1, |x, y| (x + y + 1) >> 1),
        M::Pavgw => lanes(a, b, w, 2, |x, y| (x + y + 1) >> 1),
        M::Pmullw => lanes(a, b, w, 2, |x, y| (signed(x, 2) * signed(y, 2)) as u64),
        M::Pmulhw => lanes(a, b, w, 2, |x, y| {
            ((signed(x, 2) * signed(y, 2)) >> 16) as u64
        }),
        M::Pmulhuw => lanes(a, b, w, 2, |x, y| (x * y) >> 16),
        // The even doublewords, multiplied to quadwords (MMX: the low doubleword only).
        M::Pmuludq => lanes(a, b, w, 8, |x, y| (x & 0xFFFF_FFFF) * (y & 0xFFFF_FFFF)),
        M::Pmaddwd => lanes(a, b, w, 4, |x, y| {
            let lo = signed(x & 0xFFFF, 2) * signed(y & 0xFFFF, 2);
            let hi = signed(x >> 16, 2) * signed(y >> 16, 2);
            (lo + hi) as u64
        }),
        // Sum of absolute byte differences per 8 bytes, into the low word of each quadword.
        M::Psadbw => lanes(a, b, w, 8, |x, y| {
            (0..8)
                .map(|k| ((x >> (8 * k)) & 0xFF).abs_diff((y >> (8 * k)) & 0xFF))
                .sum()
        }),
        M::Psllw | M::Pslld | M::Psllq | M::Psrlw | M::Psrld | M::Psrlq | M::Psraw | M::Psrad => {
            shift(m, a, b, w)
        }
        M::Pslldq => a << (8 * (imm.min(16) as u32)).min(127) & mask_if(imm < 16),
        M::Psrldq => a >> (8 * (imm.min(16) as u32)).min(127) & mask_if(imm < 16),
        M::Punpcklbw => interleave(a, b, w, 1, false),
        M::Punpcklwd => interleave(a, b, w, 2, false),
        M::Punpckldq | M::Unpcklps => interleave(a, b, w, 4, false),
        M::Punpcklqdq | M::Unpcklpd => interleave(a, b, w, 8, false),
        M::Punpckhbw => interleave(a, b, w, 1, true),
        M::Punpckhwd => interleave(a, b, w, 2, true),
        M::Punpckhdq | M::Unpckhps => interleave(a, b, w, 4, true),
        M::Punpckhqdq | M::Unpckhpd => interleave(a, b, w, 8, true),
        M::Packsswb => pack(a, b, w, 2, |v| signed(v, 2).clamp(-128, 127) as u64),
        M::Packssdw => pack(a, b, w, 4, |v| signed(v, 4).clamp(-32768, 32767) as u64),
        M::Packuswb => pack(a, b, w, 2, |v| signed(v, 2).clamp(0, 255) as u64),
        M::Pshufd => select(b, b, 4, imm),
        M::Pshufw => select(b, b, 2, imm) & u64::MAX as u128,
        M::Pshuflw => (select(b, b, 2, imm) & u64::MAX as u128) | (b & !(u64::MAX as u128)),
        M::Pshufhw => (select(b >> 64, b >> 64, 2, imm) << 64) | (b & u64::MAX as u128),
        // SHUFPS: the low two lanes from the destination, the high two from the source.
        M::Shufps => select(a, b, 4, imm),
        M::Shufpd => {
            let lo = lane(a, 8, imm as usize & 1) as u128;
            let hi = lane(b, 8, (imm as usize >> 1) & 1) as u128;
            lo | hi << 64
        }
        _ => return None,
    };
    Some(r & low)
}

fn all_ones(c: bool) -> u64 {
    if c {
        u64::MAX
    } else {
        0
    }
}

fn pick(c: bool, x: u64, y: u64) -> u64 {
    if c {
        x
    } else {
        y
    }
}

fn mask_if(c: bool) -> u128 {
    if c {
        u128::MAX
    } else {
        0
    }
}

/// Lane-wise `f` on the lanes as (signed or unsigned) integers, clamped to the lane's range.
fn saturating(
    a: u128,
    b: u128,
    w: usize,
    l: usize,
    is_signed: bool,
    f: impl Fn(i64, i64) -> i64,
) -> u128 {
    let bits = 8 * l as u32;
    let (lo, hi) = if is_signed {
        (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
    } else {
        (0, (1i64 << bits) - 1)
    };
    lanes(a, b, w, l, |x, y| {
        let (x, y) = if is_signed {
            (signed(x, l), signed(y, l))
        } else {
            (x as i64, y as i64)
        };
        f(x, y).clamp(lo, hi) as u64
    })
}

/// PSLL/PSRL/PSRA by a count from a register, memory or an immediate (the low 64 bits of the
/// count matter: a count at or above the lane width clears the lane, or fills it with the sign).
fn shift(m: Mnemonic, a: u128, count: u128, w: usize) -> u128 {
    use Mnemonic as M;
    let count = count as u64;
    let l = match m {
        M::Psllw | M::Psrlw | M::Psraw => 2,
        M::Pslld | M::Psrld | M::Psrad => 4,
        _ => 8,
    };
    let bits = 8 * l as u64;
    lanes(a, 0, w, l, |x, _| match m {
        M::Psllw | M::Pslld | M::Psllq if count < bits => x << count,
        M::Psrlw | M::Psrld | M::Psrlq if count < bits => x >> count,
        M::Psraw | M::Psrad => (signed(x, l) >> count.min(bits - 1)) as u64,
        _ => 0,
    })
}

/// PUNPCKL*/PUNPCKH*: the low (or high) halves of `a` and `b`, lane by lane, `a` first.
fn interleave(a: u128, b: u128, w: usize, l: usize, high: bool) -> u128 {
    let n = w / l / 2;
    let start = if high { n } else { 0 };
    let bits = 8 * l;
    let mut out = 0u128;
    for k in 0..n {
        out |= (lane(a, l, start + k) as u128) << (2 * k * bits);
        out |= (lane(b, l, start + k) as u128) << ((2 * k + 1) * bits);
    }
    out
}

/// PACKSS*/PACKUS*: `l`-byte lanes of `a`, then of `b`, narrowed to half width by `narrow`.
fn pack(a: u128, b: u128, w: usize, l: usize, narrow: impl Fn(u64) -> u64) -> u128 {
    let n = w / l;
    let half = 4 * l;
    let m = (1u128 << half) - 1;
    let mut out = 0u128;
    for k in 0..n {
        out |= (narrow(lane(a, l, k)) as u128 & m) << (k * half);
        out |= (narrow(lane(b, l, k)) as u128 & m) << ((n + k) * half);
    }
    out
}

/// The four-way selection of PSHUFD/PSHUFW/SHUFPS: result lanes 0–1 from `lo`, 2–3 from `hi`,
/// each chosen by two bits of `imm`.
fn select(lo: u128, hi: u128, l: usize, imm: u8) -> u128 {
    let bits = 8 * l;
    let mut out = 0u128;
    for k in 0..4 {
        let from = if k < 2 { lo } else { hi };
        let index = (imm as usize >> (2 * k)) & 3;
        out |= (lane(from, l, index) as u128) << (k * bits);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Mnemonic as M;

    fn c(m: Mnemonic, a: u128, b: u128, imm: u8) -> u128 {
        compute(m, a, b, imm, 16).unwrap()
    }

    #[test]
    fn wrapping_and_saturating_adds_differ_only_at_the_edges() {
        let a = 0x7F_FF_01;
        let b = 0x01_01_01;
        assert_eq!(c(M::Paddb, a, b, 0), 0x80_00_02);
        assert_eq!(
            c(M::Paddsb, a, b, 0),
            0x7F_00_02,
            "signed: 0x7F + 1 sticks at 0x7F"
        );
        assert_eq!(
            c(M::Paddusb, a, b, 0),
            0x80_FF_02,
            "unsigned: 0xFF + 1 sticks at 0xFF"
        );
        assert_eq!(c(M::Psubusb, 0x01, 0x02, 0), 0, "unsigned 1 - 2 is 0");
    }

    #[test]
    fn compares_make_lane_masks_and_pmovmskb_style_strlen_works() {
        // The glibc strlen pattern: compare 16 bytes with zero, find the first zero byte.
        let text = u128::from_le_bytes(*b"hello\0world\0\0\0\0\0");
        let eq = c(M::Pcmpeqb, text, 0, 0);
        let first_zero = (0..16).find(|&k| (eq >> (8 * k)) & 0xFF == 0xFF);
        assert_eq!(first_zero, Some(5));
        assert_eq!(
            c(M::Pcmpgtw, 0x0001, 0xFFFF, 0) & 0xFFFF,
            0xFFFF,
            "1 > -1 signed"
        );
    }

    #[test]
    fn shifts_clear_at_the_lane_width_and_arithmetic_shifts_fill_with_the_sign() {
        assert_eq!(c(M::Psrlw, 0x8000, 15, 0) & 0xFFFF, 1);
        assert_eq!(c(M::Psrlw, 0x8000, 16, 0), 0);
        assert_eq!(c(M::Psraw, 0x8000, 100, 0) & 0xFFFF, 0xFFFF);
        assert_eq!(c(M::Psllq, 1, 63, 0), 1 << 63);
        assert_eq!(c(M::Pslldq, 0xAB, 0, 15), 0xAB << 120);
        assert_eq!(c(M::Psrldq, u128::MAX, 0, 16), 0);
    }

    #[test]
    fn unpack_interleaves_and_pack_saturates() {
        assert_eq!(
            c(M::Punpcklbw, 0x0201, 0x0B0A, 0) & 0xFFFF_FFFF,
            0x0B02_0A01
        );
        assert_eq!(c(M::Punpckhqdq, 1 | 2 << 64, 3 | 4 << 64, 0), 2 | 4 << 64);
        // Words 0x0100 (256) and 0xFF80 (-128) packed to signed bytes: 127 and -128.
        assert_eq!(c(M::Packsswb, 0xFF80_0100, 0, 0) & 0xFFFF, 0x807F);
        assert_eq!(c(M::Packuswb, 0xFF80_0100, 0, 0) & 0xFFFF, 0x00FF);
    }

    #[test]
    fn shuffles_select_lanes_by_immediate() {
        let v = 0x3333_3333_2222_2222_1111_1111_0000_0000u128;
        assert_eq!(
            c(M::Pshufd, 0, v, 0x1B),
            0x0000_0000_1111_1111_2222_2222_3333_3333
        );
        assert_eq!(c(M::Pshufd, 0, v, 0x00), 0);
        assert_eq!(c(M::Shufpd, 1 | 2 << 64, 3 | 4 << 64, 0b01), 2 | 3 << 64);
    }

    #[test]
    fn multiplies_keep_the_half_they_name() {
        assert_eq!(c(M::Pmulhuw, 0xFFFF, 0xFFFF, 0) & 0xFFFF, 0xFFFE);
        assert_eq!(
            c(M::Pmulhw, 0xFFFF, 0xFFFF, 0) & 0xFFFF,
            0,
            "-1 * -1 = 1, high word 0"
        );
        assert_eq!(
            c(M::Pmuludq, 0xFFFF_FFFF, 0xFFFF_FFFF, 0),
            0xFFFF_FFFE_0000_0001
        );
        assert_eq!(c(M::Pmaddwd, 0x0002_0003, 0x0004_0005, 0) & 0xFFFF_FFFF, 23);
        assert_eq!(c(M::Psadbw, 0x0A00, 0x000A, 0), 20);
    }

    #[test]
    fn mmx_width_keeps_results_in_64_bits() {
        assert_eq!(compute(M::Pcmpeqb, 0, 0, 0, 8), Some(u64::MAX as u128));
        assert_eq!(
            compute(M::Punpckhbw, 0x8877_6655_4433_2211, 0, 0, 8),
            Some(0x0088_0077_0066_0055)
        );
    }
}

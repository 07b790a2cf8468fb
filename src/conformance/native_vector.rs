//! The x87, MMX and SSE forms `conformance native` tests, and the random FPU states they start from.
//! Teaches: a floating-point test needs interesting *values* (NaNs, denormals, infinities, halfway cases) and interesting *modes* (rounding, precision, masks), not random bits.
//!
//! A vector form is any legacy-encoded 64-bit iced-x86 form of the x87 or SIMD units (CPUID
//! features FPU, MMX, SSE, SSE2, FXSR, CMOV) that the interpreter implements, except those whose
//! result the architecture leaves to the CPU (listed in [`EXCLUDED_MNEMONICS`]). Each case starts
//! from a random x87/SSE state ([`random_state`]) and its whole state is compared afterwards.

use iced_x86::{Code, CpuidFeature, EncodingKind, Mnemonic, OpCodeOperandKind, Register};

use emulator::cpu::FpuState;

use super::native::Rng;

/// Vector instructions left out, with the reason (`conformance native --rules` prints them).
pub const EXCLUDED_MNEMONICS: &[(&[Mnemonic], &str)] = &[
    (
        emulator::interp::X87_TRANSCENDENTALS,
        "x87 transcendentals: the SDM bounds their error (under 1 ulp), not their last bit or C1",
    ),
    (
        &[
            Mnemonic::Fnstenv,
            Mnemonic::Fstenv,
            Mnemonic::Fnsave,
            Mnemonic::Fsave,
            Mnemonic::Fxsave,
            Mnemonic::Fxsave64,
        ],
        "state saves: they store the last-instruction pointers (FIP, FDP, FOP), which CPUs fill their own way, and FXSAVE the host's MXCSR_MASK",
    ),
    (
        &[Mnemonic::Fxrstor, Mnemonic::Fxrstor64],
        "FXRSTOR at an address not 16-byte aligned: #GP(0) on Intel, performed by AMD CPUs (the fuzzer's vendor rule; `emulator/tests/simd.rs` checks the image)",
    ),
];

/// FSW bits a form's result leaves to the CPU: (mnemonics, bits, why). `--rules` prints them.
pub const FSW_NOT_COMPARED: &[(&[Mnemonic], u16, &str)] = &[(
    &[
        Mnemonic::Fcomi,
        Mnemonic::Fcomip,
        Mnemonic::Fucomi,
        Mnemonic::Fucomip,
    ],
    1 << 9,
    "C1 after FCOMI/FUCOMI(P): the SDM clears it (the interpreter does), this AMD host leaves it",
)];

/// The FSW bits not compared after `m`. (Besides, when an instruction with an MMX operand
/// faults, both states are compared as if it had made the x87 unit MMX-shaped, TOP 0 and all
/// tags valid: the SDM does not say whether a faulting MMX instruction does, and AMD CPUs do for
/// some, MOVQ m64, mm, and not for others.)
pub fn fsw_not_compared(m: Mnemonic) -> u16 {
    FSW_NOT_COMPARED
        .iter()
        .filter(|(l, _, _)| l.contains(&m))
        .fold(0, |acc, (_, bits, _)| acc | bits)
}

/// Is `code` a vector form this harness tests?
pub fn is_vector_form(code: Code) -> bool {
    let op = code.op_code();
    if !op.mode64() || op.encoding() != EncodingKind::Legacy || code.mnemonic() == Mnemonic::INVALID
    {
        return false;
    }
    let m = code.mnemonic();
    if !emulator::interp::implements(m) || EXCLUDED_MNEMONICS.iter().any(|(l, _)| l.contains(&m)) {
        return false;
    }
    let features = code.cpuid_features();
    let unit = |f: &CpuidFeature| {
        matches!(
            f,
            CpuidFeature::FPU
                | CpuidFeature::FPU287
                | CpuidFeature::FPU387
                | CpuidFeature::MMX
                | CpuidFeature::SSE
                | CpuidFeature::SSE2
                | CpuidFeature::FXSR
        )
    };
    let vector = features.iter().any(unit);
    // What else such a form may require: CMOV (FCMOVcc, FCOMI), the base architecture.
    let offered = features.iter().all(|f| {
        unit(f)
            || matches!(
                f,
                CpuidFeature::CMOV
                    | CpuidFeature::X64
                    | CpuidFeature::INTEL386
                    | CpuidFeature::INTEL8086
            )
    });
    let fillable = (0..op.op_count()).all(|i| fillable(op.op_kind(i)));
    vector && offered && fillable
}

/// Operand kinds that name an x87, MMX or XMM register (the `_or_mem` ones sometimes memory):
/// [`register`] draws one. The fuzzer's form table uses the same list.
pub fn is_vector_register_kind(k: OpCodeOperandKind) -> bool {
    use OpCodeOperandKind as K;
    matches!(
        k,
        K::st0
            | K::sti_opcode
            | K::mm_reg
            | K::mm_rm
            | K::mm_or_mem
            | K::xmm_reg
            | K::xmm_rm
            | K::xmm_or_mem
    )
}

/// Operand kinds a vector form may have here.
fn fillable(k: OpCodeOperandKind) -> bool {
    use OpCodeOperandKind as K;
    is_vector_register_kind(k)
        || matches!(
            k,
            K::mem
                | K::r32_or_mem
                | K::r64_or_mem
                | K::r32_reg
                | K::r64_reg
                | K::r32_rm
                | K::r64_rm
                | K::r32_reg_mem
                | K::r64_reg_mem
                | K::ax
                | K::imm8
        )
}

/// The register a vector operand kind names, drawn at random (`None`: not a register kind).
pub fn register(rng: &mut Rng, k: OpCodeOperandKind) -> Option<Register> {
    use OpCodeOperandKind as K;
    let nth = |first: Register, i: u64| Register::values().nth(first as usize + i as usize);
    match k {
        K::st0 => Some(Register::ST0),
        K::sti_opcode => nth(Register::ST0, rng.below(8)),
        K::mm_reg | K::mm_rm | K::mm_or_mem => nth(Register::MM0, rng.below(8)),
        K::xmm_reg | K::xmm_rm | K::xmm_or_mem => nth(Register::XMM0, rng.below(16)),
        _ => None,
    }
}

/// An 80-bit value worth computing with: zeros, ±1, small integers, exact halves, denormals,
/// the largest and smallest normals, infinities, quiet and signaling NaNs, the indefinite, an
/// unnormal now and then, or random significands near 1 or anywhere.
pub fn interesting_ext(rng: &mut Rng) -> u128 {
    let sign = (rng.below(2) as u128) << 79;
    let pattern = |exp: u128, sig: u64| sign | (exp << 64) | sig as u128;
    match rng.below(16) {
        0 => sign,
        1 => pattern(0x3FFF, 1 << 63),
        2 => pattern(
            0x3FFF + rng.below(8) as u128,
            (1 << 63) | (rng.below(256) << 55),
        ),
        3 => pattern(0, rng.next_u64() >> rng.below(64)),
        4 => pattern(1 + rng.below(3) as u128, (1 << 63) | rng.next_u64()),
        5 => pattern(0x7FFE, u64::MAX >> rng.below(2)),
        6 => pattern(0x7FFF, 1 << 63),
        7 => pattern(0x7FFF, (3 << 62) | (rng.next_u64() >> 2 & rng.mask())),
        8 => pattern(0x7FFF, (1 << 63) | (rng.next_u64() >> 2).max(1)),
        9 => pattern(0x7FFF, 3 << 62) | 1 << 79,
        10 if rng.below(4) == 0 => pattern(0x3FFF, rng.next_u64() >> 1),
        11 | 12 => pattern(0x3FF0 + rng.below(32) as u128, (1 << 63) | rng.next_u64()),
        _ => pattern(rng.below(0x8000) as u128, (1 << 63) | rng.next_u64()),
    }
}

/// A float lane worth computing with, as single (`bits` 32) or double (64) bits.
fn interesting_ieee(rng: &mut Rng, bits: u32) -> u64 {
    let (frac, exp_bits) = if bits == 32 { (23, 8) } else { (52, 11) };
    let sign = rng.below(2) << (bits - 1);
    let max_exp = (1u64 << exp_bits) - 1;
    let bias = max_exp >> 1;
    let frac_mask = (1u64 << frac) - 1;
    let r = rng.next_u64() & frac_mask;
    let e = match rng.below(10) {
        0 => 0,
        1 => max_exp,
        2 => bias,
        3 => 1,
        4 => max_exp - 1,
        _ => bias - 8 + rng.below(16),
    };
    let f = match rng.below(4) {
        0 => 0,
        1 => r >> rng.below(frac as u64),
        _ => r,
    };
    sign | (e << frac) | f
}

/// FPREM/FPREM1 cases keep ST(0) and ST(1) within 63 binary orders of each other: farther
/// apart, the size of a partial step is the implementation's choice (`native_vector` leaves
/// those to the CPU).
pub fn fix_up_remainder(f: &mut FpuState, rng: &mut Rng) {
    let (a, b) = (f.st(0), f.st(1));
    let exp = |v: u128| ((v >> 64) & 0x7FFF) as i64;
    // A normal (or denormal) ST(1) against a normal ST(0): give ST(1) a normal exponent close
    // below ST(0)'s, keeping its sign and significand (with the integer bit set).
    if !(1..0x7FFF).contains(&exp(a)) || exp(b) == 0x7FFF || b & ((1 << 64) - 1) == 0 {
        return;
    }
    let new_exp = (exp(a) - rng.below(64) as i64 + 1).clamp(1, 0x7FFE) as u128;
    let sig = (b as u64 | 1 << 63) as u128;
    f.set_st(1, (b & (1 << 79)) | (new_exp << 64) | sig);
}

/// A random x87/SSE state: control words with every rounding mode (and x87 precisions),
/// masks mostly set, sticky flags, a random TOP and tags, interesting register values.
pub fn random_state(rng: &mut Rng) -> FpuState {
    let mut f = FpuState::default();
    let masks = if rng.below(8) == 0 {
        rng.next_u64() as u16 & 0x3F
    } else {
        0x3F
    };
    let pc = [0u16, 2, 3, 3][rng.below(4) as usize];
    let rc = rng.below(4) as u16;
    f.set_fcw(0x40 | masks | (pc << 8) | (rc << 10));
    for i in 0..8 {
        f.set_st(i, interesting_ext(rng));
    }
    f.set_top_field(rng.below(8) as u32);
    let tags = if rng.below(3) == 0 {
        0xFF
    } else {
        rng.next_u64() as u8
    };
    f.set_tags(tags);
    // Sticky flags (with the summary bits they imply) and condition codes.
    let flags = rng.next_u64() as u16 & rng.mask() as u16 & 0x3F;
    let conditions = rng.next_u64() as u16 & 0x4700;
    let pending = flags & !masks != 0;
    let summary = if pending { 0x8080 } else { 0 };
    let top = f.fsw() & 0x3800;
    f.set_fsw(top | conditions | flags | summary);
    let mx_masks = if rng.below(8) == 0 {
        rng.next_u64() as u32 & 0x1F80
    } else {
        0x1F80
    };
    let daz_ftz = if rng.below(6) == 0 {
        rng.next_u64() as u32 & 0x8040
    } else {
        0
    };
    let mx_flags = rng.next_u64() as u32 & rng.mask() as u32 & 0x3F;
    f.set_mxcsr(mx_masks | daz_ftz | mx_flags | ((rng.below(4) as u32) << 13));
    for i in 0..16 {
        let v = match rng.below(3) {
            0 => (0..4).fold(0u128, |v, k| {
                v | (interesting_ieee(rng, 32) as u128) << (32 * k)
            }),
            1 => (0..2).fold(0u128, |v, k| {
                v | (interesting_ieee(rng, 64) as u128) << (64 * k)
            }),
            _ => (rng.next_u64() as u128) << 64 | rng.next_u64() as u128,
        };
        f.set_xmm(i, v);
    }
    f
}

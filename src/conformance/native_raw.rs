//! `conformance native`'s hand-written forms and the compatibility-mode-only instructions.
//! Teaches: which instructions 64-bit mode took away, and how a CPU refuses what ring 3 may not do.
//!
//! Raw forms are byte strings with no operands to draw: string instructions (with REP and
//! address-size overrides), and instructions that must fault at CPL 3 or in 64-bit mode (#UD,
//! #GP, #BP, #DB). The legacy forms (BCD, PUSHA/POPA, BOUND, ARPL, INTO, PUSH/POP of segment
//! registers) are iced-x86 `Code`s valid only outside 64-bit mode; here are their fix-ups.

use iced_x86::{Code, Instruction, MemoryOperand, Mnemonic, OpKind, Register};

use emulator::cpu::state::flags::{AF, CF, OF, PF, SF, ZF};
use emulator::cpu::state::reg;

use super::native::Rng;
use super::native_fixups::sign_extend;
use super::native_forms::Case;
use super::native_machine::{
    CodeMode, DATA, NONCANONICAL, UNMAPPED, USER_CS32, USER_CS64, USER_SS,
};

/// Mnemonics tested only in compatibility mode (they are #UD or something else in 64-bit mode).
pub const LEGACY_MNEMONICS: &[Mnemonic] = &[
    Mnemonic::Pusha,
    Mnemonic::Pushad,
    Mnemonic::Popa,
    Mnemonic::Popad,
    Mnemonic::Daa,
    Mnemonic::Das,
    Mnemonic::Aaa,
    Mnemonic::Aas,
    Mnemonic::Aam,
    Mnemonic::Aad,
    Mnemonic::Bound,
    Mnemonic::Arpl,
    Mnemonic::Into,
    Mnemonic::Salc,
];

/// String instructions valid in both modes.
const STRINGS: &[(&str, &[u8])] = &[
    ("movsb", &[0xA4]),
    ("movsw", &[0x66, 0xA5]),
    ("movsd", &[0xA5]),
    ("rep_movsb", &[0xF3, 0xA4]),
    ("rep_movsd", &[0xF3, 0xA5]),
    ("stosb", &[0xAA]),
    ("stosd", &[0xAB]),
    ("rep_stosb", &[0xF3, 0xAA]),
    ("rep_stosw", &[0xF3, 0x66, 0xAB]),
    ("lodsb", &[0xAC]),
    ("rep_lodsd", &[0xF3, 0xAD]),
    ("cmpsb", &[0xA6]),
    ("cmpsd", &[0xA7]),
    ("repe_cmpsb", &[0xF3, 0xA6]),
    ("repne_cmpsw", &[0xF2, 0x66, 0xA7]),
    ("scasb", &[0xAE]),
    ("repne_scasb", &[0xF2, 0xAE]),
    ("repe_scasd", &[0xF3, 0xAF]),
];

/// String instructions of 64-bit mode only: REX.W, and 32-bit addressing (ESI/EDI/ECX).
const STRINGS_64: &[(&str, &[u8])] = &[
    ("movsq", &[0x48, 0xA5]),
    ("rep_movsq", &[0xF3, 0x48, 0xA5]),
    ("rep_stosq", &[0xF3, 0x48, 0xAB]),
    ("lodsq", &[0x48, 0xAD]),
    ("repe_cmpsq", &[0xF3, 0x48, 0xA7]),
    ("scasq", &[0x48, 0xAF]),
    ("a32_movsb", &[0x67, 0xA4]),
    ("a32_rep_stosd", &[0xF3, 0x67, 0xAB]),
    ("a32_lodsw", &[0x66, 0x67, 0xAD]),
    ("a32_repe_cmpsb", &[0xF3, 0x67, 0xA6]),
];

/// Instructions that fault in ring 3 of both modes: (name, bytes, what the SDM says happens).
pub const FAULTING: &[(&str, &[u8], &str)] = &[
    ("ud2", &[0x0F, 0x0B], "#UD"),
    ("ud1", &[0x0F, 0xB9, 0xC0], "#UD"),
    (
        "lock_add_reg",
        &[0xF0, 0x01, 0xC8],
        "#UD: LOCK needs a memory destination",
    ),
    (
        "lock_mov_mem",
        &[0xF0, 0x89, 0x07],
        "#UD: MOV is not lockable",
    ),
    ("hlt", &[0xF4], "#GP(0): CPL > 0"),
    ("mov_from_cr0", &[0x0F, 0x20, 0xC0], "#GP(0): CPL > 0"),
    ("mov_to_dr7", &[0x0F, 0x23, 0xF8], "#GP(0): CPL > 0"),
    ("rdmsr", &[0x0F, 0x32], "#GP(0): CPL > 0"),
    ("wrmsr", &[0x0F, 0x30], "#GP(0): CPL > 0"),
    ("clts", &[0x0F, 0x06], "#GP(0): CPL > 0"),
    ("invd", &[0x0F, 0x08], "#GP(0): CPL > 0"),
    ("wbinvd", &[0x0F, 0x09], "#GP(0): CPL > 0"),
    ("ltr_ax", &[0x0F, 0x00, 0xD8], "#GP(0): CPL > 0"),
    (
        "lidt_mem",
        &[0x0F, 0x01, 0x1F],
        "#GP(0): CPL > 0 (checked before the memory operand)",
    ),
    ("invlpg_mem", &[0x0F, 0x01, 0x3F], "#GP(0): CPL > 0"),
    (
        "int3",
        &[0xCC],
        "#BP (trap, DPL-3 gate): RIP after the instruction",
    ),
    ("int_3", &[0xCD, 0x03], "#BP through INT n (DPL-3 gate)"),
    ("int_21", &[0xCD, 0x21], "#GP(0x10A): gate DPL 0 < CPL 3"),
    ("int_d", &[0xCD, 0x0D], "#GP(0x6A): gate DPL 0 < CPL 3"),
    (
        "xlatb",
        &[0xD7],
        "AL = [RBX + AL] (a fault when RBX is on a faulting page)",
    ),
];

/// Instructions 64-bit mode took away: #UD there (they run in compatibility mode).
const INVALID_IN_64: &[(&str, &[u8])] = &[
    ("daa_in_64", &[0x27]),
    ("aam_in_64", &[0xD4, 0x0A]),
    ("pusha_in_64", &[0x60]),
    ("push_es_in_64", &[0x06]),
    ("pop_ds_in_64", &[0x1F]),
    ("into_in_64", &[0xCE]),
    ("salc_in_64", &[0xD6]),
];

/// Faults of 64-bit addressing: a branch to a page that is not present (#PF on the fetch, after
/// CALL pushed its return address) or to a non-canonical address (#GP at the branch), and stack
/// accesses through a non-canonical RSP/RBP (#SS(0), not #GP).
const FAULTING_64: &[(&str, &[u8])] = &[
    ("jmp_r15_away", &[0x41, 0xFF, 0xE7]),
    ("call_r15_away", &[0x41, 0xFF, 0xD7]),
    ("push_bad_rsp", &[0x50]),
    ("load_bad_rbp", &[0x8B, 0x45, 0x08]),
];

/// The raw forms of `mode`, with their names (compatibility-mode names start with `32/`).
pub fn raw_forms(mode: CodeMode) -> Vec<(String, &'static [u8])> {
    let mut v: Vec<(String, &'static [u8])> =
        STRINGS.iter().map(|(n, b)| (n.to_string(), *b)).collect();
    v.extend(FAULTING.iter().map(|(n, b, _)| (n.to_string(), *b)));
    match mode {
        CodeMode::Long64 => {
            v.extend(STRINGS_64.iter().map(|(n, b)| (n.to_string(), *b)));
            v.extend(INVALID_IN_64.iter().map(|(n, b)| (n.to_string(), *b)));
            v.extend(FAULTING_64.iter().map(|(n, b)| (n.to_string(), *b)));
            v
        }
        CodeMode::Compat32 => v.into_iter().map(|(n, b)| (format!("32/{n}"), b)).collect(),
    }
}

/// Register set-up of a raw form: string instructions get RSI/RDI in the data page (or one of
/// them in `page`, a faulting page) and a small count; memory forms use `[rdi]` = `page`.
pub fn fix_up_raw(name: &str, case: &mut Case, rng: &mut Rng, page: u64) {
    let base = name.trim_start_matches("32/");
    if STRINGS.iter().chain(STRINGS_64).any(|(n, _)| *n == base) {
        case.gpr[reg::RSI] = DATA + 1024 + rng.below(512);
        case.gpr[reg::RDI] = DATA + 2560 + rng.below(512);
        case.gpr[reg::RCX] = rng.below(40);
        if rng.below(4) == 0 {
            // Make REPE CMPS run longer: a stretch of equal bytes.
            case.gpr[reg::RDI] = case.gpr[reg::RSI];
        }
        if page != DATA {
            let r = if rng.below(2) == 0 {
                reg::RSI
            } else {
                reg::RDI
            };
            case.gpr[r] = page + rng.below(4096);
            if page == UNMAPPED && rng.below(2) == 0 {
                // Start just below the page: a REP runs some iterations, then faults with its
                // registers (and the bytes already stored) part-way.
                case.gpr[r] = UNMAPPED - 1 - rng.below(32);
            }
        }
        if base.starts_with("a32_") {
            // 32-bit addressing ignores (and, writing ESI/EDI/ECX, clears) the upper halves.
            for r in [reg::RSI, reg::RDI, reg::RCX] {
                case.gpr[r] |= rng.next_u64() << 32;
            }
        }
    } else if base.ends_with("_away") {
        // Never into a mapped page (its bytes would run as code): not present or non-canonical.
        case.gpr[15] = if rng.below(2) == 0 {
            UNMAPPED + rng.below(4096)
        } else {
            NONCANONICAL
        };
    } else if base == "xlatb" {
        case.gpr[reg::RBX] = page + rng.below(3840);
    } else if base == "push_bad_rsp" {
        case.gpr[reg::RSP] = NONCANONICAL + 8;
    } else if base == "load_bad_rbp" {
        case.gpr[reg::RBP] = NONCANONICAL;
    } else {
        case.gpr[reg::RDI] = page;
    }
}

/// A random address for LEA (no memory access): any registers in 64-bit code; in 32-bit code
/// 32-bit registers or, half the time, 16-bit addressing (`[bx+si+disp16]`, an 0x67 prefix).
pub fn random_address(rng: &mut Rng, mode: CodeMode) -> MemoryOperand {
    const R64: [Register; 15] = [
        Register::RAX,
        Register::RCX,
        Register::RDX,
        Register::RBX,
        Register::RBP,
        Register::RSI,
        Register::RDI,
        Register::R8,
        Register::R9,
        Register::R10,
        Register::R11,
        Register::R12,
        Register::R13,
        Register::R14,
        Register::R15,
    ];
    const R32: [Register; 7] = [
        Register::EAX,
        Register::ECX,
        Register::EDX,
        Register::EBX,
        Register::EBP,
        Register::ESI,
        Register::EDI,
    ];
    let disp = rng.next_u64() as i32 as i64;
    match mode {
        CodeMode::Long64 => {
            let base = R64[rng.below(15) as usize];
            let index = R64[rng.below(15) as usize];
            MemoryOperand::new(
                base,
                index,
                1 << rng.below(4),
                disp,
                4,
                false,
                Register::None,
            )
        }
        CodeMode::Compat32 if rng.below(2) == 0 => {
            let base = R32[rng.below(7) as usize];
            let index = R32[rng.below(7) as usize];
            MemoryOperand::new(
                base,
                index,
                1 << rng.below(4),
                disp,
                4,
                false,
                Register::None,
            )
        }
        CodeMode::Compat32 => {
            const PAIRS: [(Register, Register); 8] = [
                (Register::BX, Register::SI),
                (Register::BX, Register::DI),
                (Register::BP, Register::SI),
                (Register::BP, Register::DI),
                (Register::SI, Register::None),
                (Register::DI, Register::None),
                (Register::BP, Register::None),
                (Register::BX, Register::None),
            ];
            let (base, index) = PAIRS[rng.below(8) as usize];
            MemoryOperand::new(base, index, 1, disp as u16 as i64, 2, false, Register::None)
        }
    }
}

/// Selectors a POP of a segment register finds: valid ones and ones the SDM's checks refuse
/// (null into SS, RPL ≠ CPL for SS, a code segment into SS, a system descriptor, beyond the
/// GDT limit, DPL 0 data at CPL 3).
const POP_SELECTORS: [u16; 9] = [
    USER_SS,
    USER_SS,
    0,
    USER_SS & !3,
    USER_CS32,
    USER_CS64,
    0x30 | 3,
    0x40 | 3,
    0x10 | 3,
];

/// Fix-ups of the legacy forms (and of PUSH/POP of segment registers in both modes): undefined
/// flags of the BCD instructions, BOUND indexes inside the bounds half the time, and the selector
/// a segment POP finds on the stack. `None` rejects the draw.
pub fn fix_up_legacy(
    code: Code,
    i: &Instruction,
    case: &mut Case,
    rng: &mut Rng,
    data: &[u8],
) -> Option<()> {
    use Mnemonic as M;
    match code.mnemonic() {
        M::Daa | M::Das => case.undefined_flags = OF,
        M::Aaa | M::Aas => case.undefined_flags = OF | SF | ZF | PF,
        M::Aam | M::Aad => case.undefined_flags = OF | AF | CF,
        M::Bound if rng.below(2) == 0 => {
            // An index inside [lower, upper] (no #BR); the other half mostly raise #BR.
            let bits = (i.memory_size().size() * 4) as u32;
            let off = (i.memory_displacement64() & 0xFFF) as usize;
            let word = |o: usize| {
                let mut v = 0u64;
                for b in (0..(bits / 8) as usize).rev() {
                    v = v << 8 | data[o + b] as u64;
                }
                sign_extend(v, bits)
            };
            let (lo, hi) = (word(off), word(off + (bits / 8) as usize));
            if lo <= hi {
                let v = lo + (rng.below((hi - lo) as u64 + 1) as i64);
                super::native_fixups::write_reg(case, i.op_register(0), v as u64);
            }
        }
        M::Pop if i.op_kind(0) == OpKind::Register && i.op_register(0).is_segment_register() => {
            let sel = POP_SELECTORS[rng.below(POP_SELECTORS.len() as u64) as usize];
            case.stack_init[..2].copy_from_slice(&sel.to_le_bytes());
        }
        _ => {}
    }
    Some(())
}

//! The documented exceptions of the 80286 conformance run: undefined flags and accepted differences.
//! Teaches: "undefined" in the SDM means the hardware does *something* — a fair test masks it, by rule.
//!
//! Two kinds of rule, both listed here by opcode file (`D3.4` = opcode D3, ModRM reg field 4):
//! - [`undefined_flags`]: flags the Intel SDM leaves undefined after an instruction; the real 286
//!   leaves some value there, vmscope another. Those bits are not compared (also not in a FLAGS
//!   image the CPU pushed while taking an exception). Every other flag is compared exactly.
//! - [`DIFFERENCES`]: whole tests that are not compared because vmscope deliberately models a
//!   later CPU (or a PC without a coprocessor) where the 286 behaves otherwise. They are counted
//!   as "masked" in the report, never as passed.

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

use super::moo::{r, Test};

/// FLAGS bits.
pub mod fl {
    pub const CF: u16 = 1 << 0;
    pub const PF: u16 = 1 << 2;
    pub const AF: u16 = 1 << 4;
    pub const ZF: u16 = 1 << 6;
    pub const SF: u16 = 1 << 7;
    pub const OF: u16 = 1 << 11;
    /// IOPL and NT: a 286 in real mode always reads them as 0 (README of the test set).
    pub const HIGH_NIBBLE: u16 = 0xF000;
    pub const ALL_STATUS: u16 = CF | PF | AF | ZF | SF | OF;
}

use fl::*;

/// One documented flag rule: which opcode files, which flags, when, and why.
pub struct FlagRule {
    pub opcodes: &'static [&'static str],
    pub flags: &'static str,
    pub reason: &'static str,
}

/// The flag masks, as printed by `vmscope conformance sst --rules`. [`undefined_flags`] implements
/// exactly this table.
pub const FLAG_RULES: &[FlagRule] = &[
    FlagRule {
        opcodes: &["*"],
        flags: "bits 12-15 (IOPL, NT, 15)",
        reason: "a 286 in real mode cannot set them; they are cleared on load and not compared",
    },
    FlagRule {
        opcodes: &[
            "08-0D",
            "20-25",
            "30-35",
            "80-83.1/4/6",
            "84",
            "85",
            "A8",
            "A9",
            "F6.0/1",
            "F7.0/1",
        ],
        flags: "AF",
        reason: "OR/AND/XOR/TEST: SDM 'AF is undefined'",
    },
    FlagRule {
        opcodes: &["F6.4/5", "F7.4/5", "69", "6B"],
        flags: "SF ZF AF PF",
        reason: "MUL/IMUL: SDM 'SF, ZF, AF and PF are undefined'",
    },
    FlagRule {
        opcodes: &["F6.6/7", "F7.6/7"],
        flags: "CF OF SF ZF AF PF",
        reason:
            "DIV/IDIV: SDM 'all six status flags are undefined' (also in the FLAGS pushed by #DE)",
    },
    FlagRule {
        opcodes: &["C0-C1.4/5/6/7", "D0-D3.4/5/6/7"],
        flags: "AF; OF if count > 1; CF if count >= operand width (SHL/SHR)",
        reason:
            "shifts: SDM 'AF undefined for a non-zero count, OF only defined for 1-bit shifts, \
                 CF undefined when the count is at least the width'",
    },
    FlagRule {
        opcodes: &["C0-C1.0/1/2/3", "D0-D3.0/1/2/3"],
        flags: "OF if count > 1",
        reason: "rotates: SDM 'OF is defined only for 1-bit rotates'",
    },
    FlagRule {
        opcodes: &["37", "3F"],
        flags: "OF SF ZF PF",
        reason: "AAA/AAS: SDM 'OF, SF, ZF and PF are undefined'",
    },
    FlagRule {
        opcodes: &["D4", "D5"],
        flags: "OF AF CF",
        reason: "AAM/AAD: SDM 'OF, AF and CF are undefined' (also in the FLAGS pushed by #DE)",
    },
    FlagRule {
        opcodes: &["27", "2F"],
        flags: "OF",
        reason: "DAA/DAS: SDM 'OF is undefined'",
    },
];

/// What a difference does to the tests it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// The test is not compared (counted as masked).
    Mask,
    /// The 286 raised #GP (13) where later CPUs raise #SS (12): the test is compared with IVT
    /// entry 12 pointing at the same handler as entry 13, so everything else is still checked.
    StackFaultIs13,
}

/// A documented, accepted difference between the 286 and what vmscope models.
pub struct Difference {
    pub opcodes: &'static [&'static str],
    pub reason: &'static str,
    pub treatment: Treatment,
    /// Does the difference apply to this test? (Only such tests are treated.)
    pub applies: fn(&Test) -> bool,
}

/// The test's instruction as iced-x86 decodes it in 16-bit mode.
fn decode(test: &Test) -> Instruction {
    Decoder::with_ip(16, &test.bytes, 0, DecoderOptions::NONE).decode()
}

fn is_prefix(b: u8) -> bool {
    matches!(b, 0x26 | 0x2E | 0x36 | 0x3E | 0xF0 | 0xF2 | 0xF3)
}

fn has_lock_prefix(test: &Test) -> bool {
    test.bytes
        .iter()
        .take_while(|b| is_prefix(**b))
        .any(|&b| b == 0xF0)
}

/// The opcode byte: the first byte after the prefixes.
fn opcode(test: &Test) -> u8 {
    test.bytes
        .iter()
        .copied()
        .find(|b| !is_prefix(*b))
        .unwrap_or(0)
}

fn uses_fs_or_gs(ins: &Instruction) -> bool {
    (0..ins.op_count()).any(|i| {
        ins.op_kind(i) == OpKind::Register
            && matches!(ins.op_register(i), Register::FS | Register::GS)
    })
}

fn took(test: &Test, vector: u8) -> bool {
    test.exception.is_some_and(|(v, _)| v == vector)
}

/// Does the instruction touch the stack segment (implicitly or through a BP/SS operand)?
fn uses_stack(ins: &Instruction) -> bool {
    ins.stack_pointer_increment() != 0
        || ins.op_count() > 0
            && (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory)
            && ins.memory_segment() == Register::SS
        || matches!(
            ins.mnemonic(),
            Mnemonic::Leave | Mnemonic::Int | Mnemonic::Int3 | Mnemonic::Into | Mnemonic::Iret
        )
}

/// Accepted differences, in the order they are checked.
pub const DIFFERENCES: &[Difference] = &[
    Difference {
        opcodes: &["all"],
        reason: "LOCK (F0) before an instruction that cannot be locked: the 286 ignores the \
                 prefix, the 386 and later raise #UD (vmscope models the later CPUs)",
        treatment: Treatment::Mask,
        applies: |t| has_lock_prefix(t) && !emulator::interp::lock_allowed(&decode(t)),
    },
    Difference {
        opcodes: &["all"],
        reason: "instruction longer than 10 bytes (redundant prefixes): the 286 raises #GP (13), \
                 later CPUs allow up to 15 bytes",
        treatment: Treatment::Mask,
        applies: |t| took(t, 13) && decode(t).len() > 10,
    },
    Difference {
        opcodes: &["A4-A7", "AA-AF", "6C-6F"],
        reason: "string instruction faulting at offset FFFF: the 286 raises #GP (13) after it \
                 advanced SI/DI, later CPUs fault before any register changes (restartable)",
        treatment: Treatment::Mask,
        applies: |t| took(t, 13) && matches!(opcode(t), 0xA4..=0xA7 | 0xAA..=0xAF | 0x6C..=0x6F),
    },
    Difference {
        opcodes: &["8C.4/5", "8E.4/5"],
        reason: "MOV to/from segment register 4 or 5: FS and GS exist from the 386 on, the 286 \
                 raises #UD",
        treatment: Treatment::Mask,
        applies: |t| matches!(opcode(t), 0x8C | 0x8E) && uses_fs_or_gs(&decode(t)),
    },
    Difference {
        opcodes: &["D8"],
        reason: "x87 escape: the test machine had no coprocessor, so the 286 ran ESC as a no-op; \
                 vmscope's CPU has an x87 (CPUID.1:EDX.FPU) and executes the x87 instruction",
        treatment: Treatment::Mask,
        applies: |t| (0xD8..=0xDF).contains(&opcode(t)),
    },
    Difference {
        opcodes: &["all"],
        reason: "stack access past offset FFFF (word at SS:FFFF): the 286 raises #GP (13), \
                 later CPUs raise #SS (12) in real mode",
        treatment: Treatment::StackFaultIs13,
        applies: |t| took(t, 13) && uses_stack(&decode(t)),
    },
];

/// The opcode byte and ModRM reg field (if the file is split by it) of a file stem like `D3.4`.
pub fn parse_stem(stem: &str) -> Option<(u8, Option<u8>)> {
    let mut parts = stem.split('.');
    let op = u8::from_str_radix(parts.next()?, 16).ok()?;
    let reg = match parts.next() {
        Some(r) => Some(r.parse().ok()?),
        None => None,
    };
    Some((op, reg))
}

/// The difference that applies to this test, if any, with its index in [`DIFFERENCES`].
pub fn difference_for(test: &Test) -> Option<(usize, &'static Difference)> {
    DIFFERENCES
        .iter()
        .enumerate()
        .find(|(_, d)| (d.applies)(test))
}

/// The shift/rotate count the instruction uses (already masked to 5 bits as the 286 does).
fn shift_count(op: u8, test: &Test) -> u16 {
    let raw = match op {
        0xD0 | 0xD1 => 1,
        0xD2 | 0xD3 => test.init.regs[r::CX].unwrap_or(0) & 0xFF,
        // C0/C1 ib: the immediate is the last instruction byte.
        _ => test.bytes.last().copied().unwrap_or(0) as u16,
    };
    raw & 0x1F
}

/// Flags whose value the SDM leaves undefined after this test's instruction (bits not compared).
pub fn undefined_flags(stem: &str, test: &Test) -> u16 {
    let Some((op, reg)) = parse_stem(stem) else {
        return 0;
    };
    let reg = reg.unwrap_or(0);
    match op {
        0x08..=0x0D | 0x20..=0x25 | 0x30..=0x35 | 0x84 | 0x85 | 0xA8 | 0xA9 => AF,
        0x80..=0x83 if matches!(reg, 1 | 4 | 6) => AF,
        0xF6 | 0xF7 => match reg {
            0 | 1 => AF,
            4 | 5 => SF | ZF | AF | PF,
            6 | 7 => ALL_STATUS,
            _ => 0,
        },
        0x69 | 0x6B => SF | ZF | AF | PF,
        0xC0 | 0xC1 | 0xD0..=0xD3 => {
            let count = shift_count(op, test);
            if count == 0 {
                return 0;
            }
            let width = if op & 1 == 0 { 8 } else { 16 };
            let mut m = if count > 1 { OF } else { 0 };
            if reg >= 4 {
                m |= AF;
                if count >= width && reg != 7 {
                    m |= CF;
                }
            }
            m
        }
        0x37 | 0x3F => OF | SF | ZF | PF,
        0xD4 | 0xD5 => OF | AF | CF,
        0x27 | 0x2F => OF,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::moo::State;

    fn test_with(bytes: &[u8], cx: u16) -> Test {
        let mut init = State::default();
        init.regs[r::CX] = Some(cx);
        Test {
            index: 0,
            name: String::new(),
            bytes: bytes.to_vec(),
            init,
            fina: State::default(),
            exception: None,
            hash: [0; 20],
        }
    }

    #[test]
    fn shift_masks_depend_on_the_masked_count_and_width() {
        let one = test_with(&[0xD3, 0xE0], 1);
        assert_eq!(undefined_flags("D3.4", &one), AF);
        let many = test_with(&[0xD3, 0xE0], 0x21); // 0x21 & 0x1F = 1
        assert_eq!(undefined_flags("D3.4", &many), AF);
        let wide = test_with(&[0xD2, 0xE0], 9); // SHL byte by 9: CF undefined too
        assert_eq!(undefined_flags("D2.4", &wide), AF | OF | CF);
        let sar = test_with(&[0xD2, 0xF8], 9); // SAR keeps CF defined (sign fill)
        assert_eq!(undefined_flags("D2.7", &sar), AF | OF);
        let zero = test_with(&[0xC1, 0xC0, 0x20], 0); // count 32 & 0x1F = 0: nothing changes
        assert_eq!(undefined_flags("C1.0", &zero), 0);
        assert_eq!(undefined_flags("D1.2", &one), 0); // RCL by 1: OF defined
    }

    #[test]
    fn stems_name_opcode_and_reg_field() {
        assert_eq!(parse_stem("D3.4"), Some((0xD3, Some(4))));
        assert_eq!(parse_stem("A5"), Some((0xA5, None)));
        assert_eq!(parse_stem("zz"), None);
        assert_eq!(undefined_flags("F7.6", &test_with(&[], 0)), ALL_STATUS);
        assert_eq!(undefined_flags("00", &test_with(&[], 0)), 0);
    }
}

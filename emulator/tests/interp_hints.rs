//! The hint and NOP space on the interpreter and the translator: every encoding of 0F 0D and
//! 0F 18–0F 1F (prefetches, CLDEMOTE, ENDBR32/64, RDSSP, reserved NOPs) in every mode.
//! Teaches: why gcc's `-fcf-protection` kernels run on CPUs that predate CET — the P6 reserved
//! these opcodes as NOPs, so newer meanings degrade to "do nothing" on older CPUs.

mod support;

use emulator::cpu::{flags, reg};
use emulator::{Exit, Machine};
use iced_x86::{Decoder, DecoderOptions, Mnemonic};

/// One instance of every ModRM byte for each hint opcode, behind each prefix combination.
/// Displacement bytes are filled in; the decoder tells each instruction's length.
/// (Real mode leaves out two prefix combinations: everything must fit in one 64 KiB segment.)
fn hint_space(bits: u32) -> (Vec<u8>, usize) {
    let prefixes: &[&[u8]] = if bits == 16 {
        &[&[], &[0x66], &[0xF2], &[0xF3], &[0x67]]
    } else {
        &[
            &[],
            &[0x66],
            &[0xF2],
            &[0xF3],
            &[0x67],
            &[0xF3, 0x66],
            &[0x2E],
        ]
    };
    let mut code = Vec::new();
    let mut count = 0;
    for prefix in prefixes {
        for opcode in [0x0D, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F] {
            for modrm in 0..=255u8 {
                let mut bytes = prefix.to_vec();
                // Displacements point well outside RAM: a hint must not touch memory.
                bytes.extend_from_slice(&[0x0F, opcode, modrm, 0x25, 0x00, 0x00, 0xF0, 0x7F]);
                let ins = Decoder::new(bits, &bytes, DecoderOptions::NONE).decode();
                assert!(!ins.is_invalid(), "{bits}-bit {bytes:02x?} does not decode");
                code.extend_from_slice(&bytes[..ins.len()]);
                count += 1;
            }
        }
    }
    // REX.W forms in 64-bit mode: RDSSPQ and the 64-bit reserved NOPs.
    if bits == 64 {
        for opcode in [0x18, 0x1E, 0x1F] {
            for modrm in [0xC8, 0xCF, 0xFA, 0xC0] {
                let bytes = [0xF3, 0x48, 0x0F, opcode, modrm];
                let ins = Decoder::new(64, &bytes, DecoderOptions::NONE).decode();
                assert_eq!(ins.len(), bytes.len(), "{bytes:02x?}");
                code.extend_from_slice(&bytes);
                count += 1;
            }
        }
    }
    (code, count)
}

/// The exit: `out 0xF4, al` with AL = 0x21 (16/32/64-bit encodings are the same bytes).
const EXIT: [u8; 4] = [0xB0, 0x21, 0xE6, 0xF4];

fn check_all_hints_are_nops(mut m: Machine, bits: u32) {
    let (mut code, count) = hint_space(bits);
    code.extend_from_slice(&EXIT);
    if bits == 16 {
        m.cpu.rip = 0x500; // just above the BIOS data area: room for 64 KiB of code
    }
    let start = m.cpu.rip;
    assert!(bits != 16 || start + code.len() as u64 <= 0x1_0000);
    m.ram.write(start, &code).unwrap();
    let before = m.cpu.clone();
    let exit = support::run(&mut m);
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x21,
            status: 0x43
        },
        "{bits}-bit: the hint space did not run through (RIP {:#x}, {} instructions)",
        m.cpu.rip,
        m.stats.instructions
    );
    assert_eq!(
        m.stats.instructions,
        count as u64 + 2,
        "every hint is one instruction"
    );
    assert!(
        m.stats.exceptions.is_empty(),
        "a hint raised {:?}",
        m.stats.exceptions
    );
    let mut expected = before.gpr;
    expected[reg::RAX] = (expected[reg::RAX] & !0xFF) | 0x21;
    assert_eq!(m.cpu.gpr, expected, "{bits}-bit: a hint changed a register");
    assert_eq!(
        m.cpu.rflags & flags::STATUS,
        before.rflags & flags::STATUS,
        "a hint changed the status flags"
    );
    assert_eq!(m.cpu.rip, start + code.len() as u64);
}

#[test]
fn every_hint_encoding_is_a_nop_in_real_mode() {
    check_all_hints_are_nops(support::real_mode(&[]), 16);
}

#[test]
fn every_hint_encoding_is_a_nop_in_protected_mode() {
    check_all_hints_are_nops(support::protected_mode(&[]), 32);
}

#[test]
fn every_hint_encoding_is_a_nop_in_long_mode() {
    check_all_hints_are_nops(support::long_mode(&[]), 64);
}

#[test]
fn the_hint_space_decodes_to_the_no_op_mnemonics() {
    // What a CET-hardened binary starts every function with, and what compilers pad with.
    let named: &[(&[u8], Mnemonic)] = &[
        (&[0xF3, 0x0F, 0x1E, 0xFA], Mnemonic::Endbr64),
        (&[0xF3, 0x0F, 0x1E, 0xFB], Mnemonic::Endbr32),
        (&[0xF3, 0x48, 0x0F, 0x1E, 0xC8], Mnemonic::Rdsspq),
        (&[0x0F, 0x1C, 0x00], Mnemonic::Cldemote),
        (&[0x0F, 0x0D, 0x08], Mnemonic::Prefetchw),
        (&[0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00], Mnemonic::Nop),
        (&[0xF3, 0x90], Mnemonic::Pause),
    ];
    for (bytes, mnemonic) in named {
        let ins = Decoder::new(64, bytes, DecoderOptions::NONE).decode();
        assert_eq!(ins.mnemonic(), *mnemonic, "{bytes:02x?}");
        assert_eq!(ins.len(), bytes.len());
        let mut code = bytes.to_vec();
        code.extend_from_slice(&EXIT);
        let mut m = support::long_mode(&code);
        assert_eq!(
            support::run(&mut m),
            Exit::DebugExit {
                value: 0x21,
                status: 0x43
            },
            "{mnemonic:?} did not run as a NOP"
        );
    }
}

#[test]
fn lock_on_a_hint_is_still_ud() {
    // LOCK is only allowed on read-modify-write instructions; a hint is not one.
    let mut m = support::long_mode(&[0xF0, 0x0F, 0x1F, 0x00, 0xB0, 0x21, 0xE6, 0xF4]);
    let exit = support::run(&mut m);
    assert_ne!(
        exit,
        Exit::DebugExit {
            value: 0x21,
            status: 0x43
        }
    );
    assert_eq!(m.stats.exceptions.get("#UD"), Some(&1), "#UD once");
}

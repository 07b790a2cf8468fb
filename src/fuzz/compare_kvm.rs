//! The rules for comparing an emulated engine with KVM: what the CPU (or PVM's kernel) shows, and what it may do differently.
//! Teaches: a hardware oracle answers only what the architecture defines; undefined flags, host state and a hypervisor's own emulator are not the CPU's answer.
//!
//! Compared: the exit (kind and debug-exit value), the GPRs (in compatibility mode the low 32
//! bits of the first eight), RIP, RFLAGS without the status flags the architecture left undefined
//! at the end, the six segment selectors, CR2, every byte of RAM, port I/O by port, UART output,
//! and the instruction count where KVM's single-stepping counts like the emulated engines.
//! Not compared: `Stats` exceptions and exits (KVM delivers exceptions inside the guest without
//! an exit), hidden segment parts and system registers KVM reports its own way, the FPU, time.
//!
//! A difference is set aside as not comparable when a [`KVM_RULES`] entry explains it; to know,
//! the case is run once more on the interpreter one instruction at a time ([`trace`]).

use std::collections::BTreeSet;

use emulator::cpu::state::{flags, CpuMode};
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, RunLimit};
use iced_x86::{Mnemonic, RflagsBits};

use super::compare::{exit_text, ram_diff, Verdict};
use super::gen::Case;
use super::modes;
use super::run::{current_instruction, EngineKind, Observation};
use crate::conformance::native::PVM_QUIRKS;

/// Why a kvm difference is not a bug: (name, reason). `vmscope fuzz --rules` prints them.
pub const KVM_RULES: &[(&str, &str)] = &[
    (
        "undefined flags",
        "the case read a status flag the architecture leaves undefined (after MUL, a shift, BSF, …) or ended with one: CPU models differ, the interpreter's choice is one of them",
    ),
    (
        "host state",
        "the case ran an instruction whose result is the host's, not the guest's: RDRAND, RDSEED, RDPID, RDTSCP, RDPMC, XGETBV, CPUID leaves KVM fills from the host",
    ),
    (
        "not implemented",
        "the interpreter does not implement an instruction the case ran (the guest got #UD, counted in Stats::unimplemented)",
    ),
    (
        "compatibility mode on PVM",
        "PVM runs 32-bit ring-3 code in KVM's instruction emulator (see conformance native --rules)",
    ),
    (
        "#GP from ring 3 on PVM",
        "PVM hands a faulting ring-3 instruction to KVM's emulator, which answers #UD where it does not know the instruction, and INT n arrives as #UD",
    ),
];

/// What the interpreter ran, step by step: for deciding whether a rule applies.
#[derive(Debug, Default)]
pub struct Trace {
    pub mnemonics: BTreeSet<Mnemonic>,
    /// Ran 32-bit (compatibility-mode) code.
    pub compat: bool,
    /// An instruction read a status flag left undefined by an earlier one.
    pub undefined_read: bool,
    /// RFLAGS bits (x86 layout) undefined when the case ended.
    pub undefined_at_end: u64,
}

fn x86_flags(b: u32) -> u64 {
    let mut f = 0;
    for (iced, x86) in [
        (RflagsBits::OF, flags::OF),
        (RflagsBits::SF, flags::SF),
        (RflagsBits::ZF, flags::ZF),
        (RflagsBits::AF, flags::AF),
        (RflagsBits::CF, flags::CF),
        (RflagsBits::PF, flags::PF),
    ] {
        if b & iced != 0 {
            f |= x86;
        }
    }
    f
}

/// Runs `case` on the interpreter one instruction at a time and records what ran.
pub fn trace(case: &Case, limit: u64) -> Trace {
    let mut m = modes::new_machine(case.mode, &case.code());
    let mut interp = Interpreter::new();
    let mut t = Trace::default();
    let mut undefined = 0u32;
    for _ in 0..limit.saturating_mul(2) + 8 {
        if m.stats.instructions >= limit {
            break;
        }
        if let Some(i) = current_instruction(&m) {
            t.mnemonics.insert(i.mnemonic());
            if m.cpu.mode() == CpuMode::Compatibility {
                t.compat = true;
            }
            if i.rflags_read() & undefined != 0 {
                t.undefined_read = true;
            }
            undefined = (undefined & !i.rflags_modified()) | i.rflags_undefined();
        }
        match interp.run(&mut m, RunLimit::instructions(1)) {
            Ok(Exit::LimitReached) => {}
            _ => break,
        }
    }
    t.undefined_at_end = x86_flags(undefined);
    t
}

const HOST_STATE: [Mnemonic; 7] = [
    Mnemonic::Rdrand,
    Mnemonic::Rdseed,
    Mnemonic::Rdpid,
    Mnemonic::Rdtscp,
    Mnemonic::Rdpmc,
    Mnemonic::Xgetbv,
    Mnemonic::Cpuid,
];

/// The differences between an emulated engine's `a` and KVM's `b`, or why there are none to
/// count.
pub fn compare(case: &Case, limit: u64, a: &Observation, b: &Observation) -> Verdict {
    let (a, b) = if a.engine == EngineKind::Kvm {
        (b, a)
    } else {
        (a, b)
    };
    let first = differences(a, b, 0);
    if first.is_empty() {
        return Verdict::Same;
    }
    let t = trace(case, limit);
    if let Some(rule) = rule_for(&t, a, b) {
        return Verdict::NotComparable(rule);
    }
    // Flags left undefined at the end are not compared.
    let d = differences(a, b, t.undefined_at_end);
    if d.is_empty() {
        return Verdict::Same;
    }
    Verdict::Differ(d)
}

fn rule_for(t: &Trace, a: &Observation, b: &Observation) -> Option<&'static str> {
    let fault = |o: &Observation| {
        o.cpu
            .rip
            .checked_sub(crate::conformance::native_machine::STUBS)
            .map(|d| d / 16)
    };
    if t.undefined_read {
        return Some(KVM_RULES[0].0);
    }
    if HOST_STATE.iter().any(|m| t.mnemonics.contains(m)) {
        return Some(KVM_RULES[1].0);
    }
    if !a.stats.unimplemented.is_empty() {
        return Some(KVM_RULES[2].0);
    }
    if t.compat {
        return Some(KVM_RULES[3].0);
    }
    // #GP (13) on the interpreter, #UD (6) on PVM.
    let _ = PVM_QUIRKS;
    if a.stats.exceptions.contains_key("#GP") && fault(b) == Some(6) {
        return Some(KVM_RULES[4].0);
    }
    None
}

fn differences(a: &Observation, b: &Observation, undefined: u64) -> Vec<String> {
    let mut d = Vec::new();
    let kind = |e: &Result<Exit, String>| match e {
        Ok(Exit::DebugExit { value, .. }) => format!("debug exit {value:#x}"),
        Ok(Exit::TripleFault { .. }) => "triple fault".into(),
        other => exit_text(other),
    };
    if kind(&a.exit) != kind(&b.exit) {
        d.push(format!(
            "exit: {} vs {}",
            exit_text(&a.exit),
            exit_text(&b.exit)
        ));
    }
    let compat = a.cpu.mode() == CpuMode::Compatibility;
    let (n, mask) = if compat {
        (8, 0xFFFF_FFFF)
    } else {
        (16, u64::MAX)
    };
    for i in 0..n {
        if (a.cpu.gpr[i] ^ b.cpu.gpr[i]) & mask != 0 {
            d.push(format!(
                "gpr{i}: {:#x} vs {:#x}",
                a.cpu.gpr[i], b.cpu.gpr[i]
            ));
        }
    }
    if a.cpu.rip != b.cpu.rip {
        d.push(format!("rip: {:#x} vs {:#x}", a.cpu.rip, b.cpu.rip));
    }
    let fl =
        (flags::STATUS | flags::DF | flags::IF | flags::TF | flags::AC | flags::NT) & !undefined;
    if (a.cpu.rflags ^ b.cpu.rflags) & fl != 0 {
        d.push(format!(
            "rflags: {:#x} vs {:#x} (compared {fl:#x})",
            a.cpu.rflags, b.cpu.rflags
        ));
    }
    for s in emulator::cpu::Seg::ALL {
        let (x, y) = (
            a.cpu.seg[s as usize].selector,
            b.cpu.seg[s as usize].selector,
        );
        if x != y {
            d.push(format!("{}: {x:#x} vs {y:#x}", s.name()));
        }
    }
    if a.cpu.cr2 != b.cpu.cr2 {
        d.push(format!("cr2: {:#x} vs {:#x}", a.cpu.cr2, b.cpu.cr2));
    }
    d.extend(ram_diff(&a.ram, &b.ram));
    if a.io_by_port != b.io_by_port {
        d.push(format!(
            "port I/O: {:?} vs {:?}",
            a.io_by_port, b.io_by_port
        ));
    }
    if a.serial != b.serial {
        d.push("serial output differs".into());
    }
    if a.stats.instructions != b.stats.instructions {
        d.push(format!(
            "instructions: {} vs {}",
            a.stats.instructions, b.stats.instructions
        ));
    }
    d
}

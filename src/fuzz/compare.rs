//! Comparing two engines' observations of one case, under the rules written down here.
//! Teaches: "the engines agree" is a list of fields; every field left out needs a reason.
//!
//! **interp, bt (and the test-only flawed engine)** must agree on everything: the `Exit`
//! (including a triple fault's detail), the whole `CpuState` (GPRs, RIP, RFLAGS, segment registers
//! with their hidden parts, LDTR, TR, GDTR, IDTR, CR0/2/3/4/8, EFER, DR0–7, the MSRs, the FXSAVE
//! image, pending events), every byte of RAM, `Stats` (instructions, exits by reason, exceptions by
//! vector, hardware interrupts, unimplemented instructions, page faults), port I/O by port, MMIO
//! reads and writes, UART and debug-console output, and the virtual time. Not compared: the
//! translator's counters and the software MMU's hit/miss/fill counts (bt's own TLB answers
//! first) — the only differences ARCHITECTURE.md allows.
//!
//! **kvm** is compared with the rules in [`super::compare_kvm`].

use emulator::{CpuState, Exit, Stats};

use super::compare_kvm;
use super::gen::Case;
use super::run::{EngineKind, Observation};

/// How two observations relate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Same,
    /// The differences, one line each.
    Differ(Vec<String>),
    /// A documented reason why this case cannot be compared between these engines.
    NotComparable(&'static str),
}

/// Compares `a` and `b` (same case). For kvm pairs the interpreter's `a` is needed.
pub fn compare(case: &Case, limit: u64, a: &Observation, b: &Observation) -> Verdict {
    if a.engine == EngineKind::Kvm || b.engine == EngineKind::Kvm {
        return compare_kvm::compare(case, limit, a, b);
    }
    let d = emulated(a, b);
    if d.is_empty() {
        Verdict::Same
    } else {
        Verdict::Differ(d)
    }
}

pub(crate) fn exit_text(e: &Result<Exit, String>) -> String {
    match e {
        Ok(exit) => crate::runner::exit_summary(exit),
        Err(err) => format!("engine error: {err}"),
    }
}

/// Field-by-field differences of two CPU states.
pub fn cpu_diff(a: &CpuState, b: &CpuState) -> Vec<String> {
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    let mut d = Vec::new();
    let mut num = |name: &str, x: u64, y: u64| {
        if x != y {
            d.push(format!("{name}: {x:#x} vs {y:#x}"));
        }
    };
    for (i, n) in NAMES.iter().enumerate() {
        num(n, a.gpr[i], b.gpr[i]);
    }
    num("rip", a.rip, b.rip);
    num("rflags", a.rflags, b.rflags);
    num("cr0", a.cr0, b.cr0);
    num("cr2", a.cr2, b.cr2);
    num("cr3", a.cr3, b.cr3);
    num("cr4", a.cr4, b.cr4);
    num("cr8", a.cr8, b.cr8);
    num("efer", a.efer, b.efer);
    for i in 0..8 {
        num(&format!("dr{i}"), a.dr[i], b.dr[i]);
    }
    let mut dbg = |name: &str, x: String, y: String| {
        if x != y {
            d.push(format!("{name}: {x} vs {y}"));
        }
    };
    for s in emulator::cpu::Seg::ALL {
        dbg(
            s.name(),
            format!("{:?}", a.seg[s as usize]),
            format!("{:?}", b.seg[s as usize]),
        );
    }
    dbg("ldtr", format!("{:?}", a.ldtr), format!("{:?}", b.ldtr));
    dbg("tr", format!("{:?}", a.tr), format!("{:?}", b.tr));
    dbg("gdtr", format!("{:?}", a.gdtr), format!("{:?}", b.gdtr));
    dbg("idtr", format!("{:?}", a.idtr), format!("{:?}", b.idtr));
    dbg("msrs", format!("{:?}", a.msrs), format!("{:?}", b.msrs));
    dbg(
        "events",
        format!("{:?}", a.events),
        format!("{:?}", b.events),
    );
    if let Some(i) = (0..512).find(|&i| a.fpu.fxsave[i] != b.fpu.fxsave[i]) {
        d.push(format!(
            "fxsave byte {i}: {:#04x} vs {:#04x}",
            a.fpu.fxsave[i], b.fpu.fxsave[i]
        ));
    }
    d
}

/// The first differing RAM byte, as a line.
pub fn ram_diff(a: &[u8], b: &[u8]) -> Option<String> {
    let i = (0..a.len().min(b.len())).find(|&i| a[i] != b[i])?;
    let n = (i..a.len().min(b.len())).filter(|&j| a[j] != b[j]).count();
    Some(format!(
        "ram: {n} bytes differ, first at {i:#x}: {:#04x} vs {:#04x}",
        a[i], b[i]
    ))
}

fn stats_diff(a: &Stats, b: &Stats, d: &mut Vec<String>) {
    let mut line = |name: &str, x: String, y: String| {
        if x != y {
            d.push(format!("{name}: {x} vs {y}"));
        }
    };
    line(
        "instructions",
        a.instructions.to_string(),
        b.instructions.to_string(),
    );
    line(
        "exceptions",
        format!("{:?}", a.exceptions),
        format!("{:?}", b.exceptions),
    );
    line("exits", format!("{:?}", a.exits), format!("{:?}", b.exits));
    line(
        "interrupts",
        a.interrupts.to_string(),
        b.interrupts.to_string(),
    );
    line(
        "unimplemented",
        format!("{:?}", a.unimplemented),
        format!("{:?}", b.unimplemented),
    );
    line(
        "page faults",
        a.mmu.page_faults.to_string(),
        b.mmu.page_faults.to_string(),
    );
}

/// Everything, for two emulated engines.
pub fn emulated(a: &Observation, b: &Observation) -> Vec<String> {
    let mut d = Vec::new();
    if a.exit != b.exit {
        d.push(format!(
            "exit: {} vs {}",
            exit_text(&a.exit),
            exit_text(&b.exit)
        ));
    }
    d.extend(cpu_diff(&a.cpu, &b.cpu));
    d.extend(ram_diff(&a.ram, &b.ram));
    stats_diff(&a.stats, &b.stats, &mut d);
    if a.io_by_port != b.io_by_port {
        d.push(format!(
            "port I/O: {:?} vs {:?}",
            a.io_by_port, b.io_by_port
        ));
    }
    if a.mmio != b.mmio {
        d.push(format!(
            "MMIO (reads, writes): {:?} vs {:?}",
            a.mmio, b.mmio
        ));
    }
    if a.serial != b.serial {
        d.push(format!(
            "serial: {:?} vs {:?}",
            String::from_utf8_lossy(&a.serial),
            String::from_utf8_lossy(&b.serial)
        ));
    }
    if a.debugcon != b.debugcon {
        d.push(format!("debugcon: {:?} vs {:?}", a.debugcon, b.debugcon));
    }
    if a.time_ns != b.time_ns {
        d.push(format!("virtual time: {} vs {} ns", a.time_ns, b.time_ns));
    }
    d
}

//! The one door: the `Engine` trait every execution engine implements.
//! Teaches: an engine is "something that runs the CPU state against the machine for a while".
//!
//! The machine never asks which engine it runs. An engine reads and writes `machine.cpu` at the
//! boundaries of `run`, reaches devices only through `machine.bus`, and stops at an instruction
//! boundary, so another engine can continue from the same `CpuState`.

use thiserror::Error;

use super::Machine;

/// How long an engine may run before it returns `Exit::LimitReached`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunLimit {
    /// Stop after this many guest instructions (engines that cannot count them single-step).
    pub instructions: Option<u64>,
    /// Stop after this many guest I/O accesses (port or MMIO), counted the same way by every engine.
    pub io_accesses: Option<u64>,
    /// Stop once the machine's virtual clock has advanced this many ns (emulated engines: about
    /// one per instruction; KVM: host time). Lets a caller get control back from a guest that
    /// spins without I/O on an engine that cannot count instructions cheaply.
    pub time_ns: Option<u64>,
}

impl RunLimit {
    pub const UNLIMITED: RunLimit = RunLimit {
        instructions: None,
        io_accesses: None,
        time_ns: None,
    };

    pub fn instructions(n: u64) -> Self {
        RunLimit {
            instructions: Some(n),
            ..RunLimit::UNLIMITED
        }
    }

    pub fn io_accesses(n: u64) -> Self {
        RunLimit {
            io_accesses: Some(n),
            ..RunLimit::UNLIMITED
        }
    }

    pub fn time_ns(ns: u64) -> Self {
        RunLimit {
            time_ns: Some(ns),
            ..RunLimit::UNLIMITED
        }
    }
}

/// Why an engine returned. The CPU is always at an instruction boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The `RunLimit` was reached.
    LimitReached,
    /// The guest wrote `value` to isa-debug-exit; the process exit status is `status`.
    DebugExit { value: u32, status: i32 },
    /// The guest asked for a reset (keyboard controller 0xFE, port 0xCF9).
    ResetRequested,
    /// A fault while delivering a double fault: the CPU shuts down (on a PC this resets it).
    TripleFault { detail: String },
    /// HLT with interrupts disabled and nothing that could wake the CPU.
    Shutdown,
    /// ACPI soft-off (S5): the guest powered the machine off through PM1 control.
    PowerOff,
}

/// Host-side failures of an engine (never caused by ordinary guest behaviour).
#[derive(Debug, Error)]
pub enum EngineError {
    /// the engine cannot run this guest state: {0}
    #[error("the engine cannot run this guest state: {0}")]
    Unsupported(String),
    /// host hypervisor error: {0}
    #[error("host hypervisor error: {0}")]
    Host(String),
}

/// What changed behind an engine's back ([`Engine::invalidate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidate {
    /// Guest-physical bytes `[phys, phys + len)` (code, page tables, data).
    Memory { phys: u64, len: u64 },
    /// Registers, control registers or MSRs (the paging context may have changed).
    CpuState,
    /// Anything: assume nothing cached is valid.
    All,
}

// ANCHOR: engine_trait
/// One way of executing guest instructions: interpreter, translator, KVM.
pub trait Engine {
    /// Short name used on the command line and in tables ("interp", "kvm").
    fn name(&self) -> &'static str;

    /// A human description, e.g. "kvm (PVM, software)".
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// Runs `machine.cpu` until the limit or an event; `machine.cpu` is current on return.
    fn run(&mut self, machine: &mut Machine, limit: RunLimit) -> Result<Exit, EngineError>;

    /// Executes exactly one guest instruction (or delivers one pending event).
    fn step(&mut self, machine: &mut Machine) -> Result<Exit, EngineError> {
        self.run(machine, RunLimit::instructions(1))
    }

    /// Engine-specific counters for `--stats` (e.g. the translator's cache), if any.
    fn report(&self) -> Option<String> {
        None
    }

    /// Someone changed guest state behind the engine's back (a debugger, a loader, a restore):
    /// drop what is cached of it before running again. The default bumps the machine's memory
    /// epoch, which every engine's caches check, so it also reaches engines that are not
    /// running now; an engine may do less for a smaller `what`.
    fn invalidate(&mut self, machine: &mut Machine, what: Invalidate) {
        let _ = what;
        machine.memory_changed_behind_engines();
    }

    /// Can this engine count retired instructions? (KVM cannot, except by single-stepping.)
    fn counts_instructions(&self) -> bool {
        true
    }
}
// ANCHOR_END: engine_trait

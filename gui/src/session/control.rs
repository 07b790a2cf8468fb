//! Run control: step into, over and out, run, pause, run to an address — and why the guest stopped.
//! Teaches: every debugger verb is "execute instructions until a condition holds"; only the condition differs.
//!
//! While nothing needs checking between instructions (no breakpoints, watchpoints or "break on"
//! conditions, plain Run) the engine runs in large slices at full speed. Otherwise the session
//! executes one instruction at a time and checks after each: correct for every engine, and
//! under KVM exactly what single-stepping with `KVM_GUESTDBG_SINGLESTEP` gives us.

use std::fmt;

use emulator::cpu::reg;
use emulator::{Exit, RunLimit};
use iced_x86::{FlowControl, Instruction};

use super::breakpoints::{memory_uses, watch_hit};
use super::{EngineKind, EventKind, Session};
use crate::disasm;
use crate::guestmem::MachineReader;

/// Single steps KVM may take per GUI frame (each one is a VM exit: tens of µs under PVM).
const KVM_STEPS_PER_TICK: u64 = 2_000;
/// Port-I/O exits per GUI frame when KVM runs freely.
const KVM_IO_PER_TICK: u64 = 64;
/// Host time a KVM slice may take (KVM's virtual time is host time): a frame's worth.
const KVM_NS_PER_TICK: u64 = 10_000_000;

/// When a run should stop by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// Until a breakpoint, a "break on" condition, the guest's end or Pause.
    Continue,
    /// Until execution is back after the instruction being stepped over, on the same stack
    /// frame or an outer one.
    StepOver { resume_linear: u64, rsp: u64 },
    /// Until a return instruction leaves the current frame (its RSP was at least `rsp`).
    StepOut { rsp: u64 },
    /// Until RIP reaches a linear address (run to cursor).
    RunTo { linear: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Paused,
    Running(Goal),
}

/// Why the guest is paused now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    Stepped,
    SteppedOver,
    SteppedOut,
    ReachedCursor,
    Paused,
    Breakpoint {
        linear: u64,
    },
    /// An interrupt or exception entered a handler whose first instruction has a breakpoint:
    /// delivery and that instruction are one step, so the CPU is just past it.
    BreakpointAtHandlerEntry {
        linear: u64,
    },
    Watchpoint {
        linear: u64,
        size: u64,
        write: bool,
        by_rip: u64,
    },
    Exception(String),
    ModeSwitch(String),
    IoPort(u16),
    KvmExit(String),
    Rewound {
        to: u64,
    },
    /// The session started from a snapshot file, saved after `at` instructions.
    Restored {
        at: u64,
    },
    GuestEnded(String),
    EngineError(String),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Stepped => write!(f, "stepped one instruction"),
            StopReason::SteppedOver => write!(f, "stepped over"),
            StopReason::SteppedOut => write!(f, "stepped out: back in the caller"),
            StopReason::ReachedCursor => write!(f, "reached the cursor"),
            StopReason::Paused => write!(f, "paused"),
            StopReason::Breakpoint { linear } => write!(f, "breakpoint at {linear:#x}"),
            StopReason::BreakpointAtHandlerEntry { linear } => write!(
                f,
                "breakpoint at {linear:#x}, entered by an interrupt or exception (its first \
                 instruction ran in the same step as the delivery)"
            ),
            StopReason::Watchpoint {
                linear,
                size,
                write,
                by_rip,
            } => write!(
                f,
                "watchpoint: {} of {size} byte(s) at {linear:#x} by the instruction at {by_rip:#x}",
                if *write { "write" } else { "read" }
            ),
            StopReason::Exception(e) => write!(f, "exception: {e}"),
            StopReason::ModeSwitch(m) => write!(f, "mode switch: {m}"),
            StopReason::IoPort(p) => write!(f, "I/O port {p:#x} accessed"),
            StopReason::KvmExit(e) => write!(f, "KVM {e}"),
            StopReason::Rewound { to } => write!(f, "rewound to instruction {to}"),
            StopReason::Restored { at } => {
                write!(
                    f,
                    "restored from a snapshot file, saved at instruction {at}"
                )
            }
            StopReason::GuestEnded(e) => write!(f, "guest ended: {e}"),
            StopReason::EngineError(e) => write!(f, "engine error: {e}"),
        }
    }
}

/// How a guest ended, in words.
pub fn describe_exit(exit: &Exit) -> String {
    match exit {
        Exit::DebugExit { value, status } => {
            format!("wrote {value:#x} to isa-debug-exit (exit status {status})")
        }
        Exit::Shutdown => "halted with interrupts disabled (clean shutdown)".into(),
        Exit::TripleFault { detail } => format!("triple fault: {detail}"),
        Exit::ResetRequested => "requested a reset".into(),
        Exit::PowerOff => "powered off (ACPI S5)".into(),
        Exit::LimitReached => "stopped".into(),
    }
}

/// Does "step over" run this instruction to completion as a whole? Calls, software
/// interrupts (INT n, INT3, INTO) and REP string instructions.
pub fn steps_over(ins: &Instruction) -> bool {
    matches!(
        ins.flow_control(),
        FlowControl::Call | FlowControl::IndirectCall | FlowControl::Interrupt
    ) || (ins.is_string_instruction() && (ins.has_rep_prefix() || ins.has_repne_prefix()))
}

impl Session {
    fn ready(&mut self) -> bool {
        if self.is_running() {
            return false;
        }
        if let Some(exit) = &self.finished {
            self.notice = Some(format!(
                "the guest has ended ({}): step back or reload it",
                describe_exit(exit)
            ));
            return false;
        }
        true
    }

    /// Executes one instruction (F11).
    pub fn step_into(&mut self) {
        if !self.ready() {
            return;
        }
        self.prev_cpu = self.machine.cpu.clone();
        let reason = self
            .step_checked(false, &Goal::Continue)
            .unwrap_or(StopReason::Stepped);
        self.stop(reason);
    }

    /// Executes one instruction, or a whole call / INT / REP string instruction (F10).
    pub fn step_over(&mut self) {
        if !self.ready() {
            return;
        }
        match disasm::decode_current(&mut self.machine) {
            Some(ins) if steps_over(&ins) => {
                let resume_linear = self.machine.cpu.linear_rip().wrapping_add(ins.len() as u64);
                let rsp = self.machine.cpu.gpr[reg::RSP];
                self.start(Goal::StepOver { resume_linear, rsp });
            }
            _ => {
                let before = self.machine.cpu.clone();
                let interrupts = self.events.total(EventKind::Interrupt);
                self.step_into();
                let interrupted = self.events.total(EventKind::Interrupt) > interrupts;
                if interrupted && self.last_stop == Some(StopReason::Stepped) {
                    // A hardware interrupt arrived: step over its handler too, back to the
                    // instruction it interrupted (which has not run yet).
                    self.start(Goal::StepOver {
                        resume_linear: before.linear_rip(),
                        rsp: before.gpr[reg::RSP],
                    });
                    self.first_step_of_run = false;
                    self.prev_cpu = before;
                }
            }
        }
    }

    /// Runs until the current function returns (Shift+F11).
    pub fn step_out(&mut self) {
        let rsp = self.machine.cpu.gpr[reg::RSP];
        self.start(Goal::StepOut { rsp });
    }

    /// Runs until something stops the guest (F5).
    pub fn run(&mut self) {
        self.start(Goal::Continue);
    }

    /// Runs until RIP reaches `linear` (Ctrl+F10).
    pub fn run_to(&mut self, linear: u64) {
        self.start(Goal::RunTo { linear });
    }

    fn start(&mut self, goal: Goal) {
        if !self.ready() {
            return;
        }
        self.prev_cpu = self.machine.cpu.clone();
        self.first_step_of_run = true;
        self.last_stop = None;
        self.notice = None;
        self.run_state = RunState::Running(goal);
    }

    pub fn pause(&mut self) {
        if self.is_running() {
            self.stop(StopReason::Paused);
        }
    }

    /// Runs the guest for at most `budget` instructions (one GUI frame's worth) if it is
    /// running; stops it when a goal, breakpoint or condition says so.
    pub fn tick(&mut self, budget: u64) {
        let RunState::Running(goal) = self.run_state.clone() else {
            return;
        };
        let on_kvm = self.engines.active == EngineKind::Kvm;
        let per_step = goal != Goal::Continue
            || self.breakpoints.iter().any(|b| b.enabled)
            || self.watchpoints.iter().any(|w| w.enabled)
            || self.break_on.any();
        if per_step {
            let n = if on_kvm {
                budget.min(KVM_STEPS_PER_TICK)
            } else {
                budget
            };
            for _ in 0..n.max(1) {
                let check_breakpoints = !std::mem::take(&mut self.first_step_of_run);
                if let Some(reason) = self.step_checked(check_breakpoints, &goal) {
                    self.stop(reason);
                    return;
                }
            }
        } else {
            self.first_step_of_run = false;
            let limit = if on_kvm {
                self.history.mark_nondeterministic();
                // And a time limit: a guest that spins without I/O must still end the frame.
                RunLimit {
                    time_ns: Some(KVM_NS_PER_TICK),
                    ..RunLimit::io_accesses(KVM_IO_PER_TICK)
                }
            } else {
                // Stop where the next machine snapshot is due (see rewind.rs).
                let due = self.history.until_next_snapshot(self.position());
                RunLimit::instructions(budget.min(due).max(1))
            };
            let result = self.engines.run(&mut self.machine, limit);
            self.collect_writes();
            if !on_kvm && matches!(result, Ok(Exit::LimitReached)) {
                self.snapshot_if_due();
            }
            let rip = self.machine.cpu.rip;
            self.events.observe(&self.machine, rip, on_kvm);
            match result {
                Err(e) => return self.stop(StopReason::EngineError(e.to_string())),
                Ok(Exit::LimitReached) => {}
                Ok(exit) => {
                    let reason = StopReason::GuestEnded(describe_exit(&exit));
                    self.finished = Some(exit);
                    return self.stop(reason);
                }
            }
        }
        self.drain_serial();
    }

    /// Runs until the guest stops by itself, at most `max_ticks` slices of `budget`. For tests
    /// and scripts; returns whether it stopped.
    pub fn run_until_stopped(&mut self, budget: u64, max_ticks: u64) -> bool {
        for _ in 0..max_ticks {
            if !self.is_running() {
                return true;
            }
            self.tick(budget);
        }
        !self.is_running()
    }

    /// One instruction with every check around it. `None` = keep going.
    fn step_checked(&mut self, check_breakpoints: bool, goal: &Goal) -> Option<StopReason> {
        let rip = self.machine.cpu.rip;
        if check_breakpoints && !self.breakpoints.is_empty() {
            let cpu = self.machine.cpu.clone();
            let mut mem = MachineReader(&mut self.machine);
            if let Some(b) = self
                .breakpoints
                .iter_mut()
                .find(|b| b.triggers(&cpu, &mut mem))
            {
                b.hits += 1;
                return Some(StopReason::Breakpoint { linear: b.linear });
            }
        }
        let needs_decode =
            matches!(goal, Goal::StepOut { .. }) || self.watchpoints.iter().any(|w| w.enabled);
        let ins = if needs_decode {
            disasm::decode_current(&mut self.machine)
        } else {
            None
        };
        let watched = ins.as_ref().and_then(|i| {
            let uses = memory_uses(i, &self.machine.cpu);
            watch_hit(&self.watchpoints, &uses)
        });
        let is_return = ins
            .as_ref()
            .is_some_and(|i| i.flow_control() == FlowControl::Return);
        let rsp_before = self.machine.cpu.gpr[reg::RSP];
        let ports_before = self.watched_port_counts();
        let on_kvm = self.engines.active == EngineKind::Kvm;
        if on_kvm {
            self.history.mark_nondeterministic();
        }

        let result = self.engines.step(&mut self.machine);
        self.collect_writes();
        if !on_kvm && matches!(result, Ok(Exit::LimitReached)) {
            self.snapshot_if_due();
        }
        let seen = self.events.observe(&self.machine, rip, on_kvm);
        match result {
            Err(e) => return Some(StopReason::EngineError(e.to_string())),
            Ok(Exit::LimitReached) => {}
            Ok(exit) => {
                let reason = StopReason::GuestEnded(describe_exit(&exit));
                self.finished = Some(exit);
                return Some(reason);
            }
        }

        let delivered =
            seen.contains(&EventKind::Interrupt) || seen.contains(&EventKind::Exception);
        if delivered && check_breakpoints {
            if let Some(linear) = self.handler_entry_breakpoint() {
                return Some(StopReason::BreakpointAtHandlerEntry { linear });
            }
        }
        if let Some((i, u)) = watched {
            self.watchpoints[i].hits += 1;
            return Some(StopReason::Watchpoint {
                linear: u.linear,
                size: u.size,
                write: u.write,
                by_rip: rip,
            });
        }
        let last_detail = |kind: EventKind| {
            self.events
                .events
                .iter()
                .rev()
                .find(|e| e.kind == kind)
                .map(|e| e.detail.clone())
                .unwrap_or_default()
        };
        if self.break_on.exception && seen.contains(&EventKind::Exception) {
            return Some(StopReason::Exception(last_detail(EventKind::Exception)));
        }
        if self.break_on.mode_switch && seen.contains(&EventKind::ModeSwitch) {
            return Some(StopReason::ModeSwitch(last_detail(EventKind::ModeSwitch)));
        }
        if on_kvm && self.break_on.kvm_exit && seen.contains(&EventKind::KvmExit) {
            return Some(StopReason::KvmExit(last_detail(EventKind::KvmExit)));
        }
        let ports_after = self.watched_port_counts();
        if let Some((port, _)) = ports_after
            .iter()
            .zip(&ports_before)
            .find(|(a, b)| a.1 != b.1)
            .map(|(a, _)| *a)
        {
            return Some(StopReason::IoPort(port));
        }

        let cpu = &self.machine.cpu;
        match *goal {
            Goal::StepOver { resume_linear, rsp }
                if cpu.linear_rip() == resume_linear && cpu.gpr[reg::RSP] >= rsp =>
            {
                Some(StopReason::SteppedOver)
            }
            Goal::StepOut { rsp } if is_return && rsp_before >= rsp => Some(StopReason::SteppedOut),
            Goal::RunTo { linear } if cpu.linear_rip() == linear => Some(StopReason::ReachedCursor),
            _ => None,
        }
    }

    /// After a step that delivered an interrupt or exception, the engine has also run the
    /// handler's first instruction. A breakpoint there was never "before" us, so look for an
    /// enabled breakpoint whose instruction leads to where we are now.
    fn handler_entry_breakpoint(&mut self) -> Option<u64> {
        let now = self.machine.cpu.linear_rip();
        let bits = self.machine.cpu.code_bits();
        let candidates: Vec<(usize, u64)> = self
            .breakpoints
            .iter()
            .enumerate()
            .filter(|(_, b)| b.enabled)
            .map(|(i, b)| (i, b.linear))
            .collect();
        for (i, linear) in candidates {
            let mut bytes = [0u8; 15];
            let n = crate::guestmem::read_linear(&mut self.machine, linear, &mut bytes);
            let ins = iced_x86::Decoder::with_ip(
                bits,
                &bytes[..n],
                linear,
                iced_x86::DecoderOptions::NONE,
            )
            .decode();
            if ins.is_invalid() {
                continue;
            }
            let branch_here = ins.is_jmp_short_or_near() && ins.near_branch_target() == now;
            if ins.next_ip() == now || branch_here {
                self.breakpoints[i].hits += 1;
                return Some(linear);
            }
        }
        None
    }

    /// (port, reads + writes) for the ports "break on I/O" watches.
    fn watched_port_counts(&self) -> Vec<(u16, u64)> {
        self.break_on
            .io_ports
            .iter()
            .map(|p| {
                let (r, w) = self
                    .machine
                    .bus
                    .stats
                    .by_port
                    .get(p)
                    .copied()
                    .unwrap_or((0, 0));
                (*p, r + w)
            })
            .collect()
    }

    pub(super) fn stop(&mut self, reason: StopReason) {
        self.run_state = RunState::Paused;
        self.first_step_of_run = false;
        self.last_stop = Some(reason);
        self.drain_serial();
        self.history.checkpoint(self.position(), &self.machine.cpu);
    }
}

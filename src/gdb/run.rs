//! Running the guest for gdb: single step, continue in slices, breakpoints checked between steps.
//! Teaches: "continue" is "step until a condition holds", and a stub must keep listening for Ctrl-C.
//!
//! With no breakpoint or watchpoint set, `continue` runs the engine in large slices and looks
//! at the socket between them (gdb's Ctrl-C is the single byte 0x03). With any set, it
//! executes one instruction at a time through `Engine::step` and checks before each whether
//! RIP is at a breakpoint and whether the instruction's memory operands touch a watchpoint,
//! looking at the socket every `POLL_EVERY` instructions. Correct on every engine — the
//! interpreter, the translator and KVM (which single-steps with `KVM_GUESTDBG_SINGLESTEP`).

use std::io::Write;

use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Machine, RunLimit};
use gdbstub::common::Signal;
use gdbstub::stub::SingleThreadStopReason;
use gdbstub::target::ext::breakpoints::WatchKind;
use iced_x86::{Decoder, DecoderOptions};

use super::memory::{current_instruction, memory_uses, read_linear};
use crate::engines::{bt_cache_bytes, make_engine, EngineChoice};

/// Instructions per slice while nothing needs checking between instructions.
const FREE_SLICE: u64 = 200_000;
/// KVM's slice of host time while nothing needs checking (it cannot count cheaply).
const KVM_SLICE_NS: u64 = 20_000_000;
/// Instructions between looks at the socket while stepping for breakpoints.
const POLL_EVERY: u32 = 4096;

/// The engine under the debugger. (A debugger's memory writes need no call here: they move the
/// machine's memory epoch, which every engine's caches check.)
pub enum DebugEngine {
    Interp(Box<Interpreter>),
    Bt(Box<BinaryTranslator>),
    /// KVM maps the very RAM the debugger writes.
    Kvm(Box<dyn Engine>),
}

impl DebugEngine {
    pub fn new(
        choice: EngineChoice,
        machine: &Machine,
        notice: &mut dyn FnMut(String),
    ) -> anyhow::Result<Self> {
        Ok(match choice {
            EngineChoice::Interp => DebugEngine::Interp(Box::default()),
            EngineChoice::Bt => DebugEngine::Bt(Box::new(BinaryTranslator::new(bt_cache_bytes()))),
            EngineChoice::Kvm | EngineChoice::Auto => {
                let engine = make_engine(choice, machine, notice)?;
                if engine.name() == "kvm" {
                    DebugEngine::Kvm(engine)
                } else {
                    // `auto` fell back to the interpreter.
                    DebugEngine::Interp(Box::default())
                }
            }
        })
    }

    pub fn get(&mut self) -> &mut dyn Engine {
        match self {
            DebugEngine::Interp(e) => e.as_mut(),
            DebugEngine::Bt(e) => e.as_mut(),
            DebugEngine::Kvm(e) => e.as_mut(),
        }
    }

    fn counts_instructions(&mut self) -> bool {
        self.get().counts_instructions()
    }
}

/// What gdb asked for last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecMode {
    Step,
    Continue,
}

/// A watched range of linear addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watchpoint {
    pub start: u64,
    pub len: u64,
    pub kind: WatchKind,
}

impl Watchpoint {
    fn hit_by(&self, linear: u64, size: u64, read: bool, write: bool) -> bool {
        let wanted = match self.kind {
            WatchKind::Write => write,
            WatchKind::Read => read,
            WatchKind::ReadWrite => read || write,
        };
        wanted
            && linear < self.start.saturating_add(self.len)
            && self.start < linear.saturating_add(size)
    }
}

/// The machine, its engine and what the debugger set on it.
pub struct VmTarget {
    pub machine: Machine,
    pub engine: DebugEngine,
    pub sw_breakpoints: Vec<u64>,
    pub hw_breakpoints: Vec<u64>,
    pub watchpoints: Vec<Watchpoint>,
    pub mode: ExecMode,
    /// Where the guest's serial output goes (stdout in `vmscope run`).
    pub serial: Box<dyn Write>,
    /// How the guest ended, once it has.
    pub finished: Option<Exit>,
}

/// Why `resume` returned.
pub enum RunEvent {
    /// gdb sent something (Ctrl-C, or a packet): the caller reads it.
    IncomingData,
    Stopped(SingleThreadStopReason<u64>),
}

type StepResult = Result<Option<SingleThreadStopReason<u64>>, String>;

impl VmTarget {
    pub fn new(machine: Machine, engine: DebugEngine, serial: Box<dyn Write>) -> Self {
        VmTarget {
            machine,
            engine,
            sw_breakpoints: Vec::new(),
            hw_breakpoints: Vec::new(),
            watchpoints: Vec::new(),
            mode: ExecMode::Continue,
            serial,
            finished: None,
        }
    }

    /// Forwards the guest's serial output.
    pub fn drain_serial(&mut self) {
        let out = self.machine.bus.take_serial_output();
        if !out.is_empty() {
            let _ = self.serial.write_all(&out);
            let _ = self.serial.flush();
        }
    }

    /// Carries out gdb's last step or continue; `incoming` says whether gdb sent data.
    pub fn resume(&mut self, mut incoming: impl FnMut() -> bool) -> Result<RunEvent, String> {
        if let Some(exit) = &self.finished {
            return Ok(RunEvent::Stopped(exited(exit)));
        }
        let event = match self.mode {
            ExecMode::Step => RunEvent::Stopped(
                self.checked_step()?
                    .unwrap_or(SingleThreadStopReason::DoneStep),
            ),
            ExecMode::Continue => self.continue_until(&mut incoming)?,
        };
        self.drain_serial();
        Ok(event)
    }

    // ANCHOR: continue_until
    fn continue_until(&mut self, incoming: &mut impl FnMut() -> bool) -> Result<RunEvent, String> {
        let mut first = true;
        loop {
            let checking = !self.sw_breakpoints.is_empty()
                || !self.hw_breakpoints.is_empty()
                || !self.watchpoints.is_empty();
            if checking {
                for _ in 0..POLL_EVERY {
                    // gdb steps off a breakpoint itself before it continues; the first
                    // instruction is never "at" one, whatever RIP is.
                    if !std::mem::take(&mut first) {
                        if let Some(stop) = self.at_breakpoint() {
                            return Ok(RunEvent::Stopped(stop));
                        }
                    }
                    let interrupts = self.machine.stats.interrupts;
                    if let Some(stop) = self.checked_step()? {
                        return Ok(RunEvent::Stopped(stop));
                    }
                    if self.machine.stats.interrupts != interrupts {
                        if let Some(stop) = self.handler_entry_breakpoint() {
                            return Ok(RunEvent::Stopped(stop));
                        }
                    }
                }
            } else {
                first = false;
                let limit = if self.engine.counts_instructions() {
                    RunLimit::instructions(FREE_SLICE)
                } else {
                    RunLimit::time_ns(KVM_SLICE_NS)
                };
                let exit = self
                    .engine
                    .get()
                    .run(&mut self.machine, limit)
                    .map_err(|e| e.to_string())?;
                if let Some(stop) = self.ended(exit) {
                    return Ok(RunEvent::Stopped(stop));
                }
            }
            self.drain_serial();
            if incoming() {
                return Ok(RunEvent::IncomingData);
            }
        }
    }
    // ANCHOR_END: continue_until

    /// A breakpoint at the current instruction, if any.
    fn at_breakpoint(&self) -> Option<SingleThreadStopReason<u64>> {
        let here = self.machine.cpu.linear_rip();
        if self.sw_breakpoints.contains(&here) {
            Some(SingleThreadStopReason::SwBreak(()))
        } else if self.hw_breakpoints.contains(&here) {
            Some(SingleThreadStopReason::HwBreak(()))
        } else {
            None
        }
    }

    /// A step that delivered a hardware interrupt also ran the handler's first instruction
    /// (delivery is not an instruction of its own), so a breakpoint there was never "before"
    /// us. If one leads to where the CPU is now, stop here — one instruction late, which gdb
    /// sees as a SIGTRAP just past the breakpoint — and say why.
    fn handler_entry_breakpoint(&mut self) -> Option<SingleThreadStopReason<u64>> {
        let now = self.machine.cpu.linear_rip();
        let bits = self.machine.cpu.code_bits();
        let candidates: Vec<u64> = self
            .sw_breakpoints
            .iter()
            .chain(&self.hw_breakpoints)
            .copied()
            .collect();
        for at in candidates {
            let mut bytes = [0u8; 15];
            let n = read_linear(&mut self.machine, at, &mut bytes);
            let ins = Decoder::with_ip(bits, &bytes[..n], at, DecoderOptions::NONE).decode();
            let jumps_here = ins.is_jmp_short_or_near() && ins.near_branch_target() == now;
            if !ins.is_invalid() && (ins.next_ip() == now || jumps_here) {
                eprintln!(
                    "vmscope: breakpoint at {at:#x} was entered by an interrupt: the delivery and \
                     its first instruction are one step, so the guest stops just after it"
                );
                return Some(SingleThreadStopReason::Signal(Signal::SIGTRAP));
            }
        }
        None
    }

    /// One instruction; `Some` when it ended the guest or touched a watchpoint (reported
    /// after the access, as the hardware's data breakpoints trap after the instruction).
    fn checked_step(&mut self) -> StepResult {
        let watched = if self.watchpoints.is_empty() {
            None
        } else {
            current_instruction(&mut self.machine).and_then(|ins| {
                let uses = memory_uses(&ins, &self.machine.cpu);
                self.watchpoints.iter().find_map(|w| {
                    uses.iter()
                        .any(|u| w.hit_by(u.linear, u.size, u.read, u.write))
                        .then_some(*w)
                })
            })
        };
        let exit = self
            .engine
            .get()
            .step(&mut self.machine)
            .map_err(|e| e.to_string())?;
        if let Some(stop) = self.ended(exit) {
            return Ok(Some(stop));
        }
        Ok(watched.map(|w| SingleThreadStopReason::Watch {
            tid: (),
            kind: w.kind,
            addr: w.start,
        }))
    }

    /// The stop reason for an engine exit other than the limit (the guest ended).
    fn ended(&mut self, exit: Exit) -> Option<SingleThreadStopReason<u64>> {
        if exit == Exit::LimitReached {
            return None;
        }
        let stop = exited(&exit);
        self.finished = Some(exit);
        Some(stop)
    }
}

/// gdb's `W` packet carries the status `vmscope run` would exit with.
fn exited(exit: &Exit) -> SingleThreadStopReason<u64> {
    SingleThreadStopReason::Exited(crate::runner::exit_status(exit) as u8)
}

//! Step back: rewinding the guest by re-executing it deterministically from a snapshot.
//! Teaches: an emulator whose only inputs are the image and what the user typed can replay the past exactly.
//!
//! How it works. The interpreter is deterministic (virtual time advances one nanosecond per
//! instruction, devices read only that clock), so the state after `n` instructions depends on
//! nothing but the image and the serial input typed so far, and *when* (at which instruction
//! count) it was typed. To go back to instruction `n`, the session boots a fresh machine from
//! the image — the one snapshot that includes every device — replays the recorded input at
//! the same counts, and runs the interpreter for exactly `n` instructions.
//!
//! Snapshots taken along the way record the CPU state at every stop (each step, each pause).
//! They cannot restart a run on their own — the device models (PIT, PIC, UART, …) cannot be
//! copied yet, so a CPU + RAM snapshot would resume with devices from the wrong time — but
//! they check every replay: arriving at a position with a different CPU state than was seen
//! there means determinism broke, and the user is told instead of being shown a wrong past.
//! Once devices can be snapshotted, replays start at the nearest snapshot instead of power-on.
//!
//! KVM takes its time from the host clock and runs natively, so once KVM has run the past can
//! no longer be replayed: step back is then disabled until the guest is reloaded.

use std::collections::BTreeMap;

use emulator::cpu::CpuState;
use emulator::interp::Interpreter;
use emulator::{Engine as _, Exit, Machine, RunLimit};

use super::control::describe_exit;
use super::{Session, StopReason};

/// CPU-state snapshots kept to verify replays.
const CHECKPOINTS: usize = 4096;

/// What a replay needs: the inputs and whether the past is still deterministic.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Serial input bytes and the instruction count at which they were typed.
    pub inputs: Vec<(u64, Vec<u8>)>,
    /// KVM ran since the guest booted: the past cannot be replayed.
    pub kvm_ran: bool,
    checkpoints: BTreeMap<u64, Box<CpuState>>,
}

impl History {
    pub(super) fn record_input(&mut self, position: u64, bytes: &[u8]) {
        self.inputs.push((position, bytes.to_vec()));
    }

    pub(super) fn mark_nondeterministic(&mut self) {
        self.kvm_ran = true;
        self.checkpoints.clear();
    }

    pub(super) fn checkpoint(&mut self, position: u64, cpu: &CpuState) {
        if self.kvm_ran {
            return;
        }
        if self.checkpoints.len() >= CHECKPOINTS {
            if let Some(first) = self.checkpoints.keys().next().copied() {
                self.checkpoints.remove(&first);
            }
        }
        self.checkpoints.insert(position, Box::new(cpu.clone()));
    }

    /// Number of CPU snapshots held.
    pub fn checkpoints(&self) -> usize {
        self.checkpoints.len()
    }

    /// Drops what happened after `position` (the future we rewound away from).
    fn truncate(&mut self, position: u64) {
        self.inputs.retain(|(p, _)| *p <= position);
        self.checkpoints.retain(|p, _| *p <= position);
    }
}

/// Runs `interp` until exactly `target` instructions have retired.
fn run_exact(
    interp: &mut Interpreter,
    machine: &mut Machine,
    target: u64,
) -> Result<Option<Exit>, String> {
    while machine.stats.instructions < target {
        let left = target - machine.stats.instructions;
        let exit = interp
            .run(machine, RunLimit::instructions(left))
            .map_err(|e| format!("replay failed: {e}"))?;
        if exit != Exit::LimitReached {
            if machine.stats.instructions == target {
                return Ok(Some(exit));
            }
            return Err(format!(
                "replay diverged: the guest {} after {} instructions, before reaching {target}",
                describe_exit(&exit),
                machine.stats.instructions
            ));
        }
    }
    Ok(None)
}

impl Session {
    /// Why step back is impossible now, if it is.
    pub fn step_back_blocker(&self) -> Option<String> {
        if self.is_running() {
            return Some("pause the guest first".into());
        }
        if self.history.kvm_ran {
            return Some(
                "KVM ran this guest: its timing came from the host clock, so the past cannot \
                 be replayed exactly (reload the guest to rewind again)"
                    .into(),
            );
        }
        if self.position() == 0 {
            return Some("already at the first instruction".into());
        }
        None
    }

    /// Goes back `n` instructions (F7 steps back one).
    pub fn step_back(&mut self, n: u64) -> Result<(), String> {
        if let Some(why) = self.step_back_blocker() {
            self.notice = Some(format!("cannot step back: {why}"));
            return Err(why);
        }
        let target = self.position().saturating_sub(n.max(1));
        self.rewind_to(target)
    }

    /// Rebuilds the machine as it was after `target` instructions, by deterministic replay.
    pub fn rewind_to(&mut self, target: u64) -> Result<(), String> {
        if self.history.kvm_ran {
            return Err("KVM ran this guest; the past cannot be replayed".into());
        }
        let (mut machine, _) = self.image.boot()?;
        let mut interp = Interpreter::new();
        let mut serial = Vec::new();
        let mut ended = None;
        for (pos, bytes) in self.history.inputs.iter().filter(|(p, _)| *p <= target) {
            if let Some(exit) = run_exact(&mut interp, &mut machine, *pos)? {
                ended = Some(exit);
            }
            serial.extend(machine.bus.take_serial_output());
            machine.bus.send_serial_input(bytes);
        }
        if let Some(exit) = run_exact(&mut interp, &mut machine, target)? {
            ended = Some(exit);
        }
        serial.extend(machine.bus.take_serial_output());

        let mismatch = self
            .history
            .checkpoints
            .get(&target)
            .is_some_and(|cpu| **cpu != machine.cpu);

        // Swap the new past in. The engines go first: a KVM VM maps the old machine's RAM.
        self.engines.reset_with(interp);
        let old_cpu = std::mem::replace(&mut self.machine, machine).cpu;
        self.prev_cpu = old_cpu;
        self.serial = String::from_utf8_lossy(&serial).into_owned();
        self.recent_writes.clear();
        self.events.rewind(&self.machine, target);
        self.history.truncate(target);
        self.finished = ended;
        self.notice = mismatch.then(|| {
            format!(
                "warning: the replay reached instruction {target} in a different CPU state \
                 than the one recorded there — determinism is broken (please report it)"
            )
        });
        self.stop(StopReason::Rewound { to: target });
        Ok(())
    }
}

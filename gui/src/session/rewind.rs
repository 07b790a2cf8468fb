//! Step back: rewinding the guest by restoring a snapshot and re-executing deterministically.
//! Teaches: an emulator whose only inputs are the image and what the user typed can replay the past exactly.
//!
//! How it works. The interpreter is deterministic (virtual time advances one nanosecond per
//! instruction, devices read only that clock), so the state after `n` instructions depends on
//! nothing but the state at an earlier instruction `s` and the serial input typed in between
//! (and *when*, by instruction count). While the interpreter runs, the session takes a
//! [`MachineSnapshot`] of the whole machine — CPU, RAM, every device, the clock — every
//! [`SNAPSHOT_EVERY`] instructions and keeps the newest [`SNAPSHOT_RING`] of them. To go back to
//! instruction `n`, it restores the newest snapshot at or before `n` (or boots the image afresh
//! when there is none: power-on is the snapshot that is always there), replays the input typed
//! since, and runs the interpreter for exactly the remaining instructions.
//!
//! Choosing N and K. A rewind re-executes at most N instructions: 1,000,000 is ≈ 0.1 s in a
//! release build (≈ 10 M instructions/s) and well under a second in a debug one. A snapshot
//! scans RAM for non-zero pages (a few ms for 64 MiB) once per N instructions — a few per
//! cent of the run's time. Snapshots share the RAM pages that did not change since the one
//! before (`Machine::snapshot_after`), so each costs only the pages the guest rewrote plus the
//! device state: K = 64 covers the last 64 M instructions for a few MiB beyond the guest's own
//! memory. Older targets replay from power-on, as before snapshots existed.
//!
//! CPU states recorded at every stop check every replay: arriving at a position with a different
//! CPU state than was seen there means determinism broke, and the user is told instead of being
//! shown a wrong past.
//!
//! KVM takes its time from the host clock and runs natively, so once KVM has run the past can
//! no longer be replayed: step back is then disabled until the guest is reloaded.

use std::collections::{BTreeMap, VecDeque};

use emulator::cpu::CpuState;
use emulator::interp::Interpreter;
use emulator::machine::MachineSnapshot;
use emulator::{Engine as _, Exit, Machine, RunLimit};

use super::control::describe_exit;
use super::{Session, StopReason};

/// CPU-state snapshots kept to verify replays.
const CHECKPOINTS: usize = 4096;

/// Instructions between two machine snapshots (N).
pub const SNAPSHOT_EVERY: u64 = 1_000_000;
/// Machine snapshots kept (K); the oldest is dropped first.
pub const SNAPSHOT_RING: usize = 64;

/// A machine snapshot with what the session showed at that moment.
#[derive(Debug)]
struct Snapshot {
    position: u64,
    machine: MachineSnapshot,
    /// The serial console's text when the snapshot was taken.
    serial: String,
}

/// Something from outside the guest that a replay must repeat at the same instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestInput {
    /// Bytes typed into the serial console.
    Serial(Vec<u8>),
    /// An edge on the NMI line (the local APIC's LINT1), as from a front-panel NMI button.
    Nmi,
}

impl GuestInput {
    /// Hands the input to the machine's devices.
    pub fn apply(&self, machine: &mut Machine) {
        match self {
            GuestInput::Serial(bytes) => machine.bus.send_serial_input(bytes),
            GuestInput::Nmi => machine.bus.raise_nmi(),
        }
    }
}

/// What a replay needs: snapshots, the inputs and whether the past is still deterministic.
#[derive(Debug)]
pub struct History {
    /// Inputs (typed bytes, NMIs) and the instruction count at which they came.
    pub inputs: Vec<(u64, GuestInput)>,
    /// KVM ran since the guest booted: the past cannot be replayed.
    pub kvm_ran: bool,
    /// N: a machine snapshot is taken once this many instructions passed since the last one.
    pub snapshot_every: u64,
    /// K: how many machine snapshots are kept.
    pub snapshot_ring: usize,
    /// Where the last rewind started: 0 = power-on, else the position of a snapshot.
    pub last_replay_from: Option<u64>,
    /// Why snapshots are off, if a device cannot be snapshotted (replays start at power-on).
    pub snapshot_error: Option<String>,
    snapshots: VecDeque<Snapshot>,
    checkpoints: BTreeMap<u64, Box<CpuState>>,
    /// The machine at power-on, kept when a fresh boot would not reproduce it (its disks hold
    /// what the guest wrote since): rewinds before the oldest snapshot restore this.
    power_on: Option<MachineSnapshot>,
}

impl Default for History {
    fn default() -> Self {
        History {
            inputs: Vec::new(),
            kvm_ran: false,
            snapshot_every: SNAPSHOT_EVERY,
            snapshot_ring: SNAPSHOT_RING,
            last_replay_from: None,
            snapshot_error: None,
            snapshots: VecDeque::new(),
            checkpoints: BTreeMap::new(),
            power_on: None,
        }
    }
}

impl History {
    /// Machine snapshots held, and their positions (oldest first).
    pub fn snapshot_positions(&self) -> Vec<u64> {
        self.snapshots.iter().map(|s| s.position).collect()
    }

    /// Instructions until the next snapshot is due (the free-running engine stops there).
    pub(super) fn until_next_snapshot(&self, position: u64) -> u64 {
        if !self.snapshots_on() {
            return u64::MAX;
        }
        let last = self.snapshots.back().map_or(0, |s| s.position);
        (last + self.snapshot_every.max(1))
            .saturating_sub(position)
            .max(1)
    }

    fn snapshots_on(&self) -> bool {
        !self.kvm_ran && self.snapshot_error.is_none() && self.snapshot_ring > 0
    }

    fn snapshot_due(&self, position: u64) -> bool {
        self.snapshots_on()
            && position
                >= self.snapshots.back().map_or(0, |s| s.position) + self.snapshot_every.max(1)
    }

    /// The newest snapshot at or before `target`.
    fn snapshot_before(&self, target: u64) -> Option<&Snapshot> {
        self.snapshots.iter().rev().find(|s| s.position <= target)
    }

    /// Keeps `machine` (just booted) as the power-on state rewinds start from.
    pub(super) fn keep_power_on(&mut self, machine: &Machine) {
        match machine.snapshot() {
            Ok(snap) => self.power_on = Some(snap),
            Err(e) => self.snapshot_error = Some(e.to_string()),
        }
    }

    pub(super) fn record_input(&mut self, position: u64, input: GuestInput) {
        self.inputs.push((position, input));
    }

    pub(super) fn mark_nondeterministic(&mut self) {
        self.kvm_ran = true;
        self.checkpoints.clear();
        self.snapshots.clear();
        self.power_on = None;
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
        self.snapshots.retain(|s| s.position <= position);
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
    /// Takes a machine snapshot if one is due (the interpreter ran N instructions since the
    /// last). Called by the run loop after each step or slice.
    pub(super) fn snapshot_if_due(&mut self) {
        let position = self.position();
        if !self.history.snapshot_due(position) {
            return;
        }
        self.drain_serial();
        let previous = self.history.snapshots.back().map(|s| &s.machine);
        match self.machine.snapshot_after(previous) {
            Ok(machine) => {
                if self.history.snapshots.len() >= self.history.snapshot_ring {
                    self.history.snapshots.pop_front();
                }
                self.history.snapshots.push_back(Snapshot {
                    position,
                    machine,
                    serial: self.serial.clone(),
                });
            }
            Err(e) => self.history.snapshot_error = Some(e.to_string()),
        }
    }

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
        let start = self.image.start_position();
        if self.position() <= start {
            return Some(if start == 0 {
                "already at the first instruction".into()
            } else {
                format!("already at instruction {start}, where the snapshot file starts")
            });
        }
        if !self.image.disks.is_empty() && self.history.power_on.is_none() {
            let why = self
                .history
                .snapshot_error
                .as_deref()
                .unwrap_or("no power-on state");
            return Some(format!(
                "the machine's disks cannot be rewound ({why}): a replay would read what the \
                 guest wrote later"
            ));
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

    // ANCHOR: rewind_to
    /// Rebuilds the machine as it was after `target` instructions: restores the newest snapshot
    /// at or before it (or boots afresh) and replays deterministically from there.
    pub fn rewind_to(&mut self, target: u64) -> Result<(), String> {
        if self.history.kvm_ran {
            return Err("KVM ran this guest; the past cannot be replayed".into());
        }
        // A guest restored from a snapshot file has no past before the file.
        let target = target.max(self.image.start_position());
        let (mut machine, _) = self.image.boot()?;
        let (from, mut text) = match self.history.snapshot_before(target) {
            Some(snap) => {
                machine
                    .restore(&snap.machine)
                    .map_err(|e| format!("restoring the snapshot at {}: {e}", snap.position))?;
                (snap.position, snap.serial.clone())
            }
            None => {
                if let Some(power_on) = &self.history.power_on {
                    machine
                        .restore(power_on)
                        .map_err(|e| format!("restoring the power-on state: {e}"))?;
                }
                // Power-on: instruction 0, or where a snapshot file started the guest.
                (machine.stats.instructions, String::new())
            }
        };
        let mut interp = Interpreter::new();
        let mut serial = Vec::new();
        let mut ended = None;
        // Input typed at a snapshot's position came after it was taken (snapshots are taken
        // right after instructions run, input arrives between actions), so it is replayed.
        let typed = |p: &u64| *p >= from && *p <= target;
        for (pos, input) in self.history.inputs.iter().filter(|(p, _)| typed(p)) {
            if let Some(exit) = run_exact(&mut interp, &mut machine, *pos)? {
                ended = Some(exit);
            }
            serial.extend(machine.bus.take_serial_output());
            input.apply(&mut machine);
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
        text.push_str(&String::from_utf8_lossy(&serial));
        self.serial = text;
        self.history.last_replay_from = Some(from);
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
    // ANCHOR_END: rewind_to
}

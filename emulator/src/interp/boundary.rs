//! The instruction boundary: device deadlines, NMIs, hardware interrupts and HLT between
//! instructions, and retiring an instruction. Teaches: why interrupts arrive only between
//! instructions, and how two engines that share this code take them at the same one.

use super::{exceptions, vec, Cpu, Fault, R};
use crate::cpu::flags as fl;
use crate::machine::Exit;

/// The next device deadline in virtual time, as the run loops track it.
pub(crate) struct Timing {
    pub deadline: u64,
    /// Device accesses can arm a nearer deadline (a timer register write): re-read it then.
    epoch: u64,
    /// The run's virtual-time limit (`RunLimit::time_ns`): a halted CPU's jump to the next
    /// deadline stops there, so a time-limited run never overshoots it.
    pub time_end: u64,
}

impl Timing {
    pub fn new(cpu: &Cpu, time_end: Option<u64>) -> Self {
        Timing {
            deadline: cpu.m.bus.next_deadline().unwrap_or(u64::MAX),
            epoch: cpu.m.bus.deadline_epoch(),
            time_end: time_end.unwrap_or(u64::MAX),
        }
    }

    /// How many instructions may run before the clock must be brought to a device deadline.
    pub fn instructions_until_deadline(&self, cpu: &Cpu) -> u64 {
        self.deadline.saturating_sub(cpu.now_ns)
    }
}

/// What the CPU does at an instruction boundary.
pub(crate) enum Boundary {
    /// Run the next instruction. `shadowed`: an interrupt shadow (after STI, MOV SS) held
    /// interrupts off for exactly this one instruction.
    Execute {
        shadowed: bool,
    },
    /// An interrupt was delivered or time jumped while halted: look again.
    Again,
    Stop(Exit),
}

// ANCHOR: at_boundary
/// Between instructions: device deadlines, a hardware interrupt if the CPU accepts one, and
/// the halted state. Every engine that counts instructions goes through here, so interrupts
/// arrive at the same instruction in the interpreter and in the translator.
pub(crate) fn at_boundary(cpu: &mut Cpu, timing: &mut Timing) -> Boundary {
    if cpu.m.bus.deadline_epoch() != timing.epoch {
        timing.epoch = cpu.m.bus.deadline_epoch();
        timing.deadline = cpu.m.bus.next_deadline().unwrap_or(u64::MAX);
    }
    if cpu.now_ns >= timing.deadline {
        cpu.sync_clock();
        timing.deadline = cpu.m.bus.next_deadline().unwrap_or(u64::MAX);
    }
    let shadowed = cpu.s().events.interrupt_shadow;
    // ANCHOR: nmi
    // An NMI the local APIC latched becomes pending in the CPU; it is delivered ahead of any
    // maskable interrupt, whatever IF says, unless an NMI handler runs (blocked until IRET) or
    // the instruction before was MOV SS / STI (the shadow blocks NMIs too, as the SDM allows).
    // Only a bus access (or a new run: `bus_touched` starts true) can have latched one.
    if cpu.bus_touched && cpu.m.bus.take_nmi() {
        cpu.st().events.nmi_pending = true;
    }
    let events = cpu.s().events;
    if events.nmi_pending && !events.nmi_blocked && !shadowed {
        let e = &mut cpu.st().events;
        e.nmi_pending = false;
        e.nmi_blocked = true;
        e.halted = false;
        cpu.m.stats.count_exception("NMI");
        cpu.start_rip = cpu.s().rip;
        if let Err(Fault::Stop(exit)) = exceptions::deliver_external(cpu, vec::NMI) {
            return Boundary::Stop(exit);
        }
        return Boundary::Again;
    }
    // ANCHOR_END: nmi
    let can_interrupt = cpu.s().rflags & fl::IF != 0 && !shadowed;
    cpu.st().events.interrupt_shadow = false;
    if can_interrupt && cpu.interrupt_requested() {
        let vector = cpu.m.bus.acknowledge_interrupt();
        cpu.bus_touched = true;
        cpu.m.stats.interrupts += 1;
        cpu.st().events.halted = false;
        cpu.start_rip = cpu.s().rip;
        if let Err(Fault::Stop(exit)) = exceptions::deliver_external(cpu, vector) {
            return Boundary::Stop(exit);
        }
        return Boundary::Again;
    }
    if cpu.s().events.halted {
        if cpu.s().rflags & fl::IF == 0 {
            return Boundary::Stop(Exit::Shutdown);
        }
        // Nothing to do until a device fires: jump virtual time to the next deadline.
        return match cpu.m.bus.next_deadline() {
            Some(d) => {
                cpu.now_ns = cpu.now_ns.max(d.min(timing.time_end));
                cpu.sync_clock();
                timing.deadline = cpu.m.bus.next_deadline().unwrap_or(u64::MAX);
                if !cpu.m.bus.interrupt_pending() && cpu.m.bus.next_deadline().is_none() {
                    return Boundary::Stop(Exit::Shutdown);
                }
                Boundary::Again
            }
            None => Boundary::Stop(Exit::Shutdown),
        };
    }
    Boundary::Execute { shadowed }
}
// ANCHOR_END: at_boundary

/// Completes one instruction's outcome: delivers its exception, counts it (a faulting
/// instruction counts too) and advances virtual time. `Some(exit)` stops the run.
pub(crate) fn retire(cpu: &mut Cpu, result: R<()>) -> Option<Exit> {
    match result {
        Ok(()) => {}
        Err(Fault::Stop(exit)) => {
            cpu.m.stats.instructions += 1;
            cpu.now_ns += 1;
            return Some(exit);
        }
        Err(Fault::Exception {
            vector,
            error_code,
            cr2,
        }) => {
            if let Err(Fault::Stop(exit)) =
                exceptions::deliver_exception(cpu, vector, error_code, cr2)
            {
                return Some(exit);
            }
        }
    }
    cpu.m.stats.instructions += 1;
    cpu.now_ns += 1;
    None
}

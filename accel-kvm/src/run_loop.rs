//! The KVM run loop: enter the guest, take a VM exit, do what the guest asked, enter again.
//! Teaches: what a VM exit is, why each kind happens, and how time and interrupts reach a native guest.
//!
//! `KVM_RUN` runs guest instructions on the real CPU until the guest does something the CPU
//! cannot finish alone. Then the ioctl returns with an *exit reason*; the reasons we see:
//!
//! | exit            | why the guest stopped                                   | what we do                      |
//! |-----------------|---------------------------------------------------------|---------------------------------|
//! | `IoIn`/`IoOut`  | IN/OUT (or INS/OUTS) to a port: devices live here       | `bus.io_in` / `bus.io_out`      |
//! | `MmioRead/Write`| a load/store to a guest-physical address with no RAM    | `bus.mmio_read` / `mmio_write`  |
//! | `Hlt`           | HLT: the CPU waits for an interrupt (we own the PIC)    | sleep until a device deadline   |
//! | `IrqWindowOpen` | we asked to be told when the guest can take an interrupt| inject the PIC's vector         |
//! | `EINTR`         | our kick signal: a device deadline came due             | advance time, maybe inject      |
//! | `Debug`         | single-stepping: one instruction retired                | count it                        |
//! | `Shutdown`      | a triple fault: the CPU gave up                         | report `Exit::TripleFault`      |
//!
//! An I/O exit leaves the instruction half done: for IN, the value we put in the shared `kvm_run`
//! page is copied to the register only on the *next* KVM_RUN. So before we hand the CPU state to
//! anyone else we enter once more with `immediate_exit = 1`: KVM finishes the instruction and
//! returns at once with `EINTR`, without running another guest instruction.

use devices::bus::open_bus;
use devices::MachineEvent;
use emulator::{EngineError, Exit, Machine, RunLimit};
use kvm_bindings::{kvm_interrupt, kvm_run, KVMIO};
use kvm_ioctls::{VcpuExit, VcpuFd};
use vmm_sys_util::ioctl::ioctl_with_ref;

use crate::clock::HostClock;
use crate::engine::{interrupts_enabled, KvmEngine};
use crate::KvmError;

// KVM_INTERRUPT = _IOW(KVMIO, 0x86, struct kvm_interrupt) = 0x4004AE86; kvm-ioctls has no wrapper.
vmm_sys_util::ioctl_iow_nr!(KVM_INTERRUPT, KVMIO, 0x86, kvm_interrupt);

/// What came back from one KVM_RUN, with the borrow of the `kvm_run` page released.
#[derive(Debug)]
enum GuestExit {
    /// Port I/O; the details are read from `kvm_run.io` by [`port_io`].
    PortIo,
    /// An MMIO access, already forwarded to the bus.
    Mmio,
    /// An MMIO read or write still to be forwarded (only between `run_vcpu` and `enter_guest`).
    MmioRead {
        addr: u64,
        len: usize,
    },
    MmioWrite {
        addr: u64,
        len: usize,
        value: u64,
    },
    /// An RDMSR (`value` None) or WRMSR KVM left to us (the local APIC's MSRs), for the bus.
    Msr {
        index: u32,
        value: Option<u64>,
    },
    Hlt,
    IrqWindowOpen,
    /// KVM_RUN returned EINTR: our kick, or `immediate_exit`.
    Interrupted,
    /// A single-step trap; the RIP after the instruction.
    Debug(u64),
    Shutdown,
    Reset,
    /// KVM's instruction emulator could not execute the instruction (its bytes, if known).
    Unemulated(Vec<u8>),
    /// KVM_RUN rejected the guest state (EINVAL).
    Refused(String),
    Failed(String),
}

/// What offering a pending interrupt to the guest did.
enum Offered {
    Nothing,
    Delivered,
    /// Delivering it stopped the machine (a triple fault while the interpreter delivered it).
    Stopped(Exit),
}

/// Counts how far a run has got against its `RunLimit`.
#[derive(Debug, Default)]
struct Budget {
    limit: RunLimit,
    instructions: u64,
    io_accesses: u64,
    /// Virtual time (host time here) at which `limit.time_ns` runs out.
    time_end: Option<u64>,
}

impl Budget {
    /// One instruction retired under single-step: it counts against the limit and in `Stats`
    /// (a stepped KVM run counts exactly, like the emulated engines; a free run cannot).
    fn retire(&mut self, machine: &mut Machine) {
        self.instructions += 1;
        machine.stats.instructions += 1;
    }

    fn exhausted(&self, machine: &Machine) -> bool {
        matches!(self.limit.instructions, Some(n) if self.instructions >= n)
            || matches!(self.limit.io_accesses, Some(n) if self.io_accesses >= n)
            || self.time_end.is_some_and(|end| machine.bus.now_ns() >= end)
    }

    /// The earlier of the next device deadline and the end of the time budget.
    fn wake_at(&self, machine: &Machine) -> Option<u64> {
        match (machine.bus.next_deadline(), self.time_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl KvmEngine {
    /// Runs the guest until the limit, a device event, or an exit that ends the run.
    /// `machine.cpu` has been loaded into the vCPU; the caller reads it back afterwards.
    pub(crate) fn run_loop(
        &mut self,
        machine: &mut Machine,
        limit: RunLimit,
        clock: &HostClock,
        stepping: bool,
    ) -> Result<Exit, EngineError> {
        let mut budget = Budget {
            limit,
            time_end: limit
                .time_ns
                .map(|t| machine.bus.now_ns().saturating_add(t)),
            ..Default::default()
        };
        // Why we will return; set by a device event, the budget, or an exit.
        let mut stop: Option<Exit> = None;
        // The last exit left an I/O or MMIO instruction for KVM to complete.
        let mut unfinished = false;
        // While stepping: where the instruction about to be stepped starts, if known.
        let mut step_from = Some(machine.cpu.rip);

        if self.halted {
            stop = self.wait_for_interrupt(
                machine,
                clock,
                interrupts_enabled(machine.cpu.rflags),
                &budget,
            );
        }
        loop {
            // Device DMA landed in the pages KVM maps: the CPU sees it as is (the in-kernel
            // shadow MMU does not track user-space writes — guests do not DMA into live page
            // tables). The record is for the emulated engines' caches (and a migration's
            // dirty log: KVM's own log does not see writes from user space).
            if machine.bus.has_dma_writes() {
                for w in machine.bus.take_dma_writes() {
                    machine.ram.mark_dirty(w.addr, w.len);
                }
            }
            if stop.is_none() && budget.exhausted(machine) {
                stop = Some(Exit::LimitReached);
            }
            if let Some(exit) = stop {
                if unfinished {
                    if let Some(worse) = self.finish_instruction(machine)? {
                        return Ok(worse);
                    }
                }
                return Ok(exit);
            }

            match self.offer_interrupt(machine, stepping && !unfinished)? {
                Offered::Nothing => {}
                Offered::Delivered => step_from = None, // the next instruction is the handler's
                Offered::Stopped(exit) => return Ok(exit),
            }
            if stepping && step_from.is_none() {
                step_from = self.vcpu.get_regs().ok().map(|r| r.rip);
            }
            // Be kicked out of the guest when the next device deadline comes, even if the
            // guest makes no exit of its own until then.
            let next = budget.wake_at(machine).map(|d| clock.host_instant(d));
            self.kicker.set_deadline(next);

            // ANCHOR: exit_dispatch
            let exit = self.enter_guest(machine);
            machine.stats.uncounted_runs += 1;
            machine.memory_changed_behind_engines(); // the guest ran natively: caches are stale
            self.ready_after_push = None;
            clock.sync(&mut machine.bus, machine.ram.as_mut_slice());
            unfinished = false;
            let stepped_from = step_from.take();

            match exit {
                // (MmioRead/MmioWrite never get here: enter_guest has served them.)
                GuestExit::PortIo
                | GuestExit::Mmio
                | GuestExit::MmioRead { .. }
                | GuestExit::MmioWrite { .. } => {
                    let accesses = if matches!(exit, GuestExit::PortIo) {
                        machine.stats.count_exit("io");
                        self.port_io(machine)?
                    } else {
                        machine.stats.count_exit("mmio");
                        1
                    };
                    budget.io_accesses += accesses;
                    unfinished = true;
                    if stepping {
                        // The I/O instruction retires when KVM completes it. Complete it now, so
                        // it counts as exactly one step on every flavour (VT-x reports a Debug
                        // exit for it, PVM does not).
                        budget.retire(machine);
                        unfinished = false;
                        if let Some(worse) = self.finish_instruction(machine)? {
                            return Ok(worse);
                        }
                    }
                }
                GuestExit::Msr { index, value } => {
                    machine.stats.count_exit("msr");
                    self.platform_msr(machine, index, value)?;
                    unfinished = true; // KVM completes RDMSR/WRMSR on the next entry
                }
                GuestExit::Hlt
                    if stepping
                        && stepped_from.is_some_and(|from| !self.is_hlt_at(machine, from)) =>
                {
                    // Measured on PVM: single-stepping the IRETQ of a handler that woke the CPU
                    // from HLT reports a HLT exit, though the instruction was an IRETQ and the
                    // guest is not halted. Count the step; make sure the vCPU is runnable.
                    machine.stats.count_exit("hlt");
                    budget.retire(machine);
                    self.make_runnable()?;
                }
                GuestExit::Hlt => {
                    machine.stats.count_exit("hlt");
                    if stepping {
                        budget.retire(machine); // HLT retired; no Debug exit follows it
                    }
                    stop = self.halt(machine, clock, &budget);
                }
                GuestExit::IrqWindowOpen => machine.stats.count_exit("irq-window"),
                // ANCHOR_END: exit_dispatch
                GuestExit::Interrupted => machine.stats.count_exit("intr"),
                GuestExit::Debug(rip) => {
                    machine.stats.count_exit("debug");
                    let unfinished_rep =
                        stepped_from == Some(rip) && self.is_rep_string_at(machine, rip);
                    if !unfinished_rep {
                        budget.retire(machine);
                    }
                    step_from = Some(rip);
                    // PVM single-steps over HLT as if it were a NOP; give it its meaning back.
                    if stepped_from.is_some_and(|from| {
                        rip == from.wrapping_add(1) && self.is_hlt_at(machine, from)
                    }) {
                        stop = self.halt(machine, clock, &budget);
                    }
                }
                GuestExit::Shutdown => {
                    machine.stats.count_exit("shutdown");
                    return Ok(Exit::TripleFault {
                        detail: format!(
                            "KVM_EXIT_SHUTDOWN (triple fault) {}",
                            self.where_now(machine)
                        ),
                    });
                }
                GuestExit::Reset => stop = Some(Exit::ResetRequested),
                GuestExit::Unemulated(bytes) => {
                    if self.strict_emulation {
                        return Err(self.unemulated(machine, &bytes));
                    }
                    let (exit, ran) = self.emulate_for_kvm(machine, stepping)?;
                    budget.instructions += ran;
                    if exit != Exit::LimitReached {
                        stop = Some(exit);
                    }
                }
                GuestExit::Refused(why) => {
                    return Err(EngineError::Unsupported(format!(
                        "KVM_RUN refused to enter the guest ({why}) {}",
                        self.where_now(machine)
                    )));
                }
                GuestExit::Failed(detail) => {
                    return Err(EngineError::Host(format!(
                        "{detail} {}",
                        self.where_now(machine)
                    )));
                }
            }

            // A device may have asked for something during that exit (isa-debug-exit, reset).
            if let Some(exit) = take_stop_event(machine) {
                stop.get_or_insert(exit);
            }
        }
    }

    /// Lets KVM complete an I/O or MMIO instruction without running any further guest code:
    /// KVM_RUN with `immediate_exit = 1` finishes the pending operation and returns EINTR.
    /// (String I/O may need more data first; those exits are served on the way.) Returns an exit
    /// only if something worse than the caller's reason happened meanwhile.
    fn finish_instruction(&mut self, machine: &mut Machine) -> Result<Option<Exit>, EngineError> {
        loop {
            let run = self.vcpu.get_kvm_run();
            run.request_interrupt_window = 0;
            run.immediate_exit = 1;
            let exit = self.enter_guest(machine);
            self.vcpu.get_kvm_run().immediate_exit = 0;
            machine.stats.uncounted_runs += 1;
            machine.memory_changed_behind_engines(); // the guest ran natively: caches are stale
            match exit {
                // EINTR: KVM returned before entering the guest; Debug: the completed
                // instruction's single-step trap (VT-x). Either way the instruction has retired.
                GuestExit::Interrupted | GuestExit::Debug(_) => return Ok(None),
                GuestExit::PortIo => {
                    machine.stats.count_exit("io");
                    self.port_io(machine)?;
                }
                GuestExit::Mmio => machine.stats.count_exit("mmio"),
                GuestExit::Shutdown => {
                    return Ok(Some(Exit::TripleFault {
                        detail: format!(
                            "KVM_EXIT_SHUTDOWN (triple fault) {}",
                            self.where_now(machine)
                        ),
                    }))
                }
                other => {
                    return Err(EngineError::Host(format!(
                        "completing an I/O instruction gave {other:?} {}",
                        self.where_now(machine)
                    )))
                }
            }
        }
    }

    /// The CPU halted (HLT retired). With interrupts off nothing can wake it: `Exit::Shutdown`.
    /// Otherwise wait for an interrupt, unless the budget says stop first.
    fn halt(&mut self, machine: &mut Machine, clock: &HostClock, budget: &Budget) -> Option<Exit> {
        self.halted = true;
        let can_wake = self.vcpu.get_kvm_run().if_flag != 0;
        if !can_wake {
            Some(Exit::Shutdown)
        } else if budget.exhausted(machine) {
            Some(Exit::LimitReached)
        } else {
            self.wait_for_interrupt(machine, clock, true, budget)
        }
    }

    /// Leaves the vCPU's multiprocessing state RUNNABLE (not HALTED), so the next KVM_RUN
    /// runs guest code.
    fn make_runnable(&self) -> Result<(), EngineError> {
        let runnable = kvm_bindings::kvm_mp_state {
            mp_state: kvm_bindings::KVM_MP_STATE_RUNNABLE,
        };
        self.vcpu
            .set_mp_state(runnable)
            .map_err(|e| EngineError::Host(format!("KVM_SET_MP_STATE: {e}")))
    }

    /// Is the instruction at `rip` (in the current code segment) a HLT? Used only while stepping.
    fn is_hlt_at(&self, machine: &Machine, rip: u64) -> bool {
        self.code_at(machine, rip).is_some_and(|b| b[0] == 0xF4)
    }

    /// Is the instruction at `rip` a REP-prefixed string instruction? Single-stepping one
    /// traps after every iteration (VT-x) or chunk (KVM's emulator) with RIP unchanged; it
    /// retires once, when RIP moves on — as the emulated engines count it.
    fn is_rep_string_at(&self, machine: &Machine, rip: u64) -> bool {
        let Some(bytes) = self.code_at(machine, rip) else {
            return false;
        };
        let mut rep = false;
        for &b in &bytes {
            match b {
                0xF2 | 0xF3 => rep = true,
                0x66 | 0x67 | 0x26 | 0x2E | 0x36 | 0x3E | 0x64 | 0x65 | 0x40..=0x4F => {}
                0x6C..=0x6F | 0xA4..=0xA7 | 0xAA..=0xAF => return rep,
                _ => return false,
            }
        }
        false
    }

    /// Up to 15 bytes of guest code at `rip` in the current code segment (through the guest's
    /// page tables), or None where they are not in RAM.
    fn code_at(&self, machine: &Machine, rip: u64) -> Option<[u8; 15]> {
        let sregs = self.vcpu.get_sregs().ok()?;
        let long = sregs.efer & emulator::cpu::state::ctl::EFER_LMA != 0 && sregs.cs.l != 0;
        let linear = if long {
            rip
        } else {
            sregs.cs.base.wrapping_add(rip) & 0xFFFF_FFFF
        };
        let physical = if sregs.cr0 & emulator::cpu::state::ctl::CR0_PG != 0 {
            match self.vcpu.translate_gva(linear) {
                Ok(t) if t.valid != 0 => t.physical_address,
                _ => return None,
            }
        } else {
            linear
        };
        // Bytes past the page may be unmapped or elsewhere: only the prefix loop needs them,
        // and a prefix run that long is rare enough to read as "not a REP string".
        let room = (0x1000 - (physical & 0xFFF)).min(15) as usize;
        let mut bytes = [0u8; 15];
        machine.ram.read(physical, &mut bytes[..room]).ok()?;
        Some(bytes)
    }

    /// One KVM_RUN. Port I/O is left in `kvm_run` for [`Self::port_io`]; MMIO is done here.
    fn enter_guest(&mut self, machine: &mut Machine) -> GuestExit {
        // Without an in-kernel APIC, KVM loads CR8 from kvm_run before entry and stores it back
        // after the exit: CR8 is our local APIC's task priority (TPR bits 7:4). A MOV to CR8 by
        // the guest shows as a changed value; the exit itself (an MMIO write to the TPR, say)
        // was served by the bus meanwhile and must not be undone, so compare with what went in.
        let entered = machine.bus.lapic.tpr() >> 4;
        self.vcpu.get_kvm_run().cr8 = entered as u64;
        let exit = self.run_vcpu();
        let cr8 = (self.vcpu.get_kvm_run().cr8 & 0xF) as u8;
        if cr8 != entered {
            machine.bus.lapic.set_tpr(cr8 << 4);
        }
        // Only now, with the guest's CR8 in the APIC, serve an MMIO access (it may read the TPR).
        match exit {
            GuestExit::MmioRead { addr, len } => {
                let value = machine
                    .bus
                    .mmio_read_with(addr, len as u8, machine.ram.as_mut_slice())
                    .unwrap_or_else(|| open_bus(len as u8));
                // The exit was KVM_EXIT_MMIO: `mmio` is the union member KVM reads the first
                // `len` bytes of back. (Assigning a whole union field is safe Rust.)
                self.vcpu.get_kvm_run().__bindgen_anon_1.mmio.data = value.to_le_bytes();
                GuestExit::Mmio
            }
            GuestExit::MmioWrite { addr, len, value } => {
                // Writes nowhere (or to the read-only ROM) are dropped, as on a real bus.
                machine
                    .bus
                    .mmio_write_with(addr, len as u8, value, machine.ram.as_mut_slice());
                GuestExit::Mmio
            }
            other => other,
        }
    }

    /// The KVM_RUN itself, with the exit decoded (MMIO is left for [`Self::enter_guest`]).
    fn run_vcpu(&mut self) -> GuestExit {
        match self.vcpu.run() {
            Ok(VcpuExit::IoIn(..)) | Ok(VcpuExit::IoOut(..)) => GuestExit::PortIo,
            Ok(VcpuExit::MmioRead(addr, data)) => GuestExit::MmioRead {
                addr,
                len: data.len().min(8),
            },
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                let mut bytes = [0u8; 8];
                let n = data.len().min(8);
                bytes[..n].copy_from_slice(&data[..n]);
                GuestExit::MmioWrite {
                    addr,
                    len: n,
                    value: u64::from_le_bytes(bytes),
                }
            }
            Ok(VcpuExit::X86Rdmsr(exit)) => GuestExit::Msr {
                index: exit.index,
                value: None,
            },
            Ok(VcpuExit::X86Wrmsr(exit)) => GuestExit::Msr {
                index: exit.index,
                value: Some(exit.data),
            },
            Ok(VcpuExit::Hlt) => GuestExit::Hlt,
            Ok(VcpuExit::IrqWindowOpen) => GuestExit::IrqWindowOpen,
            Ok(VcpuExit::Intr) => GuestExit::Interrupted,
            Ok(VcpuExit::Debug(arch)) => GuestExit::Debug(arch.pc),
            Ok(VcpuExit::Shutdown) => GuestExit::Shutdown,
            Ok(VcpuExit::SystemEvent(kind, _)) if kind == kvm_bindings::KVM_SYSTEM_EVENT_RESET => {
                GuestExit::Reset
            }
            Ok(VcpuExit::FailEntry(reason, cpu)) => GuestExit::Failed(format!(
                "VM entry failed: hardware reason {reason:#x} on cpu {cpu}"
            )),
            Ok(VcpuExit::InternalError) => self.internal_error(),
            Ok(other) => GuestExit::Failed(format!("unexpected VM exit {other:?}")),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                GuestExit::Interrupted
            }
            // KVM refuses to enter a guest state the host cannot run (e.g. real mode on VT-x
            // without "unrestricted guest").
            Err(e) if e.errno() == libc::EINVAL => GuestExit::Refused(e.to_string()),
            Err(e) => GuestExit::Failed(format!("KVM_RUN failed: {e}")),
        }
    }

    /// Performs the port I/O KVM left in `kvm_run`; returns the number of accesses (for
    /// INS/OUTS KVM batches several iterations into one exit).
    fn port_io(&mut self, machine: &mut Machine) -> Result<u64, EngineError> {
        let (port, size, write, data) = port_io_request(&mut self.vcpu)?;
        let hypercall = machine.pv
            && port == emulator::pv::abi::HYPERCALL_PORT
            && size == 4
            && !write
            && data.len() == 4;
        if hypercall {
            // The dispatcher needs the vCPU's registers: the data slice is taken again after.
            let result = crate::pv_door::hypercall(self, machine)?;
            let (_, _, _, data) = port_io_request(&mut self.vcpu)?;
            data.copy_from_slice(&(result as u32).to_le_bytes());
            return Ok(1);
        }
        let count = data.len() / size;
        for chunk in data.chunks_exact_mut(size) {
            if write {
                let mut bytes = [0u8; 4];
                bytes[..size].copy_from_slice(chunk);
                machine.bus.io_out_with(
                    port,
                    size as u8,
                    u32::from_le_bytes(bytes),
                    machine.ram.as_mut_slice(),
                );
            } else {
                let value = machine
                    .bus
                    .io_in_with(port, size as u8, machine.ram.as_mut_slice());
                chunk.copy_from_slice(&value.to_le_bytes()[..size]);
            }
        }
        Ok(count as u64)
    }

    // ANCHOR: offer_interrupt
    /// Injects the PIC's interrupt if the guest can take it now; otherwise asks KVM for an
    /// "interrupt window" exit, which comes as soon as RFLAGS.IF = 1 and no STI/MOV SS shadow.
    /// Returns whether an interrupt was injected.
    fn offer_interrupt(
        &mut self,
        machine: &mut Machine,
        through_interpreter: bool,
    ) -> Result<Offered, EngineError> {
        // An NMI the local APIC latched: KVM queues it and delivers it when NMIs are unblocked
        // (its own NMI blocking travels in the vCPU events, see `convert::events_to_kvm`).
        if machine.bus.take_nmi() {
            self.vcpu.nmi().map_err(|source| KvmError::Ioctl {
                what: "KVM_NMI",
                source,
            })?;
            machine.stats.count_exception("NMI");
            self.halted = false;
        }
        let pending = machine.bus.interrupt_pending();
        let pushed = self.ready_after_push;
        let run = self.vcpu.get_kvm_run();
        // Right after we loaded a state, kvm_run's flags are stale: judge from the state itself.
        let ready = pushed.unwrap_or(run.ready_for_interrupt_injection != 0 && run.if_flag != 0);
        run.request_interrupt_window = (pending && !ready) as u8;
        if pending && ready {
            let vector = machine.bus.acknowledge_interrupt();
            machine.stats.interrupts += 1;
            self.halted = false;
            if through_interpreter {
                // While single-stepping, KVM keeps RFLAGS.TF set in the vCPU; an interrupt the
                // CPU delivers would push it into the frame, and the handler's IRET would turn
                // stepping on for the guest itself (measured on PVM: a #DB after the IRET).
                // So the interpreter delivers it into the same state, and KVM goes on from there.
                self.pull_state(machine)?;
                let delivered = emulator::interp::Interpreter::new()
                    .deliver_external_interrupt(machine, vector);
                if let Some(exit) = delivered {
                    return Ok(Offered::Stopped(exit));
                }
                self.push_state(machine)?;
                self.set_single_step(true)?;
            } else {
                inject_interrupt(&self.vcpu, vector)?;
            }
            return Ok(Offered::Delivered);
        }
        Ok(Offered::Nothing)
    }
    // ANCHOR_END: offer_interrupt

    /// The CPU is halted with interrupts enabled: sleep on the host until virtual time reaches
    /// the next device deadline, as a real CPU sleeps until the next timer interrupt. Returns
    /// the reason to stop, or `None` once an interrupt is pending (the loop then injects it).
    fn wait_for_interrupt(
        &mut self,
        machine: &mut Machine,
        clock: &HostClock,
        can_wake: bool,
        budget: &Budget,
    ) -> Option<Exit> {
        if !can_wake {
            return Some(Exit::Shutdown);
        }
        self.kicker.set_deadline(None);
        loop {
            clock.sync(&mut machine.bus, machine.ram.as_mut_slice());
            if let Some(exit) = take_stop_event(machine) {
                return Some(exit);
            }
            if machine.bus.interrupt_pending() || machine.bus.nmi_latched() {
                return None;
            }
            // Still halted when the time budget ends: return; the next run waits on.
            if budget
                .time_end
                .is_some_and(|end| machine.bus.now_ns() >= end)
            {
                return Some(Exit::LimitReached);
            }
            // No deadline: nothing in this machine can ever raise an interrupt again.
            if machine.bus.next_deadline().is_none() {
                return Some(Exit::Shutdown);
            }
            let Some(deadline) = budget.wake_at(machine) else {
                return Some(Exit::Shutdown);
            };
            let wake = clock.host_instant(deadline);
            let now = std::time::Instant::now();
            if wake > now {
                std::thread::sleep(wake - now);
            }
        }
    }

    /// "at rip 0x… (32-bit protected mode on KVM (PVM, software))", from the vCPU's current state.
    fn where_now(&self, machine: &Machine) -> String {
        let mut cpu = machine.cpu.clone();
        let rip = match (self.vcpu.get_regs(), self.vcpu.get_sregs()) {
            (Ok(regs), Ok(sregs)) => {
                crate::convert::apply_regs(&mut cpu, &regs);
                crate::convert::apply_sregs(&mut cpu, &sregs);
                format!("{:#x}", regs.rip)
            }
            _ => "unknown".into(),
        };
        format!("at rip {rip} ({} on KVM ({}))", cpu.mode(), self.flavour())
    }

    // ANCHOR: emulate_for_kvm
    /// KVM's instruction emulator gave up on the instruction at RIP (on PVM every guest ring-0
    /// instruction goes through it, and it lacks some: INT3, INT n, x87, protected-mode IRET
    /// in places). The interpreter has the same machine: read the vCPU's state into it, let
    /// the interpreter execute that one instruction (or deliver the event that comes first),
    /// and hand the state back to KVM. Counted as the "emulated-for-kvm" exit in `--stats`.
    /// Returns the interpreter's exit and the instructions it retired (counted in `Stats`
    /// only while stepping, when KVM counts too).
    fn emulate_for_kvm(
        &mut self,
        machine: &mut Machine,
        stepping: bool,
    ) -> Result<(Exit, u64), EngineError> {
        use emulator::Engine as _;
        machine.stats.count_exit("emulated-for-kvm");
        self.pull_state(machine)?;
        // Its caches are stale (KVM wrote guest memory meanwhile): each KVM_RUN bumped the
        // machine's memory epoch, so the interpreter drops them itself.
        let interp = self
            .fallback
            .get_or_insert_with(|| Box::new(emulator::interp::Interpreter::new()));
        let counted = machine.stats.instructions;
        let exit = interp.step(machine)?;
        let ran = machine.stats.instructions - counted;
        if !stepping {
            machine.stats.instructions = counted;
        }
        self.push_state(machine)?;
        Ok((exit, if stepping { ran } else { 0 }))
    }
    // ANCHOR_END: emulate_for_kvm

    /// The error for an instruction KVM's emulator could not execute.
    fn unemulated(&self, machine: &Machine, bytes: &[u8]) -> EngineError {
        let insn = if bytes.is_empty() {
            "(bytes not reported)".to_string()
        } else {
            format!("{bytes:02x?}")
        };
        let hint = if self.flavour() == crate::KvmFlavour::Pvm {
            "; PVM interprets guest ring-0 code with KVM's instruction emulator, which lacks \
             some instructions (measured: protected-mode IRET, INT3, x87 such as FSIN)"
        } else {
            ""
        };
        EngineError::Unsupported(format!(
            "KVM could not emulate the instruction {insn} {}{hint} (--kvm-strict stops here; \
             without it the interpreter runs such an instruction)",
            self.where_now(machine)
        ))
    }

    /// KVM_EXIT_INTERNAL_ERROR. The common one is "emulation failed": KVM's own instruction
    /// emulator met an instruction it does not implement. On PVM all guest ring-0 code goes
    /// through that emulator, so this is how PVM says "this kernel code cannot run here".
    fn internal_error(&mut self) -> GuestExit {
        let run = self.vcpu.get_kvm_run();
        // SAFETY: called only for KVM_EXIT_INTERNAL_ERROR, whose union member is `internal`.
        let internal = unsafe { run.__bindgen_anon_1.internal };
        let n = (internal.ndata as usize).min(internal.data.len());
        let data = &internal.data[..n];
        if internal.suberror == kvm_bindings::KVM_INTERNAL_ERROR_EMULATION {
            return GuestExit::Unemulated(instruction_bytes(data));
        }
        let what = match internal.suberror {
            kvm_bindings::KVM_INTERNAL_ERROR_SIMUL_EX => "exception while delivering an exception",
            kvm_bindings::KVM_INTERNAL_ERROR_DELIVERY_EV => "event delivery failed",
            kvm_bindings::KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON => "unexpected exit reason",
            _ => "unknown",
        };
        GuestExit::Failed(format!(
            "KVM internal error, suberror {} ({what}), data {data:x?}",
            internal.suberror
        ))
    }
}

/// The instruction bytes KVM reports with an emulation failure, if it reports them
/// (flags bit 0 in data[0], then a length byte and up to 15 bytes in data[1..3]).
fn instruction_bytes(data: &[u64]) -> Vec<u8> {
    if data.len() < 3
        || data[0] & u64::from(kvm_bindings::KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)
            == 0
    {
        return Vec::new();
    }
    let mut bytes: Vec<u8> = data[1..3].iter().flat_map(|w| w.to_le_bytes()).collect();
    let len = usize::from(bytes[0]).min(15);
    bytes.remove(0);
    bytes.truncate(len);
    bytes
}

/// The first request devices made (isa-debug-exit, reset) as the `Exit` that reports it.
fn take_stop_event(machine: &mut Machine) -> Option<Exit> {
    let event = machine.bus.take_events().into_iter().next()?;
    Some(match event {
        MachineEvent::DebugExit { value } => Exit::DebugExit {
            value,
            status: event.exit_status().unwrap_or(1),
        },
        MachineEvent::ResetRequested => Exit::ResetRequested,
        MachineEvent::PowerOff => Exit::PowerOff,
    })
}

/// The port I/O request in the shared `kvm_run` page: port, access size, direction, and the data
/// area (size × count bytes; count > 1 for string I/O).
fn port_io_request(vcpu: &mut VcpuFd) -> Result<(u16, usize, bool, &mut [u8]), EngineError> {
    let run: &mut kvm_run = vcpu.get_kvm_run();
    // SAFETY: called only right after KVM_RUN returned KVM_EXIT_IO, so `io` is the union
    // member KVM filled in.
    let io = unsafe { run.__bindgen_anon_1.io };
    let size = io.size as usize;
    if !matches!(size, 1 | 2 | 4) {
        return Err(EngineError::Host(format!(
            "KVM reported port I/O of size {size} at port {:#x}",
            io.port
        )));
    }
    let len = size * io.count as usize;
    let base = run as *mut kvm_run as *mut u8;
    // SAFETY: KVM places the I/O data `data_offset` bytes into the kvm_run mapping it created
    // for this vCPU (the PIO page), `size * count` bytes long; the mapping lives as long as the
    // vCPU, and the returned slice borrows the vCPU mutably, so nothing else touches it.
    let data = unsafe { std::slice::from_raw_parts_mut(base.add(io.data_offset as usize), len) };
    Ok((
        io.port,
        size,
        io.direction as u32 == kvm_bindings::KVM_EXIT_IO_OUT,
        data,
    ))
}

/// KVM_INTERRUPT: queue `vector` for delivery at the next entry (userspace interrupt controller).
fn inject_interrupt(vcpu: &VcpuFd, vector: u8) -> Result<(), KvmError> {
    let irq = kvm_interrupt {
        irq: u32::from(vector),
    };
    // SAFETY: KVM_INTERRUPT reads one `struct kvm_interrupt` from the pointer, which refers to
    // a live local of exactly that type; the fd is a vCPU fd.
    let ret = unsafe { ioctl_with_ref(vcpu, KVM_INTERRUPT(), &irq) };
    if ret < 0 {
        return Err(KvmError::Ioctl {
            what: "KVM_INTERRUPT",
            source: kvm_ioctls::Error::last(),
        });
    }
    Ok(())
}

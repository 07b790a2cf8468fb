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
    Hlt,
    IrqWindowOpen,
    /// KVM_RUN returned EINTR: our kick, or `immediate_exit`.
    Interrupted,
    Debug,
    Shutdown,
    Reset,
    Failed(String),
}

/// Counts how far a run has got against its `RunLimit`.
#[derive(Debug, Default)]
struct Budget {
    limit: RunLimit,
    instructions: u64,
    io_accesses: u64,
}

impl Budget {
    fn exhausted(&self) -> bool {
        matches!(self.limit.instructions, Some(n) if self.instructions >= n)
            || matches!(self.limit.io_accesses, Some(n) if self.io_accesses >= n)
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
            ..Default::default()
        };
        // The reason we will return, once KVM has finished the current instruction.
        let mut stop: Option<Exit> = None;
        // The last exit left an instruction for KVM to complete (I/O or MMIO).
        let mut unfinished = false;

        if self.halted {
            let can_wake = interrupts_enabled(machine.cpu.rflags);
            stop = self.wait_for_interrupt(machine, clock, can_wake);
        }
        loop {
            if stop.is_none() && budget.exhausted() {
                stop = Some(Exit::LimitReached);
            }
            if let Some(exit) = &stop {
                if !unfinished {
                    return Ok(exit.clone());
                }
            }

            // Before entering: offer a pending interrupt, or (when stopping) ask KVM only to
            // complete the instruction in flight.
            if stop.is_none() {
                self.offer_interrupt(machine)?;
            } else {
                let run = self.vcpu.get_kvm_run();
                run.request_interrupt_window = 0;
                run.immediate_exit = 1;
            }

            let exit = self.enter_guest(machine);
            machine.stats.uncounted_runs += 1;
            self.ready_after_push = None;
            self.vcpu.get_kvm_run().immediate_exit = 0;
            clock.sync(&mut machine.bus);
            unfinished = false;

            match exit {
                GuestExit::PortIo => {
                    machine.stats.count_exit("io");
                    budget.io_accesses += self.port_io(machine)?;
                    unfinished = true;
                }
                GuestExit::Mmio => {
                    machine.stats.count_exit("mmio");
                    budget.io_accesses += 1;
                    unfinished = true;
                }
                GuestExit::Hlt => {
                    machine.stats.count_exit("hlt");
                    self.halted = true;
                    if stepping {
                        budget.instructions += 1; // HLT retired; no Debug exit follows it
                    }
                    let can_wake = self.vcpu.get_kvm_run().if_flag != 0;
                    if !can_wake {
                        stop.get_or_insert(Exit::Shutdown);
                    } else if stop.is_none() && !budget.exhausted() {
                        stop = self.wait_for_interrupt(machine, clock, true);
                    }
                }
                GuestExit::IrqWindowOpen => machine.stats.count_exit("irq-window"),
                GuestExit::Interrupted => machine.stats.count_exit("intr"),
                GuestExit::Debug => {
                    machine.stats.count_exit("debug");
                    budget.instructions += 1;
                }
                GuestExit::Shutdown => {
                    machine.stats.count_exit("shutdown");
                    return Ok(Exit::TripleFault {
                        detail: self.triple_fault_detail(machine),
                    });
                }
                GuestExit::Reset => {
                    stop.get_or_insert(Exit::ResetRequested);
                }
                GuestExit::Failed(detail) => {
                    return Err(EngineError::Host(format!(
                        "{} ({}): {detail}",
                        self.rip_note(),
                        self.describe_mode(machine)
                    )));
                }
            }

            // A device may have asked for something during that exit (isa-debug-exit, reset).
            if let Some(exit) = take_stop_event(machine) {
                stop.get_or_insert(exit);
            }

            // Arrange the next kick for the next device deadline.
            let next = machine.bus.next_deadline().map(|d| clock.host_instant(d));
            self.kicker.set_deadline(next);
        }
    }

    /// One KVM_RUN. Port I/O is left in `kvm_run` for [`Self::port_io`]; MMIO is done here.
    fn enter_guest(&mut self, machine: &mut Machine) -> GuestExit {
        match self.vcpu.run() {
            Ok(VcpuExit::IoIn(..)) | Ok(VcpuExit::IoOut(..)) => GuestExit::PortIo,
            Ok(VcpuExit::MmioRead(addr, data)) => {
                let size = data.len();
                let value = machine
                    .bus
                    .mmio_read(addr, size as u8)
                    .unwrap_or_else(|| open_bus(size as u8));
                data.copy_from_slice(&value.to_le_bytes()[..size.min(8)]);
                GuestExit::Mmio
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                let mut bytes = [0u8; 8];
                let n = data.len().min(8);
                bytes[..n].copy_from_slice(&data[..n]);
                // Writes nowhere (or to the read-only ROM) are dropped, as on a real bus.
                machine
                    .bus
                    .mmio_write(addr, n as u8, u64::from_le_bytes(bytes));
                GuestExit::Mmio
            }
            Ok(VcpuExit::Hlt) => GuestExit::Hlt,
            Ok(VcpuExit::IrqWindowOpen) => GuestExit::IrqWindowOpen,
            Ok(VcpuExit::Intr) => GuestExit::Interrupted,
            Ok(VcpuExit::Debug(_)) => GuestExit::Debug,
            Ok(VcpuExit::Shutdown) => GuestExit::Shutdown,
            Ok(VcpuExit::SystemEvent(kind, _)) if kind == kvm_bindings::KVM_SYSTEM_EVENT_RESET => {
                GuestExit::Reset
            }
            Ok(VcpuExit::FailEntry(reason, cpu)) => GuestExit::Failed(format!(
                "VM entry failed: hardware reason {reason:#x} on cpu {cpu}"
            )),
            Ok(VcpuExit::InternalError) => GuestExit::Failed(self.internal_error_detail()),
            Ok(other) => GuestExit::Failed(format!("unexpected VM exit {other:?}")),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                GuestExit::Interrupted
            }
            Err(e) => GuestExit::Failed(format!("KVM_RUN failed: {e}")),
        }
    }

    /// Performs the port I/O KVM left in `kvm_run`; returns the number of accesses (for
    /// INS/OUTS KVM batches several iterations into one exit).
    fn port_io(&mut self, machine: &mut Machine) -> Result<u64, EngineError> {
        let (port, size, write, data) = port_io_request(&mut self.vcpu)?;
        let count = data.len() / size;
        for chunk in data.chunks_exact_mut(size) {
            if write {
                let mut bytes = [0u8; 4];
                bytes[..size].copy_from_slice(chunk);
                machine
                    .bus
                    .io_out(port, size as u8, u32::from_le_bytes(bytes));
            } else {
                let value = machine.bus.io_in(port, size as u8);
                chunk.copy_from_slice(&value.to_le_bytes()[..size]);
            }
        }
        Ok(count as u64)
    }

    /// Injects the PIC's interrupt if the guest can take it now; otherwise asks KVM for an
    /// "interrupt window" exit, which comes as soon as RFLAGS.IF = 1 and no STI/MOV SS shadow.
    fn offer_interrupt(&mut self, machine: &mut Machine) -> Result<(), EngineError> {
        let pending = machine.bus.interrupt_pending();
        let pushed = self.ready_after_push;
        let run = self.vcpu.get_kvm_run();
        // Right after we loaded a state, kvm_run's flags are stale: judge from the state itself.
        let ready = pushed.unwrap_or(run.ready_for_interrupt_injection != 0 && run.if_flag != 0);
        run.request_interrupt_window = (pending && !ready) as u8;
        if pending && ready {
            let vector = machine.bus.acknowledge_interrupt();
            inject_interrupt(&self.vcpu, vector)?;
            machine.stats.interrupts += 1;
            self.halted = false;
        }
        Ok(())
    }

    /// The CPU is halted with interrupts enabled: sleep on the host until virtual time reaches
    /// the next device deadline, as a real CPU sleeps until the next timer interrupt. Returns
    /// the reason to stop, or `None` once an interrupt is pending (the loop then injects it).
    fn wait_for_interrupt(
        &mut self,
        machine: &mut Machine,
        clock: &HostClock,
        can_wake: bool,
    ) -> Option<Exit> {
        if !can_wake {
            return Some(Exit::Shutdown);
        }
        self.kicker.set_deadline(None);
        loop {
            clock.sync(&mut machine.bus);
            if let Some(exit) = take_stop_event(machine) {
                return Some(exit);
            }
            if machine.bus.interrupt_pending() {
                return None;
            }
            // No deadline: nothing in this machine can ever raise an interrupt again.
            let Some(deadline) = machine.bus.next_deadline() else {
                return Some(Exit::Shutdown);
            };
            let wake = clock.host_instant(deadline);
            let now = std::time::Instant::now();
            if wake > now {
                std::thread::sleep(wake - now);
            }
        }
    }

    fn triple_fault_detail(&mut self, machine: &Machine) -> String {
        format!(
            "KVM_EXIT_SHUTDOWN (triple fault) {} ({})",
            self.rip_note(),
            self.describe_mode(machine)
        )
    }

    fn rip_note(&self) -> String {
        match self.vcpu.get_regs() {
            Ok(r) => format!("at rip {:#x}", r.rip),
            Err(_) => "at an unknown rip".into(),
        }
    }

    fn internal_error_detail(&mut self) -> String {
        let run = self.vcpu.get_kvm_run();
        // SAFETY: called only for KVM_EXIT_INTERNAL_ERROR, whose union member is `internal`.
        let internal = unsafe { run.__bindgen_anon_1.internal };
        let n = (internal.ndata as usize).min(internal.data.len());
        format!(
            "KVM internal error, suberror {} ({}), data {:x?}",
            internal.suberror,
            match internal.suberror {
                1 => "instruction emulation failed",
                2 => "simultaneous exceptions",
                3 => "delivery event",
                4 => "unexpected exit reason",
                _ => "unknown",
            },
            &internal.data[..n]
        )
    }
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

//! KVM's side of paravirtualization: the hypercall door as a port-I/O exit, and kvmclock handed over.
//! Teaches: under KVM a hypercall costs one exit to user space, and a VMM outside the kernel
//! cannot touch the guest's TLB — it can only ask KVM to rebuild its view of the page tables.
//!
//! `in %dx, %eax` on the hypercall port exits to us as KVM_EXIT_IO; we read the registers,
//! run the shared dispatcher and put the result where KVM completes the IN. Page-table writes
//! go straight into guest RAM. Where KVM shadows the guest's tables itself (PVM, or any host
//! without EPT/NPT), it does not notice writes from user space, so after a batch we reload
//! the vCPU's control registers, which makes KVM drop its shadow of them (KVM_SET_SREGS); with
//! hardware paging (EPT/NPT) that costs a TLB flush and nothing else.
//!
//! kvmclock lives in the host kernel: once the MSR holds the structure's address KVM keeps it
//! up to date. When KVM takes the clock over from an emulated engine, its clock is set to the
//! time the guest has seen so far (KVM_SET_CLOCK); when it gives the clock back, the latest
//! time the guest could have read is recorded, so the next publisher never starts below it.

use emulator::pv::kvmclock::{self, Publisher};
use emulator::pv::{self, Door, HypercallRegs, PvHost};
use emulator::{EngineError, Machine};
use kvm_bindings::kvm_clock_data;

use crate::engine::KvmEngine;

/// The machine, and whether a batch changed what KVM's view of the page tables must show.
struct KvmHost<'a> {
    machine: &'a mut Machine,
    tables_changed: bool,
}

impl PvHost for KvmHost<'_> {
    fn machine(&mut self) -> &mut Machine {
        self.machine
    }
    fn write_pte(&mut self, addr: u64, value: u64) {
        // In RAM: the dispatcher checked the address. The same memory is the guest's.
        let _ = self.machine.ram.write_le(addr, 8, value);
        self.tables_changed = true;
    }
    fn invlpg(&mut self, _linear: u64) {
        self.tables_changed = true;
    }
    fn flush_tlb(&mut self) {
        self.tables_changed = true;
    }
}

/// Serves a hypercall exit; returns the value for EAX.
pub(crate) fn hypercall(engine: &mut KvmEngine, machine: &mut Machine) -> Result<i32, EngineError> {
    let r = engine
        .vcpu
        .get_regs()
        .map_err(|e| EngineError::Host(format!("KVM_GET_REGS for a hypercall: {e}")))?;
    let regs = HypercallRegs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rsi: r.rsi,
        rdi: r.rdi,
    };
    let mut host = KvmHost {
        machine,
        tables_changed: false,
    };
    let result = pv::dispatch(&mut host, Door::Port, &regs);
    if host.tables_changed {
        // Loading the same control registers again makes KVM forget its shadow of the guest's
        // page tables (and flush the guest's TLB): the only TLB operation user space has.
        let sregs = engine
            .vcpu
            .get_sregs()
            .map_err(|e| EngineError::Host(format!("KVM_GET_SREGS: {e}")))?;
        engine
            .vcpu
            .set_sregs(&sregs)
            .map_err(|e| EngineError::Host(format!("KVM_SET_SREGS: {e}")))?;
        host.machine.stats.count_exit("pv-tlb-reload");
    }
    Ok(result)
}

impl KvmEngine {
    /// Before a run: if kvmclock is on and an emulated engine published it last, start KVM's
    /// clock at the guest time reached so far.
    pub(crate) fn adopt_kvmclock(&mut self, machine: &mut Machine) -> Result<(), EngineError> {
        if !machine.pv || machine.kvmclock.publisher == Publisher::Kvm {
            return Ok(());
        }
        if kvmclock::enabled_at(&machine.ram, machine.cpu.msrs.kvm_system_time).is_none() {
            return Ok(());
        }
        let clock = &mut machine.kvmclock;
        let now = machine.bus.now_ns() + clock.offset_ns;
        let start = now.max(clock.floor_ns);
        let data = kvm_clock_data {
            clock: start,
            ..Default::default()
        };
        self.vm()
            .set_clock(&data)
            .map_err(|e| EngineError::Host(format!("KVM_SET_CLOCK: {e}")))?;
        clock.publisher = Publisher::Kvm;
        Ok(())
    }

    /// After a run: the latest kvmclock time the guest could have read (from the structure KVM
    /// keeps and the guest TSC now), for whichever engine publishes next.
    pub(crate) fn record_kvmclock_floor(&self, machine: &mut Machine, guest_tsc: u64) {
        if !machine.pv || machine.kvmclock.publisher != Publisher::Kvm {
            return;
        }
        let Some(addr) = kvmclock::enabled_at(&machine.ram, machine.cpu.msrs.kvm_system_time)
        else {
            return;
        };
        if let Some(info) = kvmclock::read(&machine.ram, addr) {
            if info.version % 2 == 0 && info.mul != 0 {
                let seen = info.time_at(guest_tsc);
                machine.kvmclock.floor_ns = machine.kvmclock.floor_ns.max(seen);
            }
        }
    }
}

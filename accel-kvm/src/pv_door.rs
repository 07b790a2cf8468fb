//! KVM's side of paravirtualization: the hypercall door as a port-I/O exit, and kvmclock handed over.
//! Teaches: under KVM a hypercall costs one exit to user space, and a VMM outside the kernel
//! cannot touch the guest's TLB — it can only ask KVM to rebuild its view of the page tables.
//!
//! `in %dx, %eax` on the hypercall port exits to us as KVM_EXIT_IO; we read the registers,
//! run the shared dispatcher and put the result where KVM completes the IN.
//!
//! Page-table batches work only where KVM walks the guest's tables in hardware (EPT/NPT):
//! the entries go straight into guest RAM, and since user space cannot INVLPG for the guest,
//! KVM is made to flush the guest's TLB (KVM_SET_SREGS with a paging bit toggled and
//! restored). Where KVM shadows the tables in the kernel (PVM here, or `ept=N`) it
//! write-protects them against the guest's stores but cannot see ours — measured: a batch
//! written from user space left KVM's shadow stale. There the interface is not offered
//! (`vm::install_cpuid_with`): the guest keeps its native page-table code, whose writes KVM
//! traps and emulates in the kernel — the paravirtual idea belongs inside the kernel's MMU.
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
    hardware_paging: bool,
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
    fn can_update_page_tables(&self) -> bool {
        self.hardware_paging
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
        hardware_paging: engine.hardware_paging,
    };
    let result = pv::dispatch(&mut host, Door::Port, &regs);
    if host.tables_changed {
        reset_kvm_mmu(engine)?;
        host.machine.stats.kvm_mmu_resets += 1;
    }
    Ok(result)
}

/// Makes KVM drop its view of the guest's page tables (its shadow pages, or the guest TLB
/// entries it caches): the only TLB operation user space has. KVM resets its MMU context when
/// KVM_SET_SREGS changes a paging control bit, so CR4.PGE is toggled and restored (loading the
/// same values again would change nothing and reset nothing).
fn reset_kvm_mmu(engine: &mut KvmEngine) -> Result<(), EngineError> {
    let host = |what: &str, e: kvm_ioctls::Error| EngineError::Host(format!("{what}: {e}"));
    let sregs = engine
        .vcpu
        .get_sregs()
        .map_err(|e| host("KVM_GET_SREGS", e))?;
    let mut toggled = sregs;
    toggled.cr4 ^= emulator::cpu::state::ctl::CR4_PGE;
    engine
        .vcpu
        .set_sregs(&toggled)
        .map_err(|e| host("KVM_SET_SREGS", e))?;
    engine
        .vcpu
        .set_sregs(&sregs)
        .map_err(|e| host("KVM_SET_SREGS", e))
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
        if machine.kvmclock.publisher == Publisher::Nobody {
            // Enabled, but nobody published before us: KVM's clock is the only one there is.
            machine.kvmclock.publisher = Publisher::Kvm;
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
        if !machine.pv || machine.kvmclock.publisher == Publisher::Emulated {
            return;
        }
        let Some(addr) = kvmclock::enabled_at(&machine.ram, machine.cpu.msrs.kvm_system_time)
        else {
            return;
        };
        // The guest may have enabled kvmclock during this run: then KVM's kernel published it,
        // and the next run must not set KVM's clock back to the machine's.
        machine.kvmclock.publisher = Publisher::Kvm;
        if let Some(info) = kvmclock::read(&machine.ram, addr) {
            if info.version % 2 == 0 && info.mul != 0 {
                let seen = info.time_at(guest_tsc);
                machine.kvmclock.floor_ns = machine.kvmclock.floor_ns.max(seen);
            }
        }
    }
}

//! The emulated engines' side of paravirtualization: the hypercall door and the kvmclock MSRs.
//! Teaches: under emulation a hypercall is just an instruction the emulator treats specially,
//! and a batch of page-table writes can update the shadow without one trap per entry.
//!
//! `in %dx, %eax` on [`abi::HYPERCALL_PORT`] (and VMCALL) reach [`hypercall`] instead of the
//! bus when `Machine::pv` is on. The writes a batch makes go through `Cpu::phys_write`, as the
//! guest's own stores do (decoded and translated code stay right), and the MMU is told which
//! entries changed — the write-protect trap a shadow-paging VMM would take is not needed.

use super::{Cpu, R};
use crate::cpu::state::reg;
use crate::machine::Machine;
use crate::pv::kvmclock::{self, Publisher};
use crate::pv::{abi, Door, HypercallRegs, PvHost};

// ANCHOR: pv_host
impl PvHost for Cpu<'_> {
    fn machine(&mut self) -> &mut Machine {
        self.m
    }

    fn write_pte(&mut self, addr: u64, value: u64) {
        self.phys_write(addr, 8, value);
        if self.mmu.pv_entry_written(addr) {
            self.m.stats.mmu.pv_traps_avoided += 1;
        }
    }

    fn invlpg(&mut self, linear: u64) {
        self.mmu.invlpg(&mut self.m.stats, linear);
    }

    fn flush_tlb(&mut self) {
        self.mmu.flush(&mut self.m.stats, true);
    }
}
// ANCHOR_END: pv_host

// ANCHOR: door
/// Is this IN a hypercall rather than a device access?
pub(crate) fn is_hypercall_port(cpu: &Cpu, port: u16, size: u32) -> bool {
    cpu.m.pv && port == abi::HYPERCALL_PORT && size == 4
}

/// Runs the hypercall in RAX with its arguments, result in EAX (zero-extended into RAX).
pub(crate) fn hypercall(cpu: &mut Cpu, door: Door) -> R<()> {
    let regs = HypercallRegs {
        rax: cpu.gpr(reg::RAX, 8),
        rbx: cpu.gpr(reg::RBX, 8),
        rcx: cpu.gpr(reg::RCX, 8),
        rsi: cpu.gpr(reg::RSI, 8),
        rdi: cpu.gpr(reg::RDI, 8),
    };
    cpu.sync_clock();
    cpu.m.stats.count_exit("hypercall");
    let result = crate::pv::dispatch(cpu, door, &regs);
    cpu.set_gpr(reg::RAX, 4, result as u32 as u64);
    // A console write reached the UART's side of the bus; a batch may have changed mappings.
    cpu.bus_touched = true;
    cpu.end_block = true;
    Ok(())
}
// ANCHOR_END: door

/// RDMSR of a kvmclock MSR (only with PV on): the value last written.
pub(crate) fn read_msr(cpu: &Cpu, index: u32) -> Option<u64> {
    let m = &cpu.s().msrs;
    match index {
        kvmclock::MSR_SYSTEM_TIME if cpu.m.pv => Some(m.kvm_system_time),
        kvmclock::MSR_WALL_CLOCK if cpu.m.pv => Some(m.kvm_wall_clock),
        _ => None,
    }
}

/// WRMSR of a kvmclock MSR (only with PV on): registers the structure and publishes into it.
/// Returns false for any other MSR.
pub(crate) fn write_msr(cpu: &mut Cpu, index: u32, value: u64) -> bool {
    match index {
        kvmclock::MSR_SYSTEM_TIME if cpu.m.pv => {
            cpu.st().msrs.kvm_system_time = value;
            cpu.m.kvmclock.publisher = Publisher::Nobody;
            adopt_kvmclock(cpu);
            true
        }
        kvmclock::MSR_WALL_CLOCK if cpu.m.pv => {
            cpu.st().msrs.kvm_wall_clock = value;
            let epoch = devices::cmos::DEFAULT_START_UNIX_SECONDS as u64 * 1_000_000_000;
            kvmclock::publish_wall_clock(&mut cpu.m.ram, value, epoch);
            cpu.code.note_write(value, 12);
            true
        }
        _ => false,
    }
}

/// At the start of a run: if kvmclock is on and another engine (KVM) published it last, publish
/// the emulated clock — never behind what the guest could already have read.
pub(crate) fn adopt_kvmclock(cpu: &mut Cpu) {
    if !cpu.m.pv || cpu.m.kvmclock.publisher == Publisher::Emulated {
        return;
    }
    let Some(addr) = kvmclock::enabled_at(&cpu.m.ram, cpu.s().msrs.kvm_system_time) else {
        return;
    };
    let now = cpu.now_ns;
    let tsc = cpu.tsc();
    let clock = &mut cpu.m.kvmclock;
    clock.offset_ns = clock.offset_ns.max(clock.floor_ns.saturating_sub(now));
    let time = now + clock.offset_ns;
    clock.publisher = Publisher::Emulated;
    kvmclock::publish_emulated(&mut cpu.m.ram, addr, tsc, time);
    // The structure is guest memory: code caches must hear of the write like of any other.
    cpu.code.note_write(addr, kvmclock::TIME_INFO_SIZE as u32);
}

//! `CpuState` through a real vCPU and back: what goes in must come out.
//! Teaches: KVM keeps every piece of state we hand it — or tells us which piece it normalized.

mod common;

use accel_kvm::state::{self, StateCaps};
use accel_kvm::vm;
use common::*;
use emulator::cpu::state::{ctl, reg, CpuState, Seg, Segment};
use emulator::{Engine, Exit, RunLimit};
use kvm_ioctls::Kvm;

/// A long-mode state with something unusual in most fields.
fn busy_long_mode_state() -> CpuState {
    let m = long_mode_machine(&[0xF4], CODE, CODE);
    let mut cpu = m.cpu.clone();
    for (i, r) in cpu.gpr.iter_mut().enumerate() {
        *r = 0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 1) ^ 0xA5;
    }
    cpu.gpr[reg::RSP] = STACK_TOP - 0x40;
    cpu.rip = CODE + 0x123;
    cpu.rflags = 0x2 | 0x1 | 0x4 | 0x40 | 0x80 | 0x800; // CF PF ZF SF OF, IF clear
    cpu.seg[Seg::Fs as usize].base = 0x7FFF_1234_5000;
    cpu.seg[Seg::Gs as usize].base = 0xFFFF_8000_0000_1000;
    cpu.cr2 = 0xFFFF_8000_DEAD_0000;
    cpu.cr4 |= ctl::CR4_OSFXSR | ctl::CR4_OSXMMEXCPT | ctl::CR4_PGE;
    cpu.efer |= ctl::EFER_SCE | ctl::EFER_NXE;
    cpu.msrs.star = 0x0023_0010_0000_0000;
    cpu.msrs.lstar = 0xFFFF_8000_0010_0000;
    cpu.msrs.cstar = 0xFFFF_8000_0020_0000;
    cpu.msrs.fmask = 0x4700;
    cpu.msrs.kernel_gs_base = 0xFFFF_8800_0000_0000;
    cpu.msrs.sysenter_cs = 0x10;
    cpu.msrs.sysenter_esp = 0x9_F000;
    cpu.msrs.sysenter_eip = 0x10_2000;
    cpu.msrs.pat = 0x0007_0406_0007_0106;
    cpu.dr[0] = 0x1000;
    cpu.dr[3] = 0x4000;
    cpu.tr = Segment {
        selector: 0x28,
        base: 0x3000,
        limit: 0x67,
        type_: 0xB,
        present: true,
        ..Default::default()
    };
    let fx = &mut cpu.fpu.fxsave;
    fx[0..2].copy_from_slice(&0x027Fu16.to_le_bytes()); // FCW
    fx[24..28].copy_from_slice(&0x1FA0u32.to_le_bytes()); // MXCSR
    for i in 0..16 {
        fx[160 + 16 * 2 + i] = 0x11 * i as u8; // XMM2
        fx[160 + 16 * 15 + i] = 0xF0 | i as u8; // XMM15
    }
    cpu.events.interrupt_shadow = true;
    cpu
}

/// Fields KVM may legitimately keep differently (bytes of the FXSAVE image it does not carry,
/// DR4/DR5 which are aliases) are made equal before comparing.
fn comparable(mut cpu: CpuState) -> CpuState {
    cpu.fpu.fxsave[28..32].fill(0); // MXCSR_MASK
    cpu.fpu.fxsave[416..].fill(0);
    cpu.dr[4] = cpu.dr[6];
    cpu.dr[5] = cpu.dr[7];
    cpu
}

#[test]
fn cpu_state_round_trips_through_a_real_vcpu() {
    if !kvm_or_skip("cpu_state_round_trips_through_a_real_vcpu") {
        return;
    }
    let kvm = Kvm::new().unwrap();
    let vmfd = kvm.create_vm().unwrap();
    let vcpu = vmfd.create_vcpu(0).unwrap();
    vm::install_cpuid(&kvm, &vcpu).unwrap();
    let host = vm::host_msr_list(&kvm).unwrap();
    let (msrs, _) = vm::carried_msrs(&host);
    let caps = StateCaps::probe(&kvm, msrs, &host);

    let cpu = busy_long_mode_state();
    state::push(&vcpu, &cpu, &caps, None).unwrap();
    let mut back = CpuState::reset();
    state::pull(&vcpu, &mut back, &caps).unwrap();
    if !caps.msrs.contains(&emulator::cpu::state::msr::IA32_TSC_AUX) {
        back.msrs.tsc_aux = cpu.msrs.tsc_aux; // not carried by this host (reported as a note)
    }
    assert_eq!(comparable(back), comparable(cpu));
}

#[test]
fn a_zero_instruction_run_hands_back_the_same_state() {
    if !kvm_or_skip("a_zero_instruction_run_hands_back_the_same_state") {
        return;
    }
    let mut m = long_mode_machine(&[0xF4], CODE, CODE);
    m.cpu = busy_long_mode_state();
    let before = m.cpu.clone();
    let mut kvm = engine(&m);
    assert_eq!(
        kvm.run(&mut m, RunLimit::instructions(0)).unwrap(),
        Exit::LimitReached
    );
    assert_eq!(m.stats.uncounted_runs, 0, "the guest was never entered");
    let mut after = m.cpu.clone();
    after.msrs.tsc_aux = before.msrs.tsc_aux;
    assert_eq!(comparable(after), comparable(before));
}

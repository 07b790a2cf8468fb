//! The local APIC's MSRs under KVM: IA32_APIC_BASE, IA32_TSC_DEADLINE and x2APIC 0x800–0x8FF.
//! Teaches: MSR filtering — how a VMM without KVM's in-kernel APIC still owns the APIC's MSRs,
//! by asking KVM to exit to user space on exactly those and answering from its own device model.
//!
//! Without an in-kernel local APIC, KVM refuses the x2APIC MSRs (#GP) and silently ignores
//! IA32_TSC_DEADLINE and IA32_APIC_BASE. `KVM_CAP_X86_USER_SPACE_MSR` turns MSR accesses into
//! `KVM_EXIT_X86_RDMSR/WRMSR` for three reasons we enable: FILTER (our MSR filter denies 0x1B and
//! 0x6E0), INVAL (KVM would raise #GP: the x2APIC range, which KVM never lets a filter cover)
//! and UNKNOWN (an MSR KVM does not know). The run loop hands each to `Bus::msr_read/msr_write`
//! — the same local APIC the interpreter uses — and sets `error = 1` (#GP) where the bus says no,
//! so other unknown MSRs fault just as before. Measured: PVM supports both capabilities.
//!
//! One translation is needed: the guest's TSC ticks at the host's rate unless KVM can scale it,
//! while the device model counts TSC-deadline time in virtual nanoseconds. A deadline written
//! by the guest is converted with the guest's current TSC and its frequency; reads give back
//! what the guest wrote (or 0 once the timer fired).

use emulator::{EngineError, Machine};
use kvm_bindings::{
    kvm_enable_cap, kvm_msr_entry, Msrs, KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_FILTER,
    KVM_MSR_EXIT_REASON_INVAL, KVM_MSR_EXIT_REASON_UNKNOWN,
};
use kvm_ioctls::{Cap, Kvm, MsrFilterDefaultAction, MsrFilterRange, MsrFilterRangeFlags, VmFd};

use crate::engine::KvmEngine;

const IA32_APIC_BASE: u32 = 0x1B;
const IA32_TSC: u32 = 0x10;
const IA32_TSC_DEADLINE: u32 = 0x6E0;
const X2APIC_FIRST: u32 = 0x800;
const X2APIC_COUNT: u32 = 0x100;

/// Asks KVM to exit to user space for the APIC's MSRs. `Err` says why it cannot (the engine
/// then hides x2APIC and TSC-deadline from CPUID, so no guest relies on them).
pub(crate) fn route_apic_msrs(kvm: &Kvm, vm: &VmFd) -> Result<(), String> {
    if !kvm.check_extension(Cap::X86UserSpaceMsr) || !kvm.check_extension(Cap::X86MsrFilter) {
        return Err("KVM lacks KVM_CAP_X86_USER_SPACE_MSR or KVM_CAP_X86_MSR_FILTER".into());
    }
    let cap = kvm_enable_cap {
        cap: KVM_CAP_X86_USER_SPACE_MSR,
        args: [
            (KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_UNKNOWN)
                as u64,
            0,
            0,
            0,
        ],
        ..Default::default()
    };
    vm.enable_cap(&cap)
        .map_err(|e| format!("enabling user-space MSR exits failed: {e}"))?;
    // A filter bitmap bit of 0 denies the MSR, which (with exit reason FILTER) means "exit".
    let deny = [0u8; (X2APIC_COUNT / 8) as usize];
    let both = MsrFilterRangeFlags::READ | MsrFilterRangeFlags::WRITE;
    let ranges = [
        MsrFilterRange {
            flags: both,
            base: X2APIC_FIRST,
            msr_count: X2APIC_COUNT,
            bitmap: &deny,
        },
        MsrFilterRange {
            flags: both,
            base: IA32_TSC_DEADLINE,
            msr_count: 1,
            bitmap: &deny,
        },
        MsrFilterRange {
            flags: both,
            base: IA32_APIC_BASE,
            msr_count: 1,
            bitmap: &deny,
        },
    ];
    vm.set_msr_filter(MsrFilterDefaultAction::ALLOW, &ranges)
        .map_err(|e| format!("KVM_X86_SET_MSR_FILTER failed: {e}"))
}

impl KvmEngine {
    /// Serves one filtered RDMSR (`value` = None) or WRMSR from the bus, and leaves the answer
    /// in `kvm_run` for KVM to complete the instruction with on the next entry.
    pub(crate) fn platform_msr(
        &mut self,
        machine: &mut Machine,
        index: u32,
        value: Option<u64>,
    ) -> Result<(), EngineError> {
        let result = match value {
            Some(v) => {
                let v = if index == IA32_TSC_DEADLINE {
                    self.guest_tsc_deadline = v;
                    self.deadline_in_virtual_ns(machine, v)
                } else {
                    v
                };
                let r = machine.bus.msr_write(index, v).map(|r| r.map(|()| 0));
                if index == IA32_APIC_BASE {
                    machine.cpu.msrs.apic_base = machine.bus.lapic.apic_base();
                }
                r
            }
            None => machine.bus.msr_read(index).map(|r| {
                r.map(|v| match (index, v) {
                    (IA32_TSC_DEADLINE, 0) => 0,
                    (IA32_TSC_DEADLINE, _) => self.guest_tsc_deadline,
                    _ => v,
                })
            }),
        };
        // Not an APIC MSR (the filter should not have sent it) or refused: #GP, like hardware.
        let (error, data) = match result {
            Some(Ok(data)) => (0, data),
            _ => (1, 0),
        };
        // The last exit was KVM_EXIT_X86_RDMSR or _WRMSR, so `msr` is the union member KVM
        // reads back on the next entry. (Writing a union field is safe Rust; reading is not.)
        let run = self.vcpu.get_kvm_run();
        run.__bindgen_anon_1.msr.error = error;
        if value.is_none() {
            run.__bindgen_anon_1.msr.data = data;
        }
        Ok(())
    }

    /// A guest TSC value as virtual time: now plus the guest-TSC distance to it, converted at
    /// the guest TSC's rate. 0 (disarm) stays 0; a deadline already passed fires at once.
    fn deadline_in_virtual_ns(&self, machine: &Machine, deadline: u64) -> u64 {
        if deadline == 0 {
            return 0;
        }
        let now_ns = machine.bus.clock().tsc();
        let Some(guest_now) = self.guest_tsc() else {
            return deadline; // no way to read the TSC: assume it is the virtual clock
        };
        let khz = self.vcpu.get_tsc_khz().unwrap_or(1_000_000).max(1) as u128;
        let ahead = deadline.saturating_sub(guest_now) as u128;
        let ns = (ahead * 1_000_000 / khz).min(u64::MAX as u128) as u64;
        now_ns.saturating_add(ns).max(1)
    }

    fn guest_tsc(&self) -> Option<u64> {
        let mut msrs = Msrs::from_entries(&[kvm_msr_entry {
            index: IA32_TSC,
            ..Default::default()
        }])
        .ok()?;
        match self.vcpu.get_msrs(&mut msrs) {
            Ok(1) => Some(msrs.as_slice()[0].data),
            _ => None,
        }
    }
}

//! Moving `CpuState` into a real vCPU and back: the ioctls around every `run`.
//! Teaches: KVM keeps the CPU's state in the kernel; a VMM reads and writes it in well-defined bundles.
//!
//! The bundles: KVM_SET/GET_SREGS (segments, control registers, EFER, APIC base), _REGS (general
//! registers, RIP, RFLAGS), _FPU (x87/SSE), _MSRS (the syscall and sysenter MSRs, PAT, TSC_AUX),
//! _DEBUGREGS and _VCPU_EVENTS (interrupt shadow, pending NMI). System registers go first, so
//! KVM already knows the mode when it checks the rest.

use emulator::cpu::state::msr;
use emulator::CpuState;
use kvm_bindings::{kvm_msr_entry, kvm_xsave, Msrs};
use kvm_ioctls::{Cap, Kvm, VcpuFd};

use crate::convert;
use crate::KvmError;

/// What this host's KVM can carry besides the basic register bundles.
#[derive(Debug, Clone, Default)]
pub struct StateCaps {
    pub vcpu_events: bool,
    pub debugregs: bool,
    /// The MSRs from `convert::CARRIED_MSRS` this host saves and restores.
    pub msrs: Vec<u32>,
    /// Can the guest's time-stamp counter be written (IA32_TSC)?
    pub tsc: bool,
    /// Use KVM_GET/SET_XSAVE for the FPU (carries MXCSR, which KVM_SET_FPU ignores).
    pub xsave: bool,
}

impl StateCaps {
    pub fn probe(kvm: &Kvm, msrs: Vec<u32>, host_msrs: &[u32]) -> Self {
        StateCaps {
            vcpu_events: kvm.check_extension(Cap::VcpuEvents),
            debugregs: kvm.check_extension(Cap::Debugregs),
            msrs,
            tsc: host_msrs.contains(&msr::IA32_TSC),
            // `kvm_xsave` is 4 KiB; KVM_CAP_XSAVE2 reports how much the kernel would read/write.
            xsave: kvm.check_extension(Cap::Xsave)
                && usize::try_from(kvm.check_extension_int(Cap::Xsave2))
                    .is_ok_and(|n| n <= std::mem::size_of::<kvm_xsave>()),
        }
    }
}

fn msr_table(entries: &[kvm_msr_entry]) -> Result<Msrs, KvmError> {
    Msrs::from_entries(entries).map_err(|_| KvmError::Ioctl {
        what: "building the MSR table",
        source: kvm_ioctls::Error::new(libc::E2BIG),
    })
}

/// Writes `cpu` into the vCPU. `tsc`, if given, becomes the guest's time-stamp counter.
pub fn push(
    vcpu: &VcpuFd,
    cpu: &CpuState,
    caps: &StateCaps,
    tsc: Option<u64>,
) -> Result<(), KvmError> {
    vcpu.set_sregs(&convert::sregs_to_kvm(cpu))
        .map_err(KvmError::ioctl("KVM_SET_SREGS"))?;
    vcpu.set_regs(&convert::regs_to_kvm(cpu))
        .map_err(KvmError::ioctl("KVM_SET_REGS"))?;
    push_fpu(vcpu, cpu, caps)?;

    let mut entries = convert::msrs_to_kvm(cpu, &caps.msrs);
    if let (Some(value), true) = (tsc, caps.tsc) {
        entries.push(kvm_msr_entry {
            index: msr::IA32_TSC,
            data: value,
            ..Default::default()
        });
    }
    if !entries.is_empty() {
        let accepted = vcpu
            .set_msrs(&msr_table(&entries)?)
            .map_err(KvmError::ioctl("KVM_SET_MSRS"))?;
        if accepted < entries.len() {
            return Err(KvmError::MsrsRefused {
                accepted,
                wanted: entries.len(),
                first_refused: entries[accepted].index,
            });
        }
    }
    if caps.debugregs {
        vcpu.set_debug_regs(&convert::debugregs_to_kvm(cpu))
            .map_err(KvmError::ioctl("KVM_SET_DEBUGREGS"))?;
    }
    if caps.vcpu_events {
        vcpu.set_vcpu_events(&convert::events_to_kvm(&cpu.events))
            .map_err(KvmError::ioctl("KVM_SET_VCPU_EVENTS"))?;
    }
    Ok(())
}

fn push_fpu(vcpu: &VcpuFd, cpu: &CpuState, caps: &StateCaps) -> Result<(), KvmError> {
    if !caps.xsave {
        return vcpu
            .set_fpu(&convert::fpu_to_kvm(&cpu.fpu))
            .map_err(KvmError::ioctl("KVM_SET_FPU"));
    }
    let mut x = vcpu.get_xsave().map_err(KvmError::ioctl("KVM_GET_XSAVE"))?;
    convert::fpu_into_xsave(&cpu.fpu, &mut x);
    // SAFETY: `caps.xsave` is set only when KVM_CAP_XSAVE2 says the kernel's XSAVE area fits
    // in `kvm_xsave`, so KVM reads no further than the struct we pass; it came from this vCPU.
    unsafe { vcpu.set_xsave(&x) }.map_err(KvmError::ioctl("KVM_SET_XSAVE"))
}

/// Reads the vCPU into `cpu`. `events.halted` is left to the caller (the engine tracks HLT).
/// Returns the guest's time-stamp counter, if this host lets us read it.
pub fn pull(vcpu: &VcpuFd, cpu: &mut CpuState, caps: &StateCaps) -> Result<Option<u64>, KvmError> {
    convert::apply_sregs(
        cpu,
        &vcpu.get_sregs().map_err(KvmError::ioctl("KVM_GET_SREGS"))?,
    );
    convert::apply_regs(
        cpu,
        &vcpu.get_regs().map_err(KvmError::ioctl("KVM_GET_REGS"))?,
    );
    if caps.xsave {
        let x = vcpu.get_xsave().map_err(KvmError::ioctl("KVM_GET_XSAVE"))?;
        convert::apply_xsave(&mut cpu.fpu, &x);
    } else {
        let f = vcpu.get_fpu().map_err(KvmError::ioctl("KVM_GET_FPU"))?;
        convert::apply_fpu(&mut cpu.fpu, &f);
    }
    let mut wanted: Vec<kvm_msr_entry> = caps
        .msrs
        .iter()
        .chain(caps.tsc.then_some(&msr::IA32_TSC))
        .map(|&index| kvm_msr_entry {
            index,
            ..Default::default()
        })
        .collect();
    let mut tsc = None;
    if !wanted.is_empty() {
        let mut table = msr_table(&wanted)?;
        let read = vcpu
            .get_msrs(&mut table)
            .map_err(KvmError::ioctl("KVM_GET_MSRS"))?;
        let entries = &table.as_slice()[..read.min(wanted.len())];
        convert::apply_msrs(cpu, entries);
        tsc = entries
            .iter()
            .find(|e| e.index == msr::IA32_TSC)
            .map(|e| e.data);
        if read < wanted.len() {
            return Err(KvmError::MsrsRefused {
                accepted: read,
                wanted: wanted.len(),
                first_refused: wanted.swap_remove(read).index,
            });
        }
    }
    if caps.debugregs {
        convert::apply_debugregs(
            cpu,
            &vcpu
                .get_debug_regs()
                .map_err(KvmError::ioctl("KVM_GET_DEBUGREGS"))?,
        );
    }
    if caps.vcpu_events {
        convert::apply_events(
            &mut cpu.events,
            &vcpu
                .get_vcpu_events()
                .map_err(KvmError::ioctl("KVM_GET_VCPU_EVENTS"))?,
        );
    }
    Ok(tsc)
}

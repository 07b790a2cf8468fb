//! Errors of the KVM engine, each naming the step that failed.
//! Teaches: what can go wrong between a VMM and the kernel (missing device, refused ioctl, bad state).

use thiserror::Error;

/// Everything that can fail while opening KVM, building the VM or moving state in and out of it.
#[derive(Debug, Error)]
pub enum KvmError {
    /// /dev/kvm does not exist
    #[error(
        "/dev/kvm does not exist: the KVM module is not loaded, or this is not a Linux host \
         with virtualization enabled; use an emulated engine (interp) instead"
    )]
    Missing,
    /// /dev/kvm exists but this user may not open it
    #[error(
        "/dev/kvm exists but cannot be opened for reading and writing ({0}); \
         add the user to the `kvm` group or fix the device permissions"
    )]
    NoAccess(std::io::Error),
    /// /dev/kvm could not be opened for another reason
    #[error("opening /dev/kvm failed: {0}")]
    Open(std::io::Error),
    /// the kernel speaks a different KVM API version
    #[error("KVM API version is {0}, this engine needs 12")]
    ApiVersion(i32),
    /// an ioctl on the KVM, VM or vCPU file descriptor failed
    #[error("KVM ioctl {what} failed: {source}")]
    Ioctl {
        what: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
    /// the firmware ROM cannot be placed below 4 GiB
    #[error("firmware ROM of {rom_len:#x} bytes at {base:#x} would overlap guest RAM of {ram_len:#x} bytes")]
    RomOverlapsRam {
        rom_len: u64,
        base: u64,
        ram_len: u64,
    },
    /// allocating host memory for the ROM copy failed
    #[error("allocating {0:#x} bytes of host memory for the ROM copy failed")]
    RomAllocation(usize),
    /// some MSRs were not accepted by KVM
    #[error("KVM accepted only {accepted} of {wanted} MSRs; first refused: {first_refused:#x}")]
    MsrsRefused {
        accepted: usize,
        wanted: usize,
        first_refused: u32,
    },
    /// the helper thread that kicks the vCPU at device deadlines could not be started
    #[error("starting the vCPU kick thread failed: {0}")]
    KickThread(std::io::Error),
}

impl KvmError {
    /// Wraps a failed ioctl with the name of what was being done.
    pub(crate) fn ioctl(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> KvmError {
        move |source| KvmError::Ioctl { what, source }
    }
}

impl From<KvmError> for emulator::EngineError {
    fn from(e: KvmError) -> Self {
        emulator::EngineError::Host(e.to_string())
    }
}

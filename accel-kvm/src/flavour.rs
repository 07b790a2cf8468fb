//! Which KVM is behind /dev/kvm: Intel VT-x, AMD-V, PVM (software) or none.
//! Teaches: "KVM" is one API over very different machinery, and the numbers you measure depend on it.
//!
//! The kernel module that registered itself as KVM's backend shows up under `/sys/module`:
//! `kvm_intel` (VMX), `kvm_amd` (SVM) or `kvm_pvm` (PVM, which runs guests without hardware
//! virtualization: guest user code runs natively, guest kernel code is interpreted by the host).

use std::fmt;
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::Path;

use crate::KvmError;

/// The device node every KVM user opens.
pub const KVM_DEVICE: &str = "/dev/kvm";

/// The KVM backend of this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmFlavour {
    /// Intel VT-x (`kvm_intel`): hardware-assisted.
    VtX,
    /// AMD-V / SVM (`kvm_amd`): hardware-assisted.
    AmdV,
    /// PVM (`kvm_pvm`): software; guest ring 3 runs natively, ring 0 is interpreted by the host.
    Pvm,
    /// /dev/kvm works but no known backend module is visible.
    Unknown,
    /// /dev/kvm does not exist or cannot be opened.
    Absent,
}

impl KvmFlavour {
    /// Does this flavour use hardware virtualization extensions?
    pub fn is_hardware(self) -> bool {
        matches!(self, KvmFlavour::VtX | KvmFlavour::AmdV)
    }

    /// Short name of the flavour ("PVM", "VT-x", …).
    pub fn name(self) -> &'static str {
        match self {
            KvmFlavour::VtX => "VT-x",
            KvmFlavour::AmdV => "AMD-V",
            KvmFlavour::Pvm => "PVM",
            KvmFlavour::Unknown => "unknown backend",
            KvmFlavour::Absent => "no KVM",
        }
    }
}

impl fmt::Display for KvmFlavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvmFlavour::VtX | KvmFlavour::AmdV => write!(f, "{}, hardware", self.name()),
            KvmFlavour::Pvm => write!(f, "{}, software", self.name()),
            KvmFlavour::Unknown => f.write_str("unknown backend"),
            KvmFlavour::Absent => f.write_str("no KVM (/dev/kvm absent or not accessible)"),
        }
    }
}

/// Checks that /dev/kvm exists and can be opened read-write, with a message that says how to fix it.
pub fn kvm_available() -> Result<(), KvmError> {
    match OpenOptions::new().read(true).write(true).open(KVM_DEVICE) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(KvmError::Missing),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(KvmError::NoAccess(e)),
        Err(e) => Err(KvmError::Open(e)),
    }
}

/// Detects the KVM flavour of this host.
pub fn detect_flavour() -> KvmFlavour {
    if kvm_available().is_err() {
        return KvmFlavour::Absent;
    }
    flavour_from_modules(Path::new("/sys/module"))
}

/// Decides the flavour from the module directories under `sys_module` (a parameter, so tests can
/// point it at a fake tree). PVM is checked first: it can be loaded next to a hardware module on
/// a nested host, and when it is, it is the one that serves guests here.
pub fn flavour_from_modules(sys_module: &Path) -> KvmFlavour {
    let loaded = |name: &str| sys_module.join(name).is_dir();
    if loaded("kvm_pvm") {
        KvmFlavour::Pvm
    } else if loaded("kvm_intel") {
        KvmFlavour::VtX
    } else if loaded("kvm_amd") {
        KvmFlavour::AmdV
    } else {
        KvmFlavour::Unknown
    }
}

/// For tests that need KVM: `Ok(())` to run, `Err(reason)` to skip with that reason. Where the
/// test command found /dev/kvm (`scripts/test.sh` then sets `VMSCOPE_REQUIRE_KVM=1`), KVM not
/// being usable is a failure, not a skip, so a broken KVM path cannot pass as "skipped".
pub fn kvm_for_tests() -> Result<(), String> {
    match kvm_available() {
        Ok(()) => Ok(()),
        Err(why) if std::env::var_os("VMSCOPE_REQUIRE_KVM").is_some() => panic!(
            "VMSCOPE_REQUIRE_KVM is set (the test command found /dev/kvm) but KVM is not usable: {why}"
        ),
        Err(why) => Err(why.to_string()),
    }
}

/// Does this KVM walk the guest's page tables in hardware (EPT on Intel, NPT on AMD)? Only then
/// may a user-space VMM change guest page-table entries: with shadow paging (PVM, or the
/// hardware modules with `ept=N`/`npt=0`) KVM keeps copies in the kernel, write-protected
/// against the guest's own stores but blind to writes from user space.
pub fn hardware_paging(flavour: KvmFlavour, sys_module: &Path) -> bool {
    let param = |module: &str, name: &str| {
        std::fs::read_to_string(sys_module.join(module).join("parameters").join(name))
            .map(|v| matches!(v.trim(), "Y" | "1"))
            .unwrap_or(false)
    };
    match flavour {
        KvmFlavour::VtX => param("kvm_intel", "ept"),
        KvmFlavour::AmdV => param("kvm_amd", "npt"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_sys(modules: &[&str]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vmscope-flavour-{}-{}",
            std::process::id(),
            modules.join("+")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for m in modules {
            std::fs::create_dir_all(dir.join(m)).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn modules_decide_the_flavour() {
        assert_eq!(
            flavour_from_modules(&fake_sys(&["kvm", "kvm_intel"])),
            KvmFlavour::VtX
        );
        assert_eq!(
            flavour_from_modules(&fake_sys(&["kvm", "kvm_amd"])),
            KvmFlavour::AmdV
        );
        assert_eq!(
            flavour_from_modules(&fake_sys(&["kvm", "kvm_intel", "kvm_pvm"])),
            KvmFlavour::Pvm
        );
        assert_eq!(
            flavour_from_modules(&fake_sys(&["kvm"])),
            KvmFlavour::Unknown
        );
    }

    #[test]
    fn display_says_hardware_or_software() {
        assert_eq!(KvmFlavour::Pvm.to_string(), "PVM, software");
        assert_eq!(KvmFlavour::VtX.to_string(), "VT-x, hardware");
        assert_eq!(KvmFlavour::AmdV.to_string(), "AMD-V, hardware");
        assert!(KvmFlavour::VtX.is_hardware() && !KvmFlavour::Pvm.is_hardware());
    }

    #[test]
    fn availability_and_detection_agree() {
        assert_eq!(
            kvm_available().is_ok(),
            detect_flavour() != KvmFlavour::Absent
        );
    }
}

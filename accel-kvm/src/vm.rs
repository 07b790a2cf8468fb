//! Building the VM: memory slots, the firmware ROM, CPUID and the list of MSRs KVM will carry.
//! Teaches: a KVM VM is a set of guest-physical slots backed by host memory, plus one vCPU per CPU.
//!
//! Guest RAM is not copied: slot 0 points KVM at the very pages `GuestRam` owns, so a store by
//! the guest is immediately visible to the interpreter and back again. The ROM gets its own
//! host copy at the top of the 4 GiB space, read-only where the host allows.

use emulator::cpu::cpuid::{self, ecx1, edx1, edx81};
use emulator::machine::FOUR_GIB;
use emulator::Machine;
use kvm_bindings::{
    kvm_cpuid_entry2, kvm_userspace_memory_region, CpuId, KVM_MAX_CPUID_ENTRIES,
    KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY,
};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};

use crate::convert::CARRIED_MSRS;
use crate::KvmError;

const PAGE: u64 = 4096;
/// Slot numbers: RAM first, then the high ROM alias.
pub const RAM_SLOT: u32 = 0;
pub const ROM_SLOT: u32 = 1;

/// Where guest RAM is mapped into KVM, so a later `run` can tell whether it is the same RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamMapping {
    pub host_address: u64,
    pub size: u64,
    /// KVM_MEM_LOG_DIRTY_PAGES: KVM records the pages the guest writes (a migration's
    /// pre-copy turns it on through `GuestRam::start_dirty_log`).
    pub log_dirty: bool,
}

impl RamMapping {
    /// How `machine.ram` should be mapped now.
    pub fn wanted(machine: &Machine) -> Self {
        RamMapping {
            host_address: machine.ram.host_address() as u64,
            size: machine.ram.size(),
            log_dirty: machine.ram.dirty_logging(),
        }
    }
}

/// Maps `machine.ram` at guest-physical 0 as slot 0 (replacing an earlier mapping of that slot).
pub fn map_ram(vm: &VmFd, machine: &Machine) -> Result<RamMapping, KvmError> {
    let mapping = RamMapping::wanted(machine);
    let region = kvm_userspace_memory_region {
        slot: RAM_SLOT,
        flags: if mapping.log_dirty {
            KVM_MEM_LOG_DIRTY_PAGES
        } else {
            0
        },
        guest_phys_addr: 0,
        memory_size: mapping.size,
        userspace_addr: mapping.host_address,
    };
    // SAFETY: the region is `machine.ram`'s one anonymous mapping of `size` bytes (GuestRam
    // rounds to 4 KiB). The engine re-maps or is dropped before that memory could go away: `run`
    // compares the mapping with the machine it is given before every entry into the guest.
    unsafe { vm.set_user_memory_region(region) }
        .map_err(KvmError::ioctl("KVM_SET_USER_MEMORY_REGION (RAM)"))?;
    Ok(mapping)
}

/// A page-aligned host copy of the firmware ROM, mapped just below 4 GiB.
#[derive(Debug)]
pub struct RomMapping {
    ptr: *mut u8,
    len: usize,
    /// The ROM bytes this copy was made from, to notice a newly loaded ROM.
    pub source: Vec<u8>,
    pub read_only: bool,
}

// SAFETY: the mapping is plain memory owned by this value; nothing else aliases it from Rust.
unsafe impl Send for RomMapping {}

impl RomMapping {
    /// Copies `rom` into fresh host pages (padded with 0xFF in front to a page multiple) and maps
    /// them at `[4 GiB - padded length, 4 GiB)`.
    pub fn map(vm: &VmFd, rom: &[u8], ram_size: u64, read_only: bool) -> Result<Self, KvmError> {
        let base = rom_slot_base(rom.len(), ram_size)?;
        let len = (FOUR_GIB - base) as usize;
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(KvmError::RomAllocation(len));
        }
        let mapping = RomMapping {
            ptr: ptr as *mut u8,
            len,
            source: rom.to_vec(),
            read_only,
        };
        // SAFETY: `ptr` points to `len` writable bytes that only this value owns.
        let bytes = unsafe { std::slice::from_raw_parts_mut(mapping.ptr, len) };
        let pad = len - rom.len();
        bytes[..pad].fill(0xFF);
        bytes[pad..].copy_from_slice(rom);
        let region = kvm_userspace_memory_region {
            slot: ROM_SLOT,
            flags: if read_only { KVM_MEM_READONLY } else { 0 },
            guest_phys_addr: base,
            memory_size: len as u64,
            userspace_addr: mapping.ptr as u64,
        };
        // SAFETY: the pages belong to `mapping`, which the engine keeps until the VM is gone.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(KvmError::ioctl("KVM_SET_USER_MEMORY_REGION (ROM)"))?;
        Ok(mapping)
    }
}

/// Where the ROM slot starts: the ROM, rounded up to whole pages, ends at 4 GiB. It must not
/// reach down into RAM (nor take more than half the 4 GiB space).
pub fn rom_slot_base(rom_len: usize, ram_size: u64) -> Result<u64, KvmError> {
    let len = (rom_len as u64).div_ceil(PAGE).saturating_mul(PAGE);
    let base = FOUR_GIB.saturating_sub(len);
    if len > FOUR_GIB / 2 || base < ram_size {
        return Err(KvmError::RomOverlapsRam {
            rom_len: rom_len as u64,
            base,
            ram_len: ram_size,
        });
    }
    Ok(base)
}

impl Drop for RomMapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping created in `map`; the engine drops the VM (and
        // with it the slot) before this value, see the field order of `KvmEngine`.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// Real mode on VT-x without "unrestricted guest" is run in virtual-8086 mode, which needs a TSS
/// and an identity-mapped page table somewhere in guest-physical space. We put them in the
/// pages just below the ROM (or below 4 GiB - 256 KiB), where no RAM is.
pub fn set_real_mode_helpers(vm: &VmFd, kvm: &Kvm, rom_len: usize) -> Result<(), KvmError> {
    let rom_pages = (rom_len as u64).div_ceil(PAGE).saturating_mul(PAGE);
    let top = FOUR_GIB
        .saturating_sub(rom_pages)
        .clamp(FOUR_GIB / 2, FOUR_GIB - 0x4_0000);
    let identity = top - 4 * PAGE;
    if kvm.check_extension(Cap::SetIdentityMapAddr) {
        vm.set_identity_map_address(identity)
            .map_err(KvmError::ioctl("KVM_SET_IDENTITY_MAP_ADDR"))?;
    }
    if kvm.check_extension(Cap::SetTssAddr) {
        vm.set_tss_address((identity + PAGE) as usize)
            .map_err(KvmError::ioctl("KVM_SET_TSS_ADDR"))?;
    }
    Ok(())
}

/// Installs the machine's CPUID model. Feature bits the host cannot provide are cleared (and
/// reported), so the guest is never promised something KVM would refuse later.
pub fn install_cpuid(kvm: &Kvm, vcpu: &VcpuFd) -> Result<Vec<String>, KvmError> {
    install_cpuid_with(kvm, vcpu, true, false, false)
}

/// [`install_cpuid`]; without `apic_msrs` (the local APIC's MSRs routed to the bus, see
/// `apic_msr.rs`) x2APIC and TSC-deadline are not advertised either. With `pv`, the hypervisor
/// leaves go in too (the same answers the emulated engines give, except what this KVM cannot
/// do: KVM's own feature bits only where it implements them — kvmclock lives in the host
/// kernel — and HC_MMU_UPDATE only with `hardware_paging`, see `flavour::hardware_paging`).
pub fn install_cpuid_with(
    kvm: &Kvm,
    vcpu: &VcpuFd,
    apic_msrs: bool,
    pv: bool,
    hardware_paging: bool,
) -> Result<Vec<String>, KvmError> {
    let supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(KvmError::ioctl("KVM_GET_SUPPORTED_CPUID"))?;
    let host = |leaf: u32| {
        supported
            .as_slice()
            .iter()
            .find(|e| e.function == leaf && e.index == 0)
            .copied()
    };
    let mut notes = Vec::new();
    let mut entries = Vec::new();
    for (leaf, [eax, ebx, ecx, edx]) in cpuid::all_leaves(pv) {
        let mut e = kvm_cpuid_entry2 {
            function: leaf,
            eax,
            ebx,
            ecx,
            edx,
            ..Default::default()
        };
        if leaf == 1 && !apic_msrs {
            e.ecx &= !(ecx1::X2APIC | ecx1::TSC_DEADLINE);
        }
        match leaf {
            // Feature bits this KVM does not give the guest are not advertised: a guest told
            // of one fails on its first use (Linux: #GP setting CR4.PCIDE on PVM).
            1 | 0x8000_0001 | 7 => {
                let h = host(leaf).unwrap_or_default();
                let mut keep = |name: &str, ours: &mut u32, host: u32| {
                    let missing = *ours & !host;
                    if missing != 0 {
                        let names = if name == "EDX" && leaf != 7 {
                            format!(" ({})", feature_names(leaf, missing))
                        } else {
                            String::new()
                        };
                        notes.push(format!(
                            "CPUID {leaf:#x}: host lacks {name} bits {missing:#x}{names}; not advertised"
                        ));
                        *ours &= host;
                    }
                };
                keep("EBX", &mut e.ebx, if leaf == 7 { h.ebx } else { u32::MAX });
                keep("ECX", &mut e.ecx, h.ecx);
                keep("EDX", &mut e.edx, if leaf == 7 { u32::MAX } else { h.edx });
            }
            0x8000_0008 => {
                let host_bits = host(leaf).map_or(36, |h| h.eax & 0xFF);
                if e.eax & 0xFF > host_bits {
                    notes.push(format!(
                        "CPUID 0x80000008: physical address width lowered from {} to the host's {host_bits} bits",
                        e.eax & 0xFF
                    ));
                    e.eax = (e.eax & !0xFF) | host_bits;
                }
            }
            emulator::pv::abi::CPUID_VMSCOPE_INFO if !hardware_paging => {
                notes.push(
                    "paravirtual page tables (HC_MMU_UPDATE) not offered: this KVM shadows the \
                     guest's page tables in the kernel, where writes from user space go unseen"
                        .into(),
                );
                e.eax &= !emulator::pv::abi::F_MMU_UPDATE;
            }
            emulator::pv::abi::CPUID_KVM_FEATURES => {
                let host_eax = host(leaf).map_or(0, |h| h.eax);
                let missing = e.eax & !host_eax;
                if missing != 0 {
                    notes.push(format!(
                        "CPUID {leaf:#x}: this KVM lacks paravirtual features {missing:#x}; not advertised"
                    ));
                    e.eax &= host_eax;
                }
            }
            _ => {}
        }
        entries.push(e);
    }
    let table = CpuId::from_entries(&entries).map_err(|_| KvmError::Ioctl {
        what: "building the CPUID table",
        source: kvm_ioctls::Error::new(libc::E2BIG),
    })?;
    vcpu.set_cpuid2(&table)
        .map_err(KvmError::ioctl("KVM_SET_CPUID2"))?;
    Ok(notes)
}

fn feature_names(leaf: u32, bits: u32) -> String {
    let table: &[(u32, &str)] = if leaf == 1 {
        &[
            (edx1::PSE, "PSE"),
            (edx1::TSC, "TSC"),
            (edx1::MSR, "MSR"),
            (edx1::PAE, "PAE"),
            (edx1::CX8, "CX8"),
            (edx1::PGE, "PGE"),
            (edx1::CMOV, "CMOV"),
        ]
    } else {
        &[
            (edx81::SYSCALL, "SYSCALL"),
            (edx81::NX, "NX"),
            (edx81::LM, "LM"),
        ]
    };
    let names: Vec<&str> = table
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    names.join(" ")
}

/// Every MSR number this host's KVM can save and restore.
pub fn host_msr_list(kvm: &Kvm) -> Result<Vec<u32>, KvmError> {
    let list = kvm
        .get_msr_index_list()
        .map_err(KvmError::ioctl("KVM_GET_MSR_INDEX_LIST"))?;
    Ok(list.as_slice().to_vec())
}

/// The subset of the MSRs `CpuState` carries that `host` (from [`host_msr_list`]) can save and
/// restore, and a note for each one it cannot.
pub fn carried_msrs(host: &[u32]) -> (Vec<u32>, Vec<String>) {
    let (known, unknown): (Vec<u32>, Vec<u32>) =
        CARRIED_MSRS.iter().partition(|m| host.contains(m));
    let notes = unknown
        .iter()
        .map(|m| {
            format!("MSR {m:#x} is not saved/restored by this host's KVM; kept in CpuState only")
        })
        .collect();
    (known, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rom_slot_ends_at_4_gib_and_never_meets_ram() {
        assert_eq!(rom_slot_base(64 << 10, 64 << 20).unwrap(), 0xFFFF_0000);
        assert_eq!(
            rom_slot_base(100, 64 << 20).unwrap(),
            0xFFFF_F000,
            "rounded to a page"
        );
        assert!(matches!(
            rom_slot_base(usize::MAX, 0),
            Err(KvmError::RomOverlapsRam { .. })
        ));
        assert!(matches!(
            rom_slot_base(64 << 10, 0xFFFF_8000),
            Err(KvmError::RomOverlapsRam {
                base: 0xFFFF_0000,
                ..
            })
        ));
    }
}

//! The Multiboot v1 information structure a loader leaves in RAM for the kernel (EBX points to it).
//! Teaches: how a boot loader tells a kernel about memory, its command line and itself.
//!
//! Layout (all little-endian u32 unless noted), as the Multiboot 0.6.96 specification defines it:
//!
//! | offset | field | present if flag bit |
//! |--------|-------|---------------------|
//! | 0 | flags | — |
//! | 4, 8 | mem_lower, mem_upper (KiB) | 0 |
//! | 16 | cmdline (physical address of a NUL-terminated string) | 2 |
//! | 44, 48 | mmap_length, mmap_addr | 6 |
//! | 64 | boot_loader_name (address of a NUL-terminated string) | 9 |
//!
//! vmscope puts everything in one fixed area, `0x8000..0x10000`, just above where a boot sector
//! would sit and far below the 1 MiB where kernels load; a kernel whose segments touch the area
//! is rejected rather than silently overwritten:
//!
//! | address | contents |
//! |---------|----------|
//! | 0x8000 | the 116-byte information structure (unused fields zero) |
//! | 0x8080 | the memory map: entries of `size = 20, base_addr: u64, length: u64, type` |
//! | 0x8100 | `"vmscope\0"` |
//! | 0x8200 | the command line, exactly as given (like QEMU's `-append`), NUL-terminated |
//!
//! The memory map describes the classic PC: usable 0–0x9FC00 (639 KiB), the extended BIOS data
//! area 0x9FC00–0xA0000 reserved, a hole for VGA memory and option ROMs, the ACPI tables
//! 0xE0000–0xF0000 reserved (see `devices::acpi`), the BIOS 0xF0000–0x100000 reserved, and
//! usable RAM from 1 MiB to the end of guest RAM.

use super::{LoadError, Machine};
use crate::machine::FOUR_GIB;

/// First byte of the area the loader writes its information into.
pub const INFO_AREA_START: u64 = 0x8000;
/// One past the last byte of that area.
pub const INFO_AREA_END: u64 = 0x1_0000;
/// Guest-physical address of the information structure (the value in EBX).
pub const INFO_ADDR: u64 = INFO_AREA_START;
const MMAP_ADDR: u64 = 0x8080;
const LOADER_NAME_ADDR: u64 = 0x8100;
const CMDLINE_ADDR: u64 = 0x8200;
/// Room for the command line, including its terminating NUL.
pub const CMDLINE_MAX: u64 = INFO_AREA_END - CMDLINE_ADDR;
/// The name the kernel finds at `boot_loader_name`.
pub const LOADER_NAME: &str = "vmscope";

/// `flags` bit: `mem_lower`/`mem_upper` are valid.
pub const MBI_MEM: u32 = 1 << 0;
/// `flags` bit: `cmdline` is valid.
pub const MBI_CMDLINE: u32 = 1 << 2;
/// `flags` bit: `mmap_length`/`mmap_addr` are valid.
pub const MBI_MMAP: u32 = 1 << 6;
/// `flags` bit: `boot_loader_name` is valid.
pub const MBI_BOOT_LOADER_NAME: u32 = 1 << 9;

/// Size of the information structure up to and including the framebuffer fields.
const INFO_SIZE: usize = 116;
/// The `size` field of each memory-map entry: the bytes that follow it.
const MMAP_ENTRY_SIZE: u32 = 20;

/// Memory-map type: RAM the kernel may use.
pub const MEMORY_AVAILABLE: u32 = 1;
/// Memory-map type: reserved, do not touch.
pub const MEMORY_RESERVED: u32 = 2;

const LOW_RAM_END: u64 = 0x9_FC00;
const EBDA_END: u64 = 0xA_0000;
const BIOS_START: u64 = 0xF_0000;
const ONE_MIB: u64 = 0x10_0000;

/// One entry of the memory map given to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    pub base: u64,
    pub len: u64,
    /// [`MEMORY_AVAILABLE`] or [`MEMORY_RESERVED`].
    pub kind: u32,
}

/// The memory map for a machine with `ram` bytes of RAM (at least 1 MiB).
pub fn memory_map(ram: u64) -> Vec<MemoryRegion> {
    let mut map = vec![
        MemoryRegion {
            base: 0,
            len: LOW_RAM_END,
            kind: MEMORY_AVAILABLE,
        },
        MemoryRegion {
            base: LOW_RAM_END,
            len: EBDA_END - LOW_RAM_END,
            kind: MEMORY_RESERVED,
        },
        MemoryRegion {
            base: devices::acpi::RESERVED.0,
            len: devices::acpi::RESERVED.1 - devices::acpi::RESERVED.0,
            kind: MEMORY_RESERVED,
        },
        MemoryRegion {
            base: BIOS_START,
            len: ONE_MIB - BIOS_START,
            kind: MEMORY_RESERVED,
        },
    ];
    if ram > ONE_MIB {
        map.push(MemoryRegion {
            base: ONE_MIB,
            len: ram - ONE_MIB,
            kind: MEMORY_AVAILABLE,
        });
    }
    map
}

/// The guest-physical range `[start, end)` below 1 MiB that no kernel segment may cover.
pub(crate) const LOW_HOLE: (u64, u64) = (LOW_RAM_END, ONE_MIB);

/// The smallest RAM a Multiboot boot needs: the first MiB (the map and mem_upper assume it).
pub(crate) const MIN_RAM: u64 = ONE_MIB;

pub(crate) fn check_cmdline(name: &str, cmdline: &str) -> Result<(), LoadError> {
    let len = cmdline.len() as u64;
    if len >= CMDLINE_MAX {
        return Err(LoadError::CmdlineTooLong {
            name: name.to_string(),
            len,
            max: CMDLINE_MAX - 1,
        });
    }
    Ok(())
}

/// Writes the information structure, memory map, loader name and command line; returns the
/// structure's address. The caller has checked the command line and that RAM ≥ 1 MiB.
pub(crate) fn write(machine: &mut Machine, name: &str, cmdline: &str) -> Result<u64, LoadError> {
    check_cmdline(name, cmdline)?;
    let ram = machine.ram.size();
    let map = memory_map(ram);
    // mem_upper counts KiB from 1 MiB up to the first hole; our RAM is contiguous, and the
    // 32-bit field describes memory below 4 GiB.
    let mem_upper = ((ram.min(FOUR_GIB).saturating_sub(ONE_MIB)) / 1024) as u32;

    let mut info = [0u8; INFO_SIZE];
    let mut put = |offset: usize, value: u32| {
        info[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    };
    put(0, MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_BOOT_LOADER_NAME);
    put(4, (LOW_RAM_END / 1024) as u32);
    put(8, mem_upper);
    put(16, CMDLINE_ADDR as u32);
    put(44, map.len() as u32 * (MMAP_ENTRY_SIZE + 4));
    put(48, MMAP_ADDR as u32);
    put(64, LOADER_NAME_ADDR as u32);

    let mut mmap = Vec::with_capacity(map.len() * 24);
    for region in &map {
        mmap.extend_from_slice(&MMAP_ENTRY_SIZE.to_le_bytes());
        mmap.extend_from_slice(&region.base.to_le_bytes());
        mmap.extend_from_slice(&region.len.to_le_bytes());
        mmap.extend_from_slice(&region.kind.to_le_bytes());
    }

    let mem_err = |source| LoadError::Memory {
        name: name.to_string(),
        source,
    };
    let area_len = (INFO_AREA_END - INFO_AREA_START) as usize;
    machine
        .ram
        .fill(INFO_AREA_START, area_len, 0)
        .map_err(mem_err)?;
    machine.ram.write(INFO_ADDR, &info).map_err(mem_err)?;
    machine.ram.write(MMAP_ADDR, &mmap).map_err(mem_err)?;
    // The zero fill above supplies both strings' terminating NULs.
    machine
        .ram
        .write(LOADER_NAME_ADDR, LOADER_NAME.as_bytes())
        .map_err(mem_err)?;
    machine
        .ram
        .write(CMDLINE_ADDR, cmdline.as_bytes())
        .map_err(mem_err)?;
    Ok(INFO_ADDR)
}

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
//! | 20, 24 | mods_count, mods_addr (an array of `mod_start, mod_end, string, 0`) | 3 |
//! | 44, 48 | mmap_length, mmap_addr | 6 |
//! | 64 | boot_loader_name (address of a NUL-terminated string) | 9 |
//!
//! vmscope writes everything into one *information area* of whole pages, laid out like this
//! (offsets from the area's start):
//!
//! | offset | contents |
//! |--------|----------|
//! | 0x000 | the 116-byte information structure (unused fields zero) |
//! | 0x080 | the memory map: entries of `size = 20, base_addr: u64, length: u64, type` |
//! | 0x100 | `"vmscope\0"` |
//! | 0x200 | the command line, exactly as given (like QEMU's `-append`), NUL-terminated |
//! | then, 16-aligned | the module list (16 bytes per module), then each module's string |
//!
//! Boot modules ([`place_module`]) go before the area is placed, each at the first page
//! boundary at or above 1 MiB after what is already taken — right after the kernel's last
//! segment for the first, after the previous module for the next, as QEMU's `-initrd` lays them
//! out. `mod_end` is one past the module's last byte.
//!
//! Where the area goes is chosen *after* looking at the kernel's segments (bss included), so
//! nothing the kernel occupies is overwritten ([`place`]): 0x8000 ([`INFO_ADDR`], just above
//! where a boot sector would sit) when that is free, else the first page boundary after a
//! segment's end that is free — what QEMU does, putting its info after the kernel image — else
//! 1 MiB, else any free page of conventional memory. Always inside usable RAM of the map below and below
//! 4 GiB (the structure holds 32-bit addresses).
//!
//! The memory map describes the classic PC: usable 0–0x9FC00 (639 KiB), the extended BIOS data
//! area 0x9FC00–0xA0000 reserved, a hole for VGA memory and option ROMs, the ACPI tables
//! 0xE0000–0xF0000 reserved (see `devices::acpi`), the BIOS 0xF0000–0x100000 reserved, and
//! usable RAM from 1 MiB to the end of guest RAM — at most [`MULTIBOOT_MAX_RAM`] (3.5 GiB), so
//! `--memory 256M` gives one entry 1 MiB–256 MiB. The reserved ranges are still RAM on this
//! machine: a kernel segment may be loaded into them (QEMU loads an ELF's headers at 0xff000 the
//! same way), just not over the ACPI tables.

use super::{LoadError, Machine};
use crate::machine::FOUR_GIB;

/// Where the information area goes when no kernel segment is there (the usual case).
pub const INFO_AREA_START: u64 = 0x8000;
/// One past the last byte of the largest area (the longest command line) at [`INFO_AREA_START`].
pub const INFO_AREA_END: u64 = 0x1_0000;
/// The preferred address of the information structure (EBX), used when it is free.
pub const INFO_ADDR: u64 = INFO_AREA_START;
const MMAP_OFFSET: u64 = 0x80;
const LOADER_NAME_OFFSET: u64 = 0x100;
const CMDLINE_OFFSET: u64 = 0x200;
/// Room for the command line, including its terminating NUL.
pub const CMDLINE_MAX: u64 = INFO_AREA_END - INFO_AREA_START - CMDLINE_OFFSET;
const PAGE: u64 = 0x1000;

/// The most RAM a Multiboot boot supports: guest RAM is one block from address 0, so above
/// the PCI memory window's start (`devices::board::PCI_MEMORY_WINDOW`, 0xE0000000 = 3.5 GiB)
/// it would cover the PCI BARs, the I/O APIC and the local APIC. (No RAM above 4 GiB yet.)
pub const MULTIBOOT_MAX_RAM: u64 = devices::board::PCI_MEMORY_WINDOW.0 as u64;
/// The name the kernel finds at `boot_loader_name`.
pub const LOADER_NAME: &str = "vmscope";

/// `flags` bit: `mem_lower`/`mem_upper` are valid.
pub const MBI_MEM: u32 = 1 << 0;
/// `flags` bit: `cmdline` is valid.
pub const MBI_CMDLINE: u32 = 1 << 2;
/// `flags` bit: `mods_count`/`mods_addr` are valid.
pub const MBI_MODS: u32 = 1 << 3;
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

/// A boot module where the loader put it, with its string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlacedModule<'a> {
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    pub string: &'a str,
}

/// Bytes per entry of the module list.
const MODULE_ENTRY: u64 = 16;

/// Where the module list starts in the area, after a command line of `cmdline_len` bytes.
fn modules_offset(cmdline_len: u64) -> u64 {
    (CMDLINE_OFFSET + cmdline_len + 1).next_multiple_of(16)
}

/// Bytes of the information area for a command line of `cmdline_len` bytes and `modules`:
/// whole pages.
pub(crate) fn area_len(cmdline_len: u64, modules: &[PlacedModule]) -> u64 {
    let mut end = CMDLINE_OFFSET + cmdline_len + 1;
    if !modules.is_empty() {
        end = modules_offset(cmdline_len) + MODULE_ENTRY * modules.len() as u64;
        end += modules
            .iter()
            .map(|m| m.string.len() as u64 + 1)
            .sum::<u64>();
    }
    end.div_ceil(PAGE) * PAGE
}

/// Where a boot module of `len` bytes goes: the first page boundary after everything `taken`
/// above 1 MiB (1 MiB itself if nothing is), inside usable RAM below 4 GiB and clear of every
/// taken range — so after the kernel, and after the modules placed before it.
pub(crate) fn place_module(ram: u64, taken: &[(u64, u64)], len: u64) -> Option<u64> {
    let start = taken
        .iter()
        .filter_map(|&(a, l)| a.checked_add(l))
        .filter(|&e| e > ONE_MIB)
        .max()
        .unwrap_or(ONE_MIB)
        .checked_next_multiple_of(PAGE)?;
    let end = start.checked_add(len)?;
    let usable = memory_map(ram)
        .iter()
        .filter(|r| r.kind == MEMORY_AVAILABLE)
        .any(|r| start >= r.base && end <= (r.base + r.len).min(FOUR_GIB));
    let clear = taken
        .iter()
        .all(|&(a, l)| l == 0 || end <= a || a.saturating_add(l) <= start);
    (usable && clear).then_some(start)
}

/// Chooses the information area's start for `len` bytes in a machine with `ram` bytes: inside
/// usable RAM of [`memory_map`] (not page 0, the real-mode IVT and BIOS data), below 4 GiB and
/// overlapping no range of `taken` (the kernel's segments and anything else in use). Tries
/// [`INFO_ADDR`], then the page after each taken range's end (lowest first), then 1 MiB, then
/// every page of conventional memory; `None` when nothing fits.
pub(crate) fn place(ram: u64, taken: &[(u64, u64)], len: u64) -> Option<u64> {
    let usable: Vec<(u64, u64)> = memory_map(ram)
        .iter()
        .filter(|r| r.kind == MEMORY_AVAILABLE)
        .map(|r| (r.base.max(PAGE), (r.base + r.len).min(FOUR_GIB)))
        .collect();
    let fits = |start: u64| {
        let Some(end) = start.checked_add(len) else {
            return false;
        };
        usable.iter().any(|&(lo, hi)| start >= lo && end <= hi)
            && taken
                .iter()
                .all(|&(a, l)| l == 0 || end <= a || a.saturating_add(l) <= start)
    };
    let mut ends: Vec<u64> = taken
        .iter()
        .filter_map(|&(a, l)| a.checked_add(l)?.checked_next_multiple_of(PAGE))
        .collect();
    ends.sort_unstable();
    std::iter::once(INFO_ADDR)
        .chain(ends)
        .chain(std::iter::once(ONE_MIB))
        .chain((PAGE..LOW_RAM_END).step_by(PAGE as usize))
        .find(|&start| fits(start))
}

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

/// Writes the information structure, memory map, loader name and command line into the area
/// at `base` (from [`place`]); returns the structure's address. The caller has checked the
/// command line and that RAM ≥ 1 MiB.
pub(crate) fn write(
    machine: &mut Machine,
    name: &str,
    cmdline: &str,
    base: u64,
    modules: &[PlacedModule],
) -> Result<u64, LoadError> {
    check_cmdline(name, cmdline)?;
    let (mmap_addr, loader_name_addr, cmdline_addr) = (
        base + MMAP_OFFSET,
        base + LOADER_NAME_OFFSET,
        base + CMDLINE_OFFSET,
    );
    let ram = machine.ram.size();
    let map = memory_map(ram);
    // mem_upper counts KiB from 1 MiB up to the first hole; our RAM is contiguous, and the
    // 32-bit field describes memory below 4 GiB.
    let mem_upper = ((ram.min(FOUR_GIB).saturating_sub(ONE_MIB)) / 1024) as u32;

    let mut info = [0u8; INFO_SIZE];
    let mut put = |offset: usize, value: u32| {
        info[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    };
    let mods_flag = if modules.is_empty() { 0 } else { MBI_MODS };
    put(
        0,
        MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_BOOT_LOADER_NAME | mods_flag,
    );
    put(4, (LOW_RAM_END / 1024) as u32);
    put(8, mem_upper);
    put(16, cmdline_addr as u32);
    put(44, map.len() as u32 * (MMAP_ENTRY_SIZE + 4));
    put(48, mmap_addr as u32);
    put(64, loader_name_addr as u32);
    // The module list and its strings, after the command line (all below 4 GiB: the area and
    // the modules are placed there).
    let mods_addr = base + modules_offset(cmdline.len() as u64);
    let strings_addr = mods_addr + MODULE_ENTRY * modules.len() as u64;
    let mut list = Vec::with_capacity(modules.len() * MODULE_ENTRY as usize);
    let mut strings = Vec::new();
    for m in modules {
        let string_addr = strings_addr + strings.len() as u64;
        for v in [m.start, m.end, string_addr, 0] {
            list.extend_from_slice(&(v as u32).to_le_bytes());
        }
        strings.extend_from_slice(m.string.as_bytes());
        strings.push(0);
    }
    if !modules.is_empty() {
        put(20, modules.len() as u32);
        put(24, mods_addr as u32);
    }

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
    let len = area_len(cmdline.len() as u64, modules) as usize;
    machine.ram.fill(base, len, 0).map_err(mem_err)?;
    machine.ram.write(base, &info).map_err(mem_err)?;
    machine.ram.write(mmap_addr, &mmap).map_err(mem_err)?;
    // The zero fill above supplies both strings' terminating NULs.
    machine
        .ram
        .write(loader_name_addr, LOADER_NAME.as_bytes())
        .map_err(mem_err)?;
    machine
        .ram
        .write(cmdline_addr, cmdline.as_bytes())
        .map_err(mem_err)?;
    machine.ram.write(mods_addr, &list).map_err(mem_err)?;
    machine.ram.write(strings_addr, &strings).map_err(mem_err)?;
    Ok(base)
}

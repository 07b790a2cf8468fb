//! Multiboot v1 kernels: find the header, load the image, hand over in 32-bit protected mode.
//! Teaches: the contract between a boot loader and a kernel — one header in, one register pair out.
//!
//! The kernel announces itself with a 12-byte header somewhere in its first 8192 bytes, on a
//! 4-byte boundary: `magic = 0x1BADB002`, `flags`, `checksum`, with
//! `magic + flags + checksum == 0 (mod 2^32)`. The low 16 flag bits are *requirements*: a loader
//! that cannot honour one must refuse the kernel. vmscope honours bit 0 (page-align modules —
//! trivially, it loads no modules) and bit 1 (memory information — always provided) and refuses
//! bit 2 (a video mode) and the undefined bits 3–15. The high 16 bits are optional; bit 16 says
//! the header continues with five address fields (the "a.out kludge"), and then they, not the
//! file's own format, say what to load:
//!
//! | header offset | field | meaning |
//! |---------------|-------|---------|
//! | 12 | header_addr | physical address the header itself is loaded to |
//! | 16 | load_addr | physical address of the first byte to load |
//! | 20 | load_end_addr | end of the loaded data; 0 = up to the end of the file |
//! | 24 | bss_end_addr | end of the zero-filled bss; 0 = no bss |
//! | 28 | entry_addr | where to jump |
//!
//! The file offset of `load_addr` is `header offset - (header_addr - load_addr)`. Without bit 16
//! the file must be an ELF32 i386 executable (see [`super::elf32`]).
//!
//! At entry the CPU is in 32-bit protected mode with paging off, flat 4 GiB CS/DS/ES/SS,
//! interrupts off, EAX = 0x2BADB002 and EBX = the information structure (see `boot_info`).

use super::reader::{le32, ImageBytes};
use super::{boot_info, elf32, ImageKind, LoadError, LoadedImage, Machine, Placement};
use crate::cpu::CpuState;

/// The value that starts a Multiboot v1 header.
pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// The value a Multiboot loader leaves in EAX.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// The header must lie completely within this many bytes from the start of the file.
pub const HEADER_SEARCH_LIMIT: usize = 8192;

/// Requirement: align modules on 4 KiB boundaries.
const FLAG_PAGE_ALIGN: u32 = 1 << 0;
/// Requirement: provide mem_lower/mem_upper (and the memory map).
const FLAG_MEMORY_INFO: u32 = 1 << 1;
/// Option: the header carries the a.out-kludge address fields.
const FLAG_AOUT_KLUDGE: u32 = 1 << 16;
/// The requirement bits vmscope can satisfy.
const SUPPORTED_REQUIRED: u32 = FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO;

const HEADER_SIZE: usize = 12;
const AOUT_HEADER_SIZE: u64 = 32;

/// The a.out-kludge address fields (present when flags bit 16 is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AoutFields {
    pub header_addr: u32,
    pub load_addr: u32,
    pub load_end_addr: u32,
    pub bss_end_addr: u32,
    pub entry_addr: u32,
}

/// A Multiboot header found in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultibootHeader {
    /// File offset of the magic.
    pub offset: u64,
    pub flags: u32,
    pub checksum: u32,
    pub aout: Option<AoutFields>,
}

/// File offsets (4-byte aligned) where a whole 12-byte header would fit in the search window
/// and the magic is present.
fn magic_offsets(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let window = bytes.len().min(HEADER_SEARCH_LIMIT);
    (0..window.saturating_sub(HEADER_SIZE - 1))
        .step_by(4)
        .filter(move |&o| le32(bytes, o) == HEADER_MAGIC)
}

/// The offset of a Multiboot magic (4-byte aligned, in the search window) whose 12-byte header
/// the file cuts off: a kernel truncated by accident, not something to run as a flat binary.
pub(crate) fn cut_off_magic_offset(bytes: &[u8]) -> Option<usize> {
    if bytes.len() > HEADER_SEARCH_LIMIT {
        return None; // a header near the window's end continues in the file
    }
    let end = bytes.len();
    (end.saturating_sub(HEADER_SIZE - 1)..end.saturating_sub(3))
        .filter(|o| o % 4 == 0)
        .find(|&o| le32(bytes, o) == HEADER_MAGIC)
}

/// The offset of the first Multiboot magic in the search window, checksum unchecked.
pub(crate) fn magic_offset(bytes: &[u8]) -> Option<usize> {
    magic_offsets(bytes).next()
}

/// Finds the first Multiboot header with a valid checksum in the first 8192 bytes and reads
/// its a.out-kludge fields if flag bit 16 asks for them.
pub fn find_header(name: &str, bytes: &[u8]) -> Result<MultibootHeader, LoadError> {
    let mut first_bad = None;
    for o in magic_offsets(bytes) {
        let flags = le32(bytes, o + 4);
        let checksum = le32(bytes, o + 8);
        let sum = HEADER_MAGIC.wrapping_add(flags).wrapping_add(checksum);
        if sum != 0 {
            first_bad.get_or_insert((o, sum));
            continue;
        }
        let offset = o as u64;
        let aout = if flags & FLAG_AOUT_KLUDGE != 0 {
            let file = ImageBytes::new(name, bytes);
            let fields = file.slice(
                offset,
                AOUT_HEADER_SIZE,
                "Multiboot header (a.out-kludge fields)",
            )?;
            Some(AoutFields {
                header_addr: le32(fields, 12),
                load_addr: le32(fields, 16),
                load_end_addr: le32(fields, 20),
                bss_end_addr: le32(fields, 24),
                entry_addr: le32(fields, 28),
            })
        } else {
            None
        };
        return Ok(MultibootHeader {
            offset,
            flags,
            checksum,
            aout,
        });
    }
    Err(match first_bad {
        Some((o, sum)) => LoadError::BadChecksum {
            name: name.to_string(),
            offset: o as u64,
            sum,
        },
        None => LoadError::NoMultibootHeader {
            name: name.to_string(),
        },
    })
}

fn bad_aout(name: &str, detail: String) -> LoadError {
    LoadError::BadAoutFields {
        name: name.to_string(),
        detail,
    }
}

/// Turns the a.out-kludge fields into one placement and an entry point.
fn aout_placement<'a>(
    name: &str,
    bytes: &'a [u8],
    header_offset: u64,
    f: &AoutFields,
) -> Result<(Placement<'a>, u64), LoadError> {
    let (header_addr, load_addr) = (u64::from(f.header_addr), u64::from(f.load_addr));
    let load_end = u64::from(f.load_end_addr);
    let bss_end = u64::from(f.bss_end_addr);
    let before_header = header_addr.checked_sub(load_addr).ok_or_else(|| {
        bad_aout(
            name,
            format!("load_addr {load_addr:#x} is above header_addr {header_addr:#x}"),
        )
    })?;
    let file_offset = header_offset.checked_sub(before_header).ok_or_else(|| {
        bad_aout(
            name,
            format!(
                "header_addr - load_addr = {before_header:#x} reaches before the start of the file \
                 (the header is at offset {header_offset:#x})"
            ),
        )
    })?;
    let file_len = bytes.len() as u64;
    let load_len = if load_end == 0 {
        file_len - file_offset // file_offset <= header_offset < file_len
    } else {
        load_end.checked_sub(load_addr).ok_or_else(|| {
            bad_aout(
                name,
                format!("load_end_addr {load_end:#x} is below load_addr {load_addr:#x}"),
            )
        })?
    };
    let data = ImageBytes::new(name, bytes).slice(
        file_offset,
        load_len,
        "Multiboot a.out-kludge image (load_addr..load_end_addr)",
    )?;
    let mem_len = if bss_end == 0 {
        load_len
    } else {
        let loaded_end = load_addr + load_len;
        bss_end.checked_sub(load_addr).filter(|m| *m >= load_len).ok_or_else(|| {
            bad_aout(
                name,
                format!("bss_end_addr {bss_end:#x} is below the end of the loaded data {loaded_end:#x}"),
            )
        })?
    };
    let placement = Placement {
        paddr: load_addr,
        data,
        mem_len,
    };
    Ok((placement, u64::from(f.entry_addr)))
}

/// Loads a Multiboot v1 kernel (ELF32 or a.out kludge), writes the information structure with
/// `cmdline` (passed to the kernel exactly as given) and sets the CPU to the Multiboot entry state.
/// Needs at least 1 MiB of RAM and at most [`boot_info::MULTIBOOT_MAX_RAM`]. Nothing is written
/// unless every check passes.
///
/// Segments may lie anywhere in RAM, below 1 MiB too: the PC's 0xA0000–0xFFFFF hole is shadowed
/// RAM on this machine (guest RAM is one block from 0 and answers before any device), so an ELF
/// whose first `PT_LOAD` carries its headers at 0xff000 loads as on QEMU. Refused: a segment past
/// RAM's end, or over the ACPI tables (0xE0000–0xF0000, already in RAM). The information area is
/// placed where no segment is (see `boot_info::place`).
pub fn load_multiboot(
    machine: &mut Machine,
    name: &str,
    bytes: &[u8],
    cmdline: &str,
) -> Result<LoadedImage, LoadError> {
    load_multiboot_avoiding(machine, name, bytes, cmdline, &[], &[])
}

/// A range of guest-physical memory that something besides the kernel needs, named for errors.
pub(crate) type InUse = (u64, u64, &'static str);

/// [`load_multiboot`], with `in_use` ranges `[start, end)` that neither a kernel segment nor the
/// information area may cover (the firmware boot's ROM copy and stack), and boot `modules`.
pub(crate) fn load_multiboot_avoiding(
    machine: &mut Machine,
    name: &str,
    bytes: &[u8],
    cmdline: &str,
    in_use: &[InUse],
    modules: &[super::BootModule],
) -> Result<LoadedImage, LoadError> {
    let header = find_header(name, bytes)?;
    let unsupported = header.flags & 0xFFFF & !SUPPORTED_REQUIRED;
    if unsupported != 0 {
        return Err(LoadError::UnsupportedFlags {
            name: name.to_string(),
            flags: header.flags,
            unsupported,
        });
    }
    let ram = machine.ram.size();
    if ram < boot_info::MIN_RAM {
        return Err(LoadError::RamTooSmall {
            name: name.to_string(),
            need: boot_info::MIN_RAM,
            ram,
        });
    }
    if ram > boot_info::MULTIBOOT_MAX_RAM {
        return Err(LoadError::RamTooLarge {
            name: name.to_string(),
            ram,
            max: boot_info::MULTIBOOT_MAX_RAM,
        });
    }
    boot_info::check_cmdline(name, cmdline)?;

    let (format, placements, entry) = match &header.aout {
        Some(fields) => {
            let (p, entry) = aout_placement(name, bytes, header.offset, fields)?;
            ("Multiboot a.out kludge", vec![p], entry)
        }
        None => {
            let elf = elf32::parse(name, bytes)?;
            ("Multiboot ELF32", elf.segments, elf.entry)
        }
    };
    let acpi = devices::acpi::RESERVED;
    let acpi_in_ram = (ram >= acpi.1).then_some((acpi.0, acpi.1, "the ACPI tables"));
    for p in &placements {
        p.check_in_ram(name, ram)?;
        for &(start, end, region) in in_use.iter().chain(acpi_in_ram.iter()) {
            p.check_clear_of(name, region, start, end)?;
        }
    }
    let entry32 = placements
        .iter()
        .any(|p| p.contains(entry))
        .then_some(entry)
        .and_then(|e| u32::try_from(e).ok())
        .ok_or_else(|| LoadError::EntryNotLoaded {
            name: name.to_string(),
            entry,
        })?;

    let mut taken: Vec<(u64, u64)> = placements
        .iter()
        .map(|p| (p.paddr, p.mem_len))
        .chain(in_use.iter().map(|&(start, end, _)| (start, end - start)))
        .collect();
    // Modules first, each after what is already taken (as QEMU does), then the information.
    let mut placed_modules = Vec::with_capacity(modules.len());
    for module in modules {
        let len = module.bytes.len() as u64;
        let start = boot_info::place_module(ram, &taken, len).ok_or_else(|| {
            LoadError::NoRoomForModule {
                name: name.to_string(),
                module: module.string.clone(),
                len,
            }
        })?;
        taken.push((start, len.max(1)));
        placed_modules.push(boot_info::PlacedModule {
            start,
            end: start + len,
            string: &module.string,
        });
    }
    let need = boot_info::area_len(cmdline.len() as u64, &placed_modules);
    let base = boot_info::place(ram, &taken, need).ok_or_else(|| LoadError::NoRoomForInfo {
        name: name.to_string(),
        need,
    })?;

    let mut segments = super::write_placements(machine, name, &placements)?;
    for (module, at) in modules.iter().zip(&placed_modules) {
        machine
            .ram
            .write(at.start, &module.bytes)
            .map_err(|source| LoadError::Memory {
                name: name.to_string(),
                source,
            })?;
        segments.push((at.start, module.bytes.len() as u64));
    }
    let info = boot_info::write(machine, name, cmdline, base, &placed_modules)?;
    // `place` only returns addresses below 4 GiB.
    machine.cpu = CpuState::multiboot_entry(entry32, info as u32);
    Ok(LoadedImage {
        name: name.to_string(),
        kind: ImageKind::Multiboot,
        format,
        entry,
        segments,
        info_addr: Some(info),
    })
}

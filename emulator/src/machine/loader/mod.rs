//! Image loaders: put a flat binary, a firmware ROM or a Multiboot kernel into a `Machine`.
//! Teaches: what "booting" means to a VMM — bytes placed in guest RAM plus a starting `CpuState`.
//!
//! Three kinds of image, three ways in:
//!
//! | kind | where the bytes go | how the CPU starts |
//! |------|--------------------|--------------------|
//! | [flat binary](load_flat) | RAM at a chosen address (0x7C00 by default, like a boot sector) | real mode at the entry |
//! | [firmware ROM](load_firmware) | read-only below 4 GiB, last 128 KiB copied under 1 MiB | the reset vector F000:FFF0 |
//! | [Multiboot v1 kernel](load_multiboot) | ELF32 `PT_LOAD` segments or a.out-kludge range at physical addresses, anywhere in RAM; the information after them | 32-bit protected mode, EAX = 0x2BADB002, EBX = info |
//! | [Multiboot kernel through firmware](load_multiboot_via_firmware) | as above, plus vmscope's boot ROM with the entry patched in | the reset vector; the ROM switches to protected mode and jumps |
//!
//! Which kind a file is, [`detect`] decides from its bytes (and, for ROMs, its name): a Multiboot
//! kernel when its header is there, a firmware ROM when it is named `*.rom`/`*.bin` and has a ROM's
//! size. Everything else would be a flat binary, but [`load_image`] takes it as one only when it
//! could be one ([`check_flat_plausible`]): a program a boot sector could load, not empty, not all
//! zeros, not text, not compressed, not a DOS/PE executable or a Linux bzImage, and small enough
//! to end below the video memory at 640 KiB (at most [`FLAT_GUESS_LIMIT`] bytes from 0x7C00). A
//! refused file gets an error that names it and says what it looks like instead. A caller that
//! knows it has a flat binary (`vmscope run --format flat`) calls [`load_flat`] directly.
//!
//! Loaders take byte slices, never paths (the emulator crate also runs in the browser); the CLI
//! reads files (at most 512 MiB of one, so `/dev/zero` is an error, not an endless read). Every number that comes from a file is bounds-checked with checked arithmetic, and
//! a loader validates everything before it writes the first byte, so a rejected image leaves the
//! machine untouched.
//!
//! ```
//! use emulator::machine::{loader, Machine};
//! let mut m = Machine::new(1 << 20).unwrap();
//! // A boot sector that halts: `hlt; jmp $-1`, padded and signed with 0x55AA.
//! let mut sector = vec![0u8; 512];
//! sector[..3].copy_from_slice(&[0xF4, 0xEB, 0xFD]);
//! sector[510..].copy_from_slice(&[0x55, 0xAA]);
//! let loaded = loader::load_image(&mut m, "boot.img", &sector, "").unwrap();
//! assert_eq!(loaded.entry, 0x7C00);
//! assert_eq!(m.phys_read(0x7C00, 1), 0xF4);
//! assert_eq!((m.cpu.cs().selector, m.cpu.rip), (0, 0x7C00));
//! ```

mod boot_info;
mod elf32;
mod error;
mod firmware;
mod firmware_boot;
mod flat;
mod multiboot;
mod reader;
#[cfg(test)]
mod tests;

pub use boot_info::{
    memory_map, MemoryRegion, CMDLINE_MAX, INFO_ADDR, INFO_AREA_END, INFO_AREA_START, LOADER_NAME,
    MBI_BOOT_LOADER_NAME, MBI_CMDLINE, MBI_MEM, MBI_MMAP, MBI_MODS, MEMORY_AVAILABLE,
    MEMORY_RESERVED, MULTIBOOT_MAX_RAM,
};
pub use error::LoadError;
pub use firmware::{load_firmware, ROM_LOW_ALIAS_MAX, ROM_MAX, ROM_MIN};
pub use firmware_boot::{load_multiboot_via_firmware, BootMethod, PARAMS_FROM_END, PARAMS_MAGIC};
pub use flat::{load_flat, real_mode_entry, FLAT_DEFAULT_LOAD_ADDR};
pub use multiboot::{
    find_header, load_multiboot, MultibootHeader, BOOTLOADER_MAGIC, HEADER_MAGIC,
    HEADER_SEARCH_LIMIT,
};

use super::Machine;

/// What kind of image a file is, and for flat binaries where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// Raw bytes copied to `load_addr`; if `entry` is set, the CPU starts there in real mode.
    Flat { load_addr: u64, entry: Option<u64> },
    /// A PC firmware image (BIOS) entered through the reset vector.
    FirmwareRom,
    /// A Multiboot v1 kernel (ELF32 or a.out kludge).
    Multiboot,
}

/// What a loader put where, for the CLI to print and tests to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The name the caller gave (usually the file name).
    pub name: String,
    pub kind: ImageKind,
    /// A human label: "flat binary", "firmware ROM", "Multiboot ELF32", "Multiboot a.out kludge".
    pub format: &'static str,
    /// Guest-linear address of the first instruction.
    pub entry: u64,
    /// Guest-physical ranges written, as (address, length), including zero-filled bss.
    pub segments: Vec<(u64, u64)>,
    /// Guest-physical address of the Multiboot information structure, for Multiboot kernels.
    pub info_addr: Option<u64>,
}

impl std::fmt::Display for LoadedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}, entry {:#x}", self.name, self.format, self.entry)?;
        if let Some(info) = self.info_addr {
            write!(f, ", multiboot info at {info:#x}")?;
        }
        for (addr, len) in &self.segments {
            write!(f, "\n  {addr:#010x}..{:#010x} ({len:#x} bytes)", addr + len)?;
        }
        Ok(())
    }
}

/// The largest image file vmscope reads (the CLI and the GUI read at most one byte more): more
/// would not fit a sensible guest, and the cap keeps a device file such as /dev/zero from
/// filling the host's memory.
pub const MAX_IMAGE_BYTES: u64 = 512 << 20;

/// Guesses the kind of an image from its bytes and (for ROMs only) its name. The rules, in order:
///
/// 1. The Multiboot magic 0x1BADB002 at a 4-byte aligned offset with the whole 12-byte header
///    inside the first 8192 bytes → [`ImageKind::Multiboot`]. The checksum is not needed here:
///    a file that carries the magic means to be a kernel, and [`load_multiboot`] then reports
///    a bad checksum instead of silently running the file as something else.
/// 2. A name ending in `.rom` or `.bin` (any case), a size that is a multiple of 64 KiB from
///    64 KiB to 256 KiB, and not an ELF file → [`ImageKind::FirmwareRom`].
/// 3. Anything else → [`ImageKind::Flat`] at 0x7C00 with entry 0x7C00, the boot-sector
///    convention. ELF files land here too; [`load_image`] refuses them with a hint, and refuses
///    every other file that cannot be a flat binary ([`check_flat_plausible`]).
///
/// Callers who know better (a `--load-addr` option, say) call the specific loader directly.
pub fn detect(name: &str, bytes: &[u8]) -> ImageKind {
    if multiboot::magic_offset(bytes).is_some() {
        return ImageKind::Multiboot;
    }
    let lower = name.to_ascii_lowercase();
    let rom_name = lower.ends_with(".rom") || lower.ends_with(".bin");
    if rom_name && firmware::valid_rom_size(bytes.len() as u64) && !elf32::has_elf_magic(bytes) {
        return ImageKind::FirmwareRom;
    }
    ImageKind::Flat {
        load_addr: FLAT_DEFAULT_LOAD_ADDR,
        entry: Some(FLAT_DEFAULT_LOAD_ADDR),
    }
}

/// Detects the image kind with [`detect`] and calls the matching loader. `cmdline` goes to
/// Multiboot kernels and is ignored for the other kinds, which have no way to receive one.
pub fn load_image(
    machine: &mut Machine,
    name: &str,
    bytes: &[u8],
    cmdline: &str,
) -> Result<LoadedImage, LoadError> {
    match detect(name, bytes) {
        ImageKind::Multiboot => load_multiboot(machine, name, bytes, cmdline),
        ImageKind::FirmwareRom => load_firmware(machine, name, bytes),
        ImageKind::Flat { .. } if elf32::has_elf_magic(bytes) => {
            Err(LoadError::ElfWithoutMultiboot {
                name: name.to_string(),
            })
        }
        ImageKind::Flat { load_addr, entry } => {
            check_flat_plausible(name, bytes)?;
            load_flat(machine, name, bytes, load_addr, entry)
        }
    }
}

/// The most bytes a guessed flat binary may have: loaded at 0x7C00, it must end below the
/// video memory at 640 KiB, as a boot sector's program must on a PC.
pub const FLAT_GUESS_LIMIT: u64 = 0xA_0000 - FLAT_DEFAULT_LOAD_ADDR;

/// When nothing else matched, a file is taken as a flat real-mode binary only if it could be
/// one; otherwise the error says what the file looks like instead. Refused, in this order: an
/// empty file; a Linux bzImage ("HdrS" at 0x202); a name ending in `.rom` without a ROM's size;
/// the Multiboot magic with its header cut off; all zeros; text (UTF-8 with line breaks and no
/// other control characters); a gzip, xz, zstd, bzip2 or zip file; a DOS/PE executable ("MZ");
/// more than [`FLAT_GUESS_LIMIT`] bytes. (Asking for a flat binary explicitly, `--format flat`,
/// calls [`load_flat`] and skips this.)
pub fn check_flat_plausible(name: &str, bytes: &[u8]) -> Result<(), LoadError> {
    let refuse = |why: String| {
        Err(LoadError::NotAnImage {
            name: name.to_string(),
            why,
        })
    };
    let lower = name.to_ascii_lowercase();
    if bytes.is_empty() {
        return refuse("the file is empty".into());
    }
    if bytes.get(0x202..0x206) == Some(b"HdrS") {
        return refuse(
            "Linux bzImage (boot protocol header \"HdrS\" at offset 0x202): vmscope cannot boot \
             Linux yet (a `vmscope linux` command is planned, see the issue on booting Linux)"
                .into(),
        );
    }
    if lower.ends_with(".rom") {
        return refuse(format!(
            "named like a firmware ROM, but {:#x} bytes is not a ROM size (64, 128, 192 or 256 KiB)",
            bytes.len()
        ));
    }
    if let Some(at) = multiboot::cut_off_magic_offset(bytes) {
        return refuse(format!(
            "the Multiboot magic at offset {at:#x}, but its 12-byte header is cut off at the end \
             of the file ({:#x} bytes)",
            bytes.len()
        ));
    }
    if bytes.iter().all(|&b| b == 0) {
        return refuse(format!(
            "{:#x} bytes of zeros: not a kernel, ROM or boot-sector program",
            bytes.len()
        ));
    }
    if looks_like_text(bytes) {
        return refuse(format!(
            "text ({:#x} bytes of UTF-8 with line breaks), not machine code",
            bytes.len()
        ));
    }
    const PACKED: [(&[u8], &str); 6] = [
        (b"\x1f\x8b", "gzip"),
        (b"\xfd7zXZ\0", "xz"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"BZh", "bzip2"),
        (b"PK\x03\x04", "zip"),
        (b"MZ", "DOS/PE executable"),
    ];
    if let Some((_, what)) = PACKED.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        let hint = if *what == "DOS/PE executable" {
            "a DOS or Windows/EFI program, not a flat binary"
        } else {
            "compressed; unpack it first"
        };
        return refuse(format!("a {what} file (its magic at offset 0x0): {hint}"));
    }
    if bytes.len() as u64 > FLAT_GUESS_LIMIT {
        return refuse(format!(
            "not a Multiboot kernel or firmware ROM, and at {:#x} bytes too large for a flat \
             real-mode binary at 0x7c00 (at most {FLAT_GUESS_LIMIT:#x}); use --format flat to load \
             it anyway",
            bytes.len()
        ));
    }
    Ok(())
}

/// Text, not code: valid UTF-8 with at least one line break and no control characters but tab,
/// line feed and carriage return.
fn looks_like_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| {
        s.contains('\n')
            && s.chars()
                .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
    })
}

/// [`load_image`], but a Multiboot kernel with [`BootMethod::Firmware`] starts at RESET and
/// reaches its entry through `firmware` (see [`load_multiboot_via_firmware`]). ROMs and flat
/// binaries already start in real mode; for them the boot method changes nothing.
pub fn load_image_with_boot(
    machine: &mut Machine,
    name: &str,
    bytes: &[u8],
    cmdline: &str,
    boot: BootMethod,
    firmware: &[u8],
) -> Result<LoadedImage, LoadError> {
    load_image_with_modules(machine, name, bytes, cmdline, boot, firmware, &[])
}

/// A Multiboot boot module: bytes the loader puts in RAM for the kernel (an initial ramdisk, a
/// program, data), listed in the information structure with its string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootModule {
    /// What the kernel reads as the module's string: by GRUB's and QEMU's convention its file
    /// name and arguments (`vmscope run --module "FILE ARGS"`).
    pub string: String,
    pub bytes: Vec<u8>,
}

/// [`load_image_with_boot`] with Multiboot `modules`, each placed page-aligned after the kernel
/// as QEMU's `-initrd "file args,file"` places them (see `boot_info`). Other images refuse
/// modules.
pub fn load_image_with_modules(
    machine: &mut Machine,
    name: &str,
    bytes: &[u8],
    cmdline: &str,
    boot: BootMethod,
    firmware: &[u8],
    modules: &[BootModule],
) -> Result<LoadedImage, LoadError> {
    let kind = detect(name, bytes);
    match (boot, kind) {
        (BootMethod::Firmware, ImageKind::Multiboot) => {
            firmware_boot::load_multiboot_via_firmware_with_modules(
                machine, name, bytes, cmdline, firmware, modules,
            )
        }
        (_, ImageKind::Multiboot) => {
            multiboot::load_multiboot_avoiding(machine, name, bytes, cmdline, &[], modules)
        }
        _ if !modules.is_empty() => Err(LoadError::ModulesNeedMultiboot {
            name: name.to_string(),
            kind: match kind {
                ImageKind::FirmwareRom => "firmware ROM",
                _ => "flat binary",
            },
        }),
        _ => load_image(machine, name, bytes, cmdline),
    }
}

/// One range of guest-physical memory a loader will fill: `data` first, then zeros up to
/// `mem_len` (an ELF segment's bss, or a.out `bss_end_addr`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement<'a> {
    pub paddr: u64,
    pub data: &'a [u8],
    pub mem_len: u64,
}

impl Placement<'_> {
    pub fn end(&self) -> Option<u64> {
        self.paddr.checked_add(self.mem_len)
    }

    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.paddr && self.end().is_some_and(|end| addr < end)
    }

    /// Checks that the whole range lies inside guest RAM.
    pub fn check_in_ram(&self, name: &str, ram: u64) -> Result<(), LoadError> {
        match self.end() {
            Some(end) if end <= ram => Ok(()),
            _ => Err(LoadError::SegmentOutsideRam {
                name: name.to_string(),
                paddr: self.paddr,
                len: self.mem_len,
                ram,
            }),
        }
    }

    /// Checks that the range stays clear of `[start, end)`, a region named for the message.
    pub fn check_clear_of(
        &self,
        name: &str,
        region: &'static str,
        start: u64,
        end: u64,
    ) -> Result<(), LoadError> {
        let seg_end = self.end().unwrap_or(u64::MAX);
        if self.mem_len > 0 && self.paddr < end && start < seg_end {
            return Err(LoadError::Overlap {
                name: name.to_string(),
                paddr: self.paddr,
                len: self.mem_len,
                region,
                start,
                end,
            });
        }
        Ok(())
    }
}

/// Writes checked placements into RAM (data, then zero fill) and returns their ranges.
pub(crate) fn write_placements(
    machine: &mut Machine,
    name: &str,
    placements: &[Placement<'_>],
) -> Result<Vec<(u64, u64)>, LoadError> {
    let mem_err = |source| LoadError::Memory {
        name: name.to_string(),
        source,
    };
    let mut written = Vec::with_capacity(placements.len());
    for p in placements {
        machine.ram.write(p.paddr, p.data).map_err(mem_err)?;
        let file_len = p.data.len() as u64;
        let zero_len = p.mem_len.saturating_sub(file_len);
        if zero_len > 0 {
            let zero_len = usize::try_from(zero_len).map_err(|_| {
                mem_err(crate::memory::MemoryError::OutOfRange {
                    addr: p.paddr + file_len,
                    len: zero_len,
                    size: machine.ram.size(),
                })
            })?;
            machine
                .ram
                .fill(p.paddr + file_len, zero_len, 0)
                .map_err(mem_err)?;
        }
        written.push((p.paddr, p.mem_len));
    }
    Ok(written)
}

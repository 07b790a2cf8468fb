//! `LoadError`: everything that can be wrong with an image file, each message naming the file.
//! Teaches: a loader meets hostile input; a good error says which file, which field, which offset.

use thiserror::Error;

use crate::memory::MemoryError;

/// Why an image could not be loaded. Every variant carries the image name the caller gave, and
/// offsets/addresses in hex so they can be matched against `xxd`/`readelf` output.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// {name}: {why}
    #[error("{name}: {why}")]
    NotAnImage { name: String, why: String },

    /// {name}: {what} at offset {offset:#x} is truncated (need {need} bytes, file has {have:#x})
    #[error(
        "{name}: {what} at offset {offset:#x} is truncated (need {need} bytes, file has {have:#x})"
    )]
    Truncated {
        name: String,
        what: String,
        offset: u64,
        need: u64,
        have: u64,
    },

    /// {name}: no Multiboot header (magic 0x1BADB002 at a 4-byte aligned offset) in the first 8192 bytes
    #[error(
        "{name}: no Multiboot header (magic 0x1BADB002 at a 4-byte aligned offset) in the first 8192 bytes"
    )]
    NoMultibootHeader { name: String },

    /// {name}: Multiboot header at offset {offset:#x} has a bad checksum (magic + flags + checksum = {sum:#x}, must be 0)
    #[error(
        "{name}: Multiboot header at offset {offset:#x} has a bad checksum \
         (magic + flags + checksum = {sum:#x}, must be 0)"
    )]
    BadChecksum { name: String, offset: u64, sum: u32 },

    /// {name}: an ELF file without a Multiboot header in its first 8192 bytes; vmscope boots ELF kernels through Multiboot v1
    #[error(
        "{name}: an ELF file without a Multiboot header in its first 8192 bytes; \
         vmscope boots ELF kernels through Multiboot v1 (add a header with magic 0x1BADB002)"
    )]
    ElfWithoutMultiboot { name: String },

    /// {name}: not a loadable ELF32 i386 executable: {detail}
    #[error("{name}: not a loadable ELF32 i386 executable: {detail}")]
    NotElf32 { name: String, detail: String },

    /// {name}: Multiboot header flags {flags:#x} require features vmscope cannot provide (bits {unsupported:#x})
    #[error(
        "{name}: Multiboot header flags {flags:#x} require features vmscope cannot provide \
         (bits {unsupported:#x}; bit 2 = video mode, bits 3-15 are undefined)"
    )]
    UnsupportedFlags {
        name: String,
        flags: u32,
        unsupported: u32,
    },

    /// {name}: Multiboot a.out-kludge address fields are inconsistent: {detail}
    #[error("{name}: Multiboot a.out-kludge address fields are inconsistent: {detail}")]
    BadAoutFields { name: String, detail: String },

    /// {name}: segment at physical {paddr:#x}+{len:#x} lies outside guest RAM ({ram:#x} bytes)
    #[error(
        "{name}: segment at physical {paddr:#x}+{len:#x} lies outside guest RAM ({ram:#x} bytes)"
    )]
    SegmentOutsideRam {
        name: String,
        paddr: u64,
        len: u64,
        ram: u64,
    },

    /// {name}: image of {size:#x} bytes is larger than guest RAM ({ram:#x} bytes)
    #[error("{name}: image of {size:#x} bytes is larger than guest RAM ({ram:#x} bytes)")]
    ImageTooLarge { name: String, size: u64, ram: u64 },

    /// {name}: firmware ROM is {size:#x} bytes; it must be a multiple of 64 KiB from 64 KiB to 256 KiB
    #[error(
        "{name}: firmware ROM is {size:#x} bytes; it must be a multiple of 64 KiB from 64 KiB to 256 KiB"
    )]
    RomSize { name: String, size: u64 },

    /// {name}: not a vmscope boot firmware: no "VMSCBOOT" parameter block {from_end:#x} bytes before its end
    #[error("{name}: not a vmscope boot firmware: no \"VMSCBOOT\" parameter block {from_end:#x} bytes before its end")]
    NoParameterBlock { name: String, from_end: u64 },

    /// {name}: needs at least {need:#x} bytes of guest RAM, the machine has {ram:#x}
    #[error("{name}: needs at least {need:#x} bytes of guest RAM, the machine has {ram:#x}")]
    RamTooSmall { name: String, need: u64, ram: u64 },

    /// {name}: segment at physical {paddr:#x}+{len:#x} overlaps {region} ({start:#x}..{end:#x})
    #[error(
        "{name}: segment at physical {paddr:#x}+{len:#x} overlaps {region} ({start:#x}..{end:#x})"
    )]
    Overlap {
        name: String,
        paddr: u64,
        len: u64,
        region: &'static str,
        start: u64,
        end: u64,
    },

    /// {name}: guest RAM of {ram:#x} bytes is more than a Multiboot boot supports ({max:#x}, …)
    #[error(
        "{name}: guest RAM of {ram:#x} bytes ({} MiB) is more than a Multiboot boot on this machine \
         supports: at most {max:#x} ({} MiB; above it RAM would cover the PCI memory window at \
         0xe0000000, and vmscope maps no RAM above 4 GiB yet); use a smaller --memory",
        ram >> 20,
        max >> 20
    )]
    RamTooLarge { name: String, ram: u64, max: u64 },

    /// {name}: no free usable RAM below 4 GiB for the {need:#x}-byte Multiboot information area
    #[error(
        "{name}: no free usable RAM below 4 GiB for the {need:#x}-byte Multiboot information area \
         (information structure, memory map, loader name, command line): the kernel's segments \
         cover it all"
    )]
    NoRoomForInfo { name: String, need: u64 },

    /// {name}: no free usable RAM below 4 GiB for module {module} ({len:#x} bytes)
    #[error(
        "{name}: no free usable RAM below 4 GiB for module {module} ({len:#x} bytes) after the \
         kernel's segments: give the machine more --memory"
    )]
    NoRoomForModule {
        name: String,
        module: String,
        len: u64,
    },

    /// {name}: boot modules need a Multiboot kernel; this image is a {kind}
    #[error("{name}: boot modules (--module) need a Multiboot kernel; this image is a {kind}")]
    ModulesNeedMultiboot { name: String, kind: &'static str },

    /// {name}: entry point {entry:#x} is not inside any loaded segment
    #[error("{name}: entry point {entry:#x} is not inside any loaded segment")]
    EntryNotLoaded { name: String, entry: u64 },

    /// {name}: entry point {entry:#x} is at or above 1 MiB, out of reach of real mode
    #[error("{name}: entry point {entry:#x} is at or above 1 MiB, out of reach of real mode")]
    EntryNotRealMode { name: String, entry: u64 },

    /// {name}: command line of {len} bytes does not fit the {max}-byte Multiboot command-line area
    #[error("{name}: command line of {len} bytes does not fit the {max}-byte Multiboot command-line area")]
    CmdlineTooLong { name: String, len: u64, max: u64 },

    /// {name}: writing guest RAM failed: {source}
    #[error("{name}: writing guest RAM failed: {source}")]
    Memory { name: String, source: MemoryError },
}

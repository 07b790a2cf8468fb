//! ELF32 executables: find the `PT_LOAD` segments and where they belong in physical memory.
//! Teaches: an ELF file is a header, a table of program headers, and byte ranges to copy.
//!
//! Only what a boot loader needs is read: the 52-byte file header (class, byte order, type,
//! machine, entry, program-header table position) and each 32-byte program header. A loadable
//! segment copies `p_filesz` bytes from `p_offset` to physical address `p_paddr` and zero-fills
//! up to `p_memsz` (that tail is `.bss`). Section headers are irrelevant to loading and ignored.
//!
//! Higher-half kernels link `e_entry` at a virtual address; like GRUB 2, when `e_entry` falls
//! inside a segment's `[p_vaddr, p_vaddr + p_memsz)` we translate it to the matching physical
//! address, because the kernel starts with paging off.

use super::reader::ImageBytes;
use super::{LoadError, Placement};

const ELF_MAGIC: [u8; 4] = [0x7F, b'E', b'L', b'F'];
const ELFCLASS32: u8 = 1;
const ELFDATA2LSB: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_386: u16 = 3;
const PT_LOAD: u32 = 1;
/// `e_phnum` value meaning "the real count is elsewhere" (extended numbering); not supported.
const PN_XNUM: u16 = 0xFFFF;
const EHDR_SIZE: u64 = 52;
const PHDR_SIZE: u64 = 32;

pub(crate) fn has_elf_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(&ELF_MAGIC)
}

/// The loadable parts of an ELF32 file.
pub(crate) struct ElfImage<'a> {
    /// Physical entry address (translated from virtual if it lies in a segment's virtual range).
    pub entry: u64,
    pub segments: Vec<Placement<'a>>,
}

fn not_elf(name: &str, detail: String) -> LoadError {
    LoadError::NotElf32 {
        name: name.to_string(),
        detail,
    }
}

/// Parses the headers of an ELF32 little-endian i386 executable. Checks every offset and length
/// against the file; does not check RAM (the caller knows the machine).
pub(crate) fn parse<'a>(name: &str, bytes: &'a [u8]) -> Result<ElfImage<'a>, LoadError> {
    let file = ImageBytes::new(name, bytes);
    if !has_elf_magic(bytes) {
        return Err(not_elf(name, "missing the \\x7fELF magic".into()));
    }
    let ehdr = file.slice(0, EHDR_SIZE, "ELF header")?;
    match ehdr[4] {
        ELFCLASS32 => {}
        2 => {
            return Err(not_elf(
                name,
                "ELFCLASS64 (a 64-bit file); Multiboot v1 loads ELFCLASS32 only".into(),
            ))
        }
        c => return Err(not_elf(name, format!("unknown ELF class {c}"))),
    }
    if ehdr[5] != ELFDATA2LSB {
        return Err(not_elf(
            name,
            format!("data encoding {} is not little-endian (1)", ehdr[5]),
        ));
    }
    let e_type = file.u16(16, "ELF header")?;
    if e_type != ET_EXEC {
        return Err(not_elf(
            name,
            format!("e_type {e_type} is not ET_EXEC (2); relocatable and shared objects need relocation"),
        ));
    }
    let e_machine = file.u16(18, "ELF header")?;
    if e_machine != EM_386 {
        return Err(not_elf(
            name,
            format!("e_machine {e_machine} is not EM_386 (3)"),
        ));
    }
    let e_entry = u64::from(file.u32(24, "ELF header")?);
    let e_phoff = u64::from(file.u32(28, "ELF header")?);
    let e_phentsize = u64::from(file.u16(42, "ELF header")?);
    let e_phnum = file.u16(44, "ELF header")?;
    if e_phnum == 0 {
        return Err(not_elf(name, "no program headers (e_phnum = 0)".into()));
    }
    if e_phnum == PN_XNUM {
        return Err(not_elf(
            name,
            "extended program header numbering (e_phnum = 0xffff) is not supported".into(),
        ));
    }
    if e_phentsize < PHDR_SIZE {
        return Err(not_elf(
            name,
            format!("e_phentsize {e_phentsize} is smaller than an Elf32_Phdr ({PHDR_SIZE})"),
        ));
    }

    let mut segments = Vec::new();
    let mut entry = None;
    for i in 0..u64::from(e_phnum) {
        // e_phoff < 2^32, i * e_phentsize < 2^32: the sum fits easily in u64.
        let offset = e_phoff + i * e_phentsize;
        let what = format!("ELF program header {i}");
        let ph = file.slice(offset, PHDR_SIZE, &what)?;
        let field = |at: usize| u64::from(super::reader::le32(ph, at));
        if field(0) as u32 != PT_LOAD {
            continue;
        }
        let (p_offset, p_vaddr, p_paddr) = (field(4), field(8), field(12));
        let (p_filesz, p_memsz) = (field(16), field(20));
        if p_filesz > p_memsz {
            return Err(not_elf(
                name,
                format!(
                    "program header {i}: p_filesz {p_filesz:#x} is larger than p_memsz {p_memsz:#x}"
                ),
            ));
        }
        if p_memsz == 0 {
            continue;
        }
        let data = file.slice(p_offset, p_filesz, &format!("ELF segment {i} data"))?;
        if entry.is_none() && e_entry >= p_vaddr && e_entry - p_vaddr < p_memsz {
            entry = Some(p_paddr + (e_entry - p_vaddr));
        }
        segments.push(Placement {
            paddr: p_paddr,
            data,
            mem_len: p_memsz,
        });
    }
    if segments.is_empty() {
        return Err(not_elf(name, "no non-empty PT_LOAD segments".into()));
    }
    Ok(ElfImage {
        entry: entry.unwrap_or(e_entry),
        segments,
    })
}

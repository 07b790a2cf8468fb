//! Tests for the image loaders, with a tiny builder for ELF32 and a.out-kludge kernels.
//! Teaches: how to test a parser — build the exact bytes in the test, then break them on purpose.

mod flat_rom;
mod fuzz;
mod multiboot;
mod placement;

use crate::machine::Machine;

pub const MB_MAGIC: u32 = 0x1BAD_B002;
/// Flags bit 1 ("give me memory information"), the usual request.
pub const MB_MEMINFO: u32 = 1 << 1;
pub const MB_AOUT: u32 = 1 << 16;

pub fn machine(ram: u64) -> Machine {
    Machine::new(ram).expect("allocate guest RAM")
}

pub fn put32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn put16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// The 12-byte Multiboot header with a correct checksum.
pub fn mb_header(flags: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    put32(&mut h, 0, MB_MAGIC);
    put32(&mut h, 4, flags);
    put32(&mut h, 8, 0u32.wrapping_sub(MB_MAGIC).wrapping_sub(flags));
    h
}

pub fn read32(m: &Machine, addr: u64) -> u32 {
    m.ram.read_le(addr, 4).expect("read inside RAM") as u32
}

pub fn read64(m: &Machine, addr: u64) -> u64 {
    m.ram.read_le(addr, 8).expect("read inside RAM")
}

pub fn read_cstr(m: &Machine, addr: u64) -> String {
    let bytes = &m.ram.as_slice()[addr as usize..];
    let end = bytes.iter().position(|&b| b == 0).expect("NUL terminator");
    String::from_utf8(bytes[..end].to_vec()).expect("UTF-8")
}

/// One ELF program header to emit: PT_LOAD unless `p_type` says otherwise.
#[derive(Clone)]
pub struct ElfSeg {
    pub p_type: u32,
    pub vaddr: u32,
    pub paddr: u32,
    pub data: Vec<u8>,
    pub memsz: u32,
}

impl ElfSeg {
    pub fn load(paddr: u32, data: Vec<u8>, memsz: u32) -> Self {
        ElfSeg {
            p_type: 1,
            vaddr: paddr,
            paddr,
            data,
            memsz,
        }
    }
}

/// Offset where [`elf32`] puts the Multiboot header (right after up to 8 program headers).
pub const ELF_MB_OFFSET: usize = 52 + 8 * 32;

/// Builds an ELF32 i386 ET_EXEC file: header, program headers at 52, an optional Multiboot
/// header at [`ELF_MB_OFFSET`], then each segment's data on a 16-byte boundary.
pub fn elf32(entry: u32, segs: &[ElfSeg], mb_flags: Option<u32>) -> Vec<u8> {
    assert!(segs.len() <= 8);
    let mut out = vec![0u8; ELF_MB_OFFSET + 16];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 1; // ELFCLASS32
    out[5] = 1; // little-endian
    out[6] = 1; // EV_CURRENT
    put16(&mut out, 16, 2); // ET_EXEC
    put16(&mut out, 18, 3); // EM_386
    put32(&mut out, 20, 1);
    put32(&mut out, 24, entry);
    put32(&mut out, 28, 52); // e_phoff
    put16(&mut out, 40, 52); // e_ehsize
    put16(&mut out, 42, 32); // e_phentsize
    put16(&mut out, 44, segs.len() as u16);
    if let Some(flags) = mb_flags {
        out[ELF_MB_OFFSET..ELF_MB_OFFSET + 12].copy_from_slice(&mb_header(flags));
    }
    for (i, s) in segs.iter().enumerate() {
        let offset = out.len().next_multiple_of(16);
        out.resize(offset, 0);
        out.extend_from_slice(&s.data);
        let ph = 52 + i * 32;
        put32(&mut out, ph, s.p_type);
        put32(&mut out, ph + 4, offset as u32);
        put32(&mut out, ph + 8, s.vaddr);
        put32(&mut out, ph + 12, s.paddr);
        put32(&mut out, ph + 16, s.data.len() as u32);
        put32(&mut out, ph + 20, s.memsz);
        put32(&mut out, ph + 24, 5);
        put32(&mut out, ph + 28, 0x1000);
    }
    out
}

/// The a.out-kludge address fields, in header order.
#[derive(Clone, Copy)]
pub struct Aout {
    pub header_addr: u32,
    pub load_addr: u32,
    pub load_end_addr: u32,
    pub bss_end_addr: u32,
    pub entry_addr: u32,
}

/// Builds a kludge kernel: `code` at file offset 0, then the 32-byte header at `header_offset`
/// (≥ code.len(), 4-aligned), then `tail` bytes after the header.
pub fn aout_image(code: &[u8], header_offset: usize, a: Aout, flags: u32, tail: &[u8]) -> Vec<u8> {
    let mut out = code.to_vec();
    out.resize(header_offset, 0x90);
    out.extend_from_slice(&mb_header(flags | MB_AOUT));
    for v in [
        a.header_addr,
        a.load_addr,
        a.load_end_addr,
        a.bss_end_addr,
        a.entry_addr,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(tail);
    out
}

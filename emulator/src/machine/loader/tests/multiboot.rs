//! Multiboot loading: segments, the information structure, the entry state, and every refusal.
//! Teaches: what a kernel can rely on at its first instruction, checked byte by byte.

use super::*;
use crate::cpu::{reg, CpuMode};
use crate::machine::loader::{
    load_image, load_multiboot, ImageKind, LoadError, INFO_ADDR, MBI_BOOT_LOADER_NAME, MBI_CMDLINE,
    MBI_MEM, MBI_MMAP, MEMORY_AVAILABLE, MEMORY_RESERVED,
};

const MIB: u64 = 1 << 20;

fn two_segment_kernel() -> Vec<u8> {
    let text: Vec<u8> = (0..0x40u8).map(|i| i ^ 0xA5).collect();
    let data = vec![0x11u8; 0x10];
    elf32(
        0x10_0004,
        &[
            ElfSeg::load(0x10_0000, text, 0x40),
            ElfSeg::load(0x10_1000, data, 0x100),
        ],
        Some(MB_MEMINFO),
    )
}

#[test]
fn elf_segments_land_at_their_physical_addresses_with_bss_zeroed() {
    let mut m = machine(4 * MIB);
    m.ram.fill(0x10_0000, 0x2000, 0xCC).unwrap();
    let loaded = load_multiboot(&mut m, "k.elf", &two_segment_kernel(), "").unwrap();

    assert_eq!(loaded.kind, ImageKind::Multiboot);
    assert_eq!(loaded.format, "Multiboot ELF32");
    assert_eq!(loaded.segments, vec![(0x10_0000, 0x40), (0x10_1000, 0x100)]);
    assert_eq!(loaded.entry, 0x10_0004);
    assert_eq!(loaded.info_addr, Some(INFO_ADDR));
    let ram = m.ram.as_slice();
    for i in 0..0x40usize {
        assert_eq!(ram[0x10_0000 + i], i as u8 ^ 0xA5, "text byte {i}");
    }
    assert_eq!(
        ram[0x10_0040], 0xCC,
        "nothing written past the text segment"
    );
    assert!(ram[0x10_1000..0x10_1010].iter().all(|&b| b == 0x11));
    assert!(
        ram[0x10_1010..0x10_1100].iter().all(|&b| b == 0),
        "bss zeroed"
    );
    assert_eq!(ram[0x10_1100], 0xCC, "nothing written past the bss");
}

#[test]
fn information_structure_reads_back_from_guest_ram() {
    let mut m = machine(4 * MIB);
    let cmdline = "console=ttyS0 loglevel=7";
    load_multiboot(&mut m, "k.elf", &two_segment_kernel(), cmdline).unwrap();

    let info = INFO_ADDR;
    let flags = read32(&m, info);
    assert_eq!(
        flags,
        MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_BOOT_LOADER_NAME
    );
    assert_eq!(read32(&m, info + 4), 639, "mem_lower");
    assert_eq!(
        read32(&m, info + 8),
        3 * 1024,
        "mem_upper: 4 MiB - 1 MiB in KiB"
    );
    assert_eq!(read_cstr(&m, read32(&m, info + 16) as u64), cmdline);
    assert_eq!(read_cstr(&m, read32(&m, info + 64) as u64), "vmscope");

    let mmap_len = read32(&m, info + 44) as u64;
    let mmap_addr = read32(&m, info + 48) as u64;
    let mut entries = Vec::new();
    let mut at = mmap_addr;
    while at < mmap_addr + mmap_len {
        let size = read32(&m, at) as u64;
        assert_eq!(size, 20);
        entries.push((read64(&m, at + 4), read64(&m, at + 12), read32(&m, at + 20)));
        at += size + 4;
    }
    assert_eq!(at, mmap_addr + mmap_len, "entries exactly fill mmap_length");
    assert_eq!(
        entries,
        vec![
            (0, 0x9_FC00, MEMORY_AVAILABLE),
            (0x9_FC00, 0x400, MEMORY_RESERVED),
            (0xE_0000, 0x1_0000, MEMORY_RESERVED),
            (0xF_0000, 0x1_0000, MEMORY_RESERVED),
            (0x10_0000, 3 * MIB, MEMORY_AVAILABLE),
        ]
    );
}

#[test]
fn cpu_starts_in_flat_32_bit_protected_mode_with_the_multiboot_registers() {
    let mut m = machine(2 * MIB);
    load_multiboot(&mut m, "k.elf", &two_segment_kernel(), "").unwrap();
    let cpu = &m.cpu;
    assert_eq!(cpu.gpr[reg::RAX], 0x2BAD_B002);
    assert_eq!(cpu.gpr[reg::RBX], INFO_ADDR);
    assert_eq!(cpu.rip, 0x10_0004);
    assert_eq!(cpu.mode(), CpuMode::Protected32);
    assert!(!cpu.paging_enabled());
    let cs = cpu.cs();
    assert_eq!((cs.base, cs.limit, cs.db), (0, 0xFFFF_FFFF, true));
    assert!(cs.is_code());
    assert_eq!(cpu.ss().limit, 0xFFFF_FFFF);
    assert_eq!(cpu.rflags & crate::cpu::flags::IF, 0, "interrupts off");
}

#[test]
fn higher_half_entry_is_translated_through_its_segment() {
    let mut seg = ElfSeg::load(0x20_0000, vec![0xF4; 0x20], 0x20);
    seg.vaddr = 0xC020_0000;
    let image = elf32(0xC020_0010, &[seg], Some(MB_MEMINFO));
    let mut m = machine(4 * MIB);
    let loaded = load_multiboot(&mut m, "hh.elf", &image, "").unwrap();
    assert_eq!(loaded.entry, 0x20_0010);
    assert_eq!(m.cpu.rip, 0x20_0010);
    assert_eq!(m.ram.as_slice()[0x20_0000], 0xF4);
}

#[test]
fn non_load_and_empty_segments_are_skipped() {
    let mut note = ElfSeg::load(0x30_0000, vec![0x77; 8], 8);
    note.p_type = 4; // PT_NOTE
    let empty = ElfSeg::load(0x30_0000, vec![], 0);
    let text = ElfSeg::load(0x10_0000, vec![0xF4], 1);
    let image = elf32(0x10_0000, &[note, empty, text], Some(0));
    let mut m = machine(4 * MIB);
    let loaded = load_multiboot(&mut m, "k.elf", &image, "").unwrap();
    assert_eq!(loaded.segments, vec![(0x10_0000, 1)]);
    assert_eq!(m.ram.as_slice()[0x30_0000], 0, "PT_NOTE not loaded");
}

#[test]
fn aout_kludge_loads_from_the_header_fields_and_zeroes_bss() {
    // Code at file offset 0, header at 0x40; load at 1 MiB to end of file, bss up to +0x1000.
    let code = [0xFA, 0xF4, 0xEB, 0xFD];
    let a = Aout {
        header_addr: 0x10_0040,
        load_addr: 0x10_0000,
        load_end_addr: 0,
        bss_end_addr: 0x10_1000,
        entry_addr: 0x10_0000,
    };
    let image = aout_image(&code, 0x40, a, MB_MEMINFO, &[0xAB; 0x10]);
    let mut m = machine(2 * MIB);
    m.ram.fill(0x10_0000, 0x2000, 0xCC).unwrap();
    let loaded = load_multiboot(&mut m, "k.bin", &image, "x").unwrap();
    assert_eq!(loaded.format, "Multiboot a.out kludge");
    assert_eq!(loaded.segments, vec![(0x10_0000, 0x1000)]);
    let ram = m.ram.as_slice();
    assert_eq!(&ram[0x10_0000..0x10_0004], &code);
    assert_eq!(
        le32(ram, 0x10_0040),
        MB_MAGIC,
        "header lands at header_addr"
    );
    let file_end = 0x10_0000 + image.len();
    assert!(ram[file_end - 0x10..file_end].iter().all(|&b| b == 0xAB));
    assert!(
        ram[file_end..0x10_1000].iter().all(|&b| b == 0),
        "bss zeroed"
    );
    assert_eq!(ram[0x10_1000], 0xCC);
    assert_eq!(m.cpu.rip, 0x10_0000);
    assert_eq!(read_cstr(&m, read32(&m, INFO_ADDR + 16) as u64), "x");
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn aout_kludge_wins_over_the_elf_headers() {
    // An ELF file whose header asks for the kludge: the fields decide, not the program headers.
    let mut image = elf32(0x10_0000, &[ElfSeg::load(0x30_0000, vec![1; 4], 4)], None);
    let hdr = ELF_MB_OFFSET;
    image[hdr..hdr + 12].copy_from_slice(&mb_header(MB_AOUT));
    for (i, v) in [
        0x10_0000u32 + hdr as u32,
        0x10_0000,
        0x10_0000 + 0x20,
        0,
        0x10_0000,
    ]
    .into_iter()
    .enumerate()
    {
        put32(&mut image, hdr + 12 + 4 * i, v);
    }
    let mut m = machine(4 * MIB);
    let loaded = load_multiboot(&mut m, "both.elf", &image, "").unwrap();
    assert_eq!(loaded.format, "Multiboot a.out kludge");
    assert_eq!(loaded.segments, vec![(0x10_0000, 0x20)]);
    assert_eq!(&m.ram.as_slice()[0x10_0000..0x10_0004], b"\x7fELF");
    assert_eq!(m.ram.as_slice()[0x30_0000], 0);
}

#[test]
fn aout_fields_that_contradict_each_other_are_refused() {
    let good = Aout {
        header_addr: 0x10_0040,
        load_addr: 0x10_0000,
        load_end_addr: 0,
        bss_end_addr: 0,
        entry_addr: 0x10_0000,
    };
    let cases = [
        Aout {
            load_addr: 0x10_0080,
            ..good
        }, // load above header
        Aout {
            header_addr: 0x10_1000,
            ..good
        }, // before file start
        Aout {
            load_end_addr: 0xF_0000,
            ..good
        }, // end below start
        Aout {
            bss_end_addr: 0x10_0010,
            ..good
        }, // bss ends inside data
    ];
    let mut m = machine(2 * MIB);
    for (i, a) in cases.into_iter().enumerate() {
        let image = aout_image(&[0xF4], 0x40, a, 0, &[]);
        let err = load_multiboot(&mut m, "bad.bin", &image, "").unwrap_err();
        assert!(
            matches!(err, LoadError::BadAoutFields { .. }),
            "case {i}: {err}"
        );
        assert!(err.to_string().starts_with("bad.bin: "), "{err}");
    }
    // load_end_addr beyond the file: truncated.
    let a = Aout {
        load_end_addr: 0x10_1000,
        ..good
    };
    let err = load_multiboot(
        &mut m,
        "short.bin",
        &aout_image(&[0xF4], 0x40, a, 0, &[]),
        "",
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Truncated {
                need: 0x1000,
                have: 0x60,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_elf_header_is_reported_with_sizes() {
    let mut image = vec![0u8; 40];
    image[..4].copy_from_slice(b"\x7fELF");
    image[16..28].copy_from_slice(&mb_header(0));
    let mut m = machine(2 * MIB);
    let err = load_multiboot(&mut m, "tiny.elf", &image, "").unwrap_err();
    assert_eq!(
        err,
        LoadError::Truncated {
            name: "tiny.elf".into(),
            what: "ELF header".into(),
            offset: 0,
            need: 52,
            have: 40
        }
    );
}

#[test]
fn truncated_program_header_names_its_index_and_offset() {
    let mut image = two_segment_kernel();
    let len = image.len();
    // Point the table so that header 1 runs past the end of the file.
    let phoff = len as u32 - 48;
    put32(&mut image, 28, phoff);
    // Header 0 (at len-48) must be a valid non-load entry so that parsing reaches header 1.
    put32(&mut image, len - 48, 6); // PT_PHDR
    let mut m = machine(2 * MIB);
    let err = load_multiboot(&mut m, "hello.elf", &image, "").unwrap_err();
    let expected = format!(
        "hello.elf: ELF program header 1 at offset {:#x} is truncated (need 32 bytes, file has {:#x})",
        len - 16,
        len
    );
    assert_eq!(err.to_string(), expected);
}

#[test]
fn segment_data_beyond_the_file_is_truncated() {
    let mut image = two_segment_kernel();
    put32(&mut image, 52 + 32 + 4, 0xFFFF_FFF0); // p_offset of segment 1
    let mut m = machine(2 * MIB);
    let err = load_multiboot(&mut m, "k.elf", &image, "").unwrap_err();
    assert!(
        matches!(&err, LoadError::Truncated { what, offset: 0xFFFF_FFF0, need: 0x10, .. } if what == "ELF segment 1 data"),
        "{err}"
    );
}

#[test]
fn missing_header_and_bad_checksum_are_told_apart() {
    let mut m = machine(2 * MIB);
    let no_header = elf32(0x10_0000, &[ElfSeg::load(0x10_0000, vec![0xF4], 1)], None);
    assert!(matches!(
        load_multiboot(&mut m, "plain.elf", &no_header, ""),
        Err(LoadError::NoMultibootHeader { .. })
    ));
    assert!(matches!(
        load_image(&mut m, "plain.elf", &no_header, ""),
        Err(LoadError::ElfWithoutMultiboot { .. })
    ));

    let mut bad = two_segment_kernel();
    bad[ELF_MB_OFFSET + 8] ^= 1;
    let err = load_multiboot(&mut m, "bad.elf", &bad, "").unwrap_err();
    assert!(
        matches!(err, LoadError::BadChecksum { offset, sum: 1, .. } if offset == ELF_MB_OFFSET as u64),
        "{err}"
    );
    // Auto-detection still calls it a kernel, so the user sees the checksum error.
    assert!(matches!(
        load_image(&mut m, "bad.elf", &bad, ""),
        Err(LoadError::BadChecksum { .. })
    ));
}

#[test]
fn header_must_lie_within_the_first_8192_bytes() {
    let a = Aout {
        header_addr: 0,
        load_addr: 0x10_0000,
        load_end_addr: 0,
        bss_end_addr: 0,
        entry_addr: 0x10_0000,
    };
    let mut m = machine(2 * MIB);
    // The last place a 12-byte header fits: offset 8180.
    let fits = aout_image(
        &[0xF4],
        8180,
        Aout {
            header_addr: 0x10_0000 + 8180,
            ..a
        },
        0,
        &[],
    );
    load_multiboot(&mut m, "edge.bin", &fits, "").unwrap();
    let beyond = aout_image(
        &[0xF4],
        8184,
        Aout {
            header_addr: 0x10_0000 + 8184,
            ..a
        },
        0,
        &[],
    );
    assert!(matches!(
        load_multiboot(&mut m, "far.bin", &beyond, ""),
        Err(LoadError::NoMultibootHeader { .. })
    ));
    // An unaligned magic does not count either.
    let mut unaligned = vec![0u8; 64];
    unaligned[6..18].copy_from_slice(&mb_header(0));
    assert!(matches!(
        load_multiboot(&mut m, "odd.bin", &unaligned, ""),
        Err(LoadError::NoMultibootHeader { .. })
    ));
}

#[test]
fn segments_outside_ram_are_refused_and_nothing_is_written() {
    let mut m = machine(2 * MIB);
    let image = elf32(
        0x10_0000,
        &[
            ElfSeg::load(0x10_0000, vec![0x55; 4], 4),
            ElfSeg::load(0x1F_F000, vec![1; 4], 0x2000),
        ],
        Some(0),
    );
    let err = load_multiboot(&mut m, "big.elf", &image, "").unwrap_err();
    assert_eq!(
        err,
        LoadError::SegmentOutsideRam {
            name: "big.elf".into(),
            paddr: 0x1F_F000,
            len: 0x2000,
            ram: 2 * MIB
        }
    );
    assert_eq!(m.ram.as_slice()[0x10_0000], 0, "validated before writing");
    assert_eq!(read32(&m, INFO_ADDR), 0, "no info structure either");

    // A 4 GiB - 1 memsz at a high address must not overflow anything.
    let huge = elf32(
        0x10_0000,
        &[ElfSeg::load(0xFFFF_F000, vec![], 0xFFFF_FFFF)],
        Some(0),
    );
    assert!(matches!(
        load_multiboot(&mut m, "huge.elf", &huge, ""),
        Err(LoadError::SegmentOutsideRam { .. })
    ));
}

#[test]
fn required_flags_we_cannot_honour_are_refused() {
    let mut m = machine(2 * MIB);
    let seg = [ElfSeg::load(0x10_0000, vec![0xF4], 1)];
    // Bits 0 and 1 are fine; optional high bits other than 16 are ignored.
    load_multiboot(
        &mut m,
        "ok.elf",
        &elf32(0x10_0000, &seg, Some(0b11 | 1 << 20)),
        "",
    )
    .unwrap();
    for (flags, unsupported) in [(1u32 << 2, 4u32), (0b11 | 1 << 9, 1 << 9)] {
        let err = load_multiboot(&mut m, "vid.elf", &elf32(0x10_0000, &seg, Some(flags)), "")
            .unwrap_err();
        assert_eq!(
            err,
            LoadError::UnsupportedFlags {
                name: "vid.elf".into(),
                flags,
                unsupported
            }
        );
    }
}

#[test]
fn elf_files_of_the_wrong_kind_are_refused() {
    let mut m = machine(2 * MIB);
    let seg = [ElfSeg::load(0x10_0000, vec![0xF4], 1)];
    let base = elf32(0x10_0000, &seg, Some(0));
    type Mutation = (&'static str, fn(&mut [u8]));
    let mutations: [Mutation; 6] = [
        ("ELFCLASS64", |b| b[4] = 2),
        ("little-endian", |b| b[5] = 2),
        ("ET_EXEC", |b| put16(b, 16, 3)),
        ("EM_386", |b| put16(b, 18, 62)),
        ("e_phentsize", |b| put16(b, 42, 16)),
        ("p_filesz", |b| put32(b, 52 + 20, 0)),
    ];
    for (needle, mutate) in mutations {
        let mut image = base.clone();
        mutate(&mut image);
        let err = load_multiboot(&mut m, "w.elf", &image, "").unwrap_err();
        assert!(
            matches!(err, LoadError::NotElf32 { .. }) && err.to_string().contains(needle),
            "{needle}: {err}"
        );
    }
    // Not an ELF at all (and no kludge): the ELF parser says so.
    let mut raw = vec![0u8; 64];
    raw[..12].copy_from_slice(&mb_header(0));
    assert!(matches!(
        load_multiboot(&mut m, "raw.bin", &raw, ""),
        Err(LoadError::NotElf32 { .. })
    ));
}

#[test]
fn entry_outside_every_segment_is_refused() {
    let mut m = machine(2 * MIB);
    let image = elf32(
        0x18_0000,
        &[ElfSeg::load(0x10_0000, vec![0xF4], 1)],
        Some(0),
    );
    assert_eq!(
        load_multiboot(&mut m, "k.elf", &image, ""),
        Err(LoadError::EntryNotLoaded {
            name: "k.elf".into(),
            entry: 0x18_0000
        })
    );
}

#[test]
fn small_ram_and_long_command_lines_are_refused() {
    let image = two_segment_kernel();
    let mut small = machine(512 << 10);
    assert!(matches!(
        load_multiboot(&mut small, "k.elf", &image, ""),
        Err(LoadError::RamTooSmall { need: MIB, .. })
    ));
    let mut m = machine(2 * MIB);
    let long = "x".repeat(0x8000);
    assert!(matches!(
        load_multiboot(&mut m, "k.elf", &image, &long),
        Err(LoadError::CmdlineTooLong { .. })
    ));
    let longest = "y".repeat(crate::machine::loader::CMDLINE_MAX as usize - 1);
    load_multiboot(&mut m, "k.elf", &image, &longest).unwrap();
    assert_eq!(read_cstr(&m, read32(&m, INFO_ADDR + 16) as u64), longest);
}

#[test]
fn mem_upper_counts_kib_above_one_mib() {
    let mut m = machine(64 * MIB);
    load_image(&mut m, "k.elf", &two_segment_kernel(), "").unwrap();
    assert_eq!(read32(&m, INFO_ADDR + 8), 63 * 1024);
}

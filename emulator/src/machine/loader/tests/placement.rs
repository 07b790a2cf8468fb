//! Where the Multiboot loader puts the information area, which RAM kernels may occupy, the e820 map.
//! Teaches: a boot loader must look at the kernel first and put its own data where the kernel is not.

use super::{elf32, machine, read32, read64, read_cstr, ElfSeg, MB_MEMINFO};
use crate::machine::loader::{
    load_multiboot, load_multiboot_via_firmware, memory_map, LoadError, MemoryRegion, INFO_ADDR,
    MEMORY_AVAILABLE, MEMORY_RESERVED,
};
use crate::machine::Machine;

const MIB: u64 = 1 << 20;

/// `[start, start + len)` and `[a, a + l)` share a byte.
fn overlaps(start: u64, len: u64, a: u64, l: u64) -> bool {
    len > 0 && l > 0 && start < a + l && a < start + len
}

/// Every byte the loader wrote for the kernel's benefit — structure, map, name, command line.
fn info_ranges(m: &Machine, info: u64, cmdline: &str) -> Vec<(u64, u64, &'static str)> {
    vec![
        (info, 116, "information structure"),
        (
            read32(m, info + 48) as u64,
            read32(m, info + 44) as u64,
            "memory map",
        ),
        (read32(m, info + 64) as u64, 8, "boot loader name"),
        (
            read32(m, info + 16) as u64,
            cmdline.len() as u64 + 1,
            "command line",
        ),
    ]
}

#[test]
fn a_kernel_linked_at_0x8000_gets_its_information_elsewhere() {
    let mut m = machine(16 * MIB);
    let code = vec![0xF4; 0x2000];
    let image = elf32(
        0x8000,
        &[ElfSeg::load(0x8000, code.clone(), 0x6000)],
        Some(0),
    );
    let cmdline = "console=ttyS0 answer=42";
    let loaded = load_multiboot(&mut m, "low.elf", &image, cmdline).unwrap();
    let info = loaded.info_addr.unwrap();
    assert_ne!(info, INFO_ADDR);
    for (start, len, what) in info_ranges(&m, info, cmdline) {
        assert!(
            !overlaps(start, len, 0x8000, 0x6000),
            "{what} at {start:#x} inside the kernel"
        );
    }
    assert_eq!(read_cstr(&m, read32(&m, info + 16) as u64), cmdline);
    let mut back = vec![0u8; code.len()];
    m.ram.read(0x8000, &mut back).unwrap();
    assert_eq!(back, code, "the kernel's bytes are intact");
    assert_eq!(read64(&m, 0xA000), 0, "its bss is zero");
}

#[test]
fn the_information_never_overlaps_a_segment_over_many_layouts() {
    let cmdline = "root=/dev/vda quiet loglevel=3";
    // (paddr, memsz) of each segment; the first one's start is the entry.
    let layouts: &[&[(u32, u32)]] = &[
        &[(0x10_0000, 0x3000)],
        &[(0x8000, 0x1000)],
        &[(0x7000, 0x2000), (0x10_0000, 0x1000)],
        &[(0x1000, 0x9_E000)], // all of conventional memory: the info goes above 1 MiB
        &[(0x1000, 0x9_E000), (0x10_0000, 0x20_0000)],
        &[(0xF_F000, 0x1000), (0x10_0000, 0x4000)],
        &[(0x8000, 0x1000), (0x9000, 0x1000), (0xA000, 0x1000)],
        &[(0x10_0000, 0x1000), (0x8000, 0x8000), (0x1_0000, 0x100)],
    ];
    for layout in layouts {
        let mut m = machine(8 * MIB);
        let segs: Vec<ElfSeg> = layout
            .iter()
            .map(|&(p, len)| ElfSeg::load(p, vec![0xCC; 0x100], len))
            .collect();
        let image = elf32(layout[0].0, &segs, Some(0));
        let loaded = load_multiboot(&mut m, "k.elf", &image, cmdline)
            .unwrap_or_else(|e| panic!("{layout:x?}: {e}"));
        let info = loaded.info_addr.unwrap();
        assert_eq!(info % 0x1000, 0, "page-aligned");
        for (start, len, what) in info_ranges(&m, info, cmdline) {
            for &(a, l) in &loaded.segments {
                assert!(
                    !overlaps(start, len, a, l),
                    "{layout:x?}: {what} {start:#x}+{len:#x} overlaps segment {a:#x}+{l:#x}"
                );
            }
            let usable = memory_map(m.ram.size()).iter().any(|r| {
                r.kind == MEMORY_AVAILABLE && start >= r.base && start + len <= r.base + r.len
            });
            assert!(usable, "{layout:x?}: {what} at {start:#x} is in usable RAM");
        }
        assert_eq!(read_cstr(&m, read32(&m, info + 16) as u64), cmdline);
        for &(p, _) in layout.iter() {
            assert_eq!(
                m.phys_read(p as u64, 1),
                0xCC,
                "{layout:x?}: segment at {p:#x}"
            );
        }
    }
}

#[test]
fn an_elf_whose_headers_load_at_0xff000_loads_like_on_qemu() {
    // What GNU ld makes of a kernel linked at 1 MiB: the first PT_LOAD maps the ELF headers
    // (and the Multiboot header) one page below the code.
    let mut m = machine(16 * MIB);
    let image = elf32(
        0x10_0000,
        &[
            ElfSeg::load(0xF_F000, vec![0x7F; 0x200], 0x1000),
            ElfSeg::load(0x10_0000, vec![0xF4; 0x10], 0x10),
        ],
        Some(0),
    );
    let loaded = load_multiboot(&mut m, "ld.elf", &image, "").unwrap();
    assert_eq!(loaded.segments[0], (0xF_F000, 0x1000));
    assert_eq!(m.phys_read(0xF_F000, 1), 0x7F);
    assert_eq!(m.phys_read(0x10_0000, 1), 0xF4);
    // The VGA window and option-ROM area are shadowed RAM too.
    let image = elf32(
        0xB_8000,
        &[ElfSeg::load(0xB_8000, vec![0xF4; 0x10], 0x1000)],
        Some(0),
    );
    load_multiboot(&mut m, "vga.elf", &image, "").unwrap();
    assert_eq!(m.phys_read(0xB_8000, 1), 0xF4);
}

#[test]
fn what_cannot_work_is_refused_with_the_segment_and_what_it_hits() {
    let mut m = machine(16 * MIB);
    let acpi = elf32(
        0xE_0000,
        &[ElfSeg::load(0xE_0000, vec![0xF4; 0x10], 0x100)],
        Some(0),
    );
    let err = load_multiboot(&mut m, "acpi.elf", &acpi, "").unwrap_err();
    assert!(matches!(
        err,
        LoadError::Overlap {
            paddr: 0xE_0000,
            region: "the ACPI tables",
            ..
        }
    ));
    assert!(err.to_string().contains("0xe0000..0xf0000"), "{err}");
    // Through the firmware, the ROM's low copy runs after reset: a segment there is refused.
    let headers = elf32(
        0x10_0000,
        &[
            ElfSeg::load(0xF_F000, vec![0x7F; 0x200], 0x1000),
            ElfSeg::load(0x10_0000, vec![0xF4; 0x10], 0x10),
        ],
        Some(0),
    );
    let err = load_multiboot_via_firmware(&mut m, "ld.elf", &headers, "", guests::FIRMWARE_ROM)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Overlap {
                paddr: 0xF_F000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("boot firmware"), "{err}");
    let past_end = elf32(
        0xFF_F000,
        &[ElfSeg::load(0xFF_F000, vec![0xF4; 0x10], 0x2000)],
        Some(0),
    );
    assert!(matches!(
        load_multiboot(&mut m, "big.elf", &past_end, ""),
        Err(LoadError::SegmentOutsideRam {
            paddr: 0xFF_F000,
            ..
        })
    ));
}

#[test]
fn the_firmware_boot_patches_the_chosen_information_address() {
    let mut m = machine(16 * MIB);
    let image = elf32(
        0x8000,
        &[ElfSeg::load(0x8000, vec![0xF4; 0x10], 0x1000)],
        Some(0),
    );
    let loaded =
        load_multiboot_via_firmware(&mut m, "low.elf", &image, "fw", guests::FIRMWARE_ROM).unwrap();
    let info = loaded.info_addr.unwrap();
    assert_ne!(info, INFO_ADDR);
    let block = 0x1_0000_0000 - 0x20;
    assert_eq!(
        m.phys_read(block + 12, 4),
        info,
        "EBX for the firmware's handoff"
    );
    assert_eq!(m.phys_read(block + 8, 4), 0x8000, "the entry point");
    assert_eq!(read_cstr(&m, read32(&m, info + 16) as u64), "fw");
}

/// The map as the kernel reads it from guest RAM.
fn map_in_ram(m: &Machine, info: u64) -> Vec<MemoryRegion> {
    let (len, addr) = (read32(m, info + 44) as u64, read32(m, info + 48) as u64);
    (0..len / 24)
        .map(|i| MemoryRegion {
            base: read64(m, addr + i * 24 + 4),
            len: read64(m, addr + i * 24 + 12),
            kind: read32(m, addr + i * 24 + 20),
        })
        .collect()
}

#[test]
fn the_memory_map_matches_the_ram_size_up_to_the_pci_window() {
    let kernel = elf32(
        0x10_0000,
        &[ElfSeg::load(0x10_0000, vec![0xF4; 0x10], 0x10)],
        Some(0),
    );
    for ram in [64 * MIB, 256 * MIB, 1024 * MIB, 3 << 30, 0xE000_0000] {
        let mut m = machine(ram);
        let info = load_multiboot(&mut m, "k.elf", &kernel, "")
            .unwrap()
            .info_addr
            .unwrap();
        let map = map_in_ram(&m, info);
        assert_eq!(map, memory_map(ram), "{ram:#x}");
        let upper = map.last().unwrap();
        assert_eq!(
            (upper.base, upper.len, upper.kind),
            (MIB, ram - MIB, MEMORY_AVAILABLE)
        );
        assert_eq!(
            map[0],
            MemoryRegion {
                base: 0,
                len: 0x9_FC00,
                kind: MEMORY_AVAILABLE
            }
        );
        assert!(map[1..map.len() - 1]
            .iter()
            .all(|r| r.kind == MEMORY_RESERVED));
        assert_eq!(read32(&m, info + 8) as u64, (ram - MIB) / 1024, "mem_upper");
    }
    let too_big = 0xE000_0000 + MIB;
    let mut m = machine(too_big);
    let err = load_multiboot(&mut m, "k.elf", &kernel, "").unwrap_err();
    assert!(matches!(err, LoadError::RamTooLarge { ram, max: 0xE000_0000, .. } if ram == too_big));
    assert!(err.to_string().contains("3584 MiB"), "{err}");
    assert!(err.to_string().contains("--memory"), "{err}");
}

#[test]
fn modules_go_page_aligned_after_the_kernel_and_are_listed_after_the_command_line() {
    use crate::machine::loader::{load_image_with_modules, BootMethod, BootModule, MBI_MODS};
    // A kernel whose bss ends at 1 MiB + 0x2345.
    let kernel = kernel_at_1mib(0x2345);
    let modules = [
        BootModule {
            string: "initrd.img root=/dev/ram".into(),
            bytes: vec![0xAB; 5000],
        },
        BootModule {
            string: "empty".into(),
            bytes: Vec::new(),
        },
        BootModule {
            string: "third".into(),
            bytes: vec![7; 3],
        },
    ];
    let mut m = machine(8 * MIB);
    let cmdline = "console=ttyS0";
    let loaded = load_image_with_modules(
        &mut m,
        "k.elf",
        &kernel,
        cmdline,
        BootMethod::Direct,
        &[],
        &modules,
    )
    .unwrap();
    let info = loaded.info_addr.unwrap();
    assert_ne!(read32(&m, info) & MBI_MODS, 0, "flags bit 3");
    assert_eq!(read32(&m, info + 20), 3, "mods_count");
    let list = read32(&m, info + 24) as u64;
    assert!(
        list > read32(&m, info + 16) as u64 + cmdline.len() as u64,
        "after the command line"
    );
    let entry = |i: u64, f: u64| read32(&m, list + 16 * i + 4 * f) as u64;
    // The first after the kernel's last byte, the others each after the one before.
    assert_eq!((entry(0, 0), entry(0, 1)), (0x10_3000, 0x10_3000 + 5000));
    assert_eq!((entry(1, 0), entry(1, 1)), (0x10_5000, 0x10_5000));
    assert_eq!((entry(2, 0), entry(2, 1)), (0x10_6000, 0x10_6003));
    assert_eq!(entry(0, 3), 0, "reserved");
    assert_eq!(read_cstr(&m, entry(0, 2)), "initrd.img root=/dev/ram");
    assert_eq!(read_cstr(&m, entry(1, 2)), "empty");
    assert_eq!(read_cstr(&m, entry(2, 2)), "third");
    assert!(m.ram.as_slice()[0x10_3000..0x10_3000 + 5000]
        .iter()
        .all(|&b| b == 0xAB));
    // Without modules the flag stays clear.
    let mut m = machine(8 * MIB);
    let loaded =
        load_image_with_modules(&mut m, "k.elf", &kernel, "", BootMethod::Direct, &[], &[])
            .unwrap();
    assert_eq!(read32(&m, loaded.info_addr.unwrap()) & MBI_MODS, 0);
}

#[test]
fn a_module_that_does_not_fit_or_a_flat_image_with_modules_is_refused_untouched() {
    use crate::machine::loader::{load_image_with_modules, BootMethod, BootModule};
    let kernel = kernel_at_1mib(0x100);
    let big = [BootModule {
        string: "big".into(),
        bytes: vec![1; 2 << 20],
    }];
    let mut m = machine(2 * MIB);
    let err = load_image_with_modules(&mut m, "k.elf", &kernel, "", BootMethod::Direct, &[], &big)
        .unwrap_err();
    assert!(
        matches!(err, LoadError::NoRoomForModule { ref module, .. } if module == "big"),
        "{err}"
    );
    assert_eq!(m.phys_read(0x10_0000, 1), 0, "nothing written");
    let mut sector = vec![0u8; 512];
    sector[0] = 0xF4;
    let err = load_image_with_modules(
        &mut m,
        "boot.img",
        &sector,
        "",
        BootMethod::Direct,
        &[],
        &big,
    )
    .unwrap_err();
    assert!(
        matches!(err, LoadError::ModulesNeedMultiboot { .. }),
        "{err}"
    );
}

/// A Multiboot ELF kernel of one segment at 1 MiB: 0x100 bytes of HLT, `memsz` bytes in memory.
fn kernel_at_1mib(memsz: u32) -> Vec<u8> {
    elf32(
        0x10_0000,
        &[ElfSeg {
            p_type: 1,
            vaddr: 0x10_0000,
            paddr: 0x10_0000,
            data: vec![0xF4; 0x100],
            memsz,
        }],
        Some(MB_MEMINFO),
    )
}

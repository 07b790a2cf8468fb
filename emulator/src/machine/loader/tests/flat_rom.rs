//! Flat binaries, firmware ROMs and auto-detection.
//! Teaches: real-mode entry arithmetic and the two homes of a BIOS ROM, checked against RAM.

use super::*;
use crate::cpu::{reg, CpuMode, CpuState, Seg};
use crate::machine::loader::{
    detect, load_firmware, load_flat, load_image, real_mode_entry, ImageKind, LoadError,
    FLAT_GUESS_LIMIT,
};
use crate::machine::FOUR_GIB;

const MIB: u64 = 1 << 20;
const KIB: usize = 1 << 10;

#[test]
fn boot_sector_is_detected_loaded_at_7c00_and_entered_at_0000_7c00() {
    let mut sector = vec![0u8; 512];
    sector[..2].copy_from_slice(&[0xEB, 0xFE]);
    sector[510..].copy_from_slice(&[0x55, 0xAA]);
    assert_eq!(
        detect("boot.img", &sector),
        ImageKind::Flat {
            load_addr: 0x7C00,
            entry: Some(0x7C00)
        }
    );
    let mut m = machine(MIB);
    let loaded = load_image(&mut m, "boot.img", &sector, "ignored").unwrap();
    assert_eq!(loaded.segments, vec![(0x7C00, 512)]);
    assert_eq!(loaded.entry, 0x7C00);
    assert_eq!(m.phys_read(0x7DFE, 2), 0xAA55);
    assert_eq!(m.cpu.mode(), CpuMode::Real);
    assert_eq!(
        (m.cpu.cs().selector, m.cpu.cs().base, m.cpu.rip),
        (0, 0, 0x7C00)
    );
    assert_eq!(m.cpu.gpr[reg::RDX] & 0xFF, 0x80, "boot drive in DL");
}

#[test]
fn real_mode_entry_uses_the_64k_segment_containing_the_entry() {
    let cpu = real_mode_entry(0x1_2345);
    assert_eq!(cpu.cs().selector, 0x1000);
    assert_eq!(cpu.cs().base, 0x1_0000);
    assert_eq!(cpu.rip, 0x2345);
    assert_eq!(cpu.linear_rip(), 0x1_2345);
    for seg in Seg::ALL {
        assert_eq!(cpu.seg[seg as usize].selector, 0x1000, "{}", seg.name());
    }
    assert_eq!(cpu.gpr[reg::RSP], 0xFFFE);
    let top = real_mode_entry(0xF_FFFF);
    assert_eq!((top.cs().selector, top.rip), (0xF000, 0xFFFF));
}

#[test]
fn flat_load_without_entry_leaves_the_cpu_alone() {
    let mut m = machine(MIB);
    m.cpu.rip = 0x1234;
    let before = m.cpu.clone();
    let loaded = load_flat(&mut m, "data.bin", &[1, 2, 3], 0x5_0000, None).unwrap();
    assert_eq!(m.cpu, before);
    assert_eq!(loaded.entry, before.linear_rip());
    assert_eq!(m.phys_read(0x5_0000, 4) & 0xFF_FFFF, 0x03_0201);
}

#[test]
fn flat_images_that_do_not_fit_or_cannot_be_entered_are_refused() {
    let mut m = machine(MIB);
    let big = vec![0u8; 2 * MIB as usize];
    assert_eq!(
        load_flat(&mut m, "big.img", &big, 0, Some(0)),
        Err(LoadError::ImageTooLarge {
            name: "big.img".into(),
            size: 2 * MIB,
            ram: MIB
        })
    );
    assert!(matches!(
        load_flat(&mut m, "end.img", &[0; 16], MIB - 8, None),
        Err(LoadError::SegmentOutsideRam { paddr, len: 16, .. }) if paddr == MIB - 8
    ));
    assert!(matches!(
        load_flat(&mut m, "wrap.img", &[0; 16], u64::MAX - 4, None),
        Err(LoadError::SegmentOutsideRam { .. })
    ));
    let mut m4 = machine(4 * MIB);
    assert_eq!(
        load_flat(&mut m4, "high.img", &[0xF4], 2 * MIB, Some(2 * MIB)),
        Err(LoadError::EntryNotRealMode {
            name: "high.img".into(),
            entry: 2 * MIB
        })
    );
    assert_eq!(m4.ram.as_slice()[2 * MIB as usize], 0, "nothing written");
}

fn patterned_rom(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i / 4096) as u8 ^ (i as u8)).collect()
}

#[test]
fn firmware_rom_appears_below_4gib_and_below_1mib_and_cpu_is_at_reset() {
    let rom = patterned_rom(64 * KIB);
    let mut m = machine(2 * MIB);
    m.cpu = real_mode_entry(0x7C00);
    let loaded = load_firmware(&mut m, "bios.rom", &rom).unwrap();
    assert_eq!(loaded.entry, 0xFFFF_FFF0);
    assert_eq!(
        loaded.segments,
        vec![(FOUR_GIB - 0x1_0000, 0x1_0000), (0xF_0000, 0x1_0000)]
    );
    assert_eq!(m.cpu, CpuState::reset());
    assert_eq!(m.rom_base(), Some(0xFFFF_0000));
    // The reset vector reads the ROM's last 16 bytes through the high alias...
    let last16 = 64 * KIB - 16;
    let expect = u32::from_le_bytes(rom[last16..last16 + 4].try_into().unwrap());
    assert_eq!(m.phys_read(0xFFFF_FFF0, 4) as u32, expect);
    // ...and the very same bytes through the low copy at F000:FFF0.
    assert_eq!(m.phys_read(0xF_FFF0, 4) as u32, expect);
    assert_eq!(&m.ram.as_slice()[0xF_0000..0x10_0000], &rom[..]);
}

#[test]
fn larger_roms_copy_their_last_128k_below_1mib() {
    for kib in [128usize, 192, 256] {
        let rom = patterned_rom(kib * KIB);
        let mut m = machine(MIB);
        let loaded = load_firmware(&mut m, "seabios.bin", &rom).unwrap();
        let len = rom.len() as u64;
        assert_eq!(loaded.segments[0], (FOUR_GIB - len, len));
        assert_eq!(loaded.segments[1], (0xE_0000, 0x2_0000));
        assert_eq!(m.phys_read(FOUR_GIB - len, 1) as u8, rom[0], "{kib} KiB");
        assert_eq!(
            &m.ram.as_slice()[0xE_0000..0x10_0000],
            &rom[rom.len() - 128 * KIB..],
            "{kib} KiB"
        );
        assert_eq!(m.ram.as_slice()[0xD_FFFF], 0, "nothing below the low copy");
    }
}

#[test]
fn roms_of_the_wrong_size_or_without_1mib_of_ram_are_refused() {
    let mut m = machine(2 * MIB);
    for size in [
        0usize,
        512,
        64 * KIB - 1,
        64 * KIB + 1,
        96 * KIB,
        320 * KIB,
        1024 * KIB,
    ] {
        assert_eq!(
            load_firmware(&mut m, "odd.rom", &vec![0; size]),
            Err(LoadError::RomSize {
                name: "odd.rom".into(),
                size: size as u64
            }),
            "size {size}"
        );
    }
    assert!(m.rom.is_empty(), "a refused ROM is not installed");
    let mut small = machine(512 << 10);
    assert!(matches!(
        load_firmware(&mut small, "bios.rom", &vec![0; 64 * KIB]),
        Err(LoadError::RamTooSmall { .. })
    ));
}

#[test]
fn detection_follows_the_documented_rules() {
    let rom = vec![0u8; 128 * KIB];
    assert_eq!(detect("BIOS.ROM", &rom), ImageKind::FirmwareRom);
    assert_eq!(detect("seabios.bin", &rom), ImageKind::FirmwareRom);
    assert!(
        matches!(detect("disk.img", &rom), ImageKind::Flat { .. }),
        "name hint needed"
    );
    assert!(matches!(
        detect("odd.rom", &rom[..100 * KIB]),
        ImageKind::Flat { .. }
    ));
    // A Multiboot header wins over the ROM rule, even with a bad checksum.
    let mut kernel = rom.clone();
    kernel[64..76].copy_from_slice(&mb_header(0));
    assert_eq!(detect("kernel.bin", &kernel), ImageKind::Multiboot);
    kernel[72] ^= 0xFF;
    assert_eq!(detect("kernel.bin", &kernel), ImageKind::Multiboot);
    // An ELF file is never a ROM.
    let mut elf = rom.clone();
    elf[..4].copy_from_slice(b"\x7fELF");
    assert!(matches!(detect("x.bin", &elf), ImageKind::Flat { .. }));
    let mut m = machine(MIB);
    assert!(matches!(
        load_image(&mut m, "x.bin", &elf, ""),
        Err(LoadError::ElfWithoutMultiboot { .. })
    ));
    // ROM dispatch through load_image.
    let loaded = load_image(&mut m, "bios.rom", &rom, "").unwrap();
    assert_eq!(loaded.kind, ImageKind::FirmwareRom);
}

#[test]
fn a_file_is_guessed_flat_only_when_it_could_be_a_boot_sector_program() {
    let refused = |name: &str, bytes: &[u8]| -> String {
        let mut m = machine(MIB);
        match load_image(&mut m, name, bytes, "") {
            Err(e @ LoadError::NotAnImage { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with(&format!("{name}: ")), "{text}");
                assert!(
                    m.ram.as_slice() == machine(MIB).ram.as_slice(),
                    "{name}: nothing written"
                );
                text
            }
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
    };
    let mut bz = vec![0x90u8; 4096];
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    assert!(refused("vmlinuz", &bz).contains("Linux bzImage"));
    assert!(refused("e.img", b"").contains("empty"));
    assert!(refused("z.img", &[0; 4096]).contains("zeros"));
    assert!(refused("t.rom", &[0x90; 100]).contains("not a ROM size"));
    assert!(refused("mb.img", &0x1BAD_B002u32.to_le_bytes()).contains("offset 0x0"));
    assert!(refused(
        "README.md",
        "# vmscope\n\nLearn virtualization. \u{2014} x86\n".as_bytes()
    )
    .contains("text"));
    assert!(refused("k.gz", b"\x1f\x8b\x08\0\0\0\0\0").contains("gzip"));
    assert!(refused("a.xz", b"\xfd7zXZ\0\x01").contains("xz"));
    assert!(refused("b.zst", b"\x28\xb5\x2f\xfd\x01").contains("zstd"));
    assert!(refused("c.zip", b"PK\x03\x04\x14\0").contains("zip"));
    assert!(refused("p.exe", b"MZ\x90\0\x03\0").contains("DOS/PE"));
    assert!(
        refused("big.img", &vec![0x90; FLAT_GUESS_LIMIT as usize + 1]).contains("--format flat")
    );
    // What a boot sector could hold is taken: code with a line feed in it, the largest
    // image that still ends below 640 KiB, a one-byte HLT.
    let mut m = machine(MIB);
    let code = b"\xb0\x0a\xe6\xf4\xf4"; // mov al, 10; out 0xf4, al; hlt
    assert_eq!(load_image(&mut m, "c.img", code, "").unwrap().entry, 0x7C00);
    let largest = vec![0x90; FLAT_GUESS_LIMIT as usize];
    assert!(load_image(&mut m, "l.img", &largest, "").is_ok());
    assert!(load_image(&mut m, "h.img", &[0xF4], "").is_ok());
}

#[test]
fn loaded_image_prints_name_format_entry_and_ranges() {
    let mut m = machine(MIB);
    let loaded = load_flat(&mut m, "boot.img", &[0; 512], 0x7C00, Some(0x7C00)).unwrap();
    assert_eq!(
        loaded.to_string(),
        "boot.img: flat binary, entry 0x7c00\n  0x00007c00..0x00007e00 (0x200 bytes)"
    );
}

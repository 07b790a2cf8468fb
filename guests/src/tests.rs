//! Unit tests for the guest images: the headers a loader relies on, checked byte by byte.
//! Teaches: what makes a file bootable — the Multiboot header (magic, flags, checksum, and
//! the a.out-kludge addresses), the ELF32 program headers, and the ROM's reset vector.

use super::*;

const MB_HEADER_MAGIC: u32 = 0x1BAD_B002;
const MB_AOUT_KLUDGE: u32 = 1 << 16;
const LOAD_ADDRESS: u32 = 0x10_0000;

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes(bytes[offset..offset + 2].try_into().unwrap())
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

/// The file offset of the Multiboot header: 4-byte aligned, within the first 8 KiB.
fn multiboot_header(image: &[u8]) -> Option<usize> {
    let searched = image.len().min(8192);
    (0..searched.saturating_sub(11))
        .step_by(4)
        .find(|&off| u32_at(image, off) == MB_HEADER_MAGIC)
}

/// The loadable segments of an ELF32 file: (file offset, address, file size, memory size).
fn elf32_load_segments(image: &[u8]) -> Vec<(u32, u32, u32, u32)> {
    let phoff = u32_at(image, 28) as usize;
    let phentsize = u16_at(image, 42) as usize;
    let phnum = u16_at(image, 44) as usize;
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .filter(|&ph| u32_at(image, ph) == 1) // PT_LOAD
        .map(|ph| {
            (
                u32_at(image, ph + 4),
                u32_at(image, ph + 12),
                u32_at(image, ph + 16),
                u32_at(image, ph + 20),
            )
        })
        .collect()
}

#[test]
fn every_image_is_non_empty_and_names_are_unique() {
    for (i, guest) in all().iter().enumerate() {
        assert!(!guest.image.is_empty(), "{} is empty", guest.name);
        assert!(!guest.description.is_empty());
        for other in &all()[i + 1..] {
            assert_ne!(guest.name, other.name);
            assert_ne!(guest.file_name, other.file_name);
        }
    }
}

#[test]
fn by_name_accepts_short_and_file_names() {
    assert_eq!(by_name("hello64").unwrap().image, HELLO64_ELF);
    assert_eq!(by_name("hello64.elf").unwrap().image, HELLO64_ELF);
    assert_eq!(
        by_name("hello-real.rom").unwrap().kind,
        GuestKind::FirmwareRom
    );
    assert!(by_name("no-such-guest").is_none());
    assert_eq!(all()[0].name, "demo");
}

#[test]
fn endings_agree_with_exit_values() {
    for guest in all() {
        match guest.ending {
            Ending::DebugExit(v) => assert_eq!(guest.exit_value, Some(v), "{}", guest.name),
            _ => assert_eq!(guest.exit_value, None, "{}", guest.name),
        }
        assert!(guest.expected_serial.is_ascii() && guest.expected_serial.ends_with('\n'));
    }
    assert_eq!(qemu_exit_status(exit::OK), 33);
}

#[test]
fn rom_is_64k_with_a_far_jump_at_the_reset_vector() {
    let rom = HELLO_REAL_ROM;
    assert_eq!(rom.len(), 64 * 1024);
    // EA iw iw = JMP ptr16:16; the target must be inside this ROM's segment, F000.
    assert_eq!(rom[0xFFF0], 0xEA, "no far jump at offset 0xFFF0");
    let target_offset = u16_at(rom, 0xFFF1);
    assert_eq!(u16_at(rom, 0xFFF3), 0xF000);
    assert!(target_offset < 0xFFF0);
    assert_ne!(
        rom[target_offset as usize], 0xFF,
        "the jump lands in unused ROM"
    );
}

#[test]
fn multiboot_images_have_a_valid_header() {
    for guest in all().iter().filter(|g| g.kind == GuestKind::Multiboot) {
        let image = guest.image;
        let off = multiboot_header(image)
            .unwrap_or_else(|| panic!("{}: no Multiboot header in the first 8 KiB", guest.name));
        let flags = u32_at(image, off + 4);
        let checksum = u32_at(image, off + 8);
        assert_eq!(
            MB_HEADER_MAGIC.wrapping_add(flags).wrapping_add(checksum),
            0,
            "{}: bad checksum",
            guest.name
        );
        assert_eq!(
            flags & 0xFFFF,
            1 << 1,
            "{}: only 'memory info' is requested",
            guest.name
        );

        if flags & MB_AOUT_KLUDGE != 0 {
            check_aout_kludge(guest, off);
        } else {
            check_elf32(guest);
        }
    }
}

/// The a.out-kludge fields must describe this very file.
fn check_aout_kludge(guest: &Guest, off: usize) {
    let image = guest.image;
    let [header_addr, load_addr, load_end, bss_end, entry] =
        [12, 16, 20, 24, 28].map(|field| u32_at(image, off + field));
    assert_eq!(load_addr, LOAD_ADDRESS, "{}", guest.name);
    // The file byte at `off` is the header, so it lands at load_addr + off.
    assert_eq!(
        header_addr - load_addr,
        off as u32,
        "{}: header_addr",
        guest.name
    );
    assert_eq!(
        (load_end - load_addr) as usize,
        image.len(),
        "{}: load_end_addr",
        guest.name
    );
    assert!(bss_end >= load_end, "{}: bss_end_addr", guest.name);
    assert!(
        entry >= load_addr && entry < load_end,
        "{}: entry_addr",
        guest.name
    );
}

/// An ELF32 x86 executable whose segments all sit in the identity-mapped 1-4 MiB range.
fn check_elf32(guest: &Guest) {
    let image = guest.image;
    assert_eq!(&image[..4], b"\x7fELF", "{}: not an ELF file", guest.name);
    assert_eq!(
        image[4], 1,
        "{}: must be ELF32 (QEMU's -kernel refuses ELF64)",
        guest.name
    );
    assert_eq!(
        u16_at(image, 18),
        3,
        "{}: e_machine must be EM_386",
        guest.name
    );
    let entry = u32_at(image, 24);
    let segments = elf32_load_segments(image);
    assert!(!segments.is_empty(), "{}: no PT_LOAD segment", guest.name);
    for &(offset, addr, file_size, mem_size) in &segments {
        assert!(
            addr >= LOAD_ADDRESS && addr + mem_size <= 0x40_0000,
            "{}: segment at {addr:#x}",
            guest.name
        );
        assert!(
            file_size <= mem_size && (offset + file_size) as usize <= image.len(),
            "{}",
            guest.name
        );
    }
    assert!(
        segments
            .iter()
            .any(|&(_, addr, size, _)| entry >= addr && entry < addr + size),
        "{}: entry {entry:#x} outside the loaded code",
        guest.name
    );
}

#[test]
fn ud_probe_is_fsin_at_the_address_its_description_names() {
    // The description of `ud` names 0x100010; make sure FSIN (D9 FE) is really there.
    let image = UD_ELF;
    let (offset, addr, _, _) = elf32_load_segments(image)
        .into_iter()
        .find(|&(_, addr, size, _)| (addr..addr + size).contains(&0x10_0010))
        .expect("a segment holds 0x100010");
    let at = (offset + 0x10_0010 - addr) as usize;
    assert_eq!(&image[at..at + 2], &[0xD9, 0xFE]);
    assert!(by_name("ud").unwrap().description.contains("0x100010"));
}

#[test]
fn the_boot_loader_is_a_signed_boot_sector_with_its_parameter_block_in_sector_1() {
    let bin = BOOTDISK_BIN;
    assert!(
        bin.len() >= 1024 && bin.len().is_multiple_of(512),
        "{} bytes",
        bin.len()
    );
    assert_eq!(
        &bin[510..512],
        &[0x55, 0xAA],
        "the BIOS boots only signed sectors"
    );
    assert_eq!(
        &bin[512..520],
        b"VMSCDISK",
        "link/bootdisk.ld puts .params at 0x7E00"
    );
    // Unfilled: no entry point, no segments (the loader then refuses to jump).
    assert_eq!(u32_at(bin, 512 + 8), 0);
    assert_eq!(u32_at(bin, 512 + 12), 0);
    // Stage 1 loads _loader_sectors - 1 sectors: the immediate in its first MOVW to
    // dap_count is the file's own length in sectors minus one.
    let sectors = (bin.len() / 512 - 1) as u16;
    let found = bin[..510]
        .windows(2)
        .any(|w| u16::from_le_bytes([w[0], w[1]]) == sectors);
    assert!(found, "stage 1 does not mention {sectors} sectors");
}

#[test]
fn sieve32_prints_the_prime_count_a_host_sieve_finds() {
    // The same algorithm in Rust: one flag per number below 2^20, multiples crossed from p*p.
    let mut composite = vec![false; 1 << 20];
    let mut p = 2;
    while p * p < composite.len() {
        if !composite[p] {
            (p * p..composite.len())
                .step_by(p)
                .for_each(|n| composite[n] = true);
        }
        p += 1;
    }
    let primes = (2..composite.len()).filter(|&n| !composite[n]).count();
    assert_eq!(primes as u32, SIEVE32_PRIMES);
    let g = by_name("sieve32").unwrap();
    assert_eq!(g.expected_serial, sieve32_text(SIEVE32_DEFAULT_ROUNDS));
    assert_eq!(
        sieve32_text(2),
        "sieve32: 82025 primes below 1048576, 2 rounds\n"
    );
    assert!(g.description.contains("rounds=N"));
}

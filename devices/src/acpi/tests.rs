//! Tests of the ACPI tables: checksums, pointers, MADT and FADT contents, the loader script.
//! Teaches: how to check tables the way a guest will read them.

use super::parse::{parse, MadtEntry, ParseError};
use super::*;

/// A 1 MiB guest memory with the tables placed as the machine places them.
fn memory() -> Vec<u8> {
    let mut mem = vec![0u8; 1 << 20];
    for (addr, bytes) in build_tables() {
        mem[addr as usize..addr as usize + bytes.len()].copy_from_slice(&bytes);
    }
    mem
}

fn reader(mem: &[u8]) -> impl Fn(u64, usize) -> Option<Vec<u8>> + '_ {
    move |a, n| {
        mem.get(a as usize..(a as usize).checked_add(n)?)
            .map(|s| s.to_vec())
    }
}

#[test]
fn a_guest_finds_every_table_with_valid_checksums() {
    let mem = memory();
    let info = parse(&reader(&mem)).unwrap();
    assert_eq!(info.rsdp_addr, RSDP_ADDR);
    assert_eq!(info.rsdp_revision, 2);
    let sigs: Vec<&str> = info.rsdt.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(sigs, ["FACP", "APIC"]);
    assert_eq!(info.xsdt, info.rsdt, "RSDT and XSDT list the same tables");
    for (_, addr) in &info.rsdt {
        assert!((RESERVED.0..RESERVED.1).contains(addr));
    }
    assert!(info.dsdt_len > 36, "the DSDT carries the PCI root bridge");
    assert_eq!(info.fadt.x_dsdt, info.fadt.dsdt as u64);
    let facs = info.fadt.facs as usize;
    assert_eq!(&mem[facs..facs + 4], b"FACS");
    assert_eq!(facs % 64, 0, "the FACS must be 64-byte aligned");
}

#[test]
fn the_madt_lists_one_cpu_the_ioapic_and_the_irq0_override() {
    let mem = memory();
    let info = parse(&reader(&mem)).unwrap();
    assert_eq!(info.lapic_addr, 0xFEE0_0000);
    let cpus: Vec<_> = info
        .madt
        .iter()
        .filter(|e| matches!(e, MadtEntry::LocalApic { .. }))
        .collect();
    assert_eq!(
        cpus,
        [&MadtEntry::LocalApic {
            uid: 0,
            apic_id: 0,
            flags: 1
        }]
    );
    assert!(info.madt.contains(&MadtEntry::IoApic {
        id: 0,
        addr: 0xFEC0_0000,
        gsi_base: 0
    }));
    assert!(info.madt.contains(&MadtEntry::SourceOverride {
        bus: 0,
        irq: 0,
        gsi: 2,
        flags: 0
    }));
    assert!(info.madt.contains(&MadtEntry::SourceOverride {
        bus: 0,
        irq: 9,
        gsi: 9,
        flags: 0xD
    }));
}

#[test]
fn the_fadt_points_at_the_pm_registers() {
    let mem = memory();
    let fadt = parse(&reader(&mem)).unwrap().fadt;
    assert_eq!(fadt.revision, 3);
    assert_eq!(fadt.pm_tmr_blk, 0x608);
    assert_eq!(fadt.pm1a_evt_blk, 0x600);
    assert_eq!(fadt.pm1a_cnt_blk, 0x604);
    assert_eq!(fadt.sci_int, 9);
    assert_eq!(fadt.flags & fadt_flags::TMR_VAL_EXT, 0, "24-bit PM timer");
    // The extended address structure of the PM timer: system I/O, 32 bits, port 0x608.
    let (_, fadt_addr) = parse(&reader(&mem)).unwrap().rsdt[0].clone();
    let gas = &mem[fadt_addr as usize + 208..fadt_addr as usize + 220];
    assert_eq!(gas[..4], [1, 32, 0, 3]);
    assert_eq!(u64::from_le_bytes(gas[4..].try_into().unwrap()), 0x608);
}

#[test]
fn a_corrupted_table_is_reported_not_followed() {
    let mut mem = memory();
    let madt = parse(&reader(&mem)).unwrap().rsdt[1].1 as usize;
    mem[madt + 40] ^= 1;
    assert_eq!(
        parse(&reader(&mem)),
        Err(ParseError::BadChecksum {
            signature: "APIC".into(),
            addr: madt as u64
        })
    );
    mem[RSDP_ADDR as usize] = b'X';
    assert_eq!(parse(&reader(&mem)), Err(ParseError::NoRsdp));
}

#[test]
fn a_table_too_short_for_its_fields_is_truncated_not_a_panic() {
    let mut mem = memory();
    let info = parse(&reader(&mem)).unwrap();
    let madt = info.rsdt[1].1 as usize;
    // A 40-byte "MADT" with a valid checksum: no room for its flags field.
    mem[madt + 4..madt + 8].copy_from_slice(&40u32.to_le_bytes());
    mem[madt + 9] = 0;
    mem[madt + 9] = loader::checksum(&mem[madt..madt + 40]);
    assert_eq!(
        parse(&reader(&mem)),
        Err(ParseError::Truncated { addr: madt as u64 })
    );
}

#[test]
fn the_fw_cfg_files_with_the_loader_script_give_the_same_bytes() {
    // A firmware reading fw_cfg would decode the script and run it; it must get our tables.
    let blobs = build();
    let files = blobs.fw_cfg_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [FILE_TABLES, FILE_RSDP, FILE_LOADER]);
    let commands = loader::decode_script(&files[2].1);
    assert_eq!(commands, blobs.commands);
    let rebuilt = AcpiBlobs {
        tables: files[0].1.clone(),
        rsdp: files[1].1.clone(),
        commands,
    };
    assert_eq!(
        rebuilt.place(RSDP_ADDR, TABLES_ADDR).unwrap(),
        build_tables()
    );
    // Placed elsewhere, every pointer moves with the tables.
    let moved = rebuilt.place(0xF_5A10, 0x3FF_0000).unwrap();
    let rsdp = &moved[0].1;
    assert_eq!(
        u32::from_le_bytes(rsdp[16..20].try_into().unwrap()) >> 16,
        0x3FF
    );
    assert_eq!(loader::checksum(&rsdp[..20]), 0);
    assert_eq!(loader::checksum(rsdp), 0);
}

#[test]
fn unpatched_blobs_hold_offsets_and_zero_checksums() {
    let blobs = build();
    assert_eq!(&blobs.tables[0..4], b"FACS");
    assert_eq!(blobs.rsdp[rsdp_field::CHECKSUM as usize], 0);
    let rsdt = u32::from_le_bytes(blobs.rsdp[16..20].try_into().unwrap()) as usize;
    assert_eq!(
        &blobs.tables[rsdt..rsdt + 4],
        b"RSDT",
        "the RSDT pointer is an offset"
    );
    assert!(blobs.tables.len() < (TABLES_ADDR - RSDP_ADDR) as usize + 0x1000);
    assert!(TABLES_ADDR as usize + blobs.tables.len() <= RESERVED.1 as usize);
}

/// Reads a PkgLength at `at`: (the length it states, the bytes it took).
fn read_pkg_length(b: &[u8], at: usize) -> (usize, usize) {
    let extra = (b[at] >> 6) as usize;
    if extra == 0 {
        return ((b[at] & 0x3F) as usize, 1);
    }
    let mut len = (b[at] & 0xF) as usize;
    for i in 0..extra {
        len |= (b[at + 1 + i] as usize) << (4 + 8 * i);
    }
    (len, 1 + extra)
}

/// Reads an AML integer at `at`: (value, bytes taken).
fn read_integer(b: &[u8], at: usize) -> (u64, usize) {
    let n = match b[at] {
        0x00 => return (0, 1),
        0x01 => return (1, 1),
        0x0A => 1,
        0x0B => 2,
        0x0C => 4,
        0x0E => 8,
        op => panic!("not an integer opcode: {op:#x} at {at}"),
    };
    let mut v = [0u8; 8];
    v[..n].copy_from_slice(&b[at + 1..at + 1 + n]);
    (u64::from_le_bytes(v), 1 + n)
}

#[test]
fn the_dsdt_routes_every_slot_and_pin_to_the_gsi_the_bus_raises() {
    let dsdt = tables::dsdt();
    let at = dsdt
        .windows(5)
        .position(|w| w == b"\x08_PRT")
        .expect("Name(_PRT, …)")
        + 5;
    assert_eq!(dsdt[at], 0x12, "_PRT is a Package");
    let (_, took) = read_pkg_length(&dsdt, at + 1);
    let count = dsdt[at + 1 + took] as usize;
    assert_eq!(count, 32 * 4, "every slot, every pin");
    let mut p = at + 2 + took;
    for _ in 0..count {
        assert_eq!(dsdt[p], 0x12);
        let (len, took) = read_pkg_length(&dsdt, p + 1);
        let end = p + 1 + len;
        let mut q = p + 1 + took;
        assert_eq!(dsdt[q], 4, "Package(4) {{address, pin, source, GSI}}");
        q += 1;
        let mut field = [0u64; 4];
        for f in &mut field {
            let (v, n) = read_integer(&dsdt, q);
            *f = v;
            q += n;
        }
        assert_eq!(
            q, end,
            "the entry's PkgLength covers exactly its four integers"
        );
        let slot = (field[0] >> 16) as u8;
        assert_eq!(field[0] & 0xFFFF, 0xFFFF, "any function of the slot");
        assert_eq!(field[2], 0, "a GSI, not a link device");
        let want = crate::pci::intx_gsi(slot, field[1] as u8 + 1).number() as u64;
        assert_eq!(field[3], want, "slot {slot} pin {}", field[1]);
        p = end;
    }
}

/// Debian's ACPI compiler (acpica-tools, installed by setup.sh) is the second opinion: it
/// must disassemble the DSDT without an error and see what the AML was meant to say.
#[test]
fn iasl_disassembles_the_dsdt_into_the_root_bridge() {
    let Ok(iasl) = which_iasl() else {
        eprintln!(
            "skipped: iasl not found (Debian package acpica-tools; scripts/setup.sh installs it)"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("vmscope-dsdt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let aml = dir.join("dsdt.aml");
    let mut table = tables::dsdt();
    let sum = loader::checksum(&table);
    table[CHECKSUM_OFFSET as usize] = sum;
    std::fs::write(&aml, &table).unwrap();
    let out = std::process::Command::new(iasl)
        .arg("-d")
        .arg(&aml)
        .current_dir(&dir)
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "iasl -d failed:\n{log}");
    let dsl = std::fs::read_to_string(dir.join("dsdt.dsl")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for expected in [
        "Device (PCI0)",
        "EisaId (\"PNP0A03\")",
        "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode",
        "0xFEBFFFFF",
        "0x0001FFFF",
        "Name (_PRT, Package (0x80)",
    ] {
        assert!(
            dsl.contains(expected),
            "iasl's reading lacks {expected:?}:\n{dsl}"
        );
    }
    assert!(!log.contains("Error"), "iasl reported errors:\n{log}");
}

fn which_iasl() -> Result<std::path::PathBuf, ()> {
    ["/usr/bin/iasl", "/usr/local/bin/iasl"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .ok_or(())
}

//! ACPI tables for the vmscope PC: built once, offered through fw_cfg and placed in guest RAM.
//! Teaches: how an OS discovers a PC it cannot probe — the RSDP it scans for, the root tables
//! pointing at the MADT (interrupt controllers) and the FADT (power-management registers).
//!
//! The chain a guest follows: it scans 0xE0000–0xFFFFF on 16-byte boundaries for "RSD PTR "
//! with a valid checksum; the RSDP points to the RSDT (32-bit pointers) and, being revision 2,
//! to the XSDT (64-bit pointers); they list the FADT ("FACP") and the MADT ("APIC"). The FADT
//! points to the DSDT and the FACS and says where the PM timer is (port 0x608, 24 bits). The
//! DSDT holds AML (`aml.rs`, `dsdt.rs`): the PCI root bridge, its windows and its interrupt
//! routing, generated from the board as the MADT is.
//!
//! [`build`] produces the tables the way QEMU hands them to firmware: two fw_cfg files with
//! offsets where addresses belong (`etc/acpi/tables`, `etc/acpi/rsdp`) and a linker/loader
//! script (`etc/table-loader`, see [`loader`]). vmscope has no BIOS to run that script, so
//! [`build_tables`] runs it for the machine: the RSDP lands at [`RSDP_ADDR`] and the tables at
//! [`TABLES_ADDR`], both inside [`RESERVED`], which the boot memory map marks reserved. (A
//! firmware ROM of 128 KiB, copied to 0xE0000, replaces them with whatever it brings.)
//!
//! ```
//! let placed = devices::acpi::build_tables();
//! let (addr, rsdp) = &placed[0];
//! assert_eq!(*addr, devices::acpi::RSDP_ADDR);
//! assert_eq!(&rsdp[..8], b"RSD PTR ");
//! assert_eq!(rsdp[..20].iter().fold(0u8, |s, &b| s.wrapping_add(b)), 0);
//! ```

pub mod aml;
mod dsdt;
pub mod loader;
pub mod parse;
mod tables;

use std::collections::BTreeMap;

pub use loader::{LoaderCommand, LoaderError, Zone};
pub use tables::{fadt_flags, rsdp_field, CHECKSUM_OFFSET, FADT_FLAGS, FADT_PM_TMR_BLK, OEM_ID};

use crate::ioapic::IOAPIC_BASE;
use crate::lapic::LAPIC_BASE;
use crate::pm_timer::PM_BASE;

/// fw_cfg file names, as QEMU names them.
pub const FILE_TABLES: &str = "etc/acpi/tables";
pub const FILE_RSDP: &str = "etc/acpi/rsdp";
pub const FILE_LOADER: &str = "etc/table-loader";

/// Where the machine puts the RSDP (16-byte aligned, inside the range guests scan).
pub const RSDP_ADDR: u64 = 0xE_0000;
/// Where the machine puts the other tables (64-byte aligned for the FACS).
pub const TABLES_ADDR: u64 = 0xE_1000;
/// The guest-physical range `[start, end)` the tables occupy; reserved in the memory map.
pub const RESERVED: (u64, u64) = (0xE_0000, 0xF_0000);
/// The ACPI SCI's ISA IRQ (FADT SCI_INT).
pub const SCI_IRQ: u16 = 9;

/// The three fw_cfg files of the ACPI tables, before any address is known.
#[derive(Debug, Clone)]
pub struct AcpiBlobs {
    /// `etc/acpi/tables`: FACS, DSDT, FADT, MADT, RSDT, XSDT, pointers as offsets in this file.
    pub tables: Vec<u8>,
    /// `etc/acpi/rsdp`: the RSDP, its pointers as offsets into `tables`.
    pub rsdp: Vec<u8>,
    /// The linker/loader script.
    pub commands: Vec<LoaderCommand>,
}

/// Appends `table` to the blob at a 16-byte (or `align`) boundary; returns its offset.
fn append(blob: &mut Vec<u8>, table: Vec<u8>, align: usize) -> u32 {
    blob.resize(blob.len().next_multiple_of(align), 0);
    let at = blob.len() as u32;
    blob.extend_from_slice(&table);
    at
}

/// Builds the tables for one CPU (APIC ID 0), the IOAPIC and the PM registers of this PC.
pub fn build() -> AcpiBlobs {
    let mut blob = Vec::new();
    let mut commands = vec![
        LoaderCommand::Allocate {
            file: FILE_RSDP.into(),
            align: 16,
            zone: Zone::FSeg,
        },
        LoaderCommand::Allocate {
            file: FILE_TABLES.into(),
            align: 64,
            zone: Zone::High,
        },
    ];
    let mut pointer = |dest: &str, dest_file_data: &mut [u8], at: u32, size: u8, target: u32| {
        // The field holds the offset in the tables file; the loader adds that file's address.
        let bytes = (target as u64).to_le_bytes();
        dest_file_data[at as usize..at as usize + size as usize]
            .copy_from_slice(&bytes[..size as usize]);
        commands.push(LoaderCommand::AddPointer {
            dest_file: dest.into(),
            src_file: FILE_TABLES.into(),
            offset: at,
            size,
        });
    };

    let facs = append(&mut blob, tables::facs(), 64);
    let dsdt = append(&mut blob, tables::dsdt(), 16);
    let fadt = append(&mut blob, tables::fadt(PM_BASE, SCI_IRQ), 16);
    let madt = append(
        &mut blob,
        tables::madt(LAPIC_BASE as u32, IOAPIC_BASE as u32, 1),
        16,
    );
    let entries = [fadt, madt];
    let rsdt = append(&mut blob, tables::root_table(false, entries.len()), 16);
    let xsdt = append(&mut blob, tables::root_table(true, entries.len()), 16);

    use tables::fadt_field as f;
    pointer(FILE_TABLES, &mut blob, fadt + f::FIRMWARE_CTRL, 4, facs);
    pointer(FILE_TABLES, &mut blob, fadt + f::DSDT, 4, dsdt);
    pointer(FILE_TABLES, &mut blob, fadt + f::X_FIRMWARE_CTRL, 8, facs);
    pointer(FILE_TABLES, &mut blob, fadt + f::X_DSDT, 8, dsdt);
    for (i, &table) in entries.iter().enumerate() {
        let rsdt_entry = rsdt + tables::HEADER_LEN as u32 + 4 * i as u32;
        let xsdt_entry = xsdt + tables::HEADER_LEN as u32 + 8 * i as u32;
        pointer(FILE_TABLES, &mut blob, rsdt_entry, 4, table);
        pointer(FILE_TABLES, &mut blob, xsdt_entry, 8, table);
    }
    let mut rsdp = tables::rsdp();
    pointer(FILE_RSDP, &mut rsdp, rsdp_field::RSDT, 4, rsdt);
    pointer(FILE_RSDP, &mut rsdp, rsdp_field::XSDT, 8, xsdt);

    // Checksums last, once every pointer is in place.
    for table in [dsdt, fadt, madt, rsdt, xsdt] {
        let len = u32::from_le_bytes(
            blob[table as usize + 4..table as usize + 8]
                .try_into()
                .expect("4 bytes"),
        );
        commands.push(LoaderCommand::AddChecksum {
            file: FILE_TABLES.into(),
            offset: table + CHECKSUM_OFFSET,
            start: table,
            length: len,
        });
    }
    commands.push(LoaderCommand::AddChecksum {
        file: FILE_RSDP.into(),
        offset: rsdp_field::CHECKSUM,
        start: 0,
        length: rsdp_field::V1_LEN,
    });
    commands.push(LoaderCommand::AddChecksum {
        file: FILE_RSDP.into(),
        offset: rsdp_field::EXTENDED_CHECKSUM,
        start: 0,
        length: rsdp_field::V2_LEN,
    });
    AcpiBlobs {
        tables: blob,
        rsdp,
        commands,
    }
}

impl AcpiBlobs {
    /// The fw_cfg files: tables, RSDP and the loader script.
    pub fn fw_cfg_files(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            (FILE_TABLES.into(), self.tables.clone()),
            (FILE_RSDP.into(), self.rsdp.clone()),
            (FILE_LOADER.into(), loader::encode_script(&self.commands)),
        ]
    }

    /// Runs the loader script as firmware would, with the RSDP at `rsdp_addr` and the tables
    /// at `tables_addr`; returns what to write where, RSDP first.
    pub fn place(
        &self,
        rsdp_addr: u64,
        tables_addr: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, LoaderError> {
        let mut files = BTreeMap::from([
            (FILE_RSDP.to_string(), self.rsdp.clone()),
            (FILE_TABLES.to_string(), self.tables.clone()),
        ]);
        let address = BTreeMap::from([
            (FILE_RSDP.to_string(), rsdp_addr),
            (FILE_TABLES.to_string(), tables_addr),
        ]);
        loader::run_loader(&self.commands, &mut files, &address)?;
        let rsdp = files.remove(FILE_RSDP).unwrap_or_default();
        let tables = files.remove(FILE_TABLES).unwrap_or_default();
        Ok(vec![(rsdp_addr, rsdp), (tables_addr, tables)])
    }
}

/// The tables as the machine writes them into guest RAM: `(address, bytes)`, RSDP first.
pub fn build_tables() -> Vec<(u64, Vec<u8>)> {
    build()
        .place(RSDP_ADDR, TABLES_ADDR)
        .expect("the built-in loader script only names its own files")
}

#[cfg(test)]
mod tests;

//! The bytes of each ACPI table vmscope offers: FACS, DSDT, FADT, MADT, RSDT, XSDT and the RSDP.
//! Teaches: every ACPI table is a 36-byte header (signature, length, revision, checksum, OEM IDs)
//! followed by its fields at offsets fixed by the ACPI specification.

/// OEM identification in every header (6 and 8 bytes), and the creator (4 bytes).
pub const OEM_ID: &[u8; 6] = b"VMSCOP";
pub const OEM_TABLE_ID: &[u8; 8] = b"VMSCOPE ";
pub const CREATOR_ID: &[u8; 4] = b"VMSC";

/// Length of the standard table header.
pub const HEADER_LEN: usize = 36;
/// Offset of the checksum byte in a table header.
pub const CHECKSUM_OFFSET: u32 = 9;

/// A table under construction: the header is filled in by [`finish`].
pub(super) fn header(signature: &[u8; 4], revision: u8) -> Vec<u8> {
    let mut t = vec![0u8; HEADER_LEN];
    t[0..4].copy_from_slice(signature);
    t[8] = revision;
    t[10..16].copy_from_slice(OEM_ID);
    t[16..24].copy_from_slice(OEM_TABLE_ID);
    t[24..28].copy_from_slice(&1u32.to_le_bytes()); // OEM revision
    t[28..32].copy_from_slice(CREATOR_ID);
    t[32..36].copy_from_slice(&1u32.to_le_bytes()); // creator revision
    t
}

/// Writes the length field; the checksum stays 0 for the loader's ADD_CHECKSUM to fill in.
pub(super) fn finish(mut t: Vec<u8>) -> Vec<u8> {
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t
}

fn put_u16(t: &mut [u8], at: usize, v: u16) {
    t[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(t: &mut [u8], at: usize, v: u32) {
    t[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// An ACPI Generic Address Structure for an I/O port register of `bits` bits.
fn gas_io(t: &mut [u8], at: usize, port: u16, bits: u8) {
    t[at] = 1; // address space: system I/O
    t[at + 1] = bits;
    t[at + 2] = 0; // bit offset
    t[at + 3] = if bits == 16 { 2 } else { 3 }; // access size: word or dword
    t[at + 4..at + 12].copy_from_slice(&(port as u64).to_le_bytes());
}

/// FACS: the firmware ACPI control structure (no header checksum; 64 bytes, 64-byte aligned).
pub(super) fn facs() -> Vec<u8> {
    let mut t = vec![0u8; 64];
    t[0..4].copy_from_slice(b"FACS");
    put_u32(&mut t, 4, 64);
    t
}

/// DSDT: the definition block with the PCI root bridge (see `dsdt.rs`). Revision 2: integers
/// are 64 bits wide.
pub(super) fn dsdt() -> Vec<u8> {
    let mut t = header(b"DSDT", 2);
    t.extend(super::dsdt::dsdt_body());
    finish(t)
}

/// Where the FADT's pointer fields are, for the loader script.
pub(super) mod fadt_field {
    pub const FIRMWARE_CTRL: u32 = 36;
    pub const DSDT: u32 = 40;
    pub const X_FIRMWARE_CTRL: u32 = 132;
    pub const X_DSDT: u32 = 140;
}

/// FADT flag bits we set.
pub mod fadt_flags {
    pub const WBINVD: u32 = 1 << 0;
    pub const PROC_C1: u32 = 1 << 2;
    pub const SLP_BUTTON: u32 = 1 << 5;
    pub const RTC_S4: u32 = 1 << 7;
    /// Set = 32-bit PM timer; we leave it clear: 24 bits, like QEMU's PIIX4.
    pub const TMR_VAL_EXT: u32 = 1 << 8;
}

/// Offset of the PM_TMR_BLK field and of the flags in the FADT.
pub const FADT_PM_TMR_BLK: usize = 76;
pub const FADT_FLAGS: usize = 112;

/// FADT ("FACP"), ACPI 2.0 layout (revision 3, 244 bytes), describing the PM registers.
pub(super) fn fadt(pm_base: u16, sci_irq: u16) -> Vec<u8> {
    let mut t = header(b"FACP", 3);
    t.resize(244, 0);
    t[44] = 1; // INT_MODEL (ACPI 1.0 field): multiple APIC
    put_u16(&mut t, 46, sci_irq);
    // SMI_CMD (48) = 0: no SMM handshake, the platform is always in ACPI mode.
    put_u32(&mut t, 56, pm_base as u32); // PM1a_EVT_BLK
    put_u32(&mut t, 64, pm_base as u32 + 4); // PM1a_CNT_BLK
    put_u32(&mut t, FADT_PM_TMR_BLK, pm_base as u32 + 8); // PM_TMR_BLK
    t[88] = 4; // PM1_EVT_LEN
    t[89] = 2; // PM1_CNT_LEN
    t[91] = 4; // PM_TMR_LEN
    put_u16(&mut t, 96, 0x0FFF); // P_LVL2_LAT > 100: C2 not supported
    put_u16(&mut t, 98, 0x0FFF); // P_LVL3_LAT > 1000: C3 not supported
    t[108] = 0x32; // CENTURY: the CMOS register holding the century
    put_u16(&mut t, 109, 0x0003); // IAPC_BOOT_ARCH: legacy devices, 8042
    let flags =
        fadt_flags::WBINVD | fadt_flags::PROC_C1 | fadt_flags::SLP_BUTTON | fadt_flags::RTC_S4;
    put_u32(&mut t, FADT_FLAGS, flags);
    // RESET_REG (116) stays empty and RESET_REG_SUP clear: reset through the 8042 (0xFE to 0x64).
    gas_io(&mut t, 148, pm_base, 32); // X_PM1a_EVT_BLK
    gas_io(&mut t, 172, pm_base + 4, 16); // X_PM1a_CNT_BLK
    gas_io(&mut t, 208, pm_base + 8, 32); // X_PM_TMR_BLK
    finish(t)
}

/// MADT ("APIC"): the interrupt controllers and how ISA IRQs map onto IOAPIC inputs.
pub(super) fn madt(lapic_addr: u32, ioapic_addr: u32, cpus: u8) -> Vec<u8> {
    let mut t = header(b"APIC", 1);
    t.extend_from_slice(&lapic_addr.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes()); // PCAT_COMPAT: a dual 8259 is present too
    for cpu in 0..cpus {
        // Processor Local APIC: type 0, length 8, ACPI processor UID, APIC ID, flags (enabled).
        t.extend_from_slice(&[0, 8, cpu, cpu, 1, 0, 0, 0]);
    }
    // I/O APIC: type 1, length 12, ID 0, reserved, address, global system interrupt base 0.
    t.extend_from_slice(&[1, 12, 0, 0]);
    t.extend_from_slice(&ioapic_addr.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    // Interrupt Source Overrides: type 2, length 10, bus 0 (ISA), source IRQ, GSI, flags —
    // the board's own list, the one the bus routes by.
    for o in crate::board::INTERRUPT_OVERRIDES {
        t.extend_from_slice(&[2, 10, 0, o.isa_irq]);
        t.extend_from_slice(&(o.gsi as u32).to_le_bytes());
        t.extend_from_slice(&o.flags.to_le_bytes());
    }
    // Local APIC NMI: type 4, length 6, all processors (0xFF), flags 0, LINT1.
    t.extend_from_slice(&[4, 6, 0xFF, 0, 0, 1]);
    finish(t)
}

/// RSDT (32-bit entries) or XSDT (64-bit entries) with `count` zeroed entries; the loader
/// script fills in the addresses.
pub(super) fn root_table(xsdt: bool, count: usize) -> Vec<u8> {
    let (sig, width) = if xsdt { (b"XSDT", 8) } else { (b"RSDT", 4) };
    let mut t = header(sig, 1);
    t.resize(HEADER_LEN + count * width, 0);
    finish(t)
}

/// Offsets in the RSDP.
pub mod rsdp_field {
    pub const CHECKSUM: u32 = 8;
    pub const REVISION: usize = 15;
    pub const RSDT: u32 = 16;
    pub const LENGTH: usize = 20;
    pub const XSDT: u32 = 24;
    pub const EXTENDED_CHECKSUM: u32 = 32;
    /// The ACPI 1.0 part the first checksum covers, and the whole ACPI 2.0 structure.
    pub const V1_LEN: u32 = 20;
    pub const V2_LEN: u32 = 36;
}

/// The RSDP, ACPI 2.0 (revision 2): "RSD PTR ", checksums, OEM ID, RSDT and XSDT pointers.
pub(super) fn rsdp() -> Vec<u8> {
    let mut t = vec![0u8; rsdp_field::V2_LEN as usize];
    t[0..8].copy_from_slice(b"RSD PTR ");
    t[9..15].copy_from_slice(OEM_ID);
    t[rsdp_field::REVISION] = 2;
    put_u32(&mut t, rsdp_field::LENGTH, rsdp_field::V2_LEN);
    t
}

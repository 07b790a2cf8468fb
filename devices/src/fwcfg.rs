//! QEMU's firmware configuration device (fw_cfg) on ports 0x510 (selector) and 0x511 (data).
//! Teaches: how a VMM hands named blobs (CPU count, ACPI tables, memory map) to firmware and
//! kernels through two I/O ports — a paravirtual interface, documented in QEMU's docs/specs/fw_cfg.
//!
//! The guest writes a 16-bit *selector* to port 0x510, then reads the item's bytes one at a time
//! from port 0x511 (the offset restarts at 0 on every selector write; reads past the end give 0).
//! Well-known selectors: 0x0000 signature "QEMU", 0x0001 interface ID (bit 0: this port
//! interface; bit 1, DMA, we do not offer), 0x0003 RAM size, 0x0005 number of CPUs, 0x000F
//! maximum CPUs, 0x0019 the file directory. The file directory is a big-endian count followed
//! by 64-byte entries — `size: u32 BE, select: u16 BE, reserved: u16, name: [u8; 56]` — and each
//! file is read by writing its `select` value. We offer the files QEMU's `pc` machine offers for
//! ACPI (`etc/acpi/rsdp`, `etc/acpi/tables`, `etc/table-loader`) and its memory map `etc/e820`.
//! Writes to the data port are ignored, as QEMU has done since 2.4.

use std::collections::BTreeMap;

use crate::bus::{BusDevice, DeviceCtx};

/// The selector port (16-bit, little-endian).
pub const FW_CFG_PORT_SEL: u16 = 0x510;
/// The data port (8-bit).
pub const FW_CFG_PORT_DATA: u16 = 0x511;

/// Well-known selectors.
pub mod key {
    pub const SIGNATURE: u16 = 0x00;
    pub const ID: u16 = 0x01;
    pub const UUID: u16 = 0x02;
    pub const RAM_SIZE: u16 = 0x03;
    pub const NOGRAPHIC: u16 = 0x04;
    pub const NB_CPUS: u16 = 0x05;
    pub const MACHINE_ID: u16 = 0x06;
    pub const BOOT_MENU: u16 = 0x0E;
    pub const MAX_CPUS: u16 = 0x0F;
    pub const FILE_DIR: u16 = 0x19;
    /// The first selector given to a file.
    pub const FILE_FIRST: u16 = 0x20;
    /// x86-specific: "IRQ 0 is overridden to GSI 2" (what the MADT says, for old firmware).
    pub const X86_IRQ0_OVERRIDE: u16 = 0x8002;
}

/// FW_CFG_ID bit 0: the traditional (port) interface.
pub const ID_TRADITIONAL: u32 = 1 << 0;
/// Length of a file name field in the directory, including the terminating NUL.
pub const FILE_NAME_LEN: usize = 56;

/// Item selectors are 14 bits plus the architecture bit; bit 14 (write) is ignored.
const SELECT_MASK: u16 = 0xBFFF;

/// What the platform tells the guest through fw_cfg.
#[derive(Debug, Clone)]
pub struct FwCfgConfig {
    pub ram_bytes: u64,
    pub cpus: u16,
    /// Named files, e.g. the ACPI blobs.
    pub files: Vec<(String, Vec<u8>)>,
}

/// The fw_cfg device.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone)]
pub struct FwCfg {
    items: BTreeMap<u16, Vec<u8>>,
    selector: u16,
    offset: usize,
}

impl FwCfg {
    /// Builds every item, the file directory included (files are listed sorted by name and
    /// numbered from 0x20 in that order, as QEMU does).
    pub fn new(config: FwCfgConfig) -> Self {
        let mut items = BTreeMap::new();
        items.insert(key::SIGNATURE, b"QEMU".to_vec());
        items.insert(key::ID, ID_TRADITIONAL.to_le_bytes().to_vec());
        items.insert(key::UUID, vec![0; 16]);
        items.insert(key::RAM_SIZE, config.ram_bytes.to_le_bytes().to_vec());
        items.insert(key::NOGRAPHIC, 1u16.to_le_bytes().to_vec());
        items.insert(key::NB_CPUS, config.cpus.to_le_bytes().to_vec());
        items.insert(key::MACHINE_ID, 0u32.to_le_bytes().to_vec());
        items.insert(key::BOOT_MENU, 0u16.to_le_bytes().to_vec());
        items.insert(key::MAX_CPUS, config.cpus.to_le_bytes().to_vec());
        items.insert(key::X86_IRQ0_OVERRIDE, 1u32.to_le_bytes().to_vec());

        let mut files = config.files;
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut dir = (files.len() as u32).to_be_bytes().to_vec();
        for (i, (name, data)) in files.into_iter().enumerate() {
            let select = key::FILE_FIRST + i as u16;
            dir.extend_from_slice(&(data.len() as u32).to_be_bytes());
            dir.extend_from_slice(&select.to_be_bytes());
            dir.extend_from_slice(&[0, 0]);
            let mut field = [0u8; FILE_NAME_LEN];
            let n = name.len().min(FILE_NAME_LEN - 1);
            field[..n].copy_from_slice(&name.as_bytes()[..n]);
            dir.extend_from_slice(&field);
            items.insert(select, data);
        }
        items.insert(key::FILE_DIR, dir);
        FwCfg {
            items,
            selector: 0,
            offset: 0,
        }
    }

    /// The item a selector reads (for tests and debuggers).
    pub fn item(&self, selector: u16) -> Option<&[u8]> {
        self.items
            .get(&(selector & SELECT_MASK))
            .map(|v| v.as_slice())
    }

    /// Finds a file's selector and size by name, as a guest would through the directory.
    pub fn find_file(&self, name: &str) -> Option<(u16, usize)> {
        let dir = self.items.get(&key::FILE_DIR)?;
        dir[4..].chunks_exact(64).find_map(|e| {
            let field = &e[8..];
            let len = field.iter().position(|&b| b == 0).unwrap_or(FILE_NAME_LEN);
            (&field[..len] == name.as_bytes()).then(|| {
                let size = u32::from_be_bytes([e[0], e[1], e[2], e[3]]) as usize;
                (u16::from_be_bytes([e[4], e[5]]), size)
            })
        })
    }

    fn next_byte(&mut self) -> u8 {
        let byte = self
            .items
            .get(&self.selector)
            .and_then(|item| item.get(self.offset).copied())
            .unwrap_or(0);
        self.offset = self.offset.saturating_add(1);
        byte
    }
}

impl BusDevice for FwCfg {
    fn name(&self) -> &'static str {
        "fw_cfg"
    }

    fn pio_read(&mut self, port: u16, size: u8, _ctx: &mut DeviceCtx) -> u32 {
        match port {
            // A wider IN on the data port reads consecutive bytes (QEMU splits it the same way).
            FW_CFG_PORT_DATA => {
                (0..size).fold(0, |acc, i| acc | (self.next_byte() as u32) << (8 * i))
            }
            _ => crate::bus::open_bus(size) as u32,
        }
    }

    fn pio_write(&mut self, port: u16, _size: u8, value: u32, _ctx: &mut DeviceCtx) {
        if port == FW_CFG_PORT_SEL {
            self.selector = value as u16 & SELECT_MASK;
            self.offset = 0;
        }
    }

    crate::snapshot::plain_data_snapshot!();

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bus;

    fn bus() -> Bus {
        let mut bus = Bus::new();
        let config = FwCfgConfig {
            ram_bytes: 64 << 20,
            cpus: 1,
            files: vec![
                ("etc/acpi/tables".into(), vec![1, 2, 3]),
                ("etc/acpi/rsdp".into(), b"RSD PTR ".to_vec()),
            ],
        };
        bus.add_pio_device(Box::new(FwCfg::new(config)), &[(0x510, 0x511)])
            .unwrap();
        bus
    }

    fn read_item(bus: &mut Bus, selector: u16, len: usize) -> Vec<u8> {
        bus.io_out(FW_CFG_PORT_SEL, 2, selector as u32);
        (0..len)
            .map(|_| bus.io_in(FW_CFG_PORT_DATA, 1) as u8)
            .collect()
    }

    #[test]
    fn signature_id_and_cpu_count() {
        let mut bus = bus();
        assert_eq!(read_item(&mut bus, key::SIGNATURE, 4), b"QEMU");
        assert_eq!(read_item(&mut bus, key::ID, 4), [1, 0, 0, 0]);
        assert_eq!(read_item(&mut bus, key::NB_CPUS, 2), [1, 0]);
        assert_eq!(
            read_item(&mut bus, key::RAM_SIZE, 8),
            (64u64 << 20).to_le_bytes()
        );
        // Past the end and unknown selectors read zeros.
        assert_eq!(read_item(&mut bus, key::NB_CPUS, 4)[2..], [0, 0]);
        assert_eq!(read_item(&mut bus, 0x1234, 2), [0, 0]);
    }

    #[test]
    fn reselecting_restarts_and_wide_reads_take_consecutive_bytes() {
        let mut bus = bus();
        bus.io_out(FW_CFG_PORT_SEL, 2, 0);
        assert_eq!(
            bus.io_in(FW_CFG_PORT_DATA, 2),
            u16::from_le_bytes(*b"QE") as u32
        );
        assert_eq!(bus.io_in(FW_CFG_PORT_DATA, 1), b'M' as u32);
        bus.io_out(FW_CFG_PORT_SEL, 2, 0);
        assert_eq!(bus.io_in(FW_CFG_PORT_DATA, 4), u32::from_le_bytes(*b"QEMU"));
        bus.io_out(FW_CFG_PORT_DATA, 1, 0x55); // ignored
        bus.io_out(FW_CFG_PORT_SEL, 2, 0x4000); // write bit: still reads the signature
        assert_eq!(bus.io_in(FW_CFG_PORT_DATA, 1), b'Q' as u32);
    }

    #[test]
    fn the_file_directory_is_big_endian_and_sorted() {
        let mut bus = bus();
        let count = read_item(&mut bus, key::FILE_DIR, 4);
        assert_eq!(count, [0, 0, 0, 2]);
        let dir = read_item(&mut bus, key::FILE_DIR, 4 + 2 * 64);
        let first = &dir[4..68];
        assert_eq!(&first[0..4], &[0, 0, 0, 8], "size of etc/acpi/rsdp");
        assert_eq!(&first[4..6], &[0, 0x20], "first file selector");
        assert_eq!(&first[8..8 + 13], b"etc/acpi/rsdp");
        assert_eq!(first[8 + 13], 0);
        let second = &dir[68..];
        assert_eq!(&second[4..6], &[0, 0x21]);
        assert_eq!(&second[8..8 + 15], b"etc/acpi/tables");
        assert_eq!(read_item(&mut bus, 0x20, 8), b"RSD PTR ");
        assert_eq!(read_item(&mut bus, 0x21, 3), [1, 2, 3]);
    }

    #[test]
    fn find_file_reads_the_directory() {
        let mut bus = bus();
        let fw = bus.device_mut::<FwCfg>().unwrap();
        assert_eq!(fw.find_file("etc/acpi/tables"), Some((0x21, 3)));
        assert_eq!(fw.find_file("etc/acpi"), None);
    }
}

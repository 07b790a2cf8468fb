//! The null device: one I/O port and one MMIO page where writes vanish and reads return zero.
//! Teaches: the cost of reaching a device, with no device work to hide it — the workload
//! suite's `portio` and `mmio` measure exactly one trip to the VMM per access.
//!
//! It sits where nothing else answers, on vmscope and on QEMU's `pc` machine alike, and
//! behaves like QEMU's unassigned regions there (reads 0), so the teaching kernel's checksums
//! agree between vmscope's engines and QEMU.

use std::any::Any;

use crate::bus::{BusDevice, DeviceCtx};

/// The null device's I/O port (4 bytes wide: 0x700-0x703).
pub const NULL_PORT: u16 = 0x700;
/// The guest-physical base of the null device's MMIO page (3 GiB: far from RAM and PCI BARs).
pub const NULL_MMIO_BASE: u64 = 0xC000_0000;
/// The size of its MMIO window.
pub const NULL_MMIO_LEN: u64 = 0x1000;

/// Answers every access and does nothing; counts them, so tests and `--stats` can see them.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone)]
pub struct NullDevice {
    /// Port and MMIO reads seen.
    pub reads: u64,
    /// Port and MMIO writes seen.
    pub writes: u64,
}

impl BusDevice for NullDevice {
    fn name(&self) -> &'static str {
        "null"
    }

    fn pio_read(&mut self, _port: u16, _size: u8, _ctx: &mut DeviceCtx) -> u32 {
        self.reads += 1;
        0
    }

    fn pio_write(&mut self, _port: u16, _size: u8, _value: u32, _ctx: &mut DeviceCtx) {
        self.writes += 1;
    }

    fn mmio_read(&mut self, _offset: u64, _size: u8, _ctx: &mut DeviceCtx) -> u64 {
        self.reads += 1;
        0
    }

    fn mmio_write(&mut self, _offset: u64, _size: u8, _value: u64, _ctx: &mut DeviceCtx) {
        self.writes += 1;
    }

    crate::snapshot::plain_data_snapshot!();

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::{Bus, PcPlatformConfig};

    use super::*;

    #[test]
    fn the_pc_answers_at_the_null_port_and_page_with_zeros() {
        let mut bus = Bus::new_pc(PcPlatformConfig::default());
        // An unassigned port reads all ones; the null device's reads 0 at every width.
        assert_eq!(bus.io_in(0x6F0, 4), 0xFFFF_FFFF);
        bus.io_out(NULL_PORT, 4, 0x1234_5678);
        assert_eq!(bus.io_in(NULL_PORT, 4), 0);
        assert_eq!(bus.io_in(NULL_PORT + 3, 1), 0);
        assert_eq!(bus.mmio_read(NULL_MMIO_BASE, 4), Some(0));
        assert!(bus.mmio_write(NULL_MMIO_BASE + 8, 8, u64::MAX));
        assert_eq!(bus.mmio_read(NULL_MMIO_BASE + NULL_MMIO_LEN, 4), None);
        let null = bus
            .device_mut::<NullDevice>()
            .expect("registered by new_pc");
        assert_eq!((null.reads, null.writes), (3, 2));
        assert_eq!(bus.stats.by_device.get("null"), Some(&5));
    }
}

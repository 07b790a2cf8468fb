//! pci-testdev, QEMU's PCI test device (1b36:0005): one memory BAR and one I/O BAR, each with a
//! small menu of write tests — kvm-unit-tests time and check guest writes through it.
//! Teaches: how a guest finds a device's registers (BAR sizing and decoding) and how a VMM
//! tells writes apart by address, width and value — QEMU's ioeventfd, here counted instead.
//!
//! Both BARs answer the same way; BAR 0 (memory, 4 KiB) runs the "mmio" tests, BAR 1 (I/O,
//! 256 ports) the "portio" ones. Writing a test number `t` to offset 0 selects test `t` of
//! that BAR's type (and zeroes its count); a number past the last test selects none. The
//! selected test's header then reads at the start of either BAR, byte by byte:
//!
//! ```text
//!  0  test (u8)    1  width (u8)    2..4  padding    4  offset (u32)    8  data (u8)
//!  9..12 padding   12  count (u32)  16  name, NUL-terminated ("mmio-no-eventfd", …)
//! ```
//!
//! Tests 0–2 of each type are "no-eventfd", "wildcard-eventfd" and "datamatch-eventfd". They
//! measure how fast a VMM hands a guest write to a device: test 0 reaches the device model,
//! which counts a write of `width` bytes of `data` at `offset` in the header; tests 1 and 2
//! are QEMU's *ioeventfd* cases, where the hypervisor turns a write at that address (any value,
//! or only `data`) into an event signal without running the device model at all — so the
//! header's count does not move, on QEMU and here alike. vmscope has no eventfds; it counts
//! those writes as notifications instead ([`PciTestDev::notifications`]), which a guest cannot
//! see. Reads past the header's end (or with no test selected) return 0; accesses must be
//! naturally aligned and at most 4 bytes (QEMU's rule), and are handled a byte at a time, as
//! QEMU's model declares. No interrupt pin.

use std::any::Any;

use crate::bus::{BusDevice, DeviceCtx};
use crate::pci::config::{BarKind, PciConfig};

pub const VENDOR_ID: u16 = 0x1B36;
pub const DEVICE_ID: u16 = 0x0005;
/// Unclassified device, subclass 0xFF ("other").
pub const CLASS_CODE: u32 = 0x00_FF_00;
/// BAR 0: memory.
pub const MEM_BAR_SIZE: u32 = 4096;
/// BAR 1: I/O ports.
pub const IO_BAR_SIZE: u32 = 256;
/// The test's port or address: this far into the BAR, plus the test's index.
const MEM_TEST_BASE: u32 = 2048;
const IO_TEST_BASE: u32 = 128;
const NAMES: [&str; 3] = ["no-eventfd", "wildcard-eventfd", "datamatch-eventfd"];
const DATA_MATCH: u8 = 0xFA;
const DATA_ANY: u8 = 0xCE;
/// Where the name starts in a header.
const NAME_OFFSET: usize = 16;

/// One test: BAR type (0 memory, 1 I/O) and number.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
struct Test {
    io: bool,
    number: u8,
}

impl Test {
    fn index(self) -> u32 {
        u32::from(self.io) * NAMES.len() as u32 + u32::from(self.number)
    }
    fn offset(self) -> u32 {
        let base = if self.io { IO_TEST_BASE } else { MEM_TEST_BASE };
        base + self.index()
    }
    fn wildcard(self) -> bool {
        self.number == 1
    }
    fn data(self) -> u8 {
        if self.wildcard() {
            DATA_ANY
        } else {
            DATA_MATCH
        }
    }
    fn name(self) -> String {
        let kind = if self.io { "portio" } else { "mmio" };
        format!("{kind}-{}", NAMES[self.number as usize])
    }
}

/// The device: its configuration space, the selected test and each test's count.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct PciTestDev {
    config: PciConfig,
    current: Option<Test>,
    /// Matching writes per test (index: io * 3 + number).
    counts: [u32; 6],
    /// Writes the eventfd tests took (QEMU would have signalled an event for each).
    notifications: u64,
}

impl Default for PciTestDev {
    fn default() -> Self {
        Self::new()
    }
}

impl PciTestDev {
    pub fn new() -> Self {
        let mut config = PciConfig::new(VENDOR_ID, DEVICE_ID, CLASS_CODE, 0);
        config.set_bar(
            0,
            BarKind::Mem32 {
                size: MEM_BAR_SIZE,
                prefetchable: false,
            },
        );
        config.set_bar(1, BarKind::Io { size: IO_BAR_SIZE });
        PciTestDev {
            config,
            current: None,
            counts: [0; 6],
            notifications: 0,
        }
    }

    /// Places the BARs and enables decoding, as firmware would.
    pub fn place(mut self, mem_base: u64, io_base: u16) -> Self {
        use crate::pci::config::{command, reg};
        self.config.place_bar(0, mem_base);
        self.config.place_bar(1, u64::from(io_base));
        self.config
            .write(reg::COMMAND, 2, u32::from(command::MEMORY | command::IO));
        self
    }

    /// Matching writes counted by test `number` of the memory (`io` false) or I/O BAR.
    pub fn count(&self, io: bool, number: u8) -> u32 {
        self.counts[Test { io, number }.index() as usize]
    }

    /// Writes the eventfd tests signalled instead of passing them to the device.
    pub fn notifications(&self) -> u64 {
        self.notifications
    }

    /// Byte `at` of the selected test's header.
    fn header_byte(&self, at: u64) -> u8 {
        let Some(t) = self.current else {
            return 0;
        };
        let mut header = vec![0u8; NAME_OFFSET];
        header[0] = t.index() as u8;
        header[1] = 1; // width: byte writes
        header[4..8].copy_from_slice(&t.offset().to_le_bytes());
        header[8] = t.data();
        header[12..16].copy_from_slice(&self.counts[t.index() as usize].to_le_bytes());
        header.extend_from_slice(t.name().as_bytes());
        header.push(0);
        // QEMU answers 0 for the header's last byte too (its bound check is `>=`): the name's
        // terminating NUL reads 0 either way.
        usize::try_from(at)
            .ok()
            .and_then(|i| header.get(i).copied())
            .unwrap_or(0)
    }

    fn write_byte(&mut self, io: bool, at: u64, value: u8) {
        if at == 0 {
            let number = value;
            self.current = (usize::from(number) < NAMES.len()).then_some(Test { io, number });
            if let Some(t) = self.current {
                self.counts[t.index() as usize] = 0;
            }
            return;
        }
        let Some(t) = self.current else {
            return;
        };
        if at != u64::from(t.offset()) || (!t.wildcard() && value != t.data()) {
            return;
        }
        if t.number == 0 {
            let c = &mut self.counts[t.index() as usize];
            *c = c.wrapping_add(1);
        } else {
            self.notifications += 1;
        }
    }
}

impl BusDevice for PciTestDev {
    fn name(&self) -> &'static str {
        "pci-testdev"
    }

    fn pci_config(&mut self) -> Option<&mut PciConfig> {
        Some(&mut self.config)
    }

    fn bar_read(&mut self, _bar: u8, offset: u64, size: u8, _ctx: &mut DeviceCtx) -> u64 {
        if !super::pc::valid_access(offset, size) {
            return 0;
        }
        (0..u64::from(size))
            .map(|i| u64::from(self.header_byte(offset + i)) << (8 * i))
            .fold(0, |acc, b| acc | b)
    }

    fn bar_write(&mut self, bar: u8, offset: u64, size: u8, value: u64, _ctx: &mut DeviceCtx) {
        if !super::pc::valid_access(offset, size) {
            return;
        }
        for i in 0..u64::from(size) {
            self.write_byte(bar == 1, offset + i, (value >> (8 * i)) as u8);
        }
    }

    crate::snapshot::plain_data_snapshot!();

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

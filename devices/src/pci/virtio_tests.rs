//! virtio-pci as a driver meets it: find the device by IDs, walk the capabilities, set up a
//! queue, ring the doorbell, take the INTx interrupt.

use super::virtio::*;
use super::*;
use crate::block::MemDisk;
use crate::virtio::blk::VirtioBlk;
use crate::virtio::{
    STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FEATURES_OK, VIRTIO_F_VERSION_1,
};

const BAR: u64 = 0xE000_0000;
const SLOT: u8 = 2;

struct Machine {
    bus: Bus,
    ram: Vec<u8>,
}

impl Machine {
    fn new() -> Self {
        let mut bus = Bus::new();
        bus.enable_pci().unwrap();
        let mut disk = MemDisk::new(vec![0; 64 * 512]);
        for (i, b) in disk.bytes.iter_mut().enumerate() {
            *b = (i / 512) as u8 ^ (i as u8);
        }
        let dev = VirtioPci::new(Box::new(VirtioBlk::new(Box::new(disk))), intx_gsi(SLOT, 1));
        bus.add_pci_device(Box::new(dev.place(BAR)), SLOT).unwrap();
        Machine {
            bus,
            ram: vec![0; 1 << 20],
        }
    }
    fn cfg(&mut self, offset: u32, size: u8) -> u32 {
        self.bus.io_out(
            CONFIG_ADDRESS,
            4,
            0x8000_0000 | (SLOT as u32) << 11 | offset & !3,
        );
        self.bus.io_in(CONFIG_DATA + (offset & 3) as u16, size)
    }
    fn rd(&mut self, addr: u64, size: u8) -> u64 {
        self.bus.mmio_read_with(addr, size, &mut self.ram).unwrap()
    }
    fn wr(&mut self, addr: u64, size: u8, v: u64) {
        assert!(self.bus.mmio_write_with(addr, size, v, &mut self.ram));
    }
    fn put(&mut self, addr: usize, bytes: &[u8]) {
        self.ram[addr..addr + bytes.len()].copy_from_slice(bytes);
    }
}

/// Walks the capability list; returns (cfg_type → offset in BAR 0, notify multiplier).
fn virtio_caps(m: &mut Machine) -> (BTreeMap<u8, u32>, u32) {
    let mut found = BTreeMap::new();
    let mut mult = 0;
    let mut at = m.cfg(0x34, 1);
    while at != 0 {
        if m.cfg(at, 1) == CAP_VENDOR as u32 {
            let cfg_type = m.cfg(at + 3, 1) as u8;
            assert_eq!(m.cfg(at + 4, 1), 0, "BAR 0");
            found.insert(cfg_type, m.cfg(at + 8, 4));
            if cfg_type == cap::NOTIFY_CFG {
                mult = m.cfg(at + 16, 4);
            }
        }
        at = m.cfg(at + 1, 1);
    }
    (found, mult)
}

use super::config::CAP_VENDOR;

#[test]
fn a_driver_reads_a_sector_through_virtio_pci() {
    let mut m = Machine::new();
    assert_eq!(m.cfg(0, 4), 0x1042_1AF4, "virtio-blk, modern ID");
    assert_eq!(m.cfg(8, 1), 1, "revision 1");
    let (caps, mult) = virtio_caps(&mut m);
    assert_eq!(caps.len(), 4, "{caps:?}");
    let common = BAR + caps[&cap::COMMON_CFG] as u64;
    let notify = BAR + caps[&cap::NOTIFY_CFG] as u64;
    let isr = BAR + caps[&cap::ISR_CFG] as u64;
    let device = BAR + caps[&cap::DEVICE_CFG] as u64;
    assert_eq!(m.rd(device, 4), 64, "capacity in sectors (low word)");

    m.wr(common + common::DEVICE_STATUS, 1, 0);
    m.wr(
        common + common::DEVICE_STATUS,
        1,
        (STATUS_ACKNOWLEDGE | STATUS_DRIVER) as u64,
    );
    m.wr(common + common::DEVICE_FEATURE_SELECT, 4, 1);
    assert!(
        m.rd(common + common::DEVICE_FEATURE, 4) & 1 != 0,
        "VERSION_1 offered"
    );
    m.wr(common + common::DRIVER_FEATURE_SELECT, 4, 1);
    m.wr(
        common + common::DRIVER_FEATURE,
        4,
        1 << (VIRTIO_F_VERSION_1 - 32),
    );
    m.wr(common + common::DRIVER_FEATURE_SELECT, 4, 0);
    m.wr(common + common::DRIVER_FEATURE, 4, 0);
    let s = (STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK) as u64;
    m.wr(common + common::DEVICE_STATUS, 1, s);
    assert_eq!(
        m.rd(common + common::DEVICE_STATUS, 1),
        s,
        "features accepted"
    );
    assert_eq!(m.rd(common + common::NUM_QUEUES, 2), 1);
    m.wr(common + common::QUEUE_SELECT, 2, 0);
    m.wr(common + common::QUEUE_SIZE, 2, 8);
    // 64-bit addresses as Linux writes them: two 32-bit halves.
    for (field, addr) in [
        (common::QUEUE_DESC, 0x1000u64),
        (common::QUEUE_DRIVER, 0x2000),
        (common::QUEUE_DEVICE, 0x3000),
    ] {
        m.wr(common + field, 4, addr);
        m.wr(common + field + 4, 4, 0);
    }
    m.wr(common + common::QUEUE_ENABLE, 2, 1);
    let notify_off = m.rd(common + common::QUEUE_NOTIFY_OFF, 2);
    m.wr(
        common + common::DEVICE_STATUS,
        1,
        s | STATUS_DRIVER_OK as u64,
    );

    // One read request: header, a 512-byte buffer, the status byte.
    let mut hdr = [0u8; 16];
    hdr[8..16].copy_from_slice(&3u64.to_le_bytes()); // sector 3, type IN (0)
    m.put(0x4000, &hdr);
    let desc = |addr: u64, len: u32, flags: u16, next: u16| {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        d
    };
    m.put(0x1000, &desc(0x4000, 16, 1, 1));
    m.put(0x1010, &desc(0x5000, 512, 1 | 2, 2));
    m.put(0x1020, &desc(0x6000, 1, 2, 0));
    m.ram[0x6000] = 0xFF;
    m.put(0x2000, &[0, 0, 1, 0, 0, 0]); // flags 0, idx 1, ring[0] = 0
    let line = intx_gsi(SLOT, 1);
    assert!(!m.bus.irq.is_high(line));
    m.wr(notify + notify_off * mult as u64, 2, 0);

    assert_eq!(
        u16::from_le_bytes([m.ram[0x3002], m.ram[0x3003]]),
        1,
        "used idx"
    );
    assert_eq!(m.ram[0x6000], 0, "VIRTIO_BLK_S_OK");
    let want: Vec<u8> = (0..512).map(|i| 3u8 ^ (i as u8)).collect();
    assert_eq!(&m.ram[0x5000..0x5200], &want[..]);
    assert!(m.bus.irq.is_high(line), "INTx asserted");
    assert_eq!(m.rd(isr, 1), 1, "queue interrupt");
    assert!(!m.bus.irq.is_high(line), "reading the ISR drops INTx");
    assert_eq!(m.rd(isr, 1), 0);
    let dma = m.bus.take_dma_writes();
    assert!(
        dma.iter().any(|w| w.addr == 0x5000 && w.len >= 512),
        "{dma:?}"
    );
}

#[test]
fn no_dma_without_bus_mastering_and_lspci_sees_the_ids() {
    let mut m = Machine::new();
    let info = m.bus.pci_functions();
    let blk = info.iter().find(|f| f.bdf == Bdf::new(0, SLOT, 0)).unwrap();
    assert_eq!(
        (blk.vendor, blk.device, blk.class_code),
        (0x1AF4, 0x1042, 0x01_80_00)
    );
    assert_eq!(blk.bars[0].base, BAR);
    // Switch bus mastering off: the doorbell must not make the device touch RAM.
    m.bus
        .io_out(CONFIG_ADDRESS, 4, 0x8000_0000 | (SLOT as u32) << 11 | 4);
    m.bus.io_out(CONFIG_DATA, 2, config::command::MEMORY as u32);
    m.wr(BAR + NOTIFY_OFFSET, 2, 0);
    assert!(m.bus.take_dma_writes().is_empty());
    assert!(m.ram.iter().all(|&b| b == 0));
}

//! The test devices driven as a test kernel drives them: through the PC's ports, MMIO and PCI
//! configuration space (pc-testdev, pci-testdev), and their interrupt lines through a test context.

use super::*;
use crate::bus::{BusDevice, TestCtx};
use crate::pci::{CONFIG_ADDRESS, CONFIG_DATA};
use crate::placement::{attach_pc_testdev, VirtioPlacement};
use crate::{Bus, PcPlatformConfig};

fn debugcon_output(bus: &mut Bus) -> Vec<u8> {
    std::mem::take(&mut bus.device_mut::<crate::debug::DebugCon>().unwrap().output)
}

fn pc_with_testdev() -> Bus {
    let mut bus = Bus::new_pc(PcPlatformConfig::default());
    attach_pc_testdev(&mut bus).unwrap();
    bus
}

#[test]
fn the_scratch_register_answers_every_width_and_offset_on_both_windows() {
    let mut bus = pc_with_testdev();
    bus.io_out(0xE0, 4, 0x1122_3344);
    assert_eq!(bus.io_in(0xE0, 4), 0x1122_3344);
    assert_eq!(bus.io_in(0xE2, 2), 0x1122);
    assert_eq!(
        bus.io_in(0xE1, 2),
        0,
        "unaligned: refused, as QEMU refuses it"
    );
    bus.io_out(0xE1, 1, 0xAA);
    assert_eq!(bus.io_in(0xE0, 4), 0x1122_AA44);
    bus.io_out(0xE3, 4, 0xFFFF_FF55); // unaligned: dropped
    bus.io_out(0xE3, 1, 0x55);
    assert_eq!(bus.io_in(0xE0, 4), 0x5522_AA44);
    // The byte window reaches the same register.
    assert_eq!(bus.io_in(0xE8, 4), 0x5522_AA44);
    bus.io_out(0xEA, 2, 0xBEEF);
    assert_eq!(bus.io_in(0xE0, 4), 0xBEEF_AA44);
    assert_eq!(
        bus.io_in(0xE9, 1),
        0xAA,
        "0xE9 is the test device's, not debugcon's"
    );
    assert!(debugcon_output(&mut bus).is_empty());
}

#[test]
fn the_debug_console_gives_up_its_port_and_flushes_are_counted() {
    let mut plain = Bus::new_pc(PcPlatformConfig::default());
    plain.io_out(0xE9, 1, u32::from(b'x'));
    assert_eq!(debugcon_output(&mut plain), b"x");
    assert_eq!(
        plain.io_in(0xE0, 4),
        0xFFFF_FFFF,
        "no test device on the standard board"
    );

    let mut bus = pc_with_testdev();
    bus.io_out(0xE9, 1, u32::from(b'x'));
    assert!(debugcon_output(&mut bus).is_empty());
    bus.io_out(0xE4, 4, 0x0010_0000);
    bus.io_out(0xE4, 1, 0x00); // not a dword: ignored
    assert_eq!(bus.device_mut::<PcTestDev>().unwrap().flushes, 1);
}

#[test]
fn the_device_memory_keeps_what_is_written_at_every_width() {
    let mut bus = pc_with_testdev();
    let base = pc::IOMEM_BASE;
    assert!(bus.mmio_write(base + 0x10, 4, 0x0506_0708));
    assert!(bus.mmio_write(base + 0x14, 4, 0x0102_0304));
    assert_eq!(bus.mmio_read(base + 0x12, 2), Some(0x0506));
    assert_eq!(bus.mmio_read(base + 0x14, 1), Some(0x04));
    assert_eq!(bus.mmio_read(base + 0x13, 2), Some(0), "unaligned reads 0");
    assert!(bus.mmio_write(base + pc::IOMEM_LEN - 1, 1, 0x99));
    assert_eq!(bus.mmio_read(base + pc::IOMEM_LEN - 1, 1), Some(0x99));
    assert_eq!(
        bus.mmio_read(base + pc::IOMEM_LEN, 1),
        None,
        "past the window"
    );
}

#[test]
fn a_byte_write_drives_an_interrupt_line_high_and_low() {
    let mut dev = PcTestDev::default();
    let mut t = TestCtx::default();
    dev.pio_write(0x2000 + 5, 1, 1, &mut t.ctx());
    dev.pio_write(0x2000 + 17, 1, 0x80, &mut t.ctx());
    assert_eq!(t.irq.levels(), 1 << 5 | 1 << 17);
    dev.pio_write(0x2000 + 5, 1, 0, &mut t.ctx());
    dev.pio_write(0x2000 + 17, 2, 0, &mut t.ctx()); // a word write: not a line write
    assert_eq!(t.irq.levels(), 1 << 17);
}

fn cfg(bus: &mut Bus, slot: u8, offset: u32) -> u32 {
    bus.io_out(
        CONFIG_ADDRESS,
        4,
        0x8000_0000 | u32::from(slot) << 11 | offset,
    );
    bus.io_in(CONFIG_DATA, 4)
}

fn pc_with_pci_testdev() -> (Bus, u8, u64, u16) {
    let mut bus = Bus::new_pc(PcPlatformConfig::default());
    let mut placement = VirtioPlacement::default();
    placement.place_pci_testdev(&mut bus).unwrap();
    let slot = crate::placement::VIRTIO_PCI_FIRST_SLOT;
    let mem = u64::from(cfg(&mut bus, slot, 0x10) & !0xF);
    let io = (cfg(&mut bus, slot, 0x14) & !3) as u16;
    (bus, slot, mem, io)
}

/// The selected test's header, read a byte at a time from BAR 0 as kvm-unit-tests does.
fn header(bus: &mut Bus, mem: u64) -> (u8, u8, u32, u8, u32, String) {
    let b = |bus: &mut Bus, at: u64| bus.mmio_read(mem + at, 1).unwrap() as u8;
    let word = |bus: &mut Bus, at: u64| {
        u32::from_le_bytes([b(bus, at), b(bus, at + 1), b(bus, at + 2), b(bus, at + 3)])
    };
    let name: Vec<u8> = (16..64)
        .map(|i| b(bus, i))
        .take_while(|&c| c != 0)
        .collect();
    (
        b(bus, 0),
        b(bus, 1),
        word(bus, 4),
        b(bus, 8),
        word(bus, 12),
        String::from_utf8(name).unwrap(),
    )
}

#[test]
fn pci_testdev_is_found_by_its_ids_with_a_memory_and_an_io_bar() {
    let (mut bus, slot, mem, io) = pc_with_pci_testdev();
    assert_eq!(cfg(&mut bus, slot, 0), 0x0005_1B36);
    assert_eq!(
        cfg(&mut bus, slot, 0x08) >> 8,
        0x00_FF_00,
        "class: unclassified, other"
    );
    assert_eq!(cfg(&mut bus, slot, 0x3C) >> 8 & 0xFF, 0, "no interrupt pin");
    assert_eq!(mem, crate::placement::VIRTIO_PCI_BAR_BASE);
    assert_eq!(io, crate::board::PCI_IO_WINDOW_START);
    // BAR sizing: all ones in, the size mask out.
    bus.io_out(
        CONFIG_ADDRESS,
        4,
        0x8000_0000 | u32::from(slot) << 11 | 0x10,
    );
    bus.io_out(CONFIG_DATA, 4, 0xFFFF_FFFF);
    assert_eq!(bus.io_in(CONFIG_DATA, 4), !(pci::MEM_BAR_SIZE - 1));
    bus.io_out(
        CONFIG_ADDRESS,
        4,
        0x8000_0000 | u32::from(slot) << 11 | 0x14,
    );
    bus.io_out(CONFIG_DATA, 4, 0xFFFF_FFFF);
    assert_eq!(
        bus.io_in(CONFIG_DATA, 4) & 0xFFFF,
        0xFF01,
        "256 ports, I/O space"
    );
}

#[test]
fn pci_testdev_counts_the_writes_each_test_asks_for() {
    let (mut bus, _, mem, io) = pc_with_pci_testdev();
    // No test selected: the header reads zeros.
    assert_eq!(header(&mut bus, mem).1, 0);

    // mmio-no-eventfd: the device counts each write of 0xFA at its offset.
    assert!(bus.mmio_write(mem, 1, 0));
    let (test, width, offset, data, count, name) = header(&mut bus, mem);
    assert_eq!((test, width, offset, data, count), (0, 1, 2048, 0xFA, 0));
    assert_eq!(name, "mmio-no-eventfd");
    for value in [0xFA, 0x11, 0xFA] {
        assert!(bus.mmio_write(mem + u64::from(offset), 1, value));
    }
    assert!(bus.mmio_write(mem + u64::from(offset) + 1, 1, 0xFA)); // wrong place
    assert_eq!(header(&mut bus, mem).4, 2);

    // mmio-datamatch-eventfd: a matching write is an event, not a device write.
    assert!(bus.mmio_write(mem, 1, 2));
    let (test, _, offset, data, _, name) = header(&mut bus, mem);
    assert_eq!(
        (test, offset, data, name.as_str()),
        (2, 2048 + 2, 0xFA, "mmio-datamatch-eventfd")
    );
    assert!(bus.mmio_write(mem + u64::from(offset), 1, 0xFA));
    assert!(bus.mmio_write(mem + u64::from(offset), 1, 0x11));
    assert_eq!(
        header(&mut bus, mem).4,
        0,
        "the header's count does not move"
    );

    // portio-wildcard-eventfd through the I/O BAR: any value is an event; the header is the
    // same wherever it is read.
    bus.io_out(io, 1, 1);
    let (test, _, offset, data, _, name) = header(&mut bus, mem);
    assert_eq!(
        (test, offset, data, name.as_str()),
        (4, 128 + 4, 0xCE, "portio-wildcard-eventfd")
    );
    bus.io_out(io + offset as u16, 1, 0x00);
    bus.io_out(io + offset as u16, 1, 0x42);
    assert_eq!(bus.io_in(io + 12, 1), 0, "count, read through the I/O BAR");

    // Past the last test: none selected, and scanning stops there (width reads 0).
    bus.io_out(io, 1, 3);
    assert_eq!(header(&mut bus, mem).1, 0);
    let dev = bus.device_mut::<PciTestDev>().unwrap();
    assert_eq!((dev.count(false, 0), dev.notifications()), (2, 3));
    assert_eq!(bus.mmio_read(mem + 1, 2), Some(0), "unaligned: refused");
}

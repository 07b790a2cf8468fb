//! PCI through the ports a guest uses: enumeration, BAR sizing and placement, interrupts.

use super::*;
use crate::bus::DeviceCtx;
use crate::pci::config::{command, reg};

/// A function with an I/O BAR and a memory BAR whose registers echo what was written.
struct Echo {
    config: PciConfig,
    regs: [u64; 4],
    line: IrqLine,
}

impl Echo {
    fn new(slot: u8) -> Self {
        let mut config = PciConfig::new(0x1AF4, 0x10FF, 0xFF_00_00, 0);
        config.set_bar(0, BarKind::Io { size: 0x20 });
        config.set_bar(
            1,
            BarKind::Mem32 {
                size: 0x1000,
                prefetchable: false,
            },
        );
        let line = intx_gsi(slot, 1);
        config.set_interrupt(1, line.number());
        config.add_msi();
        Echo {
            config,
            regs: [0; 4],
            line,
        }
    }
}

impl BusDevice for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn pci_config(&mut self) -> Option<&mut PciConfig> {
        Some(&mut self.config)
    }
    fn bar_read(&mut self, bar: u8, offset: u64, _size: u8, _ctx: &mut DeviceCtx) -> u64 {
        self.regs[(bar as usize * 2 + (offset as usize / 8)) % 4] ^ offset
    }
    fn bar_write(&mut self, bar: u8, offset: u64, _size: u8, value: u64, ctx: &mut DeviceCtx) {
        self.regs[(bar as usize * 2 + (offset as usize / 8)) % 4] = value;
        if value == 0x1EE7 {
            signal_interrupt(&mut self.config, self.line, true, true, ctx);
        } else if value == 0 {
            signal_interrupt(&mut self.config, self.line, false, false, ctx);
        }
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

fn cfg_read(bus: &mut Bus, slot: u8, offset: u32) -> u32 {
    bus.io_out(
        CONFIG_ADDRESS,
        4,
        0x8000_0000 | (slot as u32) << 11 | offset,
    );
    bus.io_in(CONFIG_DATA, 4)
}

fn cfg_write(bus: &mut Bus, slot: u8, offset: u32, value: u32) {
    bus.io_out(
        CONFIG_ADDRESS,
        4,
        0x8000_0000 | (slot as u32) << 11 | offset,
    );
    bus.io_out(CONFIG_DATA, 4, value);
}

fn pci_bus() -> Bus {
    let mut bus = Bus::new();
    bus.enable_pci().unwrap();
    bus.add_pci_device(Box::new(Echo::new(3)), 3).unwrap();
    bus
}

#[test]
fn enumeration_finds_the_bridge_and_the_device_and_nothing_else() {
    let mut bus = pci_bus();
    let mut found = Vec::new();
    for slot in 0..32 {
        let id = cfg_read(&mut bus, slot, 0);
        if id != 0xFFFF_FFFF {
            found.push((slot, id, cfg_read(&mut bus, slot, 8) >> 8));
        }
    }
    assert_eq!(
        found,
        [(0, 0x1237_8086, 0x06_00_00), (3, 0x10FF_1AF4, 0xFF_00_00)]
    );
    // Byte and word reads at odd offsets inside the dword.
    bus.io_out(CONFIG_ADDRESS, 4, 0x8000_0000 | 3 << 11);
    assert_eq!(bus.io_in(CONFIG_DATA + 2, 2), 0x10FF);
    assert_eq!(bus.io_in(CONFIG_DATA + 1, 1), 0x1A);
    // With the enable bit clear, nothing answers.
    bus.io_out(CONFIG_ADDRESS, 4, 3 << 11);
    assert_eq!(bus.io_in(CONFIG_DATA, 4), 0xFFFF_FFFF);
    assert_eq!(
        cfg_read(&mut bus, 3, reg::INTERRUPT_PIN as u32) >> 8 & 0xFF,
        1
    );
}

#[test]
fn a_bar_answers_where_the_guest_puts_it_and_only_when_enabled() {
    let mut bus = pci_bus();
    cfg_write(&mut bus, 3, 0x10, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut bus, 3, 0x10), 0xFFFF_FFE1, "32 ports");
    cfg_write(&mut bus, 3, 0x14, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut bus, 3, 0x14), 0xFFFF_F000, "4 KiB");
    cfg_write(&mut bus, 3, 0x10, 0xC040);
    cfg_write(&mut bus, 3, 0x14, 0xE000_0000);
    assert_eq!(bus.io_in(0xC040, 4), 0xFFFF_FFFF, "I/O decoding still off");
    assert!(!bus.is_mmio(0xE000_0000));
    cfg_write(&mut bus, 3, 0x04, (command::IO | command::MEMORY) as u32);
    bus.io_out(0xC048, 4, 0x55);
    assert_eq!(bus.io_in(0xC048, 4), 0x55 ^ 8, "BAR 0, offset 8");
    assert!(bus.mmio_write(0xE000_0010, 4, 0x66));
    assert_eq!(bus.mmio_read(0xE000_0010, 4), Some(0x66 ^ 0x10));
    // Move the memory BAR: the old place goes quiet.
    cfg_write(&mut bus, 3, 0x14, 0xE010_0000);
    assert_eq!(bus.mmio_read(0xE000_0010, 4), None);
    assert_eq!(bus.mmio_read(0xE010_0010, 4), Some(0x66 ^ 0x10));
    let info = bus.pci_functions();
    assert_eq!(info[1].bars.len(), 2);
    assert_eq!(info[1].bars[1].base, 0xE010_0000);
    // Disable memory decoding.
    cfg_write(&mut bus, 3, 0x04, command::IO as u32);
    assert!(!bus.is_mmio(0xE010_0000));
}

#[test]
fn a_bar_over_another_device_is_not_decoded_and_nothing_breaks() {
    let mut bus = pci_bus();
    bus.add_pio_device(Box::new(crate::debug::DebugCon::default()), &[(0xE9, 0xE9)])
        .unwrap();
    cfg_write(&mut bus, 3, 0x10, 0xE0);
    cfg_write(&mut bus, 3, 0x04, command::IO as u32);
    assert_eq!(bus.pci.bar_conflicts, 1);
    bus.io_out(0xE9, 1, b'k' as u32);
    assert_eq!(
        bus.take_console_output(),
        b"k",
        "the debug console still owns 0xE9"
    );
}

#[test]
fn intx_is_a_shared_level_and_msi_reaches_the_local_apic() {
    let mut bus = pci_bus();
    bus.add_pci_device(Box::new(Echo::new(7)), 7).unwrap(); // slot 7 pin A: same GSI as slot 3
    assert_eq!(intx_gsi(3, 1), intx_gsi(7, 1));
    for slot in [3u32, 7] {
        let bar = 0xC000 + slot * 0x20;
        cfg_write(&mut bus, slot as u8, 0x10, bar);
        cfg_write(&mut bus, slot as u8, 0x04, command::IO as u32);
    }
    let gsi = intx_gsi(3, 1);
    bus.io_out(0xC000 + 3 * 0x20, 4, 0x1EE7);
    bus.io_out(0xC000 + 7 * 0x20, 4, 0x1EE7);
    assert!(bus.irq.is_high(gsi));
    bus.io_out(0xC000 + 3 * 0x20, 4, 0);
    assert!(bus.irq.is_high(gsi), "slot 7 still asserts the shared line");
    bus.io_out(0xC000 + 7 * 0x20, 4, 0);
    assert!(!bus.irq.is_high(gsi));

    // MSI: enable the local APIC, program the capability at 0x40, trigger.
    bus.lapic.mmio_write(0xF0, 4, 0x1FF, 0); // SVR: software enable
    let cap = cfg_read(&mut bus, 3, reg::CAPABILITIES as u32) & 0xFF;
    cfg_write(&mut bus, 3, cap + 4, 0xFEE0_0000);
    cfg_write(&mut bus, 3, cap + 12, 0x0051);
    cfg_write(&mut bus, 3, cap, 1 << 16);
    bus.io_out(0xC000 + 3 * 0x20, 4, 0x1EE7);
    assert!(!bus.irq.is_high(gsi), "with MSI on, INTx stays quiet");
    assert!(bus.interrupt_pending());
    assert_eq!(bus.acknowledge_interrupt(), 0x51);
}

#[test]
fn port_0xcf9_resets_and_bad_slots_are_refused() {
    let mut bus = pci_bus();
    bus.io_out(RESET_CONTROL, 1, 0x06);
    assert_eq!(bus.take_events(), [MachineEvent::ResetRequested]);
    assert!(
        bus.add_pci_device(Box::new(Echo::new(3)), 3).is_err(),
        "taken"
    );
    assert!(
        bus.add_pci_device(Box::new(Echo::new(0)), 0).is_err(),
        "the bridge's"
    );
    assert!(bus.add_pci_device(Box::new(Echo::new(32)), 32).is_err());
    let not_pci = bus.add_pci_device(Box::new(crate::debug::DebugExit), 9);
    assert!(not_pci.unwrap_err().contains("not a PCI device"));
}

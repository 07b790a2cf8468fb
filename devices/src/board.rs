//! The vmscope PC's board: which device sits at which ports, MMIO range and interrupt line.
//! Teaches: a PC is a wiring table. The bus is only the mechanism; this table is the machine,
//! and the ACPI tables the guest reads are generated from the same rows, so they cannot disagree.
//!
//! Adding a device is one row in [`PC_BOARD`] (and one folder or file for the model).
//! The interrupt source overrides ([`INTERRUPT_OVERRIDES`]) say which IOAPIC pin an ISA IRQ
//! arrives on when it is not pin = IRQ; the bus routes by them and the MADT lists them.

use crate::bus::{Bus, BusDevice, IrqLine, OverlapError};

/// Settings of the standard PC platform built by [`Bus::new_pc`].
#[derive(Debug, Clone, Copy)]
pub struct PcPlatformConfig {
    /// Guest RAM size, reported through the CMOS and fw_cfg.
    pub ram_bytes: u64,
}

impl Default for PcPlatformConfig {
    fn default() -> Self {
        PcPlatformConfig {
            ram_bytes: 64 << 20,
        }
    }
}

/// The guest-physical range `[start, end]` where PCI memory BARs are placed (below the IOAPIC
/// at 0xFEC00000); the DSDT offers it to the guest as the root bridge's memory window.
pub const PCI_MEMORY_WINDOW: (u32, u32) = (0xE000_0000, 0xFEBF_FFFF);
/// PCI I/O BARs go from here up (above the legacy ISA ports).
pub const PCI_IO_WINDOW_START: u16 = 0xC000;

/// An ISA IRQ that does not arrive on the IOAPIC pin of its own number, or that is not
/// edge-triggered active-high (an ACPI MADT Interrupt Source Override).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterruptOverride {
    pub isa_irq: u8,
    pub gsi: u8,
    /// MPS INTI flags: bits 1:0 polarity, 3:2 trigger mode (0 = bus default).
    pub flags: u16,
}

/// IRQ 0 (the PIT) arrives on GSI 2; IRQ 9 (the ACPI SCI) is level-triggered, active high —
/// as on QEMU's pc machine, which is what guests built for QEMU expect.
pub const INTERRUPT_OVERRIDES: &[InterruptOverride] = &[
    InterruptOverride {
        isa_irq: 0,
        gsi: 2,
        flags: 0,
    },
    InterruptOverride {
        isa_irq: 9,
        gsi: 9,
        flags: 0x000D,
    },
];

/// The IOAPIC pin ISA IRQ `irq` arrives on.
pub fn isa_irq_to_gsi(irq: u8) -> u8 {
    INTERRUPT_OVERRIDES
        .iter()
        .find(|o| o.isa_irq == irq)
        .map_or(irq, |o| o.gsi)
}

/// One device on the board.
pub struct BoardRow {
    pub name: &'static str,
    /// Makes the device, given the platform settings and the lines of [`BoardRow::irqs`].
    pub make: fn(&PcPlatformConfig, &[IrqLine]) -> Box<dyn BusDevice>,
    /// Inclusive port ranges.
    pub ports: &'static [(u16, u16)],
    /// MMIO ranges `(base, len)`.
    pub mmio: &'static [(u64, u64)],
    /// The interrupt lines it drives, in the order the device's constructor takes them.
    pub irqs: &'static [u8],
}

/// The legacy PC every QEMU-targeted kernel expects, plus vmscope's null device.
pub const PC_BOARD: &[BoardRow] = &[
    BoardRow {
        name: "uart",
        make: |_, irq| Box::new(crate::uart::Uart::new().with_irq(irq[0])),
        ports: &[(0x3F8, 0x3FF)],
        mmio: &[],
        irqs: &[crate::uart::UART_IRQ],
    },
    BoardRow {
        name: "pit",
        make: |_, irq| Box::new(crate::pit::Pit::new().with_irq(irq[0])),
        ports: &[(0x40, 0x43), (0x61, 0x61)],
        mmio: &[],
        irqs: &[0],
    },
    BoardRow {
        name: "cmos",
        make: |c, irq| Box::new(crate::cmos::Cmos::new(c.ram_bytes).with_irq(irq[0])),
        ports: &[(0x70, 0x71)],
        mmio: &[],
        irqs: &[8],
    },
    BoardRow {
        name: "i8042",
        make: |_, irq| Box::new(crate::i8042::I8042::new().with_irqs(irq[0], irq[1])),
        ports: &[(0x60, 0x60), (0x64, 0x64), (0x92, 0x92)],
        mmio: &[],
        irqs: &[1, 12],
    },
    BoardRow {
        name: "post",
        make: |_, _| Box::new(crate::debug::PostCodes::default()),
        ports: &[(0x80, 0x80)],
        mmio: &[],
        irqs: &[],
    },
    BoardRow {
        name: "debugcon",
        make: |_, _| Box::new(crate::debug::DebugCon::default()),
        ports: &[(0xE9, 0xE9)],
        mmio: &[],
        irqs: &[],
    },
    BoardRow {
        name: "debug-exit",
        make: |_, _| Box::new(crate::debug::DebugExit),
        ports: &[(0xF4, 0xF4)],
        mmio: &[],
        irqs: &[],
    },
    BoardRow {
        name: "acpi-pm",
        make: |_, _| Box::new(crate::pm_timer::PmTimer::new()),
        ports: &[(crate::pm_timer::PM_BASE, crate::pm_timer::PM_LAST)],
        mmio: &[],
        irqs: &[],
    },
    BoardRow {
        name: "fw_cfg",
        make: |c, _| {
            Box::new(crate::fwcfg::FwCfg::new(crate::fwcfg::FwCfgConfig {
                ram_bytes: c.ram_bytes,
                cpus: 1,
                files: crate::acpi::build().fw_cfg_files(),
            }))
        },
        ports: &[(
            crate::fwcfg::FW_CFG_PORT_SEL,
            crate::fwcfg::FW_CFG_PORT_DATA,
        )],
        mmio: &[],
        irqs: &[],
    },
    // The null device (port 0x700, MMIO at 3 GiB): what the `portio` and `mmio` workloads hit.
    BoardRow {
        name: "null",
        make: |_, _| Box::new(crate::null::NullDevice::default()),
        ports: &[(crate::null::NULL_PORT, crate::null::NULL_PORT + 3)],
        mmio: &[(crate::null::NULL_MMIO_BASE, crate::null::NULL_MMIO_LEN)],
        irqs: &[],
    },
];

/// Puts `rows` on `bus`; a row that overlaps an earlier one is an error naming both.
pub fn install(bus: &mut Bus, config: &PcPlatformConfig, rows: &[BoardRow]) -> Result<(), String> {
    let place = |e: OverlapError, name: &str| format!("board row {name}: {e}");
    for row in rows {
        let lines: Vec<IrqLine> = row
            .irqs
            .iter()
            .map(|&n| IrqLine::new(n).ok_or_else(|| format!("board row {}: no line {n}", row.name)))
            .collect::<Result<_, _>>()?;
        let id = bus.add_device((row.make)(config, &lines));
        for &(first, last) in row.ports {
            bus.map_ports(id, first, last)
                .map_err(|e| place(e, row.name))?;
        }
        for &(base, len) in row.mmio {
            bus.map_mmio(id, base, len)
                .map_err(|e| place(e, row.name))?;
        }
    }
    Ok(())
}

impl Bus {
    /// The standard PC of [`PC_BOARD`]: UART at 0x3F8 (IRQ 4), PIT (IRQ 0, port 0x61), CMOS
    /// RTC (IRQ 8), i8042 keyboard controller (IRQ 1 and 12, reset, A20) with port 0x92, POST
    /// port 0x80, debug console 0xE9, isa-debug-exit 0xF4, ACPI PM registers 0x600–0x60B (PM
    /// timer 0x608), QEMU's fw_cfg at 0x510/0x511 and the null device; ISA IRQs routed to the
    /// IOAPIC by [`INTERRUPT_OVERRIDES`]; a PCI host bridge (0xCF8–0xCFF, reset control 0xCF9).
    pub fn new_pc(config: PcPlatformConfig) -> Self {
        let mut bus = Bus::new();
        for o in INTERRUPT_OVERRIDES {
            bus.set_isa_gsi(o.isa_irq, o.gsi);
        }
        install(&mut bus, &config, PC_BOARD).expect("the PC board table has no overlaps");
        bus.enable_pci()
            .expect("0xCF8-0xCFF are free on the PC board");
        bus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_builds_and_every_row_answers_where_it_says() {
        let mut bus = Bus::new_pc(PcPlatformConfig::default());
        let names: Vec<_> = bus.devices().map(|(_, d)| d.name()).collect();
        assert_eq!(names.len(), PC_BOARD.len() + 1, "and the PCI host bridge");
        for (row, name) in PC_BOARD.iter().zip(&names) {
            assert_eq!(row.name, *name, "a row is named as its device names itself");
        }
        assert_eq!(names.last(), Some(&"pci-host"));
        for row in PC_BOARD {
            for &(first, last) in row.ports {
                let owner = bus
                    .port_map()
                    .into_iter()
                    .find(|r| r.0 == first && r.1 == last);
                assert!(owner.is_some(), "{} at {first:#x}", row.name);
            }
        }
        assert!(bus.is_mmio(crate::null::NULL_MMIO_BASE));
        bus.io_out(0xE9, 1, b'x' as u32);
        assert_eq!(bus.take_console_output(), b"x");
    }

    #[test]
    fn an_overlapping_row_is_an_error_naming_both() {
        let mut bus = Bus::new_pc(PcPlatformConfig::default());
        let clash = [BoardRow {
            name: "second-uart",
            make: |_, _| Box::new(crate::uart::Uart::new()),
            ports: &[(0x3FC, 0x403)],
            mmio: &[],
            irqs: &[],
        }];
        let e = install(&mut bus, &PcPlatformConfig::default(), &clash).unwrap_err();
        assert!(e.contains("second-uart") && e.contains("0x3f8"), "{e}");
    }

    #[test]
    fn the_pit_reaches_the_ioapic_on_pin_2_as_the_override_says() {
        assert_eq!(isa_irq_to_gsi(0), 2);
        assert_eq!(isa_irq_to_gsi(4), 4);
    }
}

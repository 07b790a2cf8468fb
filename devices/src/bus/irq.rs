//! Interrupt lines as devices drive them: a GSI per line, wired-OR levels, and MSI messages.
//! Teaches: why two PCI devices can share one line (each pulls it high; the line is high while
//! any does) and why an MSI needs no line at all (it is a memory write the local APIC decodes).

/// How many global system interrupts the IOAPIC has: ISA lines 0–15 and PCI lines 16–23.
pub const GSI_COUNT: usize = 24;

/// One interrupt line a device drives, named by its number on the board. Lines 0–15 are the
/// ISA IRQs (they reach both the 8259 pair and the IOAPIC, IRQ 0 on pin 2 as the board's
/// interrupt source override says); lines 16–23 are PCI lines, IOAPIC pins only.
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub struct IrqLine(u8);

impl IrqLine {
    /// Line `n`; numbers past the IOAPIC's 24 inputs are refused.
    pub const fn new(n: u8) -> Option<IrqLine> {
        if (n as usize) < GSI_COUNT {
            Some(IrqLine(n))
        } else {
            None
        }
    }

    /// An ISA line (0–15), for the board table's constants.
    pub const fn isa(irq: u8) -> IrqLine {
        assert!(irq < 16, "ISA IRQs are 0-15");
        IrqLine(irq)
    }

    pub const fn number(self) -> u8 {
        self.0
    }

    /// Does this line also reach the 8259 PIC pair?
    pub const fn is_isa(self) -> bool {
        self.0 < 16
    }
}

/// An MSI: the address/data pair a device writes to 0xFEExxxxx (Intel SDM vol. 3A 11.11).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiMessage {
    pub address: u64,
    pub data: u32,
}

impl MsiMessage {
    /// Is the address in the local APIC's MSI window?
    pub fn is_valid(&self) -> bool {
        self.address & 0xFFF0_0000 == 0xFEE0_0000
    }
    /// Destination APIC ID (address bits 19:12).
    pub fn destination(&self) -> u32 {
        ((self.address >> 12) & 0xFF) as u32
    }
    /// Logical destination mode (address bit 2).
    pub fn logical(&self) -> bool {
        self.address & 4 != 0
    }
    pub fn vector(&self) -> u8 {
        self.data as u8
    }
    /// Level-triggered (data bit 15).
    pub fn level_triggered(&self) -> bool {
        self.data & (1 << 15) != 0
    }
    /// Delivery mode (data bits 10:8); 0 fixed, 1 lowest priority are the ones delivered.
    pub fn delivery_mode(&self) -> u32 {
        (self.data >> 8) & 7
    }
}

/// The state of every line: edges seen since the last sync, and who drives each line high.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct IrqLines {
    /// Lines that saw a rising edge since the last sync (bit n = line n).
    edges: u32,
    /// Per line, the set of sources (device indices, bit i = device i) driving it high.
    drivers: [u64; GSI_COUNT],
    /// MSIs sent since the last sync, in order.
    msis: Vec<MsiMessage>,
}

impl IrqLines {
    /// A short pulse from an edge-triggered source: the controllers latch a request.
    pub fn pulse(&mut self, line: IrqLine) {
        self.edges |= 1 << line.0;
    }

    /// Source `source` drives `line` high or releases it. The line is the wired-OR of its
    /// sources; when it goes from low to high, that is also an edge.
    pub fn set_level(&mut self, source: usize, line: IrqLine, high: bool) {
        let bit = 1u64 << (source % 64);
        let drivers = &mut self.drivers[line.0 as usize];
        if high {
            if *drivers == 0 {
                self.edges |= 1 << line.0;
            }
            *drivers |= bit;
        } else {
            *drivers &= !bit;
        }
    }

    pub fn send_msi(&mut self, msi: MsiMessage) {
        self.msis.push(msi);
    }

    /// Lines that saw a rising edge since the last call, cleared (bit n = line n).
    pub fn take_edges(&mut self) -> u32 {
        std::mem::take(&mut self.edges)
    }

    pub fn take_msis(&mut self) -> Vec<MsiMessage> {
        std::mem::take(&mut self.msis)
    }

    /// Current levels (bit n = line n is high).
    pub fn levels(&self) -> u32 {
        self.drivers
            .iter()
            .enumerate()
            .filter(|(_, d)| **d != 0)
            .fold(0, |acc, (n, _)| acc | 1 << n)
    }

    pub fn is_high(&self, line: IrqLine) -> bool {
        self.drivers[line.0 as usize] != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_line_stays_high_until_every_source_lets_go() {
        let mut lines = IrqLines::default();
        let line = IrqLine::new(19).unwrap();
        lines.set_level(3, line, true);
        lines.set_level(5, line, true);
        assert_eq!(lines.take_edges(), 1 << 19, "one rising edge, not two");
        lines.set_level(3, line, false);
        assert!(lines.is_high(line), "source 5 still drives it");
        lines.set_level(5, line, false);
        assert_eq!(lines.levels(), 0);
        lines.set_level(5, line, true);
        assert_eq!(
            lines.take_edges(),
            1 << 19,
            "low to high again is a new edge"
        );
    }

    #[test]
    fn lines_past_the_ioapic_do_not_exist() {
        assert!(IrqLine::new(23).is_some());
        assert!(IrqLine::new(24).is_none());
        assert!(IrqLine::isa(14).is_isa() && !IrqLine::new(16).unwrap().is_isa());
    }

    #[test]
    fn msi_fields_decode_as_the_sdm_lays_them_out() {
        let m = MsiMessage {
            address: 0xFEE0_1004,
            data: 0x8041,
        };
        assert!(m.is_valid());
        assert_eq!((m.destination(), m.logical(), m.vector()), (1, true, 0x41));
        assert!(m.level_triggered());
        assert_eq!(m.delivery_mode(), 0);
        assert!(!MsiMessage {
            address: 0xFED0_0000,
            data: 0
        }
        .is_valid());
    }
}

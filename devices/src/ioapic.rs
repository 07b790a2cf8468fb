//! The I/O APIC at 0xFEC00000: 24 interrupt pins, each turned into a message to a local APIC by
//! its redirection-table entry. Teaches: indirect register access (IOREGSEL/IOWIN), edge versus
//! level triggering, and the remote-IRR handshake that stops a level line from firing twice.
//!
//! The guest writes a register number to IOREGSEL (offset 0x00) and then reads or writes that
//! register through IOWIN (offset 0x10). Registers: 0x00 ID, 0x01 version (max redirection entry
//! in bits 16–23, version 0x20 like QEMU's), 0x02 arbitration, 0x10 + 2n / 0x11 + 2n the low and
//! high halves of redirection entry n. Version 0x20 also has an EOI register at offset 0x40.
//!
//! A redirection entry holds the vector, delivery mode, destination (physical APIC ID or logical
//! mask), trigger mode, polarity and a mask bit. An **edge** entry sends one message per rising
//! edge. A **level** entry sends a message while the line is asserted and sets *remote IRR*; it
//! sends no more until the local APIC's EOI for that vector comes back (the LAPIC broadcasts EOIs
//! of level-triggered vectors). If the line is still asserted then, it sends again.
//!
//! On a PC the ISA IRQs reach pin n = IRQ n, except the timer, IRQ 0, which arrives on pin 2 —
//! the "interrupt source override" the MADT announces. Simplifications: we model the lines'
//! logical (asserted) level, so the polarity bit is stored but not applied; fixed and
//! lowest-priority deliveries reach the one local APIC, other delivery modes are dropped; an edge
//! on a masked pin is lost.

use crate::lapic::{LocalApic, DELIVERY_FIXED, DELIVERY_LOWEST};

/// Default guest-physical base of the IOAPIC.
pub const IOAPIC_BASE: u64 = 0xFEC0_0000;
/// Size of its MMIO window.
pub const IOAPIC_WINDOW: u64 = 0x1000;
/// Number of input pins (global system interrupts 0–23).
pub const PINS: usize = 24;
/// Version register: max redirection entry 23, version 0x20.
pub const VERSION: u32 = ((PINS as u32 - 1) << 16) | 0x20;

/// MMIO offsets.
pub const IOREGSEL: u64 = 0x00;
pub const IOWIN: u64 = 0x10;
pub const EOI: u64 = 0x40;

/// Redirection entry bits.
pub mod entry {
    pub const VECTOR: u64 = 0xFF;
    pub const DEST_LOGICAL: u64 = 1 << 11;
    pub const DELIVERY_STATUS: u64 = 1 << 12;
    pub const POLARITY_LOW: u64 = 1 << 13;
    pub const REMOTE_IRR: u64 = 1 << 14;
    pub const LEVEL: u64 = 1 << 15;
    pub const MASKED: u64 = 1 << 16;
    /// Bits the guest can write: everything except delivery status and remote IRR.
    pub const WRITABLE: u64 = 0xFF00_0000_0001_AFFF;
}

/// The I/O APIC.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct IoApic {
    id: u32,
    regsel: u8,
    redirection: [u64; PINS],
    /// Asserted pins (bit n = pin n), from level-driven lines.
    levels: u32,
}

impl Default for IoApic {
    fn default() -> Self {
        Self::new()
    }
}

impl IoApic {
    /// Reset state: ID 0, every entry masked.
    pub fn new() -> Self {
        IoApic {
            id: 0,
            regsel: 0,
            redirection: [entry::MASKED; PINS],
            levels: 0,
        }
    }

    /// A redirection entry, for tests and debuggers.
    pub fn redirection(&self, pin: usize) -> u64 {
        self.redirection[pin % PINS]
    }

    fn read_register(&self, index: u8) -> u32 {
        match index {
            0x00 => self.id << 24,
            0x01 => VERSION,
            0x02 => self.id << 24,
            0x10..=0x3F => {
                let e = self.redirection[(index as usize - 0x10) / 2];
                if index & 1 == 0 {
                    e as u32
                } else {
                    (e >> 32) as u32
                }
            }
            _ => 0xFFFF_FFFF,
        }
    }

    fn write_register(&mut self, index: u8, value: u32, lapic: &mut LocalApic) {
        match index {
            0x00 => self.id = (value >> 24) & 0xF,
            0x10..=0x3F => {
                let pin = (index as usize - 0x10) / 2;
                let old = self.redirection[pin];
                let (keep, new) = if index & 1 == 0 {
                    (0xFFFF_FFFF_0000_0000, value as u64)
                } else {
                    (0x0000_0000_FFFF_FFFF, (value as u64) << 32)
                };
                let written = (old & keep) | (new & !keep);
                let read_only = entry::DELIVERY_STATUS | entry::REMOTE_IRR;
                let mut e = (written & entry::WRITABLE) | (old & read_only);
                if e & entry::LEVEL == 0 {
                    e &= !entry::REMOTE_IRR; // edge entries have no remote IRR
                }
                self.redirection[pin] = e;
                // Unmasking a level entry whose line is asserted delivers now.
                self.service_level(pin, lapic);
            }
            _ => {}
        }
    }

    /// MMIO read at `offset` within the window.
    pub fn mmio_read(&mut self, offset: u64, size: u8) -> u64 {
        let value = match offset & !3 {
            IOREGSEL => self.regsel as u32,
            IOWIN => self.read_register(self.regsel),
            _ => 0,
        };
        let shift = 8 * (offset & 3) as u32;
        let v = (value >> shift) as u64;
        match size {
            1 => v & 0xFF,
            2 => v & 0xFFFF,
            _ => v,
        }
    }

    /// MMIO write at `offset`; deliveries it causes go to `lapic`.
    pub fn mmio_write(&mut self, offset: u64, size: u8, value: u64, lapic: &mut LocalApic) {
        match offset {
            IOREGSEL => self.regsel = value as u8,
            IOWIN if size == 4 => self.write_register(self.regsel, value as u32, lapic),
            EOI if size == 4 => self.end_of_interrupt(value as u8, lapic),
            _ => {}
        }
    }

    /// A rising edge on `pin`.
    pub fn edge(&mut self, pin: usize, lapic: &mut LocalApic) {
        if pin >= PINS {
            return;
        }
        let e = self.redirection[pin];
        if e & entry::LEVEL == 0 {
            self.deliver(pin, lapic);
        } else if e & entry::REMOTE_IRR == 0 {
            // A pulse on a level-triggered pin: one delivery, then wait for the EOI.
            self.deliver(pin, lapic);
        }
    }

    /// The current levels of all level-driven pins (bit n = pin n).
    pub fn set_levels(&mut self, levels: u32, lapic: &mut LocalApic) {
        let risen = levels & !self.levels;
        self.levels = levels;
        for pin in 0..PINS {
            if risen & (1 << pin) != 0 {
                self.service_level(pin, lapic);
            }
        }
    }

    /// A level entry with its line asserted, unmasked and no EOI outstanding sends a message.
    fn service_level(&mut self, pin: usize, lapic: &mut LocalApic) {
        let e = self.redirection[pin];
        if e & entry::LEVEL != 0 && e & entry::REMOTE_IRR == 0 && self.levels & (1 << pin) != 0 {
            self.deliver(pin, lapic);
        }
    }

    /// The local APIC finished a level-triggered `vector`: clear remote IRR of the entries that
    /// sent it, and send again for lines that are still asserted.
    pub fn end_of_interrupt(&mut self, vector: u8, lapic: &mut LocalApic) {
        for pin in 0..PINS {
            let e = self.redirection[pin];
            if e & entry::REMOTE_IRR != 0 && e & entry::VECTOR == vector as u64 {
                self.redirection[pin] = e & !entry::REMOTE_IRR;
                self.service_level(pin, lapic);
            }
        }
    }

    fn deliver(&mut self, pin: usize, lapic: &mut LocalApic) {
        let e = self.redirection[pin];
        if e & entry::MASKED != 0 {
            return;
        }
        let mode = ((e >> 8) & 7) as u32;
        if mode != DELIVERY_FIXED && mode != DELIVERY_LOWEST {
            return;
        }
        let dest = (e >> 56) as u32;
        let addressed = if e & entry::DEST_LOGICAL != 0 {
            lapic.matches_logical(dest)
        } else {
            lapic.matches_physical(dest)
        };
        if !addressed {
            return;
        }
        let level = e & entry::LEVEL != 0;
        if level {
            self.redirection[pin] |= entry::REMOTE_IRR;
        }
        lapic.accept(e as u8, level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lapic::reg;

    fn enabled_lapic() -> LocalApic {
        let mut l = LocalApic::new();
        l.mmio_write((reg::SVR * 16) as u64, 4, 0x1FF, 0);
        l
    }

    fn write(io: &mut IoApic, l: &mut LocalApic, index: u8, value: u32) {
        io.mmio_write(IOREGSEL, 1, index as u64, l);
        io.mmio_write(IOWIN, 4, value as u64, l);
    }

    fn read(io: &mut IoApic, l: &mut LocalApic, index: u8) -> u32 {
        io.mmio_write(IOREGSEL, 1, index as u64, l);
        io.mmio_read(IOWIN, 4) as u32
    }

    #[test]
    fn version_and_reset_state_read_through_the_window() {
        let (mut io, mut l) = (IoApic::new(), enabled_lapic());
        assert_eq!(read(&mut io, &mut l, 1), 0x0017_0020);
        assert_eq!(
            read(&mut io, &mut l, 0x10) & (1 << 16),
            1 << 16,
            "entries start masked"
        );
        write(&mut io, &mut l, 0, 0x0500_0000);
        assert_eq!(read(&mut io, &mut l, 0), 0x0500_0000);
        assert_eq!(io.mmio_read(IOREGSEL, 1), 0);
    }

    #[test]
    fn an_edge_on_an_unmasked_pin_sets_the_vector_in_the_lapic() {
        let (mut io, mut l) = (IoApic::new(), enabled_lapic());
        io.edge(2, &mut l);
        assert!(!l.has_interrupt(), "masked pin");
        write(&mut io, &mut l, 0x14, 0x31); // pin 2: vector 0x31, fixed, physical, edge
        write(&mut io, &mut l, 0x15, 0);
        io.edge(2, &mut l);
        assert!(l.has_interrupt());
        assert_eq!(l.acknowledge(), 0x31);
        assert!(!l.tmr.get(0x31), "edge interrupts leave TMR clear");
    }

    #[test]
    fn a_level_pin_waits_for_the_eoi_and_fires_again_while_asserted() {
        let (mut io, mut l) = (IoApic::new(), enabled_lapic());
        write(&mut io, &mut l, 0x10 + 2 * 9, 0x8000 | 0x49); // pin 9: level, vector 0x49
        write(&mut io, &mut l, 0x11 + 2 * 9, 0);
        io.set_levels(1 << 9, &mut l);
        assert_ne!(io.redirection(9) & entry::REMOTE_IRR, 0);
        assert_eq!(l.acknowledge(), 0x49);
        assert!(l.tmr.get(0x49));
        io.set_levels(1 << 9, &mut l);
        assert!(!l.has_interrupt(), "remote IRR blocks a second message");
        l.end_of_interrupt();
        for v in l.take_eoi_broadcasts() {
            io.end_of_interrupt(v, &mut l);
        }
        assert_ne!(
            io.redirection(9) & entry::REMOTE_IRR,
            0,
            "still asserted: sent again"
        );
        assert_eq!(l.acknowledge(), 0x49);
        io.set_levels(0, &mut l);
        l.end_of_interrupt();
        let eois = l.take_eoi_broadcasts();
        assert_eq!(eois, vec![0x49]);
        io.end_of_interrupt(0x49, &mut l);
        assert_eq!(io.redirection(9) & entry::REMOTE_IRR, 0);
        assert!(!l.has_interrupt());
    }

    #[test]
    fn unmasking_an_asserted_level_pin_delivers() {
        let (mut io, mut l) = (IoApic::new(), enabled_lapic());
        io.set_levels(1 << 5, &mut l);
        write(&mut io, &mut l, 0x10 + 2 * 5, 0x8000 | 0x55);
        assert_eq!(l.acknowledge(), 0x55);
    }

    #[test]
    fn destination_must_address_the_cpu() {
        let (mut io, mut l) = (IoApic::new(), enabled_lapic());
        write(&mut io, &mut l, 0x16, 0x40);
        write(&mut io, &mut l, 0x17, 0x0300_0000); // physical APIC ID 3: nobody
        io.edge(3, &mut l);
        assert!(!l.has_interrupt());
        write(&mut io, &mut l, 0x17, 0xFF00_0000); // broadcast
        io.edge(3, &mut l);
        assert_eq!(l.acknowledge(), 0x40);
        l.end_of_interrupt();
        // Logical, flat model: LDR bit 0 addressed by mask 0x01.
        l.mmio_write((reg::LDR * 16) as u64, 4, 0x0100_0000, 0);
        write(&mut io, &mut l, 0x16, 0x800 | 0x41);
        write(&mut io, &mut l, 0x17, 0x0200_0000);
        io.edge(3, &mut l);
        assert!(!l.has_interrupt(), "mask 0x02 does not include this CPU");
        write(&mut io, &mut l, 0x17, 0x0100_0000);
        io.edge(3, &mut l);
        assert_eq!(l.acknowledge(), 0x41);
    }

    #[test]
    fn remote_irr_and_delivery_status_are_read_only_and_eoi_register_clears() {
        let (mut io, mut l) = (IoApic::new(), enabled_lapic());
        write(&mut io, &mut l, 0x12, 0x8000 | 0x60);
        io.set_levels(1 << 1, &mut l);
        write(&mut io, &mut l, 0x12, 0x8000 | 0x60); // rewrite: remote IRR survives
        assert_ne!(read(&mut io, &mut l, 0x12) & (1 << 14), 0);
        io.set_levels(0, &mut l);
        io.mmio_write(EOI, 4, 0x60, &mut l);
        assert_eq!(read(&mut io, &mut l, 0x12) & (1 << 14), 0);
    }
}

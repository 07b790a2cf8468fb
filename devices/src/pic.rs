//! The i8259A programmable interrupt controller pair of the PC (master at 0x20, slave at 0xA0).
//! Teaches: how sixteen device lines become one CPU interrupt with a vector: request, mask, priority, in-service, EOI.
//!
//! Each chip has eight input lines (IR0–IR7) and three 8-bit registers:
//! - IRR, the interrupt request register: lines asking for service;
//! - IMR, the interrupt mask register: lines the guest has switched off;
//! - ISR, the in-service register: interrupts the CPU has accepted and not yet ended with an EOI.
//!
//! The chip raises INTR when an unmasked request has a higher priority than everything in service.
//! During the CPU's interrupt-acknowledge cycle it moves that request from IRR to ISR and hands out
//! `vector_base + line`. The slave's INTR output is wired to the master's IR2, so a slave interrupt
//! is a two-step affair: the master sees "IR2", and asks the slave for the vector.
//!
//! Before the guest programs the chips we present the state a PC BIOS leaves behind: master vectors
//! at 0x08, slave at 0x70, cascade on IR2, every line masked except the cascade. Guests normally
//! re-initialize both chips anyway (protected-mode kernels move the vectors away from the CPU
//! exceptions, typically to 0x20 and 0x28).

/// The master's input that the slave's output is wired to on every PC.
const CASCADE_LINE: u8 = 2;

/// Lines whose trigger mode the ELCR may switch to level: IRQ 0, 1 and 2 are always edge on the
/// master (timer, keyboard, cascade), IRQ 8 and 13 on the slave (RTC, FPU error).
const MASTER_ELCR_WRITABLE: u8 = 0xF8;
const SLAVE_ELCR_WRITABLE: u8 = 0xDE;

/// Where the chip is in its four-step initialization sequence (ICW1 on the command port, then
/// ICW2–ICW4 on the data port).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
enum InitStep {
    Ready,
    ExpectIcw2,
    ExpectIcw3,
    ExpectIcw4,
}

/// A snapshot of one chip's registers, for debuggers, the GUI and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PicRegisters {
    pub irr: u8,
    pub isr: u8,
    pub imr: u8,
    /// The vector of line 0 (ICW2).
    pub vector_base: u8,
    /// Lines set to level-triggered by the ELCR.
    pub level_triggered: u8,
}

/// One i8259A chip.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
struct Chip {
    irr: u8,
    isr: u8,
    imr: u8,
    /// Current electrical level of each input (used for level-triggered lines and edge detection).
    line_levels: u8,
    /// Edge/Level Control Register (an ISA-era PIIX addition at 0x4D0/0x4D1): 1 = level-triggered.
    elcr: u8,
    elcr_writable: u8,
    vector_base: u8,
    /// ICW3: on the master, which lines have a slave; on the slave, its cascade identity.
    icw3: u8,
    init_step: InitStep,
    icw4_expected: bool,
    single_mode: bool,
    auto_eoi: bool,
    special_fully_nested: bool,
    /// The line with the lowest priority; the line after it has the highest. 7 = fixed priority.
    lowest_priority: u8,
    rotate_on_auto_eoi: bool,
    special_mask_mode: bool,
    /// OCW3 read-register select: the command port reads ISR (true) or IRR (false).
    read_isr: bool,
    /// OCW3 poll command: the next command-port read is a poll (an acknowledge in software).
    poll_pending: bool,
    is_master: bool,
}

impl Chip {
    fn new(is_master: bool, vector_base: u8) -> Self {
        Chip {
            irr: 0,
            isr: 0,
            imr: if is_master {
                !(1 << CASCADE_LINE)
            } else {
                0xFF
            },
            line_levels: 0,
            elcr: 0,
            elcr_writable: if is_master {
                MASTER_ELCR_WRITABLE
            } else {
                SLAVE_ELCR_WRITABLE
            },
            vector_base,
            icw3: if is_master {
                1 << CASCADE_LINE
            } else {
                CASCADE_LINE
            },
            init_step: InitStep::Ready,
            icw4_expected: false,
            single_mode: false,
            auto_eoi: false,
            special_fully_nested: false,
            lowest_priority: 7,
            rotate_on_auto_eoi: false,
            special_mask_mode: false,
            read_isr: false,
            poll_pending: false,
            is_master,
        }
    }

    fn registers(&self) -> PicRegisters {
        PicRegisters {
            irr: self.irr,
            isr: self.isr,
            imr: self.imr,
            vector_base: self.vector_base,
            level_triggered: self.elcr,
        }
    }

    // ---- priorities ----

    /// 0 is the highest priority, 7 the lowest; rotation moves the whole order around the ring.
    fn priority(&self, line: u8) -> u8 {
        line.wrapping_sub(self.lowest_priority).wrapping_sub(1) & 7
    }

    /// The line of highest priority among the set bits of `lines`.
    fn highest_of(&self, lines: u8) -> Option<u8> {
        (0..8u8)
            .map(|p| (self.lowest_priority + 1 + p) & 7)
            .find(|line| lines & (1 << line) != 0)
    }

    fn is_cascade_line(&self, line: u8) -> bool {
        self.is_master && !self.single_mode && self.icw3 & (1 << line) != 0
    }

    /// The line that would be acknowledged now: the best unmasked request that beats everything
    /// in service. This is the chip's INTR output.
    fn pending_request(&self) -> Option<u8> {
        let line = self.highest_of(self.irr & !self.imr)?;
        // In special mask mode a masked line in service no longer holds back lower priorities:
        // a handler can mask itself and let everything else through.
        let in_service = if self.special_mask_mode {
            self.isr & !self.imr
        } else {
            self.isr
        };
        match self.highest_of(in_service) {
            None => Some(line),
            Some(busy) => {
                let (want, have) = (self.priority(line), self.priority(busy));
                // Special fully nested mode lets a slave interrupt through while an earlier one from
                // the same slave is still in service on the master (the slave sorts out priorities).
                let nested_slave = self.special_fully_nested && self.is_cascade_line(line);
                (want < have || (want == have && nested_slave)).then_some(line)
            }
        }
    }

    /// The interrupt-acknowledge cycle for `line`: IRR to ISR, unless auto-EOI ends it at once.
    fn acknowledge(&mut self, line: u8) {
        let bit = 1 << line;
        // An edge request is consumed by the acknowledge; a level request stays as long as the
        // device holds its line high (the ISR bit keeps it from interrupting again until EOI).
        if self.elcr & bit == 0 {
            self.irr &= !bit;
        }
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.lowest_priority = line;
            }
        } else {
            self.isr |= bit;
        }
    }

    // ---- input lines ----

    /// A short pulse on an input: latched by an edge-triggered line, invisible to a level one.
    fn pulse(&mut self, line: u8) {
        let bit = 1 << line;
        if self.elcr & bit == 0 {
            self.irr |= bit;
        }
    }

    /// Drives an input to `high`. Edge lines latch a request on a rising edge; level lines mirror
    /// the level in IRR.
    fn set_line(&mut self, line: u8, high: bool) {
        let bit = 1 << line;
        let was_high = self.line_levels & bit != 0;
        if high {
            self.line_levels |= bit;
        } else {
            self.line_levels &= !bit;
        }
        if self.elcr & bit != 0 {
            if high {
                self.irr |= bit;
            } else {
                self.irr &= !bit;
            }
        } else if high && !was_high {
            self.irr |= bit;
        }
    }

    /// Updates a line's level from `set_levels`: only level-triggered lines change IRR here.
    fn set_line_level_only(&mut self, line: u8, high: bool) {
        let bit = 1 << line;
        if self.elcr & bit != 0 {
            self.set_line(line, high);
        } else if high {
            self.line_levels |= bit;
        } else {
            self.line_levels &= !bit;
        }
    }

    fn write_elcr(&mut self, value: u8) {
        self.elcr = value & self.elcr_writable;
        // A line that becomes level-triggered immediately shows its current level.
        self.irr = (self.irr & !self.elcr) | (self.line_levels & self.elcr);
    }

    // ---- programming ----

    fn write_command(&mut self, value: u8) {
        if value & 0x10 != 0 {
            self.icw1(value);
        } else if value & 0x08 != 0 {
            self.ocw3(value);
        } else {
            self.ocw2(value);
        }
    }

    fn write_data(&mut self, value: u8) {
        match self.init_step {
            InitStep::Ready => self.imr = value, // OCW1
            InitStep::ExpectIcw2 => {
                // In 8086 mode the low three bits of the vector are the line number.
                self.vector_base = value & 0xF8;
                self.init_step = if !self.single_mode {
                    InitStep::ExpectIcw3
                } else if self.icw4_expected {
                    InitStep::ExpectIcw4
                } else {
                    InitStep::Ready
                };
            }
            InitStep::ExpectIcw3 => {
                self.icw3 = value;
                self.init_step = if self.icw4_expected {
                    InitStep::ExpectIcw4
                } else {
                    InitStep::Ready
                };
            }
            InitStep::ExpectIcw4 => {
                // Bit 0 selects 8086 mode; we always deliver 8086-style vectors (the 8080 mode
                // issued CALL instructions, which no PC guest uses).
                self.auto_eoi = value & 0x02 != 0;
                self.special_fully_nested = value & 0x10 != 0;
                self.init_step = InitStep::Ready;
            }
        }
    }

    /// ICW1 starts initialization and resets the chip. Its LTIM bit (all lines level-triggered)
    /// is ignored, as on PC chipsets where the ELCR decides the trigger mode per line.
    fn icw1(&mut self, value: u8) {
        self.icw4_expected = value & 0x01 != 0;
        self.single_mode = value & 0x02 != 0;
        self.init_step = InitStep::ExpectIcw2;
        self.imr = 0;
        self.isr = 0;
        // The edge detectors are reset: a line must rise again to request an interrupt.
        self.irr &= self.elcr;
        self.lowest_priority = 7;
        self.special_mask_mode = false;
        self.read_isr = false;
        self.poll_pending = false;
        self.rotate_on_auto_eoi = false;
        // Without an ICW4, all ICW4 functions are off.
        self.auto_eoi = false;
        self.special_fully_nested = false;
    }

    /// OCW2: end-of-interrupt and priority rotation. Bits 7–5 are R, SL, EOI; bits 2–0 a level.
    fn ocw2(&mut self, value: u8) {
        let level = value & 7;
        let highest_in_service = self.highest_of(self.isr);
        match value >> 5 {
            0b001 => {
                // Non-specific EOI: end the highest-priority interrupt in service.
                if let Some(line) = highest_in_service {
                    self.isr &= !(1 << line);
                }
            }
            0b011 => self.isr &= !(1 << level), // specific EOI
            0b101 => {
                // Rotate on non-specific EOI: the ended line becomes the lowest priority, so
                // devices of equal importance take turns.
                if let Some(line) = highest_in_service {
                    self.isr &= !(1 << line);
                    self.lowest_priority = line;
                }
            }
            0b111 => {
                self.isr &= !(1 << level);
                self.lowest_priority = level;
            }
            0b100 => self.rotate_on_auto_eoi = true,
            0b000 => self.rotate_on_auto_eoi = false,
            0b110 => self.lowest_priority = level, // set priority
            _ => {}                                // 0b010: no operation
        }
    }

    /// OCW3: which register the command port reads, poll command, special mask mode.
    fn ocw3(&mut self, value: u8) {
        if value & 0x02 != 0 {
            self.read_isr = value & 0x01 != 0;
        }
        if value & 0x04 != 0 {
            self.poll_pending = true;
        }
        if value & 0x40 != 0 {
            self.special_mask_mode = value & 0x20 != 0;
        }
    }

    fn read_command(&mut self) -> u8 {
        if std::mem::take(&mut self.poll_pending) {
            // Polling: the guest acknowledges in software instead of taking an interrupt.
            // Bit 7 says whether there was a request, bits 2–0 which line.
            return match self.pending_request() {
                Some(line) => {
                    self.acknowledge(line);
                    0x80 | line
                }
                None => 0,
            };
        }
        if self.read_isr {
            self.isr
        } else {
            self.irr
        }
    }
}

/// The master/slave i8259A pair of a PC, plus the ELCR at 0x4D0/0x4D1.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct PicPair {
    master: Chip,
    slave: Chip,
    /// The last level seen on the master's IR2 from the slave's INTR output.
    cascade_level: bool,
}

impl Default for PicPair {
    fn default() -> Self {
        Self::new()
    }
}

impl PicPair {
    /// The pair as a PC BIOS leaves it: vectors 0x08–0x0F and 0x70–0x77, all lines masked but IR2.
    pub fn new() -> Self {
        PicPair {
            master: Chip::new(true, 0x08),
            slave: Chip::new(false, 0x70),
            cascade_level: false,
        }
    }

    /// Reads a PIC port: 0x20/0xA0 give IRR, ISR or a poll result (OCW3), 0x21/0xA1 the IMR,
    /// 0x4D0/0x4D1 the ELCR.
    pub fn pio_read(&mut self, port: u16) -> u32 {
        let value = match port {
            0x20 => self.master.read_command(),
            0x21 => self.master.imr,
            0xA0 => self.slave.read_command(),
            0xA1 => self.slave.imr,
            0x4D0 => self.master.elcr,
            0x4D1 => self.slave.elcr,
            _ => 0xFF,
        };
        self.update_cascade();
        value as u32
    }

    /// Writes a PIC port: ICW1/OCW2/OCW3 on 0x20/0xA0, ICW2–4/OCW1 on 0x21/0xA1, ELCR on 0x4D0/0x4D1.
    pub fn pio_write(&mut self, port: u16, value: u8) {
        match port {
            0x20 => self.master.write_command(value),
            0x21 => self.master.write_data(value),
            0xA0 => self.slave.write_command(value),
            0xA1 => self.slave.write_data(value),
            0x4D0 => self.master.write_elcr(value),
            0x4D1 => self.slave.write_elcr(value),
            _ => {}
        }
        self.update_cascade();
    }

    /// An edge on ISA line `irq` (0–15). ISA line 2 is wired to IRQ 9 on every AT-class PC,
    /// because the master's IR2 is taken by the slave.
    pub fn raise_irq(&mut self, irq: u8) {
        let irq = Self::route(irq);
        if irq < 8 {
            self.master.pulse(irq);
        } else {
            self.slave.pulse(irq - 8);
        }
        self.update_cascade();
    }

    /// The current levels of all sixteen ISA lines (bit n = line n). Level-triggered lines (ELCR)
    /// follow them; edge-triggered lines only remember them (edges arrive through `raise_irq`).
    pub fn set_levels(&mut self, levels: u16) {
        let mut routed = levels & !(1 << 2);
        if levels & (1 << 2) != 0 {
            routed |= 1 << 9;
        }
        for line in 0..8u8 {
            if line != CASCADE_LINE {
                self.master
                    .set_line_level_only(line, routed & (1 << line) != 0);
            }
            self.slave
                .set_line_level_only(line, routed & (1 << (line + 8)) != 0);
        }
        self.update_cascade();
    }

    /// Is the master asserting INTR to the CPU?
    pub fn has_interrupt(&self) -> bool {
        self.master.pending_request().is_some()
    }

    // ANCHOR: pic_acknowledge
    /// The interrupt-acknowledge cycle: returns the vector and marks the interrupt in service.
    /// With nothing to deliver, the chip answers with its IR7 vector (a "spurious" IRQ 7, or
    /// IRQ 15 when the master picked the slave but the slave's request went away) without
    /// setting the in-service bit of that line.
    pub fn acknowledge(&mut self) -> u8 {
        let vector = match self.master.pending_request() {
            None => self.master.vector_base | 7,
            Some(line) if self.master.is_cascade_line(line) => {
                self.master.acknowledge(line);
                match self.slave.pending_request() {
                    Some(slave_line) => {
                        self.slave.acknowledge(slave_line);
                        self.slave.vector_base | slave_line
                    }
                    None => self.slave.vector_base | 7,
                }
            }
            Some(line) => {
                self.master.acknowledge(line);
                self.master.vector_base | line
            }
        };
        self.update_cascade();
        vector
    }
    // ANCHOR_END: pic_acknowledge

    /// Register snapshots of the master and the slave.
    pub fn registers(&self) -> [PicRegisters; 2] {
        [self.master.registers(), self.slave.registers()]
    }

    fn route(irq: u8) -> u8 {
        match irq & 15 {
            2 => 9,
            other => other,
        }
    }

    /// Feeds the slave's INTR output into the master's IR2 (an edge-triggered input).
    fn update_cascade(&mut self) {
        let level = self.slave.pending_request().is_some();
        if level != self.cascade_level {
            self.cascade_level = level;
            self.master.set_line(CASCADE_LINE, level);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The initialization every protected-mode PC kernel performs: vectors 0x20 and 0x28.
    fn remapped() -> PicPair {
        let mut pic = PicPair::new();
        pic.pio_write(0x20, 0x11); // ICW1: edge, cascade, ICW4 follows
        pic.pio_write(0xA0, 0x11);
        pic.pio_write(0x21, 0x20); // ICW2: vector base
        pic.pio_write(0xA1, 0x28);
        pic.pio_write(0x21, 0x04); // ICW3: slave on IR2
        pic.pio_write(0xA1, 0x02); // ICW3: slave identity 2
        pic.pio_write(0x21, 0x01); // ICW4: 8086 mode
        pic.pio_write(0xA1, 0x01);
        pic
    }

    fn eoi(pic: &mut PicPair, irq: u8) {
        if irq >= 8 {
            pic.pio_write(0xA0, 0x20);
        }
        pic.pio_write(0x20, 0x20);
    }

    #[test]
    fn initialization_sets_vectors_and_unmasks_everything() {
        let mut pic = remapped();
        let [master, slave] = pic.registers();
        assert_eq!((master.vector_base, slave.vector_base), (0x20, 0x28));
        // ICW1 clears the mask register.
        assert_eq!(pic.pio_read(0x21), 0);
        assert_eq!(pic.pio_read(0xA1), 0);
        pic.raise_irq(3);
        assert!(pic.has_interrupt());
        assert_eq!(pic.acknowledge(), 0x23);
    }

    #[test]
    fn bios_state_before_initialization() {
        let mut pic = PicPair::new();
        assert_eq!(pic.pio_read(0x21), 0xFB);
        pic.raise_irq(0);
        assert!(
            !pic.has_interrupt(),
            "IRQ 0 is masked until the guest unmasks it"
        );
        pic.pio_write(0x21, 0xFA);
        assert_eq!(pic.acknowledge(), 0x08);
    }

    #[test]
    fn masked_requests_wait_in_irr_until_unmasked() {
        let mut pic = remapped();
        pic.pio_write(0x21, 0x01); // mask IRQ 0
        pic.raise_irq(0);
        assert!(!pic.has_interrupt());
        assert_eq!(pic.pio_read(0x20), 0x01, "IRR shows the request");
        pic.pio_write(0x21, 0x00);
        assert!(pic.has_interrupt());
        assert_eq!(pic.acknowledge(), 0x20);
    }

    #[test]
    fn fixed_priority_and_in_service_blocking() {
        let mut pic = remapped();
        pic.raise_irq(4);
        pic.raise_irq(1);
        assert_eq!(pic.acknowledge(), 0x21, "IRQ 1 beats IRQ 4");
        // IRQ 1 in service holds back the lower-priority IRQ 4 ...
        assert!(!pic.has_interrupt());
        // ... but not the higher-priority IRQ 0 (nesting).
        pic.raise_irq(0);
        assert_eq!(pic.acknowledge(), 0x20);
        // A non-specific EOI ends the highest in service (IRQ 0); IRQ 1 still blocks IRQ 4.
        pic.pio_write(0x20, 0x20);
        assert!(!pic.has_interrupt());
        pic.pio_write(0x20, 0x20);
        assert_eq!(pic.acknowledge(), 0x24);
    }

    #[test]
    fn specific_eoi_and_isr_irr_reads() {
        let mut pic = remapped();
        pic.raise_irq(5);
        pic.raise_irq(6);
        assert_eq!(pic.pio_read(0x20), 0x60, "reads IRR by default");
        assert_eq!(pic.acknowledge(), 0x25);
        pic.pio_write(0x20, 0x0B); // OCW3: read ISR
        assert_eq!(pic.pio_read(0x20), 0x20);
        pic.pio_write(0x20, 0x60 | 6); // specific EOI for line 6: not in service, no effect
        assert_eq!(pic.pio_read(0x20), 0x20);
        pic.pio_write(0x20, 0x60 | 5);
        assert_eq!(pic.pio_read(0x20), 0x00);
        pic.pio_write(0x20, 0x0A); // back to IRR
        assert_eq!(pic.pio_read(0x20), 0x40);
    }

    #[test]
    fn slave_interrupts_arrive_through_the_cascade() {
        let mut pic = remapped();
        for irq in 8..16u8 {
            pic.raise_irq(irq);
            assert!(pic.has_interrupt(), "IRQ {irq}");
            assert_eq!(pic.acknowledge(), 0x28 + irq - 8);
            let [master, slave] = pic.registers();
            assert_eq!(master.isr, 0x04, "the master has IR2 in service");
            assert_eq!(slave.isr, 1 << (irq - 8));
            eoi(&mut pic, irq);
            assert_eq!(pic.registers()[1].isr, 0);
            assert_eq!(pic.registers()[0].isr, 0);
        }
    }

    #[test]
    fn second_slave_request_is_delivered_after_eoi() {
        let mut pic = remapped();
        pic.raise_irq(12);
        pic.raise_irq(14);
        assert_eq!(pic.acknowledge(), 0x2C);
        assert!(!pic.has_interrupt());
        eoi(&mut pic, 12);
        assert!(pic.has_interrupt());
        assert_eq!(pic.acknowledge(), 0x2E);
    }

    #[test]
    fn isa_line_2_is_routed_to_irq_9() {
        let mut pic = remapped();
        pic.raise_irq(2);
        assert_eq!(pic.acknowledge(), 0x29);
    }

    #[test]
    fn spurious_irq7_when_nothing_is_pending() {
        let mut pic = remapped();
        assert!(!pic.has_interrupt());
        assert_eq!(pic.acknowledge(), 0x27);
        assert_eq!(pic.registers()[0].isr, 0, "a spurious IRQ sets no ISR bit");
    }

    #[test]
    fn spurious_irq15_when_the_slave_request_vanishes() {
        let mut pic = remapped();
        pic.raise_irq(10);
        assert!(pic.has_interrupt());
        // The guest masks the line on the slave before the CPU acknowledges; the master has
        // already latched the edge from the slave on IR2.
        pic.pio_write(0xA1, 1 << 2);
        assert!(pic.has_interrupt());
        assert_eq!(pic.acknowledge(), 0x2F);
        let [master, slave] = pic.registers();
        assert_eq!(slave.isr, 0);
        assert_eq!(
            master.isr, 0x04,
            "the master does not know: it needs an EOI"
        );
    }

    #[test]
    fn auto_eoi_leaves_nothing_in_service() {
        let mut pic = PicPair::new();
        for (port, value) in [(0x20, 0x11), (0x21, 0x40), (0x21, 0x04), (0x21, 0x03)] {
            pic.pio_write(port, value);
        }
        pic.raise_irq(3);
        assert_eq!(pic.acknowledge(), 0x43);
        assert_eq!(pic.registers()[0].isr, 0);
        pic.raise_irq(3);
        assert!(pic.has_interrupt(), "no EOI needed before the next one");
    }

    #[test]
    fn rotation_on_eoi_gives_equal_priority_turns() {
        let mut pic = remapped();
        pic.raise_irq(0);
        assert_eq!(pic.acknowledge(), 0x20);
        pic.pio_write(0x20, 0xA0); // rotate on non-specific EOI: IRQ 0 becomes lowest
        pic.raise_irq(0);
        pic.raise_irq(5);
        assert_eq!(pic.acknowledge(), 0x25, "IRQ 5 now outranks IRQ 0");
    }

    #[test]
    fn poll_command_acknowledges_in_software() {
        let mut pic = remapped();
        pic.raise_irq(6);
        pic.pio_write(0x20, 0x0C); // OCW3 poll
        assert_eq!(pic.pio_read(0x20), 0x86);
        assert_eq!(pic.registers()[0].isr, 0x40);
        pic.pio_write(0x20, 0x0C);
        assert_eq!(pic.pio_read(0x20), 0x00, "nothing left to poll");
    }

    #[test]
    fn special_mask_mode_lets_lower_priorities_through() {
        let mut pic = remapped();
        pic.raise_irq(3);
        assert_eq!(pic.acknowledge(), 0x23);
        pic.raise_irq(5);
        assert!(!pic.has_interrupt());
        pic.pio_write(0x21, 1 << 3); // mask the line in service
        pic.pio_write(0x20, 0x68); // OCW3: set special mask mode
        assert!(pic.has_interrupt());
        assert_eq!(pic.acknowledge(), 0x25);
    }

    #[test]
    fn level_triggered_lines_follow_the_device() {
        let mut pic = remapped();
        pic.pio_write(0x4D1, 0xFF); // try to make every slave line level-triggered
        assert_eq!(
            pic.pio_read(0x4D1),
            0xDE,
            "IRQ 8 and 13 stay edge-triggered"
        );
        pic.set_levels(1 << 11);
        assert_eq!(pic.acknowledge(), 0x2B);
        eoi(&mut pic, 11);
        assert!(
            pic.has_interrupt(),
            "the line is still high: it interrupts again"
        );
        assert_eq!(pic.acknowledge(), 0x2B);
        pic.set_levels(0);
        eoi(&mut pic, 11);
        assert!(!pic.has_interrupt(), "the device dropped its line");
        pic.raise_irq(11);
        assert!(
            !pic.has_interrupt(),
            "a pulse is invisible to a level-triggered input"
        );
    }

    #[test]
    fn edge_lines_latch_only_on_a_rising_edge() {
        let mut pic = remapped();
        pic.set_levels(1 << 4);
        assert!(
            !pic.has_interrupt(),
            "levels alone never trigger an edge line"
        );
        pic.raise_irq(4);
        assert_eq!(pic.acknowledge(), 0x24);
        pic.pio_write(0x20, 0x20);
        assert!(!pic.has_interrupt(), "a held line does not request again");
    }

    #[test]
    fn reinitialization_clears_pending_edges() {
        let mut pic = remapped();
        pic.raise_irq(1);
        let _ = pic.acknowledge();
        pic.raise_irq(4);
        for (port, value) in [(0x20, 0x11), (0x21, 0x30), (0x21, 0x04), (0x21, 0x01)] {
            pic.pio_write(port, value);
        }
        let [master, _] = pic.registers();
        assert_eq!((master.irr, master.isr, master.vector_base), (0, 0, 0x30));
    }
}

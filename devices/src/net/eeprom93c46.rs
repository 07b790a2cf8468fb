//! A 93C46 serial EEPROM (64 words of 16 bits, Microwire): where an RTL8139 keeps its MAC.
//! Teaches: how a driver talks to a chip through four wires it toggles by hand — chip select,
//! clock, data in, data out — one register write per clock edge.
//!
//! Only the READ command is implemented (start bit 1, opcode 10, six address bits; then a
//! dummy 0 and sixteen data bits, most significant first, one per rising clock edge, reading
//! on into the next word while the clock keeps running). Writes (opcode 01) and the erase/
//! enable commands are accepted and ignored: a guest cannot change the stored MAC, as on a
//! board whose EEPROM is write-protected.

/// The pins as the RTL8139's 9346CR register carries them (bits 3–0).
pub const PIN_CS: u8 = 1 << 3;
pub const PIN_SK: u8 = 1 << 2;
pub const PIN_DI: u8 = 1 << 1;
pub const PIN_DO: u8 = 1 << 0;

const WORDS: usize = 64;
const ADDRESS_BITS: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the start bit (a 1 on DI at a rising clock).
    Idle,
    /// Shifting in opcode and address: `bits` of them so far.
    Command { value: u16, bits: u32 },
    /// Shifting out `word`: `left` bits still to come (16 after the dummy 0).
    Reading { address: u8, left: u32 },
    /// A command we ignore: wait for chip select to drop.
    Ignore,
}

#[derive(Debug, Clone)]
pub struct Eeprom93c46 {
    words: [u16; WORDS],
    phase: Phase,
    /// The pins as last written (CS, SK, DI) and the data-out line.
    pins: u8,
    data_out: bool,
}

impl Eeprom93c46 {
    pub fn new(words: [u16; WORDS]) -> Self {
        Eeprom93c46 {
            words,
            phase: Phase::Idle,
            pins: 0,
            data_out: true,
        }
    }

    /// The EEPROM's DO pin (1 while idle: the line is pulled up).
    pub fn data_out(&self) -> bool {
        self.data_out
    }

    /// The driver set the pins to `pins` (CS, SK, DI bits); acts on a rising clock edge.
    pub fn set_pins(&mut self, pins: u8) {
        let rising = pins & PIN_SK != 0 && self.pins & PIN_SK == 0;
        self.pins = pins & (PIN_CS | PIN_SK | PIN_DI);
        if pins & PIN_CS == 0 {
            self.phase = Phase::Idle;
            self.data_out = true;
            return;
        }
        if !rising {
            return;
        }
        let bit = u16::from(pins & PIN_DI != 0);
        self.phase = match self.phase {
            Phase::Idle if bit == 1 => Phase::Command { value: 0, bits: 0 },
            Phase::Idle => Phase::Idle,
            Phase::Command { value, bits } => {
                let value = value << 1 | bit;
                let bits = bits + 1;
                if bits < 2 + ADDRESS_BITS {
                    Phase::Command { value, bits }
                } else if value >> ADDRESS_BITS == 0b10 {
                    self.data_out = false; // the dummy 0 before the data
                    Phase::Reading {
                        address: (value & 0x3F) as u8,
                        left: 16,
                    }
                } else {
                    Phase::Ignore
                }
            }
            Phase::Reading { address, left } => {
                let left = left - 1;
                self.data_out = self.words[usize::from(address)] >> left & 1 != 0;
                if left == 0 {
                    // Sequential read: the next word follows without a new command.
                    Phase::Reading {
                        address: (address + 1) % WORDS as u8,
                        left: 16,
                    }
                } else {
                    Phase::Reading { address, left }
                }
            }
            Phase::Ignore => Phase::Ignore,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ANCHOR: linux_read
    /// Reads word `address` the way Linux's 8139too `read_eeprom` does.
    fn linux_read(e: &mut Eeprom93c46, address: u16, addr_len: u32) -> u16 {
        let cmd = address | 6 << addr_len; // start bit + READ
        e.set_pins(0);
        e.set_pins(PIN_CS);
        for i in (0..=4 + addr_len).rev() {
            let di = if cmd & 1 << i != 0 { PIN_DI } else { 0 };
            e.set_pins(PIN_CS | di);
            e.set_pins(PIN_CS | di | PIN_SK);
        }
        e.set_pins(PIN_CS);
        let mut v = 0;
        for _ in 0..16 {
            e.set_pins(PIN_CS | PIN_SK);
            v = v << 1 | u16::from(e.data_out());
            e.set_pins(PIN_CS);
        }
        e.set_pins(0);
        v
    }
    // ANCHOR_END: linux_read

    #[test]
    fn words_read_back_as_linux_reads_them() {
        let mut words = [0u16; WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            *w = 0x8129 ^ (i as u16).wrapping_mul(0x1111);
        }
        let mut e = Eeprom93c46::new(words);
        for a in [0, 7, 8, 9, 63] {
            assert_eq!(linux_read(&mut e, a, 6), words[usize::from(a)], "word {a}");
        }
        // Linux probes with 8 address bits first; a 93C46 then answers something else, and
        // the driver falls back to 6 (its test: word 0 == 0x8129).
        assert_ne!(linux_read(&mut e, 0, 8), 0x8129);
    }

    #[test]
    fn dropping_chip_select_ends_a_read() {
        let mut e = Eeprom93c46::new([0xFFFF; WORDS]);
        e.set_pins(PIN_CS);
        e.set_pins(PIN_CS | PIN_DI);
        e.set_pins(PIN_CS | PIN_DI | PIN_SK);
        e.set_pins(0);
        assert_eq!(e.phase, Phase::Idle);
        assert!(e.data_out());
    }
}

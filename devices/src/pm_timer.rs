//! ACPI power-management registers at ports 0x600–0x60B, above all the PM timer at 0x608.
//! Teaches: a free-running counter at a fixed, known rate (3.579545 MHz) is how an OS calibrates
//! its other clocks — and why a VMM computes it from virtual time instead of counting.
//!
//! The block is laid out like the PIIX4's, which QEMU's `pc` machine has, at the I/O base its
//! firmware programs (0x600); the FADT tells the guest where each register is:
//!
//! | port  | size | register | here |
//! |-------|------|----------|------|
//! | 0x600 | 16 | PM1 status  | bit 0 TMR_STS: bit 23 of the timer changed; write 1 to clear |
//! | 0x602 | 16 | PM1 enable  | stored (TMR_EN would raise the SCI; we do not raise it) |
//! | 0x604 | 16 | PM1 control | SCI_EN (bit 0) always 1: the platform is in ACPI mode from reset |
//! | 0x608 | 32 | PM timer    | 24-bit count at 3.579545 MHz (FADT flag TMR_VAL_EXT = 0) |
//!
//! A sleep request (SLP_EN, bit 13 of PM1 control) with SLP_TYP (bits 12:10) = [`SLP_TYP_S5`],
//! the value the DSDT's `\_S5` names, powers the machine off; other sleep states are ignored.

use crate::bus::{BusDevice, DeviceCtx};

/// First port of the block (PM1a event block).
pub const PM_BASE: u16 = 0x600;
/// PM1a event block (status + enable), 4 bytes.
pub const PM1_EVT: u16 = PM_BASE;
/// PM1a control block, 2 bytes.
pub const PM1_CNT: u16 = PM_BASE + 4;
/// PM timer, 4 bytes.
pub const PM_TMR: u16 = PM_BASE + 8;
/// Last port of the block.
pub const PM_LAST: u16 = PM_TMR + 3;
/// The ACPI PM timer's rate in Hz (the PC's 14.31818 MHz crystal divided by 4).
pub const PM_TIMER_HZ: u64 = 3_579_545;
/// Width of the counter: 24 bits.
pub const PM_TIMER_BITS: u32 = 24;

const TMR_STS: u16 = 1 << 0;
const SCI_EN: u16 = 1 << 0;
/// PM1 control: "enter the sleep state in SLP_TYP" (write-only, reads 0).
const SLP_EN: u16 = 1 << 13;
const SLP_TYP_SHIFT: u32 = 10;
/// The SLP_TYP value of soft-off (S5) on this board, as the DSDT's `\_S5` package says.
pub const SLP_TYP_S5: u16 = 5;

/// Timer ticks since time 0 (not wrapped).
pub fn pm_ticks(now_ns: u64) -> u64 {
    (now_ns as u128 * PM_TIMER_HZ as u128 / 1_000_000_000) as u64
}

/// The PM1 registers and the PM timer.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone)]
pub struct PmTimer {
    enable: u16,
    control: u16,
    /// `pm_ticks >> 23` when software last cleared TMR_STS.
    status_epoch: u64,
}

impl PmTimer {
    pub fn new() -> Self {
        PmTimer::default()
    }

    /// The 24-bit counter the guest reads at 0x608.
    pub fn counter(now_ns: u64) -> u32 {
        (pm_ticks(now_ns) & ((1 << PM_TIMER_BITS) - 1)) as u32
    }

    fn status(&self, now_ns: u64) -> u16 {
        if pm_ticks(now_ns) >> (PM_TIMER_BITS - 1) != self.status_epoch {
            TMR_STS
        } else {
            0
        }
    }

    fn read_byte(&self, port: u16, now_ns: u64) -> u8 {
        let (value, first) = match port {
            PM1_EVT | 0x601 => (self.status(now_ns) as u32, PM1_EVT),
            0x602 | 0x603 => (self.enable as u32, 0x602),
            PM1_CNT | 0x605 => ((self.control | SCI_EN) as u32, PM1_CNT),
            PM_TMR..=PM_LAST => (Self::counter(now_ns), PM_TMR),
            _ => return 0xFF,
        };
        (value >> (8 * (port - first))) as u8
    }

    fn write_byte(&mut self, port: u16, byte: u8, now_ns: u64) {
        let shift = 8 * (port & 1);
        let bits = (byte as u16) << shift;
        match port {
            PM1_EVT | 0x601 if bits & TMR_STS != 0 => {
                self.status_epoch = pm_ticks(now_ns) >> (PM_TIMER_BITS - 1);
            }
            0x602 | 0x603 => self.enable = (self.enable & !(0xFF << shift)) | bits,
            PM1_CNT | 0x605 => self.control = (self.control & !(0xFF << shift)) | bits,
            _ => {}
        }
    }
}

impl BusDevice for PmTimer {
    fn name(&self) -> &'static str {
        "acpi-pm"
    }

    fn pio_read(&mut self, port: u16, size: u8, ctx: &mut DeviceCtx) -> u32 {
        (0..size as u16).fold(0, |acc, i| {
            acc | (self.read_byte(port.wrapping_add(i), ctx.now_ns) as u32) << (8 * i)
        })
    }

    fn pio_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut DeviceCtx) {
        for i in 0..size as u16 {
            self.write_byte(port.wrapping_add(i), (value >> (8 * i)) as u8, ctx.now_ns);
        }
        if self.control & SLP_EN != 0 {
            self.control &= !SLP_EN;
            if (self.control >> SLP_TYP_SHIFT) & 7 == SLP_TYP_S5 {
                ctx.request(crate::bus::MachineEvent::PowerOff);
            }
        }
    }

    crate::snapshot::plain_data_snapshot!();

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bus;

    fn bus() -> Bus {
        let mut bus = Bus::new();
        bus.add_pio_device(Box::new(PmTimer::new()), &[(PM_BASE, PM_LAST)])
            .unwrap();
        bus
    }

    #[test]
    fn the_timer_runs_at_3_579545_mhz_of_virtual_time() {
        let mut bus = bus();
        assert_eq!(bus.io_in(PM_TMR, 4), 0);
        bus.advance_time(1_000_000_000);
        assert_eq!(bus.io_in(PM_TMR, 4), 3_579_545);
        bus.advance_time(1_000_000_000 + 10_000_000);
        assert_eq!(bus.io_in(PM_TMR, 4), 3_579_545 + 35_795);
    }

    #[test]
    fn the_counter_wraps_at_24_bits_and_sets_tmr_sts_on_bit_23() {
        let mut bus = bus();
        assert_eq!(bus.io_in(PM1_EVT, 2) & 1, 0);
        // 2^23 ticks = 2.343 s: bit 23 changes, TMR_STS is set.
        let t = (1u64 << 23) * 1_000_000_000 / PM_TIMER_HZ + 1;
        bus.advance_time(t);
        assert_eq!(bus.io_in(PM1_EVT, 2) & 1, 1);
        bus.io_out(PM1_EVT, 2, 1); // write 1 to clear
        assert_eq!(bus.io_in(PM1_EVT, 2) & 1, 0);
        bus.advance_time(2 * t + 5);
        let v = bus.io_in(PM_TMR, 4);
        assert!(v < 1 << 24, "24-bit counter, got {v:#x}");
        assert_eq!(v as u64, pm_ticks(2 * t + 5) & 0xFF_FFFF);
    }

    #[test]
    fn slp_en_with_the_s5_type_powers_off_and_other_types_do_not() {
        let mut bus = bus();
        bus.io_out(PM1_CNT, 2, (1 << 10) | (1 << 13)); // S1: ignored
        assert!(bus.take_events().is_empty());
        assert_eq!(bus.io_in(PM1_CNT, 2) & (1 << 13), 0, "SLP_EN reads 0");
        bus.io_out(PM1_CNT, 2, ((SLP_TYP_S5 as u32) << 10) | (1 << 13));
        assert_eq!(bus.take_events(), [crate::bus::MachineEvent::PowerOff]);
    }

    #[test]
    fn byte_reads_see_the_same_counter_and_sci_en_is_set() {
        let mut bus = bus();
        bus.advance_time(123_456_789);
        let whole = bus.io_in(PM_TMR, 4);
        let bytes: Vec<u32> = (0..4).map(|i| bus.io_in(PM_TMR + i, 1)).collect();
        assert_eq!(
            bytes[0] | bytes[1] << 8 | bytes[2] << 16 | bytes[3] << 24,
            whole
        );
        assert_eq!(bus.io_in(PM1_CNT, 2) & 1, 1);
        bus.io_out(0x602, 2, 0x0121);
        assert_eq!(bus.io_in(0x602, 2), 0x0121);
    }
}

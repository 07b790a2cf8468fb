//! The MC146818 real-time clock and its 128 bytes of battery-backed CMOS RAM (ports 0x70/0x71).
//! Teaches: index/data register pairs, BCD clocks, update-in-progress races, and how firmware tells an OS how much memory it has.
//!
//! The guest writes a register number to port 0x70 (bit 7 of that byte masks NMI on a PC) and
//! then reads or writes the register through port 0x71.
//!
//! The clock is never read from the host. Wall-clock time is a fixed start date plus the machine's
//! virtual time, so two runs of the same guest read the same dates. The start date defaults to
//! [`DEFAULT_START_UNIX_SECONDS`] (2024-01-01 00:00:00 UTC) and can be chosen with
//! [`Cmos::with_start_time`].

use std::any::Any;

use crate::bus::{BusDevice, DeviceCtx};

/// 2024-01-01 00:00:00 UTC, a Monday: the wall-clock time at virtual time zero unless chosen otherwise.
pub const DEFAULT_START_UNIX_SECONDS: i64 = 1_704_067_200;

const NS_PER_SECOND: u64 = 1_000_000_000;
/// The RTC's time base: a 32.768 kHz watch crystal.
const TIME_BASE_HZ: u128 = 32_768;
/// UIP rises this long before each once-a-second update of the time registers.
const UPDATE_WARNING_NS: u64 = 244_000;

// Register numbers.
const SECONDS: u8 = 0x00;
const SECONDS_ALARM: u8 = 0x01;
const MINUTES: u8 = 0x02;
const MINUTES_ALARM: u8 = 0x03;
const HOURS: u8 = 0x04;
const HOURS_ALARM: u8 = 0x05;
const DAY_OF_WEEK: u8 = 0x06;
const DAY_OF_MONTH: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const STATUS_A: u8 = 0x0A;
const STATUS_B: u8 = 0x0B;
const STATUS_C: u8 = 0x0C;
const STATUS_D: u8 = 0x0D;
const CENTURY: u8 = 0x32;

// Status register A.
const A_UPDATE_IN_PROGRESS: u8 = 0x80;
// Status register B.
const B_SET: u8 = 0x80;
const B_PERIODIC_ENABLE: u8 = 0x40;
const B_ALARM_ENABLE: u8 = 0x20;
const B_UPDATE_ENABLE: u8 = 0x10;
const B_BINARY: u8 = 0x04;
const B_24_HOUR: u8 = 0x02;
// Status register C: the same bit positions as their enables in B, plus the summary bit.
const C_IRQ: u8 = 0x80;
const C_PERIODIC: u8 = 0x40;
const C_ALARM: u8 = 0x20;
const C_UPDATE: u8 = 0x10;
// Status register D: valid RAM and time (the battery is fine).
const D_VALID: u8 = 0x80;

/// An alarm byte with both top bits set matches any value ("don't care").
const ALARM_DONT_CARE: u8 = 0xC0;

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1–12).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    // Count years from March, so the leap day is the last day of the (shifted) year.
    let (year, month) = if month <= 2 {
        (year - 1, month as i64 + 9)
    } else {
        (year, month as i64 - 3)
    };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * month + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01: (year, month 1–12, day 1–31).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u8;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u8;
    let year = era * 400 + year_of_era + (month <= 2) as i64;
    (year, month, day)
}

/// A broken-down UTC time, the way the RTC registers hold it.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
struct DateTime {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl DateTime {
    fn from_unix(seconds: i64) -> Self {
        let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
        let in_day = seconds.rem_euclid(86_400);
        DateTime {
            year,
            month,
            day,
            hour: (in_day / 3600) as u8,
            minute: (in_day / 60 % 60) as u8,
            second: (in_day % 60) as u8,
        }
    }

    /// Seconds since the Unix epoch. Out-of-range fields written by a guest are clamped.
    fn to_unix(self) -> i64 {
        let days = days_from_civil(self.year, self.month.clamp(1, 12), self.day.clamp(1, 31));
        days * 86_400
            + self.hour.min(23) as i64 * 3600
            + self.minute.min(59) as i64 * 60
            + self.second.min(59) as i64
    }

    /// 1 = Sunday … 7 = Saturday, as the RTC counts.
    fn day_of_week(self) -> u8 {
        // 1970-01-01 was a Thursday (day 5 in the RTC's numbering).
        ((self.to_unix().div_euclid(86_400) + 4).rem_euclid(7) + 1) as u8
    }
}

/// The MC146818 RTC with its CMOS RAM.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct Cmos {
    #[serde(with = "crate::snapshot::byte_array")]
    ram: [u8; 128],
    /// The register selected through port 0x70.
    index: u8,
    nmi_masked: bool,
    /// The wall clock read `base_unix` at virtual time `base_ns`.
    base_unix: i64,
    base_ns: u64,
    /// While status B's SET bit is on, the time registers stop and the guest edits this copy.
    frozen: Option<DateTime>,
    /// Status C's event flags (periodic, alarm, update-ended) raised since the guest last read C.
    flags: u8,
    /// Virtual time up to which events have been looked for.
    checked_until_ns: u64,
    /// The line the interrupt output drives (ISA IRQ 8 on a PC).
    line: crate::bus::IrqLine,
}

impl Cmos {
    /// An RTC reporting `ram_bytes` of guest memory, whose clock starts at
    /// [`DEFAULT_START_UNIX_SECONDS`].
    pub fn new(ram_bytes: u64) -> Self {
        let mut cmos = Cmos {
            ram: [0; 128],
            index: 0,
            nmi_masked: false,
            base_unix: DEFAULT_START_UNIX_SECONDS,
            base_ns: 0,
            frozen: None,
            flags: 0,
            checked_until_ns: 0,
            line: crate::bus::IrqLine::isa(8),
        };
        // 32.768 kHz time base, 1024 Hz periodic rate; 24-hour BCD, as a PC BIOS leaves it.
        cmos.ram[STATUS_A as usize] = 0x26;
        cmos.ram[STATUS_B as usize] = B_24_HOUR;
        cmos.write_memory_size(ram_bytes);
        cmos
    }

    /// The same RTC with its interrupt on another line.
    pub fn with_irq(mut self, line: crate::bus::IrqLine) -> Self {
        self.line = line;
        self
    }

    /// The same RTC whose wall clock reads `unix_seconds` at virtual time zero
    /// (clamped to the years 0–9999, all an RTC with a century byte can show).
    pub fn with_start_time(mut self, unix_seconds: i64) -> Self {
        self.base_unix = unix_seconds.clamp(-62_167_219_200, 253_402_300_799);
        self.base_ns = 0;
        self
    }

    /// The wall-clock time (Unix seconds) the RTC shows at virtual time `now_ns`.
    pub fn wall_clock_seconds(&self, now_ns: u64) -> i64 {
        self.current_time(now_ns).to_unix()
    }

    /// Did the guest mask NMIs (bit 7 of the last write to port 0x70)?
    pub fn nmi_masked(&self) -> bool {
        self.nmi_masked
    }

    /// The memory-size bytes firmware and boot loaders read: base memory (always 640 KiB),
    /// extended memory above 1 MiB in KiB, and memory above 16 MiB in 64 KiB units.
    fn write_memory_size(&mut self, ram_bytes: u64) {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * KIB;
        let extended_kib = (ram_bytes.saturating_sub(MIB) / KIB).min(0xFFFF) as u16;
        let above_16m = (ram_bytes.saturating_sub(16 * MIB) / (64 * KIB)).min(0xFFFF) as u16;
        for (register, value) in [
            (0x15, 640u16),
            (0x17, extended_kib),
            (0x30, extended_kib),
            (0x34, above_16m),
        ] {
            self.ram[register..register + 2].copy_from_slice(&value.to_le_bytes());
        }
        // The standard checksum over 0x10–0x2D, stored big-endian at 0x2E.
        let sum: u16 = self.ram[0x10..=0x2D].iter().map(|&b| b as u16).sum();
        self.ram[0x2E..=0x2F].copy_from_slice(&sum.to_be_bytes());
    }

    fn status_b(&self) -> u8 {
        self.ram[STATUS_B as usize]
    }

    // ---- time ----

    fn live_time(&self, now_ns: u64) -> DateTime {
        let elapsed = (now_ns.saturating_sub(self.base_ns) / NS_PER_SECOND) as i64;
        DateTime::from_unix(self.base_unix.saturating_add(elapsed))
    }

    fn current_time(&self, now_ns: u64) -> DateTime {
        self.frozen.unwrap_or_else(|| self.live_time(now_ns))
    }

    /// Restarts the clock at `time`, now.
    fn set_time(&mut self, time: DateTime, now_ns: u64) {
        self.base_unix = time.to_unix();
        self.base_ns = now_ns;
        self.checked_until_ns = now_ns;
    }

    /// Is the once-a-second update about to happen (the last 244 µs of each second)?
    fn update_in_progress(&self, now_ns: u64) -> bool {
        let into_second = now_ns.saturating_sub(self.base_ns) % NS_PER_SECOND;
        self.frozen.is_none() && into_second >= NS_PER_SECOND - UPDATE_WARNING_NS
    }

    fn seconds_since_base(&self, t: u64) -> u64 {
        t.saturating_sub(self.base_ns) / NS_PER_SECOND
    }

    /// The periodic interrupt's period in 32.768 kHz clocks, from status A's rate bits (0 = off).
    fn periodic_divisor(&self) -> Option<u128> {
        match self.ram[STATUS_A as usize] & 0x0F {
            0 => None,
            // Rates 1 and 2 are odd ones out: they repeat rates 8 and 9.
            1 => Some(128),
            2 => Some(256),
            rate => Some(1 << (rate - 1)),
        }
    }

    /// How many periodic-interrupt periods have passed at `t` (the divider chain runs from reset).
    fn periodic_index(t: u64, divisor: u128) -> u128 {
        t as u128 * TIME_BASE_HZ / (divisor * NS_PER_SECOND as u128)
    }

    fn periodic_time(index: u128, divisor: u128) -> u64 {
        (index * divisor * NS_PER_SECOND as u128)
            .div_ceil(TIME_BASE_HZ)
            .min(u64::MAX as u128) as u64
    }

    // ---- register formats ----

    fn encode(&self, value: u8) -> u8 {
        if self.status_b() & B_BINARY != 0 {
            value
        } else {
            ((value / 10 % 10) << 4) | (value % 10)
        }
    }

    fn decode(&self, value: u8) -> u8 {
        if self.status_b() & B_BINARY != 0 {
            value
        } else {
            (value >> 4) * 10 + (value & 0x0F)
        }
    }

    fn encode_hour(&self, hour: u8) -> u8 {
        if self.status_b() & B_24_HOUR != 0 {
            return self.encode(hour);
        }
        // 12-hour mode: 12, 1, …, 11, with bit 7 meaning PM.
        let twelve_hour = if hour.is_multiple_of(12) {
            12
        } else {
            hour % 12
        };
        self.encode(twelve_hour) | if hour >= 12 { 0x80 } else { 0 }
    }

    fn decode_hour(&self, value: u8) -> u8 {
        if self.status_b() & B_24_HOUR != 0 {
            return self.decode(value);
        }
        let pm = value & 0x80 != 0;
        self.decode(value & 0x7F) % 12 + if pm { 12 } else { 0 }
    }

    fn read_time_register(&self, register: u8, now_ns: u64) -> u8 {
        let time = self.current_time(now_ns);
        match register {
            SECONDS => self.encode(time.second),
            MINUTES => self.encode(time.minute),
            HOURS => self.encode_hour(time.hour),
            DAY_OF_WEEK => self.encode(time.day_of_week()),
            DAY_OF_MONTH => self.encode(time.day),
            MONTH => self.encode(time.month),
            YEAR => self.encode(time.year.rem_euclid(100) as u8),
            _ => self.encode(time.year.div_euclid(100).clamp(0, 99) as u8), // CENTURY
        }
    }

    /// A guest sets the clock. Usually it holds SET in status B meanwhile; without SET the new
    /// value takes effect at once. Day-of-week writes are ignored: we derive it from the date.
    fn write_time_register(&mut self, register: u8, value: u8, now_ns: u64) {
        let mut time = self.current_time(now_ns);
        let field = self.decode(value);
        match register {
            SECONDS => time.second = field.min(59),
            MINUTES => time.minute = field.min(59),
            HOURS => time.hour = self.decode_hour(value).min(23),
            DAY_OF_MONTH => time.day = field.clamp(1, 31),
            MONTH => time.month = field.clamp(1, 12),
            YEAR => time.year = time.year.div_euclid(100) * 100 + (field % 100) as i64,
            CENTURY => time.year = (field % 100) as i64 * 100 + time.year.rem_euclid(100),
            _ => return, // DAY_OF_WEEK
        }
        if self.frozen.is_some() {
            self.frozen = Some(time);
        } else {
            self.set_time(time, now_ns);
        }
    }

    fn write_status_b(&mut self, value: u8, now_ns: u64) {
        let was_set = self.status_b() & B_SET != 0;
        let mut value = value;
        if value & B_SET != 0 {
            // Setting SET stops updates and, per the data sheet, clears the update interrupt enable.
            value &= !B_UPDATE_ENABLE;
            if !was_set {
                self.frozen = Some(self.live_time(now_ns));
            }
        } else if let Some(time) = self.frozen.take() {
            // Releasing SET starts the clock from the (possibly edited) registers.
            self.set_time(time, now_ns);
        }
        self.ram[STATUS_B as usize] = value;
    }

    // ---- events and the interrupt ----

    /// Raises status C flags for whatever happened between the last look and `now_ns`.
    fn catch_up_events(&mut self, now_ns: u64) {
        let since = self.checked_until_ns;
        if now_ns <= since {
            return;
        }
        if let Some(divisor) = self.periodic_divisor() {
            if Self::periodic_index(now_ns, divisor) > Self::periodic_index(since, divisor) {
                self.flags |= C_PERIODIC;
            }
        }
        if self.frozen.is_none() && self.seconds_since_base(now_ns) > self.seconds_since_base(since)
        {
            self.flags |= C_UPDATE;
            // Simplification: the alarm is compared with the time after the latest update only;
            // the RTC ticks every second while the alarm interrupt is enabled, so none is missed then.
            if self.alarm_matches(now_ns) {
                self.flags |= C_ALARM;
            }
        }
        self.checked_until_ns = now_ns;
    }

    fn alarm_matches(&self, now_ns: u64) -> bool {
        [
            (SECONDS_ALARM, SECONDS),
            (MINUTES_ALARM, MINUTES),
            (HOURS_ALARM, HOURS),
        ]
        .iter()
        .all(|&(alarm, register)| {
            let alarm = self.ram[alarm as usize];
            alarm & ALARM_DONT_CARE == ALARM_DONT_CARE
                || alarm == self.read_time_register(register, now_ns)
        })
    }

    /// IRQ 8 is asserted while an enabled event flag is set; reading status C drops it.
    fn interrupt_asserted(&self) -> bool {
        self.flags & self.status_b() & (C_PERIODIC | C_ALARM | C_UPDATE) != 0
    }

    fn next_event_ns(&self, now_ns: u64) -> Option<u64> {
        let b = self.status_b();
        let periodic = self
            .periodic_divisor()
            .filter(|_| b & B_PERIODIC_ENABLE != 0)
            .map(|d| Self::periodic_time(Self::periodic_index(now_ns, d) + 1, d));
        let update =
            (b & (B_UPDATE_ENABLE | B_ALARM_ENABLE) != 0 && self.frozen.is_none()).then(|| {
                self.base_ns
                    .saturating_add((self.seconds_since_base(now_ns) + 1) * NS_PER_SECOND)
            });
        periodic.into_iter().chain(update).min()
    }

    fn read_register(&mut self, register: u8, now_ns: u64) -> u8 {
        match register {
            SECONDS | MINUTES | HOURS | DAY_OF_WEEK | DAY_OF_MONTH | MONTH | YEAR | CENTURY => {
                self.read_time_register(register, now_ns)
            }
            STATUS_A => {
                let uip = if self.update_in_progress(now_ns) {
                    A_UPDATE_IN_PROGRESS
                } else {
                    0
                };
                (self.ram[STATUS_A as usize] & !A_UPDATE_IN_PROGRESS) | uip
            }
            STATUS_C => {
                let irq = if self.interrupt_asserted() { C_IRQ } else { 0 };
                // Reading C acknowledges every event: the way an RTC interrupt handler ends.
                irq | std::mem::take(&mut self.flags)
            }
            STATUS_D => D_VALID,
            _ => self.ram[register as usize],
        }
    }

    fn write_register(&mut self, register: u8, value: u8, now_ns: u64) {
        match register {
            SECONDS | MINUTES | HOURS | DAY_OF_WEEK | DAY_OF_MONTH | MONTH | YEAR | CENTURY => {
                self.write_time_register(register, value, now_ns)
            }
            STATUS_A => self.ram[STATUS_A as usize] = value & !A_UPDATE_IN_PROGRESS,
            STATUS_B => self.write_status_b(value, now_ns),
            STATUS_C | STATUS_D => {} // read-only
            _ => self.ram[register as usize] = value,
        }
    }
}

impl BusDevice for Cmos {
    fn name(&self) -> &'static str {
        "cmos"
    }

    fn pio_read(&mut self, port: u16, _size: u8, ctx: &mut DeviceCtx) -> u32 {
        if port != 0x71 {
            return 0xFF; // the index register is write-only
        }
        self.catch_up_events(ctx.now_ns);
        let value = self.read_register(self.index, ctx.now_ns);
        ctx.set_irq_level(self.line, self.interrupt_asserted());
        value as u32
    }

    fn pio_write(&mut self, port: u16, _size: u8, value: u32, ctx: &mut DeviceCtx) {
        let value = value as u8;
        if port == 0x70 {
            self.nmi_masked = value & 0x80 != 0;
            self.index = value & 0x7F;
            return;
        }
        self.catch_up_events(ctx.now_ns);
        self.write_register(self.index, value, ctx.now_ns);
        ctx.set_irq_level(self.line, self.interrupt_asserted());
    }

    fn tick(&mut self, ctx: &mut DeviceCtx) -> Option<u64> {
        self.catch_up_events(ctx.now_ns);
        ctx.set_irq_level(self.line, self.interrupt_asserted());
        self.next_event_ns(ctx.now_ns)
    }

    crate::snapshot::plain_data_snapshot!();

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests;

//! The RTC and CMOS driven through ports 0x70/0x71, with their own clock and lines.

use super::*;
use crate::bus::{IrqLines, MachineEvent};

/// What the bus would provide: virtual time and interrupt lines.
struct Env {
    irq: IrqLines,
    events: Vec<MachineEvent>,
    now: u64,
}

impl Env {
    fn ctx(&mut self) -> DeviceCtx<'_> {
        DeviceCtx {
            now_ns: self.now,
            source: crate::bus::DeviceId(0),
            dma: crate::bus::Dma::none(),
            irq: &mut self.irq,
            events: &mut self.events,
        }
    }
}

struct Harness {
    cmos: Cmos,
    env: Env,
    deadline: Option<u64>,
}

impl Harness {
    fn new(cmos: Cmos) -> Self {
        let env = Env {
            irq: IrqLines::default(),
            events: Vec::new(),
            now: 0,
        };
        let mut h = Harness {
            cmos,
            env,
            deadline: None,
        };
        h.tick();
        h
    }

    fn tick(&mut self) {
        self.deadline = self.cmos.tick(&mut self.env.ctx());
    }

    fn read(&mut self, register: u8) -> u8 {
        self.cmos
            .pio_write(0x70, 1, register as u32, &mut self.env.ctx());
        let v = self.cmos.pio_read(0x71, 1, &mut self.env.ctx()) as u8;
        self.tick();
        v
    }

    fn write(&mut self, register: u8, value: u8) {
        self.cmos
            .pio_write(0x70, 1, register as u32, &mut self.env.ctx());
        self.cmos
            .pio_write(0x71, 1, value as u32, &mut self.env.ctx());
        self.tick();
    }

    fn irq8_high(&self) -> bool {
        self.env.irq.levels() & (1 << 8) != 0
    }

    /// Runs to `end` through every deadline; `on_deadline` sees the harness at each one.
    fn run_until(&mut self, end: u64, mut on_deadline: impl FnMut(&mut Self)) {
        while let Some(d) = self.deadline.filter(|&d| d <= end) {
            self.env.now = self.env.now.max(d);
            self.tick();
            on_deadline(self);
        }
        self.env.now = end;
        self.tick();
    }

    /// (hours, minutes, seconds, day of week, day, month, year, century), raw register bytes.
    fn clock(&mut self) -> [u8; 8] {
        [
            HOURS,
            MINUTES,
            SECONDS,
            DAY_OF_WEEK,
            DAY_OF_MONTH,
            MONTH,
            YEAR,
            CENTURY,
        ]
        .map(|r| self.read(r))
    }
}

#[test]
fn start_date_in_bcd() {
    let mut h = Harness::new(Cmos::new(64 << 20));
    // 2024-01-01 00:00:00, a Monday (day 2 when Sunday is 1).
    assert_eq!(h.clock(), [0x00, 0x00, 0x00, 2, 0x01, 0x01, 0x24, 0x20]);
    h.env.now = (3600 + 2 * 60 + 3) * NS_PER_SECOND + NS_PER_SECOND / 2;
    assert_eq!(h.clock(), [0x01, 0x02, 0x03, 2, 0x01, 0x01, 0x24, 0x20]);
    h.env.now = (10 * 86_400 + 23 * 3600 + 59 * 60 + 59) * NS_PER_SECOND;
    assert_eq!(h.clock(), [0x23, 0x59, 0x59, 5, 0x11, 0x01, 0x24, 0x20]);
}

#[test]
fn binary_and_twelve_hour_formats_are_respected_on_reads() {
    // 1999-12-31 13:05:09 UTC, a Friday.
    let mut h = Harness::new(Cmos::new(0).with_start_time(946_645_509));
    assert_eq!(h.clock(), [0x13, 0x05, 0x09, 6, 0x31, 0x12, 0x99, 0x19]);
    h.write(STATUS_B, 0x00); // 12-hour, BCD
    assert_eq!(h.read(HOURS), 0x81, "1 PM");
    h.write(STATUS_B, B_BINARY); // 12-hour, binary
    assert_eq!(h.read(HOURS), 0x81);
    h.write(STATUS_B, B_BINARY | B_24_HOUR);
    assert_eq!(h.clock(), [13, 5, 9, 6, 31, 12, 99, 19]);
    // Eleven hours later it is a new century, and the clock knows.
    h.env.now = 11 * 3600 * NS_PER_SECOND;
    assert_eq!(h.clock(), [0, 5, 9, 7, 1, 1, 0, 20]);
}

#[test]
fn leap_day_rolls_over_correctly() {
    // 2000-02-29 23:59:59 UTC.
    let mut h = Harness::new(Cmos::new(0).with_start_time(951_868_799));
    assert_eq!(h.clock(), [0x23, 0x59, 0x59, 3, 0x29, 0x02, 0x00, 0x20]);
    h.env.now = NS_PER_SECOND;
    assert_eq!(h.clock(), [0x00, 0x00, 0x00, 4, 0x01, 0x03, 0x00, 0x20]);
}

#[test]
fn update_in_progress_in_the_last_244_microseconds_of_a_second() {
    let mut h = Harness::new(Cmos::new(0));
    h.env.now = 5 * NS_PER_SECOND + 999_700_000;
    assert_eq!(h.read(STATUS_A), 0x26);
    h.env.now = 5 * NS_PER_SECOND + 999_800_000;
    assert_eq!(h.read(STATUS_A), 0xA6);
    h.env.now = 6 * NS_PER_SECOND;
    assert_eq!(h.read(STATUS_A), 0x26);
}

#[test]
fn set_bit_freezes_the_clock_while_the_guest_sets_it() {
    let mut h = Harness::new(Cmos::new(0));
    h.env.now = 7 * NS_PER_SECOND;
    h.write(STATUS_B, B_SET | B_24_HOUR | B_UPDATE_ENABLE);
    assert_eq!(h.read(STATUS_B), B_SET | B_24_HOUR, "SET clears UIE");
    h.env.now = 20 * NS_PER_SECOND;
    assert_eq!(h.read(SECONDS), 0x07, "frozen");
    assert_eq!(h.read(STATUS_A) & A_UPDATE_IN_PROGRESS, 0);
    h.write(HOURS, 0x17);
    h.write(MINUTES, 0x45);
    h.write(SECONDS, 0x30);
    h.write(DAY_OF_MONTH, 0x15);
    h.write(MONTH, 0x06);
    h.write(YEAR, 0x31);
    h.write(STATUS_B, B_24_HOUR);
    h.env.now += 2 * NS_PER_SECOND;
    assert_eq!(h.clock(), [0x17, 0x45, 0x32, 1, 0x15, 0x06, 0x31, 0x20]);
    // 2031-06-15 is a Sunday.
    let expected = DateTime {
        year: 2031,
        month: 6,
        day: 15,
        hour: 17,
        minute: 45,
        second: 32,
    };
    assert_eq!(h.cmos.wall_clock_seconds(h.env.now), expected.to_unix());
}

#[test]
fn status_c_is_cleared_by_reading_and_d_reports_valid_time() {
    let mut h = Harness::new(Cmos::new(0));
    assert_eq!(h.read(STATUS_D), 0x80);
    h.env.now = 3 * NS_PER_SECOND;
    assert_eq!(
        h.read(STATUS_C),
        C_PERIODIC | C_UPDATE,
        "flags rise even when disabled"
    );
    assert_eq!(h.read(STATUS_C), 0);
    h.write(STATUS_C, 0xFF);
    h.write(STATUS_D, 0x00);
    assert_eq!((h.read(STATUS_C), h.read(STATUS_D)), (0, 0x80));
}

#[test]
fn memory_size_bytes() {
    let mut h = Harness::new(Cmos::new(64 << 20));
    let word = |h: &mut Harness, r: u8| u16::from_le_bytes([h.read(r), h.read(r + 1)]);
    assert_eq!(word(&mut h, 0x15), 640);
    assert_eq!(word(&mut h, 0x17), 63 * 1024);
    assert_eq!(word(&mut h, 0x30), 63 * 1024);
    assert_eq!(word(&mut h, 0x34), 48 * 16);
    let sum: u16 = (0x10..=0x2D).map(|r| h.read(r) as u16).sum();
    assert_eq!(u16::from_be_bytes([h.read(0x2E), h.read(0x2F)]), sum);

    let mut big = Harness::new(Cmos::new(8 << 30));
    assert_eq!(word(&mut big, 0x17), 0xFFFF);
    assert_eq!(word(&mut big, 0x34), 0xFFFF);
    let mut tiny = Harness::new(Cmos::new(512 << 10));
    assert_eq!(word(&mut tiny, 0x17), 0);
    assert_eq!(word(&mut tiny, 0x34), 0);
}

#[test]
fn index_port_keeps_the_nmi_mask_and_ram_is_plain_storage() {
    let mut h = Harness::new(Cmos::new(0));
    h.cmos.pio_write(0x70, 1, 0x80 | 0x40, &mut h.env.ctx());
    h.cmos.pio_write(0x71, 1, 0x5A, &mut h.env.ctx());
    assert!(h.cmos.nmi_masked());
    assert_eq!(h.read(0x40), 0x5A, "index 0x40 with NMI bit stripped");
    assert!(!h.cmos.nmi_masked());
}

#[test]
fn periodic_interrupt_at_1024_hz() {
    let mut h = Harness::new(Cmos::new(0));
    assert_eq!(h.deadline, None, "nothing is enabled, nothing to schedule");
    h.write(STATUS_B, B_24_HOUR | B_PERIODIC_ENABLE);
    let mut interrupts = 0;
    h.run_until(NS_PER_SECOND, |h| {
        if h.env.irq.take_edges() & (1 << 8) != 0 {
            interrupts += 1;
            // The guest's handler acknowledges by reading C.
            assert_eq!(h.read(STATUS_C) & (C_IRQ | C_PERIODIC), C_IRQ | C_PERIODIC);
            assert!(!h.irq8_high());
        }
    });
    assert_eq!(interrupts, 1024);
}

#[test]
fn without_reading_c_no_further_interrupts_arrive() {
    let mut h = Harness::new(Cmos::new(0));
    h.write(STATUS_A, 0x2F); // 2 Hz
    h.write(STATUS_B, B_24_HOUR | B_PERIODIC_ENABLE);
    let mut edges = 0;
    h.run_until(5 * NS_PER_SECOND, |h| {
        edges += (h.env.irq.take_edges() >> 8) & 1;
    });
    assert_eq!(edges, 1);
    assert!(h.irq8_high());
}

#[test]
fn update_and_alarm_interrupts() {
    let mut h = Harness::new(Cmos::new(0));
    h.write(SECONDS_ALARM, 0x05);
    h.write(MINUTES_ALARM, ALARM_DONT_CARE);
    h.write(HOURS_ALARM, 0x00);
    h.write(STATUS_B, B_24_HOUR | B_UPDATE_ENABLE | B_ALARM_ENABLE);
    let mut updates = Vec::new();
    let mut alarms = Vec::new();
    h.run_until(10 * NS_PER_SECOND, |h| {
        if h.env.irq.take_edges() & (1 << 8) != 0 {
            let c = h.read(STATUS_C);
            if c & C_UPDATE != 0 {
                updates.push(h.env.now);
            }
            if c & C_ALARM != 0 {
                alarms.push(h.env.now);
            }
        }
    });
    assert_eq!(
        updates,
        (1..=10).map(|s| s * NS_PER_SECOND).collect::<Vec<_>>()
    );
    assert_eq!(alarms, vec![5 * NS_PER_SECOND]);
}

#[test]
fn garbage_from_the_guest_never_panics() {
    let mut h = Harness::new(Cmos::new(u64::MAX));
    for format in [0x00, B_BINARY, B_SET, B_SET | B_BINARY] {
        h.write(STATUS_B, format);
        for register in 0..128u8 {
            if register != STATUS_B {
                h.write(register, 0xFF);
            }
        }
        h.write(STATUS_B, format & !B_SET);
        h.env.now += 1_234_567_890;
        for register in 0..128u8 {
            let _ = h.read(register);
        }
    }
    assert_eq!(h.read(STATUS_D), D_VALID);
}

#[test]
fn calendar_conversions_round_trip() {
    for days in (-800_000..800_000).step_by(997) {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(
        days_from_civil(2024, 1, 1) * 86_400,
        DEFAULT_START_UNIX_SECONDS
    );
}

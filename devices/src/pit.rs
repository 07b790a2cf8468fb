//! The i8254 programmable interval timer (ports 0x40–0x43) and system control port B (0x61).
//! Teaches: how guests keep and measure time with a timer chip, and how an emulator derives a counter from virtual time instead of ticking it.
//!
//! Three 16-bit down-counters share one 1.193182 MHz input clock:
//! - counter 0 drives IRQ 0, the classic system tick;
//! - counter 1 once paced DRAM refresh; we keep it only as a programmable counter;
//! - counter 2 feeds the PC speaker. Its gate is bit 0 of port 0x61 and its output can be read
//!   back in bit 5 of port 0x61, which is how kernels calibrate their delay loops and TSC.
//!
//! Nothing here counts clock by clock. A counting counter remembers *when* it started; its
//! current value, its output pin and the time of its next output edge are all computed from
//! the machine's virtual clock. That keeps the model exact, cheap and deterministic.

use std::any::Any;

use crate::bus::{BusDevice, DeviceCtx};

mod counter;

#[cfg(test)]
use counter::ns_to_ticks;
use counter::{ticks_to_ns, Access, Counter};

/// The input clock of every counter: the 14.31818 MHz NTSC crystal of the original PC, divided by 12.
pub const PIT_FREQUENCY_HZ: u64 = 1_193_182;
const NS_PER_SECOND: u64 = 1_000_000_000;

/// When IRQ 0 is ticked late (a long host pause, a long engine time slice), at most this many
/// missed periods are delivered afterwards; the rest are dropped as lost ticks, so a pause never
/// turns into an interrupt storm.
pub const MAX_CATCH_UP_PULSES: u32 = 16;

/// Missed IRQ 0 pulses are paid back no faster than one per this many nanoseconds (or per half
/// period, for faster timers), so the guest gets to run its handler between two of them.
const CATCH_UP_SPACING_NS: u64 = 50_000;

/// Port 0x61 bit 4 toggles on every DRAM refresh request, once per 15.085 µs on a PC/AT.
const REFRESH_TOGGLE_NS: u64 = 15_085;

/// Book-keeping that turns counter 0's output edges into IRQ 0 pulses, one per edge.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Default)]
struct Irq0Delivery {
    /// Rising edges of counter 0 already accounted for since its count was loaded.
    edges_seen: u64,
    /// Edges that happened while nobody ticked us, still to be delivered.
    owed_pulses: u32,
    /// The earliest time the next owed pulse may be delivered.
    next_pulse_ns: u64,
}

/// The i8254 PIT with its counter-2 gate and speaker bits on port 0x61.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct Pit {
    counters: [Counter; 3],
    /// Port 0x61 bits 0–3 as written: gate 2, speaker data enable, parity and I/O-check disables.
    port_b: u8,
    irq0: Irq0Delivery,
    /// The line counter 0's output drives (ISA IRQ 0 on a PC).
    line: crate::bus::IrqLine,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    /// A PIT with all counters unprogrammed: no timer runs until the guest starts one.
    /// (Counters 0 and 1 have their gates tied high on a PC; counter 2's gate starts low.)
    pub fn new() -> Self {
        Pit {
            counters: [Counter::new(true), Counter::new(true), Counter::new(false)],
            port_b: 0,
            irq0: Irq0Delivery::default(),
            line: crate::bus::IrqLine::isa(0),
        }
    }

    /// The same PIT with counter 0 wired to another line.
    pub fn with_irq(mut self, line: crate::bus::IrqLine) -> Self {
        self.line = line;
        self
    }

    /// The level of counter `index`'s OUT pin at virtual time `now_ns`.
    pub fn output(&self, index: usize, now_ns: u64) -> bool {
        self.counters
            .get(index)
            .is_some_and(|c| c.output_at(now_ns))
    }

    /// Is the PC speaker sounding (gate 2 and speaker data both enabled)?
    pub fn speaker_enabled(&self) -> bool {
        self.port_b & 0x03 == 0x03
    }

    /// The frequency counter 2 produces for the speaker, when it runs as a square wave.
    pub fn speaker_frequency_hz(&self) -> Option<f64> {
        let counter = &self.counters[2];
        (counter.mode == 3).then(|| PIT_FREQUENCY_HZ as f64 / counter.period_ticks() as f64)
    }

    fn write_control(&mut self, value: u8, now_ns: u64) {
        let select = (value >> 6) as usize;
        if select == 3 {
            self.read_back(value, now_ns);
            return;
        }
        let access = match (value >> 4) & 3 {
            0 => {
                self.counters[select].latch_count(now_ns);
                return;
            }
            1 => Access::LowByte,
            2 => Access::HighByte,
            _ => Access::LowThenHigh,
        };
        self.counters[select].program(access, (value >> 1) & 7, value & 1 != 0);
        if select == 0 {
            self.irq0 = Irq0Delivery::default();
        }
    }

    /// The read-back command (control word 11xxxxxx): latch count and/or status of several
    /// counters at once. Bit 5 clear = latch counts, bit 4 clear = latch status, bits 1–3 select.
    fn read_back(&mut self, value: u8, now_ns: u64) {
        for (index, counter) in self.counters.iter_mut().enumerate() {
            if value & (2 << index) == 0 {
                continue;
            }
            if value & 0x20 == 0 {
                counter.latch_count(now_ns);
            }
            if value & 0x10 == 0 && counter.status_latch.is_none() {
                counter.status_latch = Some(counter.status(now_ns));
            }
        }
    }

    fn read_port_b(&self, now_ns: u64) -> u8 {
        let refresh = ((now_ns / REFRESH_TOGGLE_NS) & 1) as u8;
        let out2 = self.counters[2].output_at(now_ns) as u8;
        (self.port_b & 0x0F) | (refresh << 4) | (out2 << 5)
    }
}

impl BusDevice for Pit {
    fn name(&self) -> &'static str {
        "pit"
    }

    fn pio_read(&mut self, port: u16, _size: u8, ctx: &mut DeviceCtx) -> u32 {
        let now = ctx.now_ns;
        let value = match port {
            0x40..=0x42 => self.counters[(port - 0x40) as usize].read_byte(now),
            0x61 => self.read_port_b(now),
            // The control register is write-only.
            _ => 0xFF,
        };
        value as u32
    }

    fn pio_write(&mut self, port: u16, _size: u8, value: u32, ctx: &mut DeviceCtx) {
        let now = ctx.now_ns;
        let value = value as u8;
        match port {
            0x40..=0x42 => {
                let index = (port - 0x40) as usize;
                if self.counters[index].write_count_byte(value, now) && index == 0 {
                    self.irq0 = Irq0Delivery::default();
                }
            }
            0x43 => self.write_control(value, now),
            0x61 => {
                self.port_b = value & 0x0F;
                self.counters[2].set_gate(value & 1 != 0, now);
            }
            _ => {}
        }
    }

    /// Delivers IRQ 0 pulses for counter 0's rising edges and returns when the next one is due.
    fn tick(&mut self, ctx: &mut DeviceCtx) -> Option<u64> {
        let now = ctx.now_ns;
        let counter = &self.counters[0];
        let edges = counter.rising_edges(now);
        let new_edges = edges.saturating_sub(self.irq0.edges_seen);
        self.irq0.edges_seen = edges;
        self.irq0.owed_pulses =
            (self.irq0.owed_pulses as u64 + new_edges).min(MAX_CATCH_UP_PULSES as u64) as u32;

        if self.irq0.owed_pulses > 0 && now >= self.irq0.next_pulse_ns {
            ctx.pulse(self.line);
            self.irq0.owed_pulses -= 1;
            let half_period = ticks_to_ns(counter.period_ticks()) / 2;
            self.irq0.next_pulse_ns = now.saturating_add(half_period.clamp(1, CATCH_UP_SPACING_NS));
        }

        let next_edge = counter.rising_edge_time(self.irq0.edges_seen + 1);
        let next_owed = (self.irq0.owed_pulses > 0).then_some(self.irq0.next_pulse_ns);
        next_edge.into_iter().chain(next_owed).min()
    }

    crate::snapshot::plain_data_snapshot!();

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{IrqLines, MachineEvent};

    /// A PIT with its own clock and interrupt lines, driven the way the bus drives it.
    struct Harness {
        pit: Pit,
        irq: IrqLines,
        events: Vec<MachineEvent>,
        now: u64,
        deadline: Option<u64>,
        irq0_times: Vec<u64>,
    }

    impl Harness {
        fn new() -> Self {
            let mut h = Harness {
                pit: Pit::new(),
                irq: IrqLines::default(),
                events: Vec::new(),
                now: 0,
                deadline: None,
                irq0_times: Vec::new(),
            };
            h.tick();
            h
        }

        fn tick(&mut self) {
            let mut ctx = DeviceCtx {
                now_ns: self.now,
                source: crate::bus::DeviceId(0),
                dma: crate::bus::Dma::none(),
                irq: &mut self.irq,
                events: &mut self.events,
            };
            self.deadline = self.pit.tick(&mut ctx);
            if self.irq.take_edges() & 1 != 0 {
                self.irq0_times.push(self.now);
            }
        }

        fn out(&mut self, port: u16, value: u8) {
            let mut ctx = DeviceCtx {
                now_ns: self.now,
                source: crate::bus::DeviceId(0),
                dma: crate::bus::Dma::none(),
                irq: &mut self.irq,
                events: &mut self.events,
            };
            self.pit.pio_write(port, 1, value as u32, &mut ctx);
            self.tick();
        }

        fn inb(&mut self, port: u16) -> u8 {
            let mut ctx = DeviceCtx {
                now_ns: self.now,
                source: crate::bus::DeviceId(0),
                dma: crate::bus::Dma::none(),
                irq: &mut self.irq,
                events: &mut self.events,
            };
            let v = self.pit.pio_read(port, 1, &mut ctx) as u8;
            self.tick();
            v
        }

        /// Moves time forward like the bus: ticking at every deadline on the way.
        fn run_until(&mut self, end: u64) {
            while let Some(d) = self.deadline.filter(|&d| d <= end) {
                self.now = self.now.max(d);
                self.tick();
            }
            self.now = end;
            self.tick();
        }

        /// Moves time forward in one jump, as an engine that overran its deadline would.
        fn jump_to(&mut self, t: u64) {
            self.now = t;
            self.tick();
        }
    }

    #[test]
    fn rate_generator_fires_once_per_period_at_the_right_times() {
        let mut h = Harness::new();
        assert_eq!(
            h.deadline, None,
            "no timer runs before the guest programs one"
        );
        h.out(0x43, 0x34); // counter 0, low then high, mode 2
        h.out(0x40, (1193 & 0xFF) as u8);
        h.out(0x40, (1193 >> 8) as u8);
        h.run_until(NS_PER_SECOND);
        // 1193182 / 1193 = 1000.15 Hz: exactly 1000 periods fit in one second.
        assert_eq!(h.irq0_times.len(), 1000);
        for (k, &t) in h.irq0_times.iter().enumerate() {
            let ticks = (k as u64 + 1) * 1193;
            assert_eq!(t, ticks_to_ns(ticks), "pulse {k}");
        }
    }

    #[test]
    fn square_wave_mode_fires_at_the_same_rate_and_shows_its_wave() {
        let mut h = Harness::new();
        h.out(0x43, 0x36); // counter 0, low then high, mode 3
        h.out(0x40, 0x00); // count 0 = 65536: the 18.2 Hz BIOS tick
        h.out(0x40, 0x00);
        h.run_until(NS_PER_SECOND);
        assert_eq!(h.irq0_times.len(), 18);
        assert!(h.pit.output(0, 1_000)); // first half: high
        assert!(!h.pit.output(0, ticks_to_ns(40_000))); // second half: low
    }

    #[test]
    fn late_ticks_still_deliver_one_pulse_per_period() {
        let mut h = Harness::new();
        h.out(0x43, 0x34);
        h.out(0x40, 0xA9); // 1193 = 0x04A9
        h.out(0x40, 0x04);
        h.jump_to(10_500_000); // ten periods passed without a tick
        assert_eq!(h.irq0_times.len(), 1, "only one pulse at a time");
        h.run_until(20_000_000);
        assert_eq!(h.irq0_times.len(), 20, "the missed pulses were paid back");
        let gaps: Vec<u64> = h.irq0_times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|&g| g > 0),
            "pulses are spread out: {gaps:?}"
        );
    }

    #[test]
    fn a_long_pause_is_capped_instead_of_storming() {
        let mut h = Harness::new();
        h.out(0x43, 0x34);
        h.out(0x40, 0xA9);
        h.out(0x40, 0x04);
        h.jump_to(10 * NS_PER_SECOND); // 10 000 periods missed
        let end = 10 * NS_PER_SECOND + 2_000_000;
        h.run_until(end);
        let missed = ns_to_ticks(10 * NS_PER_SECOND) / 1193;
        let on_time = ns_to_ticks(end) / 1193 - missed;
        assert!(missed > 10_000);
        assert_eq!(
            h.irq0_times.len() as u64,
            MAX_CATCH_UP_PULSES as u64 + on_time,
            "only {MAX_CATCH_UP_PULSES} of the {missed} missed ticks are delivered"
        );
    }

    #[test]
    fn mode0_one_shot_on_counter_0_fires_once() {
        let mut h = Harness::new();
        h.out(0x43, 0x30); // counter 0, low then high, mode 0
        h.out(0x40, 0x9C); // 11932 = 0x2E9C: 10 ms
        h.out(0x40, 0x2E);
        assert!(!h.pit.output(0, h.now));
        h.run_until(NS_PER_SECOND);
        assert_eq!(h.irq0_times, vec![ticks_to_ns(11932)]);
        assert!(
            h.pit.output(0, h.now),
            "OUT stays high after terminal count"
        );
    }

    #[test]
    fn mode4_strobe_as_a_one_shot_clock_event() {
        let mut h = Harness::new();
        h.out(0x43, 0x38); // counter 0, low then high, mode 4 (Linux's one-shot PIT)
        h.out(0x40, 100);
        h.out(0x40, 0);
        assert!(h.pit.output(0, ticks_to_ns(99)));
        assert!(!h.pit.output(0, ticks_to_ns(100)), "one-clock strobe");
        h.run_until(NS_PER_SECOND / 100);
        assert_eq!(h.irq0_times, vec![ticks_to_ns(101)]);
        // Writing a new count re-arms it.
        let rearm = h.now;
        h.out(0x40, 50);
        h.out(0x40, 0);
        h.run_until(NS_PER_SECOND / 50);
        assert_eq!(h.irq0_times[1], rearm + ticks_to_ns(51));
        assert_eq!(h.irq0_times.len(), 2);
    }

    #[test]
    fn counter2_one_shot_and_port_61_bit5_calibration_loop() {
        let mut h = Harness::new();
        // The calibration sequence of PC kernels: gate on, speaker off, mode 0, count, poll bit 5.
        let b = h.inb(0x61);
        h.out(0x61, (b & !0x02) | 0x01);
        h.out(0x43, 0xB0); // counter 2, low then high, mode 0
        h.out(0x42, 0x9C);
        h.out(0x42, 0x2E); // 11932 clocks = 10 ms
        let start = h.now;
        let mut polls = 0u64;
        while h.inb(0x61) & 0x20 == 0 {
            polls += 1;
            h.now += 1_000; // the guest's loop takes 1 µs of virtual time
        }
        let waited = h.now - start;
        assert!(
            (10_000_000..=10_001_000).contains(&waited),
            "OUT2 rose after {waited} ns"
        );
        assert_eq!(polls, waited / 1_000);
        // Mode 0 keeps counting down past zero.
        h.out(0x43, 0x80); // latch counter 2
        let low = h.inb(0x42);
        let high = h.inb(0x42);
        assert!(u16::from_le_bytes([low, high]) > 0xFF00);
        assert!(h.irq0_times.is_empty(), "counter 2 is not wired to IRQ 0");
    }

    #[test]
    fn a_low_gate_pauses_counter2_in_mode0() {
        let mut h = Harness::new();
        h.out(0x61, 0x01);
        h.out(0x43, 0xB0);
        h.out(0x42, 0xE8); // 1000 clocks
        h.out(0x42, 0x03);
        h.now = ticks_to_ns(400);
        h.out(0x61, 0x00); // gate off: counting pauses at 600
        h.now = ticks_to_ns(5_000);
        h.out(0x43, 0x80);
        let count = u16::from_le_bytes([h.inb(0x42), h.inb(0x42)]);
        assert_eq!(count, 600);
        assert_eq!(h.inb(0x61) & 0x20, 0, "terminal count not reached");
        h.out(0x61, 0x01);
        h.now += ticks_to_ns(600);
        assert_eq!(h.inb(0x61) & 0x20, 0x20);
    }

    #[test]
    fn counter_latch_freezes_the_value_until_read() {
        let mut h = Harness::new();
        h.out(0x43, 0x34);
        h.out(0x40, 0xE8);
        h.out(0x40, 0x03); // 1000
        h.now = ticks_to_ns(250);
        h.out(0x43, 0x00); // latch counter 0
        h.now = ticks_to_ns(700);
        let latched = u16::from_le_bytes([h.inb(0x40), h.inb(0x40)]);
        assert_eq!(latched, 750);
        let live = u16::from_le_bytes([h.inb(0x40), h.inb(0x40)]);
        assert_eq!(live, 300, "after the latch is read, reads are live again");
    }

    #[test]
    fn read_back_returns_status_then_count() {
        let mut h = Harness::new();
        h.out(0x43, 0xB6); // counter 2, low then high, mode 3
        h.out(0x43, 0xE8); // read-back: status and count of counter 2
        assert_eq!(
            h.inb(0x42),
            0x80 | 0x40 | 0x36,
            "OUT high, null count, lo/hi, mode 3"
        );
        h.out(0x42, 0x00);
        h.out(0x42, 0x10); // count 0x1000, gate still low: waits
        h.out(0x61, 0x01); // gate on: starts
        h.now += ticks_to_ns(0x100);
        h.out(0x43, 0xC8); // read-back count and status
        assert_eq!(h.inb(0x42), 0x36 | 0x80, "counting, OUT high (first half)");
        let count = u16::from_le_bytes([h.inb(0x42), h.inb(0x42)]);
        assert_eq!(count, 0x1000 - 2 * 0x100, "mode 3 counts down by two");
    }

    #[test]
    fn lobyte_access_and_bcd_counting() {
        let mut h = Harness::new();
        h.out(0x43, 0x15); // counter 0, low byte only, mode 2, BCD
        h.out(0x40, 0x50); // BCD 50
        h.now = ticks_to_ns(12);
        assert_eq!(h.inb(0x40), 0x38, "50 - 12 = 38, read as BCD");
        assert_eq!(h.inb(0x40), 0x38, "low-byte access has no flip-flop");
        h.run_until(ticks_to_ns(500));
        assert_eq!(h.irq0_times.len(), 10);
    }

    #[test]
    fn refresh_bit_toggles_with_virtual_time() {
        let mut h = Harness::new();
        let first = h.inb(0x61) & 0x10;
        h.now += REFRESH_TOGGLE_NS;
        let second = h.inb(0x61) & 0x10;
        assert_ne!(first, second);
        h.now += REFRESH_TOGGLE_NS;
        assert_eq!(h.inb(0x61) & 0x10, first);
    }

    #[test]
    fn speaker_sounds_a_square_wave() {
        let mut h = Harness::new();
        h.out(0x43, 0xB6);
        h.out(0x42, 0xA9);
        h.out(0x42, 0x04); // 1193: ~1 kHz tone
        assert!(!h.pit.speaker_enabled());
        h.out(0x61, 0x03);
        assert!(h.pit.speaker_enabled());
        let hz = h.pit.speaker_frequency_hz().unwrap();
        assert!((hz - 1000.15).abs() < 0.01, "{hz}");
    }
}

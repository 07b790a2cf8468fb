//! One i8254 counter: a 16-bit down-counter whose value and output pin are functions of time.
//! Teaches: the six counting modes, the byte-at-a-time access protocol, latches, and gates, computed instead of ticked.
//!
//! A counting counter stores only when it started (and how many clocks it had counted before a
//! low gate paused it). Its count, its OUT level and the time of its next rising edge are all
//! derived from the virtual time the caller passes in.

use super::{NS_PER_SECOND, PIT_FREQUENCY_HZ};

/// Whole counter clocks in `ns` nanoseconds.
pub(super) fn ns_to_ticks(ns: u64) -> u64 {
    (ns as u128 * PIT_FREQUENCY_HZ as u128 / NS_PER_SECOND as u128) as u64
}

/// The first nanosecond at which `ticks` counter clocks have elapsed.
pub(super) fn ticks_to_ns(ticks: u64) -> u64 {
    let ns = (ticks as u128 * NS_PER_SECOND as u128).div_ceil(PIT_FREQUENCY_HZ as u128);
    ns.min(u64::MAX as u128) as u64
}

/// How the guest reads and writes a counter's 16-bit value through an 8-bit port.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    LowByte,
    HighByte,
    /// Low byte first, then high byte, tracked by a flip-flop.
    LowThenHigh,
}

impl Access {
    fn bits(self) -> u8 {
        match self {
            Access::LowByte => 1,
            Access::HighByte => 2,
            Access::LowThenHigh => 3,
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// A control word was written, the count was not (completely) written yet.
    Unloaded,
    /// A count is loaded and waits for the gate: a rising edge in modes 1 and 5, a high gate in 2 and 3.
    WaitingForGate,
    /// Counting. `held_ticks` clocks were counted before `since_ns`; `since_ns` is `None` while
    /// a low gate pauses counting (modes 0 and 4).
    Counting {
        since_ns: Option<u64>,
        held_ticks: u64,
    },
}

/// One of the three counters.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub(super) struct Counter {
    /// Operating mode 0–5 (the control word's 6 and 7 are aliases of 2 and 3).
    pub(super) mode: u8,
    /// The mode bits as written, reported by the read-back status byte.
    mode_bits: u8,
    access: Access,
    bcd: bool,
    /// The initial count, 1..=65536 (binary) or 1..=10000 (BCD); a written 0 means the maximum.
    reload: u32,
    phase: Phase,
    gate: bool,
    /// The low byte of a low-then-high count write, waiting for its high byte.
    pending_low_byte: Option<u8>,
    /// The read flip-flop of low-then-high access: the next read returns the high byte.
    read_high_next: bool,
    count_latch: Option<u16>,
    pub(super) status_latch: Option<u8>,
}

impl Counter {
    pub(super) fn new(gate: bool) -> Self {
        Counter {
            mode: 0,
            mode_bits: 0,
            access: Access::LowThenHigh,
            bcd: false,
            reload: 0x1_0000,
            phase: Phase::Unloaded,
            gate,
            pending_low_byte: None,
            read_high_next: false,
            count_latch: None,
            status_latch: None,
        }
    }

    fn modulus(&self) -> u32 {
        if self.bcd {
            10_000
        } else {
            0x1_0000
        }
    }

    /// A count of 1 is illegal in modes 2 and 3; treat it as 2 so the period stays meaningful.
    pub(super) fn period_ticks(&self) -> u64 {
        (self.reload as u64).max(2)
    }

    fn decode(&self, raw: u16) -> u32 {
        let value = if self.bcd {
            // Four decimal digits. Invalid nibbles are garbage in, garbage out, but bounded.
            (0..4).fold(0u32, |acc, digit| {
                acc + ((raw >> (4 * digit)) & 0xF) as u32 * 10u32.pow(digit)
            }) % 10_000
        } else {
            raw as u32
        };
        if value == 0 {
            self.modulus()
        } else {
            value
        }
    }

    fn encode(&self, value: u32) -> u16 {
        let value = value % self.modulus();
        if self.bcd {
            (0..4).fold(0u16, |acc, digit| {
                acc | (((value / 10u32.pow(digit)) % 10) as u16) << (4 * digit)
            })
        } else {
            value as u16
        }
    }

    /// Counter clocks counted since the count was loaded, if counting.
    fn elapsed_ticks(&self, now_ns: u64) -> Option<u64> {
        match self.phase {
            Phase::Counting {
                since_ns,
                held_ticks,
            } => Some(held_ticks + since_ns.map_or(0, |s| ns_to_ticks(now_ns.saturating_sub(s)))),
            _ => None,
        }
    }

    /// The value a read of the counting element returns now.
    fn count_at(&self, now_ns: u64) -> u32 {
        let Some(t) = self.elapsed_ticks(now_ns) else {
            return self.reload % self.modulus();
        };
        let n = self.reload as u64;
        let modulus = self.modulus() as u64;
        let count = match self.mode {
            // Counts down from the initial count and keeps wrapping after terminal count.
            0 | 1 | 4 | 5 => (n + modulus - t % modulus) % modulus,
            // Counts N, N-1, …, 1, then reloads.
            2 => self.period_ticks() - t % self.period_ticks(),
            // Counts down by two, twice per period (once per half wave).
            _ => self.period_ticks() - (2 * t) % self.period_ticks(),
        };
        (count % modulus) as u32
    }

    /// The level of the counter's OUT pin now.
    pub(super) fn output_at(&self, now_ns: u64) -> bool {
        match self.phase {
            // Mode 0 drives OUT low as soon as it is programmed; every other mode idles high.
            Phase::Unloaded => self.mode != 0,
            Phase::WaitingForGate => true,
            Phase::Counting { .. } => {
                let t = self.elapsed_ticks(now_ns).unwrap_or(0);
                let n = self.reload as u64;
                let period = self.period_ticks();
                match self.mode {
                    // Low until terminal count, then high (mode 1: from the gate trigger).
                    0 | 1 => t >= n,
                    // High, except low for the one clock before each reload.
                    2 => t % period != period - 1,
                    // A square wave: high for the first (rounded-up) half of each period.
                    3 => t % period < period.div_ceil(2),
                    // High, except a one-clock low strobe at terminal count.
                    _ => t != n,
                }
            }
        }
    }

    /// Rising edges of OUT since counting began (what an edge-triggered IRQ line sees).
    pub(super) fn rising_edges(&self, now_ns: u64) -> u64 {
        let Some(t) = self.elapsed_ticks(now_ns) else {
            return 0;
        };
        let n = self.reload as u64;
        match self.mode {
            0 | 1 => (t >= n) as u64,
            2 | 3 => t / self.period_ticks(),
            _ => (t > n) as u64,
        }
    }

    /// The virtual time of the `k`-th rising edge of OUT (k ≥ 1), if it will happen.
    pub(super) fn rising_edge_time(&self, k: u64) -> Option<u64> {
        let Phase::Counting {
            since_ns: Some(since),
            held_ticks,
        } = self.phase
        else {
            return None;
        };
        let n = self.reload as u64;
        let tick = match self.mode {
            0 | 1 if k == 1 => n,
            2 | 3 => k.checked_mul(self.period_ticks())?,
            4 | 5 if k == 1 => n + 1,
            _ => return None,
        };
        Some(since.saturating_add(ticks_to_ns(tick.saturating_sub(held_ticks))))
    }

    pub(super) fn status(&self, now_ns: u64) -> u8 {
        let null_count = !matches!(self.phase, Phase::Counting { .. });
        ((self.output_at(now_ns) as u8) << 7)
            | ((null_count as u8) << 6)
            | (self.access.bits() << 4)
            | (self.mode_bits << 1)
            | self.bcd as u8
    }

    // ---- guest accesses ----

    pub(super) fn program(&mut self, access: Access, mode_bits: u8, bcd: bool) {
        self.access = access;
        self.mode_bits = mode_bits;
        self.mode = if mode_bits >= 6 {
            mode_bits - 4
        } else {
            mode_bits
        };
        self.bcd = bcd;
        self.phase = Phase::Unloaded;
        self.pending_low_byte = None;
        self.read_high_next = false;
        self.count_latch = None;
        self.status_latch = None;
    }

    /// Freezes the current count in the output latch until the guest has read it.
    pub(super) fn latch_count(&mut self, now_ns: u64) {
        if self.count_latch.is_none() {
            self.count_latch = Some(self.encode(self.count_at(now_ns)));
        }
    }

    /// Writes one byte of a new count; returns true when the count was loaded.
    pub(super) fn write_count_byte(&mut self, value: u8, now_ns: u64) -> bool {
        let raw = match self.access {
            Access::LowByte => value as u16,
            Access::HighByte => (value as u16) << 8,
            Access::LowThenHigh => match self.pending_low_byte.take() {
                Some(low) => low as u16 | (value as u16) << 8,
                None => {
                    self.pending_low_byte = Some(value);
                    // Mode 0 stops counting (and drops OUT) when the first byte arrives.
                    if self.mode == 0 {
                        self.phase = Phase::Unloaded;
                    }
                    return false;
                }
            },
        };
        self.reload = self.decode(raw);
        let start_now = Phase::Counting {
            since_ns: Some(now_ns),
            held_ticks: 0,
        };
        // Simplification: in modes 2 and 3 a new count restarts the period at once instead of
        // waiting for the current one to end, as QEMU does too.
        self.phase = match self.mode {
            0 | 4 => Phase::Counting {
                since_ns: self.gate.then_some(now_ns),
                held_ticks: 0,
            },
            1 | 5 => Phase::WaitingForGate,
            _ if self.gate => start_now,
            _ => Phase::WaitingForGate,
        };
        true
    }

    pub(super) fn read_byte(&mut self, now_ns: u64) -> u8 {
        if let Some(status) = self.status_latch.take() {
            return status;
        }
        let value = self
            .count_latch
            .unwrap_or_else(|| self.encode(self.count_at(now_ns)));
        let [low, high] = value.to_le_bytes();
        match self.access {
            Access::LowByte => {
                self.count_latch = None;
                low
            }
            Access::HighByte => {
                self.count_latch = None;
                high
            }
            Access::LowThenHigh => {
                self.read_high_next = !self.read_high_next;
                if self.read_high_next {
                    low
                } else {
                    self.count_latch = None;
                    high
                }
            }
        }
    }

    pub(super) fn set_gate(&mut self, high: bool, now_ns: u64) {
        if high == self.gate {
            return;
        }
        self.gate = high;
        match (self.mode, self.phase) {
            // Modes 0 and 4: the gate pauses and resumes counting.
            (
                0 | 4,
                Phase::Counting {
                    since_ns,
                    held_ticks,
                },
            ) => {
                self.phase = if high {
                    Phase::Counting {
                        since_ns: Some(now_ns),
                        held_ticks,
                    }
                } else {
                    Phase::Counting {
                        since_ns: None,
                        held_ticks: held_ticks
                            + since_ns.map_or(0, |s| ns_to_ticks(now_ns.saturating_sub(s))),
                    }
                };
            }
            // Modes 1 and 5: a rising gate (re)triggers the count.
            (1 | 5, Phase::WaitingForGate | Phase::Counting { .. }) if high => {
                self.phase = Phase::Counting {
                    since_ns: Some(now_ns),
                    held_ticks: 0,
                };
            }
            // Modes 2 and 3: a low gate stops the counter (OUT high); a rising gate reloads it.
            (2 | 3, Phase::Counting { .. }) if !high => self.phase = Phase::WaitingForGate,
            (2 | 3, Phase::WaitingForGate) if high => {
                self.phase = Phase::Counting {
                    since_ns: Some(now_ns),
                    held_ticks: 0,
                };
            }
            _ => {}
        }
    }
}

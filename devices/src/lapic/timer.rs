//! The local APIC timer: a down-counter in one-shot or periodic mode, or a TSC deadline.
//! Teaches: how a timer is computed from virtual time instead of being decremented — the count is
//! a function of "now", and the only state is when it was loaded and when it next fires.
//!
//! The counter runs at the APIC bus clock divided by the divide configuration register. Our bus
//! clock is 1 GHz, one tick per guest nanosecond — the same as QEMU's, so a kernel that hard-codes
//! QEMU's rate sees the same timing here; kernels that calibrate (against the PIT or the ACPI PM
//! timer, as Linux does) measure 1 GHz.

/// Timer mode, LVT timer bits 17–18.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerMode {
    /// Count down once from the initial count, interrupt at zero, stay at zero.
    OneShot,
    /// Count down, interrupt at zero, reload the initial count, forever.
    Periodic,
    /// Interrupt when the time-stamp counter reaches IA32_TSC_DEADLINE (MSR 0x6E0).
    TscDeadline,
}

impl TimerMode {
    /// Decodes the mode field of an LVT timer value (the reserved mode 3 behaves as one-shot).
    pub fn from_lvt(lvt: u32) -> TimerMode {
        match (lvt >> 17) & 3 {
            1 => TimerMode::Periodic,
            2 => TimerMode::TscDeadline,
            _ => TimerMode::OneShot,
        }
    }
}

/// APIC bus ticks per guest nanosecond before the divider (a 1 GHz bus clock).
pub const BUS_TICKS_PER_NS: u64 = 1;

/// The timer's registers and the times that matter.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Default)]
pub(super) struct ApicTimer {
    /// Initial count register (0x380).
    pub initial: u32,
    /// Divide configuration register (0x3E0), bits 0, 1 and 3.
    pub divide_config: u32,
    /// When the counter was last loaded with `initial`.
    start_ns: u64,
    /// When the counter next reaches zero (one-shot/periodic) or the deadline (TSC mode).
    next_fire_ns: Option<u64>,
    /// IA32_TSC_DEADLINE, in TSC ticks (= guest ns); 0 = disarmed.
    pub tsc_deadline: u64,
}

impl ApicTimer {
    /// The divisor the divide configuration register selects: 2, 4, …, 128 or 1.
    pub fn divisor(&self) -> u64 {
        let code = ((self.divide_config & 8) >> 1) | (self.divide_config & 3);
        1 << ((code + 1) & 7)
    }

    /// Nanoseconds per counter tick.
    fn ns_per_tick(&self) -> u64 {
        self.divisor() / BUS_TICKS_PER_NS
    }

    /// Loads the counter (a write to the initial count register). 0 stops the timer.
    pub fn load(&mut self, initial: u32, mode: TimerMode, now: u64) {
        if mode == TimerMode::TscDeadline {
            return; // the initial count is ignored in TSC-deadline mode
        }
        self.initial = initial;
        self.start_ns = now;
        self.next_fire_ns = (initial != 0).then(|| now + self.period_ns());
    }

    fn period_ns(&self) -> u64 {
        self.initial as u64 * self.ns_per_tick()
    }

    /// A new divide configuration: the count keeps going from where it is, at the new rate.
    pub fn set_divide(&mut self, value: u32, mode: TimerMode, now: u64) {
        let remaining = self.current_count(mode, now);
        self.divide_config = value & 0xB;
        if mode != TimerMode::TscDeadline && self.next_fire_ns.is_some() {
            // Pretend the counter was loaded earlier, so that `remaining` ticks are left.
            let done = (self.initial - remaining) as u64 * self.ns_per_tick();
            // (Possibly "before time 0": the arithmetic on start_ns wraps consistently.)
            self.start_ns = now.wrapping_sub(done);
            self.next_fire_ns = Some(now + remaining as u64 * self.ns_per_tick());
        }
    }

    /// The LVT timer mode changed: switching into or out of TSC-deadline mode disarms the timer.
    pub fn mode_changed(&mut self, old: TimerMode, new: TimerMode) {
        if old == new {
            return;
        }
        if old == TimerMode::TscDeadline || new == TimerMode::TscDeadline {
            self.next_fire_ns = None;
            self.tsc_deadline = 0;
            self.initial = 0;
        }
    }

    /// Writes IA32_TSC_DEADLINE (only meaningful in TSC-deadline mode; 0 disarms).
    pub fn set_tsc_deadline(&mut self, deadline: u64, mode: TimerMode) {
        if mode != TimerMode::TscDeadline {
            return;
        }
        self.tsc_deadline = deadline;
        self.next_fire_ns = (deadline != 0).then_some(deadline);
    }

    /// The current count register (0x390) at time `now`.
    pub fn current_count(&self, mode: TimerMode, now: u64) -> u32 {
        if mode == TimerMode::TscDeadline || self.initial == 0 {
            return 0;
        }
        let Some(_) = self.next_fire_ns else {
            return 0; // a one-shot that has fired stays at zero
        };
        let ticks = now.wrapping_sub(self.start_ns) / self.ns_per_tick();
        match mode {
            TimerMode::Periodic => self.initial - (ticks % self.initial as u64) as u32,
            _ => self
                .initial
                .saturating_sub(ticks.min(u32::MAX as u64) as u32),
        }
    }

    /// When the timer next wants attention.
    pub fn deadline(&self) -> Option<u64> {
        self.next_fire_ns
    }

    /// Called at `now`: returns true if the timer expired (once, however many periods passed —
    /// the interrupt request is a single IRR bit anyway) and re-arms a periodic timer.
    pub fn expire(&mut self, mode: TimerMode, now: u64) -> bool {
        if self.next_fire_ns.is_none_or(|t| t > now) {
            return false;
        }
        match mode {
            TimerMode::Periodic => {
                let period = self.period_ns().max(1);
                let periods = now.wrapping_sub(self.start_ns) / period;
                let next = self.start_ns.wrapping_add((periods + 1) * period);
                self.next_fire_ns = Some(next);
            }
            TimerMode::OneShot => self.next_fire_ns = None,
            TimerMode::TscDeadline => {
                self.next_fire_ns = None;
                self.tsc_deadline = 0;
            }
        }
        true
    }
}

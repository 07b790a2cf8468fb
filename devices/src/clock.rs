//! The machine's own clock: the only source of time for device logic.
//! Teaches: why emulators keep virtual time (determinism) instead of reading the host clock.
//!
//! Emulated engines advance it by retired instructions; the KVM engine advances it from the host
//! clock at the edge (in `accel-kvm`). Devices only ever see `now_ns`.

// ANCHOR: virtual_clock
/// Nanoseconds of guest time since machine reset.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VirtualClock {
    now_ns: u64,
}

impl VirtualClock {
    /// Guest nanoseconds per retired instruction for emulated engines: a 1 GHz, 1-IPC virtual CPU.
    pub const NS_PER_INSTRUCTION: u64 = 1;

    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Moves time forward (never backwards).
    pub fn advance_to(&mut self, ns: u64) {
        if ns > self.now_ns {
            self.now_ns = ns;
        }
    }

    pub fn advance_by(&mut self, ns: u64) {
        self.now_ns = self.now_ns.saturating_add(ns);
    }

    /// The virtual time-stamp counter: 1 tick per guest nanosecond (a 1 GHz TSC).
    pub fn tsc(&self) -> u64 {
        self.now_ns
    }
}
// ANCHOR_END: virtual_clock

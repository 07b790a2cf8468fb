//! kvmclock: the time-info structure a VMM keeps in guest memory so the guest reads time without exits.
//! Teaches: a paravirtual clock is data, not a device — the VMM publishes (TSC, time) pairs and
//! a scale, the guest does the arithmetic with RDTSC, and the version field makes it safe.
//!
//! The guest writes the guest-physical address of a 32-byte `pvclock_vcpu_time_info` (with bit
//! 0 set) to MSR 0x4b564d01. From then on the VMM keeps in it: `version` (odd while it writes),
//! `tsc_timestamp`, `system_time` (ns), `tsc_to_system_mul` and `tsc_shift`, and the guest
//! computes `system_time + scale(rdtsc - tsc_timestamp)`.
//!
//! Under KVM the host kernel maintains the structure itself (from the host TSC and its rate).
//! The emulated engines' TSC counts virtual nanoseconds, so one publication is enough: the
//! scale is 1 (`mul = 2^31, shift = 1`). When an engine takes the clock over from another, it
//! republishes, never earlier than the last time the guest could have read (`Kvmclock::floor_ns`),
//! so guest time never runs backwards across an engine switch.

use crate::memory::GuestRam;

/// MSR_KVM_WALL_CLOCK_NEW: the guest asks for the wall-clock time at boot (written once).
pub const MSR_WALL_CLOCK: u32 = 0x4b56_4d00;
/// MSR_KVM_SYSTEM_TIME_NEW: guest-physical address of the time info | 1 (enable).
pub const MSR_SYSTEM_TIME: u32 = 0x4b56_4d01;
/// `flags` bit: the TSC is the same on every CPU and never stops (true here: one CPU).
pub const FLAG_TSC_STABLE: u8 = 1;
/// Size of the time-info structure.
pub const TIME_INFO_SIZE: u64 = 32;

/// Which engine's idea of the guest clock the structure currently holds.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Publisher {
    #[default]
    Nobody,
    /// interp or bt: TSC = virtual ns.
    Emulated,
    /// KVM's kernel: TSC = the host's, at its rate.
    Kvm,
}

/// The machine's kvmclock bookkeeping (not architectural state: the MSR value is in `CpuState`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kvmclock {
    pub publisher: Publisher,
    /// Added to virtual time in what the emulated engines publish, so their clock continues
    /// where KVM's left off (KVM's clock also ran while vmscope was between runs).
    pub offset_ns: u64,
    /// The latest guest time an engine that stopped publishing could have shown the guest.
    pub floor_ns: u64,
}

/// One `pvclock_vcpu_time_info`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeInfo {
    pub version: u32,
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub mul: u32,
    pub shift: i8,
    pub flags: u8,
}

impl TimeInfo {
    /// The guest's computation: the time in ns at TSC value `tsc`.
    pub fn time_at(&self, tsc: u64) -> u64 {
        let delta = tsc.wrapping_sub(self.tsc_timestamp);
        let delta = if self.shift < 0 {
            delta >> (-self.shift as u32).min(63)
        } else {
            delta << (self.shift as u32).min(63)
        };
        let scaled = ((delta as u128 * self.mul as u128) >> 32) as u64;
        self.system_time.wrapping_add(scaled)
    }
}

/// Reads the structure at `addr`, if it lies in RAM.
pub fn read(ram: &GuestRam, addr: u64) -> Option<TimeInfo> {
    let word = |off: u64, size| ram.read_le(addr + off, size).ok();
    Some(TimeInfo {
        version: word(0, 4)? as u32,
        tsc_timestamp: word(8, 8)?,
        system_time: word(16, 8)?,
        mul: word(24, 4)? as u32,
        shift: word(28, 1)? as u8 as i8,
        flags: word(29, 1)? as u8,
    })
}

/// The address the MSR value names, if kvmclock is enabled and the structure fits in RAM.
pub fn enabled_at(ram: &GuestRam, msr_value: u64) -> Option<u64> {
    let addr = msr_value & !1;
    (msr_value & 1 != 0 && ram.contains(addr, TIME_INFO_SIZE as usize)).then_some(addr)
}

// ANCHOR: publish_emulated
/// Publishes the emulated engines' clock: TSC `tsc_now` is guest time `time_now`, and one TSC
/// tick is one ns. The version goes odd, the fields change, the version goes even again.
pub fn publish_emulated(ram: &mut GuestRam, addr: u64, tsc_now: u64, time_now: u64) {
    let old = ram.read_le(addr, 4).unwrap_or(0) as u32;
    let writing = old | 1;
    let _ = ram.write_le(addr, 4, writing as u64);
    let _ = ram.write_le(addr + 8, 8, tsc_now);
    let _ = ram.write_le(addr + 16, 8, time_now);
    let _ = ram.write_le(addr + 24, 4, 1 << 31);
    let _ = ram.write_le(addr + 28, 1, 1); // shift
    let _ = ram.write_le(addr + 29, 1, FLAG_TSC_STABLE as u64);
    let _ = ram.write_le(addr, 4, writing.wrapping_add(1) as u64);
}
// ANCHOR_END: publish_emulated

/// MSR_KVM_WALL_CLOCK_NEW: writes `pvclock_wall_clock` {version, sec, nsec} at `addr`: the
/// wall-clock time at guest time 0. The emulated machine's clock starts at the epoch it was
/// given (deterministic), so that is what it reports.
pub fn publish_wall_clock(ram: &mut GuestRam, addr: u64, boot_epoch_ns: u64) -> bool {
    if !ram.contains(addr, 12) {
        return false;
    }
    let old = ram.read_le(addr, 4).unwrap_or(0) as u32;
    let _ = ram.write_le(addr, 4, (old | 1) as u64);
    let _ = ram.write_le(addr + 4, 4, boot_epoch_ns / 1_000_000_000);
    let _ = ram.write_le(addr + 8, 4, boot_epoch_ns % 1_000_000_000);
    let _ = ram.write_le(addr, 4, ((old | 1) + 1) as u64);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emulated_scale_is_one_ns_per_tick() {
        let mut ram = GuestRam::new(1 << 20).unwrap();
        publish_emulated(&mut ram, 0x1000, 5_000, 7_000);
        let info = read(&ram, 0x1000).unwrap();
        assert_eq!(info.version % 2, 0, "even: not being written");
        assert_ne!(info.version, 0);
        assert_eq!(info.time_at(5_000), 7_000);
        assert_eq!(info.time_at(1_005_000), 1_007_000);
        assert_eq!(info.flags, FLAG_TSC_STABLE);
        let before = info.version;
        publish_emulated(&mut ram, 0x1000, 9_000, 11_000);
        assert_eq!(read(&ram, 0x1000).unwrap().version, before + 2);
    }

    #[test]
    fn the_guest_formula_handles_negative_shifts_and_large_deltas() {
        // A 2.5 GHz TSC: shift -1 halves, mul 0.8 * 2^32.
        let info = TimeInfo {
            tsc_timestamp: 100,
            system_time: 1_000,
            mul: (0.8 * 4294967296.0) as u32,
            shift: -1,
            ..Default::default()
        };
        assert_eq!(info.time_at(100 + 5_000_000_000), 1_000 + 1_999_999_999);
    }

    #[test]
    fn enabling_needs_bit_0_and_a_structure_in_ram() {
        let ram = GuestRam::new(1 << 20).unwrap();
        assert_eq!(enabled_at(&ram, 0x2001), Some(0x2000));
        assert_eq!(enabled_at(&ram, 0x2000), None);
        assert_eq!(enabled_at(&ram, (1 << 20) - 16 + 1), None);
    }
}

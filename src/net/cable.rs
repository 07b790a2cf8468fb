//! One NIC cabled straight to a Linux tap device, no switch between (`--nic … --tap NAME`).
//! Teaches: a VMM's simplest network backend — what the guest sends is written to the tap,
//! what the host sends is read from it, and the NIC is told between engine runs.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use devices::bus::DeviceId;
use devices::net::NetLink;
use emulator::Machine;
use host_backends::tap::Tap;

use crate::attach::AttachedNic;

/// With a tap, a run goes in slices of this much virtual time, paced to the wall clock: the
/// peer on the tap lives in real time, and an idle guest's clock must not run ahead of it.
pub const PACED_SLICE_NS: u64 = 1_000_000;

/// A NIC's link and a tap, pumped by the runner after every engine run.
pub struct TapCable {
    tap: Tap,
    link: NetLink,
    nic: DeviceId,
    buf: Vec<u8>,
    pacer: Pacer,
    /// Frames the tap refused (the host side was down or its queue full).
    pub write_errors: u64,
}

impl TapCable {
    /// The cable for `nic` if it asked for a tap (`--tap`), the tap created now.
    pub fn for_nic(nic: Option<&AttachedNic>) -> Result<Option<TapCable>> {
        let Some(nic) = nic else {
            return Ok(None);
        };
        let Some(spec) = &nic.spec.tap else {
            return Ok(None);
        };
        let tap = match &spec.netns {
            Some(ns) => Tap::open_in_netns(&spec.name, ns),
            None => Tap::open(&spec.name),
        }
        .with_context(|| format!("--tap {}", spec.name))?;
        Ok(Some(TapCable {
            tap,
            link: nic.link.clone(),
            nic: nic.id,
            buf: vec![0; 65536],
            pacer: Pacer::new(PACED_SLICE_NS),
            write_errors: 0,
        }))
    }

    /// Keeps the guest's clock from running ahead of the wall clock (see [`Pacer`]).
    pub fn pace(&mut self, machine: &Machine) {
        self.pacer.pace(machine.bus.now_ns());
    }

    /// Moves frames both ways; services the NIC if anything arrived for it.
    pub fn pump(&mut self, machine: &mut Machine) {
        for frame in self.link.take_transmitted() {
            if self.tap.write_frame(&frame).is_err() {
                self.write_errors += 1;
            }
        }
        let mut arrived = false;
        while let Ok(Some(n)) = self.tap.read_frame(&mut self.buf) {
            arrived |= self.link.deliver(&self.buf[..n]);
        }
        if arrived || self.link.has_for_guest() {
            machine.service_device(self.nic);
        }
    }
}

/// Lets a guest's virtual time go at most as fast as the wall clock. Emulated engines skip
/// halted time; with a person or a real network at the other end, an idle guest must wait
/// for them instead — its `sleep 6` must take six seconds. A guest that falls behind (busy,
/// emulation being slower than a CPU) is not made to catch up in a rush afterwards: the
/// reference point moves with it.
#[derive(Debug)]
pub struct Pacer {
    wall: Instant,
    virt_ns: u64,
    slice_ns: u64,
}

impl Pacer {
    /// `slice_ns`: the longest sleep, and how far behind the guest may fall before the
    /// reference moves.
    pub fn new(slice_ns: u64) -> Pacer {
        Pacer {
            wall: Instant::now(),
            virt_ns: 0,
            slice_ns,
        }
    }

    /// After a run slice that left the guest's clock at `virt_ns`: sleep while it is ahead.
    pub fn pace(&mut self, virt_ns: u64) {
        let virt = virt_ns.saturating_sub(self.virt_ns);
        let wall = self.wall.elapsed().as_nanos() as u64;
        if virt + self.slice_ns < wall {
            // Behind: time from here on counts from here.
            self.wall = Instant::now();
            self.virt_ns = virt_ns;
            return;
        }
        let ahead = virt.saturating_sub(wall).min(self.slice_ns);
        std::thread::sleep(Duration::from_nanos(ahead));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_behind_the_wall_clock_does_not_rush_and_one_ahead_waits() {
        let mut p = Pacer::new(5_000_000);
        std::thread::sleep(Duration::from_millis(20));
        p.pace(1_000_000); // 1 ms of guest time in 20 ms: behind, the reference moves
        let t = Instant::now();
        p.pace(1_000_000 + 4_000_000); // 4 ms ahead of the new reference: waits ~4 ms
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(3), "{waited:?}");
    }
}

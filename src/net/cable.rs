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
    since: Instant,
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
            since: Instant::now(),
            write_errors: 0,
        }))
    }

    /// Sleeps while the guest's virtual time is ahead of the wall clock since the cable was
    /// made (at most one slice), so an idle guest waits for its peer in real time.
    pub fn pace(&self, machine: &Machine) {
        let ahead = Duration::from_nanos(machine.bus.now_ns()).saturating_sub(self.since.elapsed());
        std::thread::sleep(ahead.min(Duration::from_nanos(PACED_SLICE_NS)));
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

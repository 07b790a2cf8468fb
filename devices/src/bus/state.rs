//! The bus's part of a machine snapshot: every device's state, the interrupt controllers,
//! lines, requests, deadlines, the clock, the address maps and PCI state.
//! Teaches: restoring a machine is restoring data — and refusing when the shape differs.
//!
//! The snapshot is plain serializable data (`snapshot.rs` says what each version covers);
//! restoring checks the version, then the device list, before anything changes.

use super::Bus;
use crate::snapshot::{BusSnapshot, SnapshotError, BUS_SNAPSHOT_VERSION};

impl Bus {
    /// Copies the state of every device, the interrupt controllers, pending lines and requests,
    /// the deadlines and the clock (see `snapshot.rs`). Fails if a device cannot be snapshotted.
    pub fn snapshot(&self) -> Result<BusSnapshot, SnapshotError> {
        let devices = self
            .slots
            .iter()
            .map(|s| {
                s.device
                    .snapshot()
                    .ok_or(SnapshotError::Unsupported(s.device.name()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BusSnapshot {
            version: BUS_SNAPSHOT_VERSION,
            devices,
            deadlines: self.slots.iter().map(|s| s.deadline).collect(),
            pic: self.pic.clone(),
            lapic: self.lapic.clone(),
            ioapic: self.ioapic.clone(),
            irq: self.irq.clone(),
            events: self.events.clone(),
            clock: self.clock,
            stats: self.stats.clone(),
            ports: self.ports.clone(),
            mmio: self.mmio.clone(),
            pci: self.pci.clone(),
        })
    }

    /// Puts the bus back into the state of `snap`, taken from a bus with the same devices.
    /// The device list is checked before anything changes; should a device still refuse its
    /// state, the bus is left partly restored — restore into a fresh machine and drop it then.
    /// The deadline epoch is not restored but bumped: an engine that cached the next deadline
    /// must read it again, whatever it cached.
    pub fn restore(&mut self, snap: &BusSnapshot) -> Result<(), SnapshotError> {
        if snap.version != BUS_SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                device: "bus",
                found: snap.version,
                expected: BUS_SNAPSHOT_VERSION,
            });
        }
        let names = |v: &mut dyn Iterator<Item = &str>| v.collect::<Vec<_>>().join(",");
        if snap.devices.len() != self.slots.len()
            || snap.deadlines.len() != self.slots.len()
            || self
                .slots
                .iter()
                .zip(&snap.devices)
                .any(|(d, s)| d.device.name() != s.name())
        {
            return Err(SnapshotError::Mismatch(format!(
                "snapshot: {}; bus: {}",
                names(&mut snap.devices.iter().map(|s| s.name())),
                names(&mut self.slots.iter().map(|d| d.device.name()))
            )));
        }
        for ((slot, state), deadline) in self
            .slots
            .iter_mut()
            .zip(&snap.devices)
            .zip(&snap.deadlines)
        {
            slot.device.restore(state)?;
            slot.deadline = *deadline;
        }
        self.pic = snap.pic.clone();
        self.lapic = snap.lapic.clone();
        self.ioapic = snap.ioapic.clone();
        self.irq = snap.irq.clone();
        self.events.clone_from(&snap.events);
        self.clock = snap.clock;
        self.stats = snap.stats.clone();
        self.ports = snap.ports.clone();
        self.mmio = snap.mmio.clone();
        self.pci = snap.pci.clone();
        self.deadline_epoch = self.deadline_epoch.wrapping_add(1);
        Ok(())
    }
}

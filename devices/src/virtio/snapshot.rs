//! virtio devices in machine snapshots: the core's negotiation and queue positions, the
//! transport's registers and the device's own state, each as plain data.
//! Teaches: a paravirtual device's state is small — a status byte, features, and where each
//! ring was read up to; the rings themselves live in guest RAM, which the snapshot has anyway.
//!
//! **Versions.** [`TRANSPORT_SNAPSHOT_VERSION`] covers a transport's snapshot as a whole —
//! [`TransportSnapshot`], [`CoreSnapshot`], `Queue` and `VirtioStats` (and `PciConfig` for
//! virtio-pci) — the version the transport's `DeviceSnapshot` carries. The virtio device's own
//! state is a `DeviceSnapshot` inside the core's, with the device's version (blk, console,
//! rng: 1).
//!
//! A device with host state it cannot copy returns `None` from [`VirtioDevice::snapshot`]
//! (a host entropy source), and so does a disk without an undo journal: the bus then refuses
//! to snapshot, rather than rewind a guest over a device that was not.

use super::{Queue, QueueError, VirtioCore, VirtioStats};
use crate::snapshot::{DeviceSnapshot, SnapshotError};

/// The layout of a virtio transport's snapshot (see the module header): 1.
pub const TRANSPORT_SNAPSHOT_VERSION: u16 = 1;

/// [`VirtioCore`]'s part of a snapshot.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct CoreSnapshot {
    device: DeviceSnapshot,
    status: u8,
    driver_features: u64,
    queues: Vec<Queue>,
    queue_sel: u32,
    isr: u8,
    config_generation: u32,
    last_error: Option<QueueError>,
    stats: VirtioStats,
}

impl CoreSnapshot {
    /// The device's own snapshot (its handles must be kept by the transport's).
    pub(crate) fn device(&self) -> &DeviceSnapshot {
        &self.device
    }
}

impl VirtioCore {
    /// The core and its device as data; `None` if the device cannot be snapshotted.
    pub fn snapshot(&self) -> Option<CoreSnapshot> {
        Some(CoreSnapshot {
            device: self.device.snapshot()?,
            status: self.status,
            driver_features: self.driver_features,
            queues: self.queues.clone(),
            queue_sel: self.queue_sel,
            isr: self.isr,
            config_generation: self.config_generation,
            last_error: self.last_error.clone(),
            stats: self.stats.clone(),
        })
    }

    /// Puts the core and its device back as [`VirtioCore::snapshot`] found them.
    pub fn restore(&mut self, snap: &CoreSnapshot) -> Result<(), SnapshotError> {
        let same_queues = snap.queues.len() == self.queues.len()
            && snap
                .queues
                .iter()
                .zip(&self.queues)
                .all(|(a, b)| a.max_size() == b.max_size());
        if !same_queues {
            return Err(SnapshotError::Mismatch(format!(
                "{}: the snapshot's queues differ from the device's",
                self.device.name()
            )));
        }
        self.device.restore(&snap.device)?;
        self.status = snap.status;
        self.driver_features = snap.driver_features;
        self.queues.clone_from(&snap.queues);
        self.queue_sel = snap.queue_sel;
        self.isr = snap.isr;
        self.config_generation = snap.config_generation;
        self.last_error.clone_from(&snap.last_error);
        self.stats.clone_from(&snap.stats);
        Ok(())
    }
}

/// A transport's registers around its core (virtio-mmio, virtio-pci).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct TransportSnapshot<Extra> {
    pub core: CoreSnapshot,
    pub irq_high: bool,
    pub device_features_sel: u32,
    pub driver_features_sel: u32,
    /// What only this transport has (PCI: its configuration space and counters).
    pub extra: Extra,
}

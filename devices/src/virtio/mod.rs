//! virtio 1.x (OASIS VIRTIO 1.2/1.3): the device side, independent of the transport that carries it.
//! Teaches: status handshake, feature negotiation, queue configuration and reset, kept in one core that any transport drives.
//!
//! A virtio device is four things (spec 2): a *status* byte the driver advances through
//! ACKNOWLEDGE → DRIVER → FEATURES_OK → DRIVER_OK, *feature bits* both sides agree on once,
//! a *configuration space*, and *virtqueues* (see [`queue`]). None of this depends on how the
//! guest reaches the registers, so it lives here in [`VirtioCore`]; a transport only maps its
//! registers onto the core's methods:
//!
//! | virtio-PCI common cfg (4.1.4.3) | virtio-mmio (4.2.2)          | `VirtioCore`                        |
//! |---------------------------------|------------------------------|-------------------------------------|
//! | device_feature_select/feature   | DeviceFeaturesSel/Features   | [`VirtioCore::device_features`]     |
//! | driver_feature_select/feature   | DriverFeaturesSel/Features   | [`VirtioCore::set_driver_features`] |
//! | num_queues                      | (QueueNumMax of each)        | [`VirtioCore::num_queues`]          |
//! | device_status                   | Status                       | [`VirtioCore::set_status`]          |
//! | config_generation               | ConfigGeneration             | [`VirtioCore::config_generation`]   |
//! | queue_select                    | QueueSel                     | [`VirtioCore::select_queue`]        |
//! | queue_size                      | QueueNumMax / QueueNum       | [`VirtioCore::set_queue_size`]      |
//! | queue_enable                    | QueueReady                   | [`VirtioCore::enable_queue`]        |
//! | queue_desc/driver/device        | QueueDesc/Driver/Device Low/High | [`VirtioCore::set_queue_addr`]  |
//! | notify capability               | QueueNotify                  | [`VirtioCore::notify`]              |
//! | ISR capability (read clears)    | InterruptStatus / InterruptACK | [`VirtioCore::isr_read_and_clear`], [`VirtioCore::ack_isr`] |
//! | device cfg capability           | Config (0x100+)              | [`VirtioCore::read_config`]         |
//!
//! What stays in the transport: its select registers for the feature words, the MSI-X
//! vectors (PCI), how an interrupt is signalled (a level on a line for mmio; INTx or an MSI-X
//! message for PCI — [`Interrupts`] says which queues and whether the config vector).
//!
//! Errors: a driver that hands the device a broken ring (spec 2.1.2) gets DEVICE_NEEDS_RESET
//! and a configuration-change interrupt; the core then ignores the device's queues until the
//! driver resets it by writing status 0.

pub mod blk;
pub mod console;
pub mod mmio;
pub mod net;
pub mod queue;
pub mod rng;
pub mod snapshot;

#[cfg(test)]
mod tests;

use std::any::Any;

use crate::bus::Dma;
pub use mmio::{VirtioMmio, MMIO_WINDOW};
pub use queue::{DescChain, Queue, QueueArea, QueueError, Segment};

// ---- device IDs (spec 5) ----
pub const DEVICE_ID_NET: u32 = 1;
pub const DEVICE_ID_BLOCK: u32 = 2;
pub const DEVICE_ID_CONSOLE: u32 = 3;
pub const DEVICE_ID_ENTROPY: u32 = 4;

// ---- device status bits (spec 2.1) ----
pub const STATUS_ACKNOWLEDGE: u8 = 1;
pub const STATUS_DRIVER: u8 = 2;
pub const STATUS_DRIVER_OK: u8 = 4;
pub const STATUS_FEATURES_OK: u8 = 8;
pub const STATUS_NEEDS_RESET: u8 = 64;
pub const STATUS_FAILED: u8 = 128;

// ---- transport / ring feature bits (spec 6) ----
pub const VIRTIO_F_RING_INDIRECT_DESC: u32 = 28;
pub const VIRTIO_F_RING_EVENT_IDX: u32 = 29;
pub const VIRTIO_F_VERSION_1: u32 = 32;
pub const VIRTIO_F_ACCESS_PLATFORM: u32 = 33;
pub const VIRTIO_F_RING_PACKED: u32 = 34;
pub const VIRTIO_F_IN_ORDER: u32 = 35;
pub const VIRTIO_F_NOTIFICATION_DATA: u32 = 38;
pub const VIRTIO_F_RING_RESET: u32 = 40;

/// The bits the core itself implements and always offers, on top of the device's own.
pub const CORE_FEATURES: u64 =
    1 << VIRTIO_F_VERSION_1 | 1 << VIRTIO_F_RING_INDIRECT_DESC | 1 << VIRTIO_F_RING_EVENT_IDX;

// ---- ISR bits (spec 4.1.4.5, 4.2.2 InterruptStatus) ----
/// Used buffer notification: some queue has new used buffers.
pub const ISR_QUEUE: u8 = 1;
/// Configuration change notification (also sent with DEVICE_NEEDS_RESET).
pub const ISR_CONFIG: u8 = 2;

/// A device model (blk, console, rng) as the core sees it: no registers, no transport.
///
/// The core calls [`VirtioDevice::process`] only after DRIVER_OK and only for an enabled
/// queue; the device pops chains ([`Queue::pop`]), does the work and pushes them back
/// ([`Queue::add_used`]). Whether that deserves an interrupt is the core's business (it reads
/// the ring's suppression fields), so a device cannot forget it.
pub trait VirtioDevice: Any {
    /// Device ID: 2 blk, 3 console, 4 rng.
    fn device_type(&self) -> u32;
    /// Short name for statistics ("virtio-blk", …).
    fn name(&self) -> &'static str;
    /// Device-specific feature bits (0–23); the core adds [`CORE_FEATURES`].
    fn features(&self) -> u64;
    fn queue_count(&self) -> usize;
    /// The largest size the driver may choose for queue `q` (a power of two, ≤ 32768).
    fn queue_max_size(&self, q: usize) -> u16;
    /// Reads device configuration space at `offset`; bytes past its end read as 0.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Driver writes to configuration space (most fields are read-only and ignore it).
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}
    /// DRIVER_OK: the driver accepted `negotiated` and its queues are set up.
    fn activate(&mut self, _negotiated: u64) {}
    /// Status 0: back to the state after construction (host-side buffers may stay).
    fn reset(&mut self) {}
    /// The driver notified queue `q`: pop chains, do the work, push them used.
    fn process(&mut self, q: usize, queue: &mut Queue, dma: &mut Dma) -> Result<(), QueueError>;
    /// Host-side work that needs no notification (console input arrived), called from the
    /// transport's tick while the device runs.
    fn poll(&mut self, _queues: &mut [Queue], _dma: &mut Dma) -> Result<(), QueueError> {
        Ok(())
    }
    /// Does the device have host-side work waiting for [`VirtioDevice::poll`]? The transport
    /// then asks the bus for another tick soon.
    fn wants_poll(&self) -> bool {
        false
    }
    /// The device's own state for a machine snapshot (see `snapshot.rs`); `None`: it holds
    /// host state that cannot be copied, and the bus refuses to snapshot.
    fn snapshot(&self) -> Option<crate::snapshot::DeviceSnapshot> {
        None
    }
    /// Puts the device back into a state [`VirtioDevice::snapshot`] returned.
    fn restore(
        &mut self,
        _snap: &crate::snapshot::DeviceSnapshot,
    ) -> Result<(), crate::snapshot::SnapshotError> {
        Err(crate::snapshot::SnapshotError::Unsupported(self.name()))
    }
}

/// Copies `config[offset..]` into `data`, zeros past the end: every device's `read_config`.
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b = offset
            .checked_add(i as u64)
            .and_then(|at| config.get(usize::try_from(at).ok()?))
            .copied()
            .unwrap_or(0);
    }
}

/// Which notifications the device wants sent after an access: used buffers on the queues in
/// `queues` (bit q), a configuration change in `config`. mmio raises its one line for any of
/// them; PCI with MSI-X sends each queue's vector and the config vector.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Interrupts {
    pub queues: u64,
    pub config: bool,
}

impl Interrupts {
    pub fn any(&self) -> bool {
        self.queues != 0 || self.config
    }
}

/// What the core counted. Every transport shares these.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct VirtioStats {
    /// Notifications that reached the device (DRIVER_OK, enabled queue).
    pub notifications: u64,
    /// Notifications dropped: before DRIVER_OK, unknown or disabled queue, after NEEDS_RESET.
    pub notifications_ignored: u64,
    /// Chains the device completed (used ring entries written).
    pub requests: u64,
    /// Used-buffer and configuration-change notifications sent to the driver.
    pub interrupts: u64,
    /// Used-buffer notifications the driver asked us not to send (EVENT_IDX / NO_INTERRUPT).
    pub interrupts_suppressed: u64,
    /// Register writes refused: queue setup while enabled or after DRIVER_OK, features
    /// after FEATURES_OK, a status write clearing bits, a bad queue size.
    pub writes_ignored: u64,
    /// FEATURES_OK refused (driver accepted an unoffered feature or not VERSION_1).
    pub features_refused: u64,
    /// Broken rings or requests that put the device into NEEDS_RESET.
    pub queue_errors: u64,
}

/// The transport-independent state of one virtio device (spec 2 and 3).
pub struct VirtioCore {
    device: Box<dyn VirtioDevice>,
    status: u8,
    driver_features: u64,
    queues: Vec<Queue>,
    queue_sel: u32,
    isr: u8,
    config_generation: u32,
    last_error: Option<QueueError>,
    stats: VirtioStats,
}

impl VirtioCore {
    pub fn new(device: Box<dyn VirtioDevice>) -> Self {
        let queues = (0..device.queue_count())
            .map(|q| Queue::new(device.queue_max_size(q)))
            .collect();
        VirtioCore {
            device,
            status: 0,
            driver_features: 0,
            queues,
            queue_sel: 0,
            isr: 0,
            config_generation: 0,
            last_error: None,
            stats: VirtioStats::default(),
        }
    }

    pub fn device(&self) -> &dyn VirtioDevice {
        &*self.device
    }

    pub fn device_mut(&mut self) -> &mut dyn VirtioDevice {
        &mut *self.device
    }

    /// The device as its concrete type (the console's input and output, tests).
    pub fn device_as<T: VirtioDevice>(&mut self) -> Option<&mut T> {
        (&mut *self.device as &mut dyn Any).downcast_mut::<T>()
    }

    pub fn stats(&self) -> &VirtioStats {
        &self.stats
    }

    /// Why the device went into NEEDS_RESET, until the next reset.
    pub fn last_error(&self) -> Option<&QueueError> {
        self.last_error.as_ref()
    }

    /// Counts a write the transport refused on its own (a read-only register, a bad width).
    /// The core's own setters (`set_driver_features`, `set_queue_size`, `set_queue_addr`,
    /// `enable_queue`, `set_status`) already count the writes they refuse.
    pub fn count_ignored_write(&mut self) {
        self.stats.writes_ignored += 1;
    }

    // ---- features (spec 2.2) ----

    /// Everything offered: the device's bits plus VERSION_1, INDIRECT_DESC, EVENT_IDX.
    pub fn offered_features(&self) -> u64 {
        self.device.features() | CORE_FEATURES
    }

    /// Offered feature word `select` (bits 32·select … 32·select+31).
    pub fn device_features(&self, select: u32) -> u32 {
        word(self.offered_features(), select)
    }

    /// What the driver wrote for word `select` (PCI's driver_feature reads back).
    pub fn driver_features(&self, select: u32) -> u32 {
        word(self.driver_features, select)
    }

    /// Sets driver feature word `select`. Refused once FEATURES_OK is set: the only way to
    /// renegotiate is a reset.
    pub fn set_driver_features(&mut self, select: u32, value: u32) -> bool {
        if self.status & STATUS_FEATURES_OK != 0 || select > 1 {
            self.stats.writes_ignored += 1;
            return false;
        }
        let shift = 32 * select;
        self.driver_features =
            (self.driver_features & !(0xFFFF_FFFFu64 << shift)) | (u64::from(value) << shift);
        true
    }

    /// The agreed features (meaningful once FEATURES_OK is set).
    pub fn negotiated_features(&self) -> u64 {
        self.driver_features & self.offered_features()
    }

    fn features_acceptable(&self) -> bool {
        self.driver_features & !self.offered_features() == 0
            && self.driver_features & 1 << VIRTIO_F_VERSION_1 != 0
    }

    // ---- status (spec 2.1, 3.1) ----

    pub fn status(&self) -> u8 {
        self.status
    }

    pub fn driver_ok(&self) -> bool {
        self.status & STATUS_DRIVER_OK != 0 && self.status & STATUS_NEEDS_RESET == 0
    }

    /// A driver write of the status byte. 0 resets the device. Otherwise bits may only be
    /// added (the driver MUST NOT clear one); FEATURES_OK sticks only if the features the
    /// driver wrote are acceptable, DRIVER_OK only after FEATURES_OK. NEEDS_RESET belongs to
    /// the device: the driver can neither set nor clear it.
    pub fn set_status(&mut self, value: u8) {
        if value == 0 {
            self.reset();
            return;
        }
        let old = self.status;
        let mut new = (value & !STATUS_NEEDS_RESET) | (old & STATUS_NEEDS_RESET);
        if old & !new != 0 {
            self.stats.writes_ignored += 1;
            return;
        }
        if new & STATUS_FEATURES_OK != 0 && old & STATUS_FEATURES_OK == 0 {
            if self.features_acceptable() {
                let f = self.negotiated_features();
                for q in &mut self.queues {
                    q.set_ring_features(
                        f & 1 << VIRTIO_F_RING_INDIRECT_DESC != 0,
                        f & 1 << VIRTIO_F_RING_EVENT_IDX != 0,
                    );
                }
            } else {
                self.stats.features_refused += 1;
                new &= !STATUS_FEATURES_OK;
            }
        }
        if new & STATUS_DRIVER_OK != 0 && old & STATUS_DRIVER_OK == 0 {
            if new & STATUS_FEATURES_OK == 0 {
                self.stats.writes_ignored += 1;
                new &= !STATUS_DRIVER_OK;
            } else {
                self.status = new;
                let f = self.negotiated_features();
                self.device.activate(f);
                return;
            }
        }
        self.status = new;
    }

    /// Device reset (status 0): status, features, every queue, ISR and the device itself.
    pub fn reset(&mut self) {
        self.status = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.isr = 0;
        self.last_error = None;
        for q in &mut self.queues {
            q.reset();
        }
        self.device.reset();
    }

    // ---- queue configuration (spec 4.1.4.3 / 4.2.2) ----

    pub fn num_queues(&self) -> u16 {
        self.queues.len() as u16
    }

    pub fn select_queue(&mut self, q: u32) {
        self.queue_sel = q;
    }

    pub fn selected_queue(&self) -> u32 {
        self.queue_sel
    }

    /// Queue `q`, if the device has it.
    pub fn queue(&self, q: usize) -> Option<&Queue> {
        self.queues.get(q)
    }

    fn selected(&self) -> Option<&Queue> {
        self.queues.get(self.queue_sel as usize)
    }

    /// The selected queue, if it may be reconfigured now: it exists, is not enabled, and the
    /// driver has not yet set DRIVER_OK (we do not offer VIRTIO_F_RING_RESET).
    fn selected_for_setup(&mut self) -> Option<&mut Queue> {
        let driver_ok = self.status & STATUS_DRIVER_OK != 0;
        match self.queues.get_mut(self.queue_sel as usize) {
            Some(q) if !q.ready() && !driver_ok => Some(q),
            _ => {
                self.stats.writes_ignored += 1;
                None
            }
        }
    }

    /// QueueNumMax: 0 when the selected queue does not exist.
    pub fn queue_max_size(&self) -> u16 {
        self.selected().map_or(0, Queue::max_size)
    }

    /// The selected queue's size (PCI reads it back; after reset it is the maximum; 0 after
    /// a refused write, and such a queue cannot be enabled).
    pub fn queue_size(&self) -> u16 {
        self.selected().map_or(0, Queue::size)
    }

    /// Sets the selected queue's size: a power of two, 1 ..= max. Anything else is refused
    /// and leaves the queue unusable until a valid size is written.
    pub fn set_queue_size(&mut self, size: u16) -> bool {
        let Some(q) = self.selected_for_setup() else {
            return false;
        };
        if q.set_size(size) {
            true
        } else {
            self.stats.writes_ignored += 1;
            false
        }
    }

    pub fn queue_addr(&self, area: QueueArea) -> u64 {
        self.selected().map_or(0, |q| q.addr(area))
    }

    /// Sets the guest-physical address of one of the selected queue's three areas.
    pub fn set_queue_addr(&mut self, area: QueueArea, addr: u64) -> bool {
        match self.selected_for_setup() {
            Some(q) => {
                q.set_addr(area, addr);
                true
            }
            None => false,
        }
    }

    pub fn queue_enabled(&self) -> bool {
        self.selected().is_some_and(Queue::ready)
    }

    /// QueueReady = 1 / queue_enable = 1. Refused for a queue whose size was refused.
    pub fn enable_queue(&mut self) -> bool {
        let Some(q) = self.selected_for_setup() else {
            return false;
        };
        if q.set_ready(true) {
            true
        } else {
            self.stats.writes_ignored += 1;
            false
        }
    }

    /// QueueReady = 0 (mmio only: PCI's driver MUST NOT write 0 to queue_enable).
    pub fn disable_queue(&mut self) {
        if let Some(q) = self.queues.get_mut(self.queue_sel as usize) {
            q.set_ready(false);
        }
    }

    // ---- configuration space (spec 2.5) ----

    pub fn config_generation(&self) -> u32 {
        self.config_generation
    }

    pub fn read_config(&self, offset: u64, data: &mut [u8]) {
        self.device.read_config(offset, data);
    }

    pub fn write_config(&mut self, offset: u64, data: &[u8]) {
        self.device.write_config(offset, data);
    }

    /// The host changed the device's configuration (a disk resized): a new generation and,
    /// once the driver runs, a configuration change notification.
    pub fn signal_config_change(&mut self) -> Interrupts {
        self.config_generation = self.config_generation.wrapping_add(1);
        self.raise_config()
    }

    fn raise_config(&mut self) -> Interrupts {
        if self.status & STATUS_DRIVER_OK == 0 {
            return Interrupts::default();
        }
        self.isr |= ISR_CONFIG;
        self.stats.interrupts += 1;
        Interrupts {
            queues: 0,
            config: true,
        }
    }

    // ---- notifications (spec 2.3, 2.7.7) ----

    /// An available buffer notification for queue `q`: the device processes it and the core
    /// says which notifications to send back.
    pub fn notify(&mut self, q: u32, dma: &mut Dma) -> Interrupts {
        let q = q as usize;
        if !self.driver_ok() || !self.queues.get(q).is_some_and(Queue::ready) {
            self.stats.notifications_ignored += 1;
            return Interrupts::default();
        }
        self.stats.notifications += 1;
        let before = self.used_counts();
        let result = self.device.process(q, &mut self.queues[q], dma);
        self.finish(before, result, dma)
    }

    /// Host-side work (console input): called by the transport's tick.
    pub fn poll(&mut self, dma: &mut Dma) -> Interrupts {
        if !self.driver_ok() {
            return Interrupts::default();
        }
        let before = self.used_counts();
        let result = self.device.poll(&mut self.queues, dma);
        self.finish(before, result, dma)
    }

    /// Should the transport arrange another tick soon?
    pub fn wants_poll(&self) -> bool {
        self.driver_ok() && self.device.wants_poll()
    }

    fn used_counts(&self) -> Vec<u16> {
        self.queues.iter().map(Queue::used_idx).collect()
    }

    /// Counts completed requests, then asks each queue with new used entries whether the
    /// driver wants to hear about them; a broken ring puts the device into NEEDS_RESET.
    fn finish(
        &mut self,
        before: Vec<u16>,
        result: Result<(), QueueError>,
        dma: &mut Dma,
    ) -> Interrupts {
        for (q, old) in self.queues.iter().zip(before) {
            self.stats.requests += u64::from(q.used_idx().wrapping_sub(old));
        }
        let mut irq = Interrupts::default();
        let mut result = result;
        for (i, q) in self.queues.iter_mut().enumerate() {
            match q.needs_interrupt(dma) {
                Ok(Some(true)) => irq.queues |= 1 << (i % 64),
                Ok(Some(false)) => self.stats.interrupts_suppressed += 1,
                Ok(None) => {}
                Err(e) => {
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
        }
        if irq.queues != 0 {
            self.isr |= ISR_QUEUE;
            self.stats.interrupts += u64::from(irq.queues.count_ones());
        }
        if let Err(e) = result {
            self.stats.queue_errors += 1;
            self.last_error = Some(e);
            self.status |= STATUS_NEEDS_RESET;
            irq.config = self.raise_config().config;
        }
        irq
    }

    // ---- ISR (spec 4.1.4.5, 4.2.2) ----

    /// InterruptStatus: bit 0 used buffers, bit 1 configuration change.
    pub fn isr(&self) -> u8 {
        self.isr
    }

    /// InterruptACK: the driver handled the events in `mask`.
    pub fn ack_isr(&mut self, mask: u8) {
        self.isr &= !mask;
    }

    /// PCI's ISR status register: reading it returns the bits and clears them.
    pub fn isr_read_and_clear(&mut self) -> u8 {
        std::mem::take(&mut self.isr)
    }
}

fn word(features: u64, select: u32) -> u32 {
    match select {
        0 => features as u32,
        1 => (features >> 32) as u32,
        _ => 0,
    }
}

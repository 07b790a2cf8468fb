//! The virtio-pci transport, modern interface (virtio 1.x spec 4.1): one memory BAR holding the
//! common configuration, ISR, device configuration and notification areas, each found through a
//! vendor-specific PCI capability.
//! Teaches: the same virtio device behind a discoverable bus — the driver finds it by IDs, the
//! capabilities tell it where each register block sits, and a queue notification is one write.
//!
//! Layout of BAR 0 (16 KiB, 32-bit memory):
//!
//! | offset | capability (cfg_type)      | size  | contents                                   |
//! |--------|----------------------------|-------|--------------------------------------------|
//! | 0x0000 | VIRTIO_PCI_CAP_COMMON_CFG 1| 0x38  | features, status, queue setup (spec 4.1.4.3)|
//! | 0x1000 | VIRTIO_PCI_CAP_ISR_CFG 3   | 1     | ISR status: reading returns and clears it  |
//! | 0x2000 | VIRTIO_PCI_CAP_DEVICE_CFG 4| 0x100 | the device's configuration space           |
//! | 0x3000 | VIRTIO_PCI_CAP_NOTIFY_CFG 2| 0x1000| queue q's doorbell at q × 4                |
//!
//! Interrupts are INTx: the line is high while the ISR has bits, and reading the ISR drops it.
//! (MSI-X is not offered, so `config_msix_vector` and `queue_msix_vector` read NO_VECTOR; Linux
//! then uses INTx, as it does on any device without MSI-X.) PCI IDs: vendor 0x1AF4, device
//! 0x1040 + the virtio device type, revision 1 (a modern-only device).

use crate::virtio::snapshot::TransportSnapshot;
use std::any::Any;

use super::config::{BarKind, PciConfig, CAP_VENDOR};
use crate::bus::{BusDevice, DeviceCtx, IrqLine};
use crate::virtio::{QueueArea, VirtioCore, VirtioDevice, VirtioStats};

pub const VIRTIO_PCI_VENDOR: u16 = 0x1AF4;
/// Modern device IDs are 0x1040 + device type.
pub const VIRTIO_PCI_DEVICE_BASE: u16 = 0x1040;
pub const BAR_SIZE: u32 = 0x4000;
pub const COMMON_OFFSET: u64 = 0x0000;
pub const COMMON_LEN: u64 = 0x38;
pub const ISR_OFFSET: u64 = 0x1000;
pub const DEVICE_OFFSET: u64 = 0x2000;
pub const DEVICE_LEN: u64 = 0x100;
pub const NOTIFY_OFFSET: u64 = 0x3000;
pub const NOTIFY_LEN: u64 = 0x1000;
pub const NOTIFY_OFF_MULTIPLIER: u32 = 4;
/// "No MSI-X vector".
pub const NO_VECTOR: u16 = 0xFFFF;

/// Capability cfg_type values.
pub mod cap {
    pub const COMMON_CFG: u8 = 1;
    pub const NOTIFY_CFG: u8 = 2;
    pub const ISR_CFG: u8 = 3;
    pub const DEVICE_CFG: u8 = 4;
}

/// Offsets in the common configuration structure.
pub mod common {
    pub const DEVICE_FEATURE_SELECT: u64 = 0x00;
    pub const DEVICE_FEATURE: u64 = 0x04;
    pub const DRIVER_FEATURE_SELECT: u64 = 0x08;
    pub const DRIVER_FEATURE: u64 = 0x0C;
    pub const CONFIG_MSIX_VECTOR: u64 = 0x10;
    pub const NUM_QUEUES: u64 = 0x12;
    pub const DEVICE_STATUS: u64 = 0x14;
    pub const CONFIG_GENERATION: u64 = 0x15;
    pub const QUEUE_SELECT: u64 = 0x16;
    pub const QUEUE_SIZE: u64 = 0x18;
    pub const QUEUE_MSIX_VECTOR: u64 = 0x1A;
    pub const QUEUE_ENABLE: u64 = 0x1C;
    pub const QUEUE_NOTIFY_OFF: u64 = 0x1E;
    pub const QUEUE_DESC: u64 = 0x20;
    pub const QUEUE_DRIVER: u64 = 0x28;
    pub const QUEUE_DEVICE: u64 = 0x30;
}

/// PCI class code for each device type (what `lspci` shows).
fn class_code(device_type: u32) -> u32 {
    match device_type {
        1 => 0x02_00_00, // network controller, Ethernet (QEMU's too; lspci: "Ethernet controller")
        2 => 0x01_80_00, // mass storage, other
        3 => 0x07_80_00, // communication, other
        // Everything else as QEMU shows it: class 0 "unclassified", subclass 0xFF "other"
        // (lspci: "Unclassified device [00ff]"; class 0xFF would mean "no class at all").
        _ => 0x00_FF_00,
    }
}

/// A virtio device behind the PCI transport.
pub struct VirtioPci {
    core: VirtioCore,
    config: PciConfig,
    irq: IrqLine,
    irq_high: bool,
    device_features_sel: u32,
    driver_features_sel: u32,
    /// Accesses the layout does not define (wrong width, gaps), ignored.
    pub bad_accesses: u64,
}

impl VirtioPci {
    /// The device in `slot`; `irq` is the INTx line the board wired its pin A to.
    pub fn new(device: Box<dyn VirtioDevice>, irq: IrqLine) -> Self {
        let kind = device.device_type();
        let mut config = PciConfig::new(
            VIRTIO_PCI_VENDOR,
            VIRTIO_PCI_DEVICE_BASE + kind as u16,
            class_code(kind),
            1,
        );
        config.set_subsystem(VIRTIO_PCI_VENDOR, 0x40 + kind as u16);
        config.set_bar(
            0,
            BarKind::Mem32 {
                size: BAR_SIZE,
                prefetchable: false,
            },
        );
        config.set_interrupt(1, irq.number());
        // ANCHOR: virtio_pci_caps
        let caps = [
            (cap::COMMON_CFG, COMMON_OFFSET, COMMON_LEN),
            (cap::NOTIFY_CFG, NOTIFY_OFFSET, NOTIFY_LEN),
            (cap::ISR_CFG, ISR_OFFSET, 1),
            (cap::DEVICE_CFG, DEVICE_OFFSET, DEVICE_LEN),
        ];
        for (cfg_type, offset, len) in caps {
            // struct virtio_pci_cap after id/next: cap_len, cfg_type, bar, id, padding[2],
            // offset, length; the notify capability adds notify_off_multiplier.
            let mut body = vec![0u8; 14];
            body[0] = if cfg_type == cap::NOTIFY_CFG { 20 } else { 16 };
            body[1] = cfg_type;
            body[2] = 0; // BAR 0
            body[6..10].copy_from_slice(&(offset as u32).to_le_bytes());
            body[10..14].copy_from_slice(&(len as u32).to_le_bytes());
            if cfg_type == cap::NOTIFY_CFG {
                body.extend_from_slice(&NOTIFY_OFF_MULTIPLIER.to_le_bytes());
            }
            let writable = vec![0u8; body.len()];
            config.add_capability(CAP_VENDOR, &body, &writable);
        }
        // ANCHOR_END: virtio_pci_caps
        VirtioPci {
            core: VirtioCore::new(device),
            config,
            irq,
            irq_high: false,
            device_features_sel: 0,
            driver_features_sel: 0,
            bad_accesses: 0,
        }
    }

    pub fn core(&self) -> &VirtioCore {
        &self.core
    }

    pub fn core_mut(&mut self) -> &mut VirtioCore {
        &mut self.core
    }

    pub fn device_as<T: VirtioDevice>(&mut self) -> Option<&mut T> {
        self.core.device_as::<T>()
    }

    pub fn stats(&self) -> &VirtioStats {
        self.core.stats()
    }

    /// Places BAR 0 and enables memory decoding and bus mastering, as firmware would.
    pub fn place(mut self, bar0: u64) -> Self {
        self.config.place_bar(0, bar0);
        let cmd = super::config::command::MEMORY | super::config::command::BUS_MASTER;
        self.config
            .write(super::config::reg::COMMAND, 2, cmd as u32);
        self
    }

    fn sync_irq(&mut self, ctx: &mut DeviceCtx) {
        let high = self.core.isr() != 0;
        if high != self.irq_high {
            self.irq_high = high;
            super::signal_interrupt(&mut self.config, self.irq, high, high, ctx);
        }
    }

    fn common_read(&mut self, offset: u64, size: u8) -> u64 {
        use common::*;
        let core = &self.core;
        let (field, width): (u64, u8) = match offset {
            DEVICE_FEATURE_SELECT => (self.device_features_sel as u64, 4),
            DEVICE_FEATURE => (core.device_features(self.device_features_sel) as u64, 4),
            DRIVER_FEATURE_SELECT => (self.driver_features_sel as u64, 4),
            DRIVER_FEATURE => (core.driver_features(self.driver_features_sel) as u64, 4),
            CONFIG_MSIX_VECTOR | QUEUE_MSIX_VECTOR => (NO_VECTOR as u64, 2),
            NUM_QUEUES => (core.num_queues() as u64, 2),
            DEVICE_STATUS => (core.status() as u64, 1),
            CONFIG_GENERATION => (core.config_generation() as u8 as u64, 1),
            QUEUE_SELECT => (core.selected_queue() as u64, 2),
            QUEUE_SIZE => (core.queue_size() as u64, 2),
            QUEUE_ENABLE => (core.queue_enabled() as u64, 2),
            // Queue q's doorbell is at NOTIFY_OFFSET + q × multiplier.
            QUEUE_NOTIFY_OFF => (core.selected_queue() as u64 & 0xFFFF, 2),
            QUEUE_DESC | QUEUE_DRIVER | QUEUE_DEVICE => (core.queue_addr(area(offset)), 8),
            o if o >= 4
                && [QUEUE_DESC, QUEUE_DRIVER, QUEUE_DEVICE].contains(&(o - 4))
                && size == 4 =>
            {
                return core.queue_addr(area(o - 4)) >> 32;
            }
            _ => {
                self.bad_accesses += 1;
                return 0;
            }
        };
        if size > width {
            self.bad_accesses += 1;
        }
        field & crate::bus::open_bus(size.min(width))
    }

    fn common_write(&mut self, offset: u64, size: u8, value: u64, ctx: &mut DeviceCtx) {
        use common::*;
        let v32 = value as u32;
        match (offset, size) {
            (DEVICE_FEATURE_SELECT, 4) => self.device_features_sel = v32,
            (DRIVER_FEATURE_SELECT, 4) => self.driver_features_sel = v32,
            (DRIVER_FEATURE, 4) => {
                self.core.set_driver_features(self.driver_features_sel, v32); // refusals are counted by the core
            }
            // No MSI-X: vector writes are accepted and read back as NO_VECTOR.
            (CONFIG_MSIX_VECTOR | QUEUE_MSIX_VECTOR, 2) => {}
            (DEVICE_STATUS, 1) => {
                self.core.set_status(value as u8);
                if value as u8 == 0 {
                    self.device_features_sel = 0;
                    self.driver_features_sel = 0;
                }
                self.sync_irq(ctx);
            }
            (QUEUE_SELECT, 2) => self.core.select_queue(v32),
            (QUEUE_SIZE, 2) => {
                self.core.set_queue_size(value as u16); // refusals are counted by the core
            }
            (QUEUE_ENABLE, 2) => {
                if value == 1 {
                    self.core.enable_queue(); // refusals are counted by the core
                } else {
                    // The spec forbids writing 0; a driver resets the device instead.
                    self.core.count_ignored_write();
                }
            }
            (QUEUE_DESC | QUEUE_DRIVER | QUEUE_DEVICE, 8) => {
                self.core.set_queue_addr(area(offset), value); // refusals are counted by the core
            }
            (o, 4) if [QUEUE_DESC, QUEUE_DRIVER, QUEUE_DEVICE].contains(&(o & !7)) => {
                let a = area(o & !7);
                let old = self.core.queue_addr(a);
                let new = if o & 4 == 0 {
                    (old & !0xFFFF_FFFF) | v32 as u64
                } else {
                    (old & 0xFFFF_FFFF) | (v32 as u64) << 32
                };
                self.core.set_queue_addr(a, new); // refusals are counted by the core
            }
            _ => self.bad_accesses += 1,
        }
    }
}

fn area(offset: u64) -> QueueArea {
    match offset {
        common::QUEUE_DESC => QueueArea::Descriptors,
        common::QUEUE_DRIVER => QueueArea::Driver,
        _ => QueueArea::Device,
    }
}

impl BusDevice for VirtioPci {
    fn name(&self) -> &'static str {
        self.core.device().name()
    }

    fn pci_config(&mut self) -> Option<&mut PciConfig> {
        Some(&mut self.config)
    }

    fn pci_config_written(&mut self, _offset: usize, ctx: &mut DeviceCtx) {
        // INTx disable may have changed: re-drive the line.
        let high = self.irq_high;
        super::signal_interrupt(&mut self.config, self.irq, high, false, ctx);
    }

    fn bar_read(&mut self, bar: u8, offset: u64, size: u8, _ctx: &mut DeviceCtx) -> u64 {
        if bar != 0 {
            return crate::bus::open_bus(size);
        }
        match offset {
            o if o < COMMON_LEN => self.common_read(o, size),
            ISR_OFFSET => {
                let isr = self.core.isr_read_and_clear();
                // Reading the ISR deasserts INTx (spec 4.1.4.5.1); done in the tick below.
                isr as u64
            }
            o if (DEVICE_OFFSET..DEVICE_OFFSET + DEVICE_LEN).contains(&o) => {
                let mut b = [0u8; 8];
                let n = (size as usize).min(8);
                self.core.read_config(o - DEVICE_OFFSET, &mut b[..n]);
                u64::from_le_bytes(b)
            }
            _ => {
                self.bad_accesses += 1;
                0
            }
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, size: u8, value: u64, ctx: &mut DeviceCtx) {
        if bar != 0 {
            return;
        }
        match offset {
            o if o < COMMON_LEN => self.common_write(o, size, value, ctx),
            o if (DEVICE_OFFSET..DEVICE_OFFSET + DEVICE_LEN).contains(&o) => {
                let n = (size as usize).min(8);
                self.core
                    .write_config(o - DEVICE_OFFSET, &value.to_le_bytes()[..n]);
            }
            // ANCHOR: doorbell
            o if (NOTIFY_OFFSET..NOTIFY_OFFSET + NOTIFY_LEN).contains(&o) => {
                // The doorbell: the written value is the queue index (without
                // VIRTIO_F_NOTIFICATION_DATA); the address says which queue too.
                let q = ((o - NOTIFY_OFFSET) / NOTIFY_OFF_MULTIPLIER as u64) as u32;
                if !self.config.bus_master() {
                    // A device may not DMA while bus mastering is off.
                    self.core.count_ignored_write();
                    return;
                }
                let _ = value;
                self.core.notify(q, &mut ctx.dma);
            }
            // ANCHOR_END: doorbell
            _ => self.bad_accesses += 1,
        }
        self.sync_irq(ctx);
    }

    /// Called after every access: the ISR read above, console input, the line's level.
    fn tick(&mut self, ctx: &mut DeviceCtx) -> Option<u64> {
        if self.config.bus_master() {
            self.core.poll(&mut ctx.dma);
        }
        self.sync_irq(ctx);
        self.core.wants_poll().then(|| {
            ctx.now_ns
                .saturating_add(crate::virtio::mmio::POLL_INTERVAL_NS)
        })
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn snapshot(&self) -> Option<crate::snapshot::DeviceSnapshot> {
        let state = TransportSnapshot {
            core: self.core.snapshot()?,
            irq_high: self.irq_high,
            device_features_sel: self.device_features_sel,
            driver_features_sel: self.driver_features_sel,
            extra: (self.config.clone(), self.bad_accesses),
        };
        Some(
            crate::snapshot::DeviceSnapshot::of(
                self.name(),
                crate::virtio::snapshot::TRANSPORT_SNAPSHOT_VERSION,
                &state,
            )
            .holding_those_of(state.core.device()),
        )
    }

    fn restore(
        &mut self,
        snap: &crate::snapshot::DeviceSnapshot,
    ) -> Result<(), crate::snapshot::SnapshotError> {
        let state: TransportSnapshot<(PciConfig, u64)> = snap.get(
            self.name(),
            crate::virtio::snapshot::TRANSPORT_SNAPSHOT_VERSION,
        )?;
        self.core.restore(&state.core)?;
        self.irq_high = state.irq_high;
        self.device_features_sel = state.device_features_sel;
        self.driver_features_sel = state.driver_features_sel;
        (self.config, self.bad_accesses) = state.extra;
        Ok(())
    }
}

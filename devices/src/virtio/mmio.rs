//! The virtio-mmio transport, version 2 (spec 4.2): a 0x200-byte register window and one interrupt line.
//! Teaches: how little a transport is — registers mapped onto the shared core, plus an interrupt level held while InterruptStatus ≠ 0.
//!
//! Register map (all 32-bit, little-endian; offsets from the window's base):
//!
//! | offset | name                        | dir | here                                   |
//! |--------|-----------------------------|-----|----------------------------------------|
//! | 0x000  | MagicValue                  | R   | 0x74726976 ("virt")                    |
//! | 0x004  | Version                     | R   | 2 (1 was the legacy, page-based layout)|
//! | 0x008  | DeviceID                    | R   | the device's type                      |
//! | 0x00c  | VendorID                    | R   | [`VENDOR_ID`], "vmsc"                  |
//! | 0x010  | DeviceFeatures              | R   | word DeviceFeaturesSel of the offer    |
//! | 0x014  | DeviceFeaturesSel           | W   |                                        |
//! | 0x020  | DriverFeatures              | W   | word DriverFeaturesSel                 |
//! | 0x024  | DriverFeaturesSel           | W   |                                        |
//! | 0x030  | QueueSel                    | W   |                                        |
//! | 0x034  | QueueNumMax                 | R   | 0: no such queue                       |
//! | 0x038  | QueueNum                    | W   | power of two ≤ QueueNumMax             |
//! | 0x044  | QueueReady                  | RW  |                                        |
//! | 0x050  | QueueNotify                 | W   | queue index                            |
//! | 0x060  | InterruptStatus             | R   | bit 0 used buffers, bit 1 config change|
//! | 0x064  | InterruptACK                | W   |                                        |
//! | 0x070  | Status                      | RW  | 0 resets                               |
//! | 0x080/4| QueueDescLow/High           | W   |                                        |
//! | 0x090/4| QueueDriverLow/High         | W   |                                        |
//! | 0x0a0/4| QueueDeviceLow/High         | W   |                                        |
//! | 0x0ac  | SHMSel                      | W   | no shared memory regions:              |
//! | 0x0b0/4| SHMLenLow/High              | R   | length reads as -1                     |
//! | 0x0b8/c| SHMBaseLow/High             | R   | base reads as all ones                 |
//! | 0x0c0  | QueueReset                  | RW  | 0 (VIRTIO_F_RING_RESET not offered)    |
//! | 0x0fc  | ConfigGeneration            | R   |                                        |
//! | 0x100+ | Config                      | RW  | device configuration, any width        |
//!
//! Guests find the device from the board (a device-tree node or Linux's
//! `virtio_mmio.device=0x200@0xd0000000:5` command line); mmio has no discovery of its own.

use super::snapshot::TransportSnapshot;
use std::any::Any;

use super::{QueueArea, VirtioCore, VirtioDevice, VirtioStats};
use crate::bus::{BusDevice, DeviceCtx, IrqLine};

/// Size of the register window (spec 4.2.1's example: `reg = <0x1e000 0x200>`).
pub const MMIO_WINDOW: u64 = 0x200;
/// "virt" as a little-endian u32.
pub const MMIO_MAGIC: u32 = 0x7472_6976;
/// Version 2: the virtio 1.x register layout.
pub const MMIO_VERSION: u32 = 2;
/// Our VendorID: "vmsc" read as a little-endian u32. Drivers match on DeviceID only (Linux's
/// virtio id tables use VIRTIO_DEV_ANY_ID for the vendor), so it need not be QEMU's
/// 0x554D4551; it names who made the device, and that is not QEMU.
pub const VENDOR_ID: u32 = u32::from_le_bytes(*b"vmsc");
/// How soon a tick comes back while the device has host-side work (console input waiting
/// for receive buffers): 1 ms of guest time.
pub const POLL_INTERVAL_NS: u64 = 1_000_000;

pub const REG_MAGIC: u64 = 0x000;
pub const REG_VERSION: u64 = 0x004;
pub const REG_DEVICE_ID: u64 = 0x008;
pub const REG_VENDOR_ID: u64 = 0x00c;
pub const REG_DEVICE_FEATURES: u64 = 0x010;
pub const REG_DEVICE_FEATURES_SEL: u64 = 0x014;
pub const REG_DRIVER_FEATURES: u64 = 0x020;
pub const REG_DRIVER_FEATURES_SEL: u64 = 0x024;
pub const REG_QUEUE_SEL: u64 = 0x030;
pub const REG_QUEUE_NUM_MAX: u64 = 0x034;
pub const REG_QUEUE_NUM: u64 = 0x038;
pub const REG_QUEUE_READY: u64 = 0x044;
pub const REG_QUEUE_NOTIFY: u64 = 0x050;
pub const REG_INTERRUPT_STATUS: u64 = 0x060;
pub const REG_INTERRUPT_ACK: u64 = 0x064;
pub const REG_STATUS: u64 = 0x070;
pub const REG_QUEUE_DESC_LOW: u64 = 0x080;
pub const REG_QUEUE_DESC_HIGH: u64 = 0x084;
pub const REG_QUEUE_DRIVER_LOW: u64 = 0x090;
pub const REG_QUEUE_DRIVER_HIGH: u64 = 0x094;
pub const REG_QUEUE_DEVICE_LOW: u64 = 0x0a0;
pub const REG_QUEUE_DEVICE_HIGH: u64 = 0x0a4;
pub const REG_SHM_SEL: u64 = 0x0ac;
pub const REG_SHM_LEN_LOW: u64 = 0x0b0;
pub const REG_SHM_LEN_HIGH: u64 = 0x0b4;
pub const REG_SHM_BASE_LOW: u64 = 0x0b8;
pub const REG_SHM_BASE_HIGH: u64 = 0x0bc;
pub const REG_QUEUE_RESET: u64 = 0x0c0;
pub const REG_CONFIG_GENERATION: u64 = 0x0fc;
pub const REG_CONFIG: u64 = 0x100;

/// A virtio device behind the mmio transport.
pub struct VirtioMmio {
    core: VirtioCore,
    irq: IrqLine,
    /// Is our interrupt output high (InterruptStatus ≠ 0 as of the last access)?
    irq_high: bool,
    device_features_sel: u32,
    driver_features_sel: u32,
}

impl VirtioMmio {
    /// `device` behind a register window, interrupting on `irq` (level-triggered).
    pub fn new(device: Box<dyn VirtioDevice>, irq: IrqLine) -> Self {
        VirtioMmio {
            core: VirtioCore::new(device),
            irq,
            irq_high: false,
            device_features_sel: 0,
            driver_features_sel: 0,
        }
    }

    pub fn core(&self) -> &VirtioCore {
        &self.core
    }

    pub fn core_mut(&mut self) -> &mut VirtioCore {
        &mut self.core
    }

    /// The device as its concrete type (console input/output, tests).
    pub fn device_as<T: VirtioDevice>(&mut self) -> Option<&mut T> {
        self.core.device_as::<T>()
    }

    pub fn stats(&self) -> &VirtioStats {
        self.core.stats()
    }

    pub fn irq(&self) -> IrqLine {
        self.irq
    }

    fn read_reg(&mut self, offset: u64) -> u32 {
        let core = &self.core;
        match offset {
            REG_MAGIC => MMIO_MAGIC,
            REG_VERSION => MMIO_VERSION,
            REG_DEVICE_ID => core.device().device_type(),
            REG_VENDOR_ID => VENDOR_ID,
            REG_DEVICE_FEATURES => core.device_features(self.device_features_sel),
            REG_QUEUE_NUM_MAX => u32::from(core.queue_max_size()),
            REG_QUEUE_READY => u32::from(core.queue_enabled()),
            REG_INTERRUPT_STATUS => u32::from(core.isr()),
            REG_STATUS => u32::from(core.status()),
            // No shared memory regions: a length of -1 and an all-ones base (4.2.2).
            REG_SHM_LEN_LOW | REG_SHM_LEN_HIGH | REG_SHM_BASE_LOW | REG_SHM_BASE_HIGH => u32::MAX,
            REG_CONFIG_GENERATION => core.config_generation(),
            // Write-only registers and holes read as 0 (the driver MUST NOT read them).
            _ => 0,
        }
    }

    fn write_reg(&mut self, offset: u64, value: u32, ctx: &mut DeviceCtx) {
        let core = &mut self.core;
        match offset {
            REG_DEVICE_FEATURES_SEL => self.device_features_sel = value,
            REG_DRIVER_FEATURES => {
                core.set_driver_features(self.driver_features_sel, value);
            }
            REG_DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            REG_QUEUE_SEL => core.select_queue(value),
            REG_QUEUE_NUM => {
                core.set_queue_size(u16::try_from(value).unwrap_or(0));
            }
            REG_QUEUE_READY => {
                if value & 1 != 0 {
                    core.enable_queue();
                } else {
                    core.disable_queue();
                }
            }
            REG_QUEUE_NOTIFY => {
                // Without VIRTIO_F_NOTIFICATION_DATA the value is the queue index.
                core.notify(value & 0xFFFF, &mut ctx.dma);
            }
            REG_INTERRUPT_ACK => core.ack_isr(value as u8),
            REG_STATUS => core.set_status(value as u8),
            REG_QUEUE_DESC_LOW | REG_QUEUE_DESC_HIGH => {
                set_half(core, QueueArea::Descriptors, offset, value)
            }
            REG_QUEUE_DRIVER_LOW | REG_QUEUE_DRIVER_HIGH => {
                set_half(core, QueueArea::Driver, offset, value)
            }
            REG_QUEUE_DEVICE_LOW | REG_QUEUE_DEVICE_HIGH => {
                set_half(core, QueueArea::Device, offset, value)
            }
            // Selecting a shared memory region that does not exist is harmless; a queue
            // reset without VIRTIO_F_RING_RESET means nothing.
            REG_SHM_SEL | REG_QUEUE_RESET => {}
            _ => core.count_ignored_write(),
        }
    }

    /// Drives the line to match InterruptStatus: high while any bit is set.
    fn sync_irq(&mut self, ctx: &mut DeviceCtx) {
        let high = self.core.isr() != 0;
        if high != self.irq_high {
            self.irq_high = high;
            ctx.set_irq_level(self.irq, high);
        }
    }
}

/// Replaces the low or high half of one of the selected queue's addresses.
fn set_half(core: &mut VirtioCore, area: QueueArea, offset: u64, value: u32) {
    let old = core.queue_addr(area);
    let new = if offset & 4 == 0 {
        (old & !0xFFFF_FFFF) | u64::from(value)
    } else {
        (old & 0xFFFF_FFFF) | u64::from(value) << 32
    };
    core.set_queue_addr(area, new);
}

impl BusDevice for VirtioMmio {
    fn name(&self) -> &'static str {
        self.core.device().name()
    }

    fn mmio_read(&mut self, offset: u64, size: u8, _ctx: &mut DeviceCtx) -> u64 {
        if offset >= REG_CONFIG {
            let mut b = [0u8; 8];
            let n = usize::from(size.clamp(1, 8));
            self.core.read_config(offset - REG_CONFIG, &mut b[..n]);
            return u64::from_le_bytes(b);
        }
        // Control registers are 32 bits wide and aligned (4.2.2.2); anything else reads 0.
        if size != 4 || !offset.is_multiple_of(4) {
            return 0;
        }
        u64::from(self.read_reg(offset))
    }

    fn mmio_write(&mut self, offset: u64, size: u8, value: u64, ctx: &mut DeviceCtx) {
        if offset >= REG_CONFIG {
            let n = usize::from(size.clamp(1, 8));
            self.core
                .write_config(offset - REG_CONFIG, &value.to_le_bytes()[..n]);
        } else if size != 4 || !offset.is_multiple_of(4) {
            self.core.count_ignored_write();
        } else {
            self.write_reg(offset, value as u32, ctx);
        }
        self.sync_irq(ctx);
    }

    /// Delivers host-side work (console input) and keeps the line in step with the ISR.
    fn tick(&mut self, ctx: &mut DeviceCtx) -> Option<u64> {
        self.core.poll(&mut ctx.dma);
        self.sync_irq(ctx);
        self.core
            .wants_poll()
            .then(|| ctx.now_ns.saturating_add(POLL_INTERVAL_NS))
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
            extra: (),
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
        let state: TransportSnapshot<()> = snap.get(
            self.name(),
            crate::virtio::snapshot::TRANSPORT_SNAPSHOT_VERSION,
        )?;
        self.core.restore(&state.core)?;
        self.irq_high = state.irq_high;
        self.device_features_sel = state.device_features_sel;
        self.driver_features_sel = state.driver_features_sel;
        Ok(())
    }
}

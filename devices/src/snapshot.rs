//! Device snapshots: every device's state copied out as plain data, and copied back in.
//! Teaches: what "the state of a machine" means beyond CPU and RAM — latches, FIFOs, counters,
//! pending interrupt lines and the clock they all read — and that restoring it is just data.
//!
//! A [`DeviceSnapshot`] holds one value of the device's own state type: a clone of the device
//! struct itself where that struct is already plain data (PIT, CMOS, i8042, PM timer, fw_cfg,
//! debug ports, null device), or a dedicated state struct where the device holds host objects
//! (the UART: `uart::UartState`). The value is stored type-erased (`Box<dyn Any>`) so the bus
//! can keep a list of them; it never refers to a live device. [`BusSnapshot`] adds what the bus
//! itself owns: the PIC pair, local APIC (with its timer), IOAPIC, the ISA interrupt lines,
//! device requests not yet handled, each device's next deadline, the virtual clock and the I/O
//! statistics.
//!
//! Restoring needs a bus of the same shape (the same devices registered in the same order, as
//! `Bus::new_pc` builds it); a mismatch is a [`SnapshotError`], never a panic. Devices from
//! outside this crate that do not implement snapshots make [`crate::Bus::snapshot`] fail with
//! [`SnapshotError::Unsupported`] rather than silently leave their state out.

use std::any::Any;

use crate::bus::{IoStats, IrqLines, MachineEvent};
use crate::clock::VirtualClock;
use crate::ioapic::IoApic;
use crate::lapic::LocalApic;
use crate::pic::PicPair;

/// Why a snapshot could not be taken or restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// device {0} cannot be snapshotted
    #[error("device {0} cannot be snapshotted")]
    Unsupported(&'static str),
    /// the snapshot was taken on a bus with other devices ({0})
    #[error("the snapshot was taken on a bus with other devices ({0})")]
    Mismatch(String),
    /// device {device}: {detail}
    #[error("device {device}: {detail}")]
    BadState {
        device: &'static str,
        detail: String,
    },
}

/// One device's state: a value of the device's own state type.
pub struct DeviceSnapshot {
    /// The device's name (as in statistics), checked on restore.
    pub name: &'static str,
    state: Box<dyn Any>,
}

impl std::fmt::Debug for DeviceSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceSnapshot({})", self.name)
    }
}

impl DeviceSnapshot {
    /// Wraps a device's state value.
    pub fn of<T: Any>(name: &'static str, state: T) -> Self {
        DeviceSnapshot {
            name,
            state: Box::new(state),
        }
    }

    /// The state value, if this snapshot holds a `T` taken from a device called `name`.
    pub fn get<T: Any>(&self, name: &'static str) -> Result<&T, SnapshotError> {
        if self.name != name {
            return Err(SnapshotError::Mismatch(format!(
                "expected {name}, found {}",
                self.name
            )));
        }
        self.state
            .downcast_ref::<T>()
            .ok_or_else(|| SnapshotError::Mismatch(format!("{name}: state of another type")))
    }
}

/// For devices whose struct is plain data: the snapshot is a clone of the device.
pub(crate) fn snapshot_clone<T: Any + Clone>(name: &'static str, device: &T) -> DeviceSnapshot {
    DeviceSnapshot::of(name, device.clone())
}

/// The restore matching [`snapshot_clone`].
pub(crate) fn restore_clone<T: Any + Clone>(
    name: &'static str,
    device: &mut T,
    snap: &DeviceSnapshot,
) -> Result<(), SnapshotError> {
    *device = snap.get::<T>(name)?.clone();
    Ok(())
}

/// Everything the bus holds that changes while a guest runs.
#[derive(Debug)]
pub struct BusSnapshot {
    pub(crate) devices: Vec<DeviceSnapshot>,
    pub(crate) deadlines: Vec<Option<u64>>,
    pub(crate) pic: PicPair,
    pub(crate) lapic: LocalApic,
    pub(crate) ioapic: IoApic,
    pub(crate) irq: IrqLines,
    pub(crate) events: Vec<MachineEvent>,
    pub(crate) clock: VirtualClock,
    pub(crate) stats: IoStats,
    /// The address maps (PCI BARs move them while a guest runs) and the PCI host's state.
    pub(crate) ports: crate::bus::AddressMap<u16, crate::bus::Target>,
    pub(crate) mmio: crate::bus::AddressMap<u64, crate::bus::MmioOwner>,
    pub(crate) pci: crate::pci::PciHost,
}

impl BusSnapshot {
    /// Guest time when the snapshot was taken.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }
}

/// Implements [`crate::BusDevice::snapshot`] and `restore` for a device whose struct is plain
/// data (`Clone`, no host objects): the snapshot is a clone of the device.
macro_rules! plain_data_snapshot {
    () => {
        fn snapshot(&self) -> Option<$crate::snapshot::DeviceSnapshot> {
            Some($crate::snapshot::snapshot_clone(self.name(), self))
        }

        fn restore(
            &mut self,
            snap: &$crate::snapshot::DeviceSnapshot,
        ) -> Result<(), $crate::snapshot::SnapshotError> {
            $crate::snapshot::restore_clone(self.name(), self, snap)
        }
    };
}
pub(crate) use plain_data_snapshot;

#[cfg(test)]
mod tests {
    use crate::uart::Uart;
    use crate::{Bus, BusDevice, PcPlatformConfig, SnapshotError};

    #[test]
    fn a_restored_bus_answers_like_the_original() {
        let mut bus = Bus::new_pc(PcPlatformConfig::default());
        bus.io_out(0x3F8 + 3, 1, 0x03); // UART: 8N1
        bus.io_out(0x3F8 + 1, 1, 0x01); // received-data interrupt on
        bus.send_serial_input(b"typed");
        bus.io_out(0x70, 1, 0x0A); // CMOS index register A
        bus.io_out(0x43, 1, 0x34); // PIT counter 0, mode 2
        bus.io_out(0x40, 1, 0x9C);
        bus.io_out(0x40, 1, 0x2E);
        bus.io_out(0x510, 2, 0x0000); // fw_cfg: the signature, one byte read
        let _ = bus.io_in(0x511, 1);
        bus.advance_time(3_000_000);
        let snap = bus.snapshot().unwrap();
        let read_all = |bus: &mut Bus| {
            let mut v: Vec<u32> = (0..5).map(|_| bus.io_in(0x3F8, 1)).collect();
            v.extend((0..3).map(|_| bus.io_in(0x511, 1)));
            v.push(bus.io_in(0x71, 1));
            bus.advance_time(9_000_000);
            v.push(bus.io_in(0x40, 1));
            v.push(u32::from(bus.interrupt_pending()));
            v
        };
        let first = read_all(&mut bus);
        assert_eq!(&first[..5], b"typed".map(u32::from));
        assert_eq!(&first[5..8], b"EMU".map(u32::from));

        let mut other = Bus::new_pc(PcPlatformConfig::default());
        other.restore(&snap).unwrap();
        assert_eq!(read_all(&mut other), first);
        bus.restore(&snap).unwrap();
        assert_eq!(read_all(&mut bus), first);
    }

    #[test]
    fn a_device_without_snapshots_is_reported_not_skipped() {
        struct Opaque;
        impl BusDevice for Opaque {
            fn name(&self) -> &'static str {
                "opaque"
            }
            fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
                self
            }
        }
        let mut bus = Bus::new();
        bus.add_pio_device(Box::new(Uart::new()), &[(0x3F8, 0x3FF)])
            .unwrap();
        bus.add_pio_device(Box::new(Opaque), &[(0x300, 0x300)])
            .unwrap();
        assert_eq!(
            bus.snapshot().unwrap_err(),
            SnapshotError::Unsupported("opaque")
        );
        let snap = Bus::new_pc(PcPlatformConfig::default()).snapshot().unwrap();
        assert!(matches!(
            bus.restore(&snap),
            Err(SnapshotError::Mismatch(_))
        ));
    }
}

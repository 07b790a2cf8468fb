//! Device snapshots: every device's state written down as plain, versioned data, and read back.
//! Teaches: what "the state of a machine" means beyond CPU and RAM — latches, FIFOs, counters,
//! pending interrupt lines and the clock they all read — and that restoring it is just data.
//!
//! A [`DeviceSnapshot`] holds one value of the device's own state type *encoded* (postcard
//! bytes) with the name of the device and a version number the device chooses: the device
//! struct itself where that struct is already plain data (PIT, CMOS, i8042, PM timer, fw_cfg,
//! debug ports, null device, the test devices — [`plain_data_snapshot!`]), or a dedicated
//! state struct where the device holds host objects (the UART: `uart::UartState`; virtio
//! devices: the transport, core, queues and device state, `virtio/snapshot.rs`; the disks:
//! registers plus a [`crate::block::DiskMark`]). Step back, snapshot files and migration all
//! go through the same bytes, so what a file holds is exactly what a rewind restores.
//!
//! **Versions.** A device's version covers the layout of its state type (field order and
//! types, as postcard writes them — postcard is not self-describing). Every device starts at
//! 1; change a state struct, bump its version, and an old snapshot is refused with
//! [`SnapshotError::Version`] instead of being misread. [`BusSnapshot`] — what the bus itself
//! owns (the PIC pair, local APIC with its timer, IOAPIC, the interrupt lines, device requests
//! not yet handled, each device's deadline, the virtual clock, the I/O statistics, the address
//! maps and the PCI host) — is covered by [`BUS_SNAPSHOT_VERSION`], stored in it.
//!
//! Restoring needs a bus of the same shape (the same devices registered in the same order, as
//! `Bus::new_pc` builds it); a mismatch, a wrong version or bytes that do not decode is a
//! [`SnapshotError`] naming the device, never a panic. Devices that do not implement snapshots
//! make [`crate::Bus::snapshot`] fail with [`SnapshotError::Unsupported`] rather than silently
//! leave their state out.

use std::any::Any;
use std::borrow::Cow;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bus::{IoStats, IrqLines, MachineEvent};
use crate::clock::VirtualClock;
use crate::ioapic::IoApic;
use crate::lapic::LocalApic;
use crate::pic::PicPair;

/// The layout of [`BusSnapshot`]'s own fields (not the devices': each has its own version).
pub const BUS_SNAPSHOT_VERSION: u16 = 2;

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
    /// device {device}: state version {found}, this build reads version {expected}
    #[error("device {device}: state version {found}, this build reads version {expected}")]
    Version {
        device: &'static str,
        found: u16,
        expected: u16,
    },
}

/// One device's state: the device's own state value, encoded, with its name and version.
///
/// `keep` holds host handles that must live as long as the snapshot (a disk's checkpoint:
/// while it lives, the disk's journal can roll back to it). They are not part of the data: a
/// snapshot decoded from bytes has none, and restoring it works while the original does.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeviceSnapshot {
    name: Cow<'static, str>,
    version: u16,
    state: Vec<u8>,
    #[serde(skip)]
    keep: Vec<Rc<dyn Any>>,
}

impl std::fmt::Debug for DeviceSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeviceSnapshot({} v{}, {} bytes)",
            self.name,
            self.version,
            self.state.len()
        )
    }
}

impl DeviceSnapshot {
    /// Encodes a device's state value.
    pub fn of<T: Serialize>(name: &'static str, version: u16, state: &T) -> Self {
        // postcard fails only on sequences of unknown length, which derived state never has.
        let state = postcard::to_allocvec(state)
            .unwrap_or_else(|e| panic!("{name}: the state does not encode: {e}"));
        DeviceSnapshot {
            name: Cow::Borrowed(name),
            version,
            state,
            keep: Vec::new(),
        }
    }

    /// Keeps `handle` alive as long as this snapshot (and its clones).
    pub fn holding(mut self, handle: Rc<dyn Any>) -> Self {
        self.keep.push(handle);
        self
    }

    /// Keeps the handles `inner` keeps (a snapshot encoded inside this one: a virtio
    /// transport's around its device's), which encoding `inner` would otherwise drop.
    pub fn holding_those_of(mut self, inner: &DeviceSnapshot) -> Self {
        self.keep.extend(inner.keep.iter().cloned());
        self
    }

    /// The device's name, as in statistics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version of the state's layout the device wrote.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The encoded state.
    pub fn state_bytes(&self) -> &[u8] {
        &self.state
    }

    /// Decodes the state, if this snapshot was taken from a device called `name` writing
    /// layout `version`, and the bytes decode to a `T` exactly.
    pub fn get<T: DeserializeOwned>(
        &self,
        name: &'static str,
        version: u16,
    ) -> Result<T, SnapshotError> {
        if self.name != name {
            return Err(SnapshotError::Mismatch(format!(
                "expected {name}, found {}",
                self.name
            )));
        }
        if self.version != version {
            return Err(SnapshotError::Version {
                device: name,
                found: self.version,
                expected: version,
            });
        }
        let bad = |detail: String| SnapshotError::BadState {
            device: name,
            detail,
        };
        match postcard::take_from_bytes::<T>(&self.state) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(bad(format!("{} bytes after the state", rest.len()))),
            Err(e) => Err(bad(format!("the state does not decode: {e}"))),
        }
    }
}

/// Everything the bus holds that changes while a guest runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusSnapshot {
    pub(crate) version: u16,
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

    /// Each device's state, in bus order.
    pub fn devices(&self) -> &[DeviceSnapshot] {
        &self.devices
    }
}

/// Implements [`crate::BusDevice::snapshot`] and `restore` for a device whose struct is plain
/// data (serializable, no host objects): the snapshot is the device itself, at version 1
/// unless given (`plain_data_snapshot!(2)`).
macro_rules! plain_data_snapshot {
    () => {
        $crate::snapshot::plain_data_snapshot!(1);
    };
    ($version:expr) => {
        fn snapshot(&self) -> Option<$crate::snapshot::DeviceSnapshot> {
            Some($crate::snapshot::DeviceSnapshot::of(
                self.name(),
                $version,
                self,
            ))
        }

        fn restore(
            &mut self,
            snap: &$crate::snapshot::DeviceSnapshot,
        ) -> Result<(), $crate::snapshot::SnapshotError> {
            *self = snap.get(self.name(), $version)?;
            Ok(())
        }
    };
}
pub(crate) use plain_data_snapshot;

/// `&'static str` under another name: serde's derive sees no `'static` in it, so a field of
/// this type with `#[serde(with = "interned::one")]` does not demand `'de: 'static`.
pub type StaticName = &'static str;

/// Names that must be `&'static str` in memory (statistics keys) but are strings on the wire:
/// each distinct name read back is leaked once and shared from then on.
pub mod interned {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Mutex;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

    /// The one `&'static str` equal to `name`.
    pub fn intern(name: &str) -> &'static str {
        let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = names.get(name) {
            return known;
        }
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.insert(leaked);
        leaked
    }

    /// `#[serde(with = ...)]` for a map keyed by static names.
    pub fn serialize<S: Serializer, V: Serialize>(
        map: &BTreeMap<&'static str, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        map.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        d: D,
    ) -> Result<BTreeMap<&'static str, V>, D::Error> {
        let owned = BTreeMap::<String, V>::deserialize(d)?;
        Ok(owned.into_iter().map(|(k, v)| (intern(&k), v)).collect())
    }

    /// `#[serde(with = ...)]` for a map keyed by pairs of static names.
    pub mod pairs {
        use std::collections::BTreeMap;

        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        type Pair = (&'static str, &'static str);

        pub fn serialize<S: Serializer, V: Serialize>(
            map: &BTreeMap<Pair, V>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            map.serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
            d: D,
        ) -> Result<BTreeMap<Pair, V>, D::Error> {
            let owned = BTreeMap::<(String, String), V>::deserialize(d)?;
            Ok(owned
                .into_iter()
                .map(|((a, b), v)| ((super::intern(&a), super::intern(&b)), v))
                .collect())
        }
    }

    /// `#[serde(with = ...)]` for one static name.
    pub mod one {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(name: &&'static str, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(name)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
            Ok(super::intern(&String::deserialize(d)?))
        }
    }
}

/// `#[serde(with = ...)]` for byte arrays longer than serde's built-in 32: a length-checked
/// sequence of bytes.
pub mod byte_array {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(a: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(a.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let v = Vec::<u8>::deserialize(d)?;
        let len = v.len();
        v.try_into()
            .map_err(|_| D::Error::custom(format!("{len} bytes where {N} belong")))
    }
}

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
        // The same through bytes: the statistics' names come back interned.
        let bytes = postcard::to_allocvec(&snap).unwrap();
        let decoded: crate::BusSnapshot = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(decoded.stats, snap.stats);
        let mut from_bytes = Bus::new_pc(PcPlatformConfig::default());
        from_bytes.restore(&decoded).unwrap();
        assert_eq!(read_all(&mut from_bytes), first);
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

    #[test]
    fn a_bus_snapshot_of_another_version_is_refused_before_anything_changes() {
        let mut snap = Bus::new_pc(PcPlatformConfig::default()).snapshot().unwrap();
        snap.version += 1;
        let err = Bus::new_pc(PcPlatformConfig::default())
            .restore(&snap)
            .unwrap_err();
        assert!(matches!(err, SnapshotError::Version { device: "bus", .. }));
    }

    #[test]
    fn interned_names_are_shared() {
        let a = super::interned::intern(&String::from("some-device"));
        let b = super::interned::intern("some-device");
        assert!(std::ptr::eq(a, b));
    }
}

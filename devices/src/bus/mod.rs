//! The one bus: every port I/O and MMIO access from every engine ends here.
//! Teaches: address decoding (which device answers a port or an address) and interrupt routing.
//!
//! A device is a [`BusDevice`] registered for port ranges and/or MMIO ranges. Devices raise
//! interrupt lines through [`IrqLines`] and ask the machine for things (exit, reset) through
//! [`MachineEvent`]s; the bus forwards lines to the PIC pair after every access or tick.
//!
//! Interrupts reach the CPU along two paths, as on a PC with an APIC: the ISA lines go both to
//! the 8259 PIC pair (whose INTR output enters the local APIC's LINT0 pin as ExtINT) and to the
//! IOAPIC (which sends vectors to the local APIC). [`Bus::interrupt_pending`] and
//! [`Bus::acknowledge_interrupt`] hide this: engines ask one question and get one vector.

pub mod address_map;
mod console;
pub mod dma;
mod interrupts;
pub mod irq;
mod state;

use std::any::Any;
use std::collections::BTreeMap;

pub use address_map::{AddressMap, OverlapError};
pub use dma::{Dma, DmaError, DmaWrite};
pub use irq::{IrqLine, IrqLines, MsiMessage, GSI_COUNT};

use crate::clock::VirtualClock;
use crate::ioapic::{IoApic, IOAPIC_BASE, IOAPIC_WINDOW};
use crate::lapic::{ApicError, LocalApic, LAPIC_WINDOW};
use crate::pic::PicPair;
use crate::snapshot::{DeviceSnapshot, SnapshotError};

/// Something a device asks of the machine; the run loop acts on it at the next instruction boundary.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineEvent {
    /// isa-debug-exit (port 0xF4): the guest wrote `value`; QEMU's exit status is `(value << 1) | 1`.
    DebugExit { value: u32 },
    /// A reset request from the keyboard controller (0xFE to port 0x64) or port 0xCF9.
    ResetRequested,
    /// ACPI soft-off: the guest wrote SLP_TYP = S5 with SLP_EN to the PM1 control register.
    PowerOff,
}

impl MachineEvent {
    /// The process exit status QEMU would report for this event (`None` for resets).
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            MachineEvent::DebugExit { value } => Some((((*value as u64) << 1) | 1) as i32 & 0xFF),
            MachineEvent::ResetRequested | MachineEvent::PowerOff => None,
        }
    }
}

/// A handle to a device on the bus, returned when it is added (devices of one type can be
/// told apart: a second UART, one virtio device per disk).
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub struct DeviceId(pub usize);

/// What a device sees while it handles an access: the time, its interrupt lines, guest RAM
/// (DMA), the machine.
pub struct DeviceCtx<'a> {
    pub now_ns: u64,
    /// The device being called (a source of its interrupt lines: shared lines are wired-OR).
    pub source: DeviceId,
    pub irq: &'a mut IrqLines,
    pub events: &'a mut Vec<MachineEvent>,
    /// Guest RAM, bounds-checked; writes are logged for the engines' caches.
    pub dma: Dma<'a>,
}

impl DeviceCtx<'_> {
    pub fn request(&mut self, event: MachineEvent) {
        self.events.push(event);
    }

    /// An edge on `line` (edge-triggered sources: the PIT, the UART as the PC wires it).
    pub fn pulse(&mut self, line: IrqLine) {
        self.irq.pulse(line);
    }

    /// This device drives `line` high or lets it go (level-triggered sources, shared PCI lines).
    pub fn set_irq_level(&mut self, line: IrqLine, high: bool) {
        self.irq.set_level(self.source.0, line, high);
    }

    /// A message-signalled interrupt (PCI MSI / MSI-X): delivered to the local APIC.
    pub fn send_msi(&mut self, msi: MsiMessage) {
        self.irq.send_msi(msi);
    }
}

/// A context for calling a device outside any bus (device unit tests): no RAM, its own lines.
#[derive(Default)]
pub struct TestCtx {
    pub now_ns: u64,
    pub irq: IrqLines,
    pub events: Vec<MachineEvent>,
    pub ram: Vec<u8>,
    pub dma_writes: Vec<DmaWrite>,
}

impl TestCtx {
    pub fn ctx(&mut self) -> DeviceCtx<'_> {
        DeviceCtx {
            now_ns: self.now_ns,
            source: DeviceId(0),
            irq: &mut self.irq,
            events: &mut self.events,
            dma: Dma::new(&mut self.ram, &mut self.dma_writes),
        }
    }
}

/// All ones for an access of `size` bytes: what a read from nowhere returns on a PC.
pub fn open_bus(size: u8) -> u64 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

/// A device model on the bus. Every method has a default, so a device implements only what it has.
pub trait BusDevice: Any {
    /// Short name used in statistics ("uart", "pit", …).
    fn name(&self) -> &'static str;

    fn pio_read(&mut self, _port: u16, size: u8, _ctx: &mut DeviceCtx) -> u32 {
        open_bus(size) as u32
    }

    fn pio_write(&mut self, _port: u16, _size: u8, _value: u32, _ctx: &mut DeviceCtx) {}

    /// `offset` is relative to the start of the MMIO range the device was registered at.
    fn mmio_read(&mut self, _offset: u64, size: u8, _ctx: &mut DeviceCtx) -> u64 {
        open_bus(size)
    }

    fn mmio_write(&mut self, _offset: u64, _size: u8, _value: u64, _ctx: &mut DeviceCtx) {}

    /// A PCI function's configuration space (`None`: not a PCI device). The bus's host bridge
    /// reads and writes it, and re-decodes the BARs after writes that move or enable them.
    fn pci_config(&mut self) -> Option<&mut crate::pci::PciConfig> {
        None
    }

    /// The guest wrote configuration space at `offset` (after the write took effect): MSI
    /// enabled, bus mastering switched off, ….
    fn pci_config_written(&mut self, _offset: usize, _ctx: &mut DeviceCtx) {}

    /// An access to PCI BAR `bar`, `offset` bytes into it (I/O or memory, as the BAR decodes).
    fn bar_read(&mut self, _bar: u8, _offset: u64, size: u8, _ctx: &mut DeviceCtx) -> u64 {
        open_bus(size)
    }

    fn bar_write(&mut self, _bar: u8, _offset: u64, _size: u8, _value: u64, _ctx: &mut DeviceCtx) {}

    /// Called when virtual time reaches the deadline the device asked for. Returns the next
    /// deadline in guest nanoseconds, if any. Also called once after registration and after
    /// every access to the device, so a device can re-arm after a register write.
    fn tick(&mut self, _ctx: &mut DeviceCtx) -> Option<u64> {
        None
    }

    fn as_any_mut(&mut self) -> &mut dyn Any;

    /// The device's state as plain data, for machine snapshots (see `snapshot.rs`). `None`:
    /// this device cannot be snapshotted, and neither can a bus that holds it.
    fn snapshot(&self) -> Option<DeviceSnapshot> {
        None
    }

    /// Puts the device back into a state [`BusDevice::snapshot`] returned.
    fn restore(&mut self, _snap: &DeviceSnapshot) -> Result<(), SnapshotError> {
        Err(SnapshotError::Unsupported(self.name()))
    }
}

/// Counts of port and MMIO traffic, by device and by port.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct IoStats {
    #[serde(with = "crate::snapshot::interned")]
    pub by_device: BTreeMap<&'static str, u64>,
    /// (reads, writes) per port.
    pub by_port: BTreeMap<u16, (u64, u64)>,
    pub mmio_reads: u64,
    pub mmio_writes: u64,
    pub unassigned: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApicTarget {
    Local,
    Io,
}

/// Who answers at a port: the PIC pair (a bus field, as routing needs it at hand), the PCI
/// host bridge's configuration ports, a device, or one of a PCI device's BARs.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Pic,
    PciConfig,
    Device(DeviceId),
    Bar(DeviceId, u8),
}

/// Who answers at an MMIO address: a device's fixed range or one of its PCI BARs.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MmioOwner {
    Device(DeviceId),
    Bar(DeviceId, u8),
}

impl MmioOwner {
    fn device(self) -> DeviceId {
        match self {
            MmioOwner::Device(id) | MmioOwner::Bar(id, _) => id,
        }
    }
}

pub(crate) struct Slot {
    pub(crate) device: Box<dyn BusDevice>,
    /// When the device next wants [`BusDevice::tick`] (guest ns).
    deadline: Option<u64>,
}

/// The device bus: port and MMIO address decoding, interrupt routing, virtual time.
pub struct Bus {
    pub(crate) slots: Vec<Slot>,
    pub(crate) ports: AddressMap<u16, Target>,
    pub(crate) mmio: AddressMap<u64, MmioOwner>,
    /// Configuration mechanism #1 and the functions behind it (see `pci/`).
    pub(crate) pci: crate::pci::PciHost,
    pub pic: PicPair,
    /// The CPU's local APIC (xAPIC MMIO window, x2APIC MSRs, timer).
    pub lapic: LocalApic,
    /// The IOAPIC at 0xFEC00000, fed by the same ISA lines as the PIC and by the PCI lines.
    pub ioapic: IoApic,
    /// Which IOAPIC pin each ISA IRQ arrives on (the board's interrupt source overrides).
    isa_to_gsi: [u8; 16],
    pub(crate) irq: IrqLines,
    pub(crate) events: Vec<MachineEvent>,
    /// Device writes to guest RAM since the engines last drained them.
    pub(crate) dma_writes: Vec<DmaWrite>,
    pub(crate) clock: VirtualClock,
    /// Bumped whenever a device was accessed or ticked, i.e. may have armed a new deadline.
    deadline_epoch: u64,
    pub stats: IoStats,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

/// Calls `f` on device `i` with a context over the bus's lines, requests and `ram`.
macro_rules! with_device {
    ($bus:expr, $i:expr, $ram:expr, |$dev:ident, $ctx:ident| $body:expr) => {{
        let i: DeviceId = $i;
        let mut $ctx = $crate::bus::DeviceCtx {
            now_ns: $bus.clock.now_ns(),
            source: i,
            irq: &mut $bus.irq,
            events: &mut $bus.events,
            dma: $crate::bus::Dma::new($ram, &mut $bus.dma_writes),
        };
        let $dev = &mut $bus.slots[i.0].device;
        $body
    }};
}

pub(crate) use with_device;

impl Bus {
    /// An empty bus with only the interrupt controllers: the PIC pair on ports 0x20/0x21,
    /// 0xA0/0xA1 and ELCR 0x4D0/0x4D1, the local APIC at 0xFEE00000 and the IOAPIC at
    /// 0xFEC00000; ISA IRQ n on IOAPIC pin n (see [`Bus::set_isa_gsi`]).
    pub fn new() -> Self {
        let mut ports = AddressMap::default();
        for (first, last) in [(0x20, 0x21), (0xA0, 0xA1), (0x4D0, 0x4D1)] {
            ports
                .insert(first, last, Target::Pic)
                .expect("an empty map has room");
        }
        Bus {
            slots: Vec::new(),
            ports,
            mmio: AddressMap::default(),
            pci: Default::default(),
            pic: PicPair::new(),
            lapic: LocalApic::new(),
            ioapic: IoApic::new(),
            isa_to_gsi: std::array::from_fn(|n| n as u8),
            irq: IrqLines::default(),
            events: Vec::new(),
            dma_writes: Vec::new(),
            clock: VirtualClock::default(),
            deadline_epoch: 0,
            stats: IoStats::default(),
        }
    }

    /// A bus where no port answers at all, not even the PIC's (test machines that compare
    /// against hardware with nothing on its bus).
    pub fn with_no_ports() -> Self {
        Bus {
            ports: AddressMap::default(),
            ..Bus::new()
        }
    }

    /// ISA IRQ `irq` arrives on IOAPIC pin `gsi` (an ACPI interrupt source override).
    pub fn set_isa_gsi(&mut self, irq: u8, gsi: u8) {
        self.isa_to_gsi[irq as usize & 15] = gsi.min(GSI_COUNT as u8 - 1);
    }

    /// Adds a device that answers nowhere yet (map it with [`Bus::map_ports`] /
    /// [`Bus::map_mmio`]); it is ticked once, so it can arm its first deadline.
    pub fn add_device(&mut self, device: Box<dyn BusDevice>) -> DeviceId {
        assert!(
            self.slots.len() < 64,
            "a line's wired-OR tracks at most 64 sources"
        );
        self.slots.push(Slot {
            device,
            deadline: None,
        });
        let id = DeviceId(self.slots.len() - 1);
        self.tick_device(id, &mut []);
        id
    }

    /// Makes device `id` answer the inclusive port range `[first, last]`.
    pub fn map_ports(&mut self, id: DeviceId, first: u16, last: u16) -> Result<(), OverlapError> {
        self.ports.insert(first, last, Target::Device(id))
    }

    /// Makes device `id` answer guest-physical `[base, base + len)`; offsets it sees are
    /// relative to `base`.
    pub fn map_mmio(&mut self, id: DeviceId, base: u64, len: u64) -> Result<(), OverlapError> {
        assert!(len > 0, "an MMIO range needs a length");
        self.mmio
            .insert(base, base.saturating_add(len - 1), MmioOwner::Device(id))
    }

    /// Stops device `id` answering the range that starts at `first` (a PCI BAR moving away).
    pub fn unmap_ports(&mut self, id: DeviceId, first: u16) -> bool {
        self.ports.remove(first, Target::Device(id))
    }

    pub fn unmap_mmio(&mut self, id: DeviceId, base: u64) -> bool {
        self.mmio.remove(base, MmioOwner::Device(id))
    }

    /// Adds a device answering inclusive port ranges.
    pub fn add_pio_device(
        &mut self,
        device: Box<dyn BusDevice>,
        ranges: &[(u16, u16)],
    ) -> Result<DeviceId, OverlapError> {
        let id = self.add_device(device);
        for &(first, last) in ranges {
            self.map_ports(id, first, last)?;
        }
        Ok(id)
    }

    /// Adds a device answering guest-physical `[base, base + len)`.
    pub fn add_mmio_device(
        &mut self,
        device: Box<dyn BusDevice>,
        base: u64,
        len: u64,
    ) -> Result<DeviceId, OverlapError> {
        let id = self.add_device(device);
        self.map_mmio(id, base, len)?;
        Ok(id)
    }

    /// The first device of type `T`, for typed access (serial input, POST codes, tests).
    pub fn device_mut<T: BusDevice>(&mut self) -> Option<&mut T> {
        self.slots
            .iter_mut()
            .find_map(|s| s.device.as_any_mut().downcast_mut::<T>())
    }

    /// Device `id` as a `T`, if it is one.
    pub fn device_by_id<T: BusDevice>(&mut self, id: DeviceId) -> Option<&mut T> {
        self.slots
            .get_mut(id.0)?
            .device
            .as_any_mut()
            .downcast_mut::<T>()
    }

    /// Every device with its id, in the order they were added.
    pub fn devices(&self) -> impl Iterator<Item = (DeviceId, &dyn BusDevice)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .map(|(i, s)| (DeviceId(i), &*s.device))
    }

    /// Who answers a port or an MMIO range: "pic", "pci config", or the device's name.
    fn owner_name(&self, target: Target) -> &'static str {
        match target {
            Target::Pic => "pic",
            Target::PciConfig => "pci config",
            Target::Device(id) | Target::Bar(id, _) => self.slots[id.0].device.name(),
        }
    }

    /// The port ranges and who answers each, in port order: (first, last, name).
    pub fn port_map(&self) -> Vec<(u16, u16, &'static str)> {
        self.ports
            .iter()
            .map(|(f, l, t)| (f, l, self.owner_name(t)))
            .collect()
    }

    /// The MMIO ranges of registered devices and PCI BARs, in address order: (first, last,
    /// name). The local APIC and IOAPIC windows are the bus's own and not listed.
    pub fn mmio_map(&self) -> Vec<(u64, u64, &'static str)> {
        self.mmio
            .iter()
            .map(|(f, l, o)| (f, l, self.slots[o.device().0].device.name()))
            .collect()
    }

    /// Does a device answer at this guest-physical address? (The MMU keeps such pages off its fast path.)
    pub fn is_mmio(&self, addr: u64) -> bool {
        self.find_apic(addr).is_some() || self.mmio.find(addr).is_some()
    }

    /// Is `addr` in the local APIC's or the IOAPIC's window? (They are bus fields, not
    /// registered devices, because interrupt routing needs them at hand.)
    fn find_apic(&self, addr: u64) -> Option<(ApicTarget, u64)> {
        if let Some(base) = self.lapic.mmio_base() {
            if addr >= base && addr - base < LAPIC_WINDOW {
                return Some((ApicTarget::Local, addr - base));
            }
        }
        (addr >= IOAPIC_BASE && addr - IOAPIC_BASE < IOAPIC_WINDOW)
            .then(|| (ApicTarget::Io, addr - IOAPIC_BASE))
    }

    fn apic_mmio(&mut self, target: ApicTarget, offset: u64, size: u8, write: Option<u64>) -> u64 {
        let name = match target {
            ApicTarget::Local => "lapic",
            ApicTarget::Io => "ioapic",
        };
        *self.stats.by_device.entry(name).or_default() += 1;
        self.deadline_epoch = self.deadline_epoch.wrapping_add(1);
        let now = self.clock.now_ns();
        let value = match (target, write) {
            (ApicTarget::Local, None) => self.lapic.mmio_read(offset, size, now),
            (ApicTarget::Local, Some(v)) => {
                self.lapic.mmio_write(offset, size, v, now);
                0
            }
            (ApicTarget::Io, None) => self.ioapic.mmio_read(offset, size),
            (ApicTarget::Io, Some(v)) => {
                self.ioapic.mmio_write(offset, size, v, &mut self.lapic);
                0
            }
        };
        self.sync_irqs();
        value & open_bus(size)
    }

    fn count_port(&mut self, port: u16, write: bool, target: Option<Target>) {
        let entry = self.stats.by_port.entry(port).or_default();
        if write {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
        let name = match target {
            Some(t) => self.owner_name(t),
            None => {
                self.stats.unassigned += 1;
                "unassigned"
            }
        };
        *self.stats.by_device.entry(name).or_default() += 1;
    }

    /// IN: read `size` (1, 2 or 4) bytes from `port`, with no guest RAM for DMA (tests).
    pub fn io_in(&mut self, port: u16, size: u8) -> u32 {
        self.io_in_with(port, size, &mut [])
    }

    /// IN, with guest RAM a device may reach by DMA (what engines call).
    pub fn io_in_with(&mut self, port: u16, size: u8, ram: &mut [u8]) -> u32 {
        let found = self.ports.find(port);
        let target = found.map(|(_, t)| t);
        self.count_port(port, false, target);
        let offset = (port - found.map_or(0, |f| f.0)) as u64;
        let value = match target {
            Some(Target::Pic) => self.pic.pio_read(port),
            Some(Target::PciConfig) => self.pci_config_port_read(port, size, ram),
            Some(Target::Device(i)) => {
                let v = with_device!(self, i, ram, |d, ctx| d.pio_read(port, size, &mut ctx));
                self.tick_device(i, ram);
                v
            }
            Some(Target::Bar(i, bar)) => {
                let v = with_device!(self, i, ram, |d, ctx| d
                    .bar_read(bar, offset, size, &mut ctx));
                self.tick_device(i, ram);
                v as u32
            }
            None => open_bus(size) as u32,
        };
        self.sync_irqs();
        value & open_bus(size) as u32
    }

    /// OUT: write the low `size` bytes of `value` to `port`, with no guest RAM (tests).
    pub fn io_out(&mut self, port: u16, size: u8, value: u32) {
        self.io_out_with(port, size, value, &mut [])
    }

    /// OUT, with guest RAM a device may reach by DMA (what engines call).
    pub fn io_out_with(&mut self, port: u16, size: u8, value: u32, ram: &mut [u8]) {
        let found = self.ports.find(port);
        let target = found.map(|(_, t)| t);
        self.count_port(port, true, target);
        let value = value & open_bus(size) as u32;
        let offset = (port - found.map_or(0, |f| f.0)) as u64;
        match target {
            Some(Target::Pic) => self.pic.pio_write(port, value as u8),
            Some(Target::PciConfig) => self.pci_config_port_write(port, size, value, ram),
            Some(Target::Device(i)) => {
                with_device!(self, i, ram, |d, ctx| d
                    .pio_write(port, size, value, &mut ctx));
                self.tick_device(i, ram);
            }
            Some(Target::Bar(i, bar)) => {
                let v = value as u64;
                with_device!(self, i, ram, |d, ctx| d
                    .bar_write(bar, offset, size, v, &mut ctx));
                self.tick_device(i, ram);
            }
            None => {}
        }
        self.sync_irqs();
    }

    /// MMIO read at a guest-physical address; `None` when no device answers there.
    pub fn mmio_read(&mut self, addr: u64, size: u8) -> Option<u64> {
        self.mmio_read_with(addr, size, &mut [])
    }

    pub fn mmio_read_with(&mut self, addr: u64, size: u8, ram: &mut [u8]) -> Option<u64> {
        if let Some((target, offset)) = self.find_apic(addr) {
            self.stats.mmio_reads += 1;
            return Some(self.apic_mmio(target, offset, size, None));
        }
        let (base, owner) = self.mmio.find(addr)?;
        let i = owner.device();
        self.stats.mmio_reads += 1;
        let name = self.slots[i.0].device.name();
        *self.stats.by_device.entry(name).or_default() += 1;
        let offset = addr - base;
        let v = with_device!(self, i, ram, |d, ctx| match owner {
            MmioOwner::Device(_) => d.mmio_read(offset, size, &mut ctx),
            MmioOwner::Bar(_, bar) => d.bar_read(bar, offset, size, &mut ctx),
        });
        self.tick_device(i, ram);
        self.sync_irqs();
        Some(v & open_bus(size))
    }

    /// MMIO write; returns false when no device answers at `addr`.
    pub fn mmio_write(&mut self, addr: u64, size: u8, value: u64) -> bool {
        self.mmio_write_with(addr, size, value, &mut [])
    }

    pub fn mmio_write_with(&mut self, addr: u64, size: u8, value: u64, ram: &mut [u8]) -> bool {
        if let Some((target, offset)) = self.find_apic(addr) {
            self.stats.mmio_writes += 1;
            self.apic_mmio(target, offset, size, Some(value & open_bus(size)));
            return true;
        }
        let Some((base, owner)) = self.mmio.find(addr) else {
            return false;
        };
        let i = owner.device();
        self.stats.mmio_writes += 1;
        let name = self.slots[i.0].device.name();
        *self.stats.by_device.entry(name).or_default() += 1;
        let value = value & open_bus(size);
        let offset = addr - base;
        with_device!(self, i, ram, |d, ctx| match owner {
            MmioOwner::Device(_) => d.mmio_write(offset, size, value, &mut ctx),
            MmioOwner::Bar(_, bar) => d.bar_write(bar, offset, size, value, &mut ctx),
        });
        self.tick_device(i, ram);
        self.sync_irqs();
        true
    }

    /// Changes whenever [`Bus::next_deadline`] may have changed: an engine that caches the
    /// next deadline (the interpreter does, to stay fast) re-reads it when this moves. A timer
    /// armed by a register write must fire on time even if the guest then only computes.
    pub fn deadline_epoch(&self) -> u64 {
        self.deadline_epoch
    }

    /// The host has news for device `id` (a frame arrived on its link, input for a console):
    /// the device looks now — it may write guest RAM and raise its interrupt — instead of at
    /// its next deadline. Called between engine runs; the engines absorb the DMA log when the
    /// next run starts.
    pub fn service_device(&mut self, id: DeviceId, ram: &mut [u8]) {
        if id.0 < self.slots.len() {
            self.tick_device(id, ram);
            self.sync_irqs();
        }
    }

    fn tick_device(&mut self, i: DeviceId, ram: &mut [u8]) {
        self.deadline_epoch = self.deadline_epoch.wrapping_add(1);
        self.slots[i.0].deadline = with_device!(self, i, ram, |d, ctx| d.tick(&mut ctx));
    }

    /// Device writes to guest RAM since the last call: the engines apply them to their code
    /// caches and page-table tracking as they would the CPU's own writes.
    pub fn take_dma_writes(&mut self) -> Vec<DmaWrite> {
        std::mem::take(&mut self.dma_writes)
    }

    pub fn has_dma_writes(&self) -> bool {
        !self.dma_writes.is_empty()
    }

    /// The device writes not yet taken, left in place (live migration marks their pages dirty).
    pub fn pending_dma_writes(&self) -> &[DmaWrite] {
        &self.dma_writes
    }

    /// Forwards the lines to both interrupt paths — ISA lines to the PIC pair and to their
    /// IOAPIC pin, PCI lines to their pin only —, MSIs to the local APIC, and the local APIC's
    /// EOIs of level-triggered vectors to the IOAPIC.
    fn sync_irqs(&mut self) {
        let edges = self.irq.take_edges();
        let levels = self.irq.levels();
        let mut pin_edges = 0u32;
        let mut pin_levels = 0u32;
        for line in 0..GSI_COUNT as u32 {
            let pin = if line < 16 {
                self.isa_to_gsi[line as usize] as u32
            } else {
                line
            };
            if edges & (1 << line) != 0 {
                if line < 16 {
                    self.pic.raise_irq(line as u8);
                }
                pin_edges |= 1 << pin;
            }
            if levels & (1 << line) != 0 {
                pin_levels |= 1 << pin;
            }
        }
        for pin in 0..GSI_COUNT {
            if pin_edges & (1 << pin) != 0 {
                self.ioapic.edge(pin, &mut self.lapic);
            }
        }
        self.pic.set_levels(levels as u16);
        self.ioapic.set_levels(pin_levels, &mut self.lapic);
        for msi in self.irq.take_msis() {
            self.deliver_msi(msi);
        }
        for vector in self.lapic.take_eoi_broadcasts() {
            self.ioapic.end_of_interrupt(vector, &mut self.lapic);
        }
    }

    /// An MSI reaches the local APIC if it is addressed to it, in fixed or lowest-priority
    /// mode (one CPU: both mean "this one"); anything else is dropped and counted.
    fn deliver_msi(&mut self, msi: MsiMessage) {
        let ours = if msi.logical() {
            self.lapic.matches_logical(msi.destination())
        } else {
            self.lapic.matches_physical(msi.destination())
        };
        if msi.is_valid() && ours && msi.delivery_mode() <= 1 && msi.vector() >= 16 {
            self.lapic.accept(msi.vector(), false);
            *self.stats.by_device.entry("msi").or_default() += 1;
        } else {
            *self.stats.by_device.entry("msi-dropped").or_default() += 1;
        }
    }

    // ---- time ----

    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    pub fn clock(&self) -> VirtualClock {
        self.clock
    }

    /// The earliest time a device wants to be ticked.
    pub fn next_deadline(&self) -> Option<u64> {
        let devices = self.slots.iter().filter_map(|s| s.deadline).min();
        match (devices, self.lapic.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves virtual time to `ns` and ticks every device whose deadline has come (no RAM: tests).
    pub fn advance_time(&mut self, ns: u64) {
        self.advance_time_with(ns, &mut [])
    }

    /// Moves virtual time to `ns`; devices ticked may reach guest RAM.
    pub fn advance_time_with(&mut self, ns: u64, ram: &mut [u8]) {
        self.clock.advance_to(ns);
        let now = self.clock.now_ns();
        for i in 0..self.slots.len() {
            if matches!(self.slots[i].deadline, Some(d) if d <= now) {
                self.tick_device(DeviceId(i), ram);
            }
        }
        self.lapic.tick(now);
        self.sync_irqs();
    }
}

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

use std::any::Any;
use std::collections::BTreeMap;

use crate::clock::VirtualClock;
use crate::ioapic::{IoApic, IOAPIC_BASE, IOAPIC_WINDOW};
use crate::lapic::{ApicError, LocalApic, LAPIC_WINDOW};
use crate::pic::PicPair;
use crate::snapshot::{BusSnapshot, DeviceSnapshot, SnapshotError};

/// Something a device asks of the machine; the run loop acts on it at the next instruction boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineEvent {
    /// isa-debug-exit (port 0xF4): the guest wrote `value`; QEMU's exit status is `(value << 1) | 1`.
    DebugExit { value: u32 },
    /// A reset request from the keyboard controller (0xFE to port 0x64) or port 0xCF9.
    ResetRequested,
}

impl MachineEvent {
    /// The process exit status QEMU would report for this event (`None` for resets).
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            MachineEvent::DebugExit { value } => Some((((*value as u64) << 1) | 1) as i32 & 0xFF),
            MachineEvent::ResetRequested => None,
        }
    }
}

/// The 16 ISA interrupt lines as the devices drive them.
#[derive(Debug, Default, Clone)]
pub struct IrqLines {
    /// Lines that saw a rising edge since the last sync.
    edges: u16,
    /// Current level of level-driven lines.
    levels: u16,
}

impl IrqLines {
    /// A short pulse: the PIC (edge-triggered, as on the PC) latches a request.
    pub fn pulse(&mut self, irq: u8) {
        self.edges |= 1 << (irq & 15);
    }

    /// Drives a line high or low; a low-to-high transition is also an edge.
    pub fn set_level(&mut self, irq: u8, high: bool) {
        let bit = 1 << (irq & 15);
        if high {
            if self.levels & bit == 0 {
                self.edges |= bit;
            }
            self.levels |= bit;
        } else {
            self.levels &= !bit;
        }
    }

    /// Lines that saw a rising edge since the last call, cleared (bit n = line n).
    pub fn take_edges(&mut self) -> u16 {
        std::mem::take(&mut self.edges)
    }

    /// Current levels of the level-driven lines (bit n = line n).
    pub fn levels(&self) -> u16 {
        self.levels
    }
}

/// What a device sees while it handles an access: the time, its interrupt lines, the machine.
pub struct DeviceCtx<'a> {
    pub now_ns: u64,
    pub irq: &'a mut IrqLines,
    pub events: &'a mut Vec<MachineEvent>,
}

impl DeviceCtx<'_> {
    pub fn request(&mut self, event: MachineEvent) {
        self.events.push(event);
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
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IoStats {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Pic,
    Device(usize),
}

/// Settings of the standard PC platform built by [`Bus::new_pc`].
#[derive(Debug, Clone, Copy)]
pub struct PcPlatformConfig {
    /// Guest RAM size, reported through the CMOS.
    pub ram_bytes: u64,
}

impl Default for PcPlatformConfig {
    fn default() -> Self {
        PcPlatformConfig {
            ram_bytes: 64 << 20,
        }
    }
}

/// The device bus: port and MMIO address decoding, interrupt routing, virtual time.
pub struct Bus {
    devices: Vec<Box<dyn BusDevice>>,
    deadlines: Vec<Option<u64>>,
    ports: Vec<(u16, u16, Target)>,
    mmio: Vec<(u64, u64, usize)>,
    pub pic: PicPair,
    /// The CPU's local APIC (xAPIC MMIO window, x2APIC MSRs, timer).
    pub lapic: LocalApic,
    /// The IOAPIC at 0xFEC00000, fed by the same ISA lines as the PIC.
    pub ioapic: IoApic,
    irq: IrqLines,
    events: Vec<MachineEvent>,
    clock: VirtualClock,
    /// Bumped whenever a device was accessed or ticked, i.e. may have armed a new deadline.
    deadline_epoch: u64,
    pub stats: IoStats,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    /// An empty bus with only the interrupt controllers: the PIC pair on ports 0x20/0x21,
    /// 0xA0/0xA1 and ELCR 0x4D0/0x4D1, the local APIC at 0xFEE00000 and the IOAPIC at 0xFEC00000.
    pub fn new() -> Self {
        Bus {
            devices: Vec::new(),
            deadlines: Vec::new(),
            ports: vec![
                (0x20, 0x21, Target::Pic),
                (0xA0, 0xA1, Target::Pic),
                (0x4D0, 0x4D1, Target::Pic),
            ],
            mmio: Vec::new(),
            pic: PicPair::new(),
            lapic: LocalApic::new(),
            ioapic: IoApic::new(),
            irq: IrqLines::default(),
            events: Vec::new(),
            clock: VirtualClock::default(),
            deadline_epoch: 0,
            stats: IoStats::default(),
        }
    }

    /// The standard PC: UART at 0x3F8 (IRQ 4), PIT (IRQ 0, port 0x61), CMOS RTC (IRQ 8),
    /// i8042 keyboard controller (IRQ 1, reset, A20) with port 0x92, POST port 0x80,
    /// debug console 0xE9, isa-debug-exit 0xF4, ACPI PM registers 0x600–0x60B (PM timer
    /// 0x608) and QEMU's fw_cfg at 0x510/0x511 (one CPU, the ACPI tables as files).
    pub fn new_pc(config: PcPlatformConfig) -> Self {
        let mut bus = Bus::new();
        bus.add_pio_device(Box::new(crate::uart::Uart::new()), &[(0x3F8, 0x3FF)]);
        bus.add_pio_device(
            Box::new(crate::pit::Pit::new()),
            &[(0x40, 0x43), (0x61, 0x61)],
        );
        bus.add_pio_device(
            Box::new(crate::cmos::Cmos::new(config.ram_bytes)),
            &[(0x70, 0x71)],
        );
        bus.add_pio_device(
            Box::new(crate::i8042::I8042::new()),
            &[(0x60, 0x60), (0x64, 0x64), (0x92, 0x92)],
        );
        bus.add_pio_device(
            Box::new(crate::debug::PostCodes::default()),
            &[(0x80, 0x80)],
        );
        bus.add_pio_device(Box::new(crate::debug::DebugCon::default()), &[(0xE9, 0xE9)]);
        bus.add_pio_device(Box::new(crate::debug::DebugExit), &[(0xF4, 0xF4)]);
        bus.add_pio_device(
            Box::new(crate::pm_timer::PmTimer::new()),
            &[(crate::pm_timer::PM_BASE, crate::pm_timer::PM_LAST)],
        );
        let fw_cfg = crate::fwcfg::FwCfg::new(crate::fwcfg::FwCfgConfig {
            ram_bytes: config.ram_bytes,
            cpus: 1,
            files: crate::acpi::build().fw_cfg_files(),
        });
        use crate::fwcfg::{FW_CFG_PORT_DATA, FW_CFG_PORT_SEL};
        bus.add_pio_device(Box::new(fw_cfg), &[(FW_CFG_PORT_SEL, FW_CFG_PORT_DATA)]);
        // The null device (port 0x700, MMIO at 3 GiB): what the `portio` and `mmio` workloads hit.
        use crate::null::{NullDevice, NULL_MMIO_BASE, NULL_MMIO_LEN, NULL_PORT};
        let null = bus.add_pio_device(
            Box::new(NullDevice::default()),
            &[(NULL_PORT, NULL_PORT + 3)],
        );
        bus.mmio.push((NULL_MMIO_BASE, NULL_MMIO_LEN, null)); // the same device, also as MMIO
        bus
    }

    /// Registers a device for inclusive port ranges. Later registrations win on overlap.
    pub fn add_pio_device(&mut self, device: Box<dyn BusDevice>, ranges: &[(u16, u16)]) -> usize {
        let index = self.push_device(device);
        for &(first, last) in ranges {
            self.ports.insert(0, (first, last, Target::Device(index)));
        }
        index
    }

    /// Registers a device for a guest-physical MMIO range `[base, base + len)`.
    pub fn add_mmio_device(&mut self, device: Box<dyn BusDevice>, base: u64, len: u64) -> usize {
        let index = self.push_device(device);
        self.mmio.push((base, len, index));
        index
    }

    fn push_device(&mut self, device: Box<dyn BusDevice>) -> usize {
        self.devices.push(device);
        self.deadlines.push(None);
        let index = self.devices.len() - 1;
        self.tick_device(index);
        index
    }

    /// The first device of type `T`, for typed access (serial input, POST codes, tests).
    pub fn device_mut<T: BusDevice>(&mut self) -> Option<&mut T> {
        self.devices
            .iter_mut()
            .find_map(|d| d.as_any_mut().downcast_mut::<T>())
    }

    fn find_port(&self, port: u16) -> Option<Target> {
        self.ports
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&port))
            .map(|t| t.2)
    }

    /// Does a device answer at this guest-physical address? (The MMU keeps such pages off its fast path.)
    pub fn is_mmio(&self, addr: u64) -> bool {
        self.find_apic(addr).is_some() || self.find_mmio(addr).is_some()
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

    fn find_mmio(&self, addr: u64) -> Option<(u64, usize)> {
        self.mmio
            .iter()
            .find(|(base, len, _)| addr >= *base && addr - *base < *len)
            .map(|(base, _, index)| (addr - base, *index))
    }

    fn count_port(&mut self, port: u16, write: bool, target: Option<Target>) {
        let entry = self.stats.by_port.entry(port).or_default();
        if write {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
        let name = match target {
            Some(Target::Pic) => "pic",
            Some(Target::Device(i)) => self.devices[i].name(),
            None => {
                self.stats.unassigned += 1;
                "unassigned"
            }
        };
        *self.stats.by_device.entry(name).or_default() += 1;
    }

    /// IN: read `size` (1, 2 or 4) bytes from `port`.
    pub fn io_in(&mut self, port: u16, size: u8) -> u32 {
        let target = self.find_port(port);
        self.count_port(port, false, target);
        let now_ns = self.clock.now_ns();
        let value = match target {
            Some(Target::Pic) => self.pic.pio_read(port),
            Some(Target::Device(i)) => {
                let mut ctx = DeviceCtx {
                    now_ns,
                    irq: &mut self.irq,
                    events: &mut self.events,
                };
                let v = self.devices[i].pio_read(port, size, &mut ctx);
                self.tick_device(i);
                v
            }
            None => open_bus(size) as u32,
        };
        self.sync_irqs();
        value & open_bus(size) as u32
    }

    /// OUT: write the low `size` bytes of `value` to `port`.
    pub fn io_out(&mut self, port: u16, size: u8, value: u32) {
        let target = self.find_port(port);
        self.count_port(port, true, target);
        let value = value & open_bus(size) as u32;
        match target {
            Some(Target::Pic) => self.pic.pio_write(port, value as u8),
            Some(Target::Device(i)) => {
                let mut ctx = DeviceCtx {
                    now_ns: self.clock.now_ns(),
                    irq: &mut self.irq,
                    events: &mut self.events,
                };
                self.devices[i].pio_write(port, size, value, &mut ctx);
                self.tick_device(i);
            }
            None => {}
        }
        self.sync_irqs();
    }

    /// MMIO read at a guest-physical address; `None` when no device answers there.
    pub fn mmio_read(&mut self, addr: u64, size: u8) -> Option<u64> {
        if let Some((target, offset)) = self.find_apic(addr) {
            self.stats.mmio_reads += 1;
            return Some(self.apic_mmio(target, offset, size, None));
        }
        let (offset, i) = self.find_mmio(addr)?;
        self.stats.mmio_reads += 1;
        *self
            .stats
            .by_device
            .entry(self.devices[i].name())
            .or_default() += 1;
        let mut ctx = DeviceCtx {
            now_ns: self.clock.now_ns(),
            irq: &mut self.irq,
            events: &mut self.events,
        };
        let v = self.devices[i].mmio_read(offset, size, &mut ctx);
        self.tick_device(i);
        self.sync_irqs();
        Some(v & open_bus(size))
    }

    /// MMIO write; returns false when no device answers at `addr`.
    pub fn mmio_write(&mut self, addr: u64, size: u8, value: u64) -> bool {
        if let Some((target, offset)) = self.find_apic(addr) {
            self.stats.mmio_writes += 1;
            self.apic_mmio(target, offset, size, Some(value & open_bus(size)));
            return true;
        }
        let Some((offset, i)) = self.find_mmio(addr) else {
            return false;
        };
        self.stats.mmio_writes += 1;
        *self
            .stats
            .by_device
            .entry(self.devices[i].name())
            .or_default() += 1;
        let mut ctx = DeviceCtx {
            now_ns: self.clock.now_ns(),
            irq: &mut self.irq,
            events: &mut self.events,
        };
        self.devices[i].mmio_write(offset, size, value & open_bus(size), &mut ctx);
        self.tick_device(i);
        self.sync_irqs();
        true
    }

    /// Changes whenever [`Bus::next_deadline`] may have changed: an engine that caches the
    /// next deadline (the interpreter does, to stay fast) re-reads it when this moves. A timer
    /// armed by a register write must fire on time even if the guest then only computes.
    pub fn deadline_epoch(&self) -> u64 {
        self.deadline_epoch
    }

    fn tick_device(&mut self, i: usize) {
        self.deadline_epoch = self.deadline_epoch.wrapping_add(1);
        let mut ctx = DeviceCtx {
            now_ns: self.clock.now_ns(),
            irq: &mut self.irq,
            events: &mut self.events,
        };
        self.deadlines[i] = self.devices[i].tick(&mut ctx);
    }

    /// Forwards the ISA lines to both interrupt paths — the PIC pair and the IOAPIC (IRQ 0 on
    /// pin 2) — and the local APIC's EOIs of level-triggered vectors to the IOAPIC.
    fn sync_irqs(&mut self) {
        let edges = self.irq.take_edges();
        let mut pin_levels = 0u32;
        for irq in 0..16u8 {
            let pin = crate::ioapic::isa_irq_to_pin(irq);
            if edges & (1 << irq) != 0 {
                self.pic.raise_irq(irq);
                self.ioapic.edge(pin, &mut self.lapic);
            }
            if self.irq.levels & (1 << irq) != 0 {
                pin_levels |= 1 << pin;
            }
        }
        self.pic.set_levels(self.irq.levels);
        self.ioapic.set_levels(pin_levels, &mut self.lapic);
        for vector in self.lapic.take_eoi_broadcasts() {
            self.ioapic.end_of_interrupt(vector, &mut self.lapic);
        }
    }

    // ---- snapshots ----

    /// Copies the state of every device, the interrupt controllers, pending lines and requests,
    /// the deadlines and the clock (see `snapshot.rs`). Fails if a device cannot be snapshotted.
    pub fn snapshot(&self) -> Result<BusSnapshot, SnapshotError> {
        let devices = self
            .devices
            .iter()
            .map(|d| d.snapshot().ok_or(SnapshotError::Unsupported(d.name())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BusSnapshot {
            devices,
            deadlines: self.deadlines.clone(),
            pic: self.pic.clone(),
            lapic: self.lapic.clone(),
            ioapic: self.ioapic.clone(),
            irq: self.irq.clone(),
            events: self.events.clone(),
            clock: self.clock,
            stats: self.stats.clone(),
        })
    }

    /// Puts the bus back into the state of `snap`, taken from a bus with the same devices.
    /// The device list is checked before anything changes; should a device still refuse its
    /// state, the bus is left partly restored — restore into a fresh machine and drop it then.
    /// The deadline epoch is not restored but bumped: an engine that cached the next deadline
    /// must read it again, whatever it cached.
    pub fn restore(&mut self, snap: &BusSnapshot) -> Result<(), SnapshotError> {
        let names = |v: &mut dyn Iterator<Item = &'static str>| v.collect::<Vec<_>>().join(",");
        if snap.devices.len() != self.devices.len()
            || snap.deadlines.len() != self.deadlines.len()
            || self
                .devices
                .iter()
                .zip(&snap.devices)
                .any(|(d, s)| d.name() != s.name)
        {
            return Err(SnapshotError::Mismatch(format!(
                "snapshot: {}; bus: {}",
                names(&mut snap.devices.iter().map(|s| s.name)),
                names(&mut self.devices.iter().map(|d| d.name()))
            )));
        }
        for (device, state) in self.devices.iter_mut().zip(&snap.devices) {
            device.restore(state)?;
        }
        self.deadlines.clone_from(&snap.deadlines);
        self.pic = snap.pic.clone();
        self.lapic = snap.lapic.clone();
        self.ioapic = snap.ioapic.clone();
        self.irq = snap.irq.clone();
        self.events.clone_from(&snap.events);
        self.clock = snap.clock;
        self.stats = snap.stats.clone();
        self.deadline_epoch = self.deadline_epoch.wrapping_add(1);
        Ok(())
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
        let devices = self.deadlines.iter().flatten().copied().min();
        match (devices, self.lapic.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves virtual time to `ns` and ticks every device whose deadline has come.
    pub fn advance_time(&mut self, ns: u64) {
        self.clock.advance_to(ns);
        let now = self.clock.now_ns();
        for i in 0..self.devices.len() {
            if matches!(self.deadlines[i], Some(d) if d <= now) {
                self.tick_device(i);
            }
        }
        self.lapic.tick(now);
        self.sync_irqs();
    }

    // ---- interrupts and requests ----

    /// Does the CPU have an external interrupt to take? Either the local APIC has a vector the
    /// priority rules (IRR vs. PPR) let through, or the PIC asserts INTR and reaches the CPU
    /// through LINT0 (ExtINT, or the APIC globally disabled).
    pub fn interrupt_pending(&self) -> bool {
        self.lapic.has_interrupt() || (self.lapic.accepts_pic() && self.pic.has_interrupt())
    }

    /// The interrupt-acknowledge cycle: the local APIC's vector goes first (IRR → ISR), else the
    /// PIC hands over its vector and marks it in service. With neither — the request went away
    /// between the poll and the acknowledge — the CPU gets a spurious vector.
    pub fn acknowledge_interrupt(&mut self) -> u8 {
        if self.lapic.has_interrupt() {
            self.lapic.acknowledge()
        } else if self.lapic.accepts_pic() {
            self.pic.acknowledge()
        } else {
            self.lapic.spurious_vector()
        }
    }

    /// RDMSR of an MSR that belongs to the platform: IA32_APIC_BASE (0x1B), IA32_TSC_DEADLINE
    /// (0x6E0) and the x2APIC registers (0x800–0x8FF). `None`: not a bus MSR, the engine's own;
    /// `Some(Err(_))`: the CPU raises #GP(0).
    pub fn msr_read(&mut self, index: u32) -> Option<Result<u64, ApicError>> {
        let now = self.clock.now_ns();
        let r = self.lapic.msr_read(index, now)?;
        *self.stats.by_device.entry("lapic").or_default() += 1;
        Some(r)
    }

    /// WRMSR of a platform MSR (see [`Bus::msr_read`]).
    pub fn msr_write(&mut self, index: u32, value: u64) -> Option<Result<(), ApicError>> {
        let now = self.clock.now_ns();
        let r = self.lapic.msr_write(index, value, now)?;
        self.deadline_epoch = self.deadline_epoch.wrapping_add(1);
        *self.stats.by_device.entry("lapic").or_default() += 1;
        self.sync_irqs();
        Some(r)
    }

    /// Requests devices made since the last call (exit, reset).
    pub fn take_events(&mut self) -> Vec<MachineEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    // ---- the console side of devices ----

    /// Bytes the guest sent to the UART since the last call.
    pub fn take_serial_output(&mut self) -> Vec<u8> {
        self.device_mut::<crate::uart::Uart>()
            .map(|u| u.take_output())
            .unwrap_or_default()
    }

    /// Adds bytes to the console output as if the UART had sent them (a paravirtual console).
    pub fn write_console(&mut self, bytes: &[u8]) {
        if let Some(uart) = self.device_mut::<crate::uart::Uart>() {
            uart.write_console(bytes);
        }
    }

    /// Sends the UART's output straight to a host writer (a terminal) from now on, instead of
    /// buffering it for [`Bus::take_serial_output`].
    pub fn set_serial_sink(&mut self, sink: Box<dyn std::io::Write>) {
        if let Some(uart) = self.device_mut::<crate::uart::Uart>() {
            uart.set_output_sink(sink);
        }
    }

    /// Queues bytes typed by the user into the UART's receive FIFO.
    pub fn send_serial_input(&mut self, bytes: &[u8]) {
        let now_ns = self.clock.now_ns();
        let Some(index) = self
            .devices
            .iter_mut()
            .position(|d| d.as_any_mut().is::<crate::uart::Uart>())
        else {
            return;
        };
        let mut ctx = DeviceCtx {
            now_ns,
            irq: &mut self.irq,
            events: &mut self.events,
        };
        if let Some(uart) = self.devices[index]
            .as_any_mut()
            .downcast_mut::<crate::uart::Uart>()
        {
            uart.receive(bytes, &mut ctx);
        }
        self.sync_irqs();
    }

    /// Bytes written to the debug console (port 0xE9) since the last call.
    pub fn take_console_output(&mut self) -> Vec<u8> {
        self.device_mut::<crate::debug::DebugCon>()
            .map(|d| std::mem::take(&mut d.output))
            .unwrap_or_default()
    }

    /// Every value written to POST port 0x80, in order.
    pub fn post_codes(&mut self) -> Vec<u8> {
        self.device_mut::<crate::debug::PostCodes>()
            .map(|p| p.codes.clone())
            .unwrap_or_default()
    }
}

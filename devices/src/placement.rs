//! Where the PC puts the devices a run adds: the IDE disk on the primary channel, and every
//! virtio device (disks, console, rng) at the next free virtio-pci slot or virtio-mmio window.
//! Teaches: a board's optional half still follows fixed rules, so a guest (and Linux's command
//! line) can find each device — one allocator for all of them, used by the CLI and the GUI.

use crate::ata::{Ata, COMMAND_PORTS, CONTROL_PORT, IRQ};
use crate::block::BlockBackend;
use crate::bus::DeviceId;
use crate::net::{MacAddr, NetLink};
use crate::pci::virtio::{VirtioPci, BAR_SIZE};
use crate::virtio::mmio::{VirtioMmio, MMIO_WINDOW};
use crate::virtio::VirtioDevice;
use crate::{Bus, IrqLine};

// ANCHOR: disk_placement
/// IDE: the primary channel's master. virtio-mmio: 4 KiB windows from 0xD000_0000 on GSIs
/// 20–23 (IOAPIC only, like PCI lines). virtio-pci: slots from 2, BAR 0 placed from the start
/// of the PCI memory window (the one the DSDT offers) as firmware would.
pub const VIRTIO_MMIO_BASE: u64 = 0xD000_0000;
pub const VIRTIO_MMIO_STRIDE: u64 = 0x1000;
pub const VIRTIO_MMIO_FIRST_GSI: u8 = 20;
pub const MAX_VIRTIO_MMIO: usize = 4;
pub const VIRTIO_PCI_FIRST_SLOT: u8 = 2;
pub const VIRTIO_PCI_BAR_BASE: u64 = crate::board::PCI_MEMORY_WINDOW.0 as u64;
// ANCHOR_END: disk_placement

/// How a virtio device reaches the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A register window at an address the board fixes (no discovery), as Firecracker does.
    Mmio,
    /// A PCI function the guest finds by its IDs (the modern interface).
    Pci,
}

/// Why a device found no place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlacementError(String);

/// Puts an ATA disk on `backend` at the primary channel; returns where the guest finds it.
pub fn attach_ide(bus: &mut Bus, backend: Box<dyn BlockBackend>) -> Result<String, PlacementError> {
    let line = IrqLine::isa(IRQ);
    bus.add_pio_device(
        Box::new(Ata::new(backend, line)),
        &[COMMAND_PORTS, (CONTROL_PORT, CONTROL_PORT)],
    )
    .map_err(|e| PlacementError(format!("placing the IDE disk: {e}")))?;
    Ok(format!(
        "ide0 ports {:#x}-{:#x},{CONTROL_PORT:#x} irq {IRQ}",
        COMMAND_PORTS.0, COMMAND_PORTS.1
    ))
}

/// Adds QEMU's pc-testdev (see `testdev/pc.rs`). It takes port 0xE9 from the debug console,
/// as on QEMU, where the two cannot share it either.
pub fn attach_pc_testdev(bus: &mut Bus) -> Result<String, PlacementError> {
    use crate::testdev::pc::*;
    let debugcon = bus
        .devices()
        .find(|(_, d)| d.name() == "debugcon")
        .map(|(id, _)| id);
    if let Some(id) = debugcon {
        bus.unmap_ports(id, 0xE9);
    }
    let ports = [SCRATCH_PORTS, FLUSH_PORTS, SCRATCH_BYTE_PORTS, IRQ_PORTS];
    bus.add_pio_device(Box::new(PcTestDev::default()), &ports)
        .and_then(|id| bus.map_mmio(id, IOMEM_BASE, IOMEM_LEN))
        .map_err(|e| PlacementError(format!("placing pc-testdev: {e}")))?;
    Ok(format!(
        "pc-testdev ports {:#x}-{:#x},{:#x}-{:#x} mmio {IOMEM_BASE:#x}-{:#x} (port 0xe9: no debugcon)",
        SCRATCH_PORTS.0,
        SCRATCH_BYTE_PORTS.1,
        IRQ_PORTS.0,
        IRQ_PORTS.1,
        IOMEM_BASE + IOMEM_LEN - 1,
    ))
}

/// The next free place for an added device — every virtio device, and other PCI functions
/// such as pci-testdev — in the order devices are placed.
#[derive(Debug, Default)]
pub struct VirtioPlacement {
    mmio_used: u64,
    pci_used: u8,
}

impl VirtioPlacement {
    /// Puts `device` behind `transport` at the next free place; returns where the guest finds
    /// it ("virtio-pci 00:02.0 bar0 0xe0000000 gsi 18", …).
    pub fn place(
        &mut self,
        bus: &mut Bus,
        device: Box<dyn VirtioDevice>,
        transport: impl Into<Transport>,
    ) -> Result<String, PlacementError> {
        self.place_device(bus, device, transport).map(|(at, _)| at)
    }

    /// [`VirtioPlacement::place`], also returning the device's id on the bus (a NIC's owner
    /// services it when frames arrive).
    pub fn place_device(
        &mut self,
        bus: &mut Bus,
        device: Box<dyn VirtioDevice>,
        transport: impl Into<Transport>,
    ) -> Result<(String, DeviceId), PlacementError> {
        let what = device.name();
        match transport.into() {
            Transport::Mmio => {
                if self.mmio_used >= MAX_VIRTIO_MMIO as u64 {
                    return Err(PlacementError(format!(
                        "no virtio-mmio window left for {what}: at most {MAX_VIRTIO_MMIO} (GSIs 20-23); use virtio-pci for more"
                    )));
                }
                let base = VIRTIO_MMIO_BASE + self.mmio_used * VIRTIO_MMIO_STRIDE;
                let gsi = VIRTIO_MMIO_FIRST_GSI + self.mmio_used as u8;
                let line = IrqLine::new(gsi).expect("GSIs 20-23 exist");
                let id = bus
                    .add_mmio_device(Box::new(VirtioMmio::new(device, line)), base, MMIO_WINDOW)
                    .map_err(|e| PlacementError(format!("placing {what} on virtio-mmio: {e}")))?;
                self.mmio_used += 1;
                let at = format!(
                    "virtio-mmio {base:#x} gsi {gsi} (Linux: virtio_mmio.device={MMIO_WINDOW:#x}@{base:#x}:{gsi})"
                );
                Ok((at, id))
            }
            Transport::Pci => {
                let (slot, bar) = self.next_pci();
                let line = crate::pci::intx_gsi(slot, 1);
                let id = bus
                    .add_pci_device(Box::new(VirtioPci::new(device, line).place(bar)), slot)
                    .map_err(|e| PlacementError(format!("placing {what} on virtio-pci: {e}")))?;
                self.pci_used += 1;
                let at = format!(
                    "virtio-pci 00:{slot:02x}.0 bar0 {bar:#x} gsi {}",
                    line.number()
                );
                Ok((at, id))
            }
        }
    }

    /// The next PCI slot and the memory BAR base that goes with it.
    fn next_pci(&self) -> (u8, u64) {
        (
            VIRTIO_PCI_FIRST_SLOT + self.pci_used,
            VIRTIO_PCI_BAR_BASE + u64::from(self.pci_used) * u64::from(BAR_SIZE),
        )
    }

    /// Adds an RTL8139 at the next PCI slot: BAR 0 (ports) at 256 ports per slot from the PCI
    /// I/O window's start, BAR 1 (memory) where a virtio device's BAR would be, INTx pin A.
    pub fn place_rtl8139(
        &mut self,
        bus: &mut Bus,
        mac: MacAddr,
        link: NetLink,
    ) -> Result<(String, DeviceId), PlacementError> {
        use crate::net::rtl8139::{Rtl8139, BAR_SIZE as RTL_BAR};
        let (slot, mem) = self.next_pci();
        let io = crate::board::PCI_IO_WINDOW_START + u16::from(self.pci_used) * RTL_BAR as u16;
        let line = crate::pci::intx_gsi(slot, 1);
        let nic = Rtl8139::new(mac, link, line).place(io, mem);
        let id = bus
            .add_pci_device(Box::new(nic), slot)
            .map_err(|e| PlacementError(format!("placing the rtl8139: {e}")))?;
        self.pci_used += 1;
        let at = format!(
            "rtl8139 00:{slot:02x}.0 bar0 port {io:#x} bar1 {mem:#x} gsi {}",
            line.number()
        );
        Ok((at, id))
    }

    /// Adds QEMU's pci-testdev at the next PCI slot: BAR 0 where a virtio device's would be,
    /// BAR 1 at 256 ports per slot from the PCI I/O window's start.
    pub fn place_pci_testdev(&mut self, bus: &mut Bus) -> Result<String, PlacementError> {
        use crate::testdev::pci::{PciTestDev, IO_BAR_SIZE};
        let (slot, mem) = self.next_pci();
        let io = crate::board::PCI_IO_WINDOW_START + u16::from(self.pci_used) * IO_BAR_SIZE as u16;
        bus.add_pci_device(Box::new(PciTestDev::new().place(mem, io)), slot)
            .map_err(|e| PlacementError(format!("placing pci-testdev: {e}")))?;
        self.pci_used += 1;
        Ok(format!(
            "pci-testdev 00:{slot:02x}.0 bar0 {mem:#x} bar1 port {io:#x}"
        ))
    }
}

/// Which NIC a guest gets: the emulated RTL8139 or virtio-net on either transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicModel {
    VirtioPci,
    VirtioMmio,
    Rtl8139,
}

impl NicModel {
    pub fn name(self) -> &'static str {
        match self {
            NicModel::VirtioPci => "virtio-net-pci",
            NicModel::VirtioMmio => "virtio-net-mmio",
            NicModel::Rtl8139 => "rtl8139",
        }
    }

    /// Emulated (a real chip's registers) or paravirtual (virtio)?
    pub fn is_virtio(self) -> bool {
        !matches!(self, NicModel::Rtl8139)
    }
}

/// Adds a NIC of `model` on `link` at the next free place; returns where the guest finds it
/// and the device's id (its owner calls `Bus::service_device` when frames arrive).
pub fn attach_nic(
    bus: &mut Bus,
    placement: &mut VirtioPlacement,
    model: NicModel,
    mac: MacAddr,
    link: NetLink,
) -> Result<(String, DeviceId), PlacementError> {
    use crate::virtio::net::VirtioNet;
    match model {
        NicModel::Rtl8139 => placement.place_rtl8139(bus, mac, link),
        NicModel::VirtioPci => {
            placement.place_device(bus, Box::new(VirtioNet::new(mac, link)), Transport::Pci)
        }
        NicModel::VirtioMmio => {
            placement.place_device(bus, Box::new(VirtioNet::new(mac, link)), Transport::Mmio)
        }
    }
}

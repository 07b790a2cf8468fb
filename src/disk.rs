//! What `--disk` and `--virtio-console` add to a run on the host side: the `VirtioTransport`
//! option value, and where the disk's host half lives (`host_backends::disk`).
//! Teaches: a command-line value is not a device — it names one the board then places.

use anyhow::{bail, Result};
use devices::block::BlockBackend;
pub use host_backends::disk::{DiskInterface, DiskSpec, FileDisk};

/// How a virtio device (a disk, the console) reaches the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VirtioTransport {
    /// A register window at an address the board fixes (no discovery).
    #[value(name = "virtio-mmio")]
    Mmio,
    /// A PCI function the guest finds by its IDs (the modern interface).
    #[value(name = "virtio-pci")]
    Pci,
}

impl VirtioTransport {
    pub fn name(self) -> &'static str {
        match self {
            VirtioTransport::Mmio => "virtio-mmio",
            VirtioTransport::Pci => "virtio-pci",
        }
    }
}

impl From<devices::placement::Transport> for VirtioTransport {
    fn from(t: devices::placement::Transport) -> Self {
        match t {
            devices::placement::Transport::Mmio => VirtioTransport::Mmio,
            devices::placement::Transport::Pci => VirtioTransport::Pci,
        }
    }
}

pub use devices::placement::VirtioPlacement;

impl From<VirtioTransport> for devices::placement::Transport {
    fn from(t: VirtioTransport) -> Self {
        match t {
            VirtioTransport::Mmio => devices::placement::Transport::Mmio,
            VirtioTransport::Pci => devices::placement::Transport::Pci,
        }
    }
}

/// One disk on the machine, as `--devices` and `--stats` describe it.
#[derive(Debug, Clone)]
pub struct AttachedDisk {
    pub spec: DiskSpec,
    pub sectors: u64,
    /// Where the guest finds it ("ide0 ports 0x1f0-0x1f7,0x3f6 irq 14", …).
    pub location: String,
    /// The device's backend: the file behind an undo journal that records nothing until a
    /// snapshot takes a checkpoint (what lets a machine with disks be saved), and a handle
    /// to read the disk when it is.
    pub journal: devices::disk_journal::JournaledDisk,
}

/// Opens every image (all before the guest starts: a bad one is an error and nothing runs)
/// and puts its device on the bus, virtio disks at the places `placement` hands out.
pub fn attach_disks(
    bus: &mut devices::Bus,
    specs: &[DiskSpec],
    placement: &mut VirtioPlacement,
) -> Result<Vec<AttachedDisk>> {
    let mut opened = Vec::new();
    for spec in specs {
        opened.push((spec.clone(), FileDisk::open(&spec.path, spec.read_only)?));
    }
    let ide = specs
        .iter()
        .filter(|s| s.interface == DiskInterface::Ide)
        .count();
    if ide > 1 {
        bail!("only one IDE disk is supported (the primary master); use if=virtio-pci or if=virtio-mmio for the others");
    }
    let mut attached = Vec::new();
    for (spec, disk) in opened {
        let sectors = disk.len() / 512;
        let journal = devices::disk_journal::JournaledDisk::new(Box::new(disk));
        let backend = Box::new(journal.clone());
        let location = match spec.interface.virtio_transport() {
            None => devices::placement::attach_ide(bus, backend)?,
            Some(transport) => {
                use devices::virtio::blk::VirtioBlk;
                placement.place(bus, Box::new(VirtioBlk::new(backend)), transport)?
            }
        };
        attached.push(AttachedDisk {
            spec,
            sectors,
            location,
            journal,
        });
    }
    Ok(attached)
}

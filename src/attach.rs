//! The devices a run adds to the PC's board: `--disk` images and `--virtio-console`.
//! Teaches: the board's optional half comes from the command line, and every virtio device gets its place — a PCI slot and BAR, or a virtio-mmio window and GSI — from one allocator.
//!
//! [`DeviceArgs`] is the one definition of these options, flattened into every command that
//! builds a machine. [`attach`] opens the disk images, then places the disks and the console
//! in that order through [`crate::disk::VirtioPlacement`], so a virtio-pci console sits in the
//! slot after the last virtio-pci disk. The console's output goes into the UART's stream
//! ([`devices::Bus::console_writer`]): the host prints one console, in the order the guest
//! wrote to either device, whichever engine runs and across engine switches (the device lives
//! on the bus, not in an engine).

use anyhow::{Context, Result};

use crate::disk::{AttachedDisk, DiskSpec, VirtioPlacement, VirtioTransport};

/// `--disk`, `--virtio-console` and `--devices`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DeviceArgs {
    /// A disk image: FILE[,ro][,if=ide|virtio-mmio|virtio-pci] (default virtio-pci). The
    /// file must exist with a size that is a multiple of 512 (e.g. `truncate -s 16M d.img`);
    /// what the guest writes is in it when vmscope exits. May be given several times.
    #[arg(long, value_name = "FILE[,ro][,if=…]")]
    pub disk: Vec<DiskSpec>,
    /// Add a virtio-console, the UART's paravirtual twin, over virtio-pci (the default) or
    /// virtio-mmio; its output appears on stdout with the UART's. The teaching kernel prints
    /// through it with `--cmdline console=virtio`.
    #[arg(
        long,
        value_enum,
        value_name = "TRANSPORT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "virtio-pci"
    )]
    pub virtio_console: Option<VirtioTransport>,
    /// Print the devices (ports, MMIO ranges, PCI functions, disks, consoles) before the guest starts.
    #[arg(long)]
    pub devices: bool,
}

/// The virtio-console on the machine, as `--devices` describes it.
#[derive(Debug, Clone)]
pub struct AttachedConsole {
    pub transport: VirtioTransport,
    /// Where the guest finds it ("virtio-pci 00:03.0 bar0 0xe0004000 gsi 19", …).
    pub location: String,
}

/// Everything [`attach`] added.
#[derive(Debug, Clone, Default)]
pub struct Attached {
    pub disks: Vec<AttachedDisk>,
    pub console: Option<AttachedConsole>,
}

/// Opens and places the disks, then the virtio-console if asked for; an error (a bad image,
/// no place left) comes before the guest starts.
pub fn attach(
    bus: &mut devices::Bus,
    disks: &[DiskSpec],
    virtio_console: Option<VirtioTransport>,
) -> Result<Attached> {
    let mut placement = VirtioPlacement::default();
    let disks = crate::disk::attach_disks(bus, disks, &mut placement)?;
    let console = match virtio_console {
        None => None,
        Some(transport) => {
            let mut device = devices::virtio::console::VirtioConsole::new();
            let stream = bus
                .console_writer()
                .context("the board has no UART whose output the virtio-console could join")?;
            device.set_output_sink(stream);
            let location = placement.place(bus, Box::new(device), transport)?;
            Some(AttachedConsole {
                transport,
                location,
            })
        }
    };
    Ok(Attached { disks, console })
}

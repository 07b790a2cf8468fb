//! The devices a run adds to the PC's board: `--disk` images, `--virtio-console`, `--virtio-rng`, `--nic`, `--device`.
//! Teaches: the board's optional half comes from the command line, and every virtio device gets its place — a PCI slot and BAR, or a virtio-mmio window and GSI — from one allocator.
//!
//! [`DeviceArgs`] is the one definition of these options, flattened into every command that
//! builds a machine. [`attach`] opens the disk images, then places the disks, the console and
//! the entropy device in that order through [`crate::disk::VirtioPlacement`], so a virtio-pci
//! console sits in the slot after the last virtio-pci disk, and the rng in the one after it.
//! The console's output goes into the UART's stream ([`devices::Bus::console_writer`]): the
//! host prints one console, in the order the guest wrote to either device, whichever engine
//! runs and across engine switches (the device lives on the bus, not in an engine). The rng
//! is always seeded ([`DEFAULT_RNG_SEED`] unless `--virtio-rng-seed` says otherwise).

use anyhow::{Context, Result};

use crate::disk::{AttachedDisk, DiskSpec, VirtioPlacement, VirtioTransport};

/// The seed of `--virtio-rng`'s generator when `--virtio-rng-seed` is not given.
pub const DEFAULT_RNG_SEED: u64 = 0;

/// `--disk`, `--virtio-console`, `--virtio-rng`, `--virtio-rng-seed`, `--device` and `--devices`.
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
    /// Add a virtio-rng, an entropy device, over virtio-pci (the default) or virtio-mmio,
    /// after the console. Its bytes come from a generator (SplitMix64) seeded with
    /// `--virtio-rng-seed`, so every run gets the same ones: repeatable, not secret. The
    /// teaching kernel reads it with `--cmdline workloads=rng-read:N`.
    #[arg(
        long,
        value_enum,
        value_name = "TRANSPORT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "virtio-pci"
    )]
    pub virtio_rng: Option<VirtioTransport>,
    /// The virtio-rng generator's seed (decimal or 0x-hex); the same seed gives the same
    /// bytes on every engine. Default 0.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_RNG_SEED,
        value_parser = parse_seed,
        requires = "virtio_rng"
    )]
    pub virtio_rng_seed: u64,
    /// Add one of QEMU's test devices, as its `-device` does, so test kernels written for
    /// QEMU's harness run unchanged: pc-testdev (ports 0xE0-0xEB and 0x2000-0x2017, memory
    /// at 0xFF000000; it takes port 0xE9 from the debug console) or pci-testdev (1b36:0005,
    /// after the virtio devices). May be given twice. The `testdev` guest probes both.
    #[arg(long = "device", value_enum, value_name = "NAME")]
    pub test_devices: Vec<TestDevice>,
    /// Add a NIC: virtio (virtio-net on PCI), virtio-mmio (virtio-net on virtio-mmio) or
    /// rtl8139 (an emulated Realtek RTL8139C on PCI), after the rng. Its cable goes to
    /// `--tap`; without one it is plugged into nothing (frames sent are counted and dropped).
    #[arg(long, value_name = "MODEL", value_parser = crate::net::spec::parse_nic)]
    pub nic: Option<devices::placement::NicModel>,
    /// The NIC's MAC address (default 02:76:6d:00:00:01).
    #[arg(long, value_name = "MAC", requires = "nic", value_parser = parse_mac)]
    pub mac: Option<devices::net::MacAddr>,
    /// Connect the NIC to a Linux tap device vmscope creates (inside network namespace
    /// NETNS if given), so the host's network stack is its peer.
    #[arg(long, value_name = "NAME[@NETNS]", requires = "nic")]
    pub tap: Option<crate::net::TapSpec>,
    /// Print the devices (ports, MMIO ranges, PCI functions, disks, consoles, rng) before the guest starts.
    #[arg(long)]
    pub devices: bool,
}

fn parse_mac(s: &str) -> Result<devices::net::MacAddr, String> {
    match devices::net::MacAddr::parse(s) {
        Some(m) if !m.is_group() => Ok(m),
        Some(_) => Err(format!("{s} is a group address; a NIC needs a unicast one")),
        None => Err(format!("{s}: expected aa:bb:cc:dd:ee:ff")),
    }
}

/// A NIC to add (`--nic`, `--mac`, `--tap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicSpec {
    pub model: devices::placement::NicModel,
    pub mac: devices::net::MacAddr,
    pub tap: Option<crate::net::TapSpec>,
}

/// The NIC on the machine: where it is, its cable and its id on the bus.
#[derive(Debug, Clone)]
pub struct AttachedNic {
    pub spec: NicSpec,
    pub location: String,
    pub link: devices::net::NetLink,
    pub id: devices::bus::DeviceId,
}

impl DeviceArgs {
    /// The NIC these options ask for, if any.
    pub fn nic(&self) -> Option<NicSpec> {
        self.nic.map(|model| NicSpec {
            model,
            mac: self.mac.unwrap_or(devices::net::MacAddr::vmscope(1)),
            tap: self.tap.clone(),
        })
    }

    /// The virtio-rng these options ask for, if any.
    pub fn rng(&self) -> Option<RngSpec> {
        self.virtio_rng.map(|transport| RngSpec {
            transport,
            seed: self.virtio_rng_seed,
        })
    }
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|e| format!("a seed is a 64-bit number, decimal or 0x-hex: {e}"))
}

/// One of QEMU's test devices (`--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestDevice {
    #[value(name = "pc-testdev")]
    PcTestdev,
    #[value(name = "pci-testdev")]
    PciTestdev,
}

/// A test device's `--device` name.
pub fn test_device_name(d: TestDevice) -> &'static str {
    match d {
        TestDevice::PcTestdev => "pc-testdev",
        TestDevice::PciTestdev => "pci-testdev",
    }
}

/// A virtio-rng to add: its transport and its generator's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RngSpec {
    pub transport: VirtioTransport,
    pub seed: u64,
}

/// The virtio-console on the machine, as `--devices` describes it.
#[derive(Debug, Clone)]
pub struct AttachedConsole {
    pub transport: VirtioTransport,
    /// Where the guest finds it ("virtio-pci 00:03.0 bar0 0xe0004000 gsi 19", …).
    pub location: String,
}

/// The virtio-rng on the machine, as `--devices` describes it.
#[derive(Debug, Clone)]
pub struct AttachedRng {
    pub spec: RngSpec,
    /// Where the guest finds it, as for the console.
    pub location: String,
}

/// Everything [`attach`] added.
#[derive(Debug, Clone, Default)]
pub struct Attached {
    pub disks: Vec<AttachedDisk>,
    pub console: Option<AttachedConsole>,
    pub rng: Option<AttachedRng>,
    /// Where each `--device` test device answers.
    pub test_devices: Vec<String>,
    pub nic: Option<AttachedNic>,
}

/// Opens and places the disks, then the virtio-console and the virtio-rng if asked for; an
/// error (a bad image, no place left) comes before the guest starts.
pub fn attach(
    bus: &mut devices::Bus,
    disks: &[DiskSpec],
    virtio_console: Option<VirtioTransport>,
    virtio_rng: Option<RngSpec>,
    test_devices: &[TestDevice],
    nic: Option<&NicSpec>,
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
    let rng = match virtio_rng {
        None => None,
        Some(spec) => {
            // Seeded, never the host's entropy: an emulated run must repeat bit for bit.
            let device = devices::virtio::rng::VirtioRng::new(spec.seed);
            let location = placement.place(bus, Box::new(device), spec.transport)?;
            Some(AttachedRng { spec, location })
        }
    };
    let nic = match nic {
        None => None,
        Some(spec) => {
            let link = devices::net::NetLink::new();
            // Without a tap nothing is at the other end: the link is down, as unplugged.
            link.set_carrier(spec.tap.is_some());
            let (location, id) = devices::placement::attach_nic(
                bus,
                &mut placement,
                spec.model,
                spec.mac,
                link.clone(),
            )?;
            Some(AttachedNic {
                spec: spec.clone(),
                location,
                link,
                id,
            })
        }
    };
    let mut placed = Vec::new();
    for (i, device) in test_devices.iter().enumerate() {
        if test_devices[..i].contains(device) {
            anyhow::bail!(
                "--device {} is given twice; the board has room for one",
                test_device_name(*device)
            );
        }
        placed.push(match device {
            TestDevice::PcTestdev => devices::placement::attach_pc_testdev(bus)?,
            TestDevice::PciTestdev => placement.place_pci_testdev(bus)?,
        });
    }
    Ok(Attached {
        disks,
        console,
        rng,
        test_devices: placed,
        nic,
    })
}

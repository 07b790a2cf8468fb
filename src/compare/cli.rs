//! The `vmscope compare` command line: arguments, progress on stderr, the table on stdout,
//! `--json` and `--plot` files, and the exit status (1 when checksums disagree).
//! Teaches: nothing about virtualization; it connects the measurement to the user.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use emulator::machine::loader::{detect, ImageKind};

use super::{json, svg, table, CompareOptions, EngineId};

/// Arguments of `vmscope compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The kernel: a path, or a built-in guest's name (default: the teaching kernel).
    pub image: Option<String>,
    /// Workloads, comma-separated (default: the whole suite).
    #[arg(long, value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// Engines, comma-separated: interp, bt, kvm, qemu-tcg, qemu-kvm, bochs (default: all available).
    #[arg(long, value_delimiter = ',')]
    pub engines: Vec<String>,
    /// Operations per workload on every engine (default: per workload and engine, ≈0.3 s each).
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Modes, comma-separated: `full` (the guest sees hardware), `pv` (it sees a hypervisor:
    /// hypercalls, batched page-table updates, kvmclock). Each engine gets a column per mode.
    #[arg(long, value_delimiter = ',', value_enum, default_value = "full")]
    pub modes: Vec<super::Mode>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write a bar chart (SVG, log scale) to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Measure I/O instead: disk-read through ATA PIO, virtio-mmio and virtio-pci on each
    /// engine (interp, bt, kvm): MB/s, exits per MB, interrupts per MB; and console-write
    /// through the UART and a virtio-console: bytes/s, exits per KB (--iterations: disk
    /// requests and console lines per cell).
    #[arg(long)]
    pub io: bool,
    /// Measure networking instead: a UDP stream sent and received through the emulated
    /// RTL8139 and through virtio-net (PCI and mmio) on each engine (interp, bt, kvm), a
    /// host-side station at the other end of the cable: packets/s and exits (NIC register
    /// accesses) per packet (--iterations: datagrams per cell).
    #[arg(long, conflicts_with = "io")]
    pub net: bool,
    /// With --io: bytes per request (a multiple of 512).
    #[arg(long, default_value_t = 65536, requires = "io")]
    pub request: u64,
    /// With --io: what the guest checks of the data it reads — `sectors`, the first word of
    /// every sector (the right sectors arrived, in order), or `words`, every word (then an
    /// emulated run spends most of its time in the guest's checksum, not in the device).
    #[arg(long, default_value = "sectors", value_parser = ["sectors", "words"], requires = "io")]
    pub verify: String,
}

/// Runs `vmscope compare`; returns the process exit status.
pub fn compare(args: CompareArgs) -> Result<i32> {
    let (image_name, image) = match args.image.as_deref() {
        None => ("kernel.elf".to_string(), guests::KERNEL_ELF.to_vec()),
        Some(name) => crate::image::read_image(Some(name))?,
    };
    let mut engines = Vec::new();
    for e in &args.engines {
        match EngineId::parse(e) {
            Some(id) if !engines.contains(&id) => engines.push(id),
            Some(_) => {}
            None => bail!(
                "unknown engine {e:?}; choose from {}",
                EngineId::ALL.map(|e| e.name()).join(", ")
            ),
        }
    }
    // Output files are checked before minutes of measuring, not after.
    for path in args.json.iter().chain(args.plot.iter()) {
        check_writable(path)?;
    }
    // The workloads reach the guest on the Multiboot command line; a flat binary or a ROM
    // would never see them (and would run until the boot timeout).
    if detect(&image_name, &image) != ImageKind::Multiboot {
        bail!(
            "{image_name} is not a Multiboot kernel: `compare` names the workloads on the \
             Multiboot command line, so it boots only a kernel with a Multiboot header (the \
             teaching kernel, guests/kernel/, by default)"
        );
    }
    if image != guests::KERNEL_ELF && !image.windows(16).any(|w| w == b"RESULT workload=") {
        bail!(
            "{image_name} does not look like a kernel for `compare`: it never prints \
             \"RESULT workload=\" lines (see guests/kernel/workloads.S for the protocol)"
        );
    }
    if args.io {
        return compare_io(&args, engines);
    }
    if args.net {
        return compare_net(&args, engines);
    }
    let opts = CompareOptions {
        image_name,
        image,
        workloads: args.workloads,
        engines,
        iterations: args.iterations,
        modes: args.modes,
    };
    let report = super::run(&opts, &mut |line| eprintln!("{line}"))?;
    print!("{}", table::render(&report));
    if let Some(path) = &args.json {
        json::write(&report, path)?;
        eprintln!("compare: wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        svg::write(&report, path)?;
        eprintln!("compare: wrote {}", path.display());
    }
    if report.mismatches.is_empty() {
        Ok(0)
    } else {
        for m in &report.mismatches {
            eprintln!("vmscope: CHECKSUM MISMATCH: {m}");
        }
        eprintln!(
            "vmscope: {} result(s) disagree: an engine computed something else; its timings mean nothing",
            report.mismatches.len()
        );
        Ok(1)
    }
}

/// Fails, naming `path`, if it cannot be written — without truncating a file that is there,
/// and leaving no file behind that was not.
fn check_writable(path: &std::path::Path) -> Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot write {} (checked before running)", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// The engines asked for, or else every in-process engine that works here (the others
/// named on stderr with the reason).
fn in_process_engines(engines: Vec<EngineId>, what: &str) -> Vec<EngineId> {
    if !engines.is_empty() {
        return engines;
    }
    [EngineId::Interp, EngineId::Bt, EngineId::Kvm]
        .into_iter()
        .filter(|e| match e.available() {
            Ok(()) => true,
            Err(why) => {
                eprintln!("compare {what}: skipping {}: {why}", e.name());
                false
            }
        })
        .collect()
}

/// `compare --io`: the table on stdout, JSON and SVG if asked.
fn compare_io(args: &CompareArgs, engines: Vec<EngineId>) -> Result<i32> {
    if args.image.is_some() || !args.workloads.is_empty() || args.modes != [super::Mode::Full] {
        bail!("--io measures the teaching kernel's disk-read; it takes no image, --workloads or --modes");
    }
    let engines = in_process_engines(engines, "--io");
    let opts = super::io::IoOptions {
        engines,
        request: args.request,
        requests: args.iterations,
        verify: match args.verify.as_str() {
            "words" => super::suite::DiskVerify::Words,
            _ => super::suite::DiskVerify::Sectors,
        },
    };
    let cells = super::io::run(&opts, &mut |line| eprintln!("{line}"))?;
    let console =
        super::io::run_console(&opts.engines, args.iterations, &mut |l| eprintln!("{l}"))?;
    print!("{}", super::io::table(&cells));
    print!("\n{}", super::io::console_table(&console));
    if let Some(path) = &args.json {
        let json = serde_json::json!({ "io": cells, "console": console });
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("compare: wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, super::io::svg(&cells))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("compare: wrote {}", path.display());
    }
    Ok(0)
}

/// `compare --net`: the table on stdout, JSON if asked.
fn compare_net(args: &CompareArgs, engines: Vec<EngineId>) -> Result<i32> {
    if args.image.is_some() || !args.workloads.is_empty() || args.plot.is_some() {
        bail!("--net measures the teaching kernel's udp-send and udp-recv; it takes no image, --workloads or --plot");
    }
    let engines = in_process_engines(engines, "--net");
    let cells = super::net::run(&engines, args.iterations, &mut |l| eprintln!("{l}"))?;
    print!("{}", super::net::table(&cells));
    if let Some(path) = &args.json {
        let json = serde_json::json!({ "net": cells });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("compare: wrote {}", path.display());
    }
    Ok(0)
}

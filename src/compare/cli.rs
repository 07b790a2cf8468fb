//! The `vmscope compare` command line: arguments, progress on stderr, the table on stdout,
//! `--json` and `--plot` files, and the exit status (1 when checksums disagree).
//! Teaches: nothing about virtualization; it connects the measurement to the user.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

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
}

/// Runs `vmscope compare`; returns the process exit status.
pub fn compare(args: CompareArgs) -> Result<i32> {
    let (image_name, image) = match args.image.as_deref() {
        None => ("kernel.elf".to_string(), guests::KERNEL_ELF.to_vec()),
        Some(name) => match guests::by_name(name) {
            Some(g) if !std::path::Path::new(name).exists() => {
                (g.file_name.to_string(), g.image.to_vec())
            }
            _ => {
                let bytes = std::fs::read(name).with_context(|| format!("reading image {name}"))?;
                (name.to_string(), bytes)
            }
        },
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
        std::fs::File::create(path)
            .with_context(|| format!("cannot write {} (checked before running)", path.display()))?;
    }
    if !image_name.ends_with("kernel.elf") && !image.windows(16).any(|w| w == b"RESULT workload=") {
        bail!(
            "{image_name} does not look like a kernel for `compare`: it never prints \
             \"RESULT workload=\" lines (see guests/kernel/workloads.S for the protocol)"
        );
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

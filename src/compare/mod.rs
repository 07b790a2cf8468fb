//! `vmscope compare`: the teaching kernel's workloads on every engine, in one table.
//! Teaches: where virtualization costs — the same guest operations, timed under emulation,
//! under KVM and under QEMU, with the exits each engine takes and checksums proving that
//! every engine did the same work.
//!
//! How a number is made (host nanoseconds per operation):
//! - engines whose guest TSC is host time (KVM, QEMU TCG, QEMU+KVM): the kernel's own
//!   `guest_tsc` for the workload's loop, divided by the TSC rate (the host's, measured at
//!   start; 1 GHz where KVM scales the guest TSC) and by the operation count. Boot, VM
//!   creation and QEMU's start-up (seconds under PVM) are outside that window.
//! - engines whose TSC is virtual (the interpreter: 1 tick per instruction; Bochs): host wall
//!   time of a boot with N operations minus a boot with 0 operations of the same workload.
//!   Bochs (`bochs.rs`) boots the kernel from a disk image through its BIOS.
//! - exits per operation (in-process engines): the same difference of `Stats` exits, / N.
//!
//! ```no_run
//! use vmscope::compare::{run, CompareOptions};
//! let opts = CompareOptions::for_builtin_kernel();
//! let report = run(&opts, &mut |line| eprintln!("{line}")).unwrap();
//! print!("{}", vmscope::compare::table::render(&report));
//! assert!(report.mismatches.is_empty());
//! ```

pub mod bochs;
pub mod cli;
pub mod engines;
pub mod io;
pub mod json;
pub mod net;
pub mod suite;
pub mod svg;
pub mod table;
pub mod verify;

use std::time::Duration;

use anyhow::{bail, Result};
use serde::Serialize;

pub use engines::{EngineId, Timing};
pub use verify::{verify, Mismatch};

/// What to compare.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The image's name (for loaders and messages) and bytes.
    pub image_name: String,
    pub image: Vec<u8>,
    /// Workloads in table order; empty = the whole suite.
    pub workloads: Vec<String>,
    /// Engines in column order; empty = every engine available here.
    pub engines: Vec<EngineId>,
    /// One iteration count for every workload and engine (else the suite's defaults).
    pub iterations: Option<u64>,
    /// Full virtualization, paravirtualization, or both (each engine gets a column per mode);
    /// empty = full only.
    pub modes: Vec<Mode>,
}

/// How the guest is run: as on hardware, or told it is virtual (`--pv on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Full virtualization: CPUID shows no hypervisor, the kernel traps like on hardware.
    Full,
    /// Paravirtualization: hypercalls, batched page-table updates, kvmclock.
    Pv,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Pv => "pv",
        }
    }

    /// A column header: the engine's label, marked for PV.
    pub fn label(self, engine: EngineId) -> String {
        match self {
            Mode::Full => engine.label(),
            Mode::Pv => format!("{} pv", engine.label()),
        }
    }
}

impl CompareOptions {
    /// The built-in teaching kernel, the whole suite, every available engine, default counts.
    pub fn for_builtin_kernel() -> Self {
        CompareOptions {
            image_name: "kernel.elf".into(),
            image: guests::KERNEL_ELF.to_vec(),
            workloads: Vec::new(),
            engines: Vec::new(),
            iterations: None,
            modes: Vec::new(),
        }
    }
}

/// The host the numbers were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    pub cpu: String,
    pub cores: usize,
    /// The host TSC rate, measured against the monotonic clock.
    pub tsc_ghz: f64,
    /// The KVM flavour ("PVM, software", "VT-x, hardware", …).
    pub kvm: String,
    /// `qemu-system-x86_64 --version`, or null.
    pub qemu: Option<String>,
}

/// One column of the table.
#[derive(Debug, Clone, Serialize)]
pub struct EngineColumn {
    pub engine: String,
    /// "full" or "pv".
    pub mode: String,
    /// The header, e.g. "kvm (PVM, software)".
    pub label: String,
    /// How its ns/op were measured: "guest_tsc" or "wall_minus_baseline".
    pub method: String,
}

/// One cell: a workload on an engine. The first seven keys are the stable JSON interface.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    pub workload: String,
    pub engine: String,
    /// "full" or "pv" (`compare --modes`).
    pub mode: String,
    pub ops: u64,
    /// Host nanoseconds per operation (null only for 0 operations).
    pub ns_per_op: Option<f64>,
    /// Guest instructions per second, where the engine counts instructions.
    pub guest_ips: Option<f64>,
    /// Exits (KVM) or traps to the VMM (emulators) per operation, where reported.
    pub exits_per_op: Option<f64>,
    /// The kernel's checksum, "0x" and 16 hex digits.
    pub checksum: String,
    /// What the host computed for this workload and count (null for unknown workloads).
    pub expected_checksum: Option<String>,
    /// The guest's TSC ticks for the loop, as printed.
    pub guest_tsc: u64,
    /// Guest instructions per operation, where counted.
    pub instructions_per_op: Option<f64>,
}

/// An engine `compare` could not run here.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub engine: String,
    pub reason: String,
}

/// Everything `compare` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub image: String,
    pub host: HostInfo,
    pub engines: Vec<EngineColumn>,
    /// Workloads in row order.
    pub workloads: Vec<String>,
    pub results: Vec<Measurement>,
    /// Engines left out, with why.
    pub skipped: Vec<Skipped>,
    pub mismatches: Vec<Mismatch>,
}

impl Report {
    /// The cell of `workload` on `engine` in full virtualization.
    pub fn cell(&self, workload: &str, engine: &str) -> Option<&Measurement> {
        self.cell_in(workload, engine, Mode::Full.name())
    }

    /// The cell of `workload` on `engine` in `mode` ("full" or "pv").
    pub fn cell_in(&self, workload: &str, engine: &str, mode: &str) -> Option<&Measurement> {
        self.results
            .iter()
            .find(|m| m.workload == workload && m.engine == engine && m.mode == mode)
    }
}

/// Runs the comparison. `progress` gets one line per step (the CLI prints them on stderr).
pub fn run(opts: &CompareOptions, progress: &mut dyn FnMut(String)) -> Result<Report> {
    let workloads: Vec<String> = if opts.workloads.is_empty() {
        suite::SUITE.iter().map(|w| w.name.to_string()).collect()
    } else {
        opts.workloads.clone()
    };
    for (i, name) in workloads.iter().enumerate() {
        if name.is_empty() || name.contains([',', ':', ' ']) {
            bail!("not a workload name: {name:?}");
        }
        if workloads[..i].contains(name) {
            bail!("workload {name:?} is listed twice");
        }
        // The teaching kernel's workloads are the suite's; another kernel may have its own,
        // which the host learns only from the guest (so it needs --iterations).
        let teaching_kernel = opts.image == guests::KERNEL_ELF;
        if suite::workload(name).is_none() && (teaching_kernel || opts.iterations.is_none()) {
            let names = suite::SUITE
                .iter()
                .chain(suite::ON_REQUEST)
                .map(|w| w.name)
                .collect::<Vec<_>>()
                .join(", ");
            if teaching_kernel {
                bail!("unknown workload {name:?}: the teaching kernel has {names}");
            }
            bail!(
                "unknown workload {name:?}: the suite has {names}; for another kernel's \
                 workloads give --iterations"
            );
        }
    }
    let mut skipped = Vec::new();
    let engines: Vec<EngineId> = if opts.engines.is_empty() {
        EngineId::ALL
            .into_iter()
            .filter(|e| match e.available() {
                Ok(()) => true,
                Err(why) => {
                    progress(format!("compare: skipping {}: {why}", e.name()));
                    skipped.push(Skipped {
                        engine: e.name().to_string(),
                        reason: why,
                    });
                    false
                }
            })
            .collect()
    } else {
        for e in &opts.engines {
            if let Err(why) = e.available() {
                bail!("--engines {}: {why}", e.name());
            }
        }
        opts.engines.clone()
    };
    let tsc_hz = engines::host_tsc_hz(Duration::from_millis(100));
    let host = host_info(tsc_hz);
    progress(format!(
        "compare: {} on {} ({} cores, TSC {:.3} GHz, KVM: {})",
        opts.image_name, host.cpu, host.cores, host.tsc_ghz, host.kvm
    ));
    let mut results = Vec::new();
    let mut columns = Vec::new();
    let modes = if opts.modes.is_empty() {
        vec![Mode::Full]
    } else {
        opts.modes.clone()
    };
    let columns_wanted: Vec<(EngineId, Mode)> = engines
        .iter()
        .flat_map(|&e| modes.iter().map(move |&m| (e, m)))
        .filter(|&(e, m)| {
            let runs = m == Mode::Full || e.in_process();
            if !runs {
                progress(format!(
                    "compare: {}: no pv column: vmscope's paravirtual interface is in its own engines only",
                    e.name()
                ));
                skipped.push(Skipped {
                    engine: e.name().to_string(),
                    reason: "pv: vmscope's paravirtual interface is in its own engines only".into(),
                });
            }
            runs
        })
        .collect();
    for (engine, mode) in columns_wanted {
        // The whole suite leaves out what an engine cannot compare; a list asked for runs.
        let mut left_out = Vec::new();
        let workloads: Vec<String> = workloads
            .iter()
            .filter(|w| match suite::not_comparable(w, engine) {
                Some(why) if opts.workloads.is_empty() => {
                    left_out.push((w.to_string(), why));
                    false
                }
                _ => true,
            })
            .cloned()
            .collect();
        for (w, why) in left_out {
            progress(format!(
                "compare: {}: leaving out {w}: {why}",
                engine.name()
            ));
            skipped.push(Skipped {
                engine: engine.name().to_string(),
                reason: format!("{w}: {why}"),
            });
        }
        let count = |name: &str| {
            opts.iterations.unwrap_or_else(|| {
                suite::workload(name).map_or(100, |w| w.default_iterations(engine))
            })
        };
        let (method, cells) = match engine.timing() {
            Timing::TwoBoots => {
                measure::two_boots(engine, mode, opts, &workloads, &count, tsc_hz, progress)?
            }
            Timing::OneBoot => {
                measure::one_boot(engine, mode, opts, &workloads, &count, tsc_hz, progress)?
            }
        };
        columns.push(EngineColumn {
            engine: engine.name().into(),
            mode: mode.name().into(),
            label: mode.label(engine),
            method: method.into(),
        });
        results.extend(cells);
    }
    let mismatches = verify(&results);
    Ok(Report {
        image: opts.image_name.clone(),
        host,
        engines: columns,
        workloads,
        results,
        skipped,
        mismatches,
    })
}

mod measure;

/// Measures one workload with `n` operations on one in-process engine, as `run` does for a
/// cell (the criterion benches use it).
pub fn measure_one(
    engine: EngineId,
    opts: &CompareOptions,
    workload: &str,
    n: u64,
    host_tsc_hz: f64,
) -> Result<Measurement> {
    if !engine.in_process() {
        bail!(
            "measure_one runs in-process engines only, not {}",
            engine.name()
        );
    }
    let (_, mut cells) = measure::two_boots(
        engine,
        Mode::Full,
        opts,
        &[workload.to_string()],
        &|_| n,
        host_tsc_hz,
        &mut |_| {},
    )?;
    Ok(cells.remove(0))
}

fn host_info(tsc_hz: f64) -> HostInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, v)| v.trim().to_string());
    HostInfo {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        tsc_ghz: (tsc_hz / 1e6).round() / 1e3,
        kvm: accel_kvm::detect_flavour().to_string(),
        qemu: engines::qemu_version(),
    }
}

//! Snapshot files from the command line: `vmscope run --save-at N --save FILE` and
//! `vmscope restore FILE [--engine E]`. Teaches: a machine is data — CPU, RAM, every device,
//! the clock — and so it can be written down, checked, and read back into a machine built the
//! same way, under another engine.
//!
//! The format is the `snapfile` crate's (portable: the GUI writes it too). Restoring rebuilds
//! the machine `META` describes (the same devices in the same order, as `vmscope run` attached
//! them), then puts every section's state into it; the bus refuses a state taken from another
//! shape. The engine is chosen anew: engines keep no architectural state of their own, so a
//! machine saved on the translator continues on KVM. Not saved: a disk's contents (a disk file
//! is the disk; it must still be as it was — so for now a machine with disks is refused) and
//! NICs (their cable leads outside the machine).

pub use snapfile::container as file;
pub use snapfile::{load_bytes, parse_meta, parts_from_sections, state_sections, Loaded, Meta};

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use emulator::machine::snapshot::MachineSnapshot;
use emulator::Machine;

use crate::attach::Attached;
use crate::runner::{GuestOutcome, RunOptions};
use crate::EngineChoice;

fn transport_name(t: crate::disk::VirtioTransport) -> String {
    t.name().to_string()
}

fn parse_transport(s: &str) -> Result<crate::disk::VirtioTransport> {
    <crate::disk::VirtioTransport as clap::ValueEnum>::from_str(s, true)
        .map_err(|_| anyhow::anyhow!("META names an unknown virtio transport {s:?}"))
}

/// What `META` says about `machine`, built as `opts` and `attached` say. Refused: machines
/// whose state reaches outside them (disks, NICs).
pub fn meta_for(
    machine: &Machine,
    attached: &Attached,
    opts: &RunOptions,
    image: &str,
) -> Result<Meta> {
    if !opts.disks.is_empty() {
        bail!("a machine with disks cannot be saved or migrated yet: the disk file is not part of the snapshot, and the guest may change it after the save");
    }
    if attached.nic.is_some() {
        bail!(
            "a machine with a NIC cannot be saved or migrated: its cable leads outside the machine"
        );
    }
    Ok(Meta {
        virtio_console: opts.virtio_console.map(transport_name),
        virtio_rng: opts
            .virtio_rng
            .map(|r| (transport_name(r.transport), r.seed)),
        test_devices: opts
            .test_devices
            .iter()
            .map(|d| crate::attach::test_device_name(*d).to_string())
            .collect(),
        ..Meta::describe(machine, image)
    })
}

/// Writes `machine` (stopped at an instruction boundary) to `path`, with what `opts` and
/// `attached` say about how it was built. The file is written whole or not at all.
pub fn save_file(
    machine: &Machine,
    attached: &Attached,
    opts: &RunOptions,
    image: &str,
    path: &Path,
) -> Result<()> {
    let meta = meta_for(machine, attached, opts, image)?;
    let snapshot = machine
        .snapshot()
        .map_err(|e| anyhow::anyhow!("taking the snapshot: {e}"))?;
    let bytes = snapfile::encode_file(&meta, &snapshot.to_parts())?;
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Reads and checks `path`; every error names the file, and the section and offset.
pub fn load_file(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    load_bytes(&bytes).with_context(|| format!("{} is not a usable snapshot", path.display()))
}

/// The options that rebuild the machine `meta` describes.
pub fn rebuild_options(
    meta: &Meta,
    engine: EngineChoice,
    max_instructions: Option<u64>,
) -> Result<RunOptions> {
    let test_devices = meta
        .test_devices
        .iter()
        .map(|n| {
            <crate::attach::TestDevice as clap::ValueEnum>::from_str(n, true)
                .map_err(|_| anyhow::anyhow!("META names an unknown test device {n:?}"))
        })
        .collect::<Result<_>>()?;
    Ok(RunOptions {
        engine,
        memory: meta.memory,
        pv: meta.pv,
        max_instructions,
        virtio_console: meta
            .virtio_console
            .as_deref()
            .map(parse_transport)
            .transpose()?,
        virtio_rng: match &meta.virtio_rng {
            Some((t, seed)) => Some(crate::attach::RngSpec {
                transport: parse_transport(t)?,
                seed: *seed,
            }),
            None => None,
        },
        test_devices,
        ..RunOptions::default()
    })
}

/// The machine `loaded` describes, built and restored (no image is loaded: RAM comes from
/// the file).
pub fn rebuild(loaded: &Loaded, opts: &RunOptions) -> Result<(Machine, Attached)> {
    let (mut machine, attached) = crate::runner::build_board(opts)?;
    let snapshot = MachineSnapshot::from_parts(loaded.parts.clone())
        .map_err(|e| anyhow::anyhow!("the snapshot's parts: {e}"))?;
    machine
        .restore(&snapshot)
        .map_err(|e| anyhow::anyhow!("restoring into a machine built from META: {e}"))?;
    Ok((machine, attached))
}

/// `vmscope restore FILE`: rebuild, restore, run to the end on `engine`.
pub fn restore_and_run(
    path: &Path,
    engine: EngineChoice,
    max_instructions: Option<u64>,
    serial: &mut dyn Write,
    notice: &mut dyn FnMut(String),
) -> Result<GuestOutcome> {
    let loaded = load_file(path)?;
    let opts = rebuild_options(&loaded.meta, engine, max_instructions)?;
    let (machine, attached) = rebuild(&loaded, &opts)?;
    notice(format!(
        "vmscope: restored {} after {} instructions ({:.6} s of guest time)",
        path.display(),
        loaded.meta.instructions,
        loaded.meta.virtual_ns as f64 / 1e9
    ));
    let image = format!("{} (restored from {})", loaded.meta.image, path.display());
    crate::runner::run_machine(machine, image, &attached, &opts, serial, notice)
}

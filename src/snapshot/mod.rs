//! Snapshot files from the command line: `vmscope run --save-at N --save FILE` and
//! `vmscope restore FILE [--engine E]`. Teaches: a machine is data — CPU, RAM, every device,
//! the clock — and so it can be written down, checked, and read back into a machine built the
//! same way, under another engine.
//!
//! The format is the `snapfile` crate's (portable: the GUI writes it too). Restoring rebuilds
//! the machine `META` describes (the same devices in the same order, as `vmscope run` attached
//! them), then puts every section's state into it; the bus refuses a state taken from another
//! shape. The engine is chosen anew: engines keep no architectural state of their own, so a
//! machine saved on the translator continues on KVM. Disks are saved whole (sections `DSKi`:
//! their non-zero 4 KiB chunks), and restored into new files — the `--disk FILE`s of
//! `vmscope restore`, or temporary copies — never over the file they were saved from, which
//! the saved run may have changed since. Not saved: NICs (their cable leads outside the
//! machine).

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
        disks: attached
            .disks
            .iter()
            .map(|d| snapfile::DiskMeta {
                interface: d.spec.interface.name().into(),
                read_only: d.spec.read_only,
                bytes: d.sectors * 512,
                saved_from: d.spec.path.display().to_string(),
            })
            .collect(),
        ..Meta::describe(machine, image)
    })
}

// ANCHOR: disk_image
/// A disk's contents as they are now: its non-zero 4 KiB chunks.
fn disk_image(disk: &crate::disk::AttachedDisk) -> Result<snapfile::DiskImage> {
    const READ: u64 = 1 << 20;
    disk.journal.with_backend(|backend| {
        let bytes = backend.len();
        let mut chunks = Vec::new();
        let mut buf = vec![0u8; READ as usize];
        for at in (0..bytes).step_by(READ as usize) {
            let part = &mut buf[..READ.min(bytes - at) as usize];
            backend
                .read_at(at, part)
                .with_context(|| format!("reading {} at {at:#x}", disk.spec.path.display()))?;
            for (i, chunk) in part.chunks(snapfile::DISK_CHUNK as usize).enumerate() {
                if chunk.iter().any(|b| *b != 0) {
                    chunks.push((at / snapfile::DISK_CHUNK + i as u64, chunk.to_vec()));
                }
            }
        }
        Ok(snapfile::DiskImage { bytes, chunks })
    })
}
// ANCHOR_END: disk_image

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
    let disks = attached
        .disks
        .iter()
        .map(disk_image)
        .collect::<Result<Vec<_>>>()?;
    let bytes = snapfile::encode_file_with_disks(&meta, &snapshot.to_parts(), &disks)?;
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
    disk_files: &[std::path::PathBuf],
) -> Result<RunOptions> {
    if disk_files.len() != meta.disks.len() {
        bail!(
            "META describes {} disks, and {} files were given for them",
            meta.disks.len(),
            disk_files.len()
        );
    }
    let disks = meta
        .disks
        .iter()
        .zip(disk_files)
        .map(|(d, path)| {
            let mut spec: crate::disk::DiskSpec = format!("{},if={}", path.display(), d.interface)
                .parse()
                .map_err(|e| anyhow::anyhow!("META's disk: {e}"))?;
            spec.read_only = d.read_only;
            Ok(spec)
        })
        .collect::<Result<_>>()?;
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
        disks,
        ..RunOptions::default()
    })
}

/// The machine `loaded` describes, built and restored (no image is loaded: RAM comes from
/// the file).
pub fn rebuild(loaded: &Loaded, opts: &RunOptions) -> Result<(Machine, Attached)> {
    let (mut machine, attached) = crate::runner::build_board(opts)?;
    for disk in &attached.disks {
        // The files hold the saved contents (`place_disks`); the devices' state names the
        // saving process's checkpoints of them.
        disk.journal.accept_saved_mark();
    }
    let snapshot = MachineSnapshot::from_parts(loaded.parts.clone())
        .map_err(|e| anyhow::anyhow!("the snapshot's parts: {e}"))?;
    machine
        .restore(&snapshot)
        .map_err(|e| anyhow::anyhow!("restoring into a machine built from META: {e}"))?;
    Ok((machine, attached))
}

/// The saved disks written out for a restored run: into the new files the user named
/// (`--disk FILE`, kept), else into temporary files removed when the run ends.
pub struct RestoredDisks {
    pub paths: Vec<std::path::PathBuf>,
    temporary: Vec<std::path::PathBuf>,
}

impl Drop for RestoredDisks {
    fn drop(&mut self) {
        for path in &self.temporary {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes each saved disk of `loaded` to `wanted[i]` (a file that must not exist yet: a
/// restore never overwrites), or to a temporary file.
pub fn place_disks(loaded: &Loaded, wanted: &[std::path::PathBuf]) -> Result<RestoredDisks> {
    use std::os::unix::fs::FileExt;
    if wanted.len() > loaded.disks.len() {
        bail!(
            "{} --disk files for a snapshot with {} disks",
            wanted.len(),
            loaded.disks.len()
        );
    }
    let mut placed = RestoredDisks {
        paths: Vec::new(),
        temporary: Vec::new(),
    };
    for (i, image) in loaded.disks.iter().enumerate() {
        let path = match wanted.get(i) {
            Some(p) => p.clone(),
            None => {
                let p = std::env::temp_dir().join(format!(
                    "vmscope-restored-{}-disk{i}.img",
                    std::process::id()
                ));
                let _ = std::fs::remove_file(&p);
                placed.temporary.push(p.clone());
                p
            }
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| {
                format!(
                    "creating {} for saved disk {i} (a restore writes only new files)",
                    path.display()
                )
            })?;
        file.set_len(image.bytes)?;
        for (n, bytes) in &image.chunks {
            file.write_all_at(bytes, n * snapfile::DISK_CHUNK)
                .with_context(|| format!("writing saved disk {i} to {}", path.display()))?;
        }
        file.sync_all()?;
        placed.paths.push(path);
    }
    Ok(placed)
}

/// `vmscope restore FILE [--disk NEW]…`: rebuild, restore, run to the end on `engine`.
pub fn restore_and_run(
    path: &Path,
    engine: EngineChoice,
    max_instructions: Option<u64>,
    disk_files: &[std::path::PathBuf],
    serial: &mut dyn Write,
    notice: &mut dyn FnMut(String),
) -> Result<GuestOutcome> {
    let loaded = load_file(path)?;
    let disks = place_disks(&loaded, disk_files)?;
    let opts = rebuild_options(&loaded.meta, engine, max_instructions, &disks.paths)?;
    let (machine, attached) = rebuild(&loaded, &opts)?;
    notice(format!(
        "vmscope: restored {} after {} instructions ({:.6} s of guest time)",
        path.display(),
        loaded.meta.instructions,
        loaded.meta.virtual_ns as f64 / 1e9
    ));
    for (i, p) in disks.paths.iter().enumerate() {
        let kept = i < disk_files.len();
        notice(format!(
            "vmscope: saved disk {i} ({}) runs from {}{}",
            loaded.meta.disks[i].saved_from,
            p.display(),
            if kept {
                ""
            } else {
                " — a temporary copy, gone when the run ends (keep it with --disk FILE)"
            }
        ));
    }
    let image = format!("{} (restored from {})", loaded.meta.image, path.display());
    crate::runner::run_machine(machine, image, &attached, &opts, serial, notice)
}

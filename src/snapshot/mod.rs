//! Snapshot files: a running guest saved to a file and continued later, on any engine.
//! Teaches: a machine is data — CPU, RAM, every device, the clock — and so it can be written
//! down, checked, and read back into a machine built the same way, under another engine.
//!
//! A file (`file.rs` is the container) holds these sections:
//!
//! | tag    | what                                                                          |
//! |--------|-------------------------------------------------------------------------------|
//! | `META` | JSON: what to rebuild — RAM size, paravirtualization, the devices `run` added  |
//! |        | — and what is informational: the image, the engine that saved, the count      |
//! | `CPU ` | the `CpuState` (postcard)                                                     |
//! | `STAT` | the counters (`Stats`), so a restored run keeps counting where it was          |
//! | `KVMC` | the kvmclock hand-over bookkeeping                                            |
//! | `BUS ` | every device, the interrupt controllers, lines, deadlines, the virtual clock  |
//! | `ROM ` | the firmware ROM                                                              |
//! | `RAM ` | guest RAM as its non-zero 4 KiB pages (page number, bytes), deflated          |
//!
//! Restoring rebuilds the machine `META` describes (the same devices in the same order, as
//! `vmscope run` attached them), then puts every section's state into it; the bus refuses a
//! state taken from another shape. The engine is chosen anew: engines keep no architectural
//! state of their own, so a machine saved on the translator continues on KVM. Not saved: a
//! disk's contents (a disk file is the disk; it must still be as it was — so for now a
//! machine with disks is refused) and NICs (their cable leads outside the machine).

pub mod file;

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use emulator::machine::snapshot::{MachineSnapshot, SnapshotParts, MACHINE_PARTS_VERSION};
use emulator::Machine;
use serde::{Deserialize, Serialize};

use crate::attach::Attached;
use crate::runner::{GuestOutcome, RunOptions};
use crate::EngineChoice;
use file::Section;

/// `META`: how to rebuild the machine, and what it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// "vmscope snapshot".
    pub kind: String,
    /// The vmscope that wrote it (CARGO_PKG_VERSION).
    pub vmscope: String,
    /// The layout of the CPU, counters and kvmclock sections
    /// (`emulator::machine::snapshot::MACHINE_PARTS_VERSION`; 1 in files written before it
    /// was recorded).
    #[serde(default = "first_parts_version")]
    pub machine_parts_version: u16,
    /// What ran: the image as the loader described it.
    pub image: String,
    /// Guest instructions retired when saved (counted by the emulated engines and by KVM
    /// while single-stepping).
    pub instructions: u64,
    /// Virtual time when saved, in ns.
    pub virtual_ns: u64,
    pub memory: u64,
    pub pv: bool,
    /// `--virtio-console`'s transport, if one was attached.
    pub virtio_console: Option<String>,
    /// `--virtio-rng`'s transport and seed.
    pub virtio_rng: Option<(String, u64)>,
    /// `--device` names.
    pub test_devices: Vec<String>,
}

const KIND: &str = "vmscope snapshot";

fn first_parts_version() -> u16 {
    1
}

fn transport_name(t: crate::disk::VirtioTransport) -> String {
    t.name().to_string()
}

fn parse_transport(s: &str) -> Result<crate::disk::VirtioTransport> {
    <crate::disk::VirtioTransport as clap::ValueEnum>::from_str(s, true)
        .map_err(|_| anyhow::anyhow!("META names an unknown virtio transport {s:?}"))
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).with_context(|| format!("encoding {what}"))
}

fn decode<T: for<'de> Deserialize<'de>>(tag: &str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| anyhow::anyhow!("section {tag}: does not decode: {e}"))
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
        kind: KIND.into(),
        vmscope: env!("CARGO_PKG_VERSION").into(),
        machine_parts_version: MACHINE_PARTS_VERSION,
        image: image.into(),
        instructions: machine.stats.instructions,
        virtual_ns: machine.bus.now_ns(),
        memory: machine.ram.size(),
        pv: machine.pv,
        virtio_console: opts.virtio_console.map(transport_name),
        virtio_rng: opts
            .virtio_rng
            .map(|r| (transport_name(r.transport), r.seed)),
        test_devices: opts
            .test_devices
            .iter()
            .map(|d| crate::attach::test_device_name(*d).to_string())
            .collect(),
    })
}

/// The machine's state without RAM: the `CPU `, `STAT`, `KVMC`, `BUS ` and `ROM ` sections
/// (a snapshot file adds `META` and `RAM `; a migration's last message is these).
pub fn state_sections(parts: &SnapshotParts) -> Result<Vec<Section>> {
    Ok(vec![
        Section::new(b"CPU ", encode("the CPU", &parts.cpu)?),
        Section::new(b"STAT", encode("the counters", &parts.stats)?),
        Section::new(b"KVMC", encode("kvmclock", &parts.kvmclock)?),
        Section::new(b"BUS ", encode("the bus", &parts.bus)?),
        Section::new(b"ROM ", parts.rom.clone()),
    ])
}

/// The section tagged `tag`, or an error saying it is missing.
fn find_section<'a>(sections: &'a [Section], tag: &[u8; 4]) -> Result<&'a [u8]> {
    sections
        .iter()
        .find(|s| &s.tag == tag)
        .map(|s| s.data.as_slice())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the file has no {} section",
                String::from_utf8_lossy(tag).trim_end()
            )
        })
}

/// [`state_sections`] read back into parts, with `pages` for RAM.
pub fn parts_from_sections(
    sections: &[Section],
    meta: &Meta,
    pages: Vec<(u64, Vec<u8>)>,
) -> Result<SnapshotParts> {
    Ok(SnapshotParts {
        cpu: decode("CPU", find_section(sections, b"CPU ")?)?,
        stats: decode("STAT", find_section(sections, b"STAT")?)?,
        kvmclock: decode("KVMC", find_section(sections, b"KVMC")?)?,
        bus: decode("BUS", find_section(sections, b"BUS ")?)?,
        rom: find_section(sections, b"ROM ")?.to_vec(),
        ram_size: meta.memory,
        pages,
    })
}

/// `META`'s JSON read back and checked: its kind and the layout of the machine's parts.
pub fn parse_meta(json: &[u8]) -> Result<Meta> {
    let meta: Meta =
        serde_json::from_slice(json).map_err(|e| anyhow::anyhow!("section META: {e}"))?;
    if meta.kind != KIND {
        bail!("section META: kind {:?}, not {KIND:?}", meta.kind);
    }
    if meta.machine_parts_version != MACHINE_PARTS_VERSION {
        bail!(
            "section META: the CPU and counters are in layout {}, this vmscope reads layout {MACHINE_PARTS_VERSION}",
            meta.machine_parts_version
        );
    }
    Ok(meta)
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
    let parts = snapshot.to_parts();
    let mut sections = vec![Section::new(b"META", serde_json::to_vec_pretty(&meta)?)];
    sections.extend(state_sections(&parts)?);
    sections.push(Section::new(b"RAM ", encode("RAM", &parts.pages)?));
    let bytes = file::encode(&sections);
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// A snapshot file read back: its `META` and the machine's parts.
pub struct Loaded {
    pub meta: Meta,
    pub parts: SnapshotParts,
}

/// Reads and checks `path`; every error names the file, and the section and offset.
pub fn load_file(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    load_bytes(&bytes).with_context(|| format!("{} is not a usable snapshot", path.display()))
}

/// [`load_file`] on bytes.
pub fn load_bytes(bytes: &[u8]) -> Result<Loaded> {
    let sections = file::decode(bytes)?;
    let meta = parse_meta(find_section(&sections, b"META")?)?;
    let pages = decode("RAM", find_section(&sections, b"RAM ")?)?;
    let parts = parts_from_sections(&sections, &meta, pages)?;
    Ok(Loaded { meta, parts })
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

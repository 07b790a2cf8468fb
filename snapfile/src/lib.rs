//! The snapshot file format, portable: a machine's parts as sections of a checksummed
//! container, with `META` saying how to rebuild the machine. Teaches: a file format is a
//! promise to a future reader — versions, lengths and checksums are how it is kept.
//!
//! A file (`container.rs` is the container) holds these sections:
//!
//! | tag    | what                                                                          |
//! |--------|-------------------------------------------------------------------------------|
//! | `META` | JSON: what to rebuild — RAM size, paravirtualization, the devices `run` added  |
//! |        | — and what is informational: the image, the count and time when saved          |
//! | `CPU ` | the `CpuState` (postcard)                                                     |
//! | `STAT` | the counters (`Stats`), so a restored run keeps counting where it was          |
//! | `KVMC` | the kvmclock hand-over bookkeeping                                            |
//! | `BUS ` | every device, the interrupt controllers, lines, deadlines, the virtual clock  |
//! | `ROM ` | the firmware ROM                                                              |
//! | `RAM ` | guest RAM as its non-zero 4 KiB pages (page number, bytes), deflated          |
//!
//! Bytes in, bytes out: `vmscope run --save`/`vmscope restore` write and read files with it,
//! a live migration sends the state sections over a socket, the GUI saves from the window
//! (and, in the browser, as a download).

pub mod container;

use anyhow::{bail, Context, Result};
use emulator::machine::snapshot::{SnapshotParts, MACHINE_PARTS_VERSION};
use emulator::Machine;
use serde::{Deserialize, Serialize};

use container::Section;

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
    /// The disks, in the order they were attached; disk `i`'s contents are section `DSKi`.
    #[serde(default)]
    pub disks: Vec<DiskMeta>,
}

/// One disk as `META` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskMeta {
    /// `ide`, `virtio-pci` or `virtio-mmio` (`--disk FILE,if=…`).
    pub interface: String,
    pub read_only: bool,
    /// Its size in bytes.
    pub bytes: u64,
    /// The file it was saved from (informational: a restore never writes there).
    pub saved_from: String,
}

/// A disk's contents: its non-zero 4 KiB chunks (chunk number, bytes; the last may be
/// shorter), ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskImage {
    pub bytes: u64,
    pub chunks: Vec<(u64, Vec<u8>)>,
}

/// The unit of [`DiskImage::chunks`].
pub const DISK_CHUNK: u64 = 4096;

/// At most this many disks in a file (sections `DSK0` … `DSK9`).
pub const MAX_DISKS: usize = 10;

fn disk_tag(i: usize) -> [u8; 4] {
    [b'D', b'S', b'K', b'0' + i as u8]
}

impl DiskImage {
    /// Checks the chunks against the size: in order, inside the disk, each whole but the last.
    pub fn check(&self) -> Result<()> {
        let mut previous = None;
        for (n, bytes) in &self.chunks {
            let at = n.checked_mul(DISK_CHUNK).filter(|a| *a < self.bytes);
            let Some(at) = at else {
                bail!("chunk {n:#x} is beyond the disk's {} bytes", self.bytes);
            };
            if previous.is_some_and(|p| p >= *n) {
                bail!("chunk {n:#x} out of order");
            }
            let want = DISK_CHUNK.min(self.bytes - at);
            if bytes.len() as u64 != want {
                bail!("chunk {n:#x} holds {} bytes, not {want}", bytes.len());
            }
            previous = Some(*n);
        }
        Ok(())
    }
}

const KIND: &str = "vmscope snapshot";

fn first_parts_version() -> u16 {
    1
}

impl Meta {
    /// `META` for `machine` as it is now, with no devices beyond the board's; the caller adds
    /// the ones it attached.
    pub fn describe(machine: &Machine, image: &str) -> Meta {
        Meta {
            kind: KIND.into(),
            vmscope: env!("CARGO_PKG_VERSION").into(),
            machine_parts_version: MACHINE_PARTS_VERSION,
            image: image.into(),
            instructions: machine.stats.instructions,
            virtual_ns: machine.bus.now_ns(),
            memory: machine.ram.size(),
            pv: machine.pv,
            virtio_console: None,
            virtio_rng: None,
            test_devices: Vec::new(),
            disks: Vec::new(),
        }
    }
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).with_context(|| format!("encoding {what}"))
}

fn decode<T: for<'de> Deserialize<'de>>(tag: &str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| anyhow::anyhow!("section {tag}: does not decode: {e}"))
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

/// A whole snapshot file: `META`, the state sections and `RAM `.
pub fn encode_file(meta: &Meta, parts: &SnapshotParts) -> Result<Vec<u8>> {
    encode_file_with_disks(meta, parts, &[])
}

/// [`encode_file`] with the disks' contents, one `DSKi` section each, in `meta.disks`' order.
pub fn encode_file_with_disks(
    meta: &Meta,
    parts: &SnapshotParts,
    disks: &[DiskImage],
) -> Result<Vec<u8>> {
    if disks.len() != meta.disks.len() || disks.len() > MAX_DISKS {
        bail!(
            "{} disk images for {} disks in META (at most {MAX_DISKS})",
            disks.len(),
            meta.disks.len()
        );
    }
    let mut sections = vec![Section::new(b"META", serde_json::to_vec_pretty(meta)?)];
    sections.extend(state_sections(parts)?);
    sections.push(Section::new(b"RAM ", encode("RAM", &parts.pages)?));
    for (i, disk) in disks.iter().enumerate() {
        sections.push(Section::new(&disk_tag(i), encode("a disk", disk)?));
    }
    Ok(container::encode(&sections))
}

/// A snapshot file read back: its `META`, the machine's parts and the disks' contents.
pub struct Loaded {
    pub meta: Meta,
    pub parts: SnapshotParts,
    pub disks: Vec<DiskImage>,
}

/// A snapshot file's bytes read back and checked; errors name the section and offset.
pub fn load_bytes(bytes: &[u8]) -> Result<Loaded> {
    let sections = container::decode(bytes)?;
    let meta = parse_meta(find_section(&sections, b"META")?)?;
    let pages = decode("RAM", find_section(&sections, b"RAM ")?)?;
    let parts = parts_from_sections(&sections, &meta, pages)?;
    if meta.disks.len() > MAX_DISKS {
        bail!(
            "section META: {} disks, at most {MAX_DISKS}",
            meta.disks.len()
        );
    }
    let mut disks = Vec::new();
    for (i, described) in meta.disks.iter().enumerate() {
        let tag = disk_tag(i);
        let name = String::from_utf8_lossy(&tag).into_owned();
        let disk: DiskImage = decode(&name, find_section(&sections, &tag)?)?;
        if disk.bytes != described.bytes {
            bail!(
                "section {name}: {} bytes, META says {}",
                disk.bytes,
                described.bytes
            );
        }
        disk.check()
            .map_err(|e| anyhow::anyhow!("section {name}: {e}"))?;
        disks.push(disk);
    }
    Ok(Loaded { meta, parts, disks })
}

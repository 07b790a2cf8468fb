//! Snapshot files from the debugger: the paused machine written as a `snapfile`, and a
//! snapfile opened as a new session. Teaches: a machine stopped between two instructions is
//! just data — CPU, RAM, devices, clock — that another program (`vmscope restore`) can continue.
//!
//! Saving writes what `vmscope run --save-at N --save FILE` writes: `META` says how to rebuild
//! the machine (RAM size, paravirtualization, the devices beyond the board's), the other
//! sections hold its state. The GUI builds only the PC board plus, on the desktop, `--disk`
//! disks, so a machine with disks is refused: their contents live in files outside the
//! machine (the CLI saves them; the GUI does not yet). Opening is the reverse: a file that
//! starts with `snapfile::container::MAGIC` is restored into a machine built as `META` says —
//! only board-only snapshots, since the GUI has no way to place a virtio-console, an rng, a
//! test device or a disk the way `vmscope run` did. The restored state becomes the image's
//! start: Reload returns there, and step back replays from it, never before it.

use std::borrow::Cow;
use std::rc::Rc;

use emulator::machine::loader::BootMethod;
use emulator::machine::snapshot::MachineSnapshot;
use emulator::Machine;

use super::{GuestImage, Session};

/// The file name ending the GUI gives snapshots (the CLI takes any name).
pub const SNAPSHOT_EXTENSION: &str = "vmsnap";

/// The most guest RAM a snapshot may ask the GUI for: more than the window's guests use, and
/// in a browser what a 32-bit WebAssembly memory can hold beside the rest of the page.
#[cfg(not(target_arch = "wasm32"))]
pub const MAX_RESTORED_MEMORY: u64 = 4 << 30;
#[cfg(target_arch = "wasm32")]
pub const MAX_RESTORED_MEMORY: u64 = 1 << 30;

/// Where a restored guest starts: the snapshot file's `META` and the machine state it holds.
#[derive(Debug)]
pub struct SavedStart {
    pub meta: snapfile::Meta,
    pub snapshot: MachineSnapshot,
}

/// Does `bytes` look like a snapshot file (its magic number), rather than a guest image?
pub fn is_snapshot_file(bytes: &[u8]) -> bool {
    bytes.starts_with(snapfile::container::MAGIC)
}

/// The devices `meta` names that the GUI cannot rebuild (it builds the board and nothing else).
fn devices_beyond_the_board(meta: &snapfile::Meta) -> Vec<String> {
    let mut extra = Vec::new();
    if let Some(t) = &meta.virtio_console {
        extra.push(format!("a virtio-console ({t})"));
    }
    if let Some((t, _)) = &meta.virtio_rng {
        extra.push(format!("a virtio-rng ({t})"));
    }
    extra.extend(meta.test_devices.iter().map(|d| format!("the {d}")));
    extra.extend(
        meta.disks
            .iter()
            .map(|d| format!("a disk ({}, {} bytes)", d.interface, d.bytes)),
    );
    extra
}

impl GuestImage {
    /// A snapshot file's bytes as a guest that starts where it was saved. Every problem with
    /// the file is an error naming it: damaged sections (with their offset), a layout this
    /// build does not read, devices the GUI cannot rebuild, a machine it cannot make.
    pub fn from_snapshot(name: &str, bytes: &[u8]) -> Result<GuestImage, String> {
        let loaded = snapfile::load_bytes(bytes)
            .map_err(|e| format!("{name} is not a usable snapshot: {e:#}"))?;
        let meta = loaded.meta;
        let extra = devices_beyond_the_board(&meta);
        if !extra.is_empty() {
            return Err(format!(
                "{name} was saved from a machine with {}: the GUI builds only the PC board, so \
                 restore it with `vmscope restore {name}`",
                extra.join(", ")
            ));
        }
        if meta.memory > MAX_RESTORED_MEMORY {
            return Err(format!(
                "{name} holds a machine with {} MiB of RAM; the GUI restores at most {} MiB \
                 (`vmscope restore {name}` has no such limit)",
                meta.memory >> 20,
                MAX_RESTORED_MEMORY >> 20
            ));
        }
        let snapshot = MachineSnapshot::from_parts(loaded.parts)
            .map_err(|e| format!("{name}: the snapshot's parts: {e}"))?;
        Ok(GuestImage {
            name: name.to_string(),
            bytes: Cow::Borrowed(&[]),
            cmdline: String::new(),
            memory: meta.memory,
            boot: BootMethod::Direct,
            disks: Vec::new(),
            restore: Some(Rc::new(SavedStart { meta, snapshot })),
        })
    }

    /// A file the user opened: a snapshot file if it has the magic number, else an image.
    pub fn from_file(name: &str, bytes: Vec<u8>) -> Result<GuestImage, String> {
        if is_snapshot_file(&bytes) {
            GuestImage::from_snapshot(name, &bytes)
        } else {
            Ok(GuestImage::from_bytes(name, bytes))
        }
    }

    /// Instructions retired where this guest starts: 0 for an image, the saved count for a
    /// snapshot file.
    pub fn start_position(&self) -> u64 {
        self.restore
            .as_ref()
            .map_or(0, |r| r.snapshot.instructions())
    }

    /// The machine a restored guest starts in, built as `META` says and restored.
    pub(super) fn boot_restored(&self, start: &SavedStart) -> Result<(Machine, String), String> {
        let meta = &start.meta;
        let mut machine = Machine::new(meta.memory)
            .map_err(|e| format!("cannot create a machine with {} bytes: {e}", meta.memory))?;
        machine.pv = meta.pv;
        machine.restore(&start.snapshot).map_err(|e| {
            format!(
                "{}: restoring into a machine built from META: {e}",
                self.name
            )
        })?;
        let loaded = format!(
            "{}: a snapshot of {} after {} instructions ({:.6} s of guest time; saved by vmscope {})",
            self.name,
            meta.image,
            meta.instructions,
            meta.virtual_ns as f64 / 1e9,
            meta.vmscope
        );
        Ok((machine, loaded))
    }
}

/// `s` as a file-name part: letters, digits, `.`, `_` and `-`; anything else becomes `_`.
fn file_name_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Session {
    /// Why this session's machine cannot be written to a snapshot file, if it cannot.
    pub fn snapshot_file_blocker(&self) -> Option<String> {
        if !self.image.disks.is_empty() {
            let labels: Vec<&str> = self.image.disks.iter().map(|d| d.label.as_str()).collect();
            return Some(format!(
                "this machine has disks ({}): their contents live in files outside the machine, \
                 which the GUI does not put in a snapshot — save with `vmscope run … --disk … \
                 --save-at N --save FILE` instead",
                labels.join(", ")
            ));
        }
        None
    }

    /// A name for this session's snapshot: `vmscope-<image stem>-<instructions>.vmsnap`.
    pub fn snapshot_file_name(&self) -> String {
        let file = self.image.name.rsplit(['/', '\\']).next().unwrap_or("");
        let mut stem = file.split('.').next().unwrap_or("").to_string();
        if self.image.restore.is_some() {
            // "vmscope-demo-1200" saved again is "vmscope-demo-<now>", not "vmscope-vmscope-…".
            if let Some(rest) = stem.strip_prefix("vmscope-") {
                stem = match rest.rsplit_once('-') {
                    Some((base, n)) if n.bytes().all(|b| b.is_ascii_digit()) => base.into(),
                    _ => rest.into(),
                };
            }
        }
        if stem.is_empty() {
            stem = "guest".into();
        }
        format!(
            "vmscope-{}-{}.{SNAPSHOT_EXTENSION}",
            file_name_part(&stem),
            self.position()
        )
    }

    /// The machine as a snapshot file, paused first if it runs (between two GUI frames it is
    /// at an instruction boundary: no engine is inside `run`). `vmscope restore` and
    /// [`GuestImage::from_snapshot`] read it.
    pub fn save_snapshot(&mut self) -> Result<Vec<u8>, String> {
        self.pause();
        if let Some(why) = self.snapshot_file_blocker() {
            return Err(format!("cannot save a snapshot: {why}"));
        }
        let image = match &self.image.restore {
            Some(start) => start.meta.image.clone(),
            None => self.loaded.clone(),
        };
        let meta = snapfile::Meta::describe(&self.machine, &image);
        let snapshot = self
            .machine
            .snapshot()
            .map_err(|e| format!("cannot save a snapshot: {e}"))?;
        snapfile::encode_file(&meta, &snapshot.to_parts())
            .map_err(|e| format!("cannot save a snapshot: {e:#}"))
    }
}

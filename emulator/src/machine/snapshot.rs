//! Machine snapshots: the whole PC — CPU, RAM, ROM, every device, the clock — as plain data.
//! Teaches: restore a snapshot, re-execute deterministically, and you are back at any earlier
//! instruction; this is how a debugger steps *back* without recording every instruction.
//!
//! A [`MachineSnapshot`] holds the `CpuState`, the statistics, the ROM, the bus's
//! [`devices::BusSnapshot`] (every device, the interrupt controllers, pending lines and
//! requests, deadlines, the virtual clock) and guest RAM. RAM is kept as its non-zero 4 KiB
//! pages, each an immutable `Rc<[u8]>`; [`Machine::snapshot_after`] shares the pages that did
//! not change since the previous snapshot, so a ring of snapshots costs the RAM the guest
//! touched once plus what it rewrote between them, not K times the RAM size.
//!
//! Engines keep no architectural state of their own (the "one state" invariant), so a snapshot
//! restored into a machine plus a fresh interpreter continues exactly as the original run did;
//! the interpreter's caches (decoded instructions, shadow page tables) only affect speed and the
//! MMU's hit/miss counters. Restoring needs a machine of the same shape (same RAM size, same
//! devices) — one booted from the same image, say; anything else is a `SnapshotError`.
//!
//! **As data.** [`MachineSnapshot::to_parts`] takes a snapshot apart into [`SnapshotParts`],
//! every piece `Serialize + Deserialize` (encode them with postcard, as the devices do); and
//! [`MachineSnapshot::from_parts`] checks the parts and puts a snapshot back together. Devices
//! are already encoded inside the bus's part (each with its own version, see
//! `devices::snapshot`); the CPU, statistics and kvmclock parts are covered by
//! [`MACHINE_PARTS_VERSION`], which a file format stores next to them. Step back never goes
//! through the parts: its snapshots keep RAM as shared pages.

use std::rc::Rc;

use devices::{BusSnapshot, SnapshotError};

use super::{Machine, Stats};
use crate::cpu::CpuState;

const PAGE: usize = 4096;

/// The layout of [`SnapshotParts`]'s own pieces — `CpuState` (with its segment caches, FPU,
/// MSRs, pending events), `Stats` and the kvmclock bookkeeping — as postcard writes them: 2
/// (since NMI blocking joined the pending events).
/// The bus part carries its own versions.
pub const MACHINE_PARTS_VERSION: u16 = 2;

/// A machine snapshot as serializable pieces: what a snapshot file or a migration stream
/// writes. `pages` are the non-zero 4 KiB RAM pages, ascending by page number.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SnapshotParts {
    pub cpu: CpuState,
    pub stats: Stats,
    pub kvmclock: crate::pv::kvmclock::Kvmclock,
    pub bus: BusSnapshot,
    pub rom: Vec<u8>,
    pub ram_size: u64,
    pub pages: Vec<(u64, Vec<u8>)>,
}

/// A copy of the whole machine at an instruction boundary.
#[derive(Debug)]
pub struct MachineSnapshot {
    pub cpu: CpuState,
    pub stats: Stats,
    kvmclock: crate::pv::kvmclock::Kvmclock,
    pub bus: BusSnapshot,
    rom: Vec<u8>,
    ram_size: u64,
    /// Non-zero RAM pages, ascending by page number.
    pages: Vec<(u64, Rc<[u8]>)>,
}

impl MachineSnapshot {
    /// Guest instructions retired when the snapshot was taken (the interpreter's count).
    pub fn instructions(&self) -> u64 {
        self.stats.instructions
    }

    /// How many non-zero RAM pages the snapshot refers to (some shared with other snapshots).
    pub fn ram_pages(&self) -> usize {
        self.pages.len()
    }

    /// Pages this snapshot holds that no other snapshot shares: its own memory cost.
    pub fn unshared_pages(&self) -> usize {
        self.pages
            .iter()
            .filter(|(_, p)| Rc::strong_count(p) == 1)
            .count()
    }

    /// The snapshot as serializable pieces (RAM pages copied out).
    pub fn to_parts(&self) -> SnapshotParts {
        SnapshotParts {
            cpu: self.cpu.clone(),
            stats: self.stats.clone(),
            kvmclock: self.kvmclock,
            bus: self.bus.clone(),
            rom: self.rom.clone(),
            ram_size: self.ram_size,
            pages: self.pages.iter().map(|(n, p)| (*n, p.to_vec())).collect(),
        }
    }

    /// A snapshot made of `parts`, checked: pages must be whole 4 KiB pages inside RAM, in
    /// ascending order, each once. Whether the state fits a machine is checked on restore.
    pub fn from_parts(parts: SnapshotParts) -> Result<MachineSnapshot, SnapshotError> {
        let bad = |detail: String| SnapshotError::BadState {
            device: "RAM",
            detail,
        };
        let page_count = parts.ram_size.div_ceil(PAGE as u64);
        let mut previous = None;
        for (number, bytes) in &parts.pages {
            if previous.is_some_and(|p| p >= *number) {
                return Err(bad(format!("page {number:#x} out of order")));
            }
            if *number >= page_count {
                return Err(bad(format!(
                    "page {number:#x} is beyond {:#x} bytes of RAM",
                    parts.ram_size
                )));
            }
            let room = (parts.ram_size - number * PAGE as u64).min(PAGE as u64);
            if bytes.len() as u64 != room {
                return Err(bad(format!(
                    "page {number:#x} holds {} bytes, not {room}",
                    bytes.len()
                )));
            }
            previous = Some(*number);
        }
        Ok(MachineSnapshot {
            cpu: parts.cpu,
            stats: parts.stats,
            kvmclock: parts.kvmclock,
            bus: parts.bus,
            rom: parts.rom,
            ram_size: parts.ram_size,
            pages: parts
                .pages
                .into_iter()
                .map(|(n, p)| (n, Rc::from(p)))
                .collect(),
        })
    }

    fn page(&self, number: u64) -> Option<&Rc<[u8]>> {
        self.pages
            .binary_search_by_key(&number, |(n, _)| *n)
            .ok()
            .map(|i| &self.pages[i].1)
    }
}

impl Machine {
    /// Takes a snapshot of the whole machine. Fails only if a device cannot be snapshotted.
    pub fn snapshot(&self) -> Result<MachineSnapshot, SnapshotError> {
        self.snapshot_after(None)
    }

    /// Everything but RAM (the snapshot holds no pages): what a live migration sends last,
    /// with the guest stopped, after it has sent RAM page by page. Costs no RAM scan.
    pub fn snapshot_without_ram(&self) -> Result<MachineSnapshot, SnapshotError> {
        Ok(MachineSnapshot {
            cpu: self.cpu.clone(),
            stats: self.stats.clone(),
            kvmclock: self.kvmclock,
            bus: self.bus.snapshot()?,
            rom: self.rom.clone(),
            ram_size: self.ram.size(),
            pages: Vec::new(),
        })
    }

    /// Like [`Machine::snapshot`], sharing the RAM pages that are unchanged since `previous`.
    pub fn snapshot_after(
        &self,
        previous: Option<&MachineSnapshot>,
    ) -> Result<MachineSnapshot, SnapshotError> {
        let bus = self.bus.snapshot()?;
        let mut pages = Vec::new();
        for (number, bytes) in self.ram.as_slice().chunks(PAGE).enumerate() {
            if bytes.iter().all(|b| *b == 0) {
                continue;
            }
            let number = number as u64;
            let page = match previous.and_then(|p| p.page(number)) {
                Some(old) if **old == *bytes => old.clone(),
                _ => Rc::from(bytes),
            };
            pages.push((number, page));
        }
        Ok(MachineSnapshot {
            cpu: self.cpu.clone(),
            stats: self.stats.clone(),
            kvmclock: self.kvmclock,
            bus,
            rom: self.rom.clone(),
            ram_size: self.ram.size(),
            pages,
        })
    }

    /// Puts the machine back into the state of `snap`. An engine that ran on this machine
    /// must drop its caches afterwards (`Interpreter::flush_caches`), or be made afresh.
    pub fn restore(&mut self, snap: &MachineSnapshot) -> Result<(), SnapshotError> {
        self.restore_keeping_ram(snap)?;
        let ram = self.ram.as_mut_slice();
        ram.fill(0);
        for (number, bytes) in &snap.pages {
            let start = *number as usize * PAGE;
            // Pages came from a RAM of the same size, so they fit.
            if let Some(dst) = ram.get_mut(start..start + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
        Ok(())
    }

    /// Like [`Machine::restore`] for everything but RAM, which is left as it is: a live
    /// migration's destination has received RAM page by page already, and `snap` has none.
    pub fn restore_keeping_ram(&mut self, snap: &MachineSnapshot) -> Result<(), SnapshotError> {
        if snap.ram_size != self.ram.size() {
            return Err(SnapshotError::Mismatch(format!(
                "snapshot of {:#x} bytes of RAM, machine has {:#x}",
                snap.ram_size,
                self.ram.size()
            )));
        }
        self.bus.restore(&snap.bus)?;
        self.rom.clone_from(&snap.rom);
        self.cpu = snap.cpu.clone();
        self.stats = snap.stats.clone();
        self.kvmclock = snap.kvmclock;
        self.memory_changed_behind_engines();
        Ok(())
    }
}

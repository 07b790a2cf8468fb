//! Write-protect tracing: remembers which guest page-table entries each shadow entry was built from.
//! Teaches: a shadow is only correct if every guest write to a page table it copied invalidates the copy.
//!
//! A real shadow-paging hypervisor write-protects the guest's page-table pages and takes a fault
//! on every write to them. We do the same in software: every frame that holds an entry a shadow
//! entry depends on is marked in a bitmap; a write to a marked frame queues it, and before the
//! next translation the MMU compares each recorded entry with memory and invalidates exactly the
//! shadow entries whose guest entries changed. Comparing values (instead of trusting the write's
//! address and size) keeps this right for byte writes, string instructions and unaligned stores.

use std::collections::BTreeMap;

use super::walk::Steps;
use crate::memory::GuestRam;

/// More dependencies than this and the MMU starts over (drops every shadow), like a hypervisor
/// that zaps its shadow pages when they use too much memory.
pub const MAX_DEPS: usize = 1 << 17;

// ANCHOR: dep
/// "Shadow entries of space `space` inside `[base, base + 2^shift)` were built from this entry,
/// which then held `value`."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dep {
    pub space: u32,
    pub base: u64,
    pub shift: u8,
    pub size: u8,
    pub value: u64,
}
// ANCHOR_END: dep

#[derive(Default)]
pub(crate) struct Tracer {
    /// One bit per guest RAM frame: does it hold an entry some shadow depends on?
    bitmap: Vec<u64>,
    /// Dependencies by guest-physical address of the entry.
    deps: BTreeMap<u64, Vec<Dep>>,
    count: usize,
    /// Traced frames written since the last check.
    pub pending: Vec<u64>,
    /// The last dependency recorded per level (entry address, space, base, value): consecutive
    /// fills share their upper-level entries, which then need no map lookup.
    recent: [(u64, u32, u64, u64); 4],
}

impl Tracer {
    #[inline]
    pub fn is_traced(&self, frame: u64) -> bool {
        let i = (frame >> 12) as usize;
        self.bitmap
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// A write to `frame` is about to happen: check it before the next translation.
    #[inline]
    pub fn note_write(&mut self, frame: u64) {
        if self.pending.last() != Some(&frame) {
            self.pending.push(frame);
        }
    }

    pub fn frames_traced(&self) -> usize {
        self.bitmap.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn dependencies(&self) -> usize {
        self.count
    }

    /// Records the entries a new shadow entry was built from. Returns false when over capacity.
    pub fn record(&mut self, ram: &GuestRam, space: u32, linear: u64, steps: &Steps) -> bool {
        let words = (ram.size() as usize / 4096).div_ceil(64);
        if self.bitmap.len() < words {
            self.bitmap.resize(words, 0);
        }
        for (level, s) in steps.iter().enumerate() {
            if s.from_register || !ram.contains(s.entry_addr, s.size as usize) {
                continue;
            }
            let base = linear & !((1u64 << s.region_shift) - 1);
            let key = (s.entry_addr, space, base, s.after);
            if self.recent[level] == key {
                continue;
            }
            self.recent[level] = key;
            let list = self.deps.entry(s.entry_addr).or_default();
            match list.iter_mut().find(|d| d.space == space && d.base == base) {
                Some(d) => d.value = s.after,
                None => {
                    list.push(Dep {
                        space,
                        base,
                        shift: s.region_shift,
                        size: s.size,
                        value: s.after,
                    });
                    self.count += 1;
                }
            }
            let i = (s.entry_addr >> 12) as usize;
            self.bitmap[i / 64] |= 1 << (i % 64);
        }
        self.count <= MAX_DEPS
    }

    /// Compares the entries of every pending frame with memory; returns (and forgets) the
    /// dependencies whose entry changed.
    pub fn take_changes(&mut self, ram: &GuestRam) -> Vec<Dep> {
        let mut changed = Vec::new();
        let pending = std::mem::take(&mut self.pending);
        for frame in pending {
            let mut emptied = Vec::new();
            for (&addr, list) in self.deps.range_mut(frame..frame + 4096) {
                list.retain(|d| {
                    let now = ram.read_le(addr, d.size as usize).unwrap_or(!d.value);
                    if now != d.value {
                        changed.push(*d);
                        false
                    } else {
                        true
                    }
                });
                if list.is_empty() {
                    emptied.push(addr);
                }
            }
            for addr in emptied {
                self.deps.remove(&addr);
            }
            if self.deps.range(frame..frame + 4096).next().is_none() {
                let i = (frame >> 12) as usize;
                if let Some(w) = self.bitmap.get_mut(i / 64) {
                    *w &= !(1 << (i % 64));
                }
            }
        }
        self.count -= changed.len();
        if !changed.is_empty() {
            self.recent = Default::default();
        }
        changed
    }

    /// Forgets everything (all shadows were dropped).
    pub fn clear(&mut self) {
        self.bitmap.iter_mut().for_each(|w| *w = 0);
        self.deps.clear();
        self.recent = Default::default();
        self.count = 0;
        self.pending.clear();
    }
}

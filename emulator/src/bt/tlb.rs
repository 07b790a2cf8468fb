//! The translator's small TLB: linear page → guest-physical frame for ring-3 data accesses.
//! Teaches: even a shadow-page-table hit costs a function call and checks; a tiny direct-mapped
//! cache in front of it, invalidated wholesale, makes the common access a few instructions.
//!
//! Entries are made only from a successful `Mmu::translate` of a user-mode (CPL 3) access to a
//! RAM frame — for writes, only to frames that hold no page tables a shadow depends on, so page
//! table writes always reach the MMU's write tracing. An entry is valid while the MMU's
//! `generation` is what it was when the entry was made: any walk, page-table write, CR3/CR0/CR4/
//! EFER change, INVLPG, INVPCID or flush bumps it, and so does the translator between unchained
//! blocks (where mode, CPL or RFLAGS.AC may have changed). User accesses depend on neither
//! CR0.WP nor SMAP, so the tag is just the page and read/write.

/// Entries (a power of two).
const ENTRIES: usize = 256;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// `(linear page << 1 | write) + 1`; 0 = empty.
    tag: u64,
    frame: u64,
    generation: u64,
}

/// The direct-mapped TLB.
#[derive(Debug, Clone)]
pub struct SoftTlb {
    entries: [Entry; ENTRIES],
}

impl Default for SoftTlb {
    fn default() -> Self {
        SoftTlb {
            entries: [Entry::default(); ENTRIES],
        }
    }
}

#[inline(always)]
fn tag(linear: u64, write: bool) -> u64 {
    ((linear >> 12) << 1 | write as u64) + 1
}

impl SoftTlb {
    /// The physical address of `linear`, if an entry made under `generation` holds its page.
    #[inline(always)]
    pub fn lookup(&self, linear: u64, write: bool, generation: u64) -> Option<u64> {
        let t = tag(linear, write);
        let e = &self.entries[(t as usize >> 1) & (ENTRIES - 1)];
        (e.tag == t && e.generation == generation).then_some(e.frame | (linear & 0xFFF))
    }

    /// Remembers that `linear`'s page maps to the frame of `phys`.
    #[inline]
    pub fn fill(&mut self, linear: u64, write: bool, phys: u64, generation: u64) {
        let t = tag(linear, write);
        self.entries[(t as usize >> 1) & (ENTRIES - 1)] = Entry {
            tag: t,
            frame: phys & !0xFFF,
            generation,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_hit_only_for_their_page_kind_and_generation() {
        let mut t = SoftTlb::default();
        t.fill(0x40_1234, false, 0x9_9234, 7);
        assert_eq!(t.lookup(0x40_1FF8, false, 7), Some(0x9_9FF8));
        assert_eq!(
            t.lookup(0x40_1FF8, true, 7),
            None,
            "a read entry is not a write entry"
        );
        assert_eq!(t.lookup(0x40_2000, false, 7), None, "another page");
        assert_eq!(t.lookup(0x40_1000, false, 8), None, "the MMU changed since");
    }
}

//! Shadow address spaces: per-CR3 tables of cached translations (linear page → guest frame + rights).
//! Teaches: what a shadow page table holds, and why keeping one per address space makes context switches cheap.

use super::permission::sflag;

/// Entries per address space: a direct-mapped table indexed by the low bits of the linear page.
pub const ENTRIES: usize = 1024;

/// One cached translation. `frame` holds the guest-physical 4 KiB frame with `sflag` bits below 12.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ShadowEntry {
    /// Linear page number + 1 (0 = empty slot).
    pub tag: u64,
    pub frame: u64,
}

/// The shadow of one guest address space (one CR3, and PCID where enabled).
pub(crate) struct AddressSpace {
    /// Unique for the life of the MMU (write-protect tracing refers to spaces by id).
    pub id: u32,
    /// Physical address of the top-level table.
    pub root: u64,
    pub pcid: u16,
    /// PAE only: the PDPTE registers the entries were filled under.
    pub pdptes: [u64; 4],
    pub entries: Box<[ShadowEntry]>,
    /// Valid entries (for statistics and listings).
    pub live: u32,
    /// Least-recently-used clock, for eviction.
    pub last_used: u64,
}

impl AddressSpace {
    pub fn new(id: u32, root: u64, pcid: u16, pdptes: [u64; 4]) -> Self {
        AddressSpace {
            id,
            root,
            pcid,
            pdptes,
            entries: vec![ShadowEntry::default(); ENTRIES].into_boxed_slice(),
            live: 0,
            last_used: 0,
        }
    }

    #[inline]
    pub fn slot(vpage: u64) -> usize {
        vpage as usize & (ENTRIES - 1)
    }

    pub fn fill(&mut self, vpage: u64, frame_and_flags: u64) {
        let e = &mut self.entries[Self::slot(vpage)];
        if e.tag == 0 {
            self.live += 1;
        }
        *e = ShadowEntry {
            tag: vpage + 1,
            frame: frame_and_flags,
        };
    }

    /// Drops the entry for one linear page; `keep_global` spares a global entry. Returns 1 if dropped.
    pub fn invalidate_page(&mut self, vpage: u64, keep_global: bool) -> u64 {
        let e = &mut self.entries[Self::slot(vpage)];
        if e.tag == vpage + 1 && !(keep_global && e.frame & sflag::GLOBAL != 0) {
            e.tag = 0;
            self.live -= 1;
            return 1;
        }
        0
    }

    /// INVLPG semantics: drops the translation of the page containing `vpage`; when that page
    /// was a large guest page (cut into several 4 KiB shadow entries) all of its pieces go.
    pub fn invalidate_guest_page(&mut self, vpage: u64, keep_global: bool) -> u64 {
        let mut n = self.invalidate_page(vpage, keep_global);
        for e in self.entries.iter_mut() {
            let size_code = (e.frame & sflag::SIZE_MASK) >> sflag::SIZE_SHIFT;
            if e.tag == 0 || size_code == 0 || keep_global && e.frame & sflag::GLOBAL != 0 {
                continue;
            }
            let pages_shift = [0u32, 9, 10, 18][size_code as usize];
            if (e.tag - 1) >> pages_shift == vpage >> pages_shift {
                e.tag = 0;
                self.live -= 1;
                n += 1;
            }
        }
        n
    }

    /// Drops every entry inside the linear region `[base, base + 2^shift)`. Returns how many.
    pub fn invalidate_region(&mut self, base: u64, shift: u8) -> u64 {
        if shift <= 12 {
            return self.invalidate_page(base >> 12, false);
        }
        let pages = 1u64 << (shift - 12);
        if pages <= ENTRIES as u64 {
            return (0..pages)
                .map(|i| self.invalidate_page((base >> 12) + i, false))
                .sum();
        }
        let mask = !((1u64 << shift) - 1);
        let mut n = 0;
        for e in self.entries.iter_mut() {
            if e.tag != 0 && ((e.tag - 1) << 12) & mask == base & mask {
                e.tag = 0;
                n += 1;
            }
        }
        self.live -= n as u32;
        n
    }

    /// Drops every entry (or every non-global one). Returns how many.
    pub fn flush(&mut self, keep_global: bool) -> u64 {
        let mut n = 0;
        for e in self.entries.iter_mut() {
            if e.tag != 0 && !(keep_global && e.frame & sflag::GLOBAL != 0) {
                e.tag = 0;
                n += 1;
            }
        }
        self.live -= n as u32;
        n
    }
}

/// One shadow entry as `vmscope mmu shadow` and the GUI show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowView {
    pub linear: u64,
    pub phys: u64,
    pub user: bool,
    pub writable: bool,
    pub executable: bool,
    pub dirty: bool,
    pub global: bool,
    /// The guest page this 4 KiB shadow entry was cut from (4 KiB, 2 MiB, 4 MiB or 1 GiB).
    pub guest_page_size: u64,
}

/// One cached address space with its entries, sorted by linear address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceView {
    pub id: u32,
    pub root: u64,
    pub pcid: u16,
    pub current: bool,
    pub entries: Vec<ShadowView>,
}

impl AddressSpace {
    pub fn view(&self, current: bool) -> SpaceView {
        let mut entries: Vec<ShadowView> = self
            .entries
            .iter()
            .filter(|e| e.tag != 0)
            .map(|e| {
                let f = e.frame;
                let vpage = e.tag - 1;
                // Sign-extend the 52-bit page number back to a canonical address.
                let linear = (((vpage << 12) as i64) << 4 >> 4) as u64;
                ShadowView {
                    linear,
                    phys: f & !0xFFF,
                    user: f & sflag::USER != 0,
                    writable: f & sflag::WRITABLE != 0,
                    executable: f & sflag::EXEC != 0,
                    dirty: f & sflag::DIRTY != 0,
                    global: f & sflag::GLOBAL != 0,
                    guest_page_size: match (f & sflag::SIZE_MASK) >> sflag::SIZE_SHIFT {
                        0 => 4 << 10,
                        1 => 2 << 20,
                        2 => 4 << 20,
                        _ => 1 << 30,
                    },
                }
            })
            .collect();
        entries.sort_by_key(|v| v.linear);
        SpaceView {
            id: self.id,
            root: self.root,
            pcid: self.pcid,
            current,
            entries,
        }
    }
}

/// How the shadow behaves across address-space switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowConfig {
    /// Keep the shadows of earlier CR3 values and reuse them when the guest switches back
    /// (correct because guest writes to page tables are traced). Off: behave like a plain TLB,
    /// flushing non-global entries on every CR3 write (per PCID).
    pub retain_address_spaces: bool,
    /// How many address spaces to keep (least recently used is evicted).
    pub max_spaces: usize,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            retain_address_spaces: true,
            max_spaces: 8,
        }
    }
}

//! The decoded-instruction cache: iced-x86 decodes an instruction once, later visits reuse it.
//! Teaches: caching code is easy; knowing when the cache is wrong (self-modifying code) is the work.
//!
//! Entries are keyed by the guest-*physical* address of the first byte and the decoder's code size
//! (16/32/64), so the cache survives CR3 switches and paging changes without a flush. It is
//! direct-mapped: slot = physical address mod [`SLOTS`]; a collision simply replaces the entry.
//!
//! Invalidation: every 4 KiB physical page that holds a cached instruction has a bit in
//! `code_pages`. Each guest write the interpreter performs checks that bit (one load and a test);
//! only when it is set are the few slots that could hold an instruction overlapping the written
//! bytes examined and cleared — an instruction starting at `p` covers at most `p..p+15`, so a
//! write to `[a, a+n)` can only hit instructions that start in `(a-15, a+n)`. Writes that do not
//! come from this interpreter (a loader, a debugger, another engine sharing the RAM) must call
//! [`super::Interpreter::flush_caches`] before the interpreter runs again; the runner builds a
//! fresh engine at every engine switch, so a switch starts with an empty cache.
//!
//! Instructions that cross a page boundary are not cached (their two halves could be remapped
//! independently), and neither are instructions fetched from MMIO.

use iced_x86::Instruction;

/// Number of slots (a power of two). 4096 × 48 bytes ≈ 192 KiB.
pub(crate) const SLOTS: usize = 4096;
/// Pages above this physical address are never cached (bounds the bitmap at 128 KiB).
const MAX_PHYS: u64 = 1 << 32;
const MAX_INSTRUCTION_LEN: u64 = 15;

#[derive(Clone, Copy)]
struct Entry {
    /// `(phys << 2) | code-size code`, 0 = empty (physical address 0 is never cached).
    tag: u64,
    ins: Instruction,
}

/// Counters for `vmscope run --stats` and the benchmark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecodeCacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Entries dropped because the guest wrote to their bytes.
    pub invalidations: u64,
    pub flushes: u64,
}

pub(crate) struct DecodeCache {
    entries: Box<[Entry]>,
    /// One bit per 4 KiB physical page below `MAX_PHYS`: "some slot may hold code from here",
    /// or a translated block does (then `block_pages` has the bit too).
    code_pages: Vec<u64>,
    /// One bit per page holding translated blocks of the binary translator (empty when no
    /// translator uses this cache). Both kinds of cached code share the one write check.
    block_pages: Vec<u64>,
    /// Writes (guest-physical address, size) to pages with translated blocks since the
    /// translator last looked.
    pub block_writes: Vec<(u64, u32)>,
    pub stats: DecodeCacheStats,
}

impl Default for DecodeCache {
    fn default() -> Self {
        DecodeCache {
            entries: vec![
                Entry {
                    tag: 0,
                    ins: Instruction::default(),
                };
                SLOTS
            ]
            .into_boxed_slice(),
            code_pages: vec![0; (MAX_PHYS >> 12 >> 6) as usize],
            block_pages: Vec::new(),
            block_writes: Vec::new(),
            stats: DecodeCacheStats::default(),
        }
    }
}

fn tag(phys: u64, bits: u32) -> u64 {
    let code = match bits {
        16 => 1,
        32 => 2,
        _ => 3,
    };
    (phys << 2) | code
}

impl DecodeCache {
    /// Copies the cached instruction at `phys` for this code size into `out`, if it was decoded
    /// at the same RIP (iced-x86 stores absolute branch targets, so the same bytes at another RIP
    /// decode again). Copying into the caller's slot, rather than returning the 40-byte
    /// `Instruction` by value, keeps the hot path free of large moves.
    #[inline]
    pub fn lookup(&mut self, phys: u64, bits: u32, rip: u64, out: &mut Instruction) -> bool {
        let e = &self.entries[phys as usize & (SLOTS - 1)];
        if e.tag == tag(phys, bits) && e.ins.ip() == rip {
            self.stats.hits += 1;
            *out = e.ins;
            true
        } else {
            self.stats.misses += 1;
            false
        }
    }

    /// Remembers a decoded instruction that lies entirely within one page of RAM or ROM.
    pub fn insert(&mut self, phys: u64, bits: u32, ins: &Instruction) {
        if phys == 0 || phys >= MAX_PHYS {
            return;
        }
        let page = phys >> 12;
        self.code_pages[(page >> 6) as usize] |= 1 << (page & 63);
        self.entries[phys as usize & (SLOTS - 1)] = Entry {
            tag: tag(phys, bits),
            ins: *ins,
        };
    }

    /// Called for every guest write of `size` bytes at `phys`: drops instructions it overlaps.
    /// Returns true when the write touched a page holding translated blocks (queued in
    /// `block_writes` for the translator).
    #[inline]
    pub fn note_write(&mut self, phys: u64, size: u32) -> bool {
        let last = phys.wrapping_add(size as u64 - 1);
        if self.page_has_code(phys) || self.page_has_code(last) {
            self.invalidate_range(phys, size);
            if self.has_blocks(phys) || self.has_blocks(last) {
                self.block_writes.push((phys, size));
                return true;
            }
        }
        false
    }

    /// Marks a physical page as holding translated blocks: writes to it are reported.
    pub fn mark_block_page(&mut self, page: u64) {
        if page >= MAX_PHYS >> 12 {
            return;
        }
        if self.block_pages.is_empty() {
            self.block_pages = vec![0; self.code_pages.len()];
        }
        let (word, bit) = ((page >> 6) as usize, 1u64 << (page & 63));
        self.block_pages[word] |= bit;
        self.code_pages[word] |= bit;
    }

    /// The translator dropped every block of `page`: stop reporting writes to it.
    pub fn unmark_block_page(&mut self, page: u64) {
        if let Some(w) = self.block_pages.get_mut((page >> 6) as usize) {
            *w &= !(1u64 << (page & 63));
        }
    }

    /// Can this physical address hold translated code (RAM or ROM below 4 GiB)?
    pub fn trackable(phys: u64) -> bool {
        phys != 0 && phys < MAX_PHYS
    }

    fn has_blocks(&self, phys: u64) -> bool {
        let page = phys >> 12;
        self.block_pages
            .get((page >> 6) as usize)
            .is_some_and(|w| w & (1 << (page & 63)) != 0)
    }

    #[inline]
    fn page_has_code(&self, phys: u64) -> bool {
        let page = phys >> 12;
        phys < MAX_PHYS && self.code_pages[(page >> 6) as usize] & (1 << (page & 63)) != 0
    }

    fn invalidate_range(&mut self, phys: u64, size: u32) {
        let first = phys.saturating_sub(MAX_INSTRUCTION_LEN - 1);
        for start in first..phys + size as u64 {
            let e = &mut self.entries[start as usize & (SLOTS - 1)];
            if e.tag != 0 && e.tag >> 2 == start {
                let end = start + e.ins.len() as u64;
                if end > phys {
                    e.tag = 0;
                    self.stats.invalidations += 1;
                }
            }
        }
    }

    /// Forgets everything (the bitmap too).
    pub fn flush(&mut self) {
        for e in self.entries.iter_mut() {
            e.tag = 0;
        }
        // Pages of translated blocks stay watched: the translator owns those.
        if self.block_pages.is_empty() {
            self.code_pages.fill(0);
        } else {
            self.code_pages.copy_from_slice(&self.block_pages);
        }
        self.stats.flushes += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};

    fn decode(bytes: &[u8], ip: u64) -> Instruction {
        Decoder::with_ip(32, bytes, ip, DecoderOptions::NONE).decode()
    }

    #[test]
    fn a_write_into_an_instruction_drops_it_and_a_write_beside_it_does_not() {
        let mut c = DecodeCache::default();
        // mov eax, 0x12345678 (5 bytes) at 0x1000
        let ins = decode(&[0xB8, 0x78, 0x56, 0x34, 0x12], 0x1000);
        c.insert(0x1000, 32, &ins);
        let mut out = Instruction::default();
        assert!(c.lookup(0x1000, 32, 0x1000, &mut out));
        assert_eq!(out, ins);
        assert!(!c.lookup(0x1000, 16, 0x1000, &mut out), "other code size");
        assert!(!c.lookup(0x1000, 32, 0x2000, &mut out), "other RIP");
        c.note_write(0x1005, 4); // just after the instruction
        assert!(c.lookup(0x1000, 32, 0x1000, &mut out));
        c.note_write(0x0FFE, 4); // overlaps its first two bytes
        assert!(!c.lookup(0x1000, 32, 0x1000, &mut out));
        assert_eq!(c.stats.invalidations, 1);
    }

    #[test]
    fn writes_to_pages_without_code_touch_no_slot() {
        let mut c = DecodeCache::default();
        let ins = decode(&[0x90], 0x5000);
        c.insert(0x5000, 32, &ins);
        // 0x9000 maps to the same slot as 0x5000 but its page holds no code.
        c.note_write(0x9000, 1);
        let mut out = Instruction::default();
        assert!(c.lookup(0x5000, 32, 0x5000, &mut out));
        c.flush();
        assert!(!c.lookup(0x5000, 32, 0x5000, &mut out));
    }
}

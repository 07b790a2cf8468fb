//! When translating pays: code seen once is interpreted, and a page whose code keeps being
//! rewritten is interpreted for a while instead of retranslated after every write.
//! Teaches: a translator is an investment — it wins only on code that runs again unchanged.
//!
//! - **Cold code.** A block is translated the second time execution reaches its start (by a
//!   jump, or from another block); the first time, the interpreter runs it one instruction at
//!   a time, and the addresses it falls through on the way are not counted as block starts. A program that sweeps
//!   through memory once (an image of zeros: 580,000 blocks for 5 M instructions, each run
//!   once) then costs what the interpreter costs, not a translation per block plus cache
//!   flushes; a loop pays one interpreted pass.
//! - **Code pages written often.** When writes into a page drop its translated blocks
//!   `HOT_WRITES` times within `HOT_WINDOW` guest instructions, the page is interpreted for the
//!   next `COOL_DOWN` instructions: no blocks there, so its writes are plain stores again. Then
//!   translation is tried once more.
//!
//! Both only choose between two engines with identical semantics (the lockstep tests hold),
//! and both show in `--stats`.

use std::collections::{HashMap, HashSet};

use super::cache::BlockKey;
use super::BtStats;

/// Invalidating writes that make a page "written often" ...
const HOT_WRITES: u32 = 4;
/// ... within this many guest instructions ...
const HOT_WINDOW: u64 = 10_000;
/// ... after which it is interpreted for this many.
const COOL_DOWN: u64 = 100_000;
/// Addresses remembered as "seen once" before the memory starts over.
const SEEN_LIMIT: usize = 1 << 16;

#[derive(Debug, Clone, Copy, Default)]
struct PageHeat {
    window_start: u64,
    writes: u32,
    interpret_until: u64,
}

/// The translator's decisions about where not to translate.
#[derive(Debug, Default)]
pub struct TranslationPolicy {
    seen_once: HashSet<(u64, u64, u32)>,
    pages: HashMap<u64, PageHeat>,
}

impl TranslationPolicy {
    /// Should the block at `key` be translated now (at guest instruction count `now`)? If not,
    /// the caller interprets one instruction; the reason is counted in `stats`. `block_start`:
    /// execution arrived here by a jump or from a block (not by falling through from an
    /// instruction the interpreter just ran), so this address counts as a visit.
    pub fn should_translate(
        &mut self,
        key: &BlockKey,
        now: u64,
        block_start: bool,
        stats: &mut BtStats,
    ) -> bool {
        if let Some(heat) = self.pages.get(&(key.phys >> 12)) {
            if now < heat.interpret_until {
                stats.interpreted_written_page += 1;
                return false;
            }
        }
        if self.seen_once.remove(&(key.phys, key.rip, key.mode)) {
            return true;
        }
        if block_start {
            if self.seen_once.len() >= SEEN_LIMIT {
                self.seen_once.clear();
            }
            self.seen_once.insert((key.phys, key.rip, key.mode));
        }
        stats.interpreted_cold += 1;
        false
    }

    /// A guest write into `page` dropped translated blocks there.
    pub fn blocks_written(&mut self, page: u64, now: u64, stats: &mut BtStats) {
        let heat = self.pages.entry(page).or_default();
        if now.saturating_sub(heat.window_start) > HOT_WINDOW {
            heat.window_start = now;
            heat.writes = 0;
        }
        heat.writes += 1;
        if heat.writes >= HOT_WRITES {
            heat.interpret_until = now + COOL_DOWN;
            heat.writes = 0;
            stats.pages_cooled += 1;
        }
    }

    /// Forgets everything (the cache was flushed).
    pub fn clear(&mut self) {
        self.seen_once.clear();
        self.pages.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(phys: u64) -> BlockKey {
        BlockKey {
            phys,
            rip: phys,
            mode: 0,
        }
    }

    #[test]
    fn a_block_is_translated_the_second_time_it_is_reached() {
        let (mut p, mut s) = (TranslationPolicy::default(), BtStats::default());
        assert!(!p.should_translate(&key(0x1000), 0, true, &mut s));
        assert!(p.should_translate(&key(0x1000), 5, true, &mut s));
        assert!(!p.should_translate(&key(0x2000), 6, true, &mut s));
        assert_eq!(s.interpreted_cold, 2);
        // Falling through inside cold code is not a visit of a block start.
        assert!(!p.should_translate(&key(0x3000), 7, false, &mut s));
        assert!(!p.should_translate(&key(0x3000), 8, true, &mut s));
        assert!(p.should_translate(&key(0x3000), 9, true, &mut s));
    }

    #[test]
    fn a_page_written_often_is_interpreted_for_a_while() {
        let (mut p, mut s) = (TranslationPolicy::default(), BtStats::default());
        for t in 0..HOT_WRITES as u64 {
            p.blocks_written(7, 100 + t, &mut s);
        }
        assert_eq!(s.pages_cooled, 1);
        let k = key(0x7010);
        p.seen_once.insert((k.phys, k.rip, k.mode));
        assert!(!p.should_translate(&k, 200, true, &mut s), "cooling down");
        assert_eq!(s.interpreted_written_page, 1);
        assert!(
            p.should_translate(&k, 200 + COOL_DOWN, true, &mut s),
            "calm again"
        );
        // Writes spread out more than the window apart never cool a page.
        let mut q = TranslationPolicy::default();
        for t in 0..10 {
            q.blocks_written(9, t * (HOT_WINDOW + 1), &mut s);
        }
        assert_eq!(s.pages_cooled, 1);
    }
}

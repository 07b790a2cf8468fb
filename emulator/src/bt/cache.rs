//! The translation cache: translated blocks by guest-physical address and mode, their chains,
//! and how they die. Teaches: a code cache is only as good as its invalidation.
//!
//! A block is found by `BlockKey` = (physical address, RIP, mode bits). The physical address
//! makes a block survive CR3 switches and paging changes; RIP is part of the key because a
//! block's branch targets are absolute (the same bytes mapped at two addresses translate twice).
//!
//! **Chaining.** A block that ends in a direct jump remembers the block it went to last time in
//! one of two link slots (taken, fall-through), so the run loop can go there without
//! translating RIP through the MMU and hashing. Links are only made between blocks on the same
//! linear page: then the target's physical page is the source's, which was checked when the
//! source was entered, so a link can never lead into a stale mapping. Each block also lists its
//! incoming links; invalidating a block undoes them.
//!
//! **Invalidation.** Every physical page holding blocks is watched (a bit in the decoded-
//! instruction cache's page map, checked at the one place every guest write passes); a write
//! there drops exactly the blocks whose bytes it overlaps before the next instruction is
//! fetched. **Capacity** is bounded in bytes (`--bt-cache`); when a new block does not fit,
//! the whole cache is flushed, as QEMU does — simple, and it cannot leave dangling links.

use std::collections::HashMap;

use super::ops::Op;

/// Chain links per block.
pub const LINKS: usize = 4;

/// Index of a block in the cache's arena.
pub type BlockId = u32;

/// What a block is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockKey {
    pub phys: u64,
    pub rip: u64,
    /// Code size, CPL and CPU mode: what changes how the bytes decode and execute.
    pub mode: u32,
}

/// One translated block: guest instructions from `rip` up to and including the first branch,
/// sensitive instruction or page end, each pre-decoded into an `Op`.
pub struct Block {
    pub key: BlockKey,
    /// Linear address of the first instruction.
    pub linear: u64,
    pub ops: Vec<Op>,
    /// Guest bytes covered (`key.phys .. key.phys + guest_bytes`).
    pub guest_bytes: u64,
    /// Direct links to the successor blocks: (guest RIP the link is for, block).
    pub links: [Option<(u64, BlockId)>; LINKS],
    /// Links from other blocks into this one: (source block, slot).
    incoming: Vec<(BlockId, u8)>,
    pub executions: u64,
    /// Ends in a near branch (JMP/Jcc/CALL/RET/LOOP) that cannot change mode: may be chained.
    /// (A taken side exit — a Jcc inside the block — may always be chained.)
    pub chainable: bool,
    alive: bool,
}

impl Block {
    /// Host memory this block holds (what `--bt-cache` bounds).
    pub fn host_bytes(&self) -> usize {
        std::mem::size_of::<Block>() + self.ops.capacity() * std::mem::size_of::<Op>()
    }
}

pub use crate::machine::TranslatorStats as BtStats;

/// Default capacity of the translation cache in bytes of host memory.
pub const DEFAULT_CAPACITY: usize = 32 << 20;

/// The translation cache.
pub struct TranslationCache {
    blocks: Vec<Block>,
    free: Vec<BlockId>,
    map: HashMap<BlockKey, BlockId, BuildKeyHasher>,
    /// Blocks by physical page, for invalidation.
    by_page: HashMap<u64, Vec<BlockId>, BuildKeyHasher>,
    capacity: usize,
    used: usize,
    /// Bumped by every flush: block ids from an older epoch mean nothing.
    epoch: u64,
    pub stats: BtStats,
    /// Where not to translate (cold code, code pages written often).
    pub policy: super::policy::TranslationPolicy,
}

impl TranslationCache {
    pub fn new(capacity: usize) -> Self {
        TranslationCache {
            blocks: Vec::new(),
            free: Vec::new(),
            map: HashMap::default(),
            by_page: HashMap::default(),
            capacity: capacity.max(64 << 10),
            used: 0,
            epoch: 0,
            stats: BtStats::default(),
            policy: Default::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Host bytes the live blocks use.
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn live_blocks(&self) -> usize {
        self.map.len()
    }

    #[inline]
    pub fn get(&self, id: BlockId) -> &Block {
        &self.blocks[id as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, id: BlockId) -> &mut Block {
        &mut self.blocks[id as usize]
    }

    /// The most-run live block of `mode` whose bytes include the physical address `phys`.
    pub fn containing(&self, phys: u64, mode: u32) -> Option<BlockId> {
        self.by_page
            .get(&(phys >> 12))?
            .iter()
            .copied()
            .filter(|&id| {
                let b = &self.blocks[id as usize];
                b.key.mode == mode && b.key.phys <= phys && phys < b.key.phys + b.guest_bytes
            })
            .max_by_key(|&id| self.blocks[id as usize].executions)
    }

    #[inline]
    pub fn lookup(&self, key: &BlockKey) -> Option<BlockId> {
        self.map.get(key).copied()
    }

    /// Would a block of `ops` operations fit without a flush?
    pub fn fits(&self, ops: usize) -> bool {
        self.used + std::mem::size_of::<Block>() + ops * std::mem::size_of::<Op>() <= self.capacity
    }

    /// Adds a translated block; returns its id and the physical page newly watched, if any.
    pub fn insert(
        &mut self,
        key: BlockKey,
        linear: u64,
        ops: Vec<Op>,
        guest_bytes: u64,
    ) -> BlockId {
        let chainable = ops.last().is_some_and(|op| is_near_transfer(&op.ins));
        self.stats.blocks_translated += 1;
        self.stats.instructions_translated += ops.len() as u64;
        let block = Block {
            key,
            linear,
            ops,
            guest_bytes,
            links: [None; LINKS],
            incoming: Vec::new(),
            executions: 0,
            chainable,
            alive: true,
        };
        self.used += block.host_bytes();
        let id = match self.free.pop() {
            Some(id) => {
                self.blocks[id as usize] = block;
                id
            }
            None => {
                self.blocks.push(block);
                (self.blocks.len() - 1) as BlockId
            }
        };
        if let Some(old) = self.map.insert(key, id) {
            // Same key translated again (its old copy was unreachable): retire the old one.
            self.kill(old);
        }
        self.by_page.entry(key.phys >> 12).or_default().push(id);
        id
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The block `from` is linked to for `rip`, if any.
    #[inline]
    pub fn follow(&self, from: BlockId, rip: u64) -> Option<BlockId> {
        self.blocks[from as usize]
            .links
            .iter()
            .flatten()
            .find(|(r, _)| *r == rip)
            .map(|&(_, to)| to)
    }

    /// May `from` link to `to`? Only within one linear page (see the module notes).
    pub fn same_page(&self, from: BlockId, to: BlockId) -> bool {
        self.blocks[from as usize].linear >> 12 == self.blocks[to as usize].linear >> 12
    }

    /// Links one of `from`'s exits to `to`: into the slot already used for that RIP, else a
    /// free one, else one chosen by the RIP (a block has a branch target, a fall-through, and
    /// with side exits a few more ways out).
    pub fn link(&mut self, from: BlockId, to: BlockId) {
        let rip = self.blocks[to as usize].key.rip;
        let links = &self.blocks[from as usize].links;
        let slot = links
            .iter()
            .position(|l| l.is_some_and(|(r, _)| r == rip))
            .or_else(|| links.iter().position(|l| l.is_none()))
            .unwrap_or((rip as usize >> 1) % LINKS);
        if let Some((_, old)) = self.blocks[from as usize].links[slot] {
            self.blocks[old as usize]
                .incoming
                .retain(|&(b, s)| (b, s) != (from, slot as u8));
        }
        self.blocks[from as usize].links[slot] = Some((rip, to));
        self.blocks[to as usize].incoming.push((from, slot as u8));
        self.stats.links_made += 1;
    }

    // ANCHOR: invalidate_write
    /// Drops the blocks whose guest bytes overlap `[phys, phys + size)`. Returns the physical
    /// pages that no longer hold any block (they need no watching any more).
    pub fn invalidate_write(&mut self, phys: u64, size: u32) -> Vec<u64> {
        let mut emptied = Vec::new();
        let end = phys + size as u64;
        for page in [phys >> 12, (end - 1) >> 12] {
            let Some(ids) = self.by_page.get(&page) else {
                continue;
            };
            let hit: Vec<BlockId> = ids
                .iter()
                .copied()
                .filter(|&id| {
                    let b = &self.blocks[id as usize];
                    b.key.phys < end && phys < b.key.phys + b.guest_bytes
                })
                .collect();
            for id in hit {
                self.kill(id);
                self.stats.invalidated_smc += 1;
            }
            if self.by_page.get(&page).is_none_or(|v| v.is_empty()) {
                self.by_page.remove(&page);
                emptied.push(page);
            }
        }
        emptied
    }
    // ANCHOR_END: invalidate_write

    /// Forgets every block. Returns the pages that were watched.
    pub fn flush(&mut self, capacity: bool) -> Vec<u64> {
        let n = self.map.len() as u64;
        if capacity {
            self.stats.invalidated_capacity += n;
            self.stats.capacity_flushes += 1;
        } else {
            self.stats.invalidated_flush += n;
        }
        self.epoch += 1;
        self.policy.clear();
        self.blocks.clear();
        self.free.clear();
        self.map.clear();
        self.used = 0;
        self.by_page.drain().map(|(page, _)| page).collect()
    }

    /// Removes one block: from the map, its page list, and every link into or out of it.
    fn kill(&mut self, id: BlockId) {
        if !self.blocks[id as usize].alive {
            return;
        }
        self.used -= self.blocks[id as usize].host_bytes();
        let b = &mut self.blocks[id as usize];
        b.alive = false;
        let key = b.key;
        let links = std::mem::take(&mut b.links);
        let incoming = std::mem::take(&mut b.incoming);
        self.blocks[id as usize].ops = Vec::new();
        if self.map.get(&key) == Some(&id) {
            self.map.remove(&key);
        }
        if let Some(ids) = self.by_page.get_mut(&(key.phys >> 12)) {
            ids.retain(|&x| x != id);
        }
        for (from, slot) in incoming {
            self.blocks[from as usize].links[slot as usize] = None;
        }
        for (slot, link) in links.iter().enumerate() {
            if let Some((_, to)) = link {
                self.blocks[*to as usize]
                    .incoming
                    .retain(|&(b, s)| (b, s) != (id, slot as u8));
            }
        }
        self.free.push(id);
    }
}

/// A near JMP/Jcc/CALL/RET/LOOP: changes RIP only, never the mode or CPL.
fn is_near_transfer(ins: &iced_x86::Instruction) -> bool {
    use iced_x86::{FlowControl as F, Mnemonic as M};
    match ins.flow_control() {
        F::UnconditionalBranch | F::ConditionalBranch | F::Call => {
            !ins.is_jmp_far() && !ins.is_call_far()
        }
        F::IndirectBranch | F::IndirectCall => {
            !ins.is_jmp_far_indirect() && !ins.is_call_far_indirect()
        }
        F::Return => matches!(ins.mnemonic(), M::Ret),
        _ => false,
    }
}

/// A small multiplicative hasher: block keys are already well-spread integers, and the
/// standard SipHash would cost more than the rest of a block lookup.
#[derive(Default, Clone, Copy)]
pub struct BuildKeyHasher;

impl std::hash::BuildHasher for BuildKeyHasher {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
}

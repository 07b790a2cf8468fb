//! The binary translator: the fast emulation engine (`--engine bt`).
//! Teaches: translate a guest block once, run it many times; keep the cache right as code changes.
//!
//! The loop: at an instruction boundary (the interpreter's own `at_boundary` — device deadlines,
//! interrupts, HLT), find the translated block for RIP — through the previous block's chain
//! link, or by translating RIP through the shadow MMU and looking up (physical address, RIP,
//! mode) in the `TranslationCache`, translating on a miss — and run its ops. Blocks are
//! pre-decoded threaded code (see `ops`): no decoding, no mnemonic dispatch, flags only where
//! observable. Sensitive instructions are callouts into the interpreter and end their block, so
//! mode, paging, interrupt-flag and device changes are seen between blocks.
//!
//! **Exactness.** Interrupts and device deadlines are handled between blocks, and a block never
//! runs past the next deadline or the run limit: when it would, the interpreter runs the
//! remaining instructions one by one. An exception inside a block leaves RIP at the faulting
//! instruction and everything before it retired; the count of retired instructions and the
//! virtual clock advance exactly as in the interpreter. TF single-step, debug registers and an
//! interrupt shadow also hand single instructions to the interpreter. So `bt` and `interp`
//! produce the same instruction count, the same interrupts at the same instructions, and the
//! same final `CpuState` (the lockstep test checks this at every block boundary).
//!
//! **Self-modifying code.** Every guest write passes `Cpu::phys_write`; a write to a page that
//! holds blocks is queued and sets `end_block`, so the block stops after the writing
//! instruction and the overlapped blocks are dropped before the next fetch.

mod cache;
pub(crate) mod lazy;
mod ops;
mod policy;
mod show;
pub(crate) mod tlb;
mod translate;

pub use cache::{BtStats, DEFAULT_CAPACITY};

use cache::{BlockId, BlockKey, TranslationCache};

use crate::cpu::flags::{RF, TF};
use crate::cpu::CpuMode;
use crate::interp::{self, Boundary, Cpu, DecodeCache, Timing, R};
use crate::machine::{Engine, EngineError, Exit, Machine, RunLimit};
use crate::mmu::{Access, Mmu};

/// The binary-translation engine.
pub struct BinaryTranslator {
    mmu: Mmu,
    code: DecodeCache,
    write_log: Option<Vec<(u64, u32)>>,
    cache: TranslationCache,
    /// The cache's counters when they were last added to the machine's `Stats`.
    reported: BtStats,
    /// `Machine::memory_epoch` when the translations were last known good.
    seen_epoch: u64,
}

impl Default for BinaryTranslator {
    fn default() -> Self {
        BinaryTranslator::new(DEFAULT_CAPACITY)
    }
}

impl BinaryTranslator {
    /// A translator whose cache may use `capacity` bytes of host memory.
    pub fn new(capacity: usize) -> Self {
        BinaryTranslator {
            mmu: Mmu::default(),
            code: DecodeCache::default(),
            write_log: None,
            cache: TranslationCache::new(capacity),
            reported: BtStats::default(),
            seen_epoch: 0,
        }
    }

    /// Adds what the cache counted since the last report to `machine.stats.translator`.
    fn report_counters(&mut self, machine: &mut Machine) {
        let now = self.cache.stats;
        machine.stats.translator.add(&now.since(&self.reported));
        self.reported = now;
    }

    /// Starts (or stops) recording the guest-physical writes the translator makes (the GUI
    /// highlights them), as `Interpreter::record_writes` does.
    pub fn record_writes(&mut self, on: bool) {
        self.write_log = on.then(Vec::new);
    }

    /// The writes recorded since the last call, as (guest-physical address, size in bytes).
    pub fn take_recorded_writes(&mut self) -> Vec<(u64, u32)> {
        self.write_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub fn stats(&self) -> BtStats {
        self.cache.stats
    }

    /// Live blocks, host bytes they use, and the cache's capacity.
    pub fn cache_usage(&self) -> (usize, usize, usize) {
        (
            self.cache.live_blocks(),
            self.cache.used(),
            self.cache.capacity(),
        )
    }

    /// The software MMU (shared design with the interpreter's).
    pub fn mmu(&self) -> &Mmu {
        &self.mmu
    }

    /// Forgets translations, cached decodes and shadow entries, e.g. after another engine ran or
    /// a debugger wrote guest memory behind the translator's back.
    pub fn flush_caches(&mut self, machine: &mut Machine) {
        self.mmu.flush(&mut machine.stats, false);
        for page in self.cache.flush(false) {
            self.code.unmark_block_page(page);
        }
        self.code.flush();
    }

    /// Runs until at least one instruction retired and the CPU is at a block boundary: one
    /// block, or one instruction the interpreter ran (the lockstep test's unit).
    pub fn run_one_block(&mut self, machine: &mut Machine) -> Exit {
        let mut cpu = Cpu::new(machine, &mut self.mmu, &mut self.code, &mut self.write_log);
        let exit = run_blocks(&mut cpu, &mut self.cache, RunLimit::UNLIMITED, true);
        lazy::materialize(&mut cpu);
        cpu.sync_clock();
        self.report_counters(machine);
        exit
    }

    /// The block that starts at the current RIP, translated now if needed, shown beside its
    /// guest instructions (`vmscope bt show`). None when RIP cannot be translated here.
    pub fn show_current_block(&mut self, machine: &mut Machine) -> Option<String> {
        let mut cpu = Cpu::new(machine, &mut self.mmu, &mut self.code, &mut self.write_log);
        let rip = cpu.s().rip;
        let user = cpu.s().cpl() == 3;
        let phys = cpu
            .translate(cpu.s().linear_rip(), Access::fetch(user))
            .ok()?;
        // The block the CPU is inside (the most-run one, if several hold RIP), else the block
        // that starts at RIP, translated now.
        let id = match self.cache.containing(phys, mode_key(&cpu)) {
            Some(id) => id,
            None => match find_or_translate(&mut cpu, &mut self.cache, false) {
                Ok(Found::Block(id)) => id,
                _ => return None,
            },
        };
        Some(show::format_block(
            self.cache.get(id),
            &self.cache.stats,
            rip,
        ))
    }
}

impl Engine for BinaryTranslator {
    fn name(&self) -> &'static str {
        "bt"
    }

    fn describe(&self) -> String {
        "bt (software, translated blocks)".to_string()
    }

    fn run(&mut self, machine: &mut Machine, limit: RunLimit) -> Result<Exit, EngineError> {
        if machine.memory_epoch != self.seen_epoch {
            // Memory changed where no write hook saw it: every block may be stale.
            self.flush_caches(machine);
            self.seen_epoch = machine.memory_epoch;
        }
        let mut cpu = Cpu::new(machine, &mut self.mmu, &mut self.code, &mut self.write_log);
        interp::pv_door::adopt_kvmclock(&mut cpu);
        // A device the host serviced between runs (`Bus::service_device`) may have written RAM.
        cpu.absorb_device_writes();
        let exit = run_blocks(&mut cpu, &mut self.cache, limit, false);
        lazy::materialize(&mut cpu);
        cpu.sync_clock();
        self.report_counters(machine);
        Ok(exit)
    }

    fn report(&self) -> Option<String> {
        Some(show::format_cache_usage(&self.cache))
    }
}

/// What the lookup found at RIP.
enum Found {
    Block(BlockId),
    /// Nothing translatable here (MMIO, a page-straddling or undecodable first instruction):
    /// the interpreter runs one instruction.
    Interpret,
    /// Not worth translating yet (`policy`): the interpreter runs one instruction.
    Cold,
}

/// The mode bits a block is specialised for.
fn mode_key(cpu: &Cpu) -> u32 {
    let s = cpu.s();
    s.code_bits() | (s.cpl() as u32) << 8 | (s.mode() as u32) << 16
}

// ANCHOR: find_or_translate
/// Translates RIP through the MMU and finds (or makes) its block. A fetch fault is returned
/// as the instruction's fault.
/// `inside_cold`: the interpreter just ran the instruction before this one (cold code) and
/// fell through to here: this address is not where a block starts, so it is not remembered.
fn find_or_translate(cpu: &mut Cpu, cache: &mut TranslationCache, inside_cold: bool) -> R<Found> {
    let s = cpu.s();
    let (rip, bits, linear) = (s.rip, s.code_bits(), s.linear_rip());
    let real_wrap = bits == 16 && rip > 0xFFF0 && s.mode() == CpuMode::Real;
    let user = s.cpl() == 3;
    let phys = cpu.translate(linear, Access::fetch(user))?;
    if real_wrap || !DecodeCache::trackable(phys) || !interp::cacheable(cpu.m, phys) {
        return Ok(Found::Interpret);
    }
    let key = BlockKey {
        phys,
        rip,
        mode: mode_key(cpu),
    };
    if let Some(id) = cache.lookup(&key) {
        return Ok(Found::Block(id));
    }
    let now = cpu.m.stats.instructions;
    if !cache
        .policy
        .should_translate(&key, now, !inside_cold, &mut cache.stats)
    {
        return Ok(Found::Cold);
    }
    let (ops, guest_bytes) = translate::translate(cpu, phys, rip, bits);
    if ops.is_empty() {
        return Ok(Found::Interpret);
    }
    if !cache.fits(ops.len()) {
        for page in cache.flush(true) {
            cpu.code.unmark_block_page(page);
        }
    }
    let id = cache.insert(key, linear, ops, guest_bytes);
    cpu.code.mark_block_page(phys >> 12);
    Ok(Found::Block(id))
}
// ANCHOR_END: find_or_translate

/// Runs one instruction in the interpreter (with its TF and debug-register handling).
fn interpret_one(cpu: &mut Cpu, cache: &mut TranslationCache) -> Option<Exit> {
    lazy::materialize(cpu);
    cache.stats.interpreted += 1;
    let result = interp::step_instruction(cpu);
    interp::retire(cpu, result)
}

fn run_blocks(
    cpu: &mut Cpu,
    cache: &mut TranslationCache,
    limit: RunLimit,
    one_block: bool,
) -> Exit {
    let first = cpu.m.stats.instructions;
    let io_start = cpu.m.stats.io_accesses();
    let time_end = limit.time_ns.map(|t| cpu.now_ns.saturating_add(t));
    let mut timing = Timing::new(cpu, time_end);
    // The block just left through a chainable exit, and the cache epoch it belongs to.
    let mut came_from: Option<(BlockId, u64)> = None;
    // The interpreter is running cold code and just fell through (see `find_or_translate`).
    let mut inside_cold = false;
    loop {
        // Between runs of chained blocks RFLAGS is exact: interrupts and exceptions push it.
        lazy::materialize(cpu);
        // Mode, CPL or RFLAGS.AC may change out here: the small TLB starts over.
        cpu.mmu.generation += 1;
        if one_block && cpu.m.stats.instructions > first {
            return Exit::LimitReached;
        }
        let mut budget = u64::MAX;
        if let Some(n) = limit.instructions {
            let executed = cpu.m.stats.instructions - first;
            if executed >= n {
                return Exit::LimitReached;
            }
            budget = n - executed;
        }
        if limit
            .io_accesses
            .is_some_and(|n| cpu.m.stats.io_accesses() - io_start >= n)
        {
            return Exit::LimitReached;
        }
        if let Some(end) = time_end {
            if cpu.now_ns >= end {
                return Exit::LimitReached;
            }
            // One instruction takes one ns: a block must not run past the end either.
            budget = budget.min(end - cpu.now_ns);
        }
        let shadowed = match interp::at_boundary(cpu, &mut timing) {
            Boundary::Execute { shadowed } => shadowed,
            Boundary::Again => {
                // An interrupt was delivered: execution jumped, it did not fall through.
                came_from = None;
                inside_cold = false;
                continue;
            }
            Boundary::Stop(exit) => return exit,
        };
        // Code writes from any path since the last block (an instruction the interpreter ran
        // alone, an interrupt frame pushed onto a code page, a previous run) drop their blocks
        // before the next lookup, so no stale translation is ever entered.
        if drop_written_blocks(cpu, cache) {
            came_from = None;
        }
        budget = budget.min(timing.instructions_until_deadline(cpu).max(1));
        let s = cpu.s();
        if shadowed || s.rflags & (TF | RF) != 0 || s.dr[7] & 0xFF != 0 {
            came_from = None;
            if let Some(exit) = interpret_one(cpu, cache) {
                return exit;
            }
            continue;
        }
        let rip = s.rip;
        let chained = came_from
            .filter(|&(_, epoch)| epoch == cache.epoch())
            .and_then(|(from, _)| cache.follow(from, rip));
        let id = match chained {
            Some(id) => {
                cache.stats.blocks_chained += 1;
                id
            }
            None => match find_or_translate(cpu, cache, std::mem::take(&mut inside_cold)) {
                Ok(Found::Block(id)) => {
                    if let Some((from, epoch)) = came_from {
                        if epoch == cache.epoch() && cache.same_page(from, id) {
                            cache.link(from, id);
                        }
                    }
                    id
                }
                Ok(found @ (Found::Interpret | Found::Cold)) => {
                    came_from = None;
                    if let Some(exit) = interpret_one(cpu, cache) {
                        return exit;
                    }
                    // Fell through to the next instruction: still inside the same would-be
                    // block, whose start alone counts as a visit.
                    let next = cpu.s().rip;
                    inside_cold = matches!(found, Found::Cold) && next > rip && next - rip <= 15;
                    continue;
                }
                Err(fault) => {
                    came_from = None;
                    cpu.start_rip = rip;
                    if let Some(exit) = interp::retire(cpu, Err(fault)) {
                        return exit;
                    }
                    continue;
                }
            },
        };
        let mut id = id;
        loop {
            let len = cache.get(id).ops.len() as u64;
            if len > budget {
                // The block would run past a device deadline or the run limit.
                came_from = None;
                if let Some(exit) = interpret_one(cpu, cache) {
                    return exit;
                }
                break;
            }
            let (outcome, chain_ok) = execute_block(cpu, cache, id);
            came_from = chain_ok.then(|| (id, cache.epoch()));
            if drop_written_blocks(cpu, cache) {
                came_from = None;
            }
            if let Some(exit) = outcome {
                return exit;
            }
            // Straight on to the linked successor when the boundary has nothing to do: no
            // device was touched (so no new interrupt request and no new deadline), none is
            // pending, the next deadline is still ahead, and the run is not one block long.
            budget -= len;
            // A chain that used the whole budget ends here: the next block, however short,
            // would be one instruction past the limit (found by `vmscope fuzz`: 2001 of 2000).
            if budget == 0
                || came_from.is_none()
                || one_block
                || cpu.bus_touched
                || cpu.irq_pending
                || cpu.now_ns >= timing.deadline
            {
                break;
            }
            match cache.follow(id, cpu.s().rip) {
                Some(next) => {
                    cache.stats.blocks_chained += 1;
                    id = next;
                }
                None => break,
            }
        }
    }
}

/// Drops the blocks overlapping every queued write to translated code; true if there were any.
fn drop_written_blocks(cpu: &mut Cpu, cache: &mut TranslationCache) -> bool {
    if cpu.code.block_writes.is_empty() {
        return false;
    }
    let now = cpu.m.stats.instructions;
    for (phys, size) in std::mem::take(&mut cpu.code.block_writes) {
        let before = cache.stats.invalidated_smc;
        for page in cache.invalidate_write(phys, size) {
            cpu.code.unmark_block_page(page);
        }
        if cache.stats.invalidated_smc != before {
            cache
                .policy
                .blocks_written(phys >> 12, now, &mut cache.stats);
        }
    }
    true
}

/// Runs block `id` from its first op until its end, a fault, or an early stop (`end_block`).
/// Returns the exit (if the run must stop) and whether the block was left through a branch
/// that may be chained (its end, or a taken side exit).
#[inline]
fn execute_block(cpu: &mut Cpu, cache: &mut TranslationCache, id: BlockId) -> (Option<Exit>, bool) {
    cache.stats.blocks_executed += 1;
    let block = cache.get_mut(id);
    block.executions += 1;
    let block = cache.get(id);
    let base_ns = cpu.now_ns;
    cpu.end_block = false;
    let mut done = 0u64;
    let mut fault = None;
    for op in block.ops.iter() {
        done += 1;
        if let Err(f) = (op.exec)(cpu, op) {
            fault = Some(f);
            break;
        }
        if cpu.end_block {
            break;
        }
    }
    let last = &block.ops[done as usize - 1];
    match fault {
        None => {
            if !last.sets_rip {
                cpu.st().rip = last.next_rip;
            }
            cpu.m.stats.instructions += done;
            cpu.now_ns = base_ns + done;
            let chain_ok = last.side_exit
                || done as usize == block.ops.len() && !cpu.end_block && block.chainable;
            (None, chain_ok)
        }
        Some(fault) => {
            lazy::materialize(cpu);
            // Everything before the faulting instruction retired; it is retired (delivered
            // and counted) as the interpreter does.
            cpu.m.stats.instructions += done - 1;
            cpu.now_ns = base_ns + done - 1;
            if !last.is_callout() {
                cpu.st().rip = last.rip;
                cpu.start_rip = last.rip;
            }
            (interp::retire(cpu, Err(fault)), false)
        }
    }
}

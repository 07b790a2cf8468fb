//! `Stats`: the counters every engine reports, so a comparison compares like with like.
//! Teaches: where a virtual machine spends its exits and traps, and how that differs by engine.

use std::collections::BTreeMap;
use std::fmt;

use devices::IoStats;

/// Counters of one machine run, accumulated across engine switches.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Guest instructions retired by engines that can count them (emulated engines).
    pub instructions: u64,
    /// Instructions executed by engines that cannot count them (KVM runs them natively).
    pub uncounted_runs: u64,
    /// VM exits (KVM) or traps to the machine (emulated engines) by reason ("io", "mmio", "hlt", …).
    #[serde(with = "devices::snapshot::interned")]
    pub exits: BTreeMap<&'static str, u64>,
    /// Exceptions delivered to the guest, by vector name ("#GP", "#PF", …).
    #[serde(with = "devices::snapshot::interned")]
    pub exceptions: BTreeMap<&'static str, u64>,
    /// Hardware interrupts delivered to the guest (from the PIC).
    pub interrupts: u64,
    /// Instructions the interpreter does not implement, by mnemonic (each raised #UD in the guest).
    pub unimplemented: BTreeMap<String, u64>,
    /// Software-MMU counters.
    pub mmu: MmuStats,
    /// Engine switches performed during the run.
    pub engine_switches: u64,
    /// Binary-translator counters (zero when it never ran).
    pub translator: TranslatorStats,
    /// Hypercalls by (name, door: "port" or "vmcall").
    #[serde(with = "devices::snapshot::interned::pairs")]
    pub hypercalls: BTreeMap<(&'static str, &'static str), u64>,
    /// Hypercalls that returned an error to the guest.
    pub hypercall_errors: u64,
    /// Times a page-table batch made KVM reset its MMU (KVM cannot be told single entries).
    pub kvm_mmu_resets: u64,
}

/// Counters of the binary translator (part of `Stats`, so they add up across engine switches).
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TranslatorStats {
    /// Blocks translated, and the guest instructions in them.
    pub blocks_translated: u64,
    pub instructions_translated: u64,
    /// Blocks executed (entered), and how many of those entries came through a chain link.
    pub blocks_executed: u64,
    pub blocks_chained: u64,
    /// Links made between blocks.
    pub links_made: u64,
    /// Blocks dropped because the guest wrote to their bytes (self-modifying code).
    pub invalidated_smc: u64,
    /// Blocks dropped by a capacity flush, and the flushes.
    pub invalidated_capacity: u64,
    pub capacity_flushes: u64,
    /// Blocks dropped because the cache was flushed from outside (another engine ran, a
    /// debugger wrote memory).
    pub invalidated_flush: u64,
    /// Instructions run one at a time by the interpreter instead (single-step, debug
    /// registers, page-crossing or MMIO-resident instructions, a partial block before a
    /// device deadline or the run limit).
    pub interpreted: u64,
    /// Of those: instructions of blocks reached for the first time (translated only when
    /// reached again), and of pages whose code was rewritten often (see `bt::policy`).
    pub interpreted_cold: u64,
    pub interpreted_written_page: u64,
    /// Times a page was switched to interpretation because its code kept being rewritten.
    pub pages_cooled: u64,
}

impl TranslatorStats {
    fn fields(&self) -> [u64; 13] {
        [
            self.blocks_translated,
            self.instructions_translated,
            self.blocks_executed,
            self.blocks_chained,
            self.links_made,
            self.invalidated_smc,
            self.invalidated_capacity,
            self.capacity_flushes,
            self.invalidated_flush,
            self.interpreted,
            self.interpreted_cold,
            self.interpreted_written_page,
            self.pages_cooled,
        ]
    }

    fn from_fields(v: [u64; 13]) -> Self {
        TranslatorStats {
            blocks_translated: v[0],
            instructions_translated: v[1],
            blocks_executed: v[2],
            blocks_chained: v[3],
            links_made: v[4],
            invalidated_smc: v[5],
            invalidated_capacity: v[6],
            capacity_flushes: v[7],
            invalidated_flush: v[8],
            interpreted: v[9],
            interpreted_cold: v[10],
            interpreted_written_page: v[11],
            pages_cooled: v[12],
        }
    }

    /// The counts that happened since `earlier` (same translator).
    pub fn since(&self, earlier: &TranslatorStats) -> TranslatorStats {
        let (a, b) = (self.fields(), earlier.fields());
        TranslatorStats::from_fields(std::array::from_fn(|i| a[i] - b[i]))
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &TranslatorStats) {
        let (a, b) = (self.fields(), other.fields());
        *self = TranslatorStats::from_fields(std::array::from_fn(|i| a[i] + b[i]));
    }
}

/// Counters of the software MMU (the shadow page tables).
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MmuStats {
    /// Translations answered by a shadow entry (no walk).
    pub tlb_hits: u64,
    /// Translations that had to walk the guest page tables.
    pub tlb_misses: u64,
    pub page_walks: u64,
    /// Page faults the MMU raised (delivered to the guest as #PF).
    pub page_faults: u64,
    /// Whole-shadow flushes (mode changes, another engine ran, capacity).
    pub flushes: u64,
    /// New shadow entries made from a walk.
    pub shadow_fills: u64,
    /// Accessed and dirty bits the walker set in guest entries.
    pub accessed_set: u64,
    pub dirty_set: u64,
    /// Translations to non-RAM (MMIO, ROM) pages, kept off the fast path (never cached).
    pub mmio_bypass: u64,
    /// MOV to CR3 executed.
    pub cr3_writes: u64,
    /// CR3 writes that found the new address space's shadow retained.
    pub space_reuses: u64,
    pub spaces_created: u64,
    pub spaces_evicted: u64,
    /// Guest writes that hit a page holding page-table entries a shadow was built from.
    pub pt_write_traps: u64,
    /// Page-table entries written by HC_MMU_UPDATE (paravirtual page tables), of them how many
    /// sat in a traced frame (a write-protect trap each, had the guest stored them itself),
    /// and INVLPG requests in batches.
    pub pv_pte_writes: u64,
    pub pv_traps_avoided: u64,
    pub pv_invlpg: u64,
    /// Shadow entries invalidated, by cause.
    pub inval_cr3: u64,
    pub inval_invlpg: u64,
    pub inval_invpcid: u64,
    pub inval_pt_write: u64,
    pub inval_mode_change: u64,
    /// Dropped because another engine ran, or the dependency table was full.
    pub inval_other: u64,
}

impl Stats {
    pub fn count_exit(&mut self, reason: &'static str) {
        *self.exits.entry(reason).or_default() += 1;
    }

    pub fn count_exception(&mut self, name: &'static str) {
        *self.exceptions.entry(name).or_default() += 1;
    }

    /// Guest port and MMIO accesses so far: the unit of `RunLimit::io_accesses`, counted the same
    /// way by every engine.
    pub fn io_accesses(&self) -> u64 {
        self.exits.get("io").copied().unwrap_or(0) + self.exits.get("mmio").copied().unwrap_or(0)
    }

    /// Records an instruction the interpreter does not implement (the guest got #UD).
    pub fn count_unimplemented(&mut self, mnemonic: iced_x86::Mnemonic) {
        *self
            .unimplemented
            .entry(format!("{mnemonic:?}").to_lowercase())
            .or_default() += 1;
    }

    pub fn total_exits(&self) -> u64 {
        self.exits.values().sum()
    }

    /// Renders the counters with the bus's I/O counters, as `vmscope run --stats` prints them.
    pub fn report(&self, io: &IoStats) -> String {
        let mut out = String::new();
        self.write_report(io, &mut out)
            .expect("formatting into a String");
        out
    }

    fn write_report(&self, io: &IoStats, out: &mut String) -> fmt::Result {
        use fmt::Write;
        writeln!(out, "instructions (counted): {}", self.instructions)?;
        if self.uncounted_runs > 0 {
            writeln!(
                out,
                "native runs (KVM_RUN, not counted): {}",
                self.uncounted_runs
            )?;
        }
        writeln!(out, "exits/traps to the VMM: {}", self.total_exits())?;
        for (reason, n) in &self.exits {
            writeln!(out, "  {reason:<20} {n}")?;
        }
        writeln!(
            out,
            "exceptions delivered: {}",
            self.exceptions.values().sum::<u64>()
        )?;
        for (name, n) in &self.exceptions {
            writeln!(out, "  {name:<20} {n}")?;
        }
        writeln!(out, "hardware interrupts delivered: {}", self.interrupts)?;
        if !self.unimplemented.is_empty() {
            writeln!(out, "unimplemented instructions (guest #UD):")?;
            for (m, n) in &self.unimplemented {
                writeln!(out, "  {m:<20} {n}")?;
            }
        }
        let m = &self.mmu;
        if m.tlb_hits + m.tlb_misses > 0 {
            writeln!(
                out,
                "software MMU: {} TLB hits, {} misses, {} walks, {} page faults, {} flushes",
                m.tlb_hits, m.tlb_misses, m.page_walks, m.page_faults, m.flushes
            )?;
            writeln!(
                out,
                "  shadow: {} fills, {} MMIO bypasses, {} A bits + {} D bits set",
                m.shadow_fills, m.mmio_bypass, m.accessed_set, m.dirty_set
            )?;
            writeln!(
                out,
                "  address spaces: {} CR3 writes, {} reused a retained shadow, {} created, {} evicted",
                m.cr3_writes, m.space_reuses, m.spaces_created, m.spaces_evicted
            )?;
            writeln!(out, "  page-table write traps: {}", m.pt_write_traps)?;
            writeln!(
                out,
                "  entries invalidated by: CR3 {}, INVLPG {}, INVPCID {}, PT write {}, mode change {}, other {}",
                m.inval_cr3,
                m.inval_invlpg,
                m.inval_invpcid,
                m.inval_pt_write,
                m.inval_mode_change,
                m.inval_other
            )?;
        }
        if m.pv_pte_writes + m.pv_invlpg > 0 {
            writeln!(
                out,
                "paravirtual page tables: {} entries written by HC_MMU_UPDATE ({} write-protect \
                 traps avoided), {} INVLPG requests",
                m.pv_pte_writes, m.pv_traps_avoided, m.pv_invlpg
            )?;
        }
        if !self.hypercalls.is_empty() {
            writeln!(
                out,
                "hypercalls: {} ({} returned an error)",
                self.hypercalls.values().sum::<u64>(),
                self.hypercall_errors
            )?;
            for ((name, door), n) in &self.hypercalls {
                writeln!(out, "  {name:<14} via {door:<7} {n}")?;
            }
            if self.kvm_mmu_resets > 0 {
                writeln!(
                    out,
                    "  KVM MMU resets after page-table batches: {}",
                    self.kvm_mmu_resets
                )?;
            }
        }
        writeln!(out, "I/O by device:")?;
        for (dev, n) in &io.by_device {
            writeln!(out, "  {dev:<20} {n}")?;
        }
        if io.mmio_reads + io.mmio_writes > 0 {
            writeln!(
                out,
                "MMIO: {} reads, {} writes",
                io.mmio_reads, io.mmio_writes
            )?;
        }
        let t = &self.translator;
        if t.blocks_translated > 0 {
            writeln!(
                out,
                "binary translator: {} blocks translated ({} instructions), {} executed, {} entered \
                 through a chain link ({} links made), {} instructions interpreted",
                t.blocks_translated,
                t.instructions_translated,
                t.blocks_executed,
                t.blocks_chained,
                t.links_made,
                t.interpreted
            )?;
            writeln!(
                out,
                "  blocks invalidated by: guest writes (self-modifying code) {}, capacity flushes {} \
                 ({} flushes), flushes from outside {}",
                t.invalidated_smc, t.invalidated_capacity, t.capacity_flushes, t.invalidated_flush
            )?;
            writeln!(
                out,
                "  interpreted instead of translated: {} first visits (translated on the next), \
                 {} on pages whose code kept being rewritten ({} such cool-downs)",
                t.interpreted_cold, t.interpreted_written_page, t.pages_cooled
            )?;
        }
        if self.engine_switches > 0 {
            writeln!(out, "engine switches: {}", self.engine_switches)?;
        }
        Ok(())
    }
}

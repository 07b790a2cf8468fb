//! `Stats`: the counters every engine reports, so a comparison compares like with like.
//! Teaches: where a virtual machine spends its exits and traps, and how that differs by engine.

use std::collections::BTreeMap;
use std::fmt;

use devices::IoStats;

/// Counters of one machine run, accumulated across engine switches.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Guest instructions retired by engines that can count them (emulated engines).
    pub instructions: u64,
    /// Instructions executed by engines that cannot count them (KVM runs them natively).
    pub uncounted_runs: u64,
    /// VM exits (KVM) or traps to the machine (emulated engines) by reason ("io", "mmio", "hlt", …).
    pub exits: BTreeMap<&'static str, u64>,
    /// Exceptions delivered to the guest, by vector name ("#GP", "#PF", …).
    pub exceptions: BTreeMap<&'static str, u64>,
    /// Hardware interrupts delivered to the guest (from the PIC).
    pub interrupts: u64,
    /// Instructions the interpreter does not implement, by mnemonic (each raised #UD in the guest).
    pub unimplemented: BTreeMap<String, u64>,
    /// Software-MMU counters.
    pub mmu: MmuStats,
    /// Engine switches performed during the run.
    pub engine_switches: u64,
}

/// Counters of the software MMU (the shadow page tables).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MmuStats {
    pub tlb_hits: u64,
    pub tlb_misses: u64,
    pub page_walks: u64,
    pub page_faults: u64,
    pub flushes: u64,
}

impl Stats {
    pub fn count_exit(&mut self, reason: &'static str) {
        *self.exits.entry(reason).or_default() += 1;
    }

    pub fn count_exception(&mut self, name: &'static str) {
        *self.exceptions.entry(name).or_default() += 1;
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
        if self.engine_switches > 0 {
            writeln!(out, "engine switches: {}", self.engine_switches)?;
        }
        Ok(())
    }
}

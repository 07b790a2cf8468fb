//! The software MMU: page-table walks and a software TLB (the beginning of shadow paging).
//! Teaches: how a linear address becomes a physical one, and why caching the answer needs invalidation.
//!
//! `walk` follows the guest's own page tables (32-bit, PAE and 4-level), sets accessed/dirty bits
//! and checks permissions; `Mmu` caches the results in a direct-mapped software TLB that is flushed
//! on CR3 writes, INVLPG and paging-mode changes.

pub mod walk;

pub use walk::{peek_walk, walk, Access, PageFault, WalkResult};

use crate::cpu::CpuState;
use crate::machine::Machine;

const TLB_ENTRIES: usize = 1024;

#[derive(Clone, Copy, Default)]
struct TlbEntry {
    /// Linear page number + 1 (0 = empty slot).
    tag: u64,
    phys_page: u64,
    user: bool,
    writable: bool,
    executable: bool,
    /// The dirty bit is already set, so writes need no walk.
    dirty: bool,
    global: bool,
}

/// Software TLB: remembers recent page-walk results, keyed by linear page.
pub struct Mmu {
    tlb: Box<[TlbEntry; TLB_ENTRIES]>,
}

impl Default for Mmu {
    fn default() -> Self {
        Mmu {
            tlb: Box::new([TlbEntry::default(); TLB_ENTRIES]),
        }
    }
}

impl Mmu {
    /// Forgets every cached translation (global pages survive only if `keep_global`).
    pub fn flush(&mut self, machine_stats: &mut crate::machine::Stats, keep_global: bool) {
        machine_stats.mmu.flushes += 1;
        for e in self.tlb.iter_mut() {
            if !(keep_global && e.global) {
                e.tag = 0;
            }
        }
    }

    /// INVLPG: forgets the translation of one linear page.
    pub fn invalidate_page(&mut self, linear: u64) {
        let page = linear >> 12;
        let slot = &mut self.tlb[(page as usize) % TLB_ENTRIES];
        if slot.tag == page + 1 {
            slot.tag = 0;
        }
    }

    /// Translates a linear address for `access`, walking the guest page tables on a TLB miss.
    pub fn translate(
        &mut self,
        machine: &mut Machine,
        linear: u64,
        access: Access,
    ) -> Result<u64, PageFault> {
        if !machine.cpu.paging_enabled() {
            return Ok(linear & 0xFFFF_FFFF);
        }
        let page = linear >> 12;
        let slot = (page as usize) % TLB_ENTRIES;
        let e = self.tlb[slot];
        if e.tag == page + 1 && permits(&e, &machine.cpu, access) {
            machine.stats.mmu.tlb_hits += 1;
            return Ok(e.phys_page | (linear & 0xFFF));
        }
        machine.stats.mmu.tlb_misses += 1;
        machine.stats.mmu.page_walks += 1;
        match walk(machine, linear, access) {
            Ok(w) => {
                self.tlb[slot] = TlbEntry {
                    tag: page + 1,
                    phys_page: w.phys & !0xFFF,
                    user: w.user,
                    writable: w.writable,
                    executable: w.executable,
                    dirty: w.dirty,
                    global: w.global,
                };
                Ok(w.phys)
            }
            Err(f) => {
                machine.stats.mmu.page_faults += 1;
                Err(f)
            }
        }
    }
}

/// Reads guest memory at a linear address without side effects (no A/D bits, no TLB fill),
/// as a debugger does. Returns the guest-physical address that failed to translate on error.
pub fn peek_linear(machine: &mut Machine, linear: u64, out: &mut [u8]) -> Result<(), u64> {
    for (i, byte) in out.iter_mut().enumerate() {
        let lin = linear.wrapping_add(i as u64);
        let phys = if machine.cpu.paging_enabled() {
            peek_walk(machine, lin, Access::read(false))
                .map_err(|_| lin)?
                .phys
        } else {
            lin & 0xFFFF_FFFF
        };
        *byte = machine.phys_read(phys, 1) as u8;
    }
    Ok(())
}

/// Does a cached entry allow this access without a walk? (Anything doubtful goes to the walker,
/// which produces the exact fault or sets the dirty bit.)
fn permits(e: &TlbEntry, cpu: &CpuState, access: Access) -> bool {
    if access.user && !e.user {
        return false;
    }
    if access.write {
        if !e.dirty {
            return false;
        }
        let wp = cpu.cr0 & crate::cpu::ctl::CR0_WP != 0;
        if !e.writable && (access.user || wp) {
            return false;
        }
    }
    if access.fetch && !e.executable {
        return false;
    }
    true
}

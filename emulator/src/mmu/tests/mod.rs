//! Unit tests of the software MMU: walks in every paging mode, the shadow and its invalidation.
//! Teaches: each architectural rule gets a small machine, hand-written page tables and a check.

mod differential;
mod explain;
mod shadow;
mod tracing;
mod walk_modes;

use crate::cpu::ctl::*;
use crate::machine::Machine;

pub(super) use super::walk::pte::*;

pub(super) fn machine() -> Machine {
    Machine::new(16 << 20).unwrap()
}

/// 4-level paging with CR3 = 0x1000, NXE on, CR0.WP on.
pub(super) fn long_mode(m: &mut Machine) {
    m.cpu.cr0 = CR0_PE | CR0_PG | CR0_WP;
    m.cpu.cr4 = CR4_PAE;
    m.cpu.efer = EFER_LME | EFER_LMA | EFER_NXE;
    m.cpu.cr3 = 0x1000;
}

/// Maps linear `lin` to `phys` with 4-level tables rooted at 0x1000, allocating tables from
/// `next` (advanced). `leaf` holds the PTE flags; upper levels get P|RW|US.
pub(super) fn map4(m: &mut Machine, next: &mut u64, lin: u64, phys: u64, leaf: u64) {
    let mut table = m.cpu.cr3 & !0xFFF;
    for shift in [39u32, 30, 21] {
        let addr = table + ((lin >> shift) & 0x1FF) * 8;
        let mut e = m.phys_read(addr, 8);
        if e & P == 0 {
            e = *next | P | RW | US;
            *next += 0x1000;
            m.phys_write(addr, 8, e);
        }
        table = e & 0x000F_FFFF_FFFF_F000;
    }
    m.phys_write(table + ((lin >> 12) & 0x1FF) * 8, 8, phys | leaf);
}

/// The PTE address of `lin` in tables built by `map4`.
pub(super) fn pte_addr4(m: &mut Machine, lin: u64) -> u64 {
    let mut table = m.cpu.cr3 & !0xFFF;
    for shift in [39u32, 30, 21] {
        table = m.phys_read(table + ((lin >> shift) & 0x1FF) * 8, 8) & 0x000F_FFFF_FFFF_F000;
    }
    table + ((lin >> 12) & 0x1FF) * 8
}

//! The page walker: follows 32-bit, PAE and 4-level page tables exactly as the CPU does.
//! Teaches: paging structures, large pages, accessed/dirty bits, and how a #PF error code is built.

use crate::cpu::{ctl, CpuState};
use crate::machine::Machine;

/// What kind of access is being translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Access {
    pub write: bool,
    /// A user-mode access (CPL 3, not an implicit supervisor access like a descriptor-table read).
    pub user: bool,
    pub fetch: bool,
}

impl Access {
    pub const fn read(user: bool) -> Self {
        Access {
            write: false,
            user,
            fetch: false,
        }
    }
    pub const fn write(user: bool) -> Self {
        Access {
            write: true,
            user,
            fetch: false,
        }
    }
    pub const fn fetch(user: bool) -> Self {
        Access {
            write: false,
            user,
            fetch: true,
        }
    }
}

/// A page fault: the linear address (for CR2) and the error code pushed by the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageFault {
    pub linear: u64,
    pub error_code: u32,
}

/// The result of a successful walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkResult {
    pub phys: u64,
    /// Combined permissions across all levels.
    pub user: bool,
    pub writable: bool,
    pub executable: bool,
    pub dirty: bool,
    pub global: bool,
    /// Page size in bytes (4 KiB, 2 MiB, 4 MiB, 1 GiB).
    pub page_size: u64,
}

const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const A: u64 = 1 << 5;
const D: u64 = 1 << 6;
const PS: u64 = 1 << 7;
const G: u64 = 1 << 8;
const NX: u64 = 1 << 63;
const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;

/// Walks the guest page tables for `linear`; sets A (and D on writes) like the hardware does.
pub fn walk(machine: &mut Machine, linear: u64, access: Access) -> Result<WalkResult, PageFault> {
    walk_with(machine, linear, access, true)
}

/// A walk that changes nothing (no accessed/dirty updates): for debuggers and disassemblers.
pub fn peek_walk(
    machine: &mut Machine,
    linear: u64,
    access: Access,
) -> Result<WalkResult, PageFault> {
    walk_with(machine, linear, access, false)
}

fn walk_with(
    machine: &mut Machine,
    linear: u64,
    access: Access,
    update_ad: bool,
) -> Result<WalkResult, PageFault> {
    let cpu = machine.cpu.clone();
    let cpu = &cpu;
    let nxe = cpu.efer & ctl::EFER_NXE != 0;
    let fault = |present: bool, rsvd: bool| PageFault {
        linear,
        error_code: present as u32
            | (access.write as u32) << 1
            | (access.user as u32) << 2
            | (rsvd as u32) << 3
            | ((access.fetch && nxe) as u32) << 4,
    };
    // (entry size, levels as (shift, index bits)) for the current mode.
    let (entry_size, table, levels): (u64, u64, &[(u32, u32)]) = if cpu.cr4 & ctl::CR4_PAE == 0 {
        (4, cpu.cr3 & 0xFFFF_F000, &[(22, 10), (12, 10)])
    } else if cpu.long_mode_active() {
        (
            8,
            cpu.cr3 & ADDR_MASK,
            &[(39, 9), (30, 9), (21, 9), (12, 9)],
        )
    } else {
        (8, cpu.cr3 & 0xFFFF_FFE0, &[(30, 2), (21, 9), (12, 9)])
    };
    let pae = entry_size == 8;
    let legacy_pdpte = pae && levels.len() == 3;
    let pse = cpu.cr4 & ctl::CR4_PSE != 0;
    let pge = cpu.cr4 & ctl::CR4_PGE != 0;

    let mut table = table;
    let (mut user, mut writable, mut executable) = (true, true, true);
    for (depth, &(shift, bits)) in levels.iter().enumerate() {
        let index = (linear >> shift) & ((1 << bits) - 1);
        let entry_addr = table + index * entry_size;
        let mut entry = machine.phys_read(entry_addr, entry_size as usize);
        if entry & P == 0 {
            return Err(fault(false, false));
        }
        if pae && !nxe && entry & NX != 0 {
            return Err(fault(true, true));
        }
        let is_pdpte = legacy_pdpte && depth == 0;
        if !is_pdpte {
            user &= entry & US != 0;
            writable &= entry & RW != 0;
            executable &= entry & NX == 0 || !nxe;
        }
        let last = depth == levels.len() - 1;
        let large =
            !last && !is_pdpte && entry & PS != 0 && (pae && shift <= 30 || pse && shift == 22);
        if last || large {
            check(cpu, access, user, writable, executable).map_err(|_| fault(true, false))?;
            let mut new = entry | A;
            if access.write {
                new |= D;
            }
            if update_ad && new != entry {
                machine.phys_write(entry_addr, entry_size as usize, new);
                entry = new;
            }
            let page_size = 1u64 << shift;
            let base = if large && !pae {
                // 4 MiB page: bits 31:22 of the PDE (PSE-36 high bits ignored).
                entry & 0xFFC0_0000
            } else {
                entry & ADDR_MASK & !(page_size - 1)
            };
            return Ok(WalkResult {
                phys: base | (linear & (page_size - 1)),
                user,
                writable,
                executable,
                dirty: entry & D != 0,
                global: pge && entry & G != 0,
                page_size,
            });
        }
        if update_ad && !is_pdpte && entry & A == 0 {
            machine.phys_write(entry_addr, entry_size as usize, entry | A);
        }
        table = if pae {
            entry & ADDR_MASK
        } else {
            entry & 0xFFFF_F000
        };
    }
    unreachable!("the last level always returns")
}

fn check(cpu: &CpuState, access: Access, user: bool, writable: bool, exec: bool) -> Result<(), ()> {
    if access.user && !user {
        return Err(());
    }
    if access.write && !writable && (access.user || cpu.cr0 & ctl::CR0_WP != 0) {
        return Err(());
    }
    if access.fetch && !exec {
        return Err(());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::ctl::*;

    fn machine() -> Machine {
        Machine::new(8 << 20).unwrap()
    }

    #[test]
    fn four_level_walk_maps_and_sets_accessed_and_dirty() {
        let mut m = machine();
        // PML4 at 0x1000 → PDPT 0x2000 → PD 0x3000 → PT 0x4000 → page 0x7000 for linear 0x40_1000.
        m.phys_write(0x1000, 8, 0x2000 | P | RW | US);
        m.phys_write(0x2000, 8, 0x3000 | P | RW | US);
        m.phys_write(0x3000 + 2 * 8, 8, 0x4000 | P | RW | US);
        m.phys_write(0x4000 + 8, 8, 0x7000 | P | RW);
        m.cpu.cr0 = CR0_PE | CR0_PG;
        m.cpu.cr4 = CR4_PAE;
        m.cpu.efer = EFER_LME | EFER_LMA;
        m.cpu.cr3 = 0x1000;
        let r = walk(&mut m, 0x40_1234, Access::write(false)).unwrap();
        assert_eq!(r.phys, 0x7234);
        assert_eq!(m.phys_read(0x4008, 8) & (A | D), A | D);
        assert_eq!(m.phys_read(0x1000, 8) & A, A);
        // A user read is refused: the PTE is supervisor-only; error code P|U.
        let f = walk(&mut m, 0x40_1234, Access::read(true)).unwrap_err();
        assert_eq!(f.error_code, 0b101);
        // Unmapped: not-present write from supervisor.
        let f = walk(&mut m, 0x40_3000, Access::write(false)).unwrap_err();
        assert_eq!((f.linear, f.error_code), (0x40_3000, 0b010));
    }

    #[test]
    fn two_mib_page_in_long_mode() {
        let mut m = machine();
        m.phys_write(0x1000, 8, 0x2000 | P | RW);
        m.phys_write(0x2000, 8, 0x3000 | P | RW);
        m.phys_write(0x3000 + 8, 8, 0x40_0000 | P | RW | PS);
        m.cpu.cr0 = CR0_PE | CR0_PG;
        m.cpu.cr4 = CR4_PAE;
        m.cpu.efer = EFER_LME | EFER_LMA;
        m.cpu.cr3 = 0x1000;
        let r = walk(&mut m, 0x2F_FFF8, Access::read(false)).unwrap();
        assert_eq!((r.phys, r.page_size), (0x4F_FFF8, 2 << 20));
    }

    #[test]
    fn thirty_two_bit_walk_with_4k_and_4m_pages_and_write_protect() {
        let mut m = machine();
        m.phys_write(0x1000, 4, 0x2000 | P | US); // PDE 0 → PT, read-only
        m.phys_write(0x2000 + 5 * 4, 4, 0x9000 | P | RW | US);
        m.phys_write(0x1000 + 4, 4, 0x40_0000 | P | RW | PS); // PDE 1: 4 MiB page
        m.cpu.cr0 = CR0_PE | CR0_PG;
        m.cpu.cr3 = 0x1000;
        assert_eq!(
            walk(&mut m, 0x5123, Access::read(true)).unwrap().phys,
            0x9123
        );
        // Without CR4.PSE the PS bit is ignored: the PDE points at a page table at 0x400000.
        m.cpu.cr4 = CR4_PSE;
        assert_eq!(
            walk(&mut m, 0x41_0000, Access::read(false)).unwrap().phys,
            0x41_0000
        );
        // The PDE is read-only: supervisor writes pass without CR0.WP and fault with it.
        assert!(walk(&mut m, 0x5000, Access::write(false)).is_ok());
        m.cpu.cr0 |= CR0_WP;
        assert_eq!(
            walk(&mut m, 0x5000, Access::write(false))
                .unwrap_err()
                .error_code,
            0b011
        );
    }
}

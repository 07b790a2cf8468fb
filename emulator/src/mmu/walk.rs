//! The page walker: follows 32-bit, PAE and 4-level page tables exactly as the CPU does.
//! Teaches: paging structures, large pages, reserved bits, accessed/dirty bits, and how a #PF error code is built.

use super::fault::{pf, Access, PageFault};
use super::mode::{load_pdptes, ControlRegs, PagingMode, ADDR_MASK, HIGH_RESERVED};
use super::permission::{check, Denial, Rights};
use crate::machine::Machine;

/// Bits of a paging-structure entry.
pub mod pte {
    pub const P: u64 = 1 << 0;
    pub const RW: u64 = 1 << 1;
    pub const US: u64 = 1 << 2;
    pub const PWT: u64 = 1 << 3;
    pub const PCD: u64 = 1 << 4;
    pub const A: u64 = 1 << 5;
    pub const D: u64 = 1 << 6;
    /// Page size in a PDE/PDPTE (PAT in a PTE).
    pub const PS: u64 = 1 << 7;
    pub const G: u64 = 1 << 8;
    /// PAT bit of a large-page entry.
    pub const PAT_LARGE: u64 = 1 << 12;
    pub const XD: u64 = 1 << 63;
}

/// A level of the paging hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Pml4,
    Pdpt,
    Pd,
    Pt,
}

impl Level {
    /// The entry's name as the SDM spells it.
    pub fn entry_name(self) -> &'static str {
        match self {
            Level::Pml4 => "PML4E",
            Level::Pdpt => "PDPTE",
            Level::Pd => "PDE",
            Level::Pt => "PTE",
        }
    }
}

/// One paging-structure entry the walk read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub level: Level,
    /// Physical address of the table this entry sits in.
    pub table: u64,
    pub index: u64,
    /// Guest-physical address of the entry (for PAE PDPTEs: where the register was loaded from).
    pub entry_addr: u64,
    /// A PAE PDPTE comes from a register loaded at the last MOV to CR3, not from memory.
    pub from_register: bool,
    /// Entry size in bytes (4 or 8).
    pub size: u8,
    /// The entry as read.
    pub raw: u64,
    /// The entry after the walk's accessed/dirty update (equal to `raw` if none).
    pub after: u64,
    /// log2 of the linear region this entry maps (39, 30, 22, 21 or 12).
    pub region_shift: u8,
    /// This entry maps the page (PTE, or a PDE/PDPTE with PS = 1).
    pub leaf: bool,
    /// Reserved bits that are set (non-zero = RSVD fault).
    pub reserved: u64,
}

/// The entries one walk read, top level first (at most four).
#[derive(Debug, Clone, Copy, Default)]
pub struct Steps {
    items: [Option<Step>; 4],
    len: usize,
}

impl Steps {
    fn push(&mut self, s: Step) {
        self.items[self.len] = Some(s);
        self.len += 1;
    }
    fn last_mut(&mut self) -> &mut Step {
        self.items[self.len - 1].as_mut().expect("pushed")
    }
    pub fn iter(&self) -> impl Iterator<Item = &Step> {
        self.items[..self.len].iter().flatten()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Why a walk stopped without a translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCause {
    NotPresent(Level),
    Reserved(Level),
    Denied(Denial),
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

/// Everything one walk found: the entries, and the translation or the fault.
#[derive(Debug, Clone, Copy)]
pub struct WalkDetail {
    pub mode: PagingMode,
    pub steps: Steps,
    pub rights: Rights,
    pub outcome: Result<WalkResult, (PageFault, FaultCause)>,
    /// Accessed bits and dirty bits this walk set.
    pub accessed_set: u32,
    pub dirty_set: u32,
}

/// Walks the guest page tables for `linear`; sets A (and D on writes) like the hardware does.
/// PAE PDPTEs are read from memory at CR3 (what a MOV to CR3 would load).
pub fn walk(machine: &mut Machine, linear: u64, access: Access) -> Result<WalkResult, PageFault> {
    walk_detail(machine, None, linear, access, true)
        .outcome
        .map_err(|(f, _)| f)
}

/// A walk that changes nothing (no accessed/dirty updates): for debuggers and disassemblers.
pub fn peek_walk(
    machine: &mut Machine,
    linear: u64,
    access: Access,
) -> Result<WalkResult, PageFault> {
    walk_detail(machine, None, linear, access, false)
        .outcome
        .map_err(|(f, _)| f)
}

/// Reads a paging-structure entry: straight from RAM when it is there (the common case, with a
/// fixed-size copy), else through the bus like any physical read.
#[inline]
fn read_entry(machine: &mut Machine, addr: u64, size: u8) -> u64 {
    let ram = machine.ram.as_slice();
    let start = addr as usize;
    if addr
        .checked_add(size as u64)
        .is_some_and(|end| end <= ram.len() as u64)
    {
        if size == 8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&ram[start..start + 8]);
            return u64::from_le_bytes(b);
        }
        let mut b = [0u8; 4];
        b.copy_from_slice(&ram[start..start + 4]);
        return u32::from_le_bytes(b) as u64;
    }
    machine.phys_read(addr, size as usize)
}

/// The walk itself. `pdptes`: the PAE PDPTE registers (None = load them from CR3 now).
#[inline]
pub fn walk_detail(
    machine: &mut Machine,
    pdptes: Option<&[u64; 4]>,
    linear: u64,
    access: Access,
    update_ad: bool,
) -> WalkDetail {
    let regs = ControlRegs::of(&machine.cpu);
    let rflags = machine.cpu.rflags;
    let mode = regs.mode();
    let nxe = regs.nxe();
    let mut d = WalkDetail {
        mode,
        steps: Steps::default(),
        rights: Rights::ALL,
        outcome: Ok(WalkResult {
            phys: linear & 0xFFFF_FFFF,
            user: true,
            writable: true,
            executable: true,
            dirty: true,
            global: false,
            page_size: 4096,
        }),
        accessed_set: 0,
        dirty_set: 0,
    };
    let id = access.fetch && (regs.smep() || nxe);
    let fault = |p: bool, rsvd: bool| PageFault {
        linear,
        error_code: if p { pf::P } else { 0 }
            | if access.write { pf::W } else { 0 }
            | if access.user { pf::U } else { 0 }
            | if rsvd { pf::RSVD | pf::P } else { 0 }
            | if id { pf::ID } else { 0 },
    };
    let xd_reserved = if nxe { 0 } else { pte::XD };
    // (level, shift, index bits, entry size) from the top; PAE starts below its PDPTE register.
    let (levels, mut table): (&[(Level, u32, u32, u8)], u64) = match mode {
        PagingMode::Off => return d,
        PagingMode::Bits32 => (
            &[(Level::Pd, 22, 10, 4), (Level::Pt, 12, 10, 4)],
            regs.root(),
        ),
        PagingMode::FourLevel => (
            &[
                (Level::Pml4, 39, 9, 8),
                (Level::Pdpt, 30, 9, 8),
                (Level::Pd, 21, 9, 8),
                (Level::Pt, 12, 9, 8),
            ],
            regs.root(),
        ),
        PagingMode::Pae => {
            let loaded;
            let regs_pdptes = match pdptes {
                Some(p) => p,
                None => {
                    loaded = load_pdptes(machine, regs.cr3).unwrap_or([0; 4]);
                    &loaded
                }
            };
            let index = (linear >> 30) & 3;
            let raw = regs_pdptes[index as usize];
            d.steps.push(Step {
                level: Level::Pdpt,
                table: regs.root(),
                index,
                entry_addr: regs.root() + index * 8,
                from_register: true,
                size: 8,
                raw,
                after: raw,
                region_shift: 30,
                leaf: false,
                reserved: 0,
            });
            if raw & pte::P == 0 {
                d.outcome = Err((fault(false, false), FaultCause::NotPresent(Level::Pdpt)));
                return d;
            }
            (
                &[(Level::Pd, 21, 9, 8), (Level::Pt, 12, 9, 8)],
                raw & ADDR_MASK,
            )
        }
    };
    let mut rights = Rights::ALL;
    // ANCHOR: walk_level
    for &(level, shift, bits, size) in levels {
        let index = (linear >> shift) & ((1 << bits) - 1);
        let entry_addr = table + index * size as u64;
        let raw = read_entry(machine, entry_addr, size);
        let last = level == Level::Pt;
        let large = !last
            && raw & pte::PS != 0
            && match mode {
                PagingMode::Bits32 => regs.pse(),
                PagingMode::Pae => level == Level::Pd,
                _ => level == Level::Pd || level == Level::Pdpt,
            };
        let leaf = last || large;
        let reserved = raw & reserved_bits(mode, level, large, xd_reserved);
        d.steps.push(Step {
            level,
            table,
            index,
            entry_addr,
            from_register: false,
            size,
            raw,
            after: raw,
            region_shift: shift as u8,
            leaf,
            reserved,
        });
        if raw & pte::P == 0 {
            d.outcome = Err((fault(false, false), FaultCause::NotPresent(level)));
            return d;
        }
        if reserved != 0 {
            d.outcome = Err((fault(true, true), FaultCause::Reserved(level)));
            return d;
        }
        rights.user &= raw & pte::US != 0;
        rights.writable &= raw & pte::RW != 0;
        rights.executable &= !(nxe && raw & pte::XD != 0);
        d.rights = rights;
        if !leaf {
            if update_ad && raw & pte::A == 0 {
                machine.phys_write(entry_addr, size as usize, raw | pte::A);
                d.steps.last_mut().after = raw | pte::A;
                d.accessed_set += 1;
            }
            table = if size == 4 {
                raw & 0xFFFF_F000
            } else {
                raw & ADDR_MASK
            };
            continue;
        }
        // ANCHOR_END: walk_level
        if let Err(denial) = check(&regs, rflags, access, rights) {
            d.outcome = Err((fault(true, false), FaultCause::Denied(denial)));
            return d;
        }
        let mut new = raw | pte::A;
        if access.write {
            new |= pte::D;
        }
        if update_ad && new != raw {
            machine.phys_write(entry_addr, size as usize, new);
            d.steps.last_mut().after = new;
            d.accessed_set += (raw & pte::A == 0) as u32;
            d.dirty_set += (new & pte::D != raw & pte::D) as u32;
        }
        let entry = if update_ad { new } else { raw };
        let page_size = 1u64 << shift;
        let base = match (mode, large) {
            // 4 MiB page: bits 31:22 from the PDE, bits 39:32 from PDE bits 20:13 (PSE-36).
            (PagingMode::Bits32, true) => (raw & 0xFFC0_0000) | ((raw >> 13) & 0xFF) << 32,
            (PagingMode::Bits32, false) => raw & 0xFFFF_F000,
            _ => raw & ADDR_MASK & !(page_size - 1),
        };
        d.outcome = Ok(WalkResult {
            phys: base | (linear & (page_size - 1)),
            user: rights.user,
            writable: rights.writable,
            executable: rights.executable,
            dirty: entry & pte::D != 0,
            global: regs.pge() && raw & pte::G != 0,
            page_size,
        });
        return d;
    }
    unreachable!("the PT level is always a leaf")
}

/// Reserved bits of an entry (must be 0, else #PF with RSVD = 1).
fn reserved_bits(mode: PagingMode, level: Level, large: bool, xd_reserved: u64) -> u64 {
    match mode {
        PagingMode::Off => 0,
        // 32-bit paging: only a 4 MiB PDE has one (bit 21; bits 20:13 are PSE-36 address bits).
        PagingMode::Bits32 => {
            if large {
                1 << 21
            } else {
                0
            }
        }
        PagingMode::Pae | PagingMode::FourLevel => {
            let mut r = HIGH_RESERVED | xd_reserved;
            if level == Level::Pml4 {
                r |= pte::PS;
            }
            if large {
                // Address bits below the page size, except the large-page PAT bit (12).
                let page = 1u64 << if level == Level::Pdpt { 30 } else { 21 };
                r |= (page - 1) & !0x1FFF;
            }
            r
        }
    }
}

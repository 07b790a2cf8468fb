//! Explaining one page walk step by step: each entry read, its bits, the permission check, the result.
//! Teaches: reading a page walk the way the CPU does it — and the exact fault when it goes wrong.

use std::fmt::{self, Write as _};

use super::fault::{Access, PageFault};
use super::mode::{ControlRegs, PagingMode};
use super::permission::{smap_blocks, Rights};
use super::walk::{pte, walk_detail, FaultCause, Level, Step, WalkResult};
use crate::machine::Machine;

/// One permission rule that applied to the access, and whether it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub rule: String,
    pub ok: bool,
}

/// A walk of one linear address under the current CPU state, without side effects.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub linear: u64,
    pub access: Access,
    pub regs: ControlRegs,
    pub cpl: u8,
    pub rflags: u64,
    pub mode: PagingMode,
    /// The entries read, top level first.
    pub steps: Vec<Step>,
    /// Rights combined over the levels read.
    pub rights: Rights,
    /// The permission rules checked (empty if the walk stopped before a leaf).
    pub checks: Vec<Check>,
    pub outcome: Result<WalkResult, (PageFault, FaultCause)>,
}

/// Explains a walk; PAE PDPTEs are read from memory at CR3.
pub fn explain(machine: &mut Machine, linear: u64, access: Access) -> Explanation {
    explain_with(machine, None, linear, access)
}

pub(crate) fn explain_with(
    machine: &mut Machine,
    pdptes: Option<[u64; 4]>,
    linear: u64,
    access: Access,
) -> Explanation {
    let d = walk_detail(machine, pdptes.as_ref(), linear, access, false);
    let regs = ControlRegs::of(&machine.cpu);
    let rflags = machine.cpu.rflags;
    let reached_leaf = match d.outcome {
        Ok(_) => true,
        Err((_, FaultCause::Denied(_))) => true,
        Err(_) => false,
    };
    let checks = if reached_leaf && d.mode != PagingMode::Off {
        rules(&regs, rflags, access, d.rights)
    } else {
        Vec::new()
    };
    Explanation {
        linear,
        access,
        regs,
        cpl: machine.cpu.cpl(),
        rflags,
        mode: d.mode,
        steps: d.steps.iter().copied().collect(),
        rights: d.rights,
        checks,
        outcome: d.outcome,
    }
}

fn rules(regs: &ControlRegs, rflags: u64, a: Access, r: Rights) -> Vec<Check> {
    let mut v = Vec::new();
    let mut rule = |ok: bool, s: &str| {
        v.push(Check {
            rule: s.to_string(),
            ok,
        })
    };
    if a.user {
        rule(r.user, "user-mode access needs U/S=1 at every level");
        if a.write {
            rule(r.writable, "user-mode write needs R/W=1 at every level");
        }
    } else if a.fetch {
        if regs.smep() {
            rule(
                !r.user,
                "CR4.SMEP=1: supervisor fetches from user pages are refused",
            );
        }
    } else {
        if regs.smap() {
            if smap_blocks(regs, rflags, a) {
                rule(
                    !r.user,
                    "CR4.SMAP=1 with RFLAGS.AC=0 or an implicit access: supervisor data accesses to user pages are refused",
                );
            } else {
                rule(true, "CR4.SMAP=1 but RFLAGS.AC=1 (STAC): explicit supervisor access to user pages allowed");
            }
        }
        if a.write {
            if regs.wp() {
                rule(
                    r.writable,
                    "CR0.WP=1: supervisor writes need R/W=1 at every level",
                );
            } else {
                rule(true, "CR0.WP=0: supervisor writes ignore R/W");
            }
        }
    }
    if a.fetch {
        if regs.nxe() {
            rule(
                r.executable,
                "EFER.NXE=1: instruction fetches need XD=0 at every level",
            );
        } else {
            rule(
                true,
                "no XD bit in this mode (EFER.NXE=0 or 32-bit paging): fetches allowed",
            );
        }
    }
    if !a.fetch && !a.write && !a.user && !regs.smap() {
        rule(true, "supervisor reads are allowed from every present page");
    }
    v
}

/// The bits of an entry as a student reads them: "P RW U A D PS G XD".
pub fn decode_bits(step: &Step, mode: PagingMode) -> String {
    let e = step.raw;
    if e & pte::P == 0 {
        return "not present (P=0): the rest of the entry is ignored".into();
    }
    let mut parts: Vec<String> = vec!["P".into()];
    if step.from_register {
        parts.push("(PAE PDPTE register: no U/S, R/W or XD here)".into());
    } else {
        parts.push(if e & pte::RW != 0 { "RW" } else { "RO" }.into());
        parts.push(if e & pte::US != 0 { "U" } else { "S" }.into());
        if e & pte::PWT != 0 {
            parts.push("PWT".into());
        }
        if e & pte::PCD != 0 {
            parts.push("PCD".into());
        }
        if e & pte::A != 0 {
            parts.push("A".into());
        }
        if step.leaf && e & pte::D != 0 {
            parts.push("D".into());
        }
        if step.leaf && step.level != Level::Pt {
            parts.push("PS".into());
        }
        if step.leaf && e & pte::G != 0 {
            parts.push("G".into());
        }
        if mode != PagingMode::Bits32 && e & pte::XD != 0 {
            parts.push("XD".into());
        }
    }
    if step.reserved != 0 {
        parts.push(format!("RESERVED bits {:#x} set", step.reserved));
    }
    parts.join(" ")
}

fn size_name(bytes: u64) -> &'static str {
    match bytes {
        0x1000 => "4 KiB",
        0x20_0000 => "2 MiB",
        0x40_0000 => "4 MiB",
        _ => "1 GiB",
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.regs;
        let b = |x: bool| x as u8;
        let cpl = if self.access.user && self.cpl != 3 {
            format!("as if from CPL 3 (the CPU is at CPL {})", self.cpl)
        } else {
            format!("at CPL {}", self.cpl)
        };
        writeln!(
            f,
            "linear address {:#018x}: {} {cpl}",
            self.linear,
            self.access.describe(),
        )?;
        writeln!(
            f,
            "mode: {} (CR0.PG={} CR4.PAE={} EFER.LMA={})",
            self.mode,
            b(r.cr0 & crate::cpu::ctl::CR0_PG != 0),
            b(r.cr4 & crate::cpu::ctl::CR4_PAE != 0),
            b(r.efer & crate::cpu::ctl::EFER_LMA != 0)
        )?;
        writeln!(
            f,
            "controls: CR0.WP={} CR4.PSE={} CR4.PGE={} CR4.SMEP={} CR4.SMAP={} CR4.PCIDE={} EFER.NXE={} RFLAGS.AC={}",
            b(r.wp()),
            b(r.pse()),
            b(r.pge()),
            b(r.smep()),
            b(r.smap()),
            b(r.pcide()),
            b(r.efer & crate::cpu::ctl::EFER_NXE != 0),
            b(self.rflags & crate::cpu::flags::AC != 0)
        )?;
        if self.mode == PagingMode::Off {
            return writeln!(
                f,
                "paging is off: physical address = linear address = {:#x}",
                self.linear & 0xFFFF_FFFF
            );
        }
        let table = match self.mode {
            PagingMode::Bits32 => "page directory",
            PagingMode::Pae => "page-directory-pointer table",
            _ => "PML4 table",
        };
        writeln!(
            f,
            "CR3 = {:#x}: {table} at {:#x}{}",
            r.cr3,
            r.root(),
            if r.pcide() {
                format!(", PCID {}", r.pcid())
            } else {
                String::new()
            }
        )?;
        let mut would_set = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            let hi = s.region_shift as u32 + if s.size == 4 { 9 } else { 8 };
            let hi = if self.mode == PagingMode::Pae && s.level == Level::Pdpt {
                31
            } else {
                hi
            };
            let width = if s.size == 4 { 10 } else { 18 };
            writeln!(
                f,
                "{}. {:<5} index {:>3} (linear bits {}:{}) at {:#x}{} = {:#0w$x}",
                i + 1,
                s.level.entry_name(),
                s.index,
                hi,
                s.region_shift,
                s.entry_addr,
                if s.from_register { " (register)" } else { "" },
                s.raw,
                w = width
            )?;
            writeln!(f, "   {}", decode_bits(s, self.mode))?;
            if s.raw & pte::P == 0 || s.reserved != 0 {
                continue;
            }
            if s.leaf {
                let size = 1u64 << s.region_shift;
                let base = match self.outcome {
                    Ok(w) => w.phys & !(size - 1),
                    Err(_) => s.raw & super::mode::ADDR_MASK & !(size - 1),
                };
                writeln!(f, "   → {} page at {:#x}", size_name(size), base)?;
            } else if let Some(next) = self.steps.get(i + 1) {
                writeln!(f, "   → next table at {:#x}", next.table)?;
            }
            if !s.from_register {
                let mut bits = Vec::new();
                if s.raw & pte::A == 0 {
                    bits.push("A");
                }
                if s.leaf && self.access.write && s.raw & pte::D == 0 {
                    bits.push("D");
                }
                if !bits.is_empty() {
                    would_set.push(format!(
                        "{} in the {}",
                        bits.join("+"),
                        s.level.entry_name()
                    ));
                }
            }
        }
        if !self.checks.is_empty() {
            let rt = &self.rights;
            writeln!(
                f,
                "rights over all levels: {}, {}, {}",
                if rt.user { "user" } else { "supervisor" },
                if rt.writable { "writable" } else { "read-only" },
                if rt.executable {
                    "executable"
                } else {
                    "no-execute"
                }
            )?;
            for c in &self.checks {
                writeln!(f, "   [{}] {}", if c.ok { "ok" } else { "FAIL" }, c.rule)?;
            }
        }
        match &self.outcome {
            Ok(w) => {
                writeln!(
                    f,
                    "result: physical address {:#x} ({} page{}{})",
                    w.phys,
                    size_name(w.page_size),
                    if w.global { ", global" } else { "" },
                    if w.dirty { ", dirty" } else { "" }
                )?;
                if !would_set.is_empty() {
                    let mut s = String::new();
                    let _ = write!(s, "{}", would_set.join(", "));
                    writeln!(f, "a real access would also set: {s}")?;
                }
                Ok(())
            }
            Err((pf, cause)) => {
                let why = match cause {
                    FaultCause::NotPresent(l) => format!("{} not present", l.entry_name()),
                    FaultCause::Reserved(l) => {
                        format!("reserved bit set in the {}", l.entry_name())
                    }
                    FaultCause::Denied(d) => d.explain().to_string(),
                };
                writeln!(f, "result: #PF — {why}")?;
                writeln!(
                    f,
                    "   CR2 = {:#x}, error code {}",
                    pf.linear,
                    pf.describe_code()
                )
            }
        }
    }
}

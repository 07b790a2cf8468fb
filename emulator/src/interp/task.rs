//! Hardware task switching (32-bit protected mode): JMP/CALL to a TSS or task gate, interrupts
//! through a task gate, and IRET with NT = 1 back to the previous task.
//! Teaches: the CPU itself can save one task's registers into its TSS and load another's — the
//! mechanism 32-bit kernels still use for a double-fault handler that needs a known-good stack.
//!
//! 32-bit and 16-bit (80286) TSSs; not available in long mode (#GP). The order follows SDM §7.3:
//! checks, save the old task, busy bits and back link, load TR, CR3, EIP/EFLAGS/registers, LDTR,
//! then the segment registers of the new task (faults there are delivered in the new task's
//! context); a new 32-bit TSS with its T flag set then raises a #DB trap (DR6.BT). A 16-bit TSS (SDM §7.6) holds IP, FLAGS, the eight 16-bit registers and ES, CS, SS,
//! DS: no CR3 (the page tables stay), no FS/GS (they keep their values), and the upper halves of
//! EIP/EFLAGS/the registers are lost (we zero them; the SDM leaves the registers' undefined).

use super::segments::{decode_descriptor, load_code_segment, load_data_segment};
use super::{exception, gp, vec, Cpu, R};
use crate::cpu::flags::{FIXED1, NT, VM};
use crate::cpu::{ctl, CpuMode, Seg, Segment};

/// Why a task switch happens: it decides busy bits, NT and the back link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Jmp,
    Call,
    /// An interrupt or exception through a task gate (with the error code to push, if any).
    Interrupt(Option<u32>),
    Iret,
}

/// Where the fields of a 32-bit (`wide`) or 16-bit TSS are.
#[derive(Clone, Copy)]
struct Layout {
    wide: bool,
}

impl Layout {
    fn of(tss_type: u8) -> Self {
        Layout {
            wide: tss_type & 8 != 0,
        }
    }
    /// Bytes per saved register.
    fn width(self) -> u32 {
        if self.wide {
            4
        } else {
            2
        }
    }
    fn ip(self) -> u64 {
        if self.wide {
            off::EIP
        } else {
            0x0E
        }
    }
    fn flags(self) -> u64 {
        if self.wide {
            off::EFLAGS
        } else {
            0x10
        }
    }
    fn gpr(self, i: usize) -> u64 {
        if self.wide {
            off::GPRS + 4 * i as u64
        } else {
            0x12 + 2 * i as u64
        }
    }
    /// The slot of segment register `i` (ES, CS, SS, DS, FS, GS order); FS/GS only in 32-bit.
    fn seg(self, i: usize) -> Option<u64> {
        if self.wide {
            Some(off::SEGS + 4 * i as u64)
        } else {
            (i < 4).then_some(0x22 + 2 * i as u64)
        }
    }
    fn ldt(self) -> u64 {
        if self.wide {
            off::LDT
        } else {
            0x2A
        }
    }
    /// The smallest valid limit (#TS below it).
    fn min_limit(self) -> u32 {
        if self.wide {
            0x67
        } else {
            0x2B
        }
    }
}

/// Offsets in a 32-bit TSS.
mod off {
    pub const LINK: u64 = 0x00;
    pub const CR3: u64 = 0x1C;
    pub const EIP: u64 = 0x20;
    pub const EFLAGS: u64 = 0x24;
    /// EAX; the other seven general registers follow in encoding order, 4 bytes apart.
    pub const GPRS: u64 = 0x28;
    /// ES; CS, SS, DS, FS, GS follow, 4 bytes apart.
    pub const SEGS: u64 = 0x48;
    pub const LDT: u64 = 0x60;
    /// Bit 0: T, the debug trap flag (32-bit TSS only).
    pub const T_FLAG: u64 = 0x64;
}

/// DR6.BT: the #DB came from a switch to a task whose TSS has T set.
const DR6_BT: u64 = 1 << 15;

const BUSY: u64 = 1 << 41;

/// Is this raw descriptor a TSS (available or busy) or a task gate?
pub(crate) fn is_task_target(raw: u64) -> bool {
    raw & (1 << 44) == 0 && matches!((raw >> 40) & 0xF, 0x1 | 0x3 | 0x5 | 0x9 | 0xB)
}

/// The raw descriptor if `selector` names a TSS or task gate, in legacy protected mode.
pub(crate) fn task_descriptor(cpu: &mut Cpu, selector: u16) -> R<Option<u64>> {
    if matches!(cpu.s().mode(), CpuMode::Real | CpuMode::Virtual8086)
        || cpu.s().long_mode_active()
        || selector & !3 == 0
    {
        return Ok(None);
    }
    let raw = cpu.read_descriptor(selector)?;
    Ok(is_task_target(raw).then_some(raw))
}

/// JMP/CALL to `selector` (a TSS or a task gate in the GDT/LDT, with the JMP/CALL privilege
/// rules), or an interrupt through the IDT task gate `raw`.
pub(crate) fn switch_to(cpu: &mut Cpu, selector: u16, raw: u64, reason: Reason) -> R<()> {
    let err = selector as u32 & !3;
    let (tss_sel, tss_raw) = if (raw >> 40) & 0xF == 0x5 {
        // A task gate: its DPL is checked for JMP/CALL, then it names the TSS in the GDT.
        if matches!(reason, Reason::Jmp | Reason::Call) {
            let dpl = ((raw >> 45) & 3) as u8;
            if dpl < cpu.s().cpl() || dpl < (selector & 3) as u8 {
                return Err(gp(err));
            }
        }
        if raw & (1 << 47) == 0 {
            return Err(exception(vec::NP, Some(err)));
        }
        let tss_sel = (raw >> 16) as u16;
        if tss_sel & 4 != 0 {
            return Err(gp(tss_sel as u32 & !3));
        }
        (tss_sel, cpu.read_descriptor(tss_sel)?)
    } else {
        if matches!(reason, Reason::Jmp | Reason::Call) {
            let dpl = ((raw >> 45) & 3) as u8;
            if dpl < cpu.s().cpl() || dpl < (selector & 3) as u8 {
                return Err(gp(err));
            }
        }
        (selector, raw)
    };
    switch(cpu, tss_sel, tss_raw, reason)
}

/// IRET with NT = 1: return to the task named by the current TSS's back link.
pub(crate) fn iret_to_previous(cpu: &mut Cpu) -> R<()> {
    let link = cpu.read_system(cpu.s().tr.base + off::LINK, 2)? as u16;
    if link & 4 != 0 || link & !3 == 0 {
        return Err(exception(vec::TS, Some(link as u32 & !3)));
    }
    let raw = cpu
        .read_descriptor(link)
        .map_err(|_| exception(vec::TS, Some(link as u32 & !3)))?;
    switch(cpu, link, raw, Reason::Iret)
}

fn switch(cpu: &mut Cpu, tss_sel: u16, raw: u64, reason: Reason) -> R<()> {
    let err = tss_sel as u32 & !3;
    let d = decode_descriptor(tss_sel, raw);
    if d.s || !matches!(d.type_, 0x1 | 0x3 | 0x9 | 0xB) {
        return Err(gp(err));
    }
    let busy = raw & BUSY != 0;
    if reason == Reason::Iret && !busy || reason != Reason::Iret && busy {
        return Err(if reason == Reason::Iret {
            exception(vec::TS, Some(err))
        } else {
            gp(err)
        });
    }
    if !d.present {
        return Err(exception(vec::NP, Some(err)));
    }
    let new_layout = Layout::of(d.type_);
    if d.limit < new_layout.min_limit() {
        return Err(exception(vec::TS, Some(err)));
    }
    // Save the outgoing task into its TSS (EIP is the next instruction, or the faulting one
    // for an exception, as the caller left it).
    let old_tr = cpu.s().tr;
    let mut eflags = cpu.s().rflags & 0xFFFF_FFFF;
    if reason == Reason::Iret {
        eflags &= !NT;
    }
    let base = old_tr.base;
    let old = Layout::of(old_tr.type_);
    let w = old.width();
    cpu.write_system(base + old.ip(), w, cpu.s().rip)?;
    cpu.write_system(base + old.flags(), w, eflags)?;
    for i in 0..8 {
        let v = cpu.s().gpr[i];
        cpu.write_system(base + old.gpr(i), w, v)?;
    }
    for (i, seg) in Seg::ALL.iter().enumerate() {
        let sel = cpu.s().seg[*seg as usize].selector;
        if let Some(at) = old.seg(i) {
            cpu.write_system(base + at, 2, sel as u64)?;
        }
    }
    // Busy bits: the old task stays busy only if we will come back to it (CALL, interrupt).
    if matches!(reason, Reason::Jmp | Reason::Iret) {
        set_busy(cpu, old_tr.selector, false)?;
    }
    if reason != Reason::Iret {
        set_busy(cpu, tss_sel, true)?;
    }
    let nested = matches!(reason, Reason::Call | Reason::Interrupt(_));
    if nested {
        cpu.write_system(d.base + off::LINK, 2, old_tr.selector as u64)?;
    }
    cpu.st().tr = Segment {
        type_: d.type_ | 2,
        ..d
    };
    cpu.st().cr0 |= ctl::CR0_TS;
    // Load the incoming task.
    let new = d.base;
    let nl = new_layout;
    if cpu.s().cr0 & ctl::CR0_PG != 0 && nl.wide {
        let cr3 = cpu.read_system(new + off::CR3, 4)?;
        cpu.mmu
            .write_cr3(cpu.m, cr3)
            .map_err(|_| exception(vec::TS, Some(err)))?;
    }
    let eip = cpu.read_system(new + nl.ip(), nl.width())?;
    let mut flags = cpu.read_system(new + nl.flags(), nl.width())?;
    if nested {
        flags |= NT;
    }
    for i in 0..8 {
        cpu.st().gpr[i] = cpu.read_system(new + nl.gpr(i), nl.width())?;
    }
    let mut sels = [0u16; 6];
    for (i, s) in sels.iter_mut().enumerate() {
        *s = match nl.seg(i) {
            Some(at) => cpu.read_system(new + at, 2)? as u16,
            None => cpu.s().seg[Seg::ALL[i] as usize].selector,
        };
    }
    let ldt = cpu.read_system(new + nl.ldt(), 2)? as u16;
    cpu.st().rflags = (flags & 0x3F_7FD5) | FIXED1;
    cpu.st().rip = eip;
    // From here on, faults belong to the new task (its TSS already holds the old state).
    load_ldt(cpu, ldt)?;
    let ts = |e: super::Fault| match e {
        super::Fault::Exception { error_code, .. } if flags & VM == 0 => {
            exception(vec::TS, error_code)
        }
        other => other,
    };
    let cs = sels[Seg::Cs as usize];
    if flags & VM != 0 {
        for seg in Seg::ALL {
            let sel = sels[seg as usize];
            cpu.st().seg[seg as usize] = Segment {
                dpl: 3,
                ..Segment::real_mode(sel, seg == Seg::Cs)
            };
        }
    } else {
        load_code_segment(cpu, cs, eip, (cs & 3) as u8).map_err(ts)?;
        load_data_segment(cpu, Seg::Ss, sels[Seg::Ss as usize]).map_err(ts)?;
        // A 16-bit TSS has no FS/GS: they keep their selectors and descriptor caches.
        let data: &[Seg] = if nl.wide {
            &[Seg::Ds, Seg::Es, Seg::Fs, Seg::Gs]
        } else {
            &[Seg::Ds, Seg::Es]
        };
        for &seg in data {
            load_data_segment(cpu, seg, sels[seg as usize]).map_err(ts)?;
        }
    }
    if let Reason::Interrupt(Some(code)) = reason {
        // The error code is pushed with the new TSS's width.
        cpu.push(nl.width(), code as u64)?;
    }
    if nl.wide && cpu.read_system(new + off::T_FLAG, 2)? & 1 != 0 {
        // The debug trap flag: a #DB (DR6.BT) once the switch is complete, before the new
        // task's first instruction — delivered here, in the new task's context.
        super::debug::set_dr6(cpu, cpu.s().dr[6] | DR6_BT);
        return super::exceptions::deliver_exception(cpu, vec::DB, None, None);
    }
    Ok(())
}

/// Sets or clears the busy bit of the TSS descriptor `selector` in the GDT.
fn set_busy(cpu: &mut Cpu, selector: u16, busy: bool) -> R<()> {
    let addr = cpu.descriptor_address(selector)?;
    let b5 = cpu.read_system(addr + 5, 1)?;
    let new = if busy { b5 | 2 } else { b5 & !2 };
    cpu.write_system(addr + 5, 1, new)
}

/// LDTR of the new task: null, or an LDT descriptor in the GDT (else #TS).
fn load_ldt(cpu: &mut Cpu, selector: u16) -> R<()> {
    let ts = exception(vec::TS, Some(selector as u32 & !3));
    if selector & !3 == 0 {
        cpu.st().ldtr = super::segments::null_segment(selector);
        return Ok(());
    }
    if selector & 4 != 0 {
        return Err(ts);
    }
    let raw = cpu.read_descriptor(selector).map_err(|_| ts.clone())?;
    let d = decode_descriptor(selector, raw);
    if d.s || d.type_ != 2 || !d.present {
        return Err(ts);
    }
    cpu.st().ldtr = d;
    Ok(())
}

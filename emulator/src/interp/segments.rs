//! Segment registers: selectors, descriptors, and the checks made when one is loaded.
//! Teaches: the GDT/LDT, descriptor fields, and which privilege rule raises #GP, #SS or #NP.

use iced_x86::Register;

use super::access::seg_of;
use super::{exception, gp, vec, Cpu, R};
use crate::cpu::{CpuMode, Seg, Segment};

/// Decodes an 8-byte segment descriptor into the hidden part of a segment register.
pub(crate) fn decode_descriptor(selector: u16, raw: u64) -> Segment {
    let limit_raw = (raw & 0xFFFF) | ((raw >> 32) & 0xF_0000);
    let g = raw & (1 << 55) != 0;
    Segment {
        selector,
        base: ((raw >> 16) & 0xFF_FFFF) | ((raw >> 32) & 0xFF00_0000),
        limit: if g {
            ((limit_raw << 12) | 0xFFF) as u32
        } else {
            limit_raw as u32
        },
        type_: ((raw >> 40) & 0xF) as u8,
        s: raw & (1 << 44) != 0,
        dpl: ((raw >> 45) & 3) as u8,
        present: raw & (1 << 47) != 0,
        avl: raw & (1 << 52) != 0,
        l: raw & (1 << 53) != 0,
        db: raw & (1 << 54) != 0,
        g,
        unusable: false,
    }
}

/// A segment register loaded with a null selector in protected mode.
pub(crate) fn null_segment(selector: u16) -> Segment {
    Segment {
        selector,
        unusable: true,
        ..Default::default()
    }
}

impl Cpu<'_> {
    /// Linear address of the descriptor for `selector` in the GDT or LDT, after the limit check.
    /// Errors are #GP(selector) (the caller may turn that into #TS or another vector).
    pub fn descriptor_address(&self, selector: u16) -> R<u64> {
        let index = (selector & !7) as u64;
        let (base, limit) = if selector & 4 != 0 {
            let ldtr = &self.s().ldtr;
            if ldtr.unusable || ldtr.selector & !3 == 0 {
                return Err(gp(selector as u32 & !3));
            }
            (ldtr.base, ldtr.limit as u64)
        } else {
            (self.s().gdtr.base, self.s().gdtr.limit as u64)
        };
        if index + 7 > limit {
            return Err(gp(selector as u32 & !3));
        }
        Ok(base.wrapping_add(index))
    }

    /// Reads the raw 8-byte descriptor for `selector`.
    pub fn read_descriptor(&mut self, selector: u16) -> R<u64> {
        let addr = self.descriptor_address(selector)?;
        self.read_system(addr, 8)
    }

    /// Sets the accessed bit of a descriptor (the CPU writes it back on every load).
    pub fn set_accessed(&mut self, selector: u16, raw: u64) -> R<()> {
        if raw & (1 << 40) == 0 {
            let addr = self.descriptor_address(selector)?;
            self.write_system(addr + 5, 1, (raw >> 40) | 1)?;
        }
        Ok(())
    }

    /// The 16-byte system descriptor (TSS, LDT) of long mode: high base bits in the second half.
    pub fn read_system_descriptor(&mut self, selector: u16) -> R<Segment> {
        let raw = self.read_descriptor(selector)?;
        let mut seg = decode_descriptor(selector, raw);
        if self.s().long_mode_active() {
            let addr = self.descriptor_address(selector)?;
            let high = self.read_system(addr + 8, 8)?;
            seg.base |= (high & 0xFFFF_FFFF) << 32;
        }
        Ok(seg)
    }
}

/// MOV/POP/LDS… to a data or stack segment register, with the protected-mode checks.
pub(crate) fn mov_to_segment(cpu: &mut Cpu, r: Register, selector: u16) -> R<()> {
    let seg = seg_of(r);
    if seg == Seg::Cs {
        return Err(super::ud());
    }
    load_data_segment(cpu, seg, selector)?;
    if seg == Seg::Ss {
        // MOV SS / POP SS block interrupts for one instruction, so SS:SP can be set together.
        cpu.st().events.interrupt_shadow = true;
    }
    Ok(())
}

/// Loads DS/ES/FS/GS/SS from `selector` according to the current mode.
pub(crate) fn load_data_segment(cpu: &mut Cpu, seg: Seg, selector: u16) -> R<()> {
    let mode = cpu.s().mode();
    if matches!(mode, CpuMode::Real | CpuMode::Virtual8086) {
        let old = cpu.s().seg[seg as usize];
        cpu.st().seg[seg as usize] = Segment {
            selector,
            base: (selector as u64) << 4,
            ..old
        };
        if mode == CpuMode::Virtual8086 {
            cpu.st().seg[seg as usize] = Segment {
                dpl: 3,
                ..Segment::real_mode(selector, false)
            };
        }
        return Ok(());
    }
    let cpl = cpu.s().cpl();
    let rpl = (selector & 3) as u8;
    if selector & !3 == 0 {
        if seg == Seg::Ss && !(mode == CpuMode::Long64 && cpl != 3 && rpl == cpl) {
            return Err(gp(0));
        }
        let mut null = null_segment(selector);
        if seg == Seg::Ss {
            null.dpl = cpl;
            null.db = true;
        }
        // In 64-bit mode FS/GS keep their base when a null selector is loaded? No: the base is
        // cleared on Intel CPUs; we follow Intel.
        cpu.st().seg[seg as usize] = null;
        return Ok(());
    }
    let raw = cpu.read_descriptor(selector)?;
    let d = decode_descriptor(selector, raw);
    let code = d.type_ & 8 != 0;
    let writable = !code && d.type_ & 2 != 0;
    let readable = !code || d.type_ & 2 != 0;
    let conforming = code && d.type_ & 4 != 0;
    let err = selector as u32 & !3;
    if seg == Seg::Ss {
        if !d.s || !writable || rpl != cpl || d.dpl != cpl {
            return Err(gp(err));
        }
        if !d.present {
            return Err(exception(vec::SS, Some(err)));
        }
    } else {
        if !d.s || !readable {
            return Err(gp(err));
        }
        if !conforming && (d.dpl < cpl || d.dpl < rpl) {
            return Err(gp(err));
        }
        if !d.present {
            return Err(exception(vec::NP, Some(err)));
        }
    }
    cpu.set_accessed(selector, raw)?;
    let mut loaded = d;
    loaded.type_ |= 1;
    cpu.st().seg[seg as usize] = loaded;
    Ok(())
}

/// Checks a code-segment descriptor for a far JMP/CALL/RET/IRET and loads CS.
/// `new_cpl` is the privilege level after the transfer.
pub(crate) fn load_code_segment(cpu: &mut Cpu, selector: u16, offset: u64, new_cpl: u8) -> R<()> {
    let mode = cpu.s().mode();
    if matches!(mode, CpuMode::Real | CpuMode::Virtual8086) {
        let mut cs = Segment::real_mode(selector, true);
        cs.limit = cpu.s().cs().limit.max(0xFFFF);
        if mode == CpuMode::Virtual8086 {
            cs.dpl = 3;
        }
        cpu.st().seg[Seg::Cs as usize] = cs;
        cpu.st().rip = offset & 0xFFFF_FFFF;
        return Ok(());
    }
    let err = selector as u32 & !3;
    if selector & !3 == 0 {
        return Err(gp(0));
    }
    let raw = cpu.read_descriptor(selector)?;
    let d = decode_descriptor(selector, raw);
    if !d.s || d.type_ & 8 == 0 {
        return Err(gp(err));
    }
    if !d.present {
        return Err(exception(vec::NP, Some(err)));
    }
    if cpu.s().long_mode_active() && d.l && d.db {
        return Err(gp(err));
    }
    let long64 = cpu.s().long_mode_active() && d.l;
    if !long64 && offset > d.limit as u64 {
        return Err(gp(0));
    }
    if long64 && !super::access::is_canonical(offset) {
        return Err(gp(0));
    }
    cpu.set_accessed(selector, raw)?;
    let mut cs = d;
    cs.type_ |= 1;
    cs.selector = (selector & !3) | new_cpl as u16;
    // Our CpuState keeps the CPL in CS.DPL (as KVM keeps it in SS.DPL/CS.RPL), also for
    // conforming segments whose descriptor DPL may be lower.
    cs.dpl = new_cpl;
    cpu.st().seg[Seg::Cs as usize] = cs;
    cpu.st().rip = offset;
    Ok(())
}

/// Far JMP/CALL target checks for a direct code segment (call gates go through `gates.rs`;
/// TSS and task-gate targets still raise #GP: no hardware task switching yet).
pub(crate) fn check_far_target(cpu: &mut Cpu, selector: u16) -> R<()> {
    if matches!(cpu.s().mode(), CpuMode::Real | CpuMode::Virtual8086) {
        return Ok(());
    }
    if selector & !3 == 0 {
        return Err(gp(0));
    }
    let raw = cpu.read_descriptor(selector)?;
    let d = decode_descriptor(selector, raw);
    let err = selector as u32 & !3;
    let cpl = cpu.s().cpl();
    let rpl = (selector & 3) as u8;
    if !d.s || d.type_ & 8 == 0 {
        // TSS and task gates (hardware task switches) are not supported yet.
        return Err(gp(err));
    }
    let conforming = d.type_ & 4 != 0;
    if conforming && d.dpl > cpl || !conforming && (rpl > cpl || d.dpl != cpl) {
        return Err(gp(err));
    }
    Ok(())
}

/// After a return to an outer privilege level, data segments the new CPL may not use are nulled.
pub(crate) fn null_inaccessible_data_segments(cpu: &mut Cpu) {
    let cpl = cpu.s().cpl();
    for seg in [Seg::Es, Seg::Ds, Seg::Fs, Seg::Gs] {
        let s = cpu.s().seg[seg as usize];
        let conforming_code = s.type_ & 0xC == 0xC;
        if !s.unusable && !conforming_code && s.dpl < cpl {
            cpu.st().seg[seg as usize] = null_segment(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_flat_4gib_code_descriptor() {
        let d = decode_descriptor(0x08, 0x00CF_9A00_0000_FFFF);
        assert_eq!((d.base, d.limit, d.type_, d.dpl), (0, 0xFFFF_FFFF, 0xA, 0));
        assert!(d.s && d.present && d.db && d.g && !d.l);
        let l = decode_descriptor(0x08, 0x00AF_9A00_0000_FFFF);
        assert!(l.l && !l.db);
    }
}

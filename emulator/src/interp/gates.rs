//! Far CALL and JMP through a call gate: the protected-mode door into a more privileged segment.
//! Teaches: how ring 3 calls ring 0 without an interrupt — the gate names the entry point, the TSS
//! supplies the inner stack, and the CPU copies the caller's parameters across.
//!
//! 16-bit (type 4) and 32-bit (type 0xC) gates of legacy protected mode; in long mode type 0xC
//! is the 16-byte 64-bit call gate (64-bit target only, no parameter copy, the new stack from
//! TSS.RSPn with a null SS). Task gates are in `task.rs`.

use super::segments::{decode_descriptor, load_code_segment};
use super::{exception, gp, vec, Cpu, R};
use crate::cpu::{reg, CpuMode, Seg, Segment};

/// The raw descriptor if `selector` names a call gate: 16/32-bit in protected mode, 64-bit
/// (type 0xC; a type-4 gate is then an invalid descriptor) in long mode.
pub(crate) fn call_gate(cpu: &mut Cpu, selector: u16) -> R<Option<u64>> {
    if matches!(cpu.s().mode(), CpuMode::Real | CpuMode::Virtual8086) || selector & !3 == 0 {
        return Ok(None);
    }
    let raw = cpu.read_descriptor(selector)?;
    let system = raw & (1 << 44) == 0;
    let kind = (raw >> 40) & 0xF;
    if cpu.s().long_mode_active() {
        return Ok((system && kind == 0xC).then_some(raw));
    }
    Ok((system && (kind == 0x4 || kind == 0xC)).then_some(raw))
}

/// Transfers control through the gate `raw` (selector `gate_sel`); `call` = CALL, else JMP.
pub(crate) fn through_call_gate(cpu: &mut Cpu, gate_sel: u16, raw: u64, call: bool) -> R<()> {
    if cpu.s().long_mode_active() {
        return through_call_gate_64(cpu, gate_sel, raw, call);
    }
    let cpl = cpu.s().cpl();
    let gate_err = gate_sel as u32 & !3;
    let gate_dpl = ((raw >> 45) & 3) as u8;
    if gate_dpl < cpl || gate_dpl < (gate_sel & 3) as u8 {
        return Err(gp(gate_err));
    }
    if raw & (1 << 47) == 0 {
        return Err(exception(vec::NP, Some(gate_err)));
    }
    let wide = (raw >> 40) & 0xF == 0xC;
    let size: u32 = if wide { 4 } else { 2 };
    let cs_sel = (raw >> 16) as u16;
    let offset = if wide {
        (raw & 0xFFFF) | ((raw >> 32) & 0xFFFF_0000)
    } else {
        raw & 0xFFFF
    };
    let params = ((raw >> 32) & 0x1F) as u32;
    if cs_sel & !3 == 0 {
        return Err(gp(0));
    }
    let target = decode_descriptor(cs_sel, cpu.read_descriptor(cs_sel)?);
    let cs_err = cs_sel as u32 & !3;
    if !target.s || target.type_ & 8 == 0 || target.dpl > cpl {
        return Err(gp(cs_err));
    }
    if !target.present {
        return Err(exception(vec::NP, Some(cs_err)));
    }
    let conforming = target.type_ & 4 != 0;
    if !call {
        // JMP never changes privilege: the code segment must be usable at the current CPL.
        if !conforming && target.dpl != cpl {
            return Err(gp(cs_err));
        }
        return load_code_segment(cpu, cs_sel, offset, cpl);
    }
    let (old_cs, old_ip) = (cpu.s().cs().selector, cpu.s().rip);
    let saved_cs = cpu.s().seg[Seg::Cs as usize];
    let saved_ss = cpu.s().seg[Seg::Ss as usize];
    let saved_sp = cpu.s().gpr[reg::RSP];
    let result = if !conforming && target.dpl < cpl {
        call_inner(cpu, target.dpl, size, params, (old_cs, old_ip))
            .and_then(|()| load_code_segment(cpu, cs_sel, offset, target.dpl))
    } else {
        cpu.push(size, old_cs as u64)
            .and_then(|()| cpu.push(size, old_ip))
            .and_then(|()| load_code_segment(cpu, cs_sel, offset, cpl))
    };
    if result.is_err() {
        let st = cpu.st();
        st.seg[Seg::Cs as usize] = saved_cs;
        st.seg[Seg::Ss as usize] = saved_ss;
        st.gpr[reg::RSP] = saved_sp;
    }
    result
}

/// The inner-privilege part of a gate CALL: new SS:ESP from the TSS, then the old SS:ESP, the
/// copied parameters and the return address pushed on the new stack.
fn call_inner(cpu: &mut Cpu, new_cpl: u8, size: u32, params: u32, ret: (u16, u64)) -> R<()> {
    let tr = cpu.s().tr;
    let ts = |sel: u16| exception(vec::TS, Some(sel as u32 & !3));
    let (sp_off, width) = if tr.type_ & 8 != 0 {
        (4 + new_cpl as u64 * 8, 4)
    } else {
        (2 + new_cpl as u64 * 4, 2)
    };
    if sp_off + 2 * width as u64 - 1 > tr.limit as u64 {
        return Err(ts(tr.selector));
    }
    let new_sp = cpu.read_system(tr.base + sp_off, width)?;
    let new_ss = cpu.read_system(tr.base + sp_off + width as u64, 2)? as u16;
    if new_ss & !3 == 0 || (new_ss & 3) as u8 != new_cpl {
        return Err(ts(new_ss));
    }
    let raw = cpu.read_descriptor(new_ss).map_err(|_| ts(new_ss))?;
    let d = decode_descriptor(new_ss, raw);
    if !d.s || d.type_ & 0xA != 0x2 || d.dpl != new_cpl {
        return Err(ts(new_ss));
    }
    if !d.present {
        return Err(exception(vec::SS, Some(new_ss as u32 & !3)));
    }
    // Read the caller's parameters before leaving its stack.
    let (old_ss, old_sp) = (cpu.s().ss().selector, cpu.s().gpr[reg::RSP]);
    let mut copied = Vec::with_capacity(params as usize);
    for i in 0..params as u64 {
        copied.push(cpu.peek(i * size as u64, size)?);
    }
    cpu.set_accessed(new_ss, raw)?;
    cpu.st().seg[Seg::Ss as usize] = Segment {
        type_: d.type_ | 1,
        ..d
    };
    cpu.st().gpr[reg::RSP] = new_sp;
    cpu.push(size, old_ss as u64)?;
    cpu.push(size, old_sp)?;
    for v in copied.iter().rev() {
        cpu.push(size, *v)?;
    }
    cpu.push(size, ret.0 as u64)?;
    cpu.push(size, ret.1)
}

/// A far CALL/JMP through a 64-bit call gate (SDM Vol. 2A CALL, "CALL-GATE" with IA32_EFER.LMA
/// = 1; Vol. 3 5.8.3.1, 5.8.6): checks in the SDM's order, then the same- or more-privileged
/// transfer with 8-byte pushes.
fn through_call_gate_64(cpu: &mut Cpu, gate_sel: u16, raw: u64, call: bool) -> R<()> {
    let cpl = cpu.s().cpl();
    let gate_err = gate_sel as u32 & !3;
    let gate_dpl = ((raw >> 45) & 3) as u8;
    if gate_dpl < cpl || gate_dpl < (gate_sel & 3) as u8 {
        return Err(gp(gate_err));
    }
    if raw & (1 << 47) == 0 {
        return Err(exception(vec::NP, Some(gate_err)));
    }
    // The upper half: offset 63:32, and a type field (bits 12:8) that must be 0, so the
    // second slot cannot be mistaken for a descriptor of its own.
    let high_addr = cpu
        .descriptor_address(gate_sel.wrapping_add(8))
        .map_err(|_| gp(gate_err))?;
    let high = cpu.read_system(high_addr, 8)?;
    if (high >> 40) & 0x1F != 0 {
        return Err(gp(gate_err));
    }
    let cs_sel = (raw >> 16) as u16;
    let offset = (raw & 0xFFFF) | ((raw >> 32) & 0xFFFF_0000) | (high & 0xFFFF_FFFF) << 32;
    if cs_sel & !3 == 0 {
        return Err(gp(0));
    }
    let cs_err = cs_sel as u32 & !3;
    let target = decode_descriptor(cs_sel, cpu.read_descriptor(cs_sel)?);
    if !target.s || target.type_ & 8 == 0 || target.dpl > cpl {
        return Err(gp(cs_err));
    }
    // A 64-bit gate leads to 64-bit code only (L = 1, D = 0).
    if !target.l || target.db {
        return Err(gp(cs_err));
    }
    let conforming = target.type_ & 4 != 0;
    if !call && !conforming && target.dpl != cpl {
        return Err(gp(cs_err));
    }
    if !target.present {
        return Err(exception(vec::NP, Some(cs_err)));
    }
    if !super::access::is_canonical(offset) {
        return Err(gp(0));
    }
    if !call {
        return load_code_segment(cpu, cs_sel, offset, cpl);
    }
    let (old_cs, old_rip) = (cpu.s().cs().selector, cpu.s().rip);
    let (old_ss, old_rsp) = (cpu.s().ss().selector, cpu.s().gpr[reg::RSP]);
    let saved = (
        cpu.s().seg[Seg::Cs as usize],
        cpu.s().seg[Seg::Ss as usize],
        old_rsp,
    );
    let inner = !conforming && target.dpl < cpl;
    let result = (|| {
        let new_cpl = if inner { target.dpl } else { cpl };
        let rsp = if inner {
            // RSPn from the 64-bit TSS; SS becomes a null selector with RPL = the new CPL.
            let tr = cpu.s().tr;
            let at = 4 + 8 * target.dpl as u64;
            if at + 8 > tr.limit as u64 {
                return Err(exception(vec::TS, Some(tr.selector as u32 & !3)));
            }
            cpu.read_system(tr.base + at, 8)?
        } else {
            old_rsp
        };
        let pushed = if inner { 32 } else { 16 };
        let low = rsp.wrapping_sub(pushed);
        if !super::access::is_canonical(low) || !super::access::is_canonical(rsp.wrapping_sub(1)) {
            return Err(exception(vec::SS, Some(0)));
        }
        load_code_segment(cpu, cs_sel, offset, new_cpl)?;
        if inner {
            let ss = &mut cpu.st().seg[Seg::Ss as usize];
            *ss = Segment {
                selector: new_cpl as u16,
                dpl: new_cpl,
                unusable: true,
                ..*ss
            };
        }
        cpu.st().gpr[reg::RSP] = rsp;
        if inner {
            cpu.push(8, old_ss as u64)?;
            cpu.push(8, old_rsp)?;
        }
        cpu.push(8, old_cs as u64)?;
        cpu.push(8, old_rip)
    })();
    if result.is_err() {
        let st = cpu.st();
        st.seg[Seg::Cs as usize] = saved.0;
        st.seg[Seg::Ss as usize] = saved.1;
        st.gpr[reg::RSP] = saved.2;
        st.rip = old_rip;
    }
    result
}

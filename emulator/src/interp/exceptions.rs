//! Interrupt and exception delivery through the IVT (real mode) and the IDT (protected, long mode).
//! Teaches: gates, the privilege-changing stack switch through the TSS, IST, double and triple faults.

use super::segments::decode_descriptor;
use super::{exception, gp, vec, Cpu, Fault, R};
use crate::cpu::flags::*;
use crate::cpu::{reg, CpuMode, Seg, Segment};
use crate::machine::Exit;

/// The mnemonic of an exception vector ("#GP"), or "irq/int" for the rest.
pub fn vector_name(v: u8) -> &'static str {
    const NAMES: [&str; 32] = [
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS",
        "#GP", "#PF", "v15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "v22", "v23", "v24", "v25",
        "v26", "v27", "#HV", "#VC", "#SX", "v31",
    ];
    NAMES.get(v as usize).copied().unwrap_or("int")
}

/// How an event arose; it decides the saved RIP, the DPL check and the EXT bit of error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// INT n, INT3, INTO: gate DPL is checked against CPL.
    Software,
    /// An exception raised by an instruction or by the delivery of another event.
    Exception,
    /// A hardware interrupt from the interrupt controller.
    External,
}

fn is_contributory(v: u8) -> bool {
    matches!(v, 0 | 10 | 11 | 12 | 13)
}

/// Fault-class exceptions (the saved RIP is the faulting instruction's); #DB is excluded: its
/// instruction breakpoints are faults that must not set RF, its other causes are traps.
fn is_fault(v: u8) -> bool {
    matches!(v, 0 | 5 | 6 | 7 | 10..=14 | 16 | 17 | 19 | 20 | 21)
}

fn has_error_code(v: u8) -> bool {
    matches!(v, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

// ANCHOR: deliver_exception
/// Delivers an exception raised by an instruction (RIP already points at the right place),
/// escalating to #DF and to a triple fault as the SDM's table prescribes.
pub(crate) fn deliver_exception(
    cpu: &mut Cpu,
    vector: u8,
    error_code: Option<u32>,
    cr2: Option<u64>,
) -> R<()> {
    if vector == vec::DB {
        // Entering the debug handler clears general detect, so it may use the debug registers.
        let st = cpu.st();
        st.dr[7] &= !super::debug::DR7_GD;
        st.dr[5] = st.dr[7];
    }
    if is_fault(vector) {
        // The frame of a fault carries RF = 1, so the IRET that retries the instruction does not
        // hit its instruction breakpoint again (SDM Vol. 3, 17.3.1.1); delivery clears it live.
        cpu.st().rflags |= RF;
    }
    let mut current = (vector, error_code, cr2);
    for _ in 0..3 {
        let (v, code, addr) = current;
        if let Some(a) = addr {
            cpu.st().cr2 = a;
        }
        let code = if has_error_code(v) {
            Some(code.unwrap_or(0))
        } else {
            None
        };
        cpu.m.stats.count_exception(vector_name(v));
        match deliver(cpu, v, code, Source::Exception) {
            Ok(()) => return Ok(()),
            Err(Fault::Exception {
                vector: second,
                error_code,
                cr2,
            }) => {
                if v == vec::DF {
                    return Err(triple_fault(cpu, v, second));
                }
                let double = (is_contributory(v) || v == vec::PF)
                    && (is_contributory(second) || v == vec::PF && second == vec::PF);
                current = if double {
                    (vec::DF, Some(0), None)
                } else {
                    (second, error_code, cr2)
                };
            }
            Err(stop) => return Err(stop),
        }
    }
    Err(triple_fault(cpu, current.0, current.0))
}
// ANCHOR_END: deliver_exception

fn triple_fault(cpu: &mut Cpu, first: u8, second: u8) -> Fault {
    Fault::Stop(Exit::TripleFault {
        detail: format!(
            "{} while delivering {} at {:04x}:{:#x} ({})",
            vector_name(second),
            vector_name(first),
            cpu.s().cs().selector,
            cpu.s().rip,
            cpu.s().mode()
        ),
    })
}

/// Delivers a hardware interrupt (from the PIC) at an instruction boundary.
pub(crate) fn deliver_external(cpu: &mut Cpu, vector: u8) -> R<()> {
    match deliver(cpu, vector, None, Source::External) {
        Ok(()) => Ok(()),
        Err(Fault::Exception {
            vector: v,
            error_code,
            cr2,
        }) => deliver_exception(cpu, v, error_code, cr2),
        Err(e) => Err(e),
    }
}

/// INT n / INT3 / INTO / INT1 executed by the guest; RIP already points after the instruction.
pub(crate) fn software_interrupt(cpu: &mut Cpu, vector: u8, check_dpl: bool) -> R<()> {
    if vector >= 32 {
        cpu.m.stats.count_exception("int n (software)");
    } else {
        cpu.m.stats.count_exception(vector_name(vector));
    }
    let source = if check_dpl {
        Source::Software
    } else {
        Source::Exception
    };
    deliver(cpu, vector, None, source)
}

/// One delivery attempt. Errors are the exceptions raised while delivering.
fn deliver(cpu: &mut Cpu, vector: u8, error_code: Option<u32>, source: Source) -> R<()> {
    cpu.st().events.halted = false;
    let ext = (source != Source::Software) as u32;
    match cpu.s().mode() {
        CpuMode::Real => deliver_real(cpu, vector),
        CpuMode::Virtual8086 => Err(gp(ext)),
        _ if cpu.s().long_mode_active() => deliver_long(cpu, vector, error_code, source, ext),
        _ => deliver_protected(cpu, vector, error_code, source, ext),
    }
}

fn deliver_real(cpu: &mut Cpu, vector: u8) -> R<()> {
    let entry = vector as u64 * 4;
    if entry + 3 > cpu.s().idtr.limit as u64 {
        return Err(gp(0));
    }
    let ivt = cpu.s().idtr.base.wrapping_add(entry);
    let target = cpu.read_system(ivt, 4)?;
    let flags = cpu.s().rflags;
    let (cs, ip) = (cpu.s().cs().selector, cpu.s().rip);
    cpu.push(2, flags)?;
    cpu.push(2, cs as u64)?;
    cpu.push(2, ip)?;
    cpu.st().rflags &= !(IF | TF | AC | RF);
    let sel = (target >> 16) as u16;
    let mut seg = Segment::real_mode(sel, true);
    seg.limit = cpu.s().cs().limit;
    cpu.st().seg[Seg::Cs as usize] = seg;
    cpu.st().rip = target & 0xFFFF;
    Ok(())
}

/// Reads the gate for `vector`; checks limit, type, DPL (for INT n) and presence.
fn read_gate(cpu: &mut Cpu, vector: u8, size: u64, source: Source, ext: u32) -> R<(u64, u64)> {
    let idt_err = vector as u32 * 8 + 2 + ext;
    let offset = vector as u64 * size;
    if offset + size - 1 > cpu.s().idtr.limit as u64 {
        return Err(gp(idt_err));
    }
    let addr = cpu.s().idtr.base.wrapping_add(offset);
    let lo = cpu.read_system(addr, 8)?;
    let hi = if size == 16 {
        cpu.read_system(addr + 8, 8)?
    } else {
        0
    };
    let gate_type = (lo >> 40) & 0xF;
    let valid = if size == 16 {
        matches!(gate_type, 0xE | 0xF)
    } else {
        matches!(gate_type, 0x5 | 0x6 | 0x7 | 0xE | 0xF)
    };
    if !valid {
        return Err(gp(idt_err));
    }
    let dpl = ((lo >> 45) & 3) as u8;
    if source == Source::Software && dpl < cpu.s().cpl() {
        return Err(gp(idt_err));
    }
    if lo & (1 << 47) == 0 {
        return Err(exception(vec::NP, Some(idt_err)));
    }
    Ok((lo, hi))
}

/// Checks the gate's target code segment; returns its decoded descriptor.
fn gate_target(cpu: &mut Cpu, selector: u16, ext: u32) -> R<Segment> {
    let err = (selector as u32 & !3) + ext;
    if selector & !3 == 0 {
        return Err(gp(ext));
    }
    let raw = cpu.read_descriptor(selector).map_err(|_| gp(err))?;
    let d = decode_descriptor(selector, raw);
    if !d.s || d.type_ & 8 == 0 || d.dpl > cpu.s().cpl() {
        return Err(gp(err));
    }
    if !d.present {
        return Err(exception(vec::NP, Some(err)));
    }
    Ok(d)
}

fn deliver_protected(
    cpu: &mut Cpu,
    vector: u8,
    error_code: Option<u32>,
    source: Source,
    ext: u32,
) -> R<()> {
    let (lo, _) = read_gate(cpu, vector, 8, source, ext)?;
    let gate_type = (lo >> 40) & 0xF;
    if gate_type == 0x5 {
        // A task gate: the handler is a whole task (e.g. a double-fault task with its own stack).
        let reason = super::task::Reason::Interrupt(error_code);
        return super::task::switch_to(cpu, (vector as u16) << 3, lo, reason);
    }
    let size: u32 = if gate_type & 8 != 0 { 4 } else { 2 };
    let selector = (lo >> 16) as u16;
    let offset = (lo & 0xFFFF) | ((lo >> 32) & 0xFFFF_0000);
    let target = gate_target(cpu, selector, ext)?;
    let cpl = cpu.s().cpl();
    let new_cpl = if target.type_ & 4 != 0 {
        cpl
    } else {
        target.dpl
    };
    let old = (
        cpu.s().rflags,
        cpu.s().cs().selector,
        cpu.s().rip,
        cpu.s().ss().selector,
        cpu.s().gpr[reg::RSP],
    );
    let saved_ss = cpu.s().seg[Seg::Ss as usize];
    if new_cpl < cpl {
        // Inner-level stack from the TSS: SSn:ESPn for the new privilege level.
        let tr = cpu.s().tr;
        let (sp_off, width) = if tr.type_ & 8 != 0 {
            (4 + new_cpl as u64 * 8, 4)
        } else {
            (2 + new_cpl as u64 * 4, 2)
        };
        if sp_off + 2 * width as u64 - 1 > tr.limit as u64 {
            return Err(exception(vec::TS, Some((tr.selector as u32 & !3) + ext)));
        }
        let new_sp = cpu.read_system(tr.base + sp_off, width)?;
        let new_ss = cpu.read_system(tr.base + sp_off + width as u64, 2)? as u16;
        // The new SS must be a writable data segment at the new CPL (else #TS).
        let raw = cpu
            .read_descriptor(new_ss)
            .map_err(|_| exception(vec::TS, Some((new_ss as u32 & !3) + ext)))?;
        let d = decode_descriptor(new_ss, raw);
        if new_ss & !3 == 0 || !d.s || d.type_ & 0xA != 0x2 || d.dpl != new_cpl {
            return Err(exception(vec::TS, Some((new_ss as u32 & !3) + ext)));
        }
        let mut ss = d;
        ss.selector = (new_ss & !3) | new_cpl as u16;
        cpu.st().seg[Seg::Ss as usize] = ss;
        cpu.st().gpr[reg::RSP] = new_sp;
        let result = (|| {
            cpu.push(size, old.3 as u64)?;
            cpu.push(size, old.4)?;
            push_frame(cpu, size, old.0, old.1, old.2, error_code)
        })();
        if let Err(e) = result {
            cpu.st().seg[Seg::Ss as usize] = saved_ss;
            cpu.st().gpr[reg::RSP] = old.4;
            return Err(e);
        }
    } else if let Err(e) = push_frame(cpu, size, old.0, old.1, old.2, error_code) {
        cpu.st().gpr[reg::RSP] = old.4;
        return Err(e);
    }
    finish(cpu, target, selector, offset, new_cpl, gate_type & 1 == 0);
    Ok(())
}

fn deliver_long(
    cpu: &mut Cpu,
    vector: u8,
    error_code: Option<u32>,
    source: Source,
    ext: u32,
) -> R<()> {
    let (lo, hi) = read_gate(cpu, vector, 16, source, ext)?;
    let selector = (lo >> 16) as u16;
    let offset = (lo & 0xFFFF) | ((lo >> 32) & 0xFFFF_0000) | (hi << 32);
    let ist = (lo >> 32) & 7;
    let target = gate_target(cpu, selector, ext)?;
    if !target.l || target.db {
        return Err(gp((selector as u32 & !3) + ext));
    }
    let cpl = cpu.s().cpl();
    let new_cpl = if target.type_ & 4 != 0 {
        cpl
    } else {
        target.dpl
    };
    let old_rflags = cpu.s().rflags;
    let (old_cs, old_rip) = (cpu.s().cs().selector, cpu.s().rip);
    let (old_ss, old_rsp) = (cpu.s().ss().selector, cpu.s().gpr[reg::RSP]);
    let saved_ss = cpu.s().seg[Seg::Ss as usize];
    let tr = cpu.s().tr;
    let new_rsp = if ist != 0 || new_cpl < cpl {
        let off = if ist != 0 {
            36 + (ist - 1) * 8
        } else {
            4 + new_cpl as u64 * 8
        };
        if off + 7 > tr.limit as u64 {
            return Err(exception(vec::TS, Some((tr.selector as u32 & !3) + ext)));
        }
        cpu.read_system(tr.base + off, 8)?
    } else {
        old_rsp
    };
    if new_cpl < cpl {
        cpu.st().seg[Seg::Ss as usize] = Segment {
            selector: new_cpl as u16,
            dpl: new_cpl,
            db: true,
            unusable: true,
            ..Default::default()
        };
    }
    // The frame is always 64-bit and the stack is aligned to 16 bytes first.
    let frame_base = new_rsp & !0xF;
    let mut items = vec![old_ss as u64, old_rsp, old_rflags, old_cs as u64, old_rip];
    if let Some(code) = error_code {
        items.push(code as u64);
    }
    let mut sp = frame_base;
    for (i, v) in items.iter().enumerate() {
        sp = sp.wrapping_sub(8);
        if !super::access::is_canonical(sp) {
            cpu.st().seg[Seg::Ss as usize] = saved_ss;
            return Err(exception(vec::SS, Some(ext)));
        }
        if let Err(e) = cpu.write_system(sp, 8, *v) {
            cpu.st().seg[Seg::Ss as usize] = saved_ss;
            let _ = i;
            return Err(e);
        }
    }
    cpu.st().gpr[reg::RSP] = sp;
    let gate_type = (lo >> 40) & 0xF;
    finish(cpu, target, selector, offset, new_cpl, gate_type & 1 == 0);
    Ok(())
}

/// Pushes FLAGS, CS, IP and the optional error code at the gate's width.
fn push_frame(cpu: &mut Cpu, size: u32, flags: u64, cs: u16, ip: u64, err: Option<u32>) -> R<()> {
    cpu.push(size, flags)?;
    cpu.push(size, cs as u64)?;
    cpu.push(size, ip)?;
    if let Some(code) = err {
        cpu.push(size, code as u64)?;
    }
    Ok(())
}

/// Loads CS:RIP from the gate and clears the flags an interrupt clears.
fn finish(cpu: &mut Cpu, target: Segment, selector: u16, offset: u64, cpl: u8, clear_if: bool) {
    let mut cs = target;
    cs.type_ |= 1;
    cs.selector = (selector & !3) | cpl as u16;
    cs.dpl = cpl;
    cpu.st().seg[Seg::Cs as usize] = cs;
    cpu.st().rip = if cs.l { offset } else { offset & 0xFFFF_FFFF };
    let mut f = cpu.s().rflags & !(TF | NT | RF | VM);
    if clear_if {
        f &= !IF;
    }
    cpu.st().rflags = f;
}

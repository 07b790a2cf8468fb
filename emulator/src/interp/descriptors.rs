//! Asking about a segment without loading it: LAR, LSL, VERR, VERW, and ARPL.
//! Teaches: how an OS checks a selector a less-privileged caller handed it — the answer is ZF.
//!
//! None of these fault on a bad selector (null, outside the table, wrong type, too privileged):
//! they clear ZF instead. Only the table read itself can fault (e.g. #PF on the GDT page).

use iced_x86::{Instruction, Mnemonic};

use super::segments::decode_descriptor;
use super::{ud, Cpu, R};
use crate::cpu::flags::ZF;
use crate::cpu::CpuMode;

pub(crate) fn handles(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(m, M::Lar | M::Lsl | M::Verr | M::Verw | M::Arpl)
}

pub(crate) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    if matches!(cpu.s().mode(), CpuMode::Real | CpuMode::Virtual8086) {
        return Err(ud());
    }
    match ins.mnemonic() {
        M::Arpl => {
            // ARPL dest, src: raise dest's RPL to src's (the caller's) if it claims more privilege.
            let dest = cpu.read_op(ins, 0)?;
            let src = cpu.read_op(ins, 1)?;
            if dest & 3 < src & 3 {
                cpu.write_op(ins, 0, (dest & !3) | (src & 3))?;
                cpu.set_flags(ZF, ZF);
            } else {
                cpu.set_flags(ZF, 0);
            }
            Ok(())
        }
        M::Lar | M::Lsl => {
            let selector = cpu.read_op(ins, 1)? as u16;
            let lar = ins.mnemonic() == M::Lar;
            match visible_descriptor(cpu, selector, if lar { Query::Lar } else { Query::Lsl })? {
                Some(raw) => {
                    let value = if lar {
                        // Access rights: descriptor bytes 5–6 in place (type, S, DPL, P, AVL, L, D/B, G).
                        (raw >> 32) & 0x00F0_FF00
                    } else {
                        decode_descriptor(selector, raw).limit as u64
                    };
                    cpu.write_op(ins, 0, value)?;
                    cpu.set_flags(ZF, ZF);
                }
                None => cpu.set_flags(ZF, 0),
            }
            Ok(())
        }
        _ => {
            let selector = cpu.read_op(ins, 0)? as u16;
            let query = if ins.mnemonic() == M::Verr {
                Query::Verr
            } else {
                Query::Verw
            };
            let ok = visible_descriptor(cpu, selector, query)?.is_some();
            cpu.set_flags(ZF, if ok { ZF } else { 0 });
            Ok(())
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Query {
    Lar,
    Lsl,
    Verr,
    Verw,
}

/// The raw descriptor if `selector` names one this query may see from the current CPL, else `None`.
fn visible_descriptor(cpu: &mut Cpu, selector: u16, query: Query) -> R<Option<u64>> {
    if selector & !3 == 0 {
        return Ok(None);
    }
    // Outside the GDT/LDT limit is an answer (ZF = 0), not a fault.
    let Ok(addr) = cpu.descriptor_address(selector) else {
        return Ok(None);
    };
    let raw = cpu.read_system(addr, 8)?;
    let d = decode_descriptor(selector, raw);
    let long = cpu.s().long_mode_active();
    let privileged_enough = {
        let cpl = cpu.s().cpl();
        let rpl = (selector & 3) as u8;
        d.dpl >= cpl && d.dpl >= rpl
    };
    let code = d.s && d.type_ & 8 != 0;
    let conforming = code && d.type_ & 4 != 0;
    let ok = if !d.s {
        // System descriptors: which types each instruction accepts (fewer in long mode).
        let type_ok = match (query, long) {
            (Query::Lar, false) => matches!(d.type_, 1 | 2 | 3 | 4 | 5 | 9 | 0xB | 0xC),
            (Query::Lar, true) => matches!(d.type_, 2 | 9 | 0xB | 0xC),
            (Query::Lsl, false) => matches!(d.type_, 1 | 2 | 3 | 9 | 0xB),
            (Query::Lsl, true) => matches!(d.type_, 2 | 9 | 0xB),
            _ => false,
        };
        type_ok && privileged_enough
    } else {
        let readable = !code || d.type_ & 2 != 0;
        let writable = !code && d.type_ & 2 != 0;
        let type_ok = match query {
            Query::Lar | Query::Lsl => true,
            Query::Verr => readable,
            Query::Verw => writable,
        };
        // Conforming code segments are visible from every privilege level (except to VERW,
        // which already refused them as not writable).
        type_ok && (conforming || privileged_enough)
    };
    Ok(ok.then_some(raw))
}

//! Instructions from the 8086/80186 era: decimal (BCD) adjustments, BOUND, SALC, WAIT.
//! Teaches: packed and unpacked BCD arithmetic the way the SDM's pseudo-code defines it, and why
//! AF (the carry out of bit 3) exists at all.

use iced_x86::{Instruction, Mnemonic, OpKind};

use super::access::{mask, sext};
use super::flags::szp;
use super::{exception, ud, vec, Cpu, R};
use crate::cpu::flags::*;
use crate::cpu::{ctl, reg, CpuMode};

pub(crate) fn handles(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Daa | M::Das | M::Aaa | M::Aas | M::Aam | M::Aad | M::Salc | M::Bound | M::Wait
    )
}

pub(crate) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    // Decimal adjustments and SALC do not exist in 64-bit mode (iced-x86 decodes them only
    // outside it, but a state handed over by another engine could still ask).
    if cpu.s().mode() == CpuMode::Long64 && ins.mnemonic() != M::Wait {
        return Err(ud());
    }
    match ins.mnemonic() {
        M::Daa | M::Das => decimal_adjust(cpu, ins.mnemonic() == M::Daa),
        M::Aaa | M::Aas => ascii_adjust(cpu, ins.mnemonic() == M::Aaa),
        M::Aam => {
            let base = ins.immediate8() as u64;
            if base == 0 {
                return Err(exception(vec::DE, None));
            }
            let al = cpu.gpr(reg::RAX, 1);
            let r = al % base;
            cpu.set_gpr(reg::RAX, 2, ((al / base) << 8) | r);
            cpu.set_status(szp(r, 1));
            Ok(())
        }
        M::Aad => {
            let base = ins.immediate8() as u64;
            let ax = cpu.gpr(reg::RAX, 2);
            let r = ((ax & 0xFF) + (ax >> 8) * base) & 0xFF;
            cpu.set_gpr(reg::RAX, 2, r);
            cpu.set_status(szp(r, 1));
            Ok(())
        }
        M::Salc => {
            // Undocumented for decades, present on every Intel CPU: AL = CF ? FF : 00.
            let v = if cpu.flag(CF) { 0xFF } else { 0 };
            cpu.set_gpr(reg::RAX, 1, v);
            Ok(())
        }
        M::Bound => bound(cpu, ins),
        _ => {
            // WAIT/FWAIT: the task-switch check (CR0.MP and TS), then an x87 exception left
            // pending by an earlier instruction (#MF).
            let cr0 = cpu.s().cr0;
            if cr0 & ctl::CR0_MP != 0 && cr0 & ctl::CR0_TS != 0 {
                return Err(exception(vec::NM, None));
            }
            super::x87::check_pending(cpu)
        }
    }
}

/// DAA/DAS: adjust AL after adding/subtracting two packed BCD bytes (two digits per byte).
fn decimal_adjust(cpu: &mut Cpu, add: bool) -> R<()> {
    let old_al = cpu.gpr(reg::RAX, 1);
    let old_cf = cpu.flag(CF);
    let mut al = old_al;
    let mut f = 0;
    if old_al & 0xF > 9 || cpu.flag(AF) {
        let carry = if add { al + 6 > 0xFF } else { al < 6 };
        al = if add { al + 6 } else { al.wrapping_sub(6) } & 0xFF;
        f |= AF;
        if old_cf || carry {
            f |= CF;
        }
    }
    if old_al > 0x99 || old_cf {
        al = if add {
            al + 0x60
        } else {
            al.wrapping_sub(0x60)
        } & 0xFF;
        f |= CF;
    } else if add {
        f &= !CF;
    }
    cpu.set_gpr(reg::RAX, 1, al);
    cpu.set_status(f | szp(al, 1));
    Ok(())
}

/// AAA/AAS: adjust AX after adding/subtracting two unpacked BCD digits (one per byte).
fn ascii_adjust(cpu: &mut Cpu, add: bool) -> R<()> {
    let ax = cpu.gpr(reg::RAX, 2);
    let (ax, f) = if ax & 0xF > 9 || cpu.flag(AF) {
        let adjusted = if add {
            ax.wrapping_add(0x106)
        } else {
            ax.wrapping_sub(6).wrapping_sub(0x100)
        };
        (adjusted, AF | CF)
    } else {
        (ax, 0)
    };
    let ax = ax & 0xFF0F;
    cpu.set_gpr(reg::RAX, 2, ax);
    cpu.set_status(f | szp(ax, 1));
    Ok(())
}

/// BOUND r, m: #BR unless lower <= r <= upper (signed; the bounds pair is in memory).
fn bound(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    if ins.op1_kind() != OpKind::Memory {
        return Err(ud());
    }
    let size = cpu.op_size(ins, 0);
    let seg = super::access::seg_of(ins.memory_segment());
    let ea = cpu.effective_address(ins);
    let lower = cpu.read_mem(seg, ea, size)?;
    let upper_at = ea.wrapping_add(size as u64) & mask(cpu.address_size(ins));
    let upper = cpu.read_mem(seg, upper_at, size)?;
    let index = sext(cpu.read_op(ins, 0)?, size) as i64;
    if index < sext(lower, size) as i64 || index > sext(upper, size) as i64 {
        return Err(exception(vec::BR, None));
    }
    Ok(())
}

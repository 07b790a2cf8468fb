//! Multiply, divide and the wide compare-exchanges.
//! Teaches: double-width results in (E/R)DX:(E/R)AX, the #DE rules, and CMPXCHG8B/16B.

use iced_x86::{Instruction, Mnemonic, OpKind};

use super::access::{mask, sext};
use super::alu::divide_error;
use super::{gp, ud, Cpu, R};
use crate::cpu::flags::*;
use crate::cpu::reg;

/// Two- and three-operand IMUL: the signed product truncated to `size` bytes, and the status
/// flags (CF = OF = "the product did not fit"; SF, ZF, PF from the result; AF cleared).
#[inline(always)]
pub(crate) fn imul_truncated(a: u64, b: u64, size: u32) -> (u64, u64) {
    let full = (sext(a, size) as i64 as i128) * (sext(b, size) as i64 as i128);
    let r = full as u64 & mask(size);
    let mut f = super::flags::szp(r, size);
    if sext(r, size) as i64 as i128 != full {
        f |= CF | OF;
    }
    (r, f)
}

pub(crate) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let m = ins.mnemonic();
    // Two- and three-operand IMUL: dest = src1 * src2, truncated.
    if m == M::Imul && ins.op_count() > 1 {
        let size = cpu.op_size(ins, 0);
        let (a, b) = if ins.op_count() == 3 {
            (cpu.read_op(ins, 1)?, ins.immediate(2))
        } else {
            (cpu.read_op(ins, 0)?, cpu.read_op(ins, 1)?)
        };
        let (r, f) = imul_truncated(a, b, size);
        cpu.write_op(ins, 0, r)?;
        cpu.set_status(f);
        return Ok(());
    }
    let size = cpu.op_size(ins, 0);
    let src = cpu.read_op(ins, 0)? & mask(size);
    let bits = size * 8;
    // The implicit double-width accumulator: AX for bytes, DX:AX, EDX:EAX, RDX:RAX.
    let (lo_reg, hi_reg) = (reg::RAX, reg::RDX);
    match m {
        M::Mul | M::Imul => {
            let a = cpu.gpr(lo_reg, size);
            let (lo, hi, overflow) = if m == M::Mul {
                let p = (a as u128) * (src as u128);
                let lo = p as u64 & mask(size);
                let hi = (p >> bits) as u64 & mask(size);
                (lo, hi, hi != 0)
            } else {
                let p = (sext(a, size) as i64 as i128) * (sext(src, size) as i64 as i128);
                let lo = p as u64 & mask(size);
                let hi = (p >> bits) as u64 & mask(size);
                (lo, hi, sext(lo, size) as i64 as i128 != p)
            };
            if size == 1 {
                cpu.set_gpr(reg::RAX, 2, lo | (hi << 8));
            } else {
                cpu.set_gpr(lo_reg, size, lo);
                cpu.set_gpr(hi_reg, size, hi);
            }
            let mut f = super::flags::szp(lo, size);
            if overflow {
                f |= CF | OF;
            }
            cpu.set_status(f);
            Ok(())
        }
        _ => {
            if src == 0 {
                return Err(divide_error());
            }
            let dividend: u128 = if size == 1 {
                cpu.gpr(reg::RAX, 2) as u128
            } else {
                ((cpu.gpr(hi_reg, size) as u128) << bits) | cpu.gpr(lo_reg, size) as u128
            };
            let (q, r) = if m == M::Div {
                let q = dividend / src as u128;
                if q > mask(size) as u128 {
                    return Err(divide_error());
                }
                (q as u64, (dividend % src as u128) as u64)
            } else {
                // Sign-extend the 2*bits dividend to i128.
                let shift = 128 - 2 * bits;
                let n = ((dividend << shift) as i128) >> shift;
                let d = sext(src, size) as i64 as i128;
                let q = n / d;
                let r = n % d;
                let half = 1i128 << (bits - 1);
                if q >= half || q < -half {
                    return Err(divide_error());
                }
                (q as u64 & mask(size), r as u64 & mask(size))
            };
            if size == 1 {
                cpu.set_gpr(reg::RAX, 2, q | (r << 8));
            } else {
                cpu.set_gpr(lo_reg, size, q);
                cpu.set_gpr(hi_reg, size, r);
            }
            Ok(())
        }
    }
}

/// CMPXCHG8B m64 / CMPXCHG16B m128: compare EDX:EAX (RDX:RAX) with memory; ZF tells the result.
pub(crate) fn cmpxchg_wide(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    if ins.op0_kind() != OpKind::Memory {
        return Err(ud());
    }
    let half = if ins.mnemonic() == Mnemonic::Cmpxchg16b {
        8
    } else {
        4
    };
    let seg = super::access::seg_of(ins.memory_segment());
    let ea = cpu.effective_address(ins);
    if half == 8 && ea & 15 != 0 {
        return Err(gp(0));
    }
    // The destination is read as a write (a #PF reports W = 1), and CMPXCHG8B as one 8-byte
    // access (its alignment check is for 8 bytes); it is always written back.
    let (lo, hi) = if half == 4 {
        let v = cpu.read_mem_for_write(seg, ea, 8)?;
        (v & 0xFFFF_FFFF, v >> 32)
    } else {
        let lo = cpu.read_mem_for_write(seg, ea, 8)?;
        (lo, cpu.read_mem_for_write(seg, ea.wrapping_add(8), 8)?)
    };
    let (a, d) = (cpu.gpr(reg::RAX, half), cpu.gpr(reg::RDX, half));
    let store = |cpu: &mut Cpu, l: u64, h: u64| {
        if half == 4 {
            cpu.write_mem(seg, ea, 8, l | h << 32)
        } else {
            cpu.write_mem(seg, ea, 8, l)?;
            cpu.write_mem(seg, ea.wrapping_add(8), 8, h)
        }
    };
    if lo == a && hi == d {
        let (b, c) = (cpu.gpr(reg::RBX, half), cpu.gpr(reg::RCX, half));
        store(cpu, b, c)?;
        cpu.set_flags(ZF, ZF);
    } else {
        store(cpu, lo, hi)?;
        cpu.set_gpr(reg::RAX, half, lo);
        cpu.set_gpr(reg::RDX, half, hi);
        cpu.set_flags(ZF, 0);
    }
    Ok(())
}

//! Shifts, rotates and bit instructions.
//! Teaches: count masking, which flags a shift defines, and bit addressing in registers and memory.

use iced_x86::{Instruction, Mnemonic, OpKind};

use super::access::{mask, seg_of};
use super::flags::{logic, szp};
use super::{Cpu, R};
use crate::cpu::flags::*;

/// The result and status flags of shift or rotate `m` of `a` (already masked to `size`) by a
/// non-zero, already masked `count`: the one definition both engines use.
#[inline]
pub(crate) fn shift_value(m: Mnemonic, a: u64, count: u32, size: u32, flags_in: u64) -> (u64, u64) {
    use Mnemonic as M;
    let bits = size * 8;
    let msb = |v: u64| (v >> (bits - 1)) & 1;
    let (r, mut f) = match m {
        M::Shl | M::Sal => {
            let r = if count >= 64 {
                0
            } else {
                (a << count) & mask(size)
            };
            let cf = count <= bits && (a >> (bits - count)) & 1 != 0;
            let mut f = szp(r, size) | if cf { CF } else { 0 };
            if msb(r) ^ (cf as u64) != 0 {
                f |= OF;
            }
            (r, f)
        }
        M::Shr => {
            let r = if count >= 64 { 0 } else { a >> count };
            let cf = (a >> (count - 1)) & 1 != 0;
            let mut f = szp(r, size) | if cf { CF } else { 0 };
            if msb(a) != 0 {
                f |= OF;
            }
            (r, f)
        }
        M::Sar => {
            let s = super::access::sext(a, size) as i64;
            let r = (s >> count.min(63)) as u64 & mask(size);
            let cf = (s >> (count - 1).min(63)) & 1 != 0;
            (r, szp(r, size) | if cf { CF } else { 0 })
        }
        M::Rol | M::Ror => {
            let c = count % bits;
            let r = if c == 0 {
                a
            } else if m == M::Rol {
                ((a << c) | (a >> (bits - c))) & mask(size)
            } else {
                ((a >> c) | (a << (bits - c))) & mask(size)
            };
            let mut f = flags_in & (SF | ZF | AF | PF);
            if m == M::Rol {
                let cf = r & 1;
                f |= cf * CF;
                if msb(r) ^ cf != 0 {
                    f |= OF;
                }
            } else {
                f |= msb(r) * CF;
                if msb(r) ^ ((r >> (bits - 2)) & 1) != 0 {
                    f |= OF;
                }
            }
            (r, f)
        }
        _ => {
            // RCL/RCR rotate through CF: a (bits+1)-bit rotation.
            let c = count % (bits + 1);
            let mut v = a;
            let mut cf = flags_in & CF != 0;
            for _ in 0..c {
                if m == M::Rcl {
                    let out = msb(v) != 0;
                    v = ((v << 1) | cf as u64) & mask(size);
                    cf = out;
                } else {
                    let out = v & 1 != 0;
                    v = (v >> 1) | ((cf as u64) << (bits - 1));
                    cf = out;
                }
            }
            let mut f = flags_in & (SF | ZF | AF | PF);
            if cf {
                f |= CF;
            }
            let of = if m == M::Rcl {
                msb(v) ^ cf as u64
            } else {
                msb(v) ^ ((v >> (bits - 2)) & 1)
            };
            if of != 0 {
                f |= OF;
            }
            (v, f)
        }
    };
    if matches!(m, M::Shl | M::Sal | M::Shr | M::Sar) {
        f &= !AF;
    }
    (r, f)
}

/// SHL/SAL/SHR/SAR/ROL/ROR/RCL/RCR.
pub(crate) fn shift(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    let size = cpu.op_size(ins, 0);
    let count_mask = if size == 8 { 0x3F } else { 0x1F };
    let count = if ins.op_count() > 1 {
        (cpu.read_op(ins, 1)? & count_mask) as u32
    } else {
        1
    };
    // The operand is read even for a zero count, so its faults happen; then nothing changes —
    // except that a 32-bit register is still written, which clears its upper half (as CPUs do).
    let a = cpu.read_op(ins, 0)? & mask(size);
    if count == 0 {
        return zero_count_writeback(cpu, ins, size, a);
    }
    let (r, f) = shift_value(ins.mnemonic(), a, count, size, cpu.s().rflags);
    cpu.write_op(ins, 0, r)?;
    cpu.set_status(f);
    Ok(())
}

/// A shift by 0 still writes a 32-bit register destination, zero-extending it into 64 bits
/// (found by `vmscope conformance native` against the real CPU).
fn zero_count_writeback(cpu: &mut Cpu, ins: &Instruction, size: u32, a: u64) -> R<()> {
    if size == 4 && ins.op0_kind() == OpKind::Register {
        cpu.write_op(ins, 0, a)?;
    }
    Ok(())
}

/// SHLD/SHRD: shift a destination while filling from a second register.
pub(crate) fn double_shift(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    let size = cpu.op_size(ins, 0);
    let bits = size * 8;
    let count_mask = if size == 8 { 0x3F } else { 0x1F };
    let count = (cpu.read_op(ins, 2)? & count_mask) as u32;
    let a = cpu.read_op(ins, 0)? & mask(size);
    if count == 0 {
        return zero_count_writeback(cpu, ins, size, a);
    }
    let b = cpu.read_op(ins, 1)? & mask(size);
    let wide: u128 = if ins.mnemonic() == Mnemonic::Shld {
        ((a as u128) << bits) | b as u128
    } else {
        ((b as u128) << bits) | a as u128
    };
    let (r, cf) = if ins.mnemonic() == Mnemonic::Shld {
        let shifted = wide << count;
        (
            (shifted >> bits) as u64 & mask(size),
            // The last bit shifted out of the destination (read before the shift: for 64-bit
            // operands `shifted` has already lost it, and `>> 128` would overflow).
            (wide >> (2 * bits - count)) & 1 != 0,
        )
    } else {
        let shifted = wide >> count;
        (shifted as u64 & mask(size), (wide >> (count - 1)) & 1 != 0)
    };
    let mut f = szp(r, size);
    if cf {
        f |= CF;
    }
    if ((r ^ a) >> (bits - 1)) & 1 != 0 {
        f |= OF;
    }
    cpu.write_op(ins, 0, r)?;
    cpu.set_status(f);
    Ok(())
}

/// BT/BTS/BTR/BTC, BSF/BSR, BSWAP.
pub(crate) fn bits(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let size = cpu.op_size(ins, 0);
    match ins.mnemonic() {
        M::Bswap => {
            let v = cpu.read_op(ins, 0)?;
            let r = match size {
                4 => (v as u32).swap_bytes() as u64,
                8 => v.swap_bytes(),
                _ => 0, // BSWAP r16 is undefined; current CPUs zero the register
            };
            cpu.write_op(ins, 0, r)
        }
        M::Popcnt | M::Lzcnt => {
            let v = cpu.read_op(ins, 1)? & mask(size);
            let r = if ins.mnemonic() == M::Popcnt {
                v.count_ones() as u64
            } else {
                (v.leading_zeros() - (64 - size * 8)) as u64
            };
            cpu.write_op(ins, 0, r)?;
            // POPCNT: ZF = (source == 0), the rest cleared. LZCNT: CF = (source == 0),
            // ZF = (result == 0); OF, SF, PF, AF undefined (we clear them).
            let f = if ins.mnemonic() == M::Popcnt {
                if v == 0 {
                    ZF
                } else {
                    0
                }
            } else {
                (if v == 0 { CF } else { 0 }) | if r == 0 { ZF } else { 0 }
            };
            cpu.set_status(f);
            Ok(())
        }
        // TZCNT needs BMI1, which CPUID does not offer: like CPUs without it, execute BSF.
        M::Bsf | M::Bsr | M::Tzcnt => {
            let v = cpu.read_op(ins, 1)? & mask(size);
            if v == 0 {
                // Destination unchanged (as AMD documents and Intel CPUs do); ZF = 1.
                cpu.set_flags(ZF, ZF);
                return Ok(());
            }
            let r = if ins.mnemonic() != M::Bsr {
                v.trailing_zeros() as u64
            } else {
                63 - v.leading_zeros() as u64
            };
            cpu.write_op(ins, 0, r)?;
            cpu.set_status(logic(r, size) & !ZF);
            Ok(())
        }
        _ => {
            let bits = size as u64 * 8;
            let offset = cpu.read_op(ins, 1)?;
            let (value, bit, mem) = if ins.op0_kind() == OpKind::Memory {
                // With a register bit offset, memory is addressed as a bit string: the offset
                // is signed and may reach outside the operand.
                let signed = if ins.op1_kind() == OpKind::Register {
                    super::access::sext(offset, size) as i64
                } else {
                    (offset & (bits - 1)) as i64
                };
                let byte_off = (signed.div_euclid(bits as i64) * (bits as i64 / 8)) as u64;
                let ea =
                    cpu.effective_address(ins).wrapping_add(byte_off) & mask(cpu.address_size(ins));
                let seg = seg_of(ins.memory_segment());
                // BTS/BTR/BTC read their destination as a write (a #PF reports W = 1).
                let v = if ins.mnemonic() == M::Bt {
                    cpu.read_mem(seg, ea, size)?
                } else {
                    cpu.read_mem_for_write(seg, ea, size)?
                };
                (v, signed.rem_euclid(bits as i64) as u64, Some((seg, ea)))
            } else {
                (cpu.read_op(ins, 0)?, offset & (bits - 1), None)
            };
            let was_set = (value >> bit) & 1;
            let new = match ins.mnemonic() {
                M::Bts => value | (1 << bit),
                M::Btr => value & !(1 << bit),
                M::Btc => value ^ (1 << bit),
                _ => value,
            };
            if ins.mnemonic() != M::Bt {
                match mem {
                    Some((seg, ea)) => cpu.write_mem(seg, ea, size, new)?,
                    None => cpu.write_op(ins, 0, new)?,
                }
            }
            cpu.set_flags(CF, was_set * CF);
            Ok(())
        }
    }
}

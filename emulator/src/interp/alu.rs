//! Data movement and arithmetic: MOV and friends, ALU operations, shifts, multiply and divide, bits.
//! Teaches: each integer instruction's effect on registers, memory and flags, in plain Rust.

use iced_x86::{Instruction, Mnemonic, OpKind, Register};

use super::access::{mask, sext};
use super::flags::{self as fx, condition};
use super::{exception, ud, vec, Cpu, R};
use crate::cpu::flags::*;
use crate::cpu::{reg, CpuMode};

pub(crate) fn handles(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Mov
            | M::Movzx
            | M::Movsx
            | M::Movsxd
            | M::Lea
            | M::Xchg
            | M::Push
            | M::Pop
            | M::Pusha
            | M::Pushad
            | M::Popa
            | M::Popad
            | M::Add
            | M::Adc
            | M::Sub
            | M::Sbb
            | M::Cmp
            | M::And
            | M::Or
            | M::Xor
            | M::Test
            | M::Inc
            | M::Dec
            | M::Neg
            | M::Not
            | M::Mul
            | M::Imul
            | M::Div
            | M::Idiv
            | M::Shl
            | M::Sal
            | M::Shr
            | M::Sar
            | M::Rol
            | M::Ror
            | M::Rcl
            | M::Rcr
            | M::Shld
            | M::Shrd
            | M::Bt
            | M::Bts
            | M::Btr
            | M::Btc
            | M::Bsf
            | M::Bsr
            | M::Popcnt
            | M::Lzcnt
            | M::Tzcnt
            | M::Bswap
            | M::Xadd
            | M::Cmpxchg
            | M::Cmpxchg8b
            | M::Cmpxchg16b
            | M::Cbw
            | M::Cwde
            | M::Cdqe
            | M::Cwd
            | M::Cdq
            | M::Cqo
            | M::Lahf
            | M::Sahf
            | M::Clc
            | M::Stc
            | M::Cmc
            | M::Cld
            | M::Std
            | M::Setb
            | M::Setae
            | M::Sete
            | M::Setne
            | M::Setbe
            | M::Seta
            | M::Sets
            | M::Setns
            | M::Setp
            | M::Setnp
            | M::Setl
            | M::Setge
            | M::Setle
            | M::Setg
            | M::Seto
            | M::Setno
            | M::Cmovb
            | M::Cmovae
            | M::Cmove
            | M::Cmovne
            | M::Cmovbe
            | M::Cmova
            | M::Cmovs
            | M::Cmovns
            | M::Cmovp
            | M::Cmovnp
            | M::Cmovl
            | M::Cmovge
            | M::Cmovle
            | M::Cmovg
            | M::Cmovo
            | M::Cmovno
            | M::Xlatb
    )
}

/// LOCK is allowed only on read-modify-write instructions with a memory destination.
pub(crate) fn lockable(ins: &Instruction) -> bool {
    use Mnemonic as M;
    ins.op0_kind() == OpKind::Memory
        && matches!(
            ins.mnemonic(),
            M::Add
                | M::Adc
                | M::And
                | M::Btc
                | M::Btr
                | M::Bts
                | M::Cmpxchg
                | M::Cmpxchg8b
                | M::Cmpxchg16b
                | M::Dec
                | M::Inc
                | M::Neg
                | M::Not
                | M::Or
                | M::Sbb
                | M::Sub
                | M::Xor
                | M::Xadd
                | M::Xchg
        )
}

/// The two-input ALU operations (CMP computes as SUB, TEST as AND, without writing back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Adc,
    Sub,
    Sbb,
    And,
    Or,
    Xor,
}

impl BinOp {
    pub fn of(m: Mnemonic) -> BinOp {
        use Mnemonic as M;
        match m {
            M::Add => BinOp::Add,
            M::Adc => BinOp::Adc,
            M::Sub | M::Cmp => BinOp::Sub,
            M::Sbb => BinOp::Sbb,
            M::And | M::Test => BinOp::And,
            M::Or => BinOp::Or,
            _ => BinOp::Xor,
        }
    }
}

/// Result and status flags of `a op b` at `size` bytes (`rflags` supplies CF for ADC/SBB):
/// the one definition the interpreter and the translator share.
#[inline(always)]
pub(crate) fn binary(op: BinOp, a: u64, b: u64, rflags: u64, size: u32) -> (u64, u64) {
    let carry = rflags & CF;
    match op {
        BinOp::Add => fx::add(a, b, 0, size),
        BinOp::Adc => fx::add(a, b, carry, size),
        BinOp::Sub => fx::sub(a, b, 0, size),
        BinOp::Sbb => fx::sub(a, b, carry, size),
        BinOp::And => (a & b, fx::logic(a & b, size)),
        BinOp::Or => (a | b, fx::logic(a | b, size)),
        BinOp::Xor => (a ^ b, fx::logic(a ^ b, size)),
    }
}

/// INC/DEC: result and flags; CF is not among the flags they write (callers keep it).
#[inline(always)]
pub(crate) fn inc_dec(inc: bool, a: u64, size: u32) -> (u64, u64) {
    if inc {
        fx::add(a, 1, 0, size)
    } else {
        fx::sub(a, 1, 0, size)
    }
}

impl Cpu<'_> {
    /// Replaces the six status flags with `f`.
    pub fn set_status(&mut self, f: u64) {
        let r = &mut self.st().rflags;
        *r = (*r & !STATUS) | (f & STATUS);
    }

    /// Replaces only the flags in `which`.
    pub fn set_flags(&mut self, which: u64, f: u64) {
        let r = &mut self.st().rflags;
        *r = (*r & !which) | (f & which);
    }

    pub fn flag(&self, f: u64) -> bool {
        self.s().rflags & f != 0
    }
}

pub(crate) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let m = ins.mnemonic();
    match m {
        M::Mov => {
            let v = cpu.read_op(ins, 1)?;
            if ins.op0_kind() == OpKind::Register && ins.op0_register().is_segment_register() {
                return super::segments::mov_to_segment(cpu, ins.op0_register(), v as u16);
            }
            if ins.op0_kind() == OpKind::Register
                && (ins.op0_register().is_cr() || ins.op0_register().is_dr())
                || ins.op1_kind() == OpKind::Register
                    && (ins.op1_register().is_cr() || ins.op1_register().is_dr())
            {
                // CR8 is the local APIC's task priority: it can unmask a pending interrupt.
                cpu.bus_touched = true;
                return super::system::mov_control(cpu, ins);
            }
            // A segment register stored to a 32/64-bit register zero-extends; to memory it is 16 bits.
            cpu.write_op(ins, 0, v)?;
            if ins.op0_kind() == OpKind::Register
                && ins.op1_kind() == OpKind::Register
                && ins.op1_register() == Register::SS
            {
                return Ok(());
            }
            Ok(())
        }
        M::Movzx => {
            let v = cpu.read_op(ins, 1)?;
            cpu.write_op(ins, 0, v)
        }
        M::Movsx | M::Movsxd => {
            let s = cpu.op_size(ins, 1);
            let v = sext(cpu.read_op(ins, 1)?, s);
            cpu.write_op(ins, 0, v)
        }
        M::Lea => {
            let ea = cpu.effective_address(ins);
            cpu.write_op(ins, 0, ea)
        }
        M::Xchg => {
            let a = cpu.read_op(ins, 0)?;
            let b = cpu.read_op(ins, 1)?;
            cpu.write_op(ins, 0, b)?;
            cpu.write_op(ins, 1, a)
        }
        M::Push => {
            let size = push_size(cpu, ins);
            let v =
                if ins.op0_kind() == OpKind::Register && ins.op0_register().is_segment_register() {
                    cpu.reg(ins.op0_register())
                } else {
                    cpu.read_op(ins, 0)?
                };
            cpu.push(size, v)
        }
        M::Pop => {
            let size = push_size(cpu, ins);
            if ins.op0_kind() == OpKind::Register && ins.op0_register().is_segment_register() {
                let v = cpu.peek(0, size)?;
                super::segments::mov_to_segment(cpu, ins.op0_register(), v as u16)?;
                cpu.pop(size)?;
                return Ok(());
            }
            let v = cpu.peek(0, size)?;
            // POP [rsp+x] uses the incremented RSP for the address; if the write faults, RSP
            // is as before the instruction (a fault leaves no partial result).
            let rsp = cpu.s().gpr[reg::RSP];
            cpu.pop(size)?;
            cpu.write_op(ins, 0, v)
                .inspect_err(|_| cpu.st().gpr[reg::RSP] = rsp)
        }
        M::Pusha | M::Pushad => {
            if cpu.s().mode() == CpuMode::Long64 {
                return Err(ud());
            }
            let size = if m == M::Pushad { 4 } else { 2 };
            let sp = cpu.gpr(reg::RSP, size);
            for i in 0..8 {
                let v = if i == reg::RSP { sp } else { cpu.gpr(i, size) };
                cpu.push(size, v)?;
            }
            Ok(())
        }
        M::Popa | M::Popad => {
            if cpu.s().mode() == CpuMode::Long64 {
                return Err(ud());
            }
            let size = if m == M::Popad { 4 } else { 2 };
            for i in (0..8).rev() {
                let v = cpu.pop(size)?;
                if i != reg::RSP {
                    cpu.set_gpr(i, size, v);
                }
            }
            Ok(())
        }
        M::Add | M::Adc | M::Sub | M::Sbb | M::Cmp | M::And | M::Or | M::Xor | M::Test => {
            let size = cpu.op_size(ins, 0);
            let a = cpu.read_op(ins, 0)?;
            let b = cpu.read_op(ins, 1)? & mask(size);
            let op = BinOp::of(m);
            let (r, f) = binary(op, a, b, cpu.s().rflags, size);
            if !matches!(m, M::Cmp | M::Test) {
                cpu.write_op(ins, 0, r)?;
            }
            cpu.set_status(f);
            Ok(())
        }
        M::Inc | M::Dec => {
            let size = cpu.op_size(ins, 0);
            let a = cpu.read_op(ins, 0)?;
            let (r, f) = inc_dec(m == M::Inc, a, size);
            cpu.write_op(ins, 0, r)?;
            cpu.set_flags(STATUS & !CF, f);
            Ok(())
        }
        M::Neg => {
            let size = cpu.op_size(ins, 0);
            let a = cpu.read_op(ins, 0)?;
            let (r, mut f) = fx::sub(0, a, 0, size);
            f = if a & mask(size) != 0 { f | CF } else { f & !CF };
            cpu.write_op(ins, 0, r)?;
            cpu.set_status(f);
            Ok(())
        }
        M::Not => {
            let a = cpu.read_op(ins, 0)?;
            cpu.write_op(ins, 0, !a)
        }
        M::Mul | M::Imul | M::Div | M::Idiv => super::alu_muldiv::execute(cpu, ins),
        M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror | M::Rcl | M::Rcr => {
            super::alu_shift::shift(cpu, ins)
        }
        M::Shld | M::Shrd => super::alu_shift::double_shift(cpu, ins),
        M::Bt | M::Bts | M::Btr | M::Btc | M::Bsf | M::Bsr | M::Bswap => {
            super::alu_shift::bits(cpu, ins)
        }
        M::Popcnt | M::Lzcnt | M::Tzcnt => super::alu_shift::bits(cpu, ins),
        M::Xadd => {
            let size = cpu.op_size(ins, 0);
            let a = cpu.read_op(ins, 0)?;
            let b = cpu.read_op(ins, 1)?;
            let (r, f) = fx::add(a, b, 0, size);
            // SRC ← DEST, then DEST ← sum: with one register as both, the sum wins.
            cpu.write_op(ins, 1, a)?;
            cpu.write_op(ins, 0, r)?;
            cpu.set_status(f);
            Ok(())
        }
        M::Cmpxchg => {
            let size = cpu.op_size(ins, 0);
            let dest = cpu.read_op(ins, 0)?;
            let acc = cpu.gpr(reg::RAX, size);
            let (_, f) = fx::sub(acc, dest, 0, size);
            cpu.set_status(f);
            if acc == dest & mask(size) {
                let src = cpu.read_op(ins, 1)?;
                cpu.write_op(ins, 0, src)
            } else {
                // A memory destination is written back unchanged (a locked cycle always
                // writes); a register one is not written, so its upper half survives.
                if ins.op0_kind() == OpKind::Memory {
                    cpu.write_op(ins, 0, dest)?;
                }
                cpu.set_gpr(reg::RAX, size, dest);
                Ok(())
            }
        }
        M::Cmpxchg8b | M::Cmpxchg16b => super::alu_muldiv::cmpxchg_wide(cpu, ins),
        M::Cbw | M::Cwde | M::Cdqe => {
            let (from, to) = match m {
                M::Cbw => (1, 2),
                M::Cwde => (2, 4),
                _ => (4, 8),
            };
            let v = sext(cpu.gpr(reg::RAX, from), from);
            cpu.set_gpr(reg::RAX, to, v);
            Ok(())
        }
        M::Cwd | M::Cdq | M::Cqo => {
            let size = match m {
                M::Cwd => 2,
                M::Cdq => 4,
                _ => 8,
            };
            let a = cpu.gpr(reg::RAX, size);
            let hi = if a & (1 << (size * 8 - 1)) != 0 {
                u64::MAX
            } else {
                0
            };
            cpu.set_gpr(reg::RDX, size, hi);
            Ok(())
        }
        M::Lahf => {
            let f = cpu.s().rflags & (SF | ZF | AF | PF | CF) | FIXED1;
            cpu.set_reg(Register::AH, f);
            Ok(())
        }
        M::Sahf => {
            let ah = cpu.reg(Register::AH);
            cpu.set_flags(SF | ZF | AF | PF | CF, ah);
            Ok(())
        }
        M::Clc => {
            cpu.set_flags(CF, 0);
            Ok(())
        }
        M::Stc => {
            cpu.set_flags(CF, CF);
            Ok(())
        }
        M::Cmc => {
            cpu.st().rflags ^= CF;
            Ok(())
        }
        M::Cld => {
            cpu.set_flags(DF, 0);
            Ok(())
        }
        M::Std => {
            cpu.set_flags(DF, DF);
            Ok(())
        }
        M::Xlatb => {
            let asz = match ins.op0_kind() {
                _ if ins.memory_base() == Register::RBX => 8,
                _ if ins.memory_base() == Register::EBX => 4,
                _ => 2,
            };
            let ea = cpu.gpr(reg::RBX, asz).wrapping_add(cpu.gpr(reg::RAX, 1)) & mask(asz);
            let v = cpu.read_mem(super::access::seg_of(ins.memory_segment()), ea, 1)?;
            cpu.set_gpr(reg::RAX, 1, v);
            Ok(())
        }
        _ => {
            let cc = ins.condition_code();
            let taken = condition(cc, cpu.s().rflags);
            if ins.op_count() == 1 {
                cpu.write_op(ins, 0, taken as u64)
            } else {
                // CMOVcc reads its source even when the condition is false; a 32-bit
                // destination is zero-extended either way.
                let v = cpu.read_op(ins, 1)?;
                if taken {
                    cpu.write_op(ins, 0, v)
                } else {
                    let d = cpu.read_op(ins, 0)?;
                    cpu.write_op(ins, 0, d)
                }
            }
        }
    }
}

/// Operand size of PUSH/POP, from how far the instruction moves the stack pointer.
fn push_size(_cpu: &Cpu, ins: &Instruction) -> u32 {
    ins.stack_pointer_increment().unsigned_abs()
}

pub(crate) fn divide_error() -> super::Fault {
    exception(vec::DE, None)
}

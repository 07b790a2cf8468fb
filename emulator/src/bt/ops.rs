//! Translated operations: one pre-decoded guest instruction, with a handler chosen for its form.
//! Teaches: what translation buys — operands resolved once, no decoding or dispatch on every run.
//!
//! An `Op` is the translation of one guest instruction: a handler function plus the operands the
//! handler needs, already pulled out of the iced-x86 `Instruction` (register numbers, sizes,
//! the immediate, the memory operand's parts). Hot forms (MOV, the ALU operations, INC/DEC,
//! LEA, shifts by an immediate, MOVZX/MOVSX, Jcc/JMP, SETcc, CMOVcc, PUSH/POP) get specialised
//! handlers — monomorphised per operation and operand kind, so each is straight-line code.
//! Everything else, and every sensitive instruction, is a **callout** to the interpreter's
//! `execute_decoded` with the stored `Instruction`: one definition of each instruction's effect.
//! The arithmetic itself (`alu::binary`, `alu::inc_dec`, `alu_shift::shift_value`,
//! `flags::condition`) is also the interpreter's; handlers only differ in how they reach operands.

use iced_x86::{ConditionCode, Instruction, Mnemonic};

use crate::cpu::Seg;
use crate::interp::{alu_api as alu, mask, sext, Cpu, R};
use crate::mmu::Access;

use super::lazy;

/// A handler: executes one translated instruction (RIP is not updated unless it branches).
pub type Handler = fn(&mut Cpu, &Op) -> R<()>;

/// "No register" in a memory operand.
pub const NONE: u8 = 0xFF;

/// A memory operand with its parts resolved: `seg:[disp + base + index << scale] & amask`.
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    pub base: u8,
    pub base_size: u8,
    pub index: u8,
    pub index_size: u8,
    pub scale: u8,
    pub disp: u64,
    pub seg: Seg,
    pub amask: u64,
    /// An access made at CPL 3 (the block's CPL is part of its key, so it is known here).
    pub user: bool,
}

impl Mem {
    pub const NONE: Mem = Mem {
        base: NONE,
        base_size: 8,
        index: NONE,
        index_size: 8,
        scale: 0,
        disp: 0,
        seg: Seg::Ds,
        amask: u64::MAX,
        user: false,
    };
}

/// One translated guest instruction.
#[derive(Clone)]
pub struct Op {
    pub exec: Handler,
    /// The handler's name, for `vmscope bt show`.
    pub name: &'static str,
    pub rip: u64,
    pub next_rip: u64,
    /// Destination and source general registers (0–15), operand size and source size in bytes.
    pub dst: u8,
    pub src: u8,
    pub size: u8,
    pub src_size: u8,
    /// Must this instruction's status flags be computed? (false: a later instruction of the
    /// block overwrites them before anything can observe them — flag liveness.)
    pub flags_live: bool,
    /// Does the handler leave RIP correct itself (branches and callouts)?
    pub sets_rip: bool,
    /// A Jcc: when it leaves the block, the exit may be chained.
    pub side_exit: bool,
    pub cc: ConditionCode,
    pub imm: u64,
    pub mem: Mem,
    /// Code size of the block (16/32/64), for callouts.
    pub bits: u8,
    /// Position in the block: a callout's virtual time is the block's start + this.
    pub index: u8,
    pub ins: Instruction,
}

impl Op {
    pub fn is_callout(&self) -> bool {
        self.name == "callout"
    }
}

/// The effective address of the memory operand.
#[inline(always)]
fn ea(cpu: &Cpu, m: &Mem) -> u64 {
    let mut a = m.disp;
    if m.base != NONE {
        a = a.wrapping_add(cpu.gpr(m.base as usize, m.base_size as u32));
    }
    if m.index != NONE {
        a = a.wrapping_add(cpu.gpr(m.index as usize, m.index_size as u32) << m.scale);
    }
    a & m.amask
}

#[inline(always)]
fn load(cpu: &mut Cpu, op: &Op, size: u32) -> R<u64> {
    let a = ea(cpu, &op.mem);
    read(cpu, &op.mem, a, size)
}

/// Can an access take the short path: within one page, and no alignment check armed? (In a
/// translated block debug registers are off — blocks run only when DR7 enables nothing.)
#[inline(always)]
fn short_path(cpu: &Cpu, lin: u64, size: u32) -> bool {
    let s = cpu.s();
    (lin & 0xFFF) + size as u64 <= 0x1000
        && (s.cr0 & crate::cpu::ctl::CR0_AM == 0 || s.rflags & crate::cpu::flags::AC == 0)
}

/// The physical address of a user-mode access through the small TLB (`bt::tlb`), or through
/// the MMU — filling the TLB when the frame is RAM (and, for writes, holds no traced page table).
#[inline(always)]
fn user_phys(cpu: &mut Cpu, lin: u64, write: bool) -> R<u64> {
    if let Some(phys) = cpu.tlb.lookup(lin, write, cpu.mmu.generation) {
        return Ok(phys);
    }
    user_phys_slow(cpu, lin, write)
}

#[inline(never)]
fn user_phys_slow(cpu: &mut Cpu, lin: u64, write: bool) -> R<u64> {
    let access = if write {
        Access::write(true)
    } else {
        Access::read(true)
    };
    let phys = cpu.translate(lin, access)?;
    let frame = phys & !0xFFF;
    if cpu.m.ram.contains(frame, 0x1000) && !(write && cpu.mmu.is_traced(frame)) {
        let generation = cpu.mmu.generation;
        cpu.tlb.fill(lin, write, phys, generation);
    }
    Ok(phys)
}

/// The physical address of a data access that took the short path.
#[inline(always)]
fn data_phys(cpu: &mut Cpu, m: &Mem, lin: u64, write: bool) -> R<u64> {
    if m.user {
        user_phys(cpu, lin, write)
    } else if write {
        cpu.translate(lin, Access::write(false))
    } else {
        cpu.translate(lin, Access::read(false))
    }
}

/// A data read: the interpreter's segment check, then the TLB or MMU and RAM directly when
/// `short_path` allows, else the interpreter's whole `read_mem`.
#[inline(always)]
fn read(cpu: &mut Cpu, m: &Mem, offset: u64, size: u32) -> R<u64> {
    let lin = cpu.linear(m.seg, offset, size, false)?;
    if !short_path(cpu, lin, size) {
        return cpu.read_mem(m.seg, offset, size);
    }
    let phys = data_phys(cpu, m, lin, false)?;
    Ok(cpu.phys_read(phys, size))
}

/// The read of a read-modify-write destination: checked as a write (segment type, page
/// R/W, so a fault says W = 1), like the interpreter's `read_mem_for_write`.
#[inline(always)]
fn read_for_write(cpu: &mut Cpu, m: &Mem, offset: u64, size: u32) -> R<u64> {
    let lin = cpu.linear(m.seg, offset, size, true)?;
    if !short_path(cpu, lin, size) {
        return cpu.read_mem_for_write(m.seg, offset, size);
    }
    let phys = data_phys(cpu, m, lin, true)?;
    Ok(cpu.phys_read(phys, size))
}

/// A data write, like `read`.
#[inline(always)]
fn write(cpu: &mut Cpu, m: &Mem, offset: u64, size: u32, value: u64) -> R<()> {
    let lin = cpu.linear(m.seg, offset, size, true)?;
    if !short_path(cpu, lin, size) {
        return cpu.write_mem(m.seg, offset, size, value);
    }
    let phys = data_phys(cpu, m, lin, true)?;
    cpu.phys_write(phys, size, value);
    Ok(())
}

// ---- operand kinds of the specialised forms ----
pub const RR: u8 = 0;
pub const RI: u8 = 1;
pub const RM: u8 = 2;
pub const MR: u8 = 3;
pub const MI: u8 = 4;

/// A callout: the interpreter executes the stored instruction (sensitive instructions, rare
/// forms). Ends the block when it did not simply fall through to the next instruction.
///
/// While a block runs, `cpu.now_ns` stays at the block's start (ops that cannot reach a device
/// need no clock); a callout sees the exact time of its own instruction.
pub fn callout(cpu: &mut Cpu, op: &Op) -> R<()> {
    lazy::materialize(cpu);
    cpu.start_rip = op.rip;
    let block_start = cpu.now_ns;
    cpu.now_ns = block_start + op.index as u64;
    let result = crate::interp::execute_decoded(cpu, &op.ins, op.bits as u32);
    cpu.now_ns = block_start;
    result?;
    if cpu.s().rip != op.next_rip {
        cpu.end_block = true;
    }
    Ok(())
}

pub fn nop(_: &mut Cpu, _: &Op) -> R<()> {
    Ok(())
}

/// MOV (and MOVZX with `SX = false`, MOVSX/MOVSXD with `SX = true` when `src_size` < `size`).
pub fn mov<const KIND: u8, const SX: bool>(cpu: &mut Cpu, op: &Op) -> R<()> {
    let size = op.size as u32;
    let src_size = op.src_size as u32;
    let v = match KIND {
        RR | MR => cpu.gpr(op.src as usize, src_size),
        RI | MI => op.imm,
        _ => load(cpu, op, src_size)?,
    };
    let v = if SX { sext(v, src_size) } else { v };
    match KIND {
        MR | MI => {
            let a = ea(cpu, &op.mem);
            write(cpu, &op.mem, a, size, v)
        }
        _ => {
            cpu.set_gpr(op.dst as usize, size, v);
            Ok(())
        }
    }
}

/// LEA: the effective address, no memory access.
pub fn lea(cpu: &mut Cpu, op: &Op) -> R<()> {
    let a = ea(cpu, &op.mem);
    cpu.set_gpr(op.dst as usize, op.size as u32, a);
    Ok(())
}

const fn binop(n: u8) -> alu::BinOp {
    match n {
        0 => alu::BinOp::Add,
        1 => alu::BinOp::Adc,
        2 => alu::BinOp::Sub,
        3 => alu::BinOp::Sbb,
        4 => alu::BinOp::And,
        5 => alu::BinOp::Or,
        _ => alu::BinOp::Xor,
    }
}

/// ADD/ADC/SUB/SBB/AND/OR/XOR, and CMP/TEST (`WRITE = false`), for each operand kind.
pub fn alu<const OP: u8, const KIND: u8, const WRITE: bool>(cpu: &mut Cpu, op: &Op) -> R<()> {
    let size = op.size as u32;
    let m = mask(size);
    let (a, b, addr) = match KIND {
        RR => (
            cpu.gpr(op.dst as usize, size),
            cpu.gpr(op.src as usize, size),
            0,
        ),
        RI => (cpu.gpr(op.dst as usize, size), op.imm & m, 0),
        RM => (cpu.gpr(op.dst as usize, size), load(cpu, op, size)?, 0),
        _ => {
            let addr = ea(cpu, &op.mem);
            let a = if WRITE {
                read_for_write(cpu, &op.mem, addr, size)?
            } else {
                read(cpu, &op.mem, addr, size)?
            };
            let b = if KIND == MR {
                cpu.gpr(op.src as usize, size)
            } else {
                op.imm & m
            };
            (a, b, addr)
        }
    };
    let op_kind = binop(OP);
    if matches!(op_kind, alu::BinOp::Adc | alu::BinOp::Sbb) {
        // They read CF: take the exact flags, and compute theirs now.
        lazy::materialize(cpu);
        let (r, f) = alu::binary(op_kind, a, b, cpu.s().rflags, size);
        write_back::<KIND, WRITE>(cpu, op, addr, size, r)?;
        if op.flags_live {
            cpu.set_status(f);
        }
        return Ok(());
    }
    // The result from the shared definition; its flags are deferred (the unused flag
    // computation is optimised away).
    let (r, _) = alu::binary(op_kind, a, b, 0, size);
    write_back::<KIND, WRITE>(cpu, op, addr, size, r)?;
    if op.flags_live {
        let kind = match op_kind {
            alu::BinOp::Add => lazy::Kind::Add,
            alu::BinOp::Sub => lazy::Kind::Sub,
            _ => lazy::Kind::Logic,
        };
        lazy::record(cpu, kind, size, a, b, r);
    }
    Ok(())
}

#[inline(always)]
fn write_back<const KIND: u8, const WRITE: bool>(
    cpu: &mut Cpu,
    op: &Op,
    addr: u64,
    size: u32,
    r: u64,
) -> R<()> {
    if WRITE {
        if KIND == MR || KIND == MI {
            write(cpu, &op.mem, addr, size, r)?;
        } else {
            cpu.set_gpr(op.dst as usize, size, r);
        }
    }
    Ok(())
}

/// INC (`INC = true`) / DEC of a register: CF is kept.
pub fn inc_dec<const INC: bool>(cpu: &mut Cpu, op: &Op) -> R<()> {
    let size = op.size as u32;
    let a = cpu.gpr(op.dst as usize, size);
    let (r, _) = alu::inc_dec(INC, a, size);
    cpu.set_gpr(op.dst as usize, size, r);
    if op.flags_live {
        lazy::record_inc_dec(cpu, INC, size, a, r);
    }
    Ok(())
}

/// Two- and three-operand IMUL: `dst = src × imm` (`KIND` RI: register source in `src`, RM:
/// memory source) or `dst = dst × src` (RR, RM with `THREE = false`).
pub fn imul<const KIND: u8, const THREE: bool>(cpu: &mut Cpu, op: &Op) -> R<()> {
    let size = op.size as u32;
    let src = if KIND == RM {
        load(cpu, op, size)?
    } else {
        cpu.gpr(op.src as usize, size)
    };
    let (a, b) = if THREE {
        (src, op.imm)
    } else {
        (cpu.gpr(op.dst as usize, size), src)
    };
    let (r, f) = alu::imul_truncated(a, b, size);
    cpu.set_gpr(op.dst as usize, size, r);
    if op.flags_live {
        cpu.set_status(f);
        lazy::forget(cpu);
    }
    Ok(())
}

/// NOT r: no flags.
pub fn not_r(cpu: &mut Cpu, op: &Op) -> R<()> {
    let size = op.size as u32;
    let v = !cpu.gpr(op.dst as usize, size);
    cpu.set_gpr(op.dst as usize, size, v);
    Ok(())
}

/// The shifts with a specialised form, numbered for `shift_imm`.
pub const SHIFTS: [Mnemonic; 5] = [
    Mnemonic::Shl,
    Mnemonic::Shr,
    Mnemonic::Sar,
    Mnemonic::Rol,
    Mnemonic::Ror,
];

/// SHL/SHR/SAR/ROL/ROR (`SHIFTS[K]`) of a register by a non-zero immediate count (`imm`).
pub fn shift_imm<const K: usize>(cpu: &mut Cpu, op: &Op) -> R<()> {
    // SHL/SHR/SAR define all six status flags from their inputs; ROL/ROR keep four of the
    // old ones, which must be exact first.
    if K >= 3 {
        lazy::materialize(cpu);
    }
    let size = op.size as u32;
    let a = cpu.gpr(op.dst as usize, size);
    let (r, f) = alu::shift_value(SHIFTS[K], a, op.imm as u32, size, cpu.s().rflags);
    cpu.set_gpr(op.dst as usize, size, r);
    if op.flags_live {
        cpu.set_status(f);
        lazy::forget(cpu);
    }
    Ok(())
}

/// Jcc: taken to `imm`, else to the next instruction (the target was checked at translation).
///
/// A Jcc inside a block is a **side exit**: taken, it leaves the block (`end_block`); not
/// taken, the block goes on with the fall-through — longer blocks, fewer trips through the
/// run loop. `CC` indexes `CONDITIONS`, so each condition is its own straight-line handler.
pub fn jcc<const CC: usize>(cpu: &mut Cpu, op: &Op) -> R<()> {
    if lazy::condition(cpu, CONDITIONS[CC]) {
        cpu.st().rip = op.imm;
        cpu.end_block = true;
    } else {
        cpu.st().rip = op.next_rip;
    }
    Ok(())
}

/// Condition codes in iced-x86's order (index = `ConditionCode as usize`).
pub const CONDITIONS: [ConditionCode; 17] = [
    ConditionCode::None,
    ConditionCode::o,
    ConditionCode::no,
    ConditionCode::b,
    ConditionCode::ae,
    ConditionCode::e,
    ConditionCode::ne,
    ConditionCode::be,
    ConditionCode::a,
    ConditionCode::s,
    ConditionCode::ns,
    ConditionCode::p,
    ConditionCode::np,
    ConditionCode::l,
    ConditionCode::ge,
    ConditionCode::le,
    ConditionCode::g,
];

/// The Jcc handler for each condition code.
pub const JCC: [Handler; 17] = [
    jcc::<0>, jcc::<1>, jcc::<2>, jcc::<3>, jcc::<4>, jcc::<5>, jcc::<6>, jcc::<7>, jcc::<8>,
    jcc::<9>, jcc::<10>, jcc::<11>, jcc::<12>, jcc::<13>, jcc::<14>, jcc::<15>, jcc::<16>,
];

/// JMP to a direct target.
pub fn jmp(cpu: &mut Cpu, op: &Op) -> R<()> {
    cpu.st().rip = op.imm;
    Ok(())
}

/// SETcc r8 (low byte registers only).
pub fn setcc(cpu: &mut Cpu, op: &Op) -> R<()> {
    let v = lazy::condition(cpu, op.cc) as u64;
    cpu.set_gpr(op.dst as usize, 1, v);
    Ok(())
}

/// CMOVcc r, r: a 32-bit destination is written (upper half cleared) even when false.
pub fn cmov_rr(cpu: &mut Cpu, op: &Op) -> R<()> {
    let size = op.size as u32;
    let v = if lazy::condition(cpu, op.cc) {
        cpu.gpr(op.src as usize, size)
    } else {
        cpu.gpr(op.dst as usize, size)
    };
    cpu.set_gpr(op.dst as usize, size, v);
    Ok(())
}

/// PUSH r (the interpreter's `push`: stack size, segment checks).
pub fn push_r(cpu: &mut Cpu, op: &Op) -> R<()> {
    let v = cpu.gpr(op.src as usize, op.size as u32);
    cpu.push(op.size as u32, v)
}

/// POP r.
pub fn pop_r(cpu: &mut Cpu, op: &Op) -> R<()> {
    let v = cpu.pop(op.size as u32)?;
    cpu.set_gpr(op.dst as usize, op.size as u32, v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_table_is_indexed_by_iced_condition_code() {
        for (i, cc) in CONDITIONS.iter().enumerate() {
            assert_eq!(*cc as usize, i, "{cc:?}");
        }
    }
}

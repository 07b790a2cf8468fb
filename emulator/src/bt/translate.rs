//! The translator proper: guest bytes → a block of `Op`s, and the flag-liveness pass over it.
//! Teaches: where a block must end (branches, sensitive instructions, page ends) and why.
//!
//! A block runs from its first instruction to the first one that transfers control or is
//! **sensitive** — it reads or changes state the block's translation depends on (mode, CPL,
//! paging, interrupts, segment registers, device I/O): those become callouts and end the
//! block, so the run loop sees every such change before it picks the next block. Blocks never
//! cross a page: an instruction that straddles two pages is left to the interpreter.
//!
//! **Flag liveness.** Walking the block backwards, an instruction's status flags are live if an
//! instruction after it reads them before all of them are overwritten, or if the block may be
//! left before that — the block's end, a callout, or any instruction that can fault or reach a
//! device (a memory access): an exception handler, an interrupt or another engine must find
//! RFLAGS exactly as the interpreter would leave it. Only register-only ALU instructions
//! followed by register-only flag writers lose their flag computation.

use iced_x86::{
    ConditionCode, Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register,
    RflagsBits,
};

use super::ops::{self, Handler, Mem, Op, MI, MR, NONE, RI, RM, RR};
use crate::cpu::CpuMode;
use crate::interp::{self, Cpu, Unit};

/// At most this many instructions per block.
pub const MAX_BLOCK_INSTRUCTIONS: usize = 64;

/// The iced-x86 bits of the six status flags.
const STATUS: u32 = RflagsBits::OF
    | RflagsBits::SF
    | RflagsBits::ZF
    | RflagsBits::AF
    | RflagsBits::CF
    | RflagsBits::PF;

/// Translates the instructions at `rip` (physical `phys`) up to the first block end.
/// Returns no ops when even the first instruction cannot be translated (it straddles a page,
/// or does not decode): the caller lets the interpreter run it.
pub fn translate(cpu: &mut Cpu, phys: u64, rip: u64, bits: u32) -> (Vec<Op>, u64) {
    let room = 0x1000 - (phys & 0xFFF) as usize;
    let mut bytes = vec![0u8; room.min(MAX_BLOCK_INSTRUCTIONS * 15)];
    interp::fetch_bytes(cpu, phys, &mut bytes);
    let mut decoder = Decoder::with_ip(bits, &bytes, rip, DecoderOptions::NONE);
    let mut ops = Vec::new();
    let mut ins = Instruction::default();
    let mut used = 0u64;
    while decoder.can_decode() && ops.len() < MAX_BLOCK_INSTRUCTIONS {
        let at = decoder.position();
        decoder.decode_out(&mut ins);
        // Truncated at the end of the buffer (straddles the page, or the buffer's end).
        if ins.is_invalid() && at + 15 > bytes.len() {
            break;
        }
        let mut op = select(cpu, &ins, bits);
        op.index = ops.len() as u8;
        used += ins.len() as u64;
        // A specialised Jcc is a side exit: the block goes on with its fall-through.
        let ends = ends_block(&ins) && op.name != "jcc";
        ops.push(op);
        if ends || ins.is_invalid() {
            break;
        }
    }
    mark_flag_liveness(&mut ops);
    ops.shrink_to_fit();
    (ops, used)
}

/// Does this instruction end a block: a control transfer, or sensitive?
pub fn ends_block(ins: &Instruction) -> bool {
    if ins.flow_control() != FlowControl::Next {
        return true;
    }
    let sensitive_operand = (0..ins.op_count()).any(|i| {
        ins.op_kind(i) == OpKind::Register && {
            let r = ins.op_register(i);
            r.is_segment_register() || r.is_cr() || r.is_dr() || r.is_tr()
        }
    });
    sensitive_operand
        || !matches!(
            interp::unit_of(ins.mnemonic()),
            Unit::Alu | Unit::NoOp | Unit::Legacy | Unit::String | Unit::Simd | Unit::X87
        )
        || matches!(
            ins.mnemonic(),
            Mnemonic::Insb
                | Mnemonic::Insw
                | Mnemonic::Insd
                | Mnemonic::Outsb
                | Mnemonic::Outsw
                | Mnemonic::Outsd
                | Mnemonic::Lds
                | Mnemonic::Les
                | Mnemonic::Lfs
                | Mnemonic::Lgs
                | Mnemonic::Lss
        )
}

/// General register number and size of `r`, if it is one a specialised handler can use
/// (not AH/CH/DH/BH, which live in bits 8–15).
fn gpr(r: Register) -> Option<(u8, u8)> {
    if !r.is_gpr() || matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) {
        return None;
    }
    let index = (r.full_register() as usize - Register::RAX as usize) & 15;
    Some((index as u8, r.size() as u8))
}

/// The memory operand's parts, if a specialised handler can form its address.
fn mem(cpu: &Cpu, ins: &Instruction) -> Option<Mem> {
    let (base, base_size) = match ins.memory_base() {
        Register::None | Register::RIP | Register::EIP => (NONE, 8),
        r => gpr(r)?,
    };
    let (index, index_size) = match ins.memory_index() {
        Register::None => (NONE, 8),
        r => gpr(r)?,
    };
    Some(Mem {
        base,
        base_size,
        index,
        index_size,
        scale: ins.memory_index_scale().trailing_zeros() as u8,
        disp: ins.memory_displacement64(),
        seg: interp::seg_of(ins.memory_segment()),
        amask: interp::mask(cpu.address_size(ins)),
        user: cpu.s().cpl() == 3,
    })
}

fn is_imm(k: OpKind) -> bool {
    matches!(
        k,
        OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64
    )
}

/// Picks the handler for one instruction: a specialised form, or a callout.
fn select(cpu: &Cpu, ins: &Instruction, bits: u32) -> Op {
    let mut op = Op {
        exec: ops::callout,
        name: "callout",
        rip: ins.ip(),
        next_rip: ins.next_ip() & interp::mask(bits / 8),
        dst: 0,
        src: 0,
        size: 0,
        src_size: 0,
        flags_live: true,
        sets_rip: true,
        side_exit: false,
        cc: ConditionCode::None,
        imm: 0,
        mem: Mem::NONE,
        bits: bits as u8,
        index: 0,
        ins: *ins,
    };
    if ins.is_invalid() || ins.has_lock_prefix() || ends_block(ins) && !is_direct_branch(ins) {
        return op;
    }
    if let Some((exec, name)) = specialise(cpu, ins, bits, &mut op) {
        op.exec = exec;
        op.name = name;
        op.sets_rip = is_direct_branch(ins);
        op.side_exit = name == "jcc";
    }
    op
}

fn is_direct_branch(ins: &Instruction) -> bool {
    matches!(ins.mnemonic(), Mnemonic::Jmp) && ins.op0_kind() == OpKind::NearBranch64
        || ins.flow_control() == FlowControl::ConditionalBranch
            && ins.op0_kind() == OpKind::NearBranch64
            && ins.condition_code() != ConditionCode::None
            && !matches!(
                ins.mnemonic(),
                Mnemonic::Loop | Mnemonic::Loope | Mnemonic::Loopne | Mnemonic::Jrcxz
            )
}

/// Fills `op`'s operands for a specialised form and returns its handler, or None.
fn specialise(
    cpu: &Cpu,
    ins: &Instruction,
    bits: u32,
    op: &mut Op,
) -> Option<(Handler, &'static str)> {
    use Mnemonic as M;
    let m = ins.mnemonic();
    let k0 = if ins.op_count() > 0 {
        ins.op0_kind()
    } else {
        OpKind::Register
    };
    let k1 = if ins.op_count() > 1 {
        ins.op1_kind()
    } else {
        OpKind::Register
    };
    // Operand kind of a two-operand form, filling dst/src/imm/mem.
    let two = |op: &mut Op| -> Option<u8> {
        match (k0, k1) {
            (OpKind::Register, OpKind::Register) => {
                let (d, s) = (gpr(ins.op0_register())?, gpr(ins.op1_register())?);
                (op.dst, op.size, op.src, op.src_size) = (d.0, d.1, s.0, s.1);
                Some(RR)
            }
            (OpKind::Register, k) if is_imm(k) => {
                (op.dst, op.size) = gpr(ins.op0_register())?;
                op.imm = ins.immediate(1);
                op.src_size = op.size;
                Some(RI)
            }
            (OpKind::Register, OpKind::Memory) => {
                (op.dst, op.size) = gpr(ins.op0_register())?;
                op.mem = mem(cpu, ins)?;
                op.src_size = ins.memory_size().size() as u8;
                Some(RM)
            }
            (OpKind::Memory, OpKind::Register) => {
                (op.src, op.src_size) = gpr(ins.op1_register())?;
                op.mem = mem(cpu, ins)?;
                op.size = ins.memory_size().size() as u8;
                Some(MR)
            }
            (OpKind::Memory, k) if is_imm(k) => {
                op.mem = mem(cpu, ins)?;
                op.size = ins.memory_size().size() as u8;
                op.src_size = op.size;
                op.imm = ins.immediate(1);
                Some(MI)
            }
            _ => None,
        }
    };
    let r: (Handler, &'static str) = match m {
        m if interp::is_no_op(m) => (ops::nop, "nop"),
        M::Mov => match two(op)? {
            RR => (ops::mov::<RR, false>, "mov r,r"),
            RI => (ops::mov::<RI, false>, "mov r,imm"),
            RM => (ops::mov::<RM, false>, "mov r,[m]"),
            MR => (ops::mov::<MR, false>, "mov [m],r"),
            _ => (ops::mov::<MI, false>, "mov [m],imm"),
        },
        M::Movzx | M::Movsx | M::Movsxd => {
            let kind = two(op)?;
            match (kind, m == M::Movzx) {
                (RR, true) => (ops::mov::<RR, false>, "movzx r,r"),
                (RM, true) => (ops::mov::<RM, false>, "movzx r,[m]"),
                (RR, false) => (ops::mov::<RR, true>, "movsx r,r"),
                (RM, false) => (ops::mov::<RM, true>, "movsx r,[m]"),
                _ => return None,
            }
        }
        M::Lea => {
            (op.dst, op.size) = gpr(ins.op0_register())?;
            op.mem = mem(cpu, ins)?;
            (ops::lea, "lea")
        }
        M::Add | M::Adc | M::Sub | M::Sbb | M::And | M::Or | M::Xor | M::Cmp | M::Test => {
            let kind = two(op)?;
            alu_handler(m, kind)?
        }
        M::Imul if ins.op_count() == 3 && k0 == OpKind::Register => {
            (op.dst, op.size) = gpr(ins.op0_register())?;
            op.imm = ins.immediate(2);
            if k1 == OpKind::Register {
                (op.src, _) = gpr(ins.op1_register())?;
                (ops::imul::<RR, true>, "imul r,r,imm")
            } else {
                op.mem = mem(cpu, ins)?;
                (ops::imul::<RM, true>, "imul r,[m],imm")
            }
        }
        M::Imul if ins.op_count() == 2 => match two(op)? {
            RR => (ops::imul::<RR, false>, "imul r,r"),
            RM => (ops::imul::<RM, false>, "imul r,[m]"),
            _ => return None,
        },
        M::Not if k0 == OpKind::Register => {
            (op.dst, op.size) = gpr(ins.op0_register())?;
            (ops::not_r, "not r")
        }
        M::Inc | M::Dec if k0 == OpKind::Register => {
            (op.dst, op.size) = gpr(ins.op0_register())?;
            if m == M::Inc {
                (ops::inc_dec::<true>, "inc r")
            } else {
                (ops::inc_dec::<false>, "dec r")
            }
        }
        M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror
            if k0 == OpKind::Register && k1 == OpKind::Immediate8 =>
        {
            (op.dst, op.size) = gpr(ins.op0_register())?;
            let count_mask = if op.size == 8 { 0x3F } else { 0x1F };
            op.imm = ins.immediate8() as u64 & count_mask;
            if op.imm == 0 {
                return None;
            }
            match m {
                M::Shl | M::Sal => (ops::shift_imm::<0>, "shift r,imm"),
                M::Shr => (ops::shift_imm::<1>, "shift r,imm"),
                M::Sar => (ops::shift_imm::<2>, "shift r,imm"),
                M::Rol => (ops::shift_imm::<3>, "shift r,imm"),
                _ => (ops::shift_imm::<4>, "shift r,imm"),
            }
        }
        M::Jmp if is_direct_branch(ins) && bits == 64 => {
            op.imm = ins.near_branch_target();
            if !interp::is_canonical(op.imm) {
                return None;
            }
            (ops::jmp, "jmp")
        }
        _ if is_direct_branch(ins) && bits == 64 => {
            op.imm = ins.near_branch_target();
            op.cc = ins.condition_code();
            if !interp::is_canonical(op.imm) {
                return None;
            }
            (ops::JCC[op.cc as usize], "jcc")
        }
        _ if is_setcc(ins) && k0 == OpKind::Register => {
            (op.dst, op.size) = gpr(ins.op0_register())?;
            op.cc = ins.condition_code();
            (ops::setcc, "setcc r8")
        }
        _ if is_cmovcc(ins) => {
            if two(op)? != RR {
                return None;
            }
            op.cc = ins.condition_code();
            (ops::cmov_rr, "cmovcc r,r")
        }
        M::Push if k0 == OpKind::Register => {
            (op.src, op.size) = gpr(ins.op0_register())?;
            (ops::push_r, "push r")
        }
        M::Pop if k0 == OpKind::Register => {
            (op.dst, op.size) = gpr(ins.op0_register())?;
            (ops::pop_r, "pop r")
        }
        _ => return None,
    };
    if cpu.s().mode() == CpuMode::Real && matches!(m, M::Push | M::Pop) {
        // Real-mode stack wrap-around is the interpreter's business.
        return None;
    }
    Some(r)
}

/// SETcc: a condition code, one operand, no control transfer.
fn is_setcc(ins: &Instruction) -> bool {
    ins.condition_code() != ConditionCode::None
        && ins.flow_control() == FlowControl::Next
        && ins.op_count() == 1
}

/// CMOVcc: a condition code, two operands, no control transfer (FCMOVcc's x87 registers are
/// refused later, as they are no general registers).
fn is_cmovcc(ins: &Instruction) -> bool {
    ins.condition_code() != ConditionCode::None
        && ins.flow_control() == FlowControl::Next
        && ins.op_count() == 2
}

fn alu_handler(m: Mnemonic, kind: u8) -> Option<(Handler, &'static str)> {
    use Mnemonic as M;
    macro_rules! forms {
        ($op:expr, $write:expr, $name:expr) => {
            match kind {
                RR => (
                    ops::alu::<{ $op }, RR, $write> as Handler,
                    concat!($name, " r,r"),
                ),
                RI => (
                    ops::alu::<{ $op }, RI, $write> as Handler,
                    concat!($name, " r,imm"),
                ),
                RM => (
                    ops::alu::<{ $op }, RM, $write> as Handler,
                    concat!($name, " r,[m]"),
                ),
                MR => (
                    ops::alu::<{ $op }, MR, $write> as Handler,
                    concat!($name, " [m],r"),
                ),
                _ => (
                    ops::alu::<{ $op }, MI, $write> as Handler,
                    concat!($name, " [m],imm"),
                ),
            }
        };
    }
    Some(match m {
        M::Add => forms!(0, true, "add"),
        M::Adc => forms!(1, true, "adc"),
        M::Sub => forms!(2, true, "sub"),
        M::Sbb => forms!(3, true, "sbb"),
        M::And => forms!(4, true, "and"),
        M::Or => forms!(5, true, "or"),
        M::Xor => forms!(6, true, "xor"),
        M::Cmp => forms!(2, false, "cmp"),
        M::Test => forms!(4, false, "test"),
        _ => return None,
    })
}

/// Can leaving the block at this op be observed (a fault, a device, a callout)?
fn may_leave(op: &Op) -> bool {
    op.name == "callout"
        || matches!(op.name, "push r" | "pop r" | "jcc")
        || op.name != "lea" && (0..op.ins.op_count()).any(|i| op.ins.op_kind(i) == OpKind::Memory)
}

/// The backward flag-liveness pass (see the module notes).
pub fn mark_flag_liveness(ops: &mut [Op]) {
    let mut live = STATUS;
    for op in ops.iter_mut().rev() {
        if may_leave(op) {
            op.flags_live = true;
            live = STATUS;
            continue;
        }
        let written = op.ins.rflags_modified() & STATUS;
        op.flags_live = written & live != 0;
        live = (live & !written) | (op.ins.rflags_read() & STATUS);
    }
}

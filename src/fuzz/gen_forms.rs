//! Single instructions for fuzz cases: any legacy-encoded iced-x86 form of the mode, operands filled at random.
//! Teaches: an instruction set is a table of forms (opcode + operand kinds); a generator can walk the table instead of a hand-made list.
//!
//! Forms come from iced-x86's `Code` table: valid in the bitness, legacy encoding (no VEX/EVEX,
//! which the CPU model does not offer), and every operand of a kind filled here (registers of
//! each width, memory, immediates, segment, control and debug registers, x87/MMX/XMM registers).
//! Common integer instructions are drawn more often than the rest of the table. Memory operands
//! point into the data area mostly, sometimes into the case's own code (self-modifying code),
//! onto the stack, into pages that fault, or through a random register.

use std::sync::OnceLock;

use iced_x86::{
    Code, Encoder, EncodingKind, Instruction, MemoryOperand, Mnemonic, OpCodeOperandKind as K,
    Register,
};

use super::gen_ops::Env;
use crate::conformance::native::Rng;
use crate::conformance::native_forms::interesting;

/// Mnemonics drawn more often: the integer core.
#[rustfmt::skip]
const CORE: &[Mnemonic] = &[
    Mnemonic::Add, Mnemonic::Adc, Mnemonic::Sub, Mnemonic::Sbb, Mnemonic::And, Mnemonic::Or,
    Mnemonic::Xor, Mnemonic::Cmp, Mnemonic::Test, Mnemonic::Inc, Mnemonic::Dec, Mnemonic::Neg,
    Mnemonic::Not, Mnemonic::Shl, Mnemonic::Shr, Mnemonic::Sar, Mnemonic::Rol, Mnemonic::Ror,
    Mnemonic::Rcl, Mnemonic::Rcr, Mnemonic::Shld, Mnemonic::Shrd, Mnemonic::Mul, Mnemonic::Imul,
    Mnemonic::Div, Mnemonic::Idiv, Mnemonic::Bt, Mnemonic::Bts, Mnemonic::Btr, Mnemonic::Btc,
    Mnemonic::Bsf, Mnemonic::Bsr, Mnemonic::Movzx, Mnemonic::Movsx, Mnemonic::Xchg, Mnemonic::Xadd,
    Mnemonic::Cmpxchg, Mnemonic::Cmove, Mnemonic::Cmovb, Mnemonic::Cmovl, Mnemonic::Sete,
    Mnemonic::Setb, Mnemonic::Setl, Mnemonic::Seto, Mnemonic::Bswap, Mnemonic::Lea, Mnemonic::Mov,
    Mnemonic::Push, Mnemonic::Pop, Mnemonic::Lahf, Mnemonic::Sahf, Mnemonic::Cbw, Mnemonic::Cwd,
    Mnemonic::Cdq, Mnemonic::Cwde, Mnemonic::Pushf, Mnemonic::Popf, Mnemonic::Stc, Mnemonic::Clc,
    Mnemonic::Cmc, Mnemonic::Std, Mnemonic::Cld, Mnemonic::Daa, Mnemonic::Das, Mnemonic::Aaa,
    Mnemonic::Aas, Mnemonic::Aam, Mnemonic::Aad, Mnemonic::Xlatb, Mnemonic::Enter, Mnemonic::Leave,
    Mnemonic::Popcnt, Mnemonic::Lzcnt, Mnemonic::Tzcnt, Mnemonic::Movbe, Mnemonic::Cmpxchg8b,
];

fn scalar_operand(k: K) -> bool {
    matches!(
        k,
        K::mem
            | K::r8_or_mem
            | K::r16_or_mem
            | K::r32_or_mem
            | K::r64_or_mem
            | K::r8_reg
            | K::r8_opcode
            | K::r16_reg
            | K::r16_reg_mem
            | K::r16_rm
            | K::r16_opcode
            | K::r32_reg
            | K::r32_reg_mem
            | K::r32_rm
            | K::r32_opcode
            | K::r64_reg
            | K::r64_reg_mem
            | K::r64_rm
            | K::r64_opcode
            | K::seg_reg
            | K::cr_reg
            | K::dr_reg
            | K::es
            | K::cs
            | K::ss
            | K::ds
            | K::fs
            | K::gs
            | K::al
            | K::cl
            | K::ax
            | K::dx
            | K::eax
            | K::rax
            | K::imm8
            | K::imm8_const_1
            | K::imm8sex16
            | K::imm8sex32
            | K::imm8sex64
            | K::imm16
            | K::imm32
            | K::imm32sex64
            | K::imm64
    )
}

fn vector_operand(k: K) -> bool {
    crate::conformance::native_vector::is_vector_register_kind(k)
}

/// The forms of one bitness: core integer, other scalar ones the interpreter implements,
/// x87/MMX/SSE ones it implements, and the rest (which must raise #UD on every engine).
struct Tables {
    core: Vec<Code>,
    scalar: Vec<Code>,
    vector: Vec<Code>,
    missing: Vec<Code>,
}

fn tables(bits: u32) -> &'static Tables {
    static T: [OnceLock<Tables>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match bits {
        16 => 0,
        32 => 1,
        _ => 2,
    };
    T[slot].get_or_init(|| {
        let mut t = Tables {
            core: Vec::new(),
            scalar: Vec::new(),
            vector: Vec::new(),
            missing: Vec::new(),
        };
        for code in Code::values() {
            let op = code.op_code();
            let valid = match bits {
                16 => op.mode16(),
                32 => op.mode32(),
                _ => op.mode64(),
            };
            if !valid
                || op.encoding() != EncodingKind::Legacy
                || code.mnemonic() == Mnemonic::INVALID
            {
                continue;
            }
            let kinds: Vec<K> = (0..op.op_count()).map(|i| op.op_kind(i)).collect();
            let fillable = kinds
                .iter()
                .all(|&k| scalar_operand(k) || vector_operand(k));
            // MOVSD and CMPSD name both a string and an SSE instruction.
            let sse_string_name = matches!(code.mnemonic(), Mnemonic::Movsd | Mnemonic::Cmpsd)
                && kinds.iter().any(|&k| vector_operand(k));
            if fillable && (sse_string_name || !emulator::interp::implements(code.mnemonic())) {
                t.missing.push(code);
            } else if kinds.iter().all(|&k| scalar_operand(k)) {
                if CORE.contains(&code.mnemonic()) {
                    t.core.push(code);
                } else {
                    t.scalar.push(code);
                }
            } else if kinds
                .iter()
                .all(|&k| scalar_operand(k) || vector_operand(k))
            {
                t.vector.push(code);
            }
        }
        t
    })
}

/// One random instruction for `env`, encoded; `None` if the draw cannot be encoded.
pub fn instruction(rng: &mut Rng, env: &Env, code_len: u64) -> Option<Vec<u8>> {
    let t = tables(env.bits());
    let list = match rng.below(40) {
        0..=23 => &t.core,
        24..=35 => &t.scalar,
        36..=38 if !t.vector.is_empty() => &t.vector,
        _ => &t.missing,
    };
    let code = list[rng.below(list.len() as u64) as usize];
    let op = code.op_code();
    let mut ops = Vec::new();
    for i in 0..op.op_count() {
        ops.push(operand(rng, env, op.op_kind(i), code_len)?);
    }
    let mut instr = build(code, &ops)?;
    if rng.below(24) == 0 && instr.op_count() > 0 && instr.op0_kind() == iced_x86::OpKind::Memory {
        instr.set_has_lock_prefix(true); // #UD where LOCK is not allowed
    }
    let mut enc = Encoder::new(env.bits());
    enc.encode(&instr, env.code_start()).ok()?;
    Some(enc.take_buffer())
}

enum Op {
    R(Register),
    M(MemoryOperand),
    U(u32),
    S(i32),
    Q(u64),
}

fn build(code: Code, ops: &[Op]) -> Option<Instruction> {
    use Op::*;
    let i = match ops {
        [] => Ok(Instruction::with(code)),
        [R(a)] => Instruction::with1(code, *a),
        [M(a)] => Instruction::with1(code, *a),
        [U(a)] => Instruction::with1(code, *a),
        [S(a)] => Instruction::with1(code, *a),
        [R(a), R(b)] => Instruction::with2(code, *a, *b),
        [R(a), M(b)] => Instruction::with2(code, *a, *b),
        [M(a), R(b)] => Instruction::with2(code, *a, *b),
        [R(a), U(b)] => Instruction::with2(code, *a, *b),
        [R(a), S(b)] => Instruction::with2(code, *a, *b),
        [R(a), Q(b)] => Instruction::with2(code, *a, *b),
        [M(a), U(b)] => Instruction::with2(code, *a, *b),
        [M(a), S(b)] => Instruction::with2(code, *a, *b),
        [U(a), U(b)] => Instruction::with2(code, *a, *b),
        [U(a), R(b)] => Instruction::with2(code, *a, *b),
        [R(a), R(b), R(c)] => Instruction::with3(code, *a, *b, *c),
        [R(a), R(b), U(c)] => Instruction::with3(code, *a, *b, *c),
        [R(a), R(b), S(c)] => Instruction::with3(code, *a, *b, *c),
        [R(a), M(b), U(c)] => Instruction::with3(code, *a, *b, *c),
        [R(a), M(b), S(c)] => Instruction::with3(code, *a, *b, *c),
        [M(a), R(b), R(c)] => Instruction::with3(code, *a, *b, *c),
        [M(a), R(b), U(c)] => Instruction::with3(code, *a, *b, *c),
        _ => return None,
    };
    i.ok()
}

fn nth(first: Register, i: u64) -> Register {
    Register::values()
        .nth(first as usize + i as usize)
        .unwrap_or(first)
}

/// A GPR of `width` bits: mostly not the stack pointer.
fn gpr(rng: &mut Rng, env: &Env, width: u32) -> Register {
    let n = if env.bits() == 64 { 16 } else { 8 };
    let mut i = rng.below(n);
    if i == 4 && rng.below(8) != 0 {
        i = rng.below(4);
    }
    match width {
        8 if env.bits() == 64 && i >= 4 => nth(Register::SPL, i - 4),
        8 => nth(Register::AL, i),
        16 => nth(Register::AX, i),
        32 => nth(Register::EAX, i),
        _ => nth(Register::RAX, i),
    }
}

fn operand(rng: &mut Rng, env: &Env, k: K, code_len: u64) -> Option<Op> {
    let width_of = |k: K| match k {
        K::r8_or_mem | K::r8_reg | K::r8_opcode => 8,
        K::r16_or_mem | K::r16_reg | K::r16_reg_mem | K::r16_rm | K::r16_opcode => 16,
        K::r32_or_mem | K::r32_reg | K::r32_reg_mem | K::r32_rm | K::r32_opcode => 32,
        _ => 64,
    };
    Some(match k {
        K::mem => Op::M(memory(rng, env, code_len)),
        K::r8_or_mem
        | K::r16_or_mem
        | K::r32_or_mem
        | K::r64_or_mem
        | K::mm_or_mem
        | K::xmm_or_mem
            if rng.below(2) == 0 =>
        {
            Op::M(memory(rng, env, code_len))
        }
        K::mm_or_mem | K::mm_reg | K::mm_rm => Op::R(nth(Register::MM0, rng.below(8))),
        K::xmm_or_mem | K::xmm_reg | K::xmm_rm => Op::R(nth(Register::XMM0, rng.below(8))),
        K::st0 => Op::R(Register::ST0),
        K::sti_opcode => Op::R(nth(Register::ST0, rng.below(8))),
        K::r8_or_mem
        | K::r8_reg
        | K::r8_opcode
        | K::r16_or_mem
        | K::r16_reg
        | K::r16_reg_mem
        | K::r16_rm
        | K::r16_opcode
        | K::r32_or_mem
        | K::r32_reg
        | K::r32_reg_mem
        | K::r32_rm
        | K::r32_opcode
        | K::r64_or_mem
        | K::r64_reg
        | K::r64_reg_mem
        | K::r64_rm
        | K::r64_opcode => Op::R(gpr(rng, env, width_of(k))),
        K::seg_reg => Op::R(nth(Register::ES, rng.below(6))),
        K::cr_reg => Op::R(
            [Register::CR0, Register::CR2, Register::CR3, Register::CR4][rng.below(4) as usize],
        ),
        K::dr_reg => Op::R(nth(Register::DR0, rng.below(8))),
        K::es => Op::R(Register::ES),
        K::cs => Op::R(Register::CS),
        K::ss => Op::R(Register::SS),
        K::ds => Op::R(Register::DS),
        K::fs => Op::R(Register::FS),
        K::gs => Op::R(Register::GS),
        K::al => Op::R(Register::AL),
        K::cl => Op::R(Register::CL),
        K::ax => Op::R(Register::AX),
        K::dx => Op::R(Register::DX),
        K::eax => Op::R(Register::EAX),
        K::rax => Op::R(Register::RAX),
        K::imm8_const_1 => Op::U(1),
        K::imm8 => Op::U(interesting(rng) as u8 as u32),
        K::imm16 => Op::U(interesting(rng) as u16 as u32),
        K::imm32 => Op::U(interesting(rng) as u32),
        K::imm8sex16 | K::imm8sex32 | K::imm8sex64 => Op::S(interesting(rng) as i8 as i32),
        K::imm32sex64 => Op::S(interesting(rng) as i32),
        K::imm64 => Op::Q(interesting(rng)),
        _ => return None,
    })
}

/// A memory operand: the data area (most), the case's code, the stack, a faulting page, or a
/// random base register with a small displacement.
/// Float patterns worth loading: zeros, ones, the smallest and largest of each format,
/// denormals, infinities, quiet and signaling NaNs, and numbers whose results round.
const FLOAT_EDGES: [(u64, bool); 16] = [
    (0x0000_0000_0000_0000, true),
    (0x8000_0000_0000_0000, true),
    (0x3FF0_0000_0000_0000, true),
    (0x3FD5_5555_5555_5555, true),
    (0x0000_0000_0000_0001, true),
    (0x0010_0000_0000_0000, true),
    (0x7FEF_FFFF_FFFF_FFFF, true),
    (0x7FF0_0000_0000_0000, true),
    (0xFFF8_0000_0000_0000, true),
    (0x7FF4_0000_0000_0000, true),
    (0x43E0_0000_0000_0000, true),
    (0x4009_21FB_5444_2D18, true),
    (0x0000_0001, false),
    (0x7F80_0001, false),
    (0x3EAA_AAAB, false),
    (0xFF7F_FFFF, false),
];

/// Stores a float pattern into the data area and loads it onto the x87 stack (FLD m32/m64,
/// or FILD of the same bits), so the x87 forms that follow work on interesting values.
pub fn x87_load(rng: &mut Rng, env: &Env) -> Option<Vec<u8>> {
    let (bits, double) = match rng.below(3) {
        0 => FLOAT_EDGES[rng.below(FLOAT_EDGES.len() as u64) as usize],
        // A random sign and significand with an exponent near 1.0, or anywhere.
        1 => (
            rng.next_u64() & 0x800F_FFFF_FFFF_FFFF | ((0x3F0 + rng.below(0x20)) << 52),
            true,
        ),
        _ => (rng.next_u64(), rng.below(2) == 0),
    };
    let at = (env.data() + rng.below(0xF00)) & !7;
    let mem = |off: u64| {
        let mut m = MemoryOperand::with_displ(
            at.wrapping_add(off).wrapping_sub(env.ds_base()) & 0xFFFF_FFFF,
            if env.bits() == 16 { 2 } else { 4 },
        );
        if env.bits() == 16 {
            m.displacement &= 0xFFFF;
        }
        m
    };
    let mut list = vec![Instruction::with2(Code::Mov_rm32_imm32, mem(0), bits as u32).ok()?];
    if double {
        list.push(Instruction::with2(Code::Mov_rm32_imm32, mem(4), (bits >> 32) as u32).ok()?);
    }
    let load = match (double, rng.below(4)) {
        (true, 0) => Code::Fild_m64int,
        (false, 0) => Code::Fild_m32int,
        (true, _) => Code::Fld_m64fp,
        (false, _) => Code::Fld_m32fp,
    };
    list.push(Instruction::with1(load, mem(0)).ok()?);
    let mut out = Vec::new();
    for mut ins in list {
        if env.bits() == 16 {
            // Mov_rm32_imm32 needs the operand-size prefix in 16-bit code; iced adds it.
            ins.set_memory_displ_size(2);
        }
        let mut enc = Encoder::new(env.bits());
        enc.encode(&ins, env.code_start()).ok()?;
        out.extend(enc.take_buffer());
    }
    Some(out)
}

fn memory(rng: &mut Rng, env: &Env, code_len: u64) -> MemoryOperand {
    let (lin, seg) = match rng.below(16) {
        0..=8 => (env.data() + rng.below(0xF00), Register::None),
        9 | 10 => {
            let (at, seg) = env.code_alias();
            (at + rng.below(code_len.max(1) + 16), seg)
        }
        11 => (env.stack_top() - 8 - rng.below(0x100), Register::SS),
        12 => {
            let pages = env.fault_pages();
            if pages.is_empty() {
                (env.data() + rng.below(0xF00), Register::None)
            } else {
                (
                    pages[rng.below(pages.len() as u64) as usize] + rng.below(0x1000),
                    Register::None,
                )
            }
        }
        _ => {
            let width = env
                .bits()
                .max(16)
                .min(if env.bits() == 16 { 16 } else { 64 });
            let base = match env.bits() {
                16 => {
                    [Register::BX, Register::SI, Register::DI, Register::BP][rng.below(4) as usize]
                }
                _ => gpr(rng, env, width),
            };
            let disp = rng.below(0x100) as i64 - 0x80;
            return MemoryOperand::with_base_displ(base, disp);
        }
    };
    // The address as the segment sees it: DS/ES/SS bases differ in 16-bit modes.
    let base = match seg {
        Register::None => env.ds_base(),
        Register::SS => env.ss_base(),
        _ => env.code_alias_base(),
    };
    let off = lin.wrapping_sub(base);
    let displ_size = if env.bits() == 16 { 2 } else { 4 };
    let mut m = MemoryOperand::with_displ(
        off & if displ_size == 2 { 0xFFFF } else { 0xFFFF_FFFF },
        displ_size,
    );
    m.segment_prefix = seg;
    m
}

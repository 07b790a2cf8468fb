//! The instruction forms `conformance native` tests, their random operands, and their undefined flags.
//! Teaches: which parts of an x86 result the architecture leaves open, and why a test must say so.
//!
//! Forms are iced-x86 `Code`s chosen by mnemonic (64-bit mode, legacy encoding, operands we can
//! fill in: registers, `[r15+disp]` memory in the data page, immediates), plus hand-written string
//! instructions with and without REP. RSP (the stack) and R15 (the data-page base) are never
//! chosen as random operands.

use iced_x86::{
    Code, Encoder, EncodingKind, Instruction, MemoryOperand, Mnemonic, OpCodeOperandKind,
};
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter, Register};

use emulator::cpu::state::flags::{AF, CF, OF, PF, SF, ZF};
use emulator::cpu::state::reg;

use super::native::{Rng, DATA, STACK_TOP};

/// One testable instruction form.
#[derive(Debug, Clone)]
pub struct Form {
    /// `Add_rm64_r64`, or `rep_movsb` for the hand-written string forms.
    pub name: String,
    kind: FormKind,
}

#[derive(Debug, Clone)]
enum FormKind {
    Coded(Code),
    /// Raw bytes of a string instruction (with its prefixes).
    String(&'static [u8]),
}

/// One generated case: code bytes and the register state before them (the data page is separate).
#[derive(Debug, Clone)]
pub struct Case {
    pub code: Vec<u8>,
    pub gpr: [u64; 16],
    pub rflags: u64,
    /// Status flags the architecture leaves undefined for this case (not compared).
    pub undefined_flags: u64,
    /// Registers whose result is undefined for this case (bit per GPR, not compared).
    pub undefined_regs: u16,
    /// The instruction as text, for failure reports.
    pub text: String,
}

const MNEMONICS: &[Mnemonic] = &[
    Mnemonic::Add,
    Mnemonic::Adc,
    Mnemonic::Sub,
    Mnemonic::Sbb,
    Mnemonic::And,
    Mnemonic::Or,
    Mnemonic::Xor,
    Mnemonic::Cmp,
    Mnemonic::Test,
    Mnemonic::Inc,
    Mnemonic::Dec,
    Mnemonic::Neg,
    Mnemonic::Not,
    Mnemonic::Shl,
    Mnemonic::Shr,
    Mnemonic::Sar,
    Mnemonic::Rol,
    Mnemonic::Ror,
    Mnemonic::Rcl,
    Mnemonic::Rcr,
    Mnemonic::Shld,
    Mnemonic::Shrd,
    Mnemonic::Mul,
    Mnemonic::Imul,
    Mnemonic::Div,
    Mnemonic::Idiv,
    Mnemonic::Bt,
    Mnemonic::Bts,
    Mnemonic::Btr,
    Mnemonic::Btc,
    Mnemonic::Bsf,
    Mnemonic::Bsr,
    Mnemonic::Popcnt,
    Mnemonic::Lzcnt,
    Mnemonic::Movzx,
    Mnemonic::Movsx,
    Mnemonic::Movsxd,
    Mnemonic::Xchg,
    Mnemonic::Xadd,
    Mnemonic::Cmpxchg,
    Mnemonic::Cmovo,
    Mnemonic::Cmovno,
    Mnemonic::Cmovb,
    Mnemonic::Cmovae,
    Mnemonic::Cmove,
    Mnemonic::Cmovne,
    Mnemonic::Cmovbe,
    Mnemonic::Cmova,
    Mnemonic::Cmovs,
    Mnemonic::Cmovns,
    Mnemonic::Cmovp,
    Mnemonic::Cmovnp,
    Mnemonic::Cmovl,
    Mnemonic::Cmovge,
    Mnemonic::Cmovle,
    Mnemonic::Cmovg,
    Mnemonic::Seto,
    Mnemonic::Setno,
    Mnemonic::Setb,
    Mnemonic::Setae,
    Mnemonic::Sete,
    Mnemonic::Setne,
    Mnemonic::Setbe,
    Mnemonic::Seta,
    Mnemonic::Sets,
    Mnemonic::Setns,
    Mnemonic::Setp,
    Mnemonic::Setnp,
    Mnemonic::Setl,
    Mnemonic::Setge,
    Mnemonic::Setle,
    Mnemonic::Setg,
    Mnemonic::Bswap,
    Mnemonic::Lea,
    Mnemonic::Cbw,
    Mnemonic::Cwde,
    Mnemonic::Cdqe,
    Mnemonic::Cwd,
    Mnemonic::Cdq,
    Mnemonic::Cqo,
    Mnemonic::Push,
    Mnemonic::Pop,
    Mnemonic::Mov,
];

/// The undefined parts of results that are not compared: (instructions, what, why). [`fix_up`]
/// applies them per case; `vmscope conformance native --rules` prints them.
pub const UNDEFINED_RULES: &[(&str, &str, &str)] = &[
    (
        "AND OR XOR TEST",
        "AF",
        "SDM: AF is undefined after logical operations",
    ),
    (
        "SHL SHR SAR",
        "AF; OF if count > 1",
        "SDM: undefined for shifts (count 0 changes nothing)",
    ),
    (
        "ROL ROR RCL RCR",
        "OF if masked count > 1",
        "SDM: OF is defined only for 1-bit rotates",
    ),
    (
        "SHLD SHRD",
        "AF; OF if count > 1",
        "SDM; a 16-bit count > 16 is not drawn (result undefined)",
    ),
    ("MUL IMUL", "SF ZF AF PF", "SDM: only CF and OF are defined"),
    (
        "DIV IDIV",
        "all six status flags",
        "SDM: flags undefined; #DE inputs are not drawn",
    ),
    (
        "BT BTS BTR BTC",
        "OF SF AF PF",
        "SDM: only CF is defined (ZF unchanged)",
    ),
    (
        "BSF BSR",
        "CF OF SF AF PF; destination if source is 0",
        "SDM: only ZF is defined",
    ),
    ("LZCNT", "OF SF AF PF", "SDM: only ZF and CF are defined"),
];

/// Forms left out on purpose, with the reason.
const EXCLUDED: &[(Code, &str)] = &[
    (Code::Bswap_r16, "BSWAP r16: result undefined (SDM)"),
    (
        Code::Movsxd_r16_rm16,
        "MOVSXD r16: differs between Intel and AMD",
    ),
    (
        Code::Movsxd_r32_rm32,
        "MOVSXD r32: unusual encoding, vendor-specific",
    ),
];

const STRINGS: &[(&str, &[u8])] = &[
    ("movsb", &[0xA4]),
    ("movsw", &[0x66, 0xA5]),
    ("movsd", &[0xA5]),
    ("movsq", &[0x48, 0xA5]),
    ("rep_movsb", &[0xF3, 0xA4]),
    ("rep_movsq", &[0xF3, 0x48, 0xA5]),
    ("stosb", &[0xAA]),
    ("stosd", &[0xAB]),
    ("rep_stosb", &[0xF3, 0xAA]),
    ("rep_stosw", &[0xF3, 0x66, 0xAB]),
    ("rep_stosq", &[0xF3, 0x48, 0xAB]),
    ("lodsb", &[0xAC]),
    ("lodsq", &[0x48, 0xAD]),
    ("rep_lodsd", &[0xF3, 0xAD]),
    ("cmpsb", &[0xA6]),
    ("cmpsd", &[0xA7]),
    ("repe_cmpsb", &[0xF3, 0xA6]),
    ("repne_cmpsw", &[0xF2, 0x66, 0xA7]),
    ("repe_cmpsq", &[0xF3, 0x48, 0xA7]),
    ("scasb", &[0xAE]),
    ("scasq", &[0x48, 0xAF]),
    ("repne_scasb", &[0xF2, 0xAE]),
    ("repe_scasd", &[0xF3, 0xAF]),
];

fn supported_operand(k: OpCodeOperandKind) -> bool {
    use OpCodeOperandKind as K;
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
            | K::r16_rm
            | K::r16_opcode
            | K::r32_reg
            | K::r32_rm
            | K::r32_opcode
            | K::r64_reg
            | K::r64_rm
            | K::r64_opcode
            | K::al
            | K::cl
            | K::ax
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

/// Every form, in a stable order.
pub fn all_forms() -> Vec<Form> {
    let mut forms = Vec::new();
    for code in Code::values() {
        let op = code.op_code();
        if !op.mode64()
            || op.encoding() != EncodingKind::Legacy
            || !MNEMONICS.contains(&code.mnemonic())
            || EXCLUDED.iter().any(|e| e.0 == code)
            || !(0..op.op_count()).all(|i| supported_operand(op.op_kind(i)))
        {
            continue;
        }
        // MOV to/from the moffs and segment forms are filtered by operand kinds; keep the rest.
        forms.push(Form {
            name: format!("{code:?}"),
            kind: FormKind::Coded(code),
        });
    }
    for (name, bytes) in STRINGS {
        forms.push(Form {
            name: name.to_string(),
            kind: FormKind::String(bytes),
        });
    }
    forms
}

/// The forms named in `list` (comma-separated, case-insensitive; `all` = every form; each entry
/// selects the forms whose name starts with it: `Add_rm64_r64`, `shld`, `rep_`).
pub fn select_forms(list: &str) -> Vec<Form> {
    let all = all_forms();
    if list.trim().eq_ignore_ascii_case("all") {
        return all;
    }
    let wanted: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    all.into_iter()
        .filter(|f| {
            let n = f.name.to_ascii_lowercase();
            wanted
                .iter()
                .any(|w| !w.is_empty() && n.starts_with(w.as_str()))
        })
        .collect()
}

const R8: [Register; 8] = [
    Register::AL,
    Register::CL,
    Register::DL,
    Register::BL,
    Register::AH,
    Register::CH,
    Register::DH,
    Register::BH,
];
const R8X: [Register; 10] = [
    Register::SIL,
    Register::DIL,
    Register::BPL,
    Register::R8L,
    Register::R9L,
    Register::R10L,
    Register::R11L,
    Register::R12L,
    Register::R13L,
    Register::R14L,
];

/// A random GPR index other than RSP and R15.
fn random_gpr(rng: &mut Rng) -> usize {
    loop {
        let r = rng.below(15) as usize;
        if r != reg::RSP {
            return r;
        }
    }
}

fn reg_of_width(rng: &mut Rng, bits: u32) -> Register {
    let base = match bits {
        8 => {
            return if rng.below(2) == 0 {
                R8[rng.below(8) as usize]
            } else {
                R8X[rng.below(10) as usize]
            }
        }
        16 => Register::AX,
        32 => Register::EAX,
        _ => Register::RAX,
    };
    // Register numbers of one width are consecutive in iced: AX, CX, DX, BX, SP, BP, SI, DI, R8W…
    let i = random_gpr(rng);
    Register::values().nth(base as usize + i).unwrap()
}

/// An "interesting" random 64-bit value: edges of every width more often than chance gives.
pub fn interesting(rng: &mut Rng) -> u64 {
    const EDGES: [u64; 12] = [
        0,
        1,
        0x7F,
        0x80,
        0xFF,
        0x7FFF,
        0x8000,
        0xFFFF,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_FFFF,
        0x8000_0000_0000_0000,
    ];
    match rng.below(8) {
        0..=3 => rng.next_u64(),
        4 => EDGES[rng.below(12) as usize] | (rng.next_u64() & !0xFFFF_FFFF & rng.mask()),
        5 => EDGES[rng.below(12) as usize].wrapping_neg(),
        6 => rng.below(70),
        _ => rng.next_u64() >> rng.below(64),
    }
}

fn data_mem(rng: &mut Rng) -> MemoryOperand {
    MemoryOperand::with_base_displ(Register::R15, rng.below(3072) as i64)
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

/// Makes one random case of `form`; `None` when this draw is not a valid case (the caller draws
/// again), e.g. a division that would fault.
pub fn generate(form: &Form, rng: &mut Rng, data: &[u8]) -> Option<Case> {
    let mut gpr = [0u64; 16];
    for (i, g) in gpr.iter_mut().enumerate() {
        *g = interesting(rng);
        if i == reg::RSP {
            *g = STACK_TOP;
        } else if i == 15 {
            *g = DATA;
        }
    }
    let rflags =
        0x3002 | 0x200 | (rng.next_u64() & (CF | PF | AF | ZF | SF | OF)) | (rng.below(2) << 10);
    let code = match form.kind {
        FormKind::String(bytes) => {
            gpr[reg::RSI] = DATA + 1024 + rng.below(512);
            gpr[reg::RDI] = DATA + 2560 + rng.below(512);
            gpr[reg::RCX] = rng.below(40);
            if rng.below(4) == 0 {
                // Make REPE CMPS run longer: a stretch of equal bytes.
                gpr[reg::RDI] = gpr[reg::RSI];
            }
            return Some(Case {
                code: bytes.to_vec(),
                gpr,
                rflags,
                undefined_flags: 0,
                undefined_regs: 0,
                text: form.name.clone(),
            });
        }
        FormKind::Coded(code) => code,
    };
    let op = code.op_code();
    let mut ops = Vec::new();
    for i in 0..op.op_count() {
        use OpCodeOperandKind as K;
        let k = op.op_kind(i);
        let o = match k {
            K::mem => {
                if code.mnemonic() == Mnemonic::Lea && rng.below(2) == 0 {
                    let base = reg_of_width(rng, 64);
                    let index = reg_of_width(rng, 64);
                    Op::M(MemoryOperand::new(
                        base,
                        index,
                        1 << rng.below(4),
                        rng.next_u64() as i32 as i64,
                        4,
                        false,
                        Register::None,
                    ))
                } else {
                    Op::M(data_mem(rng))
                }
            }
            K::r8_or_mem | K::r16_or_mem | K::r32_or_mem | K::r64_or_mem if rng.below(2) == 0 => {
                Op::M(data_mem(rng))
            }
            K::r8_or_mem | K::r8_reg | K::r8_opcode => Op::R(reg_of_width(rng, 8)),
            K::r16_or_mem | K::r16_reg | K::r16_rm | K::r16_opcode => Op::R(reg_of_width(rng, 16)),
            K::r32_or_mem | K::r32_reg | K::r32_rm | K::r32_opcode => Op::R(reg_of_width(rng, 32)),
            K::r64_or_mem | K::r64_reg | K::r64_rm | K::r64_opcode => Op::R(reg_of_width(rng, 64)),
            K::al => Op::R(Register::AL),
            K::cl => Op::R(Register::CL),
            K::ax => Op::R(Register::AX),
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
        };
        ops.push(o);
    }
    let instr = build(code, &ops)?;
    let mut enc = Encoder::new(64);
    enc.encode(&instr, super::native::CODE).ok()?;
    let bytes = enc.take_buffer();
    let mut case = Case {
        code: bytes,
        gpr,
        rflags,
        undefined_flags: 0,
        undefined_regs: 0,
        text: String::new(),
    };
    fix_up(code, &instr, &mut case, rng, data)?;
    let mut text = String::new();
    let mut dec = Decoder::with_ip(64, &case.code, super::native::CODE, DecoderOptions::NONE);
    IntelFormatter::new().format(&dec.decode(), &mut text);
    case.text = text;
    Some(case)
}

/// The GPR index and width (bits) of a register operand.
fn gpr_slot(r: Register) -> (usize, u32, u32) {
    // (index, width, shift) — AH..BH are bits 8..15 of RAX..RBX.
    match r {
        Register::AH | Register::CH | Register::DH | Register::BH => {
            (r as usize - Register::AH as usize, 8, 8)
        }
        _ => (r.full_register().number(), (r.size() * 8) as u32, 0),
    }
}

fn read_operand(i: &Instruction, n: u32, case: &Case, data: &[u8]) -> u64 {
    let bits = (i.memory_size().size().max(1) * 8) as u32;
    match i.op_kind(n) {
        iced_x86::OpKind::Register => {
            let (idx, w, sh) = gpr_slot(i.op_register(n));
            (case.gpr[idx] >> sh) & width_mask(w)
        }
        iced_x86::OpKind::Memory => {
            let off = i.memory_displacement64() as usize;
            let mut v = 0u64;
            for b in (0..(bits / 8) as usize).rev() {
                v = v << 8 | data[off + b] as u64;
            }
            v
        }
        _ => i.immediate(n),
    }
}

fn write_reg(case: &mut Case, r: Register, value: u64) {
    let (idx, w, sh) = gpr_slot(r);
    let m = width_mask(w) << sh;
    case.gpr[idx] = (case.gpr[idx] & !m) | ((value << sh) & m);
}

fn width_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Per-form adjustments and the undefined parts of the result (SDM Vol. 2, each instruction's
/// "Flags Affected"). Returns `None` to reject the draw.
fn fix_up(code: Code, i: &Instruction, case: &mut Case, rng: &mut Rng, data: &[u8]) -> Option<()> {
    use Mnemonic as M;
    let op = code.op_code();
    let width = match op.op_kind(0) {
        OpCodeOperandKind::r8_or_mem | OpCodeOperandKind::r8_reg | OpCodeOperandKind::al => 8,
        OpCodeOperandKind::r16_or_mem | OpCodeOperandKind::r16_reg | OpCodeOperandKind::ax => 16,
        OpCodeOperandKind::r32_or_mem | OpCodeOperandKind::r32_reg | OpCodeOperandKind::eax => 32,
        _ => 64,
    };
    let count_mask = if width == 64 { 0x3F } else { 0x1F };
    let shift_count = |case: &Case| -> u64 {
        let last = i.op_count() - 1;
        let c = if i.op_kind(last) == iced_x86::OpKind::Register {
            case.gpr[reg::RCX] & 0xFF
        } else if i.op_count() == 1 {
            1 // D0/D1 forms: the count 1 is implicit
        } else {
            i.immediate(last)
        };
        c & count_mask
    };
    match code.mnemonic() {
        M::And | M::Or | M::Xor | M::Test => case.undefined_flags = AF,
        M::Shl | M::Shr | M::Sar => {
            let c = shift_count(case);
            if c != 0 {
                case.undefined_flags = AF | if c > 1 { OF } else { 0 };
            }
        }
        M::Rol | M::Ror | M::Rcl | M::Rcr => {
            let c = shift_count(case);
            if c != 1 && c != 0 {
                case.undefined_flags = OF;
            }
        }
        M::Shld | M::Shrd => {
            let c = shift_count(case);
            if width == 16 && c > 16 {
                return None; // result and flags undefined (SDM: count > operand size)
            }
            if c != 0 {
                case.undefined_flags = AF | if c > 1 { OF } else { 0 };
            }
        }
        M::Mul | M::Imul => case.undefined_flags = SF | ZF | AF | PF,
        M::Div | M::Idiv => {
            case.undefined_flags = CF | OF | SF | ZF | AF | PF;
            fix_division(code.mnemonic() == M::Idiv, width, i, case, rng, data)?;
        }
        M::Bt | M::Bts | M::Btr | M::Btc => {
            case.undefined_flags = OF | SF | AF | PF;
            // A register bit offset with a memory operand reaches beyond it: keep it near.
            if i.op_kind(0) == iced_x86::OpKind::Memory
                && i.op_kind(1) == iced_x86::OpKind::Register
            {
                let r = i.op_register(1);
                write_reg(case, r, rng.below(256));
            }
        }
        M::Bsf | M::Bsr => {
            case.undefined_flags = CF | OF | SF | AF | PF;
            if read_operand(i, 1, case, data) == 0 {
                // Destination undefined when the source is 0 (SDM; CPUs leave it unchanged).
                let (idx, _, _) = gpr_slot(i.op_register(0));
                case.undefined_regs |= 1 << idx;
            }
        }
        M::Lzcnt => case.undefined_flags = OF | SF | AF | PF,
        _ => {}
    }
    Some(())
}

/// Division: draws the dividend's high half so the quotient fits (no #DE); rejects a zero divisor
/// and divisors that are themselves the dividend's registers.
fn fix_division(
    signed: bool,
    width: u32,
    i: &Instruction,
    case: &mut Case,
    rng: &mut Rng,
    data: &[u8],
) -> Option<()> {
    if i.op_kind(0) == iced_x86::OpKind::Register {
        let (idx, _, _) = gpr_slot(i.op_register(0));
        if idx == reg::RAX || idx == reg::RDX {
            return None;
        }
    }
    let divisor = read_operand(i, 0, case, data);
    if divisor == 0 {
        return None;
    }
    let m = width_mask(width);
    let low = if width == 8 {
        case.gpr[reg::RAX] & 0xFF
    } else {
        case.gpr[reg::RAX] & m
    };
    // Draw a quotient that fits and a remainder below the divisor, then form the dividend.
    let w = width as i32;
    let dividend: i128 = if signed {
        let d = sign_extend(divisor, width) as i128;
        let q = sign_extend(rng.next_u64() >> rng.below(64), width) as i128;
        let q = q.clamp(-(1i128 << (w - 1)) + 1, (1i128 << (w - 1)) - 1);
        let r = (rng.next_u64() as i128).rem_euclid(d.abs());
        let r = if (q < 0) != (d < 0) && q != 0 { -r } else { r };
        q * d + r
    } else {
        let q = (rng.next_u64() >> rng.below(64)) as u128 & m as u128;
        let r = rng.next_u64() as u128 % divisor as u128;
        (q * divisor as u128 + r) as i128
    };
    let _ = low;
    let lo = dividend as u128 as u64 & m;
    let hi = ((dividend >> width) as u128 as u64) & m;
    if width == 8 {
        case.gpr[reg::RAX] = (case.gpr[reg::RAX] & !0xFFFF) | (hi << 8) | lo;
    } else {
        case.gpr[reg::RAX] = (case.gpr[reg::RAX] & !m) | lo;
        case.gpr[reg::RDX] = (case.gpr[reg::RDX] & !m) | hi;
    }
    // The divisor may be a register the write above changed only if it is RAX/RDX (rejected).
    Some(())
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits >= 64 {
        v as i64
    } else {
        ((v << (64 - bits)) as i64) >> (64 - bits)
    }
}

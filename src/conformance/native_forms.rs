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

use emulator::cpu::state::flags::{AC, AF, CF, OF, PF, SF, ZF};
use emulator::cpu::state::reg;

use super::native::Rng;
use super::native_fixups;
use super::native_machine::{
    CodeMode, CODE, DATA, DATA_ALIAS16, NONCANONICAL, READONLY, STACK_TOP, UNMAPPED,
};
use super::native_raw;
use super::native_vector;

/// One testable instruction form.
#[derive(Debug, Clone)]
pub struct Form {
    /// `Add_rm64_r64`, or `rep_movsb` for the hand-written forms; compatibility-mode forms
    /// start with `32/` (`32/Daa`, `32/rep_movsb`).
    pub name: String,
    pub mode: CodeMode,
    kind: FormKind,
}

#[derive(Debug, Clone)]
enum FormKind {
    Coded(Code),
    /// Raw bytes of an instruction (with its prefixes): string instructions, faulting forms.
    Raw(&'static [u8]),
}

impl Form {
    /// An x87, MMX or SSE form (its cases start from a random x87/SSE state).
    pub fn is_vector(&self) -> bool {
        matches!(self.kind, FormKind::Coded(c) if self.mode == CodeMode::Long64 && native_vector::is_vector_form(c))
    }
}

/// One generated case: code bytes and the register state before them (the data page is separate).
#[derive(Debug, Clone)]
pub struct Case {
    /// 64-bit or compatibility mode.
    pub mode: CodeMode,
    pub code: Vec<u8>,
    pub gpr: [u64; 16],
    pub rflags: u64,
    /// Status flags the architecture leaves undefined for this case (not compared).
    pub undefined_flags: u64,
    /// Registers whose result is undefined for this case (bit per GPR, not compared).
    pub undefined_regs: u16,
    /// System flags this case's instruction changes, compared besides the status flags and DF.
    pub compare_flags: u64,
    /// The instruction as text, for failure reports.
    pub text: String,
    /// Bytes at the initial stack pointer (what POP, POPA, POP seg find).
    pub stack_init: Vec<u8>,
    /// The x87/SSE state before the instruction, for the vector forms (`native_vector`); their
    /// whole x87/SSE state is compared afterwards. `None`: the reset state, not compared.
    pub fpu: Option<Box<emulator::cpu::FpuState>>,
    /// FSW bits not compared for this form (`native_vector::fsw_not_compared`).
    pub fsw_not_compared: u16,
    /// The instruction's memory operand is accessed in parts (an m80, FLDENV's 14 or 28 bytes,
    /// FRSTOR's 94 or 108): they may be accessed in any order, so a #PF's CR2 is compared to the page.
    pub multi_part: bool,
    /// An MMX register is an operand: when the instruction faults, whether the x87 state had
    /// turned MMX-shaped is the CPU's choice (`native_vector::FSW_NOT_COMPARED`'s note).
    pub mmx_operand: bool,
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
    Mnemonic::Lahf,
    Mnemonic::Sahf,
    Mnemonic::Cmc,
    Mnemonic::Clc,
    Mnemonic::Stc,
    Mnemonic::Cld,
    Mnemonic::Std,
    Mnemonic::Cmpxchg8b,
    Mnemonic::Cmpxchg16b,
    Mnemonic::Enter,
    Mnemonic::Leave,
    Mnemonic::Pushf,
    Mnemonic::Pushfd,
    Mnemonic::Pushfq,
    Mnemonic::Popf,
    Mnemonic::Popfd,
    Mnemonic::Popfq,
    // The hint and NOP space (0F 0D, 0F 18–0F 1F): must leave everything but RIP alone.
    Mnemonic::Nop,
    Mnemonic::Reservednop,
    Mnemonic::Prefetch,
    Mnemonic::Prefetchw,
    Mnemonic::Prefetchnta,
    Mnemonic::Prefetcht0,
    Mnemonic::Prefetcht1,
    Mnemonic::Prefetcht2,
    Mnemonic::Cldemote,
    Mnemonic::Endbr32,
    Mnemonic::Endbr64,
    Mnemonic::Rdsspd,
    Mnemonic::Rdsspq,
    Mnemonic::Pause,
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
        "SDM: flags undefined (after a #DE nothing changed: all compared)",
    ),
    ("DAA DAS", "OF", "SDM: OF is undefined"),
    ("AAA AAS", "OF SF ZF PF", "SDM: only AF and CF are defined"),
    ("AAM AAD", "OF AF CF", "SDM: only SF ZF PF are defined"),
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
    (
        "ENTER",
        "draws whose nesting copies read FrameTemp's own slot",
        "measured: this CPU stores FrameTemp before copying the outer frame pointers; the SDM's order (and the interpreter's) copies first",
    ),
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
            | K::es
            | K::cs
            | K::ss
            | K::ds
            | K::fs
            | K::gs
    )
}

/// The coded forms of one mode.
fn coded_forms(mode: CodeMode) -> Vec<Form> {
    let mut forms = Vec::new();
    for code in Code::values() {
        let op = code.op_code();
        let (valid, prefix) = match mode {
            CodeMode::Long64 => (op.mode64(), ""),
            CodeMode::Compat32 => (op.mode32(), "32/"),
        };
        let vector = mode == CodeMode::Long64 && native_vector::is_vector_form(code);
        let wanted = MNEMONICS.contains(&code.mnemonic())
            || (mode == CodeMode::Compat32
                && native_raw::LEGACY_MNEMONICS.contains(&code.mnemonic()));
        if vector {
            forms.push(Form {
                name: format!("{prefix}{code:?}"),
                mode,
                kind: FormKind::Coded(code),
            });
            continue;
        }
        if !valid
            || op.encoding() != EncodingKind::Legacy
            || !wanted
            || EXCLUDED.iter().any(|e| e.0 == code)
            || !(0..op.op_count()).all(|i| supported_operand(op.op_kind(i)))
        {
            continue;
        }
        // MOV to/from the moffs and control/debug register forms are filtered by operand kinds.
        forms.push(Form {
            name: format!("{prefix}{code:?}"),
            mode,
            kind: FormKind::Coded(code),
        });
    }
    forms
}

/// Every form, in a stable order: 64-bit coded and raw forms, then compatibility-mode ones.
pub fn all_forms() -> Vec<Form> {
    let mut forms = Vec::new();
    for mode in [CodeMode::Long64, CodeMode::Compat32] {
        forms.extend(coded_forms(mode));
        for (name, bytes) in native_raw::raw_forms(mode) {
            forms.push(Form {
                name,
                mode,
                kind: FormKind::Raw(bytes),
            });
        }
    }
    forms
}

/// The forms named in `list` (comma-separated, case-insensitive): `all` = every form, `64` =
/// the 64-bit forms, `32` = the compatibility-mode forms, `vector` = the x87/MMX/SSE forms
/// (`native_vector`); any other entry selects the forms whose
/// name starts with it (`Add_rm64_r64`, `shld`, `rep_`, `32/daa`).
pub fn select_forms(list: &str) -> Vec<Form> {
    let wanted: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    all_forms()
        .into_iter()
        .filter(|f| {
            let n = f.name.to_ascii_lowercase();
            wanted.iter().any(|w| match w.as_str() {
                "all" => true,
                "64" => f.mode == CodeMode::Long64,
                "32" => f.mode == CodeMode::Compat32,
                "vector" => f.is_vector(),
                w => n.starts_with(w),
            })
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

/// A random GPR index other than RSP (and R15, the data-page base); EAX..EDI in 32-bit code.
fn random_gpr(rng: &mut Rng, mode: CodeMode) -> usize {
    let n = if mode == CodeMode::Long64 { 15 } else { 8 };
    loop {
        let r = rng.below(n) as usize;
        if r != reg::RSP {
            return r;
        }
    }
}

fn reg_of_width(rng: &mut Rng, bits: u32, mode: CodeMode) -> Register {
    let base = match bits {
        8 => {
            return if rng.below(2) == 0 || mode == CodeMode::Compat32 {
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
    let i = random_gpr(rng, mode);
    Register::values().nth(base as usize + i).unwrap()
}

/// The page a memory operand points into: mostly the data page; sometimes a page whose access
/// faults (not present, read-only, and in 64-bit mode a non-canonical address).
pub fn target_page(rng: &mut Rng, mode: CodeMode) -> u64 {
    match rng.below(40) {
        0 | 1 => UNMAPPED,
        2 | 3 => READONLY,
        4 | 5 if mode == CodeMode::Long64 => NONCANONICAL,
        _ => DATA,
    }
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

/// A memory operand in the case's data page: `[r15+disp]` in 64-bit code (R15 holds the page),
/// `[disp32]` (absolute) in 32-bit code. Its offset in the page is `displacement & 0xFFF`.
/// A memory operand for an x87/SSE form: 16-byte aligned three times in four (SSE's m128 must
/// be, and a misaligned one is #GP — which PVM then hands to KVM's emulator, not the CPU).
fn vector_mem(rng: &mut Rng) -> MemoryOperand {
    let off = rng.below(3072);
    let off = if rng.below(4) == 0 { off } else { off & !15 };
    MemoryOperand::with_base_displ(Register::R15, off as i64)
}

fn data_mem(rng: &mut Rng, mode: CodeMode, page: u64) -> MemoryOperand {
    let off = rng.below(3072);
    match mode {
        CodeMode::Long64 => MemoryOperand::with_base_displ(Register::R15, off as i64),
        // One in eight with 16-bit addressing (`[disp16]`, an 0x67 prefix) through the alias.
        CodeMode::Compat32 if rng.below(8) == 0 => MemoryOperand::with_displ(DATA_ALIAS16 + off, 2),
        CodeMode::Compat32 => MemoryOperand::with_displ(page + off, 4),
    }
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
        [U(a), U(b)] => Instruction::with2(code, *a, *b),
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
/// again), e.g. a division whose result the architecture leaves undefined.
pub fn generate(form: &Form, rng: &mut Rng, data: &[u8]) -> Option<Case> {
    let mode = form.mode;
    let page = target_page(rng, mode);
    let mut gpr = [0u64; 16];
    for (i, g) in gpr.iter_mut().enumerate() {
        *g = interesting(rng);
        if mode == CodeMode::Compat32 {
            *g &= 0xFFFF_FFFF;
        }
        if i == reg::RSP {
            *g = STACK_TOP;
        } else if i == 15 && mode == CodeMode::Long64 {
            *g = page;
        }
    }
    let mut rflags =
        0x3002 | 0x200 | (rng.next_u64() & (CF | PF | AF | ZF | SF | OF)) | (rng.below(2) << 10);
    if rng.below(16) == 0 && mode == CodeMode::Long64 {
        // Alignment checking (CR0.AM is set): a misaligned access at CPL 3 is an #AC. Not in
        // 32-bit code: PVM runs it in KVM's emulator, which never raises #AC.
        rflags |= AC;
    }
    if rng.below(24) == 0 {
        // Single-step: a #DB trap after the instruction (after each iteration of a REP).
        rflags |= emulator::cpu::state::flags::TF;
    }
    let mut stack_init = vec![0u8; 64];
    for b in stack_init.iter_mut() {
        *b = rng.next_u64() as u8;
    }
    let mut case = Case {
        mode,
        code: Vec::new(),
        gpr,
        rflags,
        undefined_flags: 0,
        undefined_regs: 0,
        compare_flags: 0,
        text: form.name.clone(),
        stack_init,
        fpu: None,
        fsw_not_compared: 0,
        multi_part: false,
        mmx_operand: false,
    };
    let code = match form.kind {
        FormKind::Raw(bytes) => {
            case.code = bytes.to_vec();
            native_raw::fix_up_raw(&form.name, &mut case, rng, page);
            return Some(case);
        }
        FormKind::Coded(code) => code,
    };
    if mode == CodeMode::Long64 && native_vector::is_vector_form(code) {
        let mut state = native_vector::random_state(rng);
        if matches!(code.mnemonic(), Mnemonic::Fprem | Mnemonic::Fprem1) {
            native_vector::fix_up_remainder(&mut state, rng);
        }
        case.fpu = Some(Box::new(state));
        case.fsw_not_compared = native_vector::fsw_not_compared(code.mnemonic());
    }
    let op = code.op_code();
    let mut ops = Vec::new();
    for i in 0..op.op_count() {
        use OpCodeOperandKind as K;
        let k = op.op_kind(i);
        let o = match k {
            K::mem | K::mm_or_mem | K::xmm_or_mem if case.fpu.is_some() && rng.below(2) == 0 => {
                Op::M(vector_mem(rng))
            }
            k if native_vector::is_vector_register_kind(k) => {
                Op::R(native_vector::register(rng, k)?)
            }
            K::r32_reg_mem => Op::R(reg_of_width(rng, 32, mode)),
            K::r64_reg_mem => Op::R(reg_of_width(rng, 64, mode)),
            K::mem => {
                if code.mnemonic() == Mnemonic::Lea && rng.below(2) == 0 {
                    Op::M(native_raw::random_address(rng, mode))
                } else {
                    Op::M(data_mem(rng, mode, page))
                }
            }
            K::r8_or_mem | K::r16_or_mem | K::r32_or_mem | K::r64_or_mem if rng.below(2) == 0 => {
                Op::M(data_mem(rng, mode, page))
            }
            K::r8_or_mem | K::r8_reg | K::r8_opcode => Op::R(reg_of_width(rng, 8, mode)),
            K::r16_or_mem | K::r16_reg | K::r16_rm | K::r16_opcode => {
                Op::R(reg_of_width(rng, 16, mode))
            }
            K::r32_or_mem | K::r32_reg | K::r32_rm | K::r32_opcode => {
                Op::R(reg_of_width(rng, 32, mode))
            }
            K::r64_or_mem | K::r64_reg | K::r64_rm | K::r64_opcode => {
                Op::R(reg_of_width(rng, 64, mode))
            }
            K::al => Op::R(Register::AL),
            K::cl => Op::R(Register::CL),
            K::ax => Op::R(Register::AX),
            K::eax => Op::R(Register::EAX),
            K::rax => Op::R(Register::RAX),
            K::es => Op::R(Register::ES),
            K::cs => Op::R(Register::CS),
            K::ss => Op::R(Register::SS),
            K::ds => Op::R(Register::DS),
            K::fs => Op::R(Register::FS),
            K::gs => Op::R(Register::GS),
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
    let mut enc = Encoder::new(mode.bits());
    enc.encode(&instr, CODE).ok()?;
    case.code = enc.take_buffer();
    native_fixups::fix_up(code, &instr, &mut case, rng, data)?;
    native_raw::fix_up_legacy(code, &instr, &mut case, rng, data)?;
    let size = instr.memory_size().size() as u64;
    case.multi_part = size > 8 && size != 16;
    case.mmx_operand = (0..instr.op_count())
        .any(|i| instr.op_kind(i) == iced_x86::OpKind::Register && instr.op_register(i).is_mm());
    if mode == CodeMode::Long64
        && instr.memory_base() == Register::R15
        && size > 1
        && rng.below(32) == 0
    {
        // A page-split access: its first byte in the page before the unmapped one, the rest in
        // it. #PF with CR2 = the unmapped page, and a write stores nothing.
        let disp = instr.memory_displacement64();
        case.gpr[15] = UNMAPPED - disp - 1 - rng.below(size - 1);
    }
    let mut text = String::new();
    let mut dec = Decoder::with_ip(mode.bits(), &case.code, CODE, DecoderOptions::NONE);
    IntelFormatter::new().format(&dec.decode(), &mut text);
    case.text = text;
    Some(case)
}

//! The per-form adjustments of `conformance native`'s random states, and the undefined parts.
//! Teaches: a random state is only a fair test once the parts the SDM leaves open are set aside.
//!
//! [`fix_up`] runs after a case is encoded: it names the flags (and registers) the architecture
//! leaves undefined for this instruction and these operands, and steers draws that would test
//! nothing defined (a division whose quotient overflows, except the #DE cases drawn on purpose;
//! a BT bit offset far outside the data page; an ENTER whose copies read FrameTemp's slot).

use iced_x86::{Code, Instruction, Mnemonic, OpCodeOperandKind, Register};

use emulator::cpu::state::flags::{AC, AF, CF, ID, IF, NT, OF, PF, SF, ZF};
use emulator::cpu::state::reg;

use super::native::Rng;
use super::native_forms::Case;
use super::native_machine::STACK_TOP;

/// The GPR index and width (bits) of a register operand.
pub(super) fn gpr_slot(r: Register) -> (usize, u32, u32) {
    // (index, width, shift) — AH..BH are bits 8..15 of RAX..RBX.
    match r {
        Register::AH | Register::CH | Register::DH | Register::BH => {
            (r as usize - Register::AH as usize, 8, 8)
        }
        _ => (r.full_register().number(), (r.size() * 8) as u32, 0),
    }
}

pub(super) fn read_operand(i: &Instruction, n: u32, case: &Case, data: &[u8]) -> u64 {
    let bits = (i.memory_size().size().max(1) * 8) as u32;
    match i.op_kind(n) {
        iced_x86::OpKind::Register => {
            let (idx, w, sh) = gpr_slot(i.op_register(n));
            (case.gpr[idx] >> sh) & width_mask(w)
        }
        iced_x86::OpKind::Memory => {
            let off = (i.memory_displacement64() & 0xFFF) as usize;
            let mut v = 0u64;
            for b in (0..(bits / 8) as usize).rev() {
                v = v << 8 | data[off + b] as u64;
            }
            v
        }
        _ => i.immediate(n),
    }
}

pub(super) fn write_reg(case: &mut Case, r: Register, value: u64) {
    let (idx, w, sh) = gpr_slot(r);
    let m = width_mask(w) << sh;
    case.gpr[idx] = (case.gpr[idx] & !m) | ((value << sh) & m);
}

pub(super) fn width_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Per-form adjustments and the undefined parts of the result (SDM Vol. 2, each instruction's
/// "Flags Affected"). Returns `None` to reject the draw.
pub(super) fn fix_up(
    code: Code,
    i: &Instruction,
    case: &mut Case,
    rng: &mut Rng,
    data: &[u8],
) -> Option<()> {
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
        M::Enter | M::Leave => {
            // RBP inside the stack page (ENTER copies frame pointers from it, LEAVE pops it).
            case.gpr[reg::RBP] = STACK_TOP - 0x200 + 8 * rng.below(64);
            if code.mnemonic() == M::Enter && enter_reads_frame_slot(code, i, case) {
                return None; // see UNDEFINED_RULES
            }
        }
        M::Popf | M::Popfd | M::Popfq => {
            // Not TF (a trap after the next instruction: the exit OUT); IF, AC, NT, ID and DF
            // are what POPF may change at CPL 3 with IOPL 3 (not IOPL, VM, RF).
            case.stack_init[1] &= !1;
            case.compare_flags = IF | AC | NT | ID;
        }
        _ => {}
    }
    Some(())
}

/// Does an ENTER with a nesting level copy an outer frame pointer from the very slot its
/// FrameTemp push goes to? (RSP starts at STACK_TOP.)
fn enter_reads_frame_slot(code: Code, i: &Instruction, case: &Case) -> bool {
    let size = match code {
        Code::Enterw_imm16_imm8 => 2,
        Code::Enterd_imm16_imm8 => 4,
        _ => 8,
    };
    let level = (i.immediate8_2nd() & 31) as u64;
    let slot = STACK_TOP - size * (level + 1);
    let bp = case.gpr[reg::RBP];
    (1..level).any(|k| bp.wrapping_sub(size * k) == slot)
}

/// Division: one draw in eight is a #DE case (random dividend, or a zero divisor register); the
/// others draw the dividend so the quotient fits, rejecting a zero divisor and divisors that are
/// themselves the dividend's registers.
fn fix_division(
    signed: bool,
    width: u32,
    i: &Instruction,
    case: &mut Case,
    rng: &mut Rng,
    data: &[u8],
) -> Option<()> {
    if rng.below(8) == 0 {
        // A #DE case: keep the random dividend (its quotient almost never fits) or divide by 0.
        if rng.below(2) == 0 && i.op_kind(0) == iced_x86::OpKind::Register {
            write_reg(case, i.op_register(0), 0);
        }
        return Some(());
    }
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

pub(super) fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits >= 64 {
        v as i64
    } else {
        ((v << (64 - bits)) as i64) >> (64 - bits)
    }
}

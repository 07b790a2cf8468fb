//! x87 arithmetic and compares: FADD…FDIVR in all their forms, FSQRT, FPREM, FSCALE, FCOM/FUCOM/FCOMI, FXAM.
//! Teaches: IEEE special cases (∞ − ∞, 0/0, x/0), the x87's precision control, and how compares report through C0/C2/C3 or EFLAGS.
//!
//! Each instruction finds its operands (ST(0), ST(i) or a converted memory operand), treats an
//! empty register as a stack underflow, and hands the values to a pure function that returns
//! the result and the exceptions it raised; `record` then decides whether the result is written.

use std::cmp::Ordering;

use iced_x86::{Instruction, Mnemonic, OpKind};

use super::ext80::{self, flag, Class, Ext, Format, Raised, Rounding};
use super::{
    invalid_operand, masks, pop, precision, propagate_nan, read_source, record, record_stack_fault,
    rounding, set_c1, set_condition, set_st, st, st_index, Cpu, Source, R,
};
use crate::cpu::flags as rf;
use crate::cpu::fpu::fsw;
use crate::interp::ud;

pub(super) fn handles(m: Mnemonic) -> bool {
    use Mnemonic as M;
    binary_op(m).is_some()
        || matches!(
            m,
            M::Fsqrt
                | M::Fabs
                | M::Fchs
                | M::Frndint
                | M::Fscale
                | M::Fxtract
                | M::Fprem
                | M::Fprem1
                | M::Fcom
                | M::Fcomp
                | M::Fcompp
                | M::Fucom
                | M::Fucomp
                | M::Fucompp
                | M::Ficom
                | M::Ficomp
                | M::Fcomi
                | M::Fcomip
                | M::Fucomi
                | M::Fucomip
                | M::Ftst
                | M::Fxam
        )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

/// (operation, reversed, pops) of the two-operand arithmetic mnemonics.
fn binary_op(m: Mnemonic) -> Option<(Op, bool, bool)> {
    use Mnemonic as M;
    use Op::*;
    Some(match m {
        M::Fadd | M::Fiadd => (Add, false, false),
        M::Faddp => (Add, false, true),
        M::Fsub | M::Fisub => (Sub, false, false),
        M::Fsubp => (Sub, false, true),
        M::Fsubr | M::Fisubr => (Sub, true, false),
        M::Fsubrp => (Sub, true, true),
        M::Fmul | M::Fimul => (Mul, false, false),
        M::Fmulp => (Mul, false, true),
        M::Fdiv | M::Fidiv => (Div, false, false),
        M::Fdivp => (Div, false, true),
        M::Fdivr | M::Fidivr => (Div, true, false),
        M::Fdivrp => (Div, true, true),
        _ => return None,
    })
}

pub(super) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let m = ins.mnemonic();
    if let Some((op, reversed, pops)) = binary_op(m) {
        return binary(cpu, ins, op, reversed, pops);
    }
    match m {
        M::Fsqrt | M::Frndint | M::Fabs | M::Fchs => unary(cpu, m),
        M::Fscale | M::Fprem | M::Fprem1 => with_st1(cpu, m),
        M::Fxtract => fxtract(cpu),
        M::Fxam => {
            fxam(cpu);
            Ok(())
        }
        _ => compare_instruction(cpu, ins),
    }
}

/// Which register an operation writes and which it reads besides it: a memory operand pairs
/// with ST(0); `FOP ST(0), ST(i)` and `FOP ST(i), ST(0)` name both.
fn operands(ins: &Instruction) -> (u32, Option<u32>) {
    let has_memory = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
    let reg = |i: u32| st_index(ins.op_register(i));
    match ins.op_count() {
        _ if has_memory => (0, None),
        0 => (1, Some(0)),
        1 => (0, Some(reg(0))),
        _ => (reg(0), Some(reg(1))),
    }
}

fn binary(cpu: &mut Cpu, ins: &Instruction, op: Op, reversed: bool, pops: bool) -> R<()> {
    let (dest, other) = operands(ins);
    // A memory operand is read (and may fault) before anything changes.
    let source = match other {
        None => Some(read_source(cpu, ins)?),
        Some(i) => st(cpu, i).map(Source::of),
    };
    let (Some(d), Some(s)) = (st(cpu, dest), source) else {
        if record_stack_fault(cpu, false) {
            set_st(cpu, dest, Ext::INDEFINITE);
            if pops {
                pop(cpu);
            }
        }
        return Ok(());
    };
    let (x, y) = if reversed {
        (s, Source::of(d))
    } else {
        (Source::of(d), s)
    };
    let (value, raised) = arithmetic(op, x, y, precision(cpu), rounding(cpu), masks(cpu));
    // C1 says "rounded up", and is cleared otherwise, also when no result is written.
    set_c1(cpu, raised.round_up && super::may_write(cpu, raised.flags));
    if record(cpu, raised.flags) {
        set_st(cpu, dest, value);
        if pops {
            pop(cpu);
        }
    }
    Ok(())
}

/// `x op y` with IEEE's special cases, rounded to `fmt`.
fn arithmetic(
    op: Op,
    x: Source,
    y: Source,
    fmt: Format,
    rc: Rounding,
    masks: u16,
) -> (Ext, Raised) {
    let (a, b) = (x.value, y.value);
    let invalid = |flags| {
        (
            Ext::INDEFINITE,
            Raised {
                flags: flag::IE | flags,
                round_up: false,
            },
        )
    };
    let only = |flags| Raised {
        flags,
        round_up: false,
    };
    if a.class() == Class::Unsupported || b.class() == Class::Unsupported {
        return invalid(0);
    }
    if a.is_nan() || b.is_nan() {
        let ie = if invalid_operand(&[a, b]) {
            flag::IE
        } else {
            0
        };
        return (propagate_nan(a, Some(b)), only(ie));
    }
    let de = if x.denormal || y.denormal {
        flag::DE
    } else {
        0
    };
    let (ca, cb) = (a.class(), b.class());
    let with = |o: ext80::Outcome| {
        (
            o.value,
            Raised {
                flags: o.raised.flags | de,
                round_up: o.raised.round_up,
            },
        )
    };
    let zero_sum_sign = rc == Rounding::Down;
    match op {
        Op::Add | Op::Sub => {
            let b = if op == Op::Sub { b.negate() } else { b };
            match (ca, cb) {
                (Class::Infinity, Class::Infinity) if a.sign != b.sign => invalid(de),
                (Class::Infinity, _) => (a, only(de)),
                (_, Class::Infinity) => (b, only(de)),
                (Class::Zero, Class::Zero) => {
                    let sign = if a.sign == b.sign {
                        a.sign
                    } else {
                        zero_sum_sign
                    };
                    (Ext::zero(sign), only(de))
                }
                (Class::Zero, _) => with(ext80::round_ext(b, fmt, rc, masks)),
                (_, Class::Zero) => with(ext80::round_ext(a, fmt, rc, masks)),
                _ => match ext80::add(a, b, fmt, rc, masks) {
                    Some(o) => with(o),
                    None => (Ext::zero(zero_sum_sign), only(de)),
                },
            }
        }
        Op::Mul => {
            let sign = a.sign != b.sign;
            match (ca, cb) {
                (Class::Infinity, Class::Zero) | (Class::Zero, Class::Infinity) => invalid(de),
                (Class::Infinity, _) | (_, Class::Infinity) => (Ext::infinity(sign), only(de)),
                (Class::Zero, _) | (_, Class::Zero) => (Ext::zero(sign), only(de)),
                _ => with(ext80::mul(a, b, fmt, rc, masks)),
            }
        }
        Op::Div => {
            let sign = a.sign != b.sign;
            match (ca, cb) {
                (Class::Infinity, Class::Infinity) | (Class::Zero, Class::Zero) => invalid(de),
                (Class::Infinity, _) => (Ext::infinity(sign), only(de)),
                (_, Class::Infinity) => (Ext::zero(sign), only(de)),
                // ZE alone, even for a denormal dividend (checked against the CPU).
                (_, Class::Zero) => (Ext::infinity(sign), only(flag::ZE)),
                (Class::Zero, _) => (Ext::zero(sign), only(de)),
                _ => with(ext80::div(a, b, fmt, rc, masks)),
            }
        }
    }
}

/// FSQRT, FRNDINT, FABS, FCHS: ST(0) ← f(ST(0)).
fn unary(cpu: &mut Cpu, m: Mnemonic) -> R<()> {
    let Some(a) = st(cpu, 0) else {
        if record_stack_fault(cpu, false) {
            set_st(cpu, 0, Ext::INDEFINITE);
        }
        return Ok(());
    };
    let (value, raised) = match m {
        // Sign operations touch the bit only: no exception even for a signaling NaN.
        Mnemonic::Fabs => (a.abs(), Raised::default()),
        Mnemonic::Fchs => (a.negate(), Raised::default()),
        Mnemonic::Fsqrt => square_root(a, precision(cpu), rounding(cpu), masks(cpu)),
        _ => round_integral(a, rounding(cpu)),
    };
    if record(cpu, raised.flags) {
        set_st(cpu, 0, value);
        set_c1(cpu, raised.round_up);
    }
    Ok(())
}

fn flags_only(flags: u16) -> Raised {
    Raised {
        flags,
        round_up: false,
    }
}

/// The result for a NaN or unsupported operand, if `a` is one.
fn nan_result(a: Ext) -> Option<(Ext, Raised)> {
    match a.class() {
        Class::Unsupported => Some((Ext::INDEFINITE, flags_only(flag::IE))),
        Class::SNan => Some((a.quieted(), flags_only(flag::IE))),
        Class::QNan => Some((a, Raised::default())),
        _ => None,
    }
}

fn denormal_flag(a: Ext) -> u16 {
    if a.class() == Class::Denormal {
        flag::DE
    } else {
        0
    }
}

fn square_root(a: Ext, fmt: Format, rc: Rounding, masks: u16) -> (Ext, Raised) {
    if let Some(r) = nan_result(a) {
        return r;
    }
    let de = denormal_flag(a);
    match a.class() {
        Class::Zero => (a, flags_only(de)),
        // Invalid outranks a denormal operand: √ of a negative denormal is IE alone.
        _ if a.sign => (Ext::INDEFINITE, flags_only(flag::IE)),
        Class::Infinity => (a, Raised::default()),
        _ => {
            let o = ext80::sqrt(a, fmt, rc, masks);
            (
                o.value,
                Raised {
                    flags: o.raised.flags | de,
                    round_up: o.raised.round_up,
                },
            )
        }
    }
}

fn round_integral(a: Ext, rc: Rounding) -> (Ext, Raised) {
    if let Some(r) = nan_result(a) {
        return r;
    }
    if matches!(a.class(), Class::Infinity | Class::Zero) {
        return (a, Raised::default());
    }
    let (v, inexact, up) = ext80::round_to_integral(a, rc);
    let pe = if inexact { flag::PE } else { 0 };
    (
        v,
        Raised {
            flags: pe | denormal_flag(a),
            round_up: up,
        },
    )
}

/// FSCALE, FPREM, FPREM1: ST(0) ← f(ST(0), ST(1)).
fn with_st1(cpu: &mut Cpu, m: Mnemonic) -> R<()> {
    let remainder_op = m != Mnemonic::Fscale;
    let (Some(a), Some(b)) = (st(cpu, 0), st(cpu, 1)) else {
        if remainder_op {
            // C2 = 0: no partial remainder pending (checked against the CPU).
            set_condition(cpu, fsw::C2 | fsw::C1, false);
        }
        if record_stack_fault(cpu, false) {
            set_st(cpu, 0, Ext::INDEFINITE);
        }
        return Ok(());
    };
    let (rc, mk) = (rounding(cpu), masks(cpu));
    let (value, raised, quotient) = if invalid_operand(&[a, b]) || a.is_nan() || b.is_nan() {
        let ie = if invalid_operand(&[a, b]) {
            flag::IE
        } else {
            0
        };
        let v = if a.class() == Class::Unsupported || b.class() == Class::Unsupported {
            Ext::INDEFINITE
        } else {
            propagate_nan(a, Some(b))
        };
        (v, flags_only(ie), None)
    } else if m == Mnemonic::Fscale {
        let (v, r) = scale(a, b, rc, mk);
        (v, r, None)
    } else {
        remainder(a, b, m == Mnemonic::Fprem1, mk)
    };
    if remainder_op && quotient.is_none() {
        // A NaN or invalid operand: FPREM says "done" (C2 = 0) and C1 = 0, also when the
        // exception is unmasked (checked against the CPU).
        set_condition(cpu, fsw::C2 | fsw::C1, false);
    }
    if record(cpu, raised.flags) {
        set_st(cpu, 0, value);
        match quotient {
            // C2 = 1: only a partial remainder; run the instruction again.
            Some(Quotient::Partial) => {
                set_condition(cpu, fsw::C2, true);
            }
            Some(Quotient::Low(q)) => {
                set_condition(cpu, fsw::C2, false);
                set_condition(cpu, fsw::C0, q & 4 != 0);
                set_condition(cpu, fsw::C3, q & 2 != 0);
                set_condition(cpu, fsw::C1, q & 1 != 0);
            }
            None if remainder_op => {}
            None => set_c1(cpu, raised.round_up),
        }
    }
    Ok(())
}

/// ST(0) · 2^⌊ST(1)⌋ (toward zero).
fn scale(a: Ext, b: Ext, rc: Rounding, masks: u16) -> (Ext, Raised) {
    let de = denormal_flag(a) | denormal_flag(b);
    match (a.class(), b.class()) {
        (Class::Zero, Class::Infinity) if !b.sign => (Ext::INDEFINITE, flags_only(flag::IE | de)),
        (Class::Infinity, Class::Infinity) if b.sign => {
            (Ext::INDEFINITE, flags_only(flag::IE | de))
        }
        (Class::Zero | Class::Infinity, _) => (a, flags_only(de)),
        (_, Class::Infinity) if b.sign => (Ext::zero(a.sign), flags_only(de)),
        (_, Class::Infinity) => (Ext::infinity(a.sign), flags_only(de)),
        _ => {
            let n = match ext80::to_integer(b, Rounding::Zero).0 {
                Some(n) => (n.min(1 << 20) as i32) * if b.sign { -1 } else { 1 },
                None => (1 << 20) * if b.sign { -1 } else { 1 },
            };
            let (sig, e) = a.unpack();
            let o = ext80::round(
                a.sign,
                sig as u128,
                e + n,
                false,
                ext80::EXTENDED,
                rc,
                masks,
            );
            (
                o.value,
                Raised {
                    flags: o.raised.flags | de,
                    round_up: o.raised.round_up,
                },
            )
        }
    }
}

enum Quotient {
    /// The exponents were 64 or more apart: ST(0) was reduced part of the way (C2 = 1).
    Partial,
    /// Done: the low three bits of the quotient (C0, C3, C1).
    Low(u64),
}

/// FPREM (quotient truncated, as C's fmod) and FPREM1 (quotient rounded to nearest, IEEE's
/// remainder). The remainder is exact.
fn remainder(a: Ext, b: Ext, nearest: bool, masks: u16) -> (Ext, Raised, Option<Quotient>) {
    let de = denormal_flag(a) | denormal_flag(b);
    match (a.class(), b.class()) {
        // Invalid outranks a denormal operand (checked against the CPU).
        (Class::Infinity, _) | (_, Class::Zero) => {
            return (Ext::INDEFINITE, flags_only(flag::IE), None)
        }
        (Class::Zero, _) | (_, Class::Infinity) => {
            return (a, flags_only(de), Some(Quotient::Low(0)))
        }
        _ => {}
    }
    let (sa, ea) = ext80::normalize(a.unpack().0, a.unpack().1);
    let (sb, eb) = ext80::normalize(b.unpack().0, b.unpack().1);
    let d = ea - eb;
    // The remainder is exact, but it is delivered as a result: normalized (a pseudo-denormal
    // gets exponent 1) and, if tiny, reported as an underflow when that is unmasked.
    let deliver = |sign: bool, r: u128, unit: i32| {
        let o = ext80::round(
            sign,
            r,
            unit,
            false,
            ext80::EXTENDED,
            Rounding::Nearest,
            masks,
        );
        (o.value, o.raised.flags)
    };
    if d < -1 || (d == -1 && !nearest) {
        let (value, flags) = deliver(a.sign, sa as u128, ea);
        return (value, flags_only(de | flags), Some(Quotient::Low(0)));
    }
    // ⌊|a| / |b|⌋ over integers (a = sa · 2^ea, b = sb · 2^eb): num/den = (a/b) · 2^(k−1−d).
    // A partial step divides by b · 2^(d−N) with N = k − 1 in 32..=63 (the SDM leaves N to
    // the implementation).
    let (k, partial) = if d >= 64 {
        (33 + (d - 64) % 32, true)
    } else {
        (d + 1, false)
    };
    let num = (sa as u128) << k;
    let den = (sb as u128) << 1;
    let (mut q, mut r) = ((num / den) as u64, num % den);
    let mut sign = a.sign;
    if nearest && !partial && (2 * r > den || (2 * r == den && q & 1 != 0)) {
        r = den - r;
        q = q.wrapping_add(1);
        sign = !sign;
    }
    // a − q·b = r · 2^unit: 2^(eb − 1) after a full step, 2^(ea − k) after a partial one.
    let unit = if partial { ea - k } else { eb - 1 };
    let (value, flags) = if r == 0 {
        (Ext::zero(sign), 0)
    } else {
        deliver(sign, r, unit)
    };
    let quotient = if partial {
        Quotient::Partial
    } else {
        Quotient::Low(q & 7)
    };
    (value, flags_only(de | flags), Some(quotient))
}

/// FXTRACT: ST(0) ← exponent, then push the significand (exponent 0, sign kept).
fn fxtract(cpu: &mut Cpu) -> R<()> {
    let Some(a) = st(cpu, 0) else {
        if record_stack_fault(cpu, false) {
            set_st(cpu, 0, Ext::INDEFINITE);
            super::push_after_underflow(cpu, Ext::INDEFINITE);
        }
        return Ok(());
    };
    if !cpu.s().fpu.st_empty(7) {
        if record_stack_fault(cpu, true) {
            set_st(cpu, 0, Ext::INDEFINITE);
            super::push(cpu, Ext::INDEFINITE);
        }
        return Ok(());
    }
    let (exponent, significand, flags) = match a.class() {
        Class::Unsupported => (Ext::INDEFINITE, Ext::INDEFINITE, flag::IE),
        Class::SNan => (a.quieted(), a.quieted(), flag::IE),
        Class::QNan => (a, a, 0),
        Class::Zero => (Ext::infinity(true), a, flag::ZE),
        Class::Infinity => (Ext::infinity(false), a, 0),
        Class::Normal | Class::Denormal => {
            let (s, e) = ext80::normalize(a.unpack().0, a.unpack().1);
            let unbiased = e + 63;
            let exponent = ext80::from_integer(unbiased < 0, unbiased.unsigned_abs() as u64);
            let significand = Ext {
                sign: a.sign,
                exp: ext80::BIAS as u16,
                sig: s,
            };
            (exponent, significand, denormal_flag(a))
        }
    };
    // C1: 0 unless a stack fault (the SDM leaves the rest open; as on the CPU it was checked on).
    set_c1(cpu, false);
    if record(cpu, flags) {
        set_st(cpu, 0, exponent);
        super::push(cpu, significand);
    }
    Ok(())
}

/// FXAM: the class of ST(0) in C3, C2, C0 and its sign in C1 (an empty register too).
fn fxam(cpu: &mut Cpu) {
    let f = &cpu.s().fpu;
    let bits = Ext::from_bits(f.st(0));
    let (c3, c2, c0) = if f.st_empty(0) {
        (true, false, true)
    } else {
        match bits.class() {
            Class::Unsupported => (false, false, false),
            Class::QNan | Class::SNan => (false, false, true),
            Class::Normal => (false, true, false),
            Class::Infinity => (false, true, true),
            Class::Zero => (true, false, false),
            Class::Denormal => (true, true, false),
        }
    };
    set_condition(cpu, fsw::C3, c3);
    set_condition(cpu, fsw::C2, c2);
    set_condition(cpu, fsw::C0, c0);
    set_c1(cpu, bits.sign);
}

// ---- compares ----

/// Orders two values; `None` is unordered. FCOM (`quiet` false) raises #IA for any NaN,
/// FUCOM only for a signaling one.
fn compare_values(a: Source, b: Source, quiet: bool) -> (Option<Ordering>, u16) {
    let (x, y) = (a.value, b.value);
    if invalid_operand(&[x, y]) {
        return (None, flag::IE);
    }
    if x.is_nan() || y.is_nan() {
        return (None, if quiet { 0 } else { flag::IE });
    }
    let de = if a.denormal || b.denormal {
        flag::DE
    } else {
        0
    };
    (Some(ext80::compare(x, y)), de)
}

fn compare_instruction(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let m = ins.mnemonic();
    let quiet = matches!(
        m,
        M::Fucom | M::Fucomp | M::Fucompp | M::Fucomi | M::Fucomip
    );
    let pops = match m {
        M::Fcompp | M::Fucompp => 2,
        M::Fcomp | M::Fucomp | M::Ficomp | M::Fcomip | M::Fucomip => 1,
        _ => 0,
    };
    let to_eflags = matches!(m, M::Fcomi | M::Fcomip | M::Fucomi | M::Fucomip);
    let other = match m {
        M::Ftst => Some(Source::of(Ext::ZERO)),
        M::Fcompp | M::Fucompp => st(cpu, 1).map(Source::of),
        _ => match operands(ins) {
            (_, None) => Some(read_source(cpu, ins)?),
            // `FCOM ST(i)` names ST(i) alone; FCOMI names ST(0), ST(i).
            (0, Some(i)) => st(cpu, i).map(Source::of),
            (i, Some(_)) if ins.op_count() == 1 => st(cpu, i).map(Source::of),
            _ => return Err(ud()),
        },
    };
    let (order, flags) = match (st(cpu, 0), other) {
        (Some(a), Some(b)) => compare_values(Source::of(a), b, quiet),
        _ => {
            set_c1(cpu, false);
            (None, flag::IE | fsw::SF)
        }
    };
    // The condition codes are set even when the exception is unmasked (unordered: 111); only
    // the pops wait for a masked one (checked against the CPU).
    let completes = record(cpu, flags);
    // C3 C2 C0 (or ZF PF CF): > 000, < 001, = 100, unordered 111.
    let (c3, c2, c0) = match order {
        Some(Ordering::Greater) => (false, false, false),
        Some(Ordering::Less) => (false, false, true),
        Some(Ordering::Equal) => (true, false, false),
        None => (true, true, true),
    };
    if to_eflags {
        let mut f = cpu.s().rflags & !(rf::ZF | rf::PF | rf::CF | rf::OF | rf::SF | rf::AF);
        f |=
            if c3 { rf::ZF } else { 0 } | if c2 { rf::PF } else { 0 } | if c0 { rf::CF } else { 0 };
        cpu.st().rflags = f;
    } else {
        set_condition(cpu, fsw::C3, c3);
        set_condition(cpu, fsw::C2, c2);
        set_condition(cpu, fsw::C0, c0);
    }
    set_c1(cpu, false);
    if completes {
        for _ in 0..pops {
            pop(cpu);
        }
    }
    Ok(())
}

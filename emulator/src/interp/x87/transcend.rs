//! x87 transcendental instructions: FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1.
//! Teaches: range reduction (and the x87's own 66-bit π, which makes sin(π) not quite 0), series evaluated in extra precision, C2 for "out of range".
//!
//! The functions are computed in [`Wide`] (128-bit significands) by Taylor series on small
//! reduced arguments and rounded once to the register format. The SDM promises less than one
//! unit in the last place; results here are the correctly rounded value of the same reduced
//! argument in all but very rare halfway cases, so they may differ from a given CPU's last bit
//! (the fuzzer's KVM oracle sets these instructions aside for that reason).

use iced_x86::{Instruction, Mnemonic};

use super::ext80::{self, flag, Class, Ext, Raised};
use super::wide::{self, Wide};
use super::{
    invalid_operand, masks, pop, propagate_nan, push, record, record_stack_fault, rounding, set_c1,
    set_condition, set_st, st, Cpu, R,
};
use crate::cpu::fpu::fsw;
use crate::interp::ud;

/// The x87 transcendental instructions: the SDM bounds their error (under one unit in the last
/// place) instead of defining their bits, so the CPU oracles set them aside.
pub const TRANSCENDENTALS: &[Mnemonic] = &[
    Mnemonic::Fsin,
    Mnemonic::Fcos,
    Mnemonic::Fsincos,
    Mnemonic::Fptan,
    Mnemonic::Fpatan,
    Mnemonic::F2xm1,
    Mnemonic::Fyl2x,
    Mnemonic::Fyl2xp1,
];

pub(super) fn handles(m: Mnemonic) -> bool {
    TRANSCENDENTALS.contains(&m)
}

pub(super) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    match ins.mnemonic() {
        M::Fsin | M::Fcos | M::Fsincos | M::Fptan => trigonometric(cpu, ins.mnemonic()),
        M::F2xm1 => {
            let Some(x) = st(cpu, 0) else {
                if record_stack_fault(cpu, false) {
                    set_st(cpu, 0, Ext::INDEFINITE);
                }
                return Ok(());
            };
            let (v, raised) = f2xm1(x, cpu);
            if record(cpu, raised.flags) {
                set_st(cpu, 0, v);
                set_c1(cpu, raised.round_up);
            }
            Ok(())
        }
        M::Fyl2x | M::Fyl2xp1 | M::Fpatan => {
            let (Some(x), Some(y)) = (st(cpu, 0), st(cpu, 1)) else {
                if record_stack_fault(cpu, false) {
                    set_st(cpu, 1, Ext::INDEFINITE);
                    pop(cpu);
                }
                return Ok(());
            };
            let (v, raised) = match ins.mnemonic() {
                M::Fpatan => atan2(y, x, cpu),
                m => y_log2(y, x, m == M::Fyl2xp1, cpu),
            };
            if record(cpu, raised.flags) {
                set_st(cpu, 1, v);
                set_c1(cpu, raised.round_up);
                pop(cpu);
            }
            Ok(())
        }
        _ => Err(ud()),
    }
}

fn flags_only(flags: u16) -> Raised {
    Raised {
        flags,
        round_up: false,
    }
}

fn denormal(values: &[Ext]) -> u16 {
    if values.iter().any(|v| v.class() == Class::Denormal) {
        flag::DE
    } else {
        0
    }
}

/// Rounds a wide result, adding the denormal-operand flag.
fn finish(w: Wide, cpu: &Cpu, de: u16) -> (Ext, Raised) {
    let o = w.round(rounding(cpu), masks(cpu));
    let pe = if w.is_zero() { 0 } else { flag::PE };
    (
        o.value,
        Raised {
            flags: o.raised.flags | de | pe,
            round_up: o.raised.round_up,
        },
    )
}

/// The NaN or invalid-operand answer for these operands, if there is one.
fn special_nan(values: &[Ext]) -> Option<(Ext, Raised)> {
    if values.iter().any(|v| v.class() == Class::Unsupported) {
        return Some((Ext::INDEFINITE, flags_only(flag::IE)));
    }
    let nan = values.iter().find(|v| v.is_nan())?;
    let other = values.iter().find(|v| *v != nan).copied();
    let ie = if invalid_operand(values) { flag::IE } else { 0 };
    Some((propagate_nan(*nan, other), flags_only(ie)))
}

// ---- sine, cosine, tangent ----

/// The x87's π for range reduction: 66 bits (SDM vol. 1, 8.3.10), as the integer P with
/// π/2 ≈ P · 2^−65.
const PI66: u128 = (0xC90F_DAA2_2168_C234 << 2) | 0b11;

/// |x| < 2^63 reduced to r = |x| − k · π₆₆/2 with |r| ≤ π/4: (k mod 4, r).
fn reduce(x: Ext) -> (u64, Wide) {
    let w = Wide::from_ext(x).abs();
    if w.e < -1 || (w.e == -1 && w.m <= wide::PI.m) {
        return (0, w); // |x| ≤ π/4 (π/4 is π with the exponent lowered by 2)
    }
    let (sig, e) = x.unpack();
    let shift = e + 65; // at least 1 here
    let big = (sig as u128) << shift; // |x| · 2^65, below 2^128 since |x| < 2^63
    let (q, rem) = (big / PI66, big % PI66);
    let (k, r, negative) = if 2 * rem > PI66 {
        (q + 1, PI66 - rem, true)
    } else {
        (q, rem, false)
    };
    (k as u64 & 3, Wide::from_parts(negative, r, 127 - 65))
}

/// sin r and cos r for |r| ≤ π/4 (Taylor series).
fn sin_cos(r: Wide) -> (Wide, Wide) {
    let r2 = r.mul(r);
    let (mut sin, mut term) = (r, r);
    for n in 1..40 {
        term = term
            .mul(r2)
            .div(Wide::from_int((2 * n) * (2 * n + 1)))
            .neg();
        if term.is_zero() || term.e < sin.e - 132 {
            break;
        }
        sin = sin.add(term);
    }
    let one = Wide::from_int(1);
    let (mut cos, mut term) = (one, one);
    for n in 1..40 {
        term = term
            .mul(r2)
            .div(Wide::from_int((2 * n - 1) * (2 * n)))
            .neg();
        if term.is_zero() || term.e < -132 {
            break;
        }
        cos = cos.add(term);
    }
    (sin, cos)
}

fn trigonometric(cpu: &mut Cpu, m: Mnemonic) -> R<()> {
    use Mnemonic as M;
    let pushes = matches!(m, M::Fsincos | M::Fptan);
    let Some(x) = st(cpu, 0) else {
        if record_stack_fault(cpu, false) {
            set_st(cpu, 0, Ext::INDEFINITE);
            if pushes {
                super::push_after_underflow(cpu, Ext::INDEFINITE);
            }
        }
        return Ok(());
    };
    if pushes && !cpu.s().fpu.st_empty(7) {
        if record_stack_fault(cpu, true) {
            set_st(cpu, 0, Ext::INDEFINITE);
            push(cpu, Ext::INDEFINITE);
        }
        return Ok(());
    }
    // Out of range (|x| ≥ 2^63): C2 = 1 and nothing else happens; software reduces first.
    if matches!(x.class(), Class::Normal) && x.exp as i32 - ext80::BIAS >= 63 {
        set_condition(cpu, fsw::C2, true);
        return Ok(());
    }
    let de = denormal(&[x]);
    let (first, second, raised) = if let Some((v, r)) = special_nan(&[x]) {
        (v, v, r)
    } else {
        match x.class() {
            Class::Infinity => (Ext::INDEFINITE, Ext::INDEFINITE, flags_only(flag::IE)),
            Class::Zero => (x, Ext::from_bits(one_bits()), Raised::default()),
            _ => {
                let (k, r) = reduce(x);
                let (s, c) = sin_cos(r);
                // sin(r + kπ/2), cos(r + kπ/2) by quadrant; then sine's oddness.
                let (mut sin, cos) = match k {
                    0 => (s, c),
                    1 => (c, s.neg()),
                    2 => (s.neg(), c.neg()),
                    _ => (c.neg(), s),
                };
                if x.sign {
                    sin = sin.neg();
                }
                let (a, ra) = finish(if m == M::Fptan { sin.div(cos) } else { sin }, cpu, de);
                let (b, rb) = finish(cos, cpu, de);
                let raised = Raised {
                    flags: ra.flags
                        | if m == M::Fsin || m == M::Fptan {
                            0
                        } else {
                            rb.flags
                        },
                    round_up: if m == M::Fcos || m == M::Fsincos {
                        rb.round_up
                    } else {
                        ra.round_up
                    },
                };
                (a, b, raised)
            }
        }
    };
    if !record(cpu, raised.flags) {
        return Ok(());
    }
    set_condition(cpu, fsw::C2, false);
    set_c1(cpu, raised.round_up);
    match m {
        M::Fsin => set_st(cpu, 0, first),
        M::Fcos => set_st(cpu, 0, second),
        M::Fsincos => {
            set_st(cpu, 0, first);
            push(cpu, second);
        }
        _ => {
            // FPTAN: ST(0) ← tan x, then push 1.0 (for the 8087's FDIV-based cotangent).
            let tan = if x.class() == Class::Zero { x } else { first };
            set_st(cpu, 0, tan);
            push(cpu, Ext::from_bits(one_bits()));
        }
    }
    Ok(())
}

fn one_bits() -> u128 {
    ((ext80::BIAS as u128) << 64) | (1u128 << 63)
}

// ---- exponential and logarithms ----

/// e^t − 1 (Taylor series; |t| below 1 here).
fn expm1(t: Wide) -> Wide {
    let (mut sum, mut term) = (t, t);
    for n in 2..60 {
        term = term.mul(t).div(Wide::from_int(n));
        if term.is_zero() || term.e < sum.e - 132 {
            break;
        }
        sum = sum.add(term);
    }
    sum
}

/// F2XM1: 2^x − 1, defined for −1 ≤ x ≤ 1 (computed for larger x too).
fn f2xm1(x: Ext, cpu: &Cpu) -> (Ext, Raised) {
    if let Some(r) = special_nan(&[x]) {
        return r;
    }
    match x.class() {
        Class::Zero => return (x, Raised::default()),
        Class::Infinity if x.sign => {
            return (ext80::from_integer(true, 1), Raised::default());
        }
        Class::Infinity => return (x, Raised::default()),
        _ => {}
    }
    let w = Wide::from_ext(x);
    let value = if w.e < 0 {
        expm1(w.mul(wide::LN2))
    } else {
        // 2^x = 2^n · 2^f with n = ⌊x⌋ and 0 ≤ f < 1.
        let n = ext80::to_integer(x, ext80::Rounding::Down)
            .0
            .unwrap_or(1 << 20)
            .min(1 << 20) as i64;
        let n = if x.sign { -n } else { n };
        let f = w.sub(Wide::from_int(n));
        expm1(f.mul(wide::LN2))
            .add(Wide::from_int(1))
            .scale(n as i32)
            .sub(Wide::from_int(1))
    };
    finish(value, cpu, denormal(&[x]))
}

/// ln m for m near 1: 2 · atanh((m − 1)/(m + 1)).
fn ln_near_one(m: Wide) -> Wide {
    let one = Wide::from_int(1);
    let z = m.sub(one).div(m.add(one));
    ln_from_atanh(z)
}

/// 2 · atanh z = ln((1 + z)/(1 − z)) by its odd series.
fn ln_from_atanh(z: Wide) -> Wide {
    let z2 = z.mul(z);
    let (mut sum, mut power) = (z, z);
    for n in 1..80 {
        power = power.mul(z2);
        let term = power.div(Wide::from_int(2 * n + 1));
        if term.is_zero() || term.e < sum.e - 132 {
            break;
        }
        sum = sum.add(term);
    }
    sum.scale(1)
}

/// FYL2X (y · log₂ x) and FYL2XP1 (y · log₂(x + 1), for |x| < 1 − √2/2).
fn y_log2(y: Ext, x: Ext, plus_one: bool, cpu: &Cpu) -> (Ext, Raised) {
    if let Some(r) = special_nan(&[x, y]) {
        return r;
    }
    let de = denormal(&[x, y]);
    let invalid = (Ext::INDEFINITE, flags_only(flag::IE | de));
    let (cx, cy) = (x.class(), y.class());
    if plus_one {
        if x.sign && cx == Class::Infinity {
            return invalid;
        }
        if cx == Class::Zero {
            if cy == Class::Infinity {
                return invalid;
            }
            return (Ext::zero(x.sign != y.sign), flags_only(de));
        }
    } else {
        if x.sign && cx != Class::Zero {
            return invalid;
        }
        match (cx, cy) {
            (Class::Zero, Class::Zero) | (Class::Infinity, Class::Zero) => return invalid,
            (Class::Zero, Class::Infinity) => return (Ext::infinity(!y.sign), flags_only(de)),
            (Class::Zero, _) => return (Ext::infinity(!y.sign), flags_only(de | flag::ZE)),
            (Class::Infinity, _) => return (Ext::infinity(y.sign), flags_only(de)),
            _ => {}
        }
    }
    // log₂ of the finite positive x (or 1 + x), as a wide value.
    let log2 = if plus_one {
        let w = Wide::from_ext(x);
        let z = w.div(w.add(Wide::from_int(2)));
        ln_from_atanh(z).mul(wide::LOG2_E)
    } else {
        let w = Wide::from_ext(x);
        // x = m · 2^n with m in [√2/2, √2): the logarithm of m is small and accurate.
        let mut n = w.e;
        let mut m = Wide { e: 0, ..w };
        if m.m > 0xB504_F333_F9DE_6484_597D_89B3_754A_BE9F {
            m = m.scale(-1);
            n += 1;
        }
        Wide::from_int(n as i64).add(ln_near_one(m).mul(wide::LOG2_E))
    };
    if log2.is_zero() {
        // x = 1: ±0 (the sign of y); ∞ · 0 is invalid.
        if cy == Class::Infinity {
            return invalid;
        }
        return (Ext::zero(y.sign), flags_only(de));
    }
    if cy == Class::Infinity {
        return (Ext::infinity(y.sign != log2.sign), flags_only(de));
    }
    if cy == Class::Zero {
        return (Ext::zero(y.sign != log2.sign), flags_only(de));
    }
    if !plus_one && x.sig == 1 << 63 && x.exp != 0 {
        // A power of two: log₂ x is an integer and y · n is rounded like a multiplication.
        let n = x.exp as i64 - ext80::BIAS as i64;
        let exact = ext80::from_integer(n < 0, n.unsigned_abs());
        let o = ext80::mul(y, exact, ext80::EXTENDED, rounding(cpu), masks(cpu));
        return (
            o.value,
            Raised {
                flags: o.raised.flags | de,
                round_up: o.raised.round_up,
            },
        );
    }
    finish(Wide::from_ext(y).mul(log2), cpu, de)
}

// ---- arctangent ----

/// atan w for |w| ≤ 1: two halvings (atan w = 2 atan(w / (1 + √(1 + w²)))), then the series.
fn atan(w: Wide) -> Wide {
    let one = Wide::from_int(1);
    let mut z = w;
    for _ in 0..2 {
        z = z.div(one.add(one.add(z.mul(z)).sqrt()));
    }
    let z2 = z.mul(z);
    let (mut sum, mut power) = (z, z);
    for n in 1..80 {
        power = power.mul(z2).neg();
        let term = power.div(Wide::from_int(2 * n + 1));
        if term.is_zero() || term.e < sum.e - 132 {
            break;
        }
        sum = sum.add(term);
    }
    sum.scale(2)
}

/// FPATAN: ST(1) ← atan(ST(1) / ST(0)) in the quadrant of (ST(0), ST(1)).
fn atan2(y: Ext, x: Ext, cpu: &Cpu) -> (Ext, Raised) {
    if let Some(r) = special_nan(&[x, y]) {
        return r;
    }
    let de = denormal(&[x, y]);
    let pi = wide::PI;
    let half_pi = pi.scale(-1);
    let signed = |v: Wide| if y.sign { v.neg() } else { v };
    let (cx, cy) = (x.class(), y.class());
    let angle = match (cy, cx) {
        (Class::Zero, _) => {
            if x.sign {
                signed(pi)
            } else {
                return (y, flags_only(de));
            }
        }
        (Class::Infinity, Class::Infinity) => {
            let quarter = pi.scale(-2);
            signed(if x.sign {
                quarter.add(half_pi)
            } else {
                quarter
            })
        }
        (Class::Infinity, _) | (_, Class::Zero) => signed(half_pi),
        (_, Class::Infinity) => {
            if x.sign {
                signed(pi)
            } else {
                return (Ext::zero(y.sign), flags_only(de));
            }
        }
        _ => {
            let (a, b) = (Wide::from_ext(y).abs(), Wide::from_ext(x).abs());
            let mut t = if (a.e, a.m) <= (b.e, b.m) {
                atan(a.div(b))
            } else {
                half_pi.sub(atan(b.div(a)))
            };
            if x.sign {
                t = pi.sub(t);
            }
            signed(t)
        }
    };
    finish(angle, cpu, de)
}

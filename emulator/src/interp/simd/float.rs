//! SSE/SSE2 floating point: packed and scalar IEEE 754 arithmetic and compares under MXCSR.
//! Teaches: rounding modes, sticky exception flags, masked vs unmasked exceptions, x86's NaN rules.
//!
//! The arithmetic itself is IEEE 754 (the `rustc_apfloat` soft float, so every rounding mode and
//! flag is exact on any host, the browser included); what is x86 is around it: DAZ and FTZ,
//! which NaN comes out (the first operand's, quieted, else the second's; an invalid operation
//! gives the negative "QNaN indefinite"), MIN/MAX returning the second operand for NaNs and
//! zeros, and an unmasked exception (#XM with CR4.OSXMMEXCPT, else #UD) leaving the
//! destination untouched while the flags record what happened.

use iced_x86::{Instruction, Mnemonic};
use rustc_apfloat::ieee::{Double, Quad, Single};
use rustc_apfloat::{Float, FloatConvert, Round, Status, StatusAnd};

use super::{lane, read, read_reg, write, Cpu};
use crate::cpu::fpu::mxcsr as mx;
use crate::cpu::{ctl, flags};
use crate::interp::{exception, ud, Fault, R};

/// SIMD floating-point exception vector.
const XM: u8 = 19;

pub(super) fn handles(m: Mnemonic) -> bool {
    shape(m).is_some()
}

/// What an instruction computes, on which format, over how many lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    op: Op,
    double: bool,
    /// Scalar forms touch lane 0 and keep the rest of the destination.
    scalar: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
    Sqrt,
    /// CMPccPS/SS/PD/SD: the predicate is the immediate.
    Cmp,
    /// COMISS/COMISD (`true`: UCOMIS*, quiet) set ZF/PF/CF.
    Comi(bool),
}

fn shape(m: Mnemonic) -> Option<Shape> {
    use Mnemonic as M;
    use Op::*;
    let (op, double, scalar) = match m {
        M::Addps => (Add, false, false),
        M::Addss => (Add, false, true),
        M::Addpd => (Add, true, false),
        M::Addsd => (Add, true, true),
        M::Subps => (Sub, false, false),
        M::Subss => (Sub, false, true),
        M::Subpd => (Sub, true, false),
        M::Subsd => (Sub, true, true),
        M::Mulps => (Mul, false, false),
        M::Mulss => (Mul, false, true),
        M::Mulpd => (Mul, true, false),
        M::Mulsd => (Mul, true, true),
        M::Divps => (Div, false, false),
        M::Divss => (Div, false, true),
        M::Divpd => (Div, true, false),
        M::Divsd => (Div, true, true),
        M::Minps => (Min, false, false),
        M::Minss => (Min, false, true),
        M::Minpd => (Min, true, false),
        M::Minsd => (Min, true, true),
        M::Maxps => (Max, false, false),
        M::Maxss => (Max, false, true),
        M::Maxpd => (Max, true, false),
        M::Maxsd => (Max, true, true),
        M::Sqrtps => (Sqrt, false, false),
        M::Sqrtss => (Sqrt, false, true),
        M::Sqrtpd => (Sqrt, true, false),
        M::Sqrtsd => (Sqrt, true, true),
        M::Cmpps => (Cmp, false, false),
        M::Cmpss => (Cmp, false, true),
        M::Cmppd => (Cmp, true, false),
        // CMPSD's SSE2 form (the string CMPSD reaches here from `string` only with XMM operands).
        M::Cmpsd => (Cmp, true, true),
        M::Comiss => (Comi(false), false, true),
        M::Ucomiss => (Comi(true), false, true),
        M::Comisd => (Comi(false), true, true),
        M::Ucomisd => (Comi(true), true, true),
        _ => return None,
    };
    Some(Shape { op, double, scalar })
}

pub(super) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    let Some(shape) = shape(ins.mnemonic()) else {
        return Err(ud());
    };
    let a = read_reg(cpu, ins.op_register(0));
    let b = read(cpu, ins, 1)?;
    let imm = if ins.op_count() > 2 {
        ins.immediate(2) as u8
    } else {
        0
    };
    let control = cpu.s().fpu.mxcsr();
    let (lane_bytes, count) = match (shape.double, shape.scalar) {
        (true, true) => (8, 1),
        (true, false) => (8, 2),
        (false, true) => (4, 1),
        (false, false) => (4, 4),
    };
    let mut raised = 0u32;
    let mut result = a;
    let mut compare = None;
    for k in 0..count {
        let (x, y) = (lane(a, lane_bytes, k), lane(b, lane_bytes, k));
        let out = if shape.double {
            compute::<Double>(shape.op, x, y, imm, control)
        } else {
            compute::<Single>(shape.op, x, y, imm, control)
        };
        raised |= out.flags;
        compare = out.compare;
        let bits = 8 * lane_bytes;
        let lane_mask = (u128::MAX >> (128 - bits)) << (k * bits);
        result = (result & !lane_mask) | ((out.value as u128) << (k * bits) & lane_mask);
    }
    record_flags(cpu, control, raised)?;
    if let Op::Comi(_) = shape.op {
        let status = compare.unwrap_or(0);
        let mut rf = cpu.s().rflags
            & !(flags::ZF | flags::PF | flags::CF | flags::OF | flags::SF | flags::AF);
        rf |= status;
        cpu.st().rflags = rf;
        return Ok(());
    }
    write(cpu, ins, 0, result)
}

/// Sets the raised flags in MXCSR (they are sticky). An unmasked one faults before the
/// instruction writes anything: the destination and RFLAGS stay as they were.
/// An unmasked pre-computation exception (invalid, denormal, divide by zero) stops before any
/// result exists, so only those flags are recorded (SDM vol. 1, 11.5.3; checked against the CPU).
pub(super) fn record_flags(cpu: &mut Cpu, control: u32, raised: u32) -> R<()> {
    let masks = (control >> mx::MASK_SHIFT) & 0x3F;
    let pre = raised & (mx::IE | mx::DE | mx::ZE);
    if pre & !masks != 0 {
        cpu.st().fpu.set_mxcsr(control | pre);
        return Err(simd_fault(cpu));
    }
    cpu.st().fpu.set_mxcsr(control | raised);
    if raised & !masks != 0 {
        return Err(simd_fault(cpu));
    }
    Ok(())
}

/// A float operand after DAZ (a denormal read as a zero of its sign), DE for a denormal kept.
pub(super) fn input<F: Float>(bits: u64, control: u32, flags: &mut u32) -> F {
    let v = F::from_bits(bits as u128);
    if v.is_denormal() {
        if control & mx::DAZ != 0 {
            return F::ZERO.copy_sign(v);
        }
        *flags |= mx::DE;
    }
    v
}

/// #XM when the OS handles SIMD exceptions (CR4.OSXMMEXCPT), #UD otherwise.
fn simd_fault(cpu: &Cpu) -> Fault {
    if cpu.s().cr4 & ctl::CR4_OSXMMEXCPT != 0 {
        exception(XM, None)
    } else {
        ud()
    }
}

/// One lane's result: its bits, the MXCSR flags it raised and (COMIS*) the RFLAGS it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LaneResult {
    pub value: u64,
    pub flags: u32,
    pub compare: Option<u64>,
}

/// One lane of `op` in the format `F` (Single or Double), with MXCSR `control`'s rounding,
/// DAZ and FTZ. Pure: the caller merges flags and decides about faults.
pub(super) fn compute<F>(op: Op, x: u64, y: u64, imm: u8, control: u32) -> LaneResult
where
    F: Float + FloatConvert<Double> + FloatConvert<Quad>,
{
    let mut flags = 0u32;
    // SQRT has one operand, the source: the destination's old lane is not an input (no #D).
    let a: F = if op == Op::Sqrt {
        F::from_bits(x as u128)
    } else {
        input(x, control, &mut flags)
    };
    let b: F = input(y, control, &mut flags);
    let done = |value: u64, flags: u32| LaneResult {
        value,
        flags,
        compare: None,
    };
    let snan = |v: F| v.is_signaling();
    match op {
        Op::Cmp => {
            let predicate = imm & 7;
            let unordered = a.is_nan() || b.is_nan();
            if unordered {
                flags &= !mx::DE; // a NaN operand outranks a denormal one
            }
            // LT, LE, NLT, NLE signal on any NaN; the others on signalling NaNs only.
            let signals_on_qnan = matches!(predicate, 1 | 2 | 5 | 6);
            if snan(a) || snan(b) || (unordered && signals_on_qnan) {
                flags |= mx::IE;
            }
            let (lt, eq) = (a < b, a == b);
            let truth = match predicate {
                0 => eq,
                1 => lt,
                2 => lt || eq,
                3 => unordered,
                4 => !eq,
                5 => !lt,
                6 => !(lt || eq),
                _ => !unordered,
            };
            let ones = if F::BITS == 64 {
                u64::MAX
            } else {
                u32::MAX as u64
            };
            return done(if truth { ones } else { 0 }, flags);
        }
        Op::Comi(quiet) => {
            let unordered = a.is_nan() || b.is_nan();
            if unordered {
                flags &= !mx::DE;
            }
            if snan(a) || snan(b) || (unordered && !quiet) {
                flags |= mx::IE;
            }
            let rf = if unordered {
                flags::ZF | flags::PF | flags::CF
            } else if a < b {
                flags::CF
            } else if a == b {
                flags::ZF
            } else {
                0
            };
            return LaneResult {
                value: x,
                flags,
                compare: Some(rf),
            };
        }
        Op::Min | Op::Max => {
            // The second operand when either is a NaN or both are zeros (of any sign).
            if a.is_nan() || b.is_nan() {
                return done(b.to_bits() as u64, (flags & !mx::DE) | mx::IE);
            }
            let first = if op == Op::Min { a < b } else { a > b };
            return done(
                if first {
                    a.to_bits() as u64
                } else {
                    b.to_bits() as u64
                },
                flags,
            );
        }
        _ => {}
    }
    // Arithmetic: NaN operands propagate (quieted), invalid operations give the indefinite.
    let quiet_bit = 1u64 << (F::PRECISION - 2);
    let operands_nan = if op == Op::Sqrt {
        b.is_nan()
    } else {
        a.is_nan() || b.is_nan()
    };
    if operands_nan {
        flags &= !mx::DE;
        let signalling = if op == Op::Sqrt {
            snan(b)
        } else {
            snan(a) || snan(b)
        };
        if signalling {
            flags |= mx::IE;
        }
        let nan = if op != Op::Sqrt && a.is_nan() { x } else { y };
        return done(nan | quiet_bit, flags);
    }
    let round = rounding(control);
    let StatusAnd { status, value } = match op {
        Op::Add => a.add_r(b, round),
        Op::Sub => a.sub_r(b, round),
        Op::Mul => a.mul_r(b, round),
        Op::Div => a.div_r(b, round),
        _ => sqrt(b, round),
    };
    if status.contains(Status::INVALID_OP) {
        // The "QNaN floating-point indefinite": sign set, top fraction bit set.
        let indefinite = (1u64 << (F::BITS - 1))
            | (((1u64 << (F::BITS - F::PRECISION)) - 1) << (F::PRECISION - 1))
            | quiet_bit;
        // Invalid outranks a denormal operand (SQRT of a negative denormal: IE alone).
        return done(indefinite, (flags & !mx::DE) | mx::IE);
    }
    flags |= status_flags(status);
    if status.contains(Status::DIV_BY_ZERO) {
        flags &= !mx::DE; // x / 0 is ZE alone, even for a denormal x (checked against the CPU)
    }
    if !status.contains(Status::OVERFLOW)
        && status.contains(Status::INEXACT)
        && value.is_finite()
        && value.abs() == F::largest()
        && exceeds_range(op, a, b)
    {
        // rustc_apfloat rounds an overflow toward zero to the largest number without saying
        // "overflow"; IEEE 754 (and the CPU) raise it whatever the rounding direction.
        flags |= mx::OE;
    }
    let mut bits = value.to_bits() as u64;
    // Flush to zero: a tiny result becomes a zero of its sign when underflow is masked.
    let um = control & (mx::UE << mx::MASK_SHIFT) != 0;
    if !um && value.is_denormal() {
        // Unmasked, underflow means "tiny", inexact or not (IEEE's default needs both).
        flags |= mx::UE;
    }
    let unmasked = !(control >> mx::MASK_SHIFT) & 0x3F;
    if flags & (mx::OE | mx::UE) & unmasked != 0 {
        // No result is written; "inexact" then means the rounding with an unbounded exponent,
        // not the denormalized or overflowed one (measured on the CPU).
        flags = (flags & !mx::PE)
            | if unbounded_inexact(op, a, b) {
                mx::PE
            } else {
                0
            };
    }
    if control & mx::FTZ != 0 && um && (value.is_denormal() || status.contains(Status::UNDERFLOW)) {
        bits = F::ZERO.copy_sign(value).to_bits() as u64;
        flags |= mx::UE | mx::PE;
    }
    done(bits, flags)
}

/// Is the exact `a op b` at least 2^(emax+1), the first magnitude above `F`'s largest number
/// that rounding toward zero with an unbounded exponent cannot bring back? Computed in the next
/// wider format toward zero, which cannot cross that (representable) bound the wrong way.
fn exceeds_range<F>(op: Op, a: F, b: F) -> bool
where
    F: Float + FloatConvert<Double> + FloatConvert<Quad>,
{
    let mut loses = false;
    if F::BITS == 32 {
        let (x, y): (Double, Double) = (a.convert(&mut loses).value, b.convert(&mut loses).value);
        let r = wide_op(op, x, y);
        r.abs() >= Double::from_bits(0x47F0_0000_0000_0000) // 2^128
    } else {
        let (x, y): (Quad, Quad) = (a.convert(&mut loses).value, b.convert(&mut loses).value);
        let r = wide_op(op, x, y);
        r.abs() >= Quad::from_bits((16383u128 + 1024) << 112) // 2^1024
    }
}

fn wide_op<W: Float>(op: Op, x: W, y: W) -> W {
    wide_op_status(op, x, y).value
}

fn wide_op_status<W: Float>(op: Op, x: W, y: W) -> StatusAnd<W> {
    let round = Round::TowardZero;
    match op {
        Op::Add => x.add_r(y, round),
        Op::Sub => x.sub_r(y, round),
        Op::Mul => x.mul_r(y, round),
        _ => x.div_r(y, round),
    }
}

/// Would `a op b` be inexact in `F`'s precision with an unbounded exponent? Computed in the
/// next wider format: inexact there, or more significant bits than `F` keeps.
fn unbounded_inexact<F>(op: Op, a: F, b: F) -> bool
where
    F: Float + FloatConvert<Double> + FloatConvert<Quad>,
{
    let mut loses = false;
    let (inexact, bits, frac_bits, exp_bits) = if F::BITS == 32 {
        let (x, y): (Double, Double) = (a.convert(&mut loses).value, b.convert(&mut loses).value);
        let r = wide_op_status(op, x, y);
        (
            r.status.contains(Status::INEXACT),
            r.value.to_bits(),
            52,
            11,
        )
    } else {
        let (x, y): (Quad, Quad) = (a.convert(&mut loses).value, b.convert(&mut loses).value);
        let r = wide_op_status(op, x, y);
        (
            r.status.contains(Status::INEXACT),
            r.value.to_bits(),
            112,
            15,
        )
    };
    let frac = bits & ((1u128 << frac_bits) - 1);
    let exp = (bits >> frac_bits) & ((1u128 << exp_bits) - 1);
    let significand = if exp == 0 {
        frac
    } else {
        frac | 1u128 << frac_bits
    };
    let used = if significand == 0 {
        0
    } else {
        128 - significand.leading_zeros() - significand.trailing_zeros()
    };
    inexact || used as usize > F::PRECISION
}

/// MXCSR.RC as a rounding direction.
pub(super) fn rounding(control: u32) -> Round {
    match (control & mx::RC_MASK) >> mx::RC_SHIFT {
        0 => Round::NearestTiesToEven,
        1 => Round::TowardNegative,
        2 => Round::TowardPositive,
        _ => Round::TowardZero,
    }
}

pub(super) fn status_flags(s: Status) -> u32 {
    let mut f = 0;
    if s.contains(Status::DIV_BY_ZERO) {
        f |= mx::ZE;
    }
    if s.contains(Status::OVERFLOW) {
        f |= mx::OE;
    }
    if s.contains(Status::UNDERFLOW) {
        f |= mx::UE;
    }
    if s.contains(Status::INEXACT) {
        f |= mx::PE;
    }
    f
}

/// A correctly rounded square root in any rounding direction. The soft float has none, so
/// this is the integer method: with v = m · 4^j, take the integer root of m scaled to twice
/// the precision plus guard bits; a non-zero remainder becomes a sticky bit, so the one
/// rounding (`from_u128_r`) is correct. A root of a positive float is never denormal or
/// overflowing, so the final scaling is exact.
fn sqrt<F: Float>(v: F, round: Round) -> StatusAnd<F> {
    if v.is_zero() || (v.is_infinite() && !v.is_negative()) {
        return Status::OK.and(v);
    }
    if v.is_negative() {
        return Status::INVALID_OP.and(F::NAN);
    }
    let (mut m, mut e) = integer_and_exponent(v);
    if e % 2 != 0 {
        m <<= 1;
        e -= 1;
    }
    let want = 2 * (F::PRECISION as i32 + 2);
    let have = 128 - m.leading_zeros() as i32;
    let k = ((want - have).max(0) + 1) / 2;
    let scaled = m << (2 * k);
    let root = isqrt(scaled);
    let exact = root * root == scaled;
    let value = F::from_u128_r(root | (!exact) as u128, round).value;
    let status = if exact { Status::OK } else { Status::INEXACT };
    status.and(value.scalbn(e / 2 - k))
}

/// (m, e) with v = m · 2^e, m a non-negative integer.
fn integer_and_exponent<F: Float>(v: F) -> (u128, i32) {
    let e = v.ilogb();
    let p = F::PRECISION as i32;
    // v / 2^(e − p + 1) is an integer of p bits for normals.
    let m = v.scalbn(p - 1 - e);
    let mut exact = false;
    let m = m.to_u128_r(128, Round::TowardZero, &mut exact).value;
    (m, e - (p - 1))
}

/// Integer square root (floor) of a u128.
fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128;
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    const RN: u32 = crate::cpu::fpu::MXCSR_INIT;

    fn f32op(op: Op, x: f32, y: f32, control: u32) -> (f32, u32) {
        let r = compute::<Single>(op, x.to_bits() as u64, y.to_bits() as u64, 0, control);
        (f32::from_bits(r.value as u32), r.flags)
    }

    fn f64op(op: Op, x: f64, y: f64, control: u32) -> (f64, u32) {
        let r = compute::<Double>(op, x.to_bits(), y.to_bits(), 0, control);
        (f64::from_bits(r.value), r.flags)
    }

    #[test]
    fn round_to_nearest_matches_the_host_and_flags_inexact() {
        assert_eq!(f32op(Op::Add, 1.0, 2.0, RN), (3.0, 0));
        let (v, f) = f64op(Op::Div, 1.0, 3.0, RN);
        assert_eq!(v, 1.0 / 3.0);
        assert_eq!(f, mx::PE);
    }

    #[test]
    fn overflow_is_raised_also_when_rounding_gives_the_largest_number() {
        let toward_zero = RN | (3 << mx::RC_SHIFT);
        assert_eq!(
            f32op(Op::Mul, f32::MAX, 2.0, toward_zero),
            (f32::MAX, mx::OE | mx::PE)
        );
        assert_eq!(
            f64op(Op::Add, f64::MAX, f64::MAX, toward_zero),
            (f64::MAX, mx::OE | mx::PE)
        );
        // Just above the largest number, but below 2^128: rounded back, no overflow.
        let (v, f) = f32op(Op::Add, f32::MAX, 1.0e30, toward_zero);
        assert_eq!((v, f), (f32::MAX, mx::PE));
    }

    #[test]
    fn an_invalid_or_nan_lane_reports_no_denormal() {
        let tiny = f64::from_bits(1); // a denormal
        assert_eq!(f64op(Op::Sqrt, 0.0, -tiny, RN).1, mx::IE);
        assert_eq!(f64op(Op::Add, tiny, f64::NAN, RN).1, 0);
        assert_eq!(f64op(Op::Add, tiny, 1.0, RN).1, mx::DE | mx::PE);
    }

    #[test]
    fn rounding_control_changes_the_last_bit() {
        let down = RN | (1 << mx::RC_SHIFT);
        let up = RN | (2 << mx::RC_SHIFT);
        let (lo, _) = f64op(Op::Div, 1.0, 3.0, down);
        let (hi, _) = f64op(Op::Div, 1.0, 3.0, up);
        assert_eq!(hi.to_bits() - lo.to_bits(), 1);
    }

    #[test]
    fn invalid_operations_give_the_negative_indefinite() {
        let r = compute::<Single>(
            Op::Sub,
            f32::INFINITY.to_bits() as u64,
            f32::INFINITY.to_bits() as u64,
            0,
            RN,
        );
        assert_eq!((r.value, r.flags), (0xFFC0_0000, mx::IE));
        let r = compute::<Double>(Op::Sqrt, 0, (-1.0f64).to_bits(), 0, RN);
        assert_eq!(r.value, 0xFFF8_0000_0000_0000);
        assert_eq!(f32op(Op::Div, 1.0, 0.0, RN), (f32::INFINITY, mx::ZE));
    }

    #[test]
    fn nans_propagate_first_operand_first_and_min_max_return_the_second() {
        let qnan_a = 0x7FC0_0001u64;
        let snan_b = 0x7F80_0002u64;
        let r = compute::<Single>(Op::Add, qnan_a, snan_b, 0, RN);
        assert_eq!(
            (r.value, r.flags),
            (qnan_a, mx::IE),
            "the first operand's NaN, IE from the SNaN"
        );
        let r = compute::<Single>(Op::Mul, 0x3F80_0000, snan_b, 0, RN);
        assert_eq!(r.value, snan_b | 0x40_0000, "the SNaN comes out quieted");
        let r = compute::<Single>(Op::Min, qnan_a, 0x3F80_0000, 0, RN);
        assert_eq!((r.value, r.flags), (0x3F80_0000, mx::IE));
        // MIN(+0, -0) is the second operand.
        let r = compute::<Double>(Op::Min, 0, (-0.0f64).to_bits(), 0, RN);
        assert_eq!(r.value, (-0.0f64).to_bits());
    }

    #[test]
    fn square_roots_are_correctly_rounded_in_every_direction() {
        for &x in &[2.0f64, 3.0, 0.5, 1e-310, 123456.789, 1e300, 7.0e-5] {
            let (near, flags) = f64op(Op::Sqrt, 0.0, x, RN);
            assert_eq!(near, x.sqrt(), "sqrt({x}) rounds as the host's IEEE sqrt");
            let denormal = if x < f64::MIN_POSITIVE { mx::DE } else { 0 };
            assert_eq!(flags, mx::PE | denormal, "sqrt({x}) is inexact");
            let (down, _) = f64op(Op::Sqrt, 0.0, x, RN | (1 << mx::RC_SHIFT));
            let (up, _) = f64op(Op::Sqrt, 0.0, x, RN | (2 << mx::RC_SHIFT));
            assert_eq!(
                up.to_bits() - down.to_bits(),
                1,
                "sqrt({x}) lies strictly between"
            );
            assert!(down * down < x && up * up > x || down * down <= x && up * up >= x);
        }
        for &x in &[2.0f32, 10.0, 1e-40] {
            assert_eq!(f32op(Op::Sqrt, 0.0, x, RN).0, x.sqrt(), "sqrtss({x})");
        }
        assert_eq!(f64op(Op::Sqrt, 0.0, 16.0, RN), (4.0, 0));
        assert_eq!(f64op(Op::Sqrt, 0.0, 0.25, RN), (0.5, 0));
        let (v, _) = f32op(Op::Sqrt, 0.0, -0.0, RN);
        assert!(v == 0.0 && v.is_sign_negative(), "sqrt(-0) = -0");
    }

    #[test]
    fn daz_and_ftz_replace_denormals_with_zeros() {
        let tiny = f32::from_bits(1);
        assert_eq!(f32op(Op::Add, tiny, 0.0, RN), (tiny, mx::DE));
        assert_eq!(f32op(Op::Add, tiny, 0.0, RN | mx::DAZ), (0.0, 0));
        let (v, f) = f32op(Op::Mul, f32::MIN_POSITIVE, 0.5, RN | mx::FTZ);
        assert_eq!(v, 0.0);
        assert_eq!(f & mx::UE, mx::UE);
    }

    #[test]
    fn compares_make_masks_and_comis_sets_zf_pf_cf() {
        let lt = compute::<Single>(
            Op::Cmp,
            1.0f32.to_bits() as u64,
            2.0f32.to_bits() as u64,
            1,
            RN,
        );
        assert_eq!(lt.value, 0xFFFF_FFFF);
        let unord = compute::<Single>(Op::Cmp, 0x7FC0_0000, 0, 3, RN);
        assert_eq!(
            (unord.value, unord.flags),
            (0xFFFF_FFFF, 0),
            "UNORD is quiet on a QNaN"
        );
        let c = compute::<Double>(Op::Comi(true), 0x7FF8_0000_0000_0000, 0, 0, RN);
        assert_eq!(c.compare, Some(flags::ZF | flags::PF | flags::CF));
        assert_eq!(c.flags, 0, "UCOMISD is quiet on a QNaN");
        let c = compute::<Double>(Op::Comi(false), 0x7FF8_0000_0000_0000, 0, 0, RN);
        assert_eq!(c.flags, mx::IE, "COMISD signals on a QNaN");
    }
}

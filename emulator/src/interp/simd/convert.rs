//! SSE/SSE2 conversions: between single, double and integers, with MXCSR's rounding or truncation.
//! Teaches: what "integer indefinite" is and why CVTT* exists (C's truncating casts).
//!
//! A float that does not fit the integer (or is a NaN) converts to the *integer indefinite*,
//! the most negative integer, and raises IE; an inexact conversion raises PE. CVTT* truncate
//! whatever MXCSR.RC says: that is what C's `(int)x` needs, and why compilers emit them.

use iced_x86::{Instruction, Mnemonic};
use rustc_apfloat::ieee::{Double, Single};
use rustc_apfloat::{Float, FloatConvert, Round, Status};

use super::float::{input, record_flags, rounding, status_flags};
use super::{lane, read, read_reg, write, write_reg, Cpu};
use crate::cpu::fpu::mxcsr as mx;
use crate::interp::{ud, R};

/// The element formats of a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F64,
    I32,
}

/// A conversion: from, to, how many elements, truncating?
#[derive(Debug, Clone, Copy)]
struct Conv {
    from: Elem,
    to: Elem,
    count: usize,
    truncate: bool,
}

fn conv(m: Mnemonic) -> Option<Conv> {
    use Elem::*;
    use Mnemonic as M;
    let c = |from, to, count, truncate| {
        Some(Conv {
            from,
            to,
            count,
            truncate,
        })
    };
    match m {
        M::Cvtps2pd => c(F32, F64, 2, false),
        M::Cvtpd2ps => c(F64, F32, 2, false),
        M::Cvtss2sd => c(F32, F64, 1, false),
        M::Cvtsd2ss => c(F64, F32, 1, false),
        M::Cvtdq2ps => c(I32, F32, 4, false),
        M::Cvtdq2pd => c(I32, F64, 2, false),
        M::Cvtps2dq => c(F32, I32, 4, false),
        M::Cvttps2dq => c(F32, I32, 4, true),
        M::Cvtpd2dq => c(F64, I32, 2, false),
        M::Cvttpd2dq => c(F64, I32, 2, true),
        M::Cvtpi2ps => c(I32, F32, 2, false),
        M::Cvtpi2pd => c(I32, F64, 2, false),
        M::Cvtps2pi => c(F32, I32, 2, false),
        M::Cvttps2pi => c(F32, I32, 2, true),
        M::Cvtpd2pi => c(F64, I32, 2, false),
        M::Cvttpd2pi => c(F64, I32, 2, true),
        _ => None,
    }
}

pub(super) fn handles(m: Mnemonic) -> bool {
    use Mnemonic as M;
    conv(m).is_some()
        || matches!(
            m,
            M::Cvtsi2ss | M::Cvtsi2sd | M::Cvtss2si | M::Cvtsd2si | M::Cvttss2si | M::Cvttsd2si
        )
}

pub(super) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let control = cpu.s().fpu.mxcsr();
    let m = ins.mnemonic();
    let (value, flags) = match m {
        // Integer (r/m32 or r/m64) to the low lane; the rest of the register is kept.
        M::Cvtsi2ss | M::Cvtsi2sd => {
            let size = if ins.op_kind(1) == iced_x86::OpKind::Memory {
                ins.memory_size().size()
            } else {
                ins.op_register(1).size()
            };
            let raw = read(cpu, ins, 1)? as u64;
            let n = crate::interp::sext(raw, size as u32) as i64;
            let old = read_reg(cpu, ins.op_register(0));
            let (to, lane_mask) = if m == M::Cvtsi2ss {
                (Elem::F32, u32::MAX as u128)
            } else {
                (Elem::F64, u64::MAX as u128)
            };
            let (bits, flags) = from_int(to, n, control);
            ((old & !lane_mask) | bits as u128, flags)
        }
        // The low lane to a general register of the destination's size.
        M::Cvtss2si | M::Cvtsd2si | M::Cvttss2si | M::Cvttsd2si => {
            let width = ins.op_register(0).size() * 8;
            let src = read(cpu, ins, 1)?;
            let truncate = matches!(m, M::Cvttss2si | M::Cvttsd2si);
            let from = if matches!(m, M::Cvtss2si | M::Cvttss2si) {
                Elem::F32
            } else {
                Elem::F64
            };
            let bytes = if from == Elem::F32 { 4 } else { 8 };
            let (n, flags) = to_int(from, lane(src, bytes, 0), width, truncate, control);
            (n as u128, flags)
        }
        _ => {
            let c = conv(m).ok_or_else(ud)?;
            let src = read(cpu, ins, 1)?;
            let old = read_reg(cpu, ins.op_register(0));
            convert_lanes(c, src, old, control, ins.op_register(0).is_mm())
        }
    };
    record_flags(cpu, control, flags)?;
    match m {
        M::Cvtss2si | M::Cvtsd2si | M::Cvttss2si | M::Cvttsd2si => write(cpu, ins, 0, value),
        _ => {
            write_reg(cpu, ins.op_register(0), value);
            Ok(())
        }
    }
}

fn bytes(e: Elem) -> usize {
    if e == Elem::F64 {
        8
    } else {
        4
    }
}

/// Converts `c.count` lanes of `src`; the scalar forms keep the rest of `old`, and so does
/// CVTPI2PS (two singles into the low half of an XMM register: checked against the CPU); the
/// other packed ones zero the lanes above the result (CVTPD2PS, CVTPD2DQ) or, for MMX
/// destinations, write 64 bits.
fn convert_lanes(c: Conv, src: u128, old: u128, control: u32, mmx_dst: bool) -> (u128, u32) {
    let (fb, tb) = (bytes(c.from), bytes(c.to));
    let mut out = 0u128;
    let mut flags = 0u32;
    for k in 0..c.count {
        let x = lane(src, fb, k);
        let (v, f) = match (c.from, c.to) {
            (Elem::I32, to) => from_int(to, crate::interp::sext(x, 4) as i64, control),
            (from, Elem::I32) => to_int(from, x, 32, c.truncate, control),
            (from, _) => float_to_float(from, x, control),
        };
        flags |= f;
        out |= (v as u128 & (u128::MAX >> (128 - 8 * tb))) << (k * 8 * tb);
    }
    let written = c.count * tb;
    let keeps_the_rest = c.count == 1 || (c.from == Elem::I32 && c.to == Elem::F32 && c.count == 2);
    if keeps_the_rest {
        let m = u128::MAX >> (128 - 8 * written);
        return ((old & !m) | out, flags);
    }
    if mmx_dst {
        return (out & u64::MAX as u128, flags);
    }
    (out, flags)
}

/// A float lane to a signed integer of `width` bits: the integer indefinite and IE when it
/// does not fit or is a NaN.
fn to_int(from: Elem, bits: u64, width: usize, truncate: bool, control: u32) -> (u64, u32) {
    let round = if truncate {
        Round::TowardZero
    } else {
        rounding(control)
    };
    let mut exact = false;
    // A conversion to an integer raises only invalid and precision: a denormal input is not
    // reported (SDM; checked against the CPU), though DAZ still reads it as zero.
    let mut denormal_not_reported = 0;
    let r = if from == Elem::F32 {
        input::<Single>(bits, control, &mut denormal_not_reported)
            .to_i128_r(width, round, &mut exact)
    } else {
        input::<Double>(bits, control, &mut denormal_not_reported)
            .to_i128_r(width, round, &mut exact)
    };
    let width_mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    if r.status.contains(Status::INVALID_OP) {
        return (1u64 << (width - 1), mx::IE);
    }
    (r.value as u64 & width_mask, status_flags(r.status))
}

fn from_int(to: Elem, n: i64, control: u32) -> (u64, u32) {
    let round = rounding(control);
    if to == Elem::F32 {
        let r = Single::from_i128_r(n as i128, round);
        (r.value.to_bits() as u64, status_flags(r.status))
    } else {
        let r = Double::from_i128_r(n as i128, round);
        (r.value.to_bits() as u64, status_flags(r.status))
    }
}

/// Single ⇄ double. NaNs keep sign and the top of their payload and come out quiet (IE for a
/// signalling one); a narrowing conversion rounds, and may overflow or underflow (FTZ applies).
fn float_to_float(from: Elem, bits: u64, control: u32) -> (u64, u32) {
    let mut flags = 0;
    if from == Elem::F32 {
        let v = input::<Single>(bits, control, &mut flags);
        if v.is_nan() {
            if v.is_signaling() {
                flags |= mx::IE;
            }
            let sign = (bits >> 31) & 1;
            let frac = bits & 0x7F_FFFF;
            return (
                (sign << 63) | (0x7FF << 52) | (frac << 29) | (1 << 51),
                flags,
            );
        }
        let mut loses = false;
        let r: rustc_apfloat::StatusAnd<Double> = v.convert_r(Round::NearestTiesToEven, &mut loses);
        return (r.value.to_bits() as u64, flags | status_flags(r.status));
    }
    let v = input::<Double>(bits, control, &mut flags);
    if v.is_nan() {
        if v.is_signaling() {
            flags |= mx::IE;
        }
        let sign = bits >> 63;
        let frac = (bits >> 29) & 0x7F_FFFF;
        return ((sign << 31) | (0xFF << 23) | frac | (1 << 22), flags);
    }
    let mut loses = false;
    let r: rustc_apfloat::StatusAnd<Single> = v.convert_r(rounding(control), &mut loses);
    let mut out = r.value.to_bits() as u64;
    flags |= status_flags(r.status);
    // rustc_apfloat reports no overflow when it rounds to the largest single (toward zero):
    // IEEE does whenever |x| ≥ 2^128, which rounding toward zero cannot bring back.
    if v.abs() >= Double::from_bits(0x47F0_0000_0000_0000) && !v.is_infinite() {
        flags |= mx::OE | mx::PE;
    }
    let um = control & (mx::UE << mx::MASK_SHIFT) != 0;
    let unmasked = !(control >> mx::MASK_SHIFT) & 0x3F;
    if !um && r.value.is_denormal() {
        flags |= mx::UE; // unmasked: tiny is enough, exact or not
    }
    if flags & (mx::OE | mx::UE) & unmasked != 0 {
        // No result: "inexact" is the rounding to 24 bits with an unbounded exponent.
        let bits = v.to_bits() as u64;
        let hidden = if bits >> 52 & 0x7FF == 0 { 0 } else { 1 << 52 };
        let significand = (bits & ((1 << 52) - 1)) | hidden;
        let used = 64 - significand.leading_zeros() - significand.trailing_zeros();
        flags = (flags & !mx::PE) | if used > 24 { mx::PE } else { 0 };
    }
    if control & mx::FTZ != 0 && um && r.status.contains(Status::UNDERFLOW) {
        out = (bits >> 63) << 31;
        flags |= mx::UE | mx::PE;
    }
    (out, flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    const RN: u32 = crate::cpu::fpu::MXCSR_INIT;

    #[test]
    fn a_double_too_big_for_a_single_overflows_in_every_rounding_mode() {
        let big = (1e39f64).to_bits();
        for rc in 0..4u32 {
            let (_, flags) = float_to_float(Elem::F64, big, RN | (rc << mx::RC_SHIFT));
            assert_eq!(flags, mx::OE | mx::PE, "RC {rc}");
        }
    }

    #[test]
    fn out_of_range_and_nan_give_the_integer_indefinite() {
        let big = (3.0e9f64).to_bits();
        assert_eq!(to_int(Elem::F64, big, 32, true, RN), (0x8000_0000, mx::IE));
        let nan = f32::NAN.to_bits() as u64;
        assert_eq!(to_int(Elem::F32, nan, 64, false, RN), (1 << 63, mx::IE));
        assert_eq!(
            to_int(Elem::F64, (-2.5f64).to_bits(), 32, true, RN),
            (-2i32 as u32 as u64, mx::PE)
        );
        assert_eq!(
            to_int(Elem::F64, (-2.5f64).to_bits(), 32, false, RN),
            (-2i32 as u32 as u64, mx::PE),
            "ties to even"
        );
        assert_eq!(
            to_int(Elem::F64, (3.5f64).to_bits(), 32, false, RN),
            (4, mx::PE)
        );
    }

    #[test]
    fn integers_to_floats_round_by_mxcsr() {
        let (bits, flags) = from_int(Elem::F32, 16_777_217, RN);
        assert_eq!((f32::from_bits(bits as u32), flags), (16_777_216.0, mx::PE));
        let up = RN | (2 << mx::RC_SHIFT);
        let (bits, _) = from_int(Elem::F32, 16_777_217, up);
        assert_eq!(f32::from_bits(bits as u32), 16_777_218.0);
        assert_eq!(from_int(Elem::F64, -7, RN), ((-7.0f64).to_bits(), 0));
    }

    #[test]
    fn single_and_double_convert_with_nan_payloads_kept() {
        let (d, f) = float_to_float(Elem::F32, 1.5f32.to_bits() as u64, RN);
        assert_eq!((f64::from_bits(d), f), (1.5, 0));
        let snan = 0x7F80_0001u64;
        let (d, f) = float_to_float(Elem::F32, snan, RN);
        assert_eq!((d, f), (0x7FF8_0000_2000_0000, mx::IE));
        let (s, f) = float_to_float(Elem::F64, 1e300f64.to_bits(), RN);
        assert_eq!(f32::from_bits(s as u32), f32::INFINITY);
        assert_eq!(f, mx::OE | mx::PE);
    }

    #[test]
    fn packed_conversions_zero_the_upper_lanes_and_scalars_keep_them() {
        let c = conv(Mnemonic::Cvtpd2ps).unwrap();
        let src = (1.0f64.to_bits() as u128) | ((2.0f64.to_bits() as u128) << 64);
        let (v, _) = convert_lanes(c, src, u128::MAX, RN, false);
        assert_eq!(
            v,
            (1.0f32.to_bits() as u128) | ((2.0f32.to_bits() as u128) << 32)
        );
        let c = conv(Mnemonic::Cvtsd2ss).unwrap();
        let (v, _) = convert_lanes(c, src, u128::MAX, RN, false);
        assert_eq!(v, (u128::MAX << 32) | 1.0f32.to_bits() as u128);
    }
}

//! The x87's 80-bit extended format and its rounding, by hand: the arithmetic the FPU does in hardware.
//! Teaches: an explicit integer bit, precision control (24/53/64 bits with the extended exponent), one rounding step with sticky bits, tininess after rounding.
//!
//! Every operation computes the exact result (or enough of it: the bits up to the rounding
//! position and a "sticky" bit saying whether anything nonzero lies below) and then rounds it
//! once, in [`round`], to a [`Format`]: the register format under precision control, or the
//! single/double formats of a memory store. Soft float is used instead of the host's FPU so the
//! result is the same on every host, wasm included, and so every flag is visible.
//!
//! A value here is `sig · 2^e` with `sig` an integer; [`Ext`] is the 80-bit register pattern.

/// Bias of the extended exponent.
pub const BIAS: i32 = 16383;

/// Status bits an operation raises, in FSW's positions (IE..PE), plus C1 ("rounded up").
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub flags: u16,
    /// The result's magnitude was increased by rounding (FSW.C1 after an arithmetic op).
    pub round_up: bool,
}

/// The exception flags IE..PE, in their FSW positions.
pub use crate::cpu::fpu::fsw as flag;

/// FCW's rounding control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    Nearest,
    Down,
    Up,
    Zero,
}

impl Rounding {
    pub fn from_field(rc: u16) -> Rounding {
        match rc & 3 {
            0 => Rounding::Nearest,
            1 => Rounding::Down,
            2 => Rounding::Up,
            _ => Rounding::Zero,
        }
    }
}

/// A destination format: significand bits and the unbiased exponent range of normal numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub bits: u32,
    pub emin: i32,
    pub emax: i32,
}

pub const EXTENDED: Format = Format {
    bits: 64,
    emin: -16382,
    emax: 16383,
};
pub const DOUBLE: Format = Format {
    bits: 53,
    emin: -1022,
    emax: 1023,
};
pub const SINGLE: Format = Format {
    bits: 24,
    emin: -126,
    emax: 127,
};

/// The register format under FCW's precision control (PC = 0: 24 bits, 2: 53, 3: 64; 1 is
/// reserved and behaves as 64 here): fewer significand bits, the extended exponent range.
pub fn register_format(pc: u16) -> Format {
    let bits = match pc & 3 {
        0 => 24,
        2 => 53,
        _ => 64,
    };
    Format { bits, ..EXTENDED }
}

/// An 80-bit register value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ext {
    pub sign: bool,
    /// Biased 15-bit exponent.
    pub exp: u16,
    /// Significand including the explicit integer bit (bit 63).
    pub sig: u64,
}

/// What an 80-bit pattern is (SDM vol. 1, table 8-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Zero,
    /// Exponent 0, nonzero significand (a pseudo-denormal, integer bit set, included).
    Denormal,
    Normal,
    Infinity,
    QNan,
    SNan,
    /// Unnormal, pseudo-NaN, pseudo-infinity: the 387 and later reject them as operands (#IA).
    Unsupported,
}

const INT_BIT: u64 = 1 << 63;
const QUIET_BIT: u64 = 1 << 62;

impl Ext {
    pub const ZERO: Ext = Ext {
        sign: false,
        exp: 0,
        sig: 0,
    };
    /// The "real indefinite" QNaN an invalid operation returns when masked.
    pub const INDEFINITE: Ext = Ext {
        sign: true,
        exp: 0x7FFF,
        sig: INT_BIT | QUIET_BIT,
    };
    #[cfg(test)]
    pub const ONE: Ext = Ext {
        sign: false,
        exp: BIAS as u16,
        sig: INT_BIT,
    };

    pub fn from_bits(v: u128) -> Ext {
        Ext {
            sign: (v >> 79) & 1 != 0,
            exp: ((v >> 64) & 0x7FFF) as u16,
            sig: v as u64,
        }
    }
    pub fn to_bits(self) -> u128 {
        ((self.sign as u128) << 79) | ((self.exp as u128) << 64) | self.sig as u128
    }
    pub fn infinity(sign: bool) -> Ext {
        Ext {
            sign,
            exp: 0x7FFF,
            sig: INT_BIT,
        }
    }
    pub fn zero(sign: bool) -> Ext {
        Ext { sign, ..Ext::ZERO }
    }
    pub fn negate(self) -> Ext {
        Ext {
            sign: !self.sign,
            ..self
        }
    }
    pub fn abs(self) -> Ext {
        Ext {
            sign: false,
            ..self
        }
    }

    pub fn class(self) -> Class {
        let int = self.sig & INT_BIT != 0;
        match self.exp {
            0 if self.sig == 0 => Class::Zero,
            0 => Class::Denormal,
            0x7FFF if !int => Class::Unsupported,
            0x7FFF if self.sig == INT_BIT => Class::Infinity,
            0x7FFF if self.sig & QUIET_BIT != 0 => Class::QNan,
            0x7FFF => Class::SNan,
            _ if !int => Class::Unsupported,
            _ => Class::Normal,
        }
    }
    pub fn is_nan(self) -> bool {
        matches!(self.class(), Class::QNan | Class::SNan)
    }
    /// A NaN with its quiet bit set.
    pub fn quieted(self) -> Ext {
        Ext {
            sig: self.sig | QUIET_BIT,
            ..self
        }
    }

    /// The value as `sig · 2^e` (finite, nonzero classes only): a denormal's exponent is the
    /// smallest normal one.
    pub fn unpack(self) -> (u64, i32) {
        let e = (self.exp.max(1)) as i32 - BIAS - 63;
        (self.sig, e)
    }
}

// ANCHOR: round_bits
/// Rounds `mant` right by `shift` bits (left if negative) under `rc`; `sticky` says the exact
/// value lies a little above `mant` (below its lowest bit).
fn round_bits(
    mant: u128,
    sticky: bool,
    shift: i32,
    sign: bool,
    rc: Rounding,
) -> (u128, bool, bool) {
    let (q, half, rest) = if shift <= 0 {
        (mant << (-shift) as u32, false, sticky)
    } else if shift > 128 {
        (0, false, sticky || mant != 0)
    } else if shift == 128 {
        (0, mant >> 127 != 0, sticky || mant & (u128::MAX >> 1) != 0)
    } else {
        let below = mant & ((1u128 << shift) - 1);
        let half_bit = 1u128 << (shift - 1);
        (
            mant >> shift,
            below & half_bit != 0,
            sticky || below & (half_bit - 1) != 0,
        )
    };
    let inexact = half || rest;
    let up = match rc {
        Rounding::Nearest => half && (rest || q & 1 != 0),
        Rounding::Zero => false,
        Rounding::Up => !sign && inexact,
        Rounding::Down => sign && inexact,
    };
    (q + up as u128, inexact, up)
}
// ANCHOR_END: round_bits

/// What `round` produced: a finite number, or an overflow the caller turns into ∞ or the
/// largest finite number (masked) or a biased result (unmasked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub value: Ext,
    pub raised: Raised,
}

/// Rounds the exact value `(−1)^sign · (mant + sticky) · 2^e` (`mant` nonzero; with `sticky`,
/// `mant` has at least `fmt.bits + 2` significant bits) to `fmt` under `rc`, and packs it in
/// the register layout (for SINGLE/DOUBLE the caller repacks with [`to_f32`]/[`to_f64`]).
/// `um`/`om` say whether underflow/overflow are masked: unmasked, the x87 stores the result
/// with its exponent biased by ∓24576 (SDM vol. 1, 8.5.4–8.5.5).
pub fn round(
    sign: bool,
    mant: u128,
    e: i32,
    sticky: bool,
    fmt: Format,
    rc: Rounding,
    masks: u16,
) -> Outcome {
    debug_assert!(mant != 0);
    let lead = 127 - mant.leading_zeros() as i32;
    let exp = e + lead; // exponent of the leading bit
    let bits = fmt.bits as i32;
    // First with an unbounded exponent: tininess is decided after rounding (vol. 1, 4.9.1.5).
    let (mut q, mut inexact, mut up) = round_bits(mant, sticky, lead - (bits - 1), sign, rc);
    let mut qexp = exp;
    if q >> bits != 0 {
        q >>= 1;
        qexp += 1;
    }
    let mut raised = Raised::default();
    let tiny = qexp < fmt.emin;
    if tiny {
        if masks & flag::UE == 0 {
            raised.flags |= flag::UE;
            qexp += 24576;
            if qexp < fmt.emin {
                // Even the bias does not bring it into range (FSCALE by a huge negative
                // power): the result cannot be exact (checked against an Intel CPU).
                raised.flags |= flag::PE;
            }
        } else {
            // Denormalize: round once more at the fixed position of the smallest exponent.
            let shift = lead - (bits - 1) + (fmt.emin - exp);
            (q, inexact, up) = round_bits(mant, sticky, shift, sign, rc);
            qexp = fmt.emin; // q's bit (bits−1) stands for 2^emin; a carry into it is normal
            if inexact {
                raised.flags |= flag::UE;
            }
            raised.flags |= if inexact { flag::PE } else { 0 };
            raised.round_up = up;
            return Outcome {
                value: pack(sign, q, qexp - (bits - 1)),
                raised,
            };
        }
    } else if qexp > fmt.emax {
        raised.flags |= flag::OE | flag::PE;
        // Unmasked, the exponent is biased by 24576 — unless even that does not fit (FSCALE by
        // a huge power): then ∞ whatever the rounding, as the CPU gives (checked against it).
        if masks & flag::OE == 0 && qexp - 24576 > fmt.emax {
            raised.round_up = true;
            return Outcome {
                value: Ext::infinity(sign),
                raised,
            };
        }
        if masks & flag::OE == 0 {
            qexp -= 24576;
        } else {
            let to_infinity = match rc {
                Rounding::Nearest => true,
                Rounding::Zero => false,
                Rounding::Up => !sign,
                Rounding::Down => sign,
            };
            raised.round_up = to_infinity;
            let value = if to_infinity {
                Ext::infinity(sign)
            } else {
                let largest = u128::MAX >> (128 - bits);
                pack(sign, largest, fmt.emax - (bits - 1))
            };
            return Outcome { value, raised };
        }
    }
    if inexact {
        raised.flags |= flag::PE;
    }
    raised.round_up = up;
    Outcome {
        value: pack(sign, q, qexp - (bits - 1)),
        raised,
    }
}

/// Packs `q · 2^qe` (`q` below `2^fmt.bits`, a normal number or a denormal of `fmt`) in the
/// 80-bit register layout: the significand left-justified, the exponent rebiased.
fn pack(sign: bool, q: u128, qe: i32) -> Ext {
    if q == 0 {
        return Ext::zero(sign);
    }
    let lead = 127 - q.leading_zeros() as i32;
    let exp = qe + lead;
    let sig = (q << (63 - lead)) as u64;
    if exp < EXTENDED.emin {
        // An extended denormal: exponent field 0, significand = value / 2^(−16382−63).
        let shift = EXTENDED.emin - exp;
        return Ext {
            sign,
            exp: 0,
            sig: if shift >= 64 { 0 } else { sig >> shift },
        };
    }
    Ext {
        sign,
        exp: (exp + BIAS).clamp(0, 0x7FFF) as u16,
        sig,
    }
}

/// Rounds a finite register value to `fmt` (for stores and precision control).
pub fn round_ext(x: Ext, fmt: Format, rc: Rounding, masks: u16) -> Outcome {
    if matches!(x.class(), Class::Zero) || x.exp == 0x7FFF {
        return Outcome {
            value: x,
            raised: Raised::default(),
        };
    }
    let (sig, e) = x.unpack();
    round(x.sign, sig as u128, e, false, fmt, rc, masks)
}

// ---- conversions between the memory formats and the register format ----

/// An IEEE single or double as a register value (exact). `denormal`: the input was one (#D).
pub fn from_ieee(bits: u64, double: bool) -> (Ext, bool) {
    let (frac_bits, exp_bits) = if double { (52, 11) } else { (23, 8) };
    let sign = (bits >> (frac_bits + exp_bits)) & 1 != 0;
    let exp = ((bits >> frac_bits) & ((1 << exp_bits) - 1)) as i32;
    let frac = bits & ((1u64 << frac_bits) - 1);
    let max = (1 << exp_bits) - 1;
    let bias = (1 << (exp_bits - 1)) - 1;
    if exp == max {
        let sig = INT_BIT | (frac << (63 - frac_bits));
        return (
            Ext {
                sign,
                exp: 0x7FFF,
                sig,
            },
            false,
        );
    }
    if exp == 0 {
        if frac == 0 {
            return (Ext::zero(sign), false);
        }
        // value = frac · 2^(1 − bias − frac_bits): normalize into the extended range.
        let lead = 63 - frac.leading_zeros() as i32;
        let e = 1 - bias - frac_bits + lead;
        let sig = frac << (63 - lead);
        return (
            Ext {
                sign,
                exp: (e + BIAS) as u16,
                sig,
            },
            true,
        );
    }
    let sig = INT_BIT | (frac << (63 - frac_bits));
    (
        Ext {
            sign,
            exp: (exp - bias + BIAS) as u16,
            sig,
        },
        false,
    )
}

/// Packs a register value already rounded to SINGLE/DOUBLE (by [`round`]) into its IEEE bits.
pub fn to_ieee(x: Ext, double: bool) -> u64 {
    let (frac_bits, exp_bits) = if double { (52u32, 11u32) } else { (23, 8) };
    let sign = (x.sign as u64) << (frac_bits + exp_bits);
    let max = (1u64 << exp_bits) - 1;
    let bias = (1i32 << (exp_bits - 1)) - 1;
    match x.class() {
        Class::Zero => sign,
        Class::Infinity => sign | (max << frac_bits),
        Class::QNan | Class::SNan | Class::Unsupported => {
            let frac = (x.sig & !INT_BIT) >> (63 - frac_bits);
            sign | (max << frac_bits) | frac
        }
        Class::Normal | Class::Denormal => {
            let (sig, e) = x.unpack();
            let lead = 63 - sig.leading_zeros() as i32;
            let exp = e + lead;
            if exp < 1 - bias {
                // Denormal in the target: frac = value / 2^(1 − bias − frac_bits).
                let shift = (1 - bias - frac_bits as i32) - e;
                let frac = if shift >= 64 { 0 } else { sig >> shift };
                sign | frac
            } else {
                let frac = (sig << (63 - lead)) << 1 >> (64 - frac_bits);
                sign | (((exp + bias) as u64) << frac_bits) | frac
            }
        }
    }
}

// ---- the arithmetic on finite nonzero values (the callers handle NaN, ∞ and 0) ----

/// x + y exact to a sticky bit, rounded to `fmt`; `None` when the exact sum is zero.
pub fn add(x: Ext, y: Ext, fmt: Format, rc: Rounding, masks: u16) -> Option<Outcome> {
    let (mut a, mut b) = (x, y);
    let (sa, ea) = a.unpack();
    let (sb, eb) = b.unpack();
    // a is the operand with the larger magnitude's exponent.
    let (mut ma, mut ea, mut mb, mut eb) = (sa, ea, sb, eb);
    if eb > ea || (eb == ea && mb > ma) {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut ma, &mut mb);
        std::mem::swap(&mut ea, &mut eb);
    }
    let wide_a = (ma as u128) << 62;
    let d = (ea - eb) as u32;
    let wide_b = (mb as u128) << 62;
    let (bshift, lost) = if d >= 127 {
        (0u128, wide_b != 0)
    } else {
        (wide_b >> d, wide_b & ((1u128 << d) - 1) != 0)
    };
    let e = ea - 62;
    let (mant, sticky) = if a.sign == b.sign {
        (wide_a + bshift, lost)
    } else if lost {
        // a − (b + ε) = (a − b − 1) + (1 − ε): just above the integer below.
        (wide_a - bshift - 1, true)
    } else {
        (wide_a - bshift, false)
    };
    if mant == 0 && !sticky {
        return None;
    }
    Some(round(a.sign, mant, e, sticky, fmt, rc, masks))
}

pub fn mul(x: Ext, y: Ext, fmt: Format, rc: Rounding, masks: u16) -> Outcome {
    let (sa, ea) = x.unpack();
    let (sb, eb) = y.unpack();
    let mant = sa as u128 * sb as u128;
    round(x.sign != y.sign, mant, ea + eb, false, fmt, rc, masks)
}

pub fn div(x: Ext, y: Ext, fmt: Format, rc: Rounding, masks: u16) -> Outcome {
    let (sa, ea) = x.unpack();
    let (sb, eb) = y.unpack();
    let (sa, ea) = normalize(sa, ea);
    let (sb, eb) = normalize(sb, eb);
    let num = (sa as u128) << 64;
    let (q1, r1) = (num / sb as u128, num % sb as u128);
    let num2 = r1 << 64;
    let (q2, r2) = (num2 / sb as u128, num2 % sb as u128);
    let mant = (q1 << 2) | (q2 >> 62);
    let sticky = q2 & ((1 << 62) - 1) != 0 || r2 != 0;
    round(x.sign != y.sign, mant, ea - eb - 66, sticky, fmt, rc, masks)
}

/// √x for positive finite x.
pub fn sqrt(x: Ext, fmt: Format, rc: Rounding, masks: u16) -> Outcome {
    let (s, e) = x.unpack();
    let (s, e) = normalize(s, e);
    // m = s · 2^k in [2^126, 2^128) with e − k even, so √(s·2^e) = √m · 2^((e−k)/2).
    let k = if (e - 63).rem_euclid(2) == 0 { 63 } else { 64 };
    let m = (s as u128) << k;
    let r = isqrt(m);
    let (mant, sticky) = if m > r * r + r {
        ((r << 2) | 2, true) // strictly between r + ½ and r + 1
    } else {
        (r << 2, m != r * r)
    };
    round(false, mant, (e - k) / 2 - 2, sticky, fmt, rc, masks)
}

/// Shifts a significand so its integer bit is set (denormals and pseudo-denormals).
pub fn normalize(sig: u64, e: i32) -> (u64, i32) {
    let z = sig.leading_zeros() as i32;
    (sig << z, e - z)
}

/// ⌊√m⌋, digit by digit.
fn isqrt(mut m: u128) -> u128 {
    let mut res: u128 = 0;
    let mut bit: u128 = 1 << 126;
    while bit > m {
        bit >>= 2;
    }
    while bit != 0 {
        if m >= res + bit {
            m -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    res
}

/// A finite value rounded to an integer under `rc` (FIST): the magnitude when it fits in 64
/// bits, whether it was inexact, whether it was rounded up.
pub fn to_integer(x: Ext, rc: Rounding) -> (Option<u64>, bool, bool) {
    if x.class() == Class::Zero {
        return (Some(0), false, false);
    }
    let (sig, e) = x.unpack();
    if e >= 1 {
        // Already an integer of at least 65 bits.
        return (None, false, false);
    }
    let (q, inexact, up) = round_bits(sig as u128, false, -e, x.sign, rc);
    (u64::try_from(q).ok(), inexact, up)
}

/// A finite value rounded to an integral value in the register format (FRNDINT): the value,
/// whether it was inexact, whether it was rounded up. A zero keeps the operand's sign.
pub fn round_to_integral(x: Ext, rc: Rounding) -> (Ext, bool, bool) {
    if x.class() == Class::Zero {
        return (x, false, false);
    }
    let (sig, e) = x.unpack();
    if e >= 0 {
        return (x, false, false);
    }
    let (q, inexact, up) = round_bits(sig as u128, false, -e, x.sign, rc);
    let v = if q >> 64 != 0 {
        Ext {
            sign: x.sign,
            exp: (BIAS + 64) as u16,
            sig: INT_BIT,
        }
    } else {
        from_integer(x.sign, q as u64)
    };
    (v, inexact, up)
}

/// The register value of an integer magnitude (exact for 64 bits).
pub fn from_integer(sign: bool, magnitude: u64) -> Ext {
    if magnitude == 0 {
        return Ext::zero(sign);
    }
    let z = magnitude.leading_zeros();
    Ext {
        sign,
        exp: (BIAS + 63 - z as i32) as u16,
        sig: magnitude << z,
    }
}

/// Compares finite or infinite values (not NaN): less, equal, greater.
pub fn compare(x: Ext, y: Ext) -> std::cmp::Ordering {
    use std::cmp::Ordering as O;
    let zx = x.class() == Class::Zero;
    let zy = y.class() == Class::Zero;
    if zx && zy {
        return O::Equal;
    }
    if x.sign != y.sign {
        return if x.sign { O::Less } else { O::Greater };
    }
    let mag = |v: Ext| -> (i32, u64) {
        match v.class() {
            Class::Zero => (i32::MIN, 0),
            Class::Infinity => (i32::MAX, 0),
            _ => {
                let (s, e) = normalize(v.sig, v.unpack().1);
                (e + 63, s)
            }
        }
    };
    let o = mag(x).cmp(&mag(y));
    if x.sign {
        o.reverse()
    } else {
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(v: f64) -> Ext {
        from_ieee(v.to_bits(), true).0
    }
    fn f(v: Ext) -> f64 {
        let r = round_ext(v, DOUBLE, Rounding::Nearest, 0x3F).value;
        f64::from_bits(to_ieee(r, true))
    }
    const ALL_MASKED: u16 = 0x3F;

    #[test]
    fn doubles_survive_the_round_trip() {
        for v in [1.0, -2.5, 1e300, 5e-324, f64::MIN_POSITIVE, 0.1, f64::MAX] {
            assert_eq!(f(ext(v)), v, "{v:e}");
        }
    }

    #[test]
    fn add_mul_div_sqrt_match_ieee_double_under_53_bit_precision() {
        let pc53 = register_format(2);
        let r = Rounding::Nearest;
        let vals = [1.0, 3.0, 0.1, 1e-310, 7.25e200, -2.0 / 3.0, 123456.789];
        for &a in &vals {
            for &b in &vals {
                // Where the double result is subnormal the x87 rounds twice (to 53 bits with
                // the wide exponent, then to the narrow format on the store): not compared.
                let normal = |v: f64| v == 0.0 || v.abs() >= f64::MIN_POSITIVE;
                let s = add(ext(a), ext(b), pc53, r, ALL_MASKED).unwrap().value;
                assert_eq!(f(s), a + b, "{a} + {b}");
                if normal(a * b) {
                    let p = mul(ext(a), ext(b), pc53, r, ALL_MASKED).value;
                    assert_eq!(f(p), a * b, "{a} * {b}");
                }
                if normal(a / b) {
                    let q = div(ext(a), ext(b), pc53, r, ALL_MASKED).value;
                    assert_eq!(f(q), a / b, "{a} / {b}");
                }
            }
            if a > 0.0 {
                assert_eq!(
                    f(sqrt(ext(a), pc53, r, ALL_MASKED).value),
                    a.sqrt(),
                    "sqrt {a}"
                );
            }
        }
    }

    #[test]
    fn one_third_has_64_bits_and_rounds_by_the_control_word() {
        let third = |rc| div(Ext::ONE, ext(3.0), EXTENDED, rc, ALL_MASKED);
        let near = third(Rounding::Nearest);
        assert_eq!(near.value.sig, 0xAAAA_AAAA_AAAA_AAAB, "…A.AB: rounded up");
        assert!(near.raised.round_up && near.raised.flags & flag::PE != 0);
        assert_eq!(third(Rounding::Zero).value.sig, 0xAAAA_AAAA_AAAA_AAAA);
        assert!(!third(Rounding::Zero).raised.round_up);
    }

    #[test]
    fn exact_cancellation_and_tiny_results() {
        assert!(add(ext(1.0), ext(-1.0), EXTENDED, Rounding::Nearest, ALL_MASKED).is_none());
        // The smallest extended denormal, halved: underflow, inexact, rounds to zero (even).
        let tiny = Ext {
            sign: false,
            exp: 0,
            sig: 1,
        };
        let half = mul(tiny, ext(0.5), EXTENDED, Rounding::Nearest, ALL_MASKED);
        assert_eq!(half.value, Ext::ZERO);
        assert_eq!(half.raised.flags, flag::UE | flag::PE);
        let up = mul(tiny, ext(0.5), EXTENDED, Rounding::Up, ALL_MASKED);
        assert_eq!(up.value, tiny);
    }

    #[test]
    fn overflow_follows_the_rounding_mode() {
        let big = Ext {
            sign: false,
            exp: 0x7FFE,
            sig: u64::MAX,
        };
        let two = ext(2.0);
        let o = mul(big, two, EXTENDED, Rounding::Nearest, ALL_MASKED);
        assert_eq!(o.value, Ext::infinity(false));
        assert_eq!(o.raised.flags, flag::OE | flag::PE);
        assert_eq!(
            mul(big, two, EXTENDED, Rounding::Zero, ALL_MASKED).value,
            big
        );
        // Unmasked: the exponent is biased by 24576 and the result stored.
        let biased = mul(
            big,
            two,
            EXTENDED,
            Rounding::Nearest,
            ALL_MASKED & !flag::OE,
        )
        .value;
        assert_eq!(biased.exp as i32, 0x7FFF - 24576);
    }

    #[test]
    fn an_unmasked_underflow_beyond_the_bias_is_inexact_too() {
        let unmasked = ALL_MASKED & !flag::UE;
        // 2^-20000: tiny, but 2^(−20000 + 24576) is in range: exact, UE only.
        let o = round(
            false,
            1,
            -20000,
            false,
            EXTENDED,
            Rounding::Nearest,
            unmasked,
        );
        assert_eq!(o.raised.flags, flag::UE);
        // 2^-60000 (FSCALE by a huge negative power): the bias cannot save it.
        let o = round(
            false,
            1,
            -60000,
            false,
            EXTENDED,
            Rounding::Nearest,
            unmasked,
        );
        assert_eq!(o.raised.flags, flag::UE | flag::PE);
    }

    #[test]
    fn classes_of_odd_encodings() {
        let unnormal = Ext {
            sign: false,
            exp: 5,
            sig: 1,
        };
        assert_eq!(unnormal.class(), Class::Unsupported);
        assert_eq!(Ext::INDEFINITE.class(), Class::QNan);
        let pseudo_denormal = Ext {
            sign: false,
            exp: 0,
            sig: INT_BIT,
        };
        assert_eq!(pseudo_denormal.class(), Class::Denormal);
        assert_eq!(
            compare(pseudo_denormal, ext(f64::MIN_POSITIVE)),
            std::cmp::Ordering::Less
        );
    }

    #[test]
    fn integers_round_by_the_mode() {
        assert_eq!(to_integer(ext(2.5), Rounding::Nearest).0, Some(2));
        assert_eq!(to_integer(ext(-2.5), Rounding::Down).0, Some(3));
        assert_eq!(to_integer(ext(2.5), Rounding::Up).0, Some(3));
        assert_eq!(from_integer(true, 5), ext(-5.0));
    }
}

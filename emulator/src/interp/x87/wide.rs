//! A 128-bit-significand float for the x87's transcendental functions: about twice the precision of the result.
//! Teaches: why a library computes sin/log in more bits than it returns — so that one final rounding gives (almost always) the correctly rounded 64-bit answer.
//!
//! `Wide` values are `±m · 2^(e − 127)` with `m` normalized (bit 127 set) or zero. Operations
//! truncate below bit 0 of the significand; every function built on them keeps its error far
//! below the 2^−64 that the final rounding to the register format cares about.

use super::ext80::{self, Ext, Outcome, Rounding};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wide {
    pub sign: bool,
    pub e: i32,
    pub m: u128,
}

pub const ZERO: Wide = Wide {
    sign: false,
    e: 0,
    m: 0,
};

/// π, ln 2 and log₂ e to 128 bits (truncated).
pub const PI: Wide = Wide {
    sign: false,
    e: 1,
    m: 0xc90fdaa22168c234c4c6628b80dc1cd1,
};
pub const LN2: Wide = Wide {
    sign: false,
    e: -1,
    m: 0xb17217f7d1cf79abc9e3b39803f2f6af,
};
pub const LOG2_E: Wide = Wide {
    sign: false,
    e: 0,
    m: 0xb8aa3b295c17f0bbbe87fed0691d3e88,
};

impl Wide {
    pub fn from_parts(sign: bool, m: u128, e: i32) -> Wide {
        if m == 0 {
            return ZERO;
        }
        let z = m.leading_zeros() as i32;
        Wide {
            sign,
            e: e - z,
            m: m << z,
        }
    }
    pub fn from_int(v: i64) -> Wide {
        Wide::from_parts(v < 0, v.unsigned_abs() as u128, 127)
    }
    /// A finite register value, exactly.
    pub fn from_ext(x: Ext) -> Wide {
        if x.class() == ext80::Class::Zero {
            return Wide {
                sign: x.sign,
                ..ZERO
            };
        }
        let (sig, e) = x.unpack();
        // sig · 2^e = (sig << 64) · 2^(e − 64), and the leading bit of `sig << 64` is at 127 − z.
        Wide::from_parts(x.sign, (sig as u128) << 64, e - 64 + 127)
    }
    pub fn is_zero(self) -> bool {
        self.m == 0
    }
    pub fn neg(self) -> Wide {
        Wide {
            sign: !self.sign,
            ..self
        }
    }
    pub fn abs(self) -> Wide {
        Wide {
            sign: false,
            ..self
        }
    }
    /// `self · 2^n`.
    pub fn scale(self, n: i32) -> Wide {
        if self.is_zero() {
            self
        } else {
            Wide {
                e: self.e + n,
                ..self
            }
        }
    }

    pub fn mul(self, o: Wide) -> Wide {
        if self.is_zero() || o.is_zero() {
            return ZERO;
        }
        let hi = mul_high(self.m, o.m); // (m1 · m2) >> 128, at least 2^126
        Wide::from_parts(self.sign != o.sign, hi, self.e + o.e + 1)
    }

    pub fn add(self, o: Wide) -> Wide {
        if self.is_zero() {
            return o;
        }
        if o.is_zero() {
            return self;
        }
        let (a, b) = if (self.e, self.m) >= (o.e, o.m) {
            (self, o)
        } else {
            (o, self)
        };
        let d = (a.e - b.e) as u32;
        // One guard bit of headroom: work with both shifted right by one.
        let (am, bm) = (a.m >> 1, if d >= 127 { 0 } else { (b.m >> 1) >> d });
        let m = if a.sign == b.sign { am + bm } else { am - bm };
        Wide::from_parts(a.sign, m, a.e + 1)
    }
    pub fn sub(self, o: Wide) -> Wide {
        self.add(o.neg())
    }

    pub fn div(self, o: Wide) -> Wide {
        if self.is_zero() {
            return ZERO;
        }
        // Long division of the significands: 128 quotient bits.
        let (mut rem, d) = (self.m, o.m);
        let mut q: u128 = 0;
        let mut carry = false;
        for _ in 0..128 {
            q <<= 1;
            if carry || rem >= d {
                rem = rem.wrapping_sub(d);
                q |= 1;
            }
            carry = rem >> 127 != 0;
            rem <<= 1;
        }
        // self.m / o.m is in (1/2, 2): q holds it with 127 fraction bits.
        Wide::from_parts(self.sign != o.sign, q, self.e - o.e)
    }

    /// √self by Newton's iteration from a double-precision guess: three steps suffice for
    /// arguments whose exponent a double can hold (its one use, FPATAN's √(1 + z²), is near 1).
    pub fn sqrt(self) -> Wide {
        if self.is_zero() {
            return self;
        }
        // Newton's iteration from a double-precision start: each step doubles the good bits.
        let approx = self.to_f64().sqrt();
        let mut y = Wide::from_f64(approx);
        for _ in 0..3 {
            y = y.add(self.div(y)).scale(-1);
        }
        y
    }

    /// Nearest double (for starting values only).
    pub fn to_f64(self) -> f64 {
        let v = (self.m >> 64) as f64 * 2f64.powi(self.e - 63);
        if self.sign {
            -v
        } else {
            v
        }
    }
    pub fn from_f64(v: f64) -> Wide {
        let (value, _) = ext80::from_ieee(v.to_bits(), true);
        Wide::from_ext(value)
    }

    /// Rounds to the register format under `rc` (the bits below the 128 kept are unknown but
    /// nonzero for a transcendental value: the result is inexact).
    pub fn round(self, rc: Rounding, masks: u16) -> Outcome {
        if self.is_zero() {
            return Outcome {
                value: Ext::zero(self.sign),
                raised: Default::default(),
            };
        }
        ext80::round(
            self.sign,
            self.m,
            self.e - 127,
            true,
            ext80::EXTENDED,
            rc,
            masks,
        )
    }
}

/// The high 128 bits of a 128 × 128-bit product.
fn mul_high(a: u128, b: u128) -> u128 {
    let (a1, a0) = (a >> 64, a & u64::MAX as u128);
    let (b1, b0) = (b >> 64, b & u64::MAX as u128);
    let low = a0 * b0;
    let mid1 = a1 * b0;
    let mid2 = a0 * b1;
    let high = a1 * b1;
    let carry = ((low >> 64) + (mid1 & u64::MAX as u128) + (mid2 & u64::MAX as u128)) >> 64;
    high + (mid1 >> 64) + (mid2 >> 64) + carry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Wide, b: f64) {
        let x = a.to_f64();
        assert!((x - b).abs() <= b.abs() * 1e-15, "{x} vs {b}");
    }

    #[test]
    fn arithmetic_agrees_with_doubles() {
        let (a, b) = (Wide::from_f64(3.25), Wide::from_f64(-0.125));
        close(a.add(b), 3.125);
        close(a.sub(b), 3.375);
        close(a.mul(b), -0.40625);
        close(a.div(b), -26.0);
        close(Wide::from_f64(2.0).sqrt(), std::f64::consts::SQRT_2);
        close(PI, std::f64::consts::PI);
        close(LN2.mul(LOG2_E), 1.0);
    }

    #[test]
    fn sqrt_two_squared_is_two_to_about_120_bits() {
        let s = Wide::from_f64(2.0).sqrt();
        let err = s.mul(s).sub(Wide::from_f64(2.0));
        assert!(err.is_zero() || err.e < -115, "{err:?}");
    }
}

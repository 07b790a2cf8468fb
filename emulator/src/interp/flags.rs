//! Arithmetic flags: how CF, PF, AF, ZF, SF and OF follow from an operation's inputs and result.
//! Teaches: the precise definition of each status flag, computed the way the SDM defines it.

use iced_x86::ConditionCode;

use crate::cpu::flags::*;

use super::access::mask;

fn sign_bit(size: u32) -> u64 {
    1u64 << (size * 8 - 1)
}

/// PF: set when the low byte of the result has an even number of 1 bits.
#[inline(always)]
pub(crate) fn parity(result: u64) -> u64 {
    PARITY[(result & 0xFF) as usize] as u64
}

/// PF for every byte value, computed once at compile time: a table load is cheaper than a
/// population count on CPUs the default target does not assume have POPCNT.
const PARITY: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        if (i as u8).count_ones().is_multiple_of(2) {
            t[i] = PF as u8;
        }
        i += 1;
    }
    t
};

/// ZF, SF and PF of a result.
#[inline(always)]
pub(crate) fn szp(result: u64, size: u32) -> u64 {
    let r = result & mask(size);
    let mut f = parity(r);
    if r == 0 {
        f |= ZF;
    }
    if r & sign_bit(size) != 0 {
        f |= SF;
    }
    f
}

// ANCHOR: add_flags
/// Flags of `a + b + carry_in`.
pub(crate) fn add(a: u64, b: u64, carry_in: u64, size: u32) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let wide = (a as u128) + (b as u128) + carry_in as u128;
    let r = (wide as u64) & m;
    let mut f = szp(r, size);
    if wide > m as u128 {
        f |= CF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    if (!(a ^ b) & (a ^ r)) & sign_bit(size) != 0 {
        f |= OF;
    }
    (r, f)
}
// ANCHOR_END: add_flags

/// Flags of `a - b - borrow_in`.
pub(crate) fn sub(a: u64, b: u64, borrow_in: u64, size: u32) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let r = a.wrapping_sub(b).wrapping_sub(borrow_in) & m;
    let mut f = szp(r, size);
    if (a as u128) < (b as u128) + borrow_in as u128 {
        f |= CF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    if ((a ^ b) & (a ^ r)) & sign_bit(size) != 0 {
        f |= OF;
    }
    (r, f)
}

/// Flags of a logical operation: CF = OF = 0, AF undefined (we clear it, as current CPUs do).
pub(crate) fn logic(r: u64, size: u32) -> u64 {
    szp(r, size)
}

/// Evaluates a condition code against RFLAGS.
pub(crate) fn condition(cc: ConditionCode, f: u64) -> bool {
    let cf = f & CF != 0;
    let zf = f & ZF != 0;
    let sf = f & SF != 0;
    let of = f & OF != 0;
    let pf = f & PF != 0;
    match cc {
        ConditionCode::o => of,
        ConditionCode::no => !of,
        ConditionCode::b => cf,
        ConditionCode::ae => !cf,
        ConditionCode::e => zf,
        ConditionCode::ne => !zf,
        ConditionCode::be => cf || zf,
        ConditionCode::a => !cf && !zf,
        ConditionCode::s => sf,
        ConditionCode::ns => !sf,
        ConditionCode::p => pf,
        ConditionCode::np => !pf,
        ConditionCode::l => sf != of,
        ConditionCode::ge => sf == of,
        ConditionCode::le => zf || sf != of,
        ConditionCode::g => !zf && sf == of,
        ConditionCode::None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_sets_carry_overflow_and_adjust() {
        let (r, f) = add(0x7F, 1, 0, 1);
        assert_eq!(r, 0x80);
        assert_eq!(f & (OF | SF | AF | CF | ZF), OF | SF | AF);
        let (r, f) = add(0xFFFF_FFFF, 1, 0, 4);
        assert_eq!(r, 0);
        assert_eq!(f & (CF | ZF | OF | PF), CF | ZF | PF);
    }

    #[test]
    fn sub_with_borrow_sets_carry_when_operands_equal() {
        let (r, f) = sub(5, 5, 1, 2);
        assert_eq!(r, 0xFFFF);
        assert_ne!(f & CF, 0);
        assert_ne!(f & SF, 0);
        let (_, f) = sub(0x80, 1, 0, 1);
        assert_ne!(f & OF, 0);
    }

    #[test]
    fn signed_conditions_follow_sf_and_of() {
        assert!(condition(ConditionCode::l, SF));
        assert!(!condition(ConditionCode::l, SF | OF));
        assert!(condition(ConditionCode::g, 0));
        assert!(!condition(ConditionCode::a, CF));
    }
}

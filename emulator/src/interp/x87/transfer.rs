//! x87 data transfer: loads and stores in every memory format, the built-in constants, FXCH, FCMOVcc.
//! Teaches: conversions between memory formats and the 80-bit registers (where rounding and #IA can happen), integer and BCD indefinites.

use iced_x86::{Instruction, MemorySize, Mnemonic, OpKind};

use super::ext80::{self, flag, Class, Ext, Raised, Rounding};
use super::{
    masks, may_write, pop, probe_destination, push, push_after_underflow, read_memory, read_source,
    record, record_stack_fault, rounding, set_c1, set_st, st, st_index, write_memory, Cpu, R,
};
use crate::cpu::flags as rf;
use crate::interp::ud;

pub(super) fn handles(m: Mnemonic) -> bool {
    use Mnemonic as M;
    constant(m).is_some()
        || condition(m).is_some()
        || matches!(
            m,
            M::Fldz
                | M::Fld
                | M::Fild
                | M::Fbld
                | M::Fst
                | M::Fstp
                | M::Fstpnce
                | M::Fist
                | M::Fistp
                | M::Fbstp
                | M::Fxch
        )
}

pub(super) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let m = ins.mnemonic();
    if let Some((exp, mant)) = constant(m) {
        let v = ext80::round(
            false,
            mant,
            exp - 127,
            false,
            ext80::EXTENDED,
            rounding(cpu),
            0x3F,
        );
        set_c1(cpu, false);
        push(cpu, v.value);
        return Ok(());
    }
    if let Some(cond) = condition(m) {
        return fcmov(cpu, ins, cond);
    }
    match m {
        M::Fldz => {
            set_c1(cpu, false);
            push(cpu, Ext::ZERO);
            Ok(())
        }
        M::Fld | M::Fild | M::Fbld => load(cpu, ins),
        M::Fst | M::Fstp => store(cpu, ins, m != M::Fst),
        M::Fstpnce => {
            // The undocumented alias D9 D8+i: FSTP ST(i) that reports no stack underflow
            // (checked against the CPU): from an empty ST(0) nothing is stored, then the pop.
            let i = st_index(ins.op_register(0));
            if let Some(v) = st(cpu, 0) {
                set_st(cpu, i, v);
            }
            set_c1(cpu, false);
            pop(cpu);
            Ok(())
        }
        M::Fist | M::Fistp => store_integer(cpu, ins, m == M::Fistp),
        M::Fbstp => store_bcd(cpu, ins),
        M::Fxch => fxch(cpu, ins),
        _ => Err(ud()),
    }
}

/// FLD1 … FLDLN2: (exponent, 128-bit significand) of the constant, rounded to 64 bits by FCW.RC
/// (as the hardware rounds its 66-bit internal constants; no precision exception).
fn constant(m: Mnemonic) -> Option<(i32, u128)> {
    use Mnemonic as M;
    Some(match m {
        M::Fld1 => (0, 1 << 127),
        M::Fldl2t => (1, 0xd49a784bcd1b8afe492bf6ff4dafdb4c),
        M::Fldl2e => (0, 0xb8aa3b295c17f0bbbe87fed0691d3e88),
        M::Fldpi => (1, 0xc90fdaa22168c234c4c6628b80dc1cd1),
        M::Fldlg2 => (-2, 0x9a209a84fbcff7988f8959ac0b7c9178),
        M::Fldln2 => (-1, 0xb17217f7d1cf79abc9e3b39803f2f6af),
        _ => return None,
    })
}

fn load(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    // Read the source first: ST(i) before the push moves it, memory before anything changes.
    let (value, flags) = if ins.op_kind(0) == OpKind::Register {
        match st(cpu, st_index(ins.op_register(0))) {
            Some(v) => (v, 0),
            None => {
                // The empty source is the fault reported (C1 = 0), even when the stack is also
                // full (checked against the CPU); masked, the indefinite NaN is pushed.
                if record_stack_fault(cpu, false) {
                    push_after_underflow(cpu, Ext::INDEFINITE);
                }
                return Ok(());
            }
        }
    } else if ins.memory_size() == MemorySize::Bcd {
        (bcd_to_ext(read_memory(cpu, ins, 10)?), 0)
    } else if ins.memory_size() == MemorySize::Float80 {
        // An 80-bit load copies the pattern: even a signaling NaN raises nothing.
        (Ext::from_bits(read_memory(cpu, ins, 10)?), 0)
    } else {
        let s = read_source(cpu, ins)?;
        let de = if s.denormal { flag::DE } else { 0 };
        match s.value.class() {
            Class::SNan => (s.value.quieted(), flag::IE | de),
            _ => (s.value, de),
        }
    };
    if !cpu.s().fpu.st_empty(7) {
        push(cpu, value); // the stack fault
        return Ok(());
    }
    if record(cpu, flags) {
        set_c1(cpu, false);
        push(cpu, value);
    }
    Ok(())
}

/// FST/FSTP to memory (m32, m64, m80) or to ST(i). Memory is written (and may fault) before
/// FSW or the stack change.
fn store(cpu: &mut Cpu, ins: &Instruction, pops: bool) -> R<()> {
    let to_register = ins.op_kind(0) == OpKind::Register;
    if !to_register {
        probe_destination(cpu, ins, ins.memory_size().size())?;
    }
    let Some(v) = st(cpu, 0) else {
        if may_write(cpu, flag::IE) {
            if to_register {
                set_st(cpu, st_index(ins.op_register(0)), Ext::INDEFINITE);
            } else {
                write_float(cpu, ins, Ext::INDEFINITE)?;
            }
        }
        if record_stack_fault(cpu, false) && pops {
            pop(cpu);
        }
        return Ok(());
    };
    if to_register {
        set_st(cpu, st_index(ins.op_register(0)), v);
        set_c1(cpu, false);
        if pops {
            pop(cpu);
        }
        return Ok(());
    }
    let (out, raised) = match ins.memory_size() {
        MemorySize::Float80 => (v, Raised::default()),
        size => narrow(v, size == MemorySize::Float64, rounding(cpu), masks(cpu)),
    };
    // An unmasked overflow or underflow on a store to memory leaves memory and the stack alone.
    let blocked = raised.flags & (flag::OE | flag::UE) & !masks(cpu) != 0;
    let writes = may_write(cpu, raised.flags) && !blocked;
    if writes {
        write_float(cpu, ins, out)?;
    }
    if blocked {
        // Nothing stored: no precision flag and no "rounded up" (checked against the CPU).
        set_c1(cpu, false);
        record(cpu, raised.flags & !flag::PE);
        return Ok(());
    }
    record(cpu, raised.flags);
    if writes {
        set_c1(cpu, raised.round_up);
        if pops {
            pop(cpu);
        }
    }
    Ok(())
}

/// A register value rounded to single or double precision (still in register layout).
fn narrow(v: Ext, double: bool, rc: Rounding, masks: u16) -> (Ext, Raised) {
    let fmt = if double { ext80::DOUBLE } else { ext80::SINGLE };
    let only = |flags| Raised {
        flags,
        round_up: false,
    };
    match v.class() {
        Class::Zero | Class::Infinity | Class::QNan => (v, Raised::default()),
        Class::SNan => (v.quieted(), only(flag::IE)),
        Class::Unsupported => (Ext::INDEFINITE, only(flag::IE)),
        Class::Normal | Class::Denormal => {
            let o = ext80::round_ext(v, fmt, rc, masks);
            (o.value, o.raised)
        }
    }
}

/// Writes a register value in the memory operand's float format.
fn write_float(cpu: &mut Cpu, ins: &Instruction, v: Ext) -> R<()> {
    match ins.memory_size() {
        MemorySize::Float32 => write_memory(cpu, ins, 4, ext80::to_ieee(v, false) as u128),
        MemorySize::Float64 => write_memory(cpu, ins, 8, ext80::to_ieee(v, true) as u128),
        _ => write_memory(cpu, ins, 10, v.to_bits()),
    }
}

/// FIST/FISTP: round by FCW.RC to a 16-, 32- or 64-bit integer; out of range or NaN is #IA,
/// masked the "integer indefinite" (the most negative integer).
fn store_integer(cpu: &mut Cpu, ins: &Instruction, pops: bool) -> R<()> {
    let bytes = ins.memory_size().size();
    probe_destination(cpu, ins, bytes)?;
    let indefinite = 1u64 << (bytes * 8 - 1);
    let (value, raised, empty) = match st(cpu, 0) {
        None => (None, Raised::default(), true),
        Some(v) => {
            let (value, raised) = integer_of(v, bytes, rounding(cpu));
            (value, raised, false)
        }
    };
    let flags = if empty { flag::IE } else { raised.flags };
    if !may_write(cpu, flags) {
        if empty {
            record_stack_fault(cpu, false);
        } else {
            // C1 is "rounded up", set to 0 otherwise (checked against the CPU).
            set_c1(cpu, false);
            record(cpu, flags);
        }
        return Ok(());
    }
    write_memory(cpu, ins, bytes, value.unwrap_or(indefinite) as u128)?;
    if empty {
        record_stack_fault(cpu, false);
    } else {
        record(cpu, flags);
        set_c1(cpu, raised.round_up);
    }
    if pops {
        pop(cpu);
    }
    Ok(())
}

/// The two's-complement pattern of `v` rounded to a `bytes`-byte integer, or `None` (#IA).
fn integer_of(v: Ext, bytes: usize, rc: Rounding) -> (Option<u64>, Raised) {
    let invalid = (
        None,
        Raised {
            flags: flag::IE,
            round_up: false,
        },
    );
    if !matches!(v.class(), Class::Zero | Class::Normal | Class::Denormal) {
        return invalid;
    }
    let (magnitude, inexact, up) = ext80::to_integer(v, rc);
    let limit = 1u64 << (bytes * 8 - 1); // |min|; max is limit − 1
    let Some(mag) = magnitude.filter(|&m| if v.sign { m <= limit } else { m < limit }) else {
        return invalid;
    };
    let pattern = if v.sign { mag.wrapping_neg() } else { mag };
    let mask = if bytes == 8 {
        u64::MAX
    } else {
        (1u64 << (bytes * 8)) - 1
    };
    let pe = if inexact { flag::PE } else { 0 };
    (
        Some(pattern & mask),
        Raised {
            flags: pe,
            round_up: up,
        },
    )
}

/// The packed BCD "indefinite" FBSTP stores for a masked #IA.
const BCD_INDEFINITE: u128 = 0xFFFF_C000_0000_0000_0000;

/// FBSTP: round to an integer and store 18 packed decimal digits with a sign byte.
fn store_bcd(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    probe_destination(cpu, ins, 10)?;
    let Some(v) = st(cpu, 0) else {
        if may_write(cpu, flag::IE) {
            write_memory(cpu, ins, 10, BCD_INDEFINITE)?;
            pop(cpu);
        }
        record_stack_fault(cpu, false);
        return Ok(());
    };
    let (magnitude, raised) = match v.class() {
        Class::Zero | Class::Normal | Class::Denormal => {
            let (m, inexact, up) = ext80::to_integer(v, rounding(cpu));
            let pe = if inexact { flag::PE } else { 0 };
            match m.filter(|&m| m < 1_000_000_000_000_000_000) {
                Some(m) => (
                    Some(m),
                    Raised {
                        flags: pe,
                        round_up: up,
                    },
                ),
                None => (
                    None,
                    Raised {
                        flags: flag::IE,
                        round_up: false,
                    },
                ),
            }
        }
        _ => (
            None,
            Raised {
                flags: flag::IE,
                round_up: false,
            },
        ),
    };
    if may_write(cpu, raised.flags) {
        let image = match magnitude {
            Some(m) => ((v.sign as u128) << 79) | to_packed_bcd(m),
            None => BCD_INDEFINITE,
        };
        write_memory(cpu, ins, 10, image)?;
        record(cpu, raised.flags);
        set_c1(cpu, raised.round_up);
        pop(cpu);
    } else {
        record(cpu, raised.flags);
    }
    Ok(())
}

fn to_packed_bcd(mut m: u64) -> u128 {
    let mut out = 0u128;
    for digit in 0..18 {
        out |= ((m % 10) as u128) << (4 * digit);
        m /= 10;
    }
    out
}

/// FBLD's conversion: 18 digits (a nibble above 9 counts as its binary value, which is what
/// the result of an invalid digit is "undefined" as) and the sign bit.
fn bcd_to_ext(image: u128) -> Ext {
    let mut m: u64 = 0;
    for digit in (0..18).rev() {
        m = m * 10 + ((image >> (4 * digit)) & 0xF) as u64;
    }
    ext80::from_integer((image >> 79) & 1 != 0, m)
}

fn fxch(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    let i = match ins.op_count() {
        0 => 1,
        1 => st_index(ins.op_register(0)),
        _ => st_index(ins.op_register(1)),
    };
    let (a, b) = (st(cpu, 0), st(cpu, i));
    if a.is_none() || b.is_none() {
        // Masked underflow: an empty register takes part as the indefinite NaN.
        if !record_stack_fault(cpu, false) {
            return Ok(());
        }
    } else {
        set_c1(cpu, false);
    }
    set_st(cpu, 0, b.unwrap_or(Ext::INDEFINITE));
    set_st(cpu, i, a.unwrap_or(Ext::INDEFINITE));
    Ok(())
}

/// The EFLAGS condition of an FCMOVcc: (flag mask, move when set?).
fn condition(m: Mnemonic) -> Option<(u64, bool)> {
    use Mnemonic as M;
    Some(match m {
        M::Fcmovb => (rf::CF, true),
        M::Fcmove => (rf::ZF, true),
        M::Fcmovbe => (rf::CF | rf::ZF, true),
        M::Fcmovu => (rf::PF, true),
        M::Fcmovnb => (rf::CF, false),
        M::Fcmovne => (rf::ZF, false),
        M::Fcmovnbe => (rf::CF | rf::ZF, false),
        M::Fcmovnu => (rf::PF, false),
        _ => return None,
    })
}

fn fcmov(cpu: &mut Cpu, ins: &Instruction, (mask, when_set): (u64, bool)) -> R<()> {
    let i = st_index(ins.op_register(1));
    let (Some(_), Some(v)) = (st(cpu, 0), st(cpu, i)) else {
        if record_stack_fault(cpu, false) {
            set_st(cpu, 0, Ext::INDEFINITE);
        }
        return Ok(());
    };
    // C1 changes only on a stack underflow (checked against the CPU).
    if (cpu.s().rflags & mask != 0) == when_set {
        set_st(cpu, 0, v);
    }
    Ok(())
}

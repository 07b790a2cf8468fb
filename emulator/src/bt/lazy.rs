//! Lazy flags: remember what an ALU instruction computed, work out its flags only if asked.
//! Teaches: most flag results are never read — a translator defers them (QEMU's `cc_op` trick).
//!
//! An ADD, SUB, CMP, AND/OR/XOR/TEST, INC or DEC in a translated block does not compute CF,
//! PF, AF, ZF, SF and OF: it records its inputs and result here. A following Jcc, SETcc or
//! CMOVcc answers its condition straight from the record where that is one comparison (`jb`
//! after `cmp` is `a < b`); anything else asks for the flags, which are then computed with the
//! interpreter's own definitions (`flags::add`, `flags::sub`, `flags::logic`) — one definition.
//!
//! RFLAGS in `CpuState` is made exact again (`materialize`) before anything else can look at
//! it: a callout, an exception, an interrupt, the end of a run — so outside the translator's
//! chained blocks, the deferral is invisible.

use iced_x86::ConditionCode;

use crate::cpu::flags::{CF, STATUS};
use crate::interp::{alu_api as alu, Cpu};

/// Which instruction the record stands for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing deferred: RFLAGS is exact.
    #[default]
    None,
    Add,
    Sub,
    Logic,
    /// INC/DEC keep CF: `cf` holds the CF they kept.
    Inc,
    Dec,
}

/// The deferred flags of the last flag-writing instruction.
#[derive(Debug, Default, Clone, Copy)]
pub struct LazyFlags {
    pub kind: Kind,
    pub size: u32,
    pub a: u64,
    pub b: u64,
    /// The result, masked to `size`.
    pub r: u64,
    pub cf: u64,
}

/// `v` read as a signed number of `size` bytes (the interpreter's sign extension).
#[inline(always)]
fn signed(v: u64, size: u32) -> i64 {
    crate::interp::sext(v, size) as i64
}

#[inline(always)]
fn sign(v: u64, size: u32) -> bool {
    (v >> (size * 8 - 1)) & 1 != 0
}

impl LazyFlags {
    /// The six status flags the record stands for.
    fn status(&self) -> u64 {
        let s = self.size;
        match self.kind {
            Kind::None => 0,
            Kind::Add => alu::add_flags(self.a, self.b, s),
            Kind::Sub => alu::sub_flags(self.a, self.b, s),
            Kind::Logic => alu::logic_flags(self.r, s),
            Kind::Inc => (alu::inc_dec(true, self.a, s).1 & !CF) | self.cf,
            Kind::Dec => (alu::inc_dec(false, self.a, s).1 & !CF) | self.cf,
        }
    }

    /// CF alone (cheap for every kind).
    #[inline(always)]
    fn carry(&self) -> u64 {
        match self.kind {
            Kind::Add => (self.r < self.a) as u64 * CF,
            Kind::Sub => (self.a < self.b) as u64 * CF,
            Kind::Logic | Kind::None => 0,
            Kind::Inc | Kind::Dec => self.cf,
        }
    }
}

/// Makes RFLAGS exact: computes the deferred status flags, if any.
#[inline(always)]
pub fn materialize(cpu: &mut Cpu) {
    if cpu.lazy.kind != Kind::None {
        materialize_now(cpu);
    }
}

#[cold]
fn materialize_now(cpu: &mut Cpu) {
    let f = cpu.lazy.status();
    cpu.set_status(f);
    cpu.lazy.kind = Kind::None;
}

/// RFLAGS was just written in full: nothing is deferred any more.
#[inline(always)]
pub fn forget(cpu: &mut Cpu) {
    cpu.lazy.kind = Kind::None;
}

/// Records an ADD/SUB/logic result (`a`, `b` and `r` already masked to `size`).
#[inline(always)]
pub fn record(cpu: &mut Cpu, kind: Kind, size: u32, a: u64, b: u64, r: u64) {
    cpu.lazy = LazyFlags {
        kind,
        size,
        a,
        b,
        r,
        cf: 0,
    };
}

/// Records INC/DEC of `a`: CF is the one in force before it.
#[inline(always)]
pub fn record_inc_dec(cpu: &mut Cpu, inc: bool, size: u32, a: u64, r: u64) {
    let cf = carry(cpu);
    cpu.lazy = LazyFlags {
        kind: if inc { Kind::Inc } else { Kind::Dec },
        size,
        a,
        b: 1,
        r,
        cf,
    };
}

/// CF as the guest would see it now.
#[inline(always)]
pub fn carry(cpu: &Cpu) -> u64 {
    if cpu.lazy.kind == Kind::None {
        cpu.s().rflags & CF
    } else {
        cpu.lazy.carry()
    }
}

/// Evaluates a condition code, from the record where that is one comparison.
#[inline(always)]
pub fn condition(cpu: &mut Cpu, cc: ConditionCode) -> bool {
    match shortcut(&cpu.lazy, cc) {
        Some(v) => v,
        None => {
            materialize(cpu);
            alu::condition(cc, cpu.s().rflags)
        }
    }
}

/// The conditions a record answers with one comparison (None: compute the flags).
#[inline(always)]
fn shortcut(l: &LazyFlags, cc: ConditionCode) -> Option<bool> {
    use ConditionCode as C;
    let (s, r) = (l.size, l.r);
    Some(match (l.kind, cc) {
        (Kind::None, _) => return None,
        (_, C::e) => r == 0,
        (_, C::ne) => r != 0,
        (_, C::s) => sign(r, s),
        (_, C::ns) => !sign(r, s),
        (Kind::Sub, C::b) => l.a < l.b,
        (Kind::Sub, C::ae) => l.a >= l.b,
        (Kind::Sub, C::be) => l.a <= l.b,
        (Kind::Sub, C::a) => l.a > l.b,
        (Kind::Sub, C::l) => signed(l.a, s) < signed(l.b, s),
        (Kind::Sub, C::ge) => signed(l.a, s) >= signed(l.b, s),
        (Kind::Sub, C::le) => signed(l.a, s) <= signed(l.b, s),
        (Kind::Sub, C::g) => signed(l.a, s) > signed(l.b, s),
        (Kind::Logic, C::b | C::o) => false,
        (Kind::Logic, C::ae | C::no) => true,
        (Kind::Logic, C::be) => r == 0,
        (Kind::Logic, C::a) => r != 0,
        (Kind::Logic, C::l) => sign(r, s),
        (Kind::Logic, C::ge) => !sign(r, s),
        (Kind::Add | Kind::Inc | Kind::Dec, C::b) => l.carry() != 0,
        (Kind::Add | Kind::Inc | Kind::Dec, C::ae) => l.carry() == 0,
        _ => return None,
    })
}

/// Keeps the compiler honest that `STATUS` is what `set_status` replaces.
const _: () = assert!(STATUS.count_ones() == 6);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::alu_api::{add_flags, condition as cond, logic_flags, sub_flags};

    /// Every condition answered from a record equals the one computed from full flags.
    #[test]
    fn shortcut_conditions_agree_with_the_full_flags() {
        let values = [
            0u64,
            1,
            2,
            0x7F,
            0x80,
            0xFF,
            0x7FFF_FFFF,
            0x8000_0000,
            u64::MAX,
        ];
        let ccs = crate::bt::ops::CONDITIONS;
        for size in [1u32, 2, 4, 8] {
            let m = if size == 8 {
                u64::MAX
            } else {
                (1 << (size * 8)) - 1
            };
            for &a in &values {
                for &b in &values {
                    let (a, b) = (a & m, b & m);
                    let cf_in = b & CF;
                    let inc = (alu::inc_dec(true, a, size).1 & !CF) | cf_in;
                    let dec = (alu::inc_dec(false, a, size).1 & !CF) | cf_in;
                    for (kind, r, full) in [
                        (Kind::Sub, a.wrapping_sub(b) & m, sub_flags(a, b, size)),
                        (Kind::Add, a.wrapping_add(b) & m, add_flags(a, b, size)),
                        (Kind::Logic, a & b, logic_flags(a & b, size)),
                        (Kind::Inc, a.wrapping_add(1) & m, inc),
                        (Kind::Dec, a.wrapping_sub(1) & m, dec),
                    ] {
                        let inc_dec = matches!(kind, Kind::Inc | Kind::Dec);
                        let l = LazyFlags {
                            kind,
                            size,
                            a,
                            b: if inc_dec { 1 } else { b },
                            r,
                            cf: if inc_dec { cf_in } else { 0 },
                        };
                        assert_eq!(l.status(), full, "{kind:?} {a:#x} {b:#x} size {size}");
                        assert_eq!(l.carry(), full & CF, "{kind:?} {a:#x} {b:#x}");
                        for cc in ccs {
                            let shortcut = shortcut(&l, cc);
                            if let Some(v) = shortcut {
                                assert_eq!(
                                    v,
                                    cond(cc, full),
                                    "{kind:?} {cc:?} {a:#x} {b:#x} {size}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

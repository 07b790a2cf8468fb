//! The x87 floating-point unit: an 8-register stack of 80-bit extended reals, its control and status words.
//! Teaches: stack-based floating point, tags, precision and rounding control, and how x87 reports errors.

use iced_x86::{Instruction, Mnemonic};

use super::{Cpu, R};

pub(crate) fn handles(_m: Mnemonic) -> bool {
    false
}

pub(crate) fn execute(_cpu: &mut Cpu, _ins: &Instruction) -> R<()> {
    Err(super::ud())
}

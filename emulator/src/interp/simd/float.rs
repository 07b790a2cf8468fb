//! SSE/SSE2 floating point: packed and scalar IEEE 754 arithmetic and compares under MXCSR.
//! Teaches: rounding modes, sticky exception flags, masked vs unmasked exceptions, x86's NaN rules.

use iced_x86::{Instruction, Mnemonic};

use super::Cpu;
use crate::interp::R;

pub(super) fn handles(_m: Mnemonic) -> bool {
    false
}

pub(super) fn execute(_cpu: &mut Cpu, _ins: &Instruction) -> R<()> {
    Err(crate::interp::ud())
}

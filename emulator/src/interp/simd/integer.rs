//! Packed integer arithmetic on MMX and XMM registers: lane-wise add, compare, shift, shuffle, pack.
//! Teaches: SIMD as one operation on many lanes, with wrapping or saturating arithmetic per lane.

use iced_x86::{Instruction, Mnemonic};

use super::Cpu;
use crate::interp::R;

pub(super) fn handles(_m: Mnemonic) -> bool {
    false
}

pub(super) fn execute(_cpu: &mut Cpu, _ins: &Instruction) -> R<()> {
    Err(crate::interp::ud())
}

//! SSE/SSE2 conversions: between single, double and integers, with MXCSR's rounding or truncation.
//! Teaches: what "integer indefinite" is and why CVTT* exists (C's truncating casts).

use iced_x86::{Instruction, Mnemonic};

use super::Cpu;
use crate::interp::R;

pub(super) fn handles(_m: Mnemonic) -> bool {
    false
}

pub(super) fn execute(_cpu: &mut Cpu, _ins: &Instruction) -> R<()> {
    Err(crate::interp::ud())
}

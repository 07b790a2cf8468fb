//! Reading guest memory the way a debugger must: without side effects.
//! Teaches: a debugger's read is not the guest's read — no accessed bits, no MMIO, no TLB fills.
//!
//! The reads themselves are the emulator's debugger view (`emulator::inspect`, shared with the
//! gdb stub); this file connects them to breakpoint conditions.

pub use emulator::inspect::{phys_byte, read_linear, read_linear_le, translate};
use emulator::Machine;

use crate::session::expr::MemoryReader;

/// Lets breakpoint conditions read guest memory.
pub struct MachineReader<'a>(pub &'a mut Machine);

impl MemoryReader for MachineReader<'_> {
    fn read_linear(&mut self, linear: u64, size: usize) -> Option<u64> {
        read_linear_le(self.0, linear, size)
    }
}

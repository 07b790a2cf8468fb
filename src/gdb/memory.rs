//! Guest memory as a debugger sees it: virtual addresses through the guest's page tables.
//! Teaches: gdb speaks virtual addresses; the stub walks the guest's tables without side effects.
//!
//! The walk, the reads and writes, and the memory operands of the next instruction are the
//! emulator's debugger view (`emulator::inspect`), shared with the GUI.

pub use emulator::inspect::{
    current_instruction, memory_uses, read_linear, translate, write_linear,
};

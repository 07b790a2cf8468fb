//! The vmscope machine and its own execution engines.
//! Teaches: how a full-system emulator is put together — memory, CPU state, engines, loaders.
//!
//! ```
//! use emulator::machine::Machine;
//! let mut m = Machine::new(16 << 20).unwrap();
//! m.phys_write(0x1000, 4, 0x1234_5678);
//! assert_eq!(m.phys_read(0x1002, 2), 0x1234);
//! assert_eq!(m.cpu.rip, 0xFFF0); // the reset vector, F000:FFF0
//! ```

pub mod bt;
pub mod cpu;
pub mod inspect;
pub mod interp;
pub mod machine;
pub mod memory;
pub mod mmu;
pub mod pv;

pub use cpu::CpuState;
pub use machine::{Engine, EngineError, Exit, Invalidate, Machine, RunLimit, Stats};

//! The architectural state of one x86 CPU, shared by every engine.
//! Teaches: what "the state of a CPU" is — registers, hidden descriptor caches, control registers, MSRs.

pub mod cpuid;
pub mod fpu;
pub mod state;

pub use state::*;

//! The `vmscope` command-line tool as a library: choosing engines, running and stepping guests.
//! Teaches: how a VMM's main loop drives an engine, reacts to its exits, and hands a CPU between engines.

pub mod attach;
pub mod board_info;
pub mod bootdisk;
pub mod bt_cmd;
pub mod cli_isa;
pub mod compare;
pub mod conformance;
pub mod ctrl_c;
pub mod disk;
pub mod engines;
pub mod fuzz;
pub mod gdb;
pub mod image;
pub mod linux;
pub mod migrate;
pub mod mmu_cmd;
pub mod net;
pub mod runner;
pub mod sizes;
pub mod snapshot;
pub mod step;

pub use engines::{make_engine, EngineChoice};
pub use runner::{run_guest, GuestOutcome, RunOptions, SwitchPlan, SwitchUnit};

//! `vmscope fuzz`: random guest code run on every engine, every observable compared, differences shrunk.
//! Teaches: differential testing — two implementations of one CPU check each other, and a real CPU checks both.
//!
//! A case is a short program for one [`Mode`] ([`gen`]: random bytes mixed with valid instruction
//! sequences — ALU, loads and stores, stores into its own code, loops, far transfers, mode
//! switches, software interrupts, faults). [`modes`] builds the machine for the mode straight
//! in RAM and `CpuState` (tables, stubs that end the case on any exception), [`run`] runs the
//! case on an engine up to an instruction limit and records what can be observed, [`compare`]
//! says how two records differ under the documented rules, [`shrink`] makes a difference's case
//! minimal, [`finding`] writes it with its replay command, and [`cli`] is the command.
//!
//! ```no_run
//! use vmscope::fuzz::{self, Batch, EngineKind, Mode};
//! let batch = Batch { mode: Mode::Pm32, seed: 1, cases: 100, ..Batch::default() };
//! let report = fuzz::run_batch(&batch, &[EngineKind::Interp, EngineKind::Bt], None).unwrap();
//! assert!(report.findings.is_empty());
//! ```

pub mod bisect;
pub mod cli;
pub mod compare;
pub mod compare_kvm;
pub mod finding;
pub mod gen;
pub mod gen_env;
pub mod gen_forms;
pub mod gen_ops;
pub mod gen_system;
pub mod modes;
pub mod run;
pub mod shrink;

pub use cli::{run_batch, Batch, BatchReport, FuzzArgs};
pub use gen::Case;
pub use run::{EngineKind, Observation};

/// The CPU mode a case starts in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Real mode: IVT at 0, code at 1000:0000.
    Real,
    /// 16-bit protected mode, ring 0, 16-bit gates.
    Pm16,
    /// 32-bit flat protected mode, ring 0, paging off.
    Pm32,
    /// 64-bit long mode, ring 0, 4-level paging.
    Long,
    /// 64-bit long mode, ring 3 (the native conformance machine): KVM runs it on the CPU.
    Ring3,
}

impl Mode {
    pub const ALL: [Mode; 5] = [Mode::Real, Mode::Pm16, Mode::Pm32, Mode::Long, Mode::Ring3];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Real => "real",
            Mode::Pm16 => "pm16",
            Mode::Pm32 => "pm32",
            Mode::Long => "long",
            Mode::Ring3 => "ring3",
        }
    }

    /// The engines a batch of this mode runs by default: KVM joins ring-3 cases only (the
    /// other modes run mostly in ring 0, which PVM interprets in its kernel).
    pub fn default_engines(self, kvm_usable: bool) -> Vec<EngineKind> {
        let mut e = vec![EngineKind::Interp, EngineKind::Bt];
        if self == Mode::Ring3 && kvm_usable {
            e.push(EngineKind::Kvm);
        }
        e
    }

    /// The default instruction limit of one case (single-stepped KVM pays an exit for each).
    pub fn default_limit(self) -> u64 {
        match self {
            Mode::Ring3 => 2_000,
            _ => 20_000,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

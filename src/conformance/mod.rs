//! Conformance: the interpreter checked against states captured from real CPUs.
//! Teaches: an emulator is only as right as the hardware it is compared with, and every accepted
//! difference must be written down.
//!
//! `vmscope conformance sst [DIR]` runs the SingleStepTests 80286 real-mode set (65,000 tests,
//! see `../shared/testdata/sst-80286-real/README.md`): [`moo`] reads the files, [`sst`] runs each
//! test on the interpreter and compares, [`rules`] lists the undefined-flag masks and the accepted
//! 286-vs-later-CPU differences by opcode.
//!
//! ```no_run
//! let report = vmscope::conformance::sst::run_dir(
//!     std::path::Path::new("../shared/testdata/sst-80286-real"),
//!     "F6", // only the files whose name starts with F6
//! )
//! .unwrap();
//! println!("{}", report.summary()); // passed N of M (masked K)
//! ```

pub mod moo;
pub mod native;
pub mod native_fixups;
pub mod native_forms;
pub mod native_machine;
pub mod native_raw;
pub mod native_vector;
pub mod native_vendor;
pub mod rules;
pub mod sst;

use std::path::PathBuf;

/// The test set's place relative to the project root (../shared/DESIGN.md, "Test data").
pub const DEFAULT_SST_DIR: &str = "../shared/testdata/sst-80286-real";

/// The default SST directory: relative to the project root (this crate's manifest directory).
pub fn default_sst_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_SST_DIR)
}

/// The rules as a printable table (for `--rules` and the book).
pub fn rules_table() -> String {
    use std::fmt::Write;
    let mut out = String::from("Flags not compared (architecturally undefined):\n");
    for r in rules::FLAG_RULES {
        let _ = writeln!(
            out,
            "  {:<28} {:<44} {}",
            r.opcodes.join(" "),
            r.flags,
            r.reason
        );
    }
    out.push_str("Accepted differences (tests masked, not compared):\n");
    for d in rules::DIFFERENCES {
        let _ = writeln!(out, "  {:<28} {}", d.opcodes.join(" "), d.reason);
    }
    out
}

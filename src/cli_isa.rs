//! The `conformance` and `isa` subcommands: how complete and how right the interpreter is.
//! Teaches: measure an emulator's coverage from its own dispatch tables, and its correctness
//! against hardware, instead of trusting a hand-kept list.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use iced_x86::{Code, EncodingKind, Mnemonic};

use crate::conformance;

/// `vmscope conformance …`
#[derive(Debug, clap::Subcommand)]
pub enum ConformanceSuite {
    /// Run the SingleStepTests 80286 real-mode set (hardware-captured) on the interpreter.
    /// Prints a per-opcode table and `passed N of M (masked K)`; exit status 1 if any test failed.
    Sst {
        /// Directory with the *.MOO.gz files [default: ../shared/testdata/sst-80286-real from the
        /// project root].
        dir: Option<PathBuf>,
        /// Only opcode files whose name starts with this (e.g. `F6`, `D3.4`).
        #[arg(long, default_value = "")]
        only: String,
        /// Failure details to print per failing opcode.
        #[arg(long, default_value_t = 3)]
        details: usize,
        /// Print the flag masks and accepted differences (with reasons) before the run.
        #[arg(long)]
        rules: bool,
    },
}

pub fn conformance(suite: ConformanceSuite) -> Result<i32> {
    match suite {
        ConformanceSuite::Sst {
            dir,
            only,
            details,
            rules,
        } => {
            if rules {
                print!("{}", conformance::rules_table());
            }
            let dir = dir.unwrap_or_else(conformance::default_sst_dir);
            let report = conformance::sst::run_dir(&dir, &only)?;
            print!("{}", report.render(details));
            Ok(if report.failed() == 0 { 0 } else { 1 })
        }
    }
}

/// `vmscope isa`
#[derive(Debug, clap::Args)]
pub struct IsaArgs {
    /// Show only this mode (16, 32 or 64-bit code).
    #[arg(long, value_parser = ["16", "32", "64"])]
    mode: Option<String>,
    /// List only mnemonics the interpreter does not implement.
    #[arg(long)]
    missing: bool,
    /// Include VEX/EVEX/XOP/3DNow!-encoded instructions (none are implemented).
    #[arg(long)]
    all_encodings: bool,
}

/// Per mnemonic: in which modes iced-x86 decodes some form of it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Modes {
    pub m16: bool,
    pub m32: bool,
    pub m64: bool,
}

/// Every mnemonic iced-x86 knows with a legacy encoding (or every encoding), and its modes.
pub fn mnemonic_modes(all_encodings: bool) -> BTreeMap<String, (Mnemonic, Modes)> {
    let mut map: BTreeMap<String, (Mnemonic, Modes)> = BTreeMap::new();
    for code in Code::values() {
        let info = code.op_code();
        // Skip INVALID and the assembler pseudo-ops (db/dw/…).
        if code == Code::INVALID || !info.is_instruction() {
            continue;
        }
        if !all_encodings && info.encoding() != EncodingKind::Legacy {
            continue;
        }
        let m = code.mnemonic();
        if m == Mnemonic::INVALID {
            continue;
        }
        let entry = map
            .entry(format!("{m:?}").to_lowercase())
            .or_insert((m, Modes::default()));
        entry.1.m16 |= info.mode16();
        entry.1.m32 |= info.mode32();
        entry.1.m64 |= info.mode64();
    }
    map
}

pub fn isa(args: IsaArgs) -> Result<i32> {
    let map = mnemonic_modes(args.all_encodings);
    let want = |modes: &Modes| match args.mode.as_deref() {
        Some("16") => modes.m16,
        Some("32") => modes.m32,
        Some("64") => modes.m64,
        _ => true,
    };
    let mark = |on: bool, implemented: bool| match (on, implemented) {
        (false, _) => "  - ",
        (true, true) => " yes",
        (true, false) => "  no",
    };
    println!("{:<20} {:>4} {:>4} {:>4}", "mnemonic", "16", "32", "64");
    let (mut listed, mut implemented) = (0usize, 0usize);
    for (name, (m, modes)) in &map {
        if !want(modes) {
            continue;
        }
        let yes = emulator::interp::implements(*m);
        listed += 1;
        implemented += yes as usize;
        if args.missing && yes {
            continue;
        }
        println!(
            "{:<20} {} {} {}",
            name,
            mark(modes.m16, yes),
            mark(modes.m32, yes),
            mark(modes.m64, yes)
        );
    }
    let scope = if args.all_encodings {
        "all encodings"
    } else {
        "legacy encoding"
    };
    let mode = args
        .mode
        .as_deref()
        .map(|m| format!(", {m}-bit mode"))
        .unwrap_or_default();
    println!("implemented {implemented} of {listed} iced-x86 mnemonics ({scope}{mode})");
    Ok(0)
}

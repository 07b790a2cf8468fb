//! The `conformance` and `isa` subcommands: how complete and how right the interpreter is.
//! Teaches: measure an emulator's coverage from its own dispatch tables, and its correctness
//! against hardware, instead of trusting a hand-kept list.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use iced_x86::{Code, CpuidFeature, EncodingKind, Mnemonic};

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
    /// Compare the interpreter with the real CPU: random states for integer instruction forms,
    /// run on the interpreter and natively in a KVM ring-3 guest. Prints per-form results and
    /// `passed N of M`; exit status 1 if any case differs.
    Native {
        /// `all`, `64` (64-bit forms), `32` (compatibility-mode forms), or a comma-separated list of
        /// form names or prefixes (e.g. `Add_rm64_r64,shld,rep_,32/daa`).
        #[arg(long, default_value = "all")]
        forms: String,
        /// Cases per form.
        #[arg(long, default_value_t = 100)]
        cases: usize,
        /// Seed of the random states (a run is reproducible).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Failure details to print.
        #[arg(long, default_value_t = 20)]
        details: usize,
        /// Print which flags/registers are not compared (architecturally undefined) and why.
        #[arg(long)]
        rules: bool,
        /// Count the documented PVM quirks (see --rules) as failures too.
        #[arg(long)]
        strict: bool,
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
            if report.total() == 0 {
                anyhow::bail!(
                    "no test file in {} matches --only {only:?} (names are opcodes in hex, e.g. F6 or D3.4)",
                    dir.display()
                );
            }
            print!("{}", report.render(details));
            Ok(if report.failed() == 0 { 0 } else { 1 })
        }
        ConformanceSuite::Native {
            forms,
            cases,
            seed,
            details,
            rules,
            strict,
        } => {
            if rules {
                println!("Not compared (architecturally undefined):");
                for (ins, what, why) in conformance::native_forms::UNDEFINED_RULES {
                    println!("  {ins:<18} {what:<44} {why}");
                }
                println!("x87/SSE forms left out (their results are the CPU's choice):");
                for (mnemonics, why) in conformance::native_vector::EXCLUDED_MNEMONICS {
                    let names: Vec<String> = mnemonics
                        .iter()
                        .map(|m| format!("{m:?}").to_lowercase())
                        .collect();
                    println!("  {}: {why}", names.join(" "));
                }
                for (mnemonics, bits, why) in conformance::native_vector::FSW_NOT_COMPARED {
                    let names: Vec<String> = mnemonics
                        .iter()
                        .map(|m| format!("{m:?}").to_lowercase())
                        .collect();
                    println!("  FSW bits {bits:#06x} after {}: {why}", names.join(" "));
                }
                println!("Not comparable on PVM (measured quirks; skipped only there):");
                for (what, how) in conformance::native::PVM_QUIRKS {
                    println!("  {what}: {how}");
                }
                println!("Where CPU vendors differ (those bits taken from the model):");
                for (what, how) in conformance::native_vendor::VENDOR_DIFFERENCES {
                    println!("  {what}: {how}");
                }
                println!("Not comparable where CPU vendors take different paths:");
                for (what, how) in conformance::native_vendor::VENDOR_PATHS {
                    println!("  {what}: {how}");
                }
            }
            let report = conformance::native::run(&conformance::native::Options {
                forms,
                cases,
                seed,
                strict,
                corrupt_interp_rflags: 0,
            })?;
            print!("{}", report.render(details));
            Ok(if report.passed() == report.total() {
                0
            } else {
                1
            })
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
    /// Only the integer baseline (8086–486, x86-64, CMOV, CX8/CX16, CPUID, MSR, TSC, SYSCALL,
    /// SYSENTER, PAUSE, multi-byte NOP).
    #[arg(long)]
    baseline: bool,
}

/// Per mnemonic: in which modes iced-x86 decodes some form of it, and whether some form of it
/// belongs to the integer baseline (see [`BASELINE`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Modes {
    pub m16: bool,
    pub m32: bool,
    pub m64: bool,
    pub baseline: bool,
}

/// The integer architecture issue 3 asks for: 8086 through 486, x86-64, and the general-purpose
/// extensions every x86-64 CPU has (no x87, MMX, SSE, AVX, virtualization or security extensions:
/// `vmscope isa` without `--baseline` lists those).
pub const BASELINE: &[CpuidFeature] = &[
    CpuidFeature::INTEL8086,
    CpuidFeature::INTEL186,
    CpuidFeature::INTEL286,
    CpuidFeature::INTEL386,
    CpuidFeature::INTEL486,
    CpuidFeature::X64,
    CpuidFeature::CMOV,
    CpuidFeature::CX8,
    CpuidFeature::CMPXCHG16B,
    CpuidFeature::CPUID,
    CpuidFeature::MSR,
    CpuidFeature::TSC,
    CpuidFeature::SYSCALL,
    CpuidFeature::SEP,
    CpuidFeature::PAUSE,
    CpuidFeature::MULTIBYTENOP,
];

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
        entry.1.baseline |= code.cpuid_features().iter().all(|f| BASELINE.contains(f));
    }
    map
}

pub fn isa(args: IsaArgs) -> Result<i32> {
    let map = mnemonic_modes(args.all_encodings);
    let want = |modes: &Modes| {
        let in_mode = match args.mode.as_deref() {
            Some("16") => modes.m16,
            Some("32") => modes.m32,
            Some("64") => modes.m64,
            _ => true,
        };
        in_mode && (!args.baseline || modes.baseline)
    };
    let mark = |on: bool, implemented: bool| match (on, implemented) {
        (false, _) => "  - ",
        (true, true) => " yes",
        (true, false) => "  no",
    };
    println!(
        "{:<20} {:>4} {:>4} {:>4}  baseline",
        "mnemonic", "16", "32", "64"
    );
    let (mut listed, mut implemented) = (0usize, 0usize);
    let (mut base_listed, mut base_implemented) = (0usize, 0usize);
    for (name, (m, modes)) in &map {
        if !want(modes) {
            continue;
        }
        let yes = emulator::interp::implements(*m);
        listed += 1;
        implemented += yes as usize;
        if modes.baseline {
            base_listed += 1;
            base_implemented += yes as usize;
        }
        if args.missing && yes {
            continue;
        }
        println!(
            "{:<20} {} {} {}  {}",
            name,
            mark(modes.m16, yes),
            mark(modes.m32, yes),
            mark(modes.m64, yes),
            if modes.baseline { "yes" } else { "" }
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
    println!("integer baseline: implemented {base_implemented} of {base_listed}{mode}");
    println!("implemented {implemented} of {listed} iced-x86 mnemonics ({scope}{mode})");
    Ok(0)
}

//! `vmscope fuzz`: a fixed-seed batch per mode finds no difference; a planted difference is found,
//! shrunk to one instruction, written, and reproduced by its replay command.
//! Teaches: a fuzzer is tested like any tool — it must stay quiet on agreeing engines and be loud, small and exact on a bug.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use iced_x86::{Decoder, DecoderOptions, Mnemonic};
use vmscope::fuzz::{self, finding::unhex, Batch, EngineKind, Mode};

fn engines(mode: Mode) -> Vec<EngineKind> {
    let kvm = support::kvm_skip_reason().is_none();
    if mode == Mode::Ring3 && !kvm {
        eprintln!(
            "ring3 without kvm: {}",
            support::kvm_skip_reason().unwrap_or_default()
        );
    }
    mode.default_engines(kvm)
}

/// The CI batch: seed 1, a few seconds per mode (the count run depends on the host's speed,
/// the cases do not: case k of a seed is always the same).
#[test]
fn a_fixed_seed_batch_per_mode_finds_no_difference() {
    let mut failures = Vec::new();
    for mode in Mode::ALL {
        let batch = Batch {
            mode,
            seed: 1,
            cases: 3000,
            time_limit: Some(Duration::from_secs(if mode == Mode::Ring3 { 8 } else { 5 })),
            max_findings: 3,
            shrink_budget: 200,
            ..Batch::default()
        };
        let report = fuzz::run_batch(&batch, &engines(mode), None).unwrap();
        eprintln!(
            "{mode}: {} cases, {} differences",
            report.cases, report.differences
        );
        assert!(
            report.cases >= 20,
            "{mode}: only {} cases ran",
            report.cases
        );
        for f in &report.findings {
            failures.push(format!(
                "{mode} case {} ({} vs {}): code {}\n  {}",
                f.case,
                f.engines[0].name(),
                f.engines[1].name(),
                f.code,
                f.differences.join("\n  ")
            ));
        }
        if report.differences > 0 && report.findings.is_empty() {
            failures.push(format!("{mode}: {} differences", report.differences));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The flawed engine flips CF after every NOT: the shrinker must cut the first case that shows
/// it down to that one instruction.
#[test]
fn the_shrinker_cuts_a_planted_difference_down_to_one_instruction() {
    let batch = Batch {
        mode: Mode::Pm32,
        seed: 7,
        cases: 500,
        max_findings: 1,
        ..Batch::default()
    };
    let report = fuzz::run_batch(&batch, &[EngineKind::Interp, EngineKind::Flawed], None).unwrap();
    let f = report
        .findings
        .first()
        .expect("the flawed engine differs somewhere");
    let code = unhex(&f.code).unwrap();
    let mut d = Decoder::with_ip(32, &code, 0x10000, DecoderOptions::NONE);
    let all: Vec<_> = d.iter().collect();
    assert!(
        f.original_len > code.len(),
        "{} -> {}",
        f.original_len,
        code.len()
    );
    assert_eq!(all.len(), 1, "shrunk to {:02x?}", code);
    assert_eq!(all[0].mnemonic(), Mnemonic::Not, "shrunk to {:02x?}", code);
    assert!(
        f.differences.iter().any(|d| d.starts_with("rflags")),
        "{:?}",
        f.differences
    );
}

/// Runs vmscope; returns its status, stdout and stderr together, and stdout alone.
fn vmscope(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = stdout.clone() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text, stdout)
}

#[test]
fn a_written_finding_replays_with_its_command() {
    let dir = std::env::temp_dir().join(format!("vmscope-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.to_str().unwrap();
    let (status, text, _) = vmscope(&[
        "fuzz",
        "--mode",
        "real",
        "--seed",
        "3",
        "--cases",
        "300",
        "--engines",
        "interp,flawed",
        "--out",
        out,
    ]);
    assert_eq!(status, 1, "a difference makes the status 1:\n{text}");
    assert!(
        text.contains("DIFFERENCE interp vs flawed in real case"),
        "{text}"
    );
    let replay = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: "))
        .unwrap_or_else(|| panic!("no replay line:\n{text}"));
    let file = replay.strip_prefix("vmscope fuzz --replay ").unwrap();
    assert!(Path::new(file).exists(), "{file}");
    assert!(Path::new(&file.replace(".json", ".bin")).exists());
    let (status, again, _) = vmscope(&["fuzz", "--replay", file]);
    assert_eq!(status, 1, "{again}");
    assert!(
        again.contains("DIFFERENCE") && again.contains("rflags"),
        "{again}"
    );
    assert!(
        again.contains("not "),
        "the disassembly shows the NOT:\n{again}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn agreeing_engines_exit_zero_and_report_per_mode() {
    let (status, text, _) = vmscope(&[
        "fuzz",
        "--mode",
        "pm16,long",
        "--cases",
        "40",
        "--seed",
        "9",
    ]);
    assert_eq!(status, 0, "{text}");
    assert!(
        text.contains("pm16   40 cases on interp, bt: 0 with differences"),
        "{text}"
    );
    assert!(
        text.contains("long   40 cases on interp, bt: 0 with differences"),
        "{text}"
    );
    let (status, text, json) = vmscope(&["fuzz", "--mode", "real", "--cases", "10", "--json"]);
    assert_eq!(status, 0, "{text}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["mode"], "real");
    assert_eq!(v[0]["cases"], 10);
}

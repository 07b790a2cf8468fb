//! The interpreter against the hardware: all 65,000 SingleStepTests 80286 real-mode tests, and
//! the `conformance` and `isa` commands as a user runs them.
//! Teaches: a conformance suite is a test like any other — it must fail loudly when data is missing.

mod support;

use support::vmscope;

use std::path::PathBuf;

use vmscope::conformance::{self, moo, sst};

fn sst_dir() -> PathBuf {
    let dir = conformance::default_sst_dir();
    assert!(
        dir.join("README.md").is_file(),
        "the SingleStepTests data is missing: expected {} (../shared/testdata/sst-80286-real from \
         the project root, see ../shared/DESIGN.md)",
        dir.display()
    );
    dir
}

#[test]
fn every_unmasked_80286_test_passes() {
    let report = sst::run_dir(&sst_dir(), "").expect("reading the test set");
    let failures = report.render(3);
    assert_eq!(report.opcodes.len(), 325, "one result per opcode file");
    assert_eq!(report.total(), 65_000, "200 tests per opcode file");
    assert_eq!(report.failed(), 0, "{failures}");
    assert_eq!(report.passed() + report.masked(), report.total());
    // The masks must stay the exception: if a rule grew to swallow whole opcodes this would trip.
    assert!(
        report.masked() < report.total() / 20,
        "masked {} of {}",
        report.masked(),
        report.total()
    );
}

#[test]
fn a_changed_final_state_is_reported_as_a_failure() {
    let dir = sst_dir();
    let mut file = moo::read_file(&dir.join("27.MOO.gz")).expect("DAA file");
    // Corrupt the expected AX of every test: each must now fail, naming the register.
    for t in &mut file.tests {
        let want = t.fina.regs[moo::r::AX]
            .or(t.init.regs[moo::r::AX])
            .unwrap_or(0);
        t.fina.regs[moo::r::AX] = Some(want ^ 0x0101);
    }
    let mut runner = sst::Runner::new().unwrap();
    let result = runner.run_file("27", &file, &[]);
    assert_eq!(result.passed, 0);
    assert_eq!(result.failed, 200);
    assert!(result.failures[0].contains("ax="), "{}", result.failures[0]);
}

#[test]
fn revoked_tests_are_skipped_by_hash() {
    let dir = sst_dir();
    let file = moo::read_file(&dir.join("90.MOO.gz")).expect("NOP file");
    let revoked = vec![file.tests[0].hash_hex(), file.tests[5].hash_hex()];
    let result = sst::Runner::new().unwrap().run_file("90", &file, &revoked);
    assert_eq!((result.revoked, result.total), (2, 198));
}

#[test]
fn cli_prints_the_table_and_the_summary_line() {
    let out = vmscope(&["conformance", "sst", "--only", "F6", "--rules"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("F6.6   div"), "{stdout}");
    assert!(stdout.contains("DIV/IDIV"), "the rules table: {stdout}");
    // F6.0–F6.7: 8 files of 200 tests; every test either passes or is masked by a rule.
    let last = stdout.lines().last().unwrap();
    let n: Vec<usize> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(last.starts_with("passed "), "{last}");
    assert_eq!(n[1], 1600, "{last}");
    assert_eq!(n[0] + n[2], 1600, "{last}");
}

#[test]
fn cli_names_a_missing_directory() {
    let out = vmscope(&["conformance", "sst", "/nonexistent/sst"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("/nonexistent/sst"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    // It points to the test set by a path that exists here (it used to name a DESIGN.md and a
    // path relative to "the project root" that exist nowhere the user stands).
    let real = sst_dir().canonicalize().unwrap();
    assert!(
        stderr.contains(&format!("the test set is in {}", real.display())),
        "{stderr}"
    );
}

#[test]
fn isa_lists_implemented_mnemonics_from_the_dispatch() {
    let out = vmscope(&["isa", "--mode", "64"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    let row = |m: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(m))
            .unwrap_or_else(|| panic!("no row for {m}:\n{stdout}"))
            .to_string()
    };
    let cols = |m: &str| {
        row(m)
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        cols("cmpxchg16b"),
        ["cmpxchg16b", "-", "-", "yes", "yes"],
        "64-bit only"
    );
    assert_eq!(
        cols("fsin"),
        ["fsin", "yes", "yes", "yes"],
        "x87: implemented, not baseline"
    );
    assert_eq!(
        cols("aesenc"),
        ["aesenc", "no", "no", "no"],
        "AES-NI: not implemented"
    );
    // AAA does not exist in 64-bit mode, so it is not listed for --mode 64.
    assert!(!stdout.lines().any(|l| l.starts_with("aaa ")));
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("implemented ") && last.contains("64-bit mode"),
        "{last}"
    );
    let all = vmscope(&["isa"]);
    let all = String::from_utf8_lossy(&all.stdout);
    let aaa = all.lines().find(|l| l.starts_with("aaa ")).unwrap();
    assert_eq!(
        aaa.split_whitespace().collect::<Vec<_>>(),
        ["aaa", "yes", "yes", "-", "yes"]
    );
    // The whole integer baseline is implemented: nothing is listed as missing.
    let missing = vmscope(&["isa", "--baseline", "--missing"]);
    let missing = String::from_utf8_lossy(&missing.stdout);
    let lines: Vec<&str> = missing.lines().collect();
    assert_eq!(lines.len(), 3, "{missing}");
    assert!(
        lines[1].starts_with("integer baseline: implemented "),
        "{missing}"
    );
}

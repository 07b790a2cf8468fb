//! Runs every experiment the book shows (```console blocks in book/src) and compares the output.
//! Teaches: a book about running code stays true only if a test runs what it shows.
//!
//! The format is described in the book's "How to read this book": a block starts with
//! `$ vmscope ARGS` (`2>&1` at the end merges standard error in), the lines after it are the
//! expected output, `...` alone on a line matches any number of lines, `[..]` inside a line
//! matches any text, and `$ echo $?` followed by a number checks the exit status. A block
//! opened with ```console kvm needs /dev/kvm and is skipped, with the reason printed, where
//! KVM is not usable.

mod book_support;

use std::fs::File;
use std::io::Read;
use std::process::{Command as Process, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use book_support::*;

/// Longest a single experiment may take before the test gives up on it.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What one command printed and how it ended.
struct Ran {
    output: String,
    status: Option<i32>,
}

/// Runs vmscope with `args` in the project root; stdout, or stdout and stderr merged in the
/// order they were written (one file behind both descriptors, as a terminal would show them).
fn run_vmscope(args: &[String], merge_stderr: bool) -> Result<Ran, String> {
    ensure_blank_disk()?;
    let dir = std::env::temp_dir().join(format!("vmscope-book-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("out-{}", NEXT_FILE.fetch_add(1, Ordering::Relaxed)));
    let file = File::create(&path).map_err(|e| e.to_string())?;
    let stderr = if merge_stderr {
        Stdio::from(file.try_clone().map_err(|e| e.to_string())?)
    } else {
        Stdio::null()
    };
    let mut child = Process::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start vmscope: {e}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {TIMEOUT:?}; killed"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut output = String::new();
    File::open(&path)
        .and_then(|mut f| f.read_to_string(&mut output))
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&path);
    Ok(Ran {
        output,
        status: status.code(),
    })
}

/// The disk image the devices chapter attaches (`book/disks/blank.img`, 64 KiB of zeros,
/// opened read-only): made here, not committed, as `truncate -s 64K` would make it.
fn ensure_blank_disk() -> Result<(), String> {
    let dir = root().join("book/disks");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("blank.img"))
        .map_err(|e| e.to_string())?;
    f.set_len(64 << 10).map_err(|e| e.to_string())
}

static NEXT_FILE: AtomicUsize = AtomicUsize::new(0);

/// Checks one command against the book; the error is a readable diff naming the book lines.
fn check(file: &str, cmd: &book_support::Command) -> Result<(), String> {
    let shown_cmd = format!(
        "$ vmscope {}{}",
        cmd.args.join(" "),
        if cmd.merge_stderr { " 2>&1" } else { "" }
    );
    let ran = run_vmscope(&cmd.args, cmd.merge_stderr)
        .map_err(|e| format!("{file}:{}: {shown_cmd}: {e}", cmd.line))?;
    let expected: Vec<&str> = cmd.expected.iter().map(|(_, l)| l.as_str()).collect();
    let actual: Vec<&str> = ran.output.lines().collect();
    if let Err((ei, ai)) = lines_match(&expected, &actual) {
        let book_line = cmd.expected.get(ei).map_or(cmd.line, |(n, _)| *n);
        let mut msg = format!(
            "{file}:{book_line}: the output of `{shown_cmd}` (book line {}) differs from the book\n\
             first difference: book line {book_line}, output line {}\n",
            cmd.line,
            ai + 1
        );
        let after_ellipsis = ei > 0 && expected[ei - 1].trim() == "...";
        let book_says = expected.get(ei).map_or(
            "(end of the block: no more output expected)".to_string(),
            |l| format!("{l:?}"),
        );
        if after_ellipsis && ei < expected.len() {
            msg.push_str(&format!(
                "  book says: {book_says}\n  vmscope printed no such line after output line {ai}\n"
            ));
        } else {
            let printed = actual
                .get(ai)
                .map_or("(end of the output)".to_string(), |l| format!("{l:?}"));
            msg.push_str(&format!(
                "  book says: {book_says}\n  vmscope printed: {printed}\n"
            ));
        }
        msg.push_str("--- expected (book) ---\n");
        for (i, (n, l)) in cmd.expected.iter().enumerate() {
            let mark = if i == ei { ">" } else { " " };
            msg.push_str(&format!("{mark}{n:5} | {l}\n"));
        }
        msg.push_str("--- actual (vmscope) ---\n");
        for (i, l) in actual.iter().enumerate() {
            let mark = if i == ai { ">" } else { " " };
            msg.push_str(&format!("{mark}{:5} | {l}\n", i + 1));
        }
        return Err(msg);
    }
    if let Some((line, want)) = cmd.status {
        if ran.status != Some(want) {
            return Err(format!(
                "{file}:{line}: `{shown_cmd}` exited with {:?}; the book shows {want}",
                ran.status
            ));
        }
    }
    Ok(())
}

/// Commands that need /dev/kvm, so their block must carry the `kvm` mark.
fn needs_kvm(args: &[String]) -> bool {
    let joined = args.join(" ");
    joined.contains("--engine kvm")
        || joined.contains("--switch-to kvm")
        || args.first().is_some_and(|a| a == "kvm-info")
        || joined.starts_with("conformance native")
        || joined.contains("--engines") && joined.contains("kvm")
}

fn all_experiments() -> Vec<Experiment> {
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for (path, text) in chapters() {
        match experiments(&path, &text) {
            Ok(found) => all.extend(found),
            Err(e) => errors.push(e),
        }
    }
    assert!(
        errors.is_empty(),
        "malformed experiments:\n{}",
        errors.join("\n")
    );
    all
}

#[test]
fn every_experiment_in_the_book_prints_what_the_book_says() {
    let started = Instant::now();
    let experiments = all_experiments();
    assert!(
        experiments.len() >= 10,
        "only {} experiments found in book/src",
        experiments.len()
    );
    let kvm_missing = accel_kvm::kvm_for_tests().err();
    let mut jobs = Vec::new();
    let mut problems = Vec::new();
    for ex in &experiments {
        let file = shown(&ex.file);
        for cmd in &ex.commands {
            if needs_kvm(&cmd.args) && !ex.kvm {
                problems.push(format!(
                    "{file}:{}: this command needs KVM: open its block with ```console kvm",
                    cmd.line
                ));
            }
        }
        if ex.kvm {
            if let Some(why) = &kvm_missing {
                eprintln!(
                    "skipped {file}:{} (```console kvm): KVM is not usable here: {why}",
                    ex.line
                );
                continue;
            }
        }
        jobs.extend(ex.commands.iter().map(|c| (file.clone(), c.clone())));
    }
    // Two workers: the experiments are independent processes (kvm ones included).
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((file, cmd)) = jobs.get(i) else {
                    break;
                };
                if let Err(e) = check(file, cmd) {
                    failures.lock().unwrap().push(e);
                }
            });
        }
    });
    problems.extend(failures.into_inner().unwrap());
    problems.sort();
    eprintln!(
        "book: {} experiments, {} commands run in {:.1?}",
        experiments.len(),
        jobs.len(),
        started.elapsed()
    );
    assert!(
        problems.is_empty(),
        "{} experiment(s) in the book disagree with vmscope:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// The checker itself: it must fail when a real experiment's expected line changes.
#[test]
fn the_checker_fails_when_an_expected_line_changes() {
    let ex = all_experiments()
        .into_iter()
        .find(|e| !e.kvm && e.commands.iter().any(|c| c.expected.len() > 2))
        .expect("an experiment with some output");
    let mut cmd = ex
        .commands
        .into_iter()
        .find(|c| c.expected.len() > 2)
        .unwrap();
    let file = shown(&ex.file);
    check(&file, &cmd).expect("the unchanged experiment passes");
    let (_, line) = cmd
        .expected
        .iter_mut()
        .find(|(_, l)| l.trim() != "..." && !l.trim().is_empty())
        .unwrap();
    line.push_str(" (changed)");
    let err = check(&file, &cmd).expect_err("a changed line must fail");
    assert!(
        err.contains(&file) && err.contains("differs from the book"),
        "{err}"
    );
}

#[test]
fn patterns_match_as_documented() {
    assert!(line_matches("took [..] ms", "took 12.5 ms"));
    assert!(line_matches("[..]", ""));
    assert!(line_matches("a[..]b[..]c", "a1b2c"));
    assert!(!line_matches("a[..]b[..]c", "a1c"));
    assert!(line_matches("exact  ", "exact"));
    assert!(!line_matches("exact", "exactly"));
    assert!(lines_match(&["a", "...", "z"], &["a", "b", "c", "z"]).is_ok());
    assert!(lines_match(&["a", "...", "z"], &["a", "z"]).is_ok());
    assert!(lines_match(&["a", "..."], &["a", "b"]).is_ok());
    assert_eq!(lines_match(&["a", "b"], &["a", "c"]), Err((1, 1)));
    assert!(lines_match(&["a"], &["a", "extra"]).is_err());
    assert_eq!(lines_match(&["a", "...", "z"], &["a", "b"]), Err((2, 1)));
    assert_eq!(
        split_shell(r#"run kernel --cmdline "workloads=compute:1 iterations=2" 'a b' c\ d"#)
            .unwrap(),
        [
            "run",
            "kernel",
            "--cmdline",
            "workloads=compute:1 iterations=2",
            "a b",
            "c d"
        ]
    );
    assert!(split_shell("run | less").is_err());
}

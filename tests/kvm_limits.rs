//! KVM under limits: counting instructions by single-stepping (switch by instructions,
//! `--max-instructions`, `step --skip`), time slices, and guest output as it happens.
//! Teaches: a native engine cannot count what it does not see; single-stepping makes every
//! instruction an exit, and the counts must then agree with the interpreter's.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use vmscope::{EngineChoice, RunOptions, SwitchPlan, SwitchUnit};

/// Runs vmscope under coreutils' `timeout`: a hang is a failure (status 124), not a stuck job.
fn vmscope(args: &[&str]) -> std::process::Output {
    let out = Command::new("timeout")
        .arg("120")
        .arg(env!("CARGO_BIN_EXE_vmscope"))
        .args(args)
        .output()
        .expect("running vmscope under timeout");
    assert_ne!(
        out.status.code(),
        Some(124),
        "vmscope {args:?} did not finish in 120 s"
    );
    out
}

fn skip() -> bool {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: KVM is not usable here: {why}");
        return true;
    }
    false
}

#[test]
fn kvm_switches_to_the_interpreter_after_a_count_of_instructions() {
    if skip() {
        return;
    }
    let (reference, reference_out) = run_builtin("hello64", opts(EngineChoice::Interp));
    for after in [10, 700, 2500] {
        let plan = SwitchPlan {
            after,
            unit: SwitchUnit::Instructions,
            to: EngineChoice::Interp,
        };
        let options = RunOptions {
            switch: Some(plan),
            ..opts(EngineChoice::Kvm)
        };
        let (switched, out) = run_builtin("hello64", options);
        assert_eq!(
            out, reference_out,
            "kvm → interp after {after} instructions"
        );
        assert_eq!(switched.status, reference.status);
        assert_eq!(switched.engines.len(), 2, "{:?}", switched.engines);
    }
}

/// RIPs of the first `n` instructions `vmscope step` shows.
fn stepped_rips(engine: &str, n: &str) -> Vec<String> {
    let out = vmscope(&["step", "hello64", "--engine", engine, "-n", n]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn kvm_steps_the_same_instructions_as_the_interpreter_until_interrupts_begin() {
    if skip() {
        return;
    }
    // hello64 enables interrupts after ~1,500 instructions: until then nothing depends on
    // time, so the same instructions must run in the same order. Its REP STOSB over 16 KiB is
    // one step on KVM and four on the emulated engines (which stop every 4,096 iterations to
    // let interrupts in), so repeats of one RIP are compared as one.
    let collapse = |mut rips: Vec<String>| {
        rips.dedup();
        rips
    };
    let interp = collapse(stepped_rips("interp", "1200"));
    let kvm = collapse(stepped_rips("kvm", "1200"));
    assert!(interp.len() > 1100);
    let n = interp.len().min(kvm.len());
    assert_eq!(kvm[..n], interp[..n]);
}

#[test]
fn step_skips_thousands_of_instructions_on_kvm() {
    if skip() {
        return;
    }
    // Through timer interrupts that wake HLT, and the return to ring 3.
    let out = vmscope(&[
        "step", "hello64", "--engine", "kvm", "--skip", "2600", "-n", "3",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| !l.starts_with(' ')).count(),
        3,
        "{stdout}"
    );
    // Past the end of the guest: a plain-words error, not a Rust debug dump.
    let out = vmscope(&[
        "step", "hello64", "--engine", "kvm", "--skip", "50000", "-n", "1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("guest wrote 0x10 to isa-debug-exit"),
        "{stderr}"
    );
    assert!(!stderr.contains("DebugExit {"), "{stderr}");
}

#[test]
fn max_instructions_applies_on_kvm() {
    if skip() {
        return;
    }
    let kvm = vmscope(&[
        "run",
        "hello64",
        "--engine",
        "kvm",
        "--max-instructions",
        "400",
    ]);
    let interp = vmscope(&[
        "run",
        "hello64",
        "--engine",
        "interp",
        "--max-instructions",
        "400",
    ]);
    assert_eq!(
        kvm.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&kvm.stderr)
    );
    assert_eq!(interp.status.code(), Some(4));
    // The first 400 instructions print the beginning of the greeting on both (the emulated
    // engines count the boot's long REP STOSB as 4 steps, KVM as one: KVM gets 3 further).
    assert!(!interp.stdout.is_empty());
    assert!(kvm.stdout.starts_with(&interp.stdout), "{:?}", kvm.stdout);
    assert!(kvm.stdout.len() <= interp.stdout.len() + 1);
}

#[test]
fn kvm_output_appears_while_the_guest_still_runs() {
    if skip() {
        return;
    }
    // Real mode at 0x7C00: print "ready\n" on COM1, then spin forever without I/O.
    let mut image = vec![
        0xBA, 0xF8, 0x03, // mov dx, 0x3F8
        0xBE, 0x10, 0x7C, // mov si, msg
        0xAC, // next: lodsb
        0x84, 0xC0, // test al, al
        0x74, 0x03, // jz spin
        0xEE, // out dx, al
        0xEB, 0xF8, // jmp next
        0xEB, 0xFE, // spin: jmp spin
    ];
    image.extend_from_slice(b"ready\n\0");
    let file = std::env::temp_dir().join(format!("vmscope-spin-{}.bin", std::process::id()));
    std::fs::write(&file, &image).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(["run", file.to_str().unwrap(), "--engine", "kvm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"ready\n") && stdout.read(&mut byte).unwrap_or(0) == 1 {
            seen.push(byte[0]);
        }
        seen
    });
    let start = Instant::now();
    while !reader.is_finished() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(&file);
    let seen = reader.join().unwrap();
    assert!(still_running, "the spinning guest ended by itself");
    assert_eq!(String::from_utf8_lossy(&seen), "ready\n");
}

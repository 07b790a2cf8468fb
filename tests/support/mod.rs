//! Shared helpers for the cross-crate tests: run a built-in guest on an engine, find QEMU and KVM.
//! Teaches: nothing for students; it keeps the integration tests short.
#![allow(dead_code)]

pub mod netns;

use std::process::Command;

use vmscope::{run_guest, EngineChoice, GuestOutcome, RunOptions};

pub const CMDLINE: &str = "hello from the command line";

/// Runs the `vmscope` binary with `args` and waits for it.
pub fn vmscope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(args)
        .output()
        .expect("running vmscope")
}

/// Runs a built-in guest to completion on `engine`; returns the outcome and its serial output.
pub fn run_builtin(name: &str, opts: RunOptions) -> (GuestOutcome, String) {
    let g = guests::by_name(name).unwrap_or_else(|| panic!("no built-in guest {name}"));
    let mut serial = Vec::new();
    let outcome = run_guest(g.file_name, g.image, &opts, &mut serial, &mut |n| {
        eprintln!("{n}")
    })
    .unwrap_or_else(|e| panic!("{name} on {:?}: {e:#}", opts.engine));
    (outcome, String::from_utf8_lossy(&serial).into_owned())
}

pub fn opts(engine: EngineChoice) -> RunOptions {
    RunOptions {
        engine,
        cmdline: CMDLINE.to_string(),
        ..RunOptions::default()
    }
}

/// The exit status a guest's declared exit value leads to: `(v << 1) | 1`, or 0 for a clean halt.
pub fn expected_status(g: &guests::Guest) -> i32 {
    g.exit_value.map_or(0, |v| ((v << 1) | 1) as i32 & 0xFF)
}

/// The text a guest prints, with the command-line placeholder filled in.
pub fn expected_serial(g: &guests::Guest) -> String {
    g.expected_serial.replace("{cmdline}", CMDLINE)
}

/// Why KVM tests cannot run here, if they cannot.
pub fn kvm_skip_reason() -> Option<String> {
    accel_kvm::kvm_for_tests().err()
}

/// interp, bt and kvm — kvm only where KVM works (else the reason is printed; with
/// VMSCOPE_REQUIRE_KVM set, `kvm_for_tests` makes the test fail instead).
pub fn engines_with_kvm() -> Vec<EngineChoice> {
    [EngineChoice::Interp, EngineChoice::Bt, EngineChoice::Kvm]
        .into_iter()
        .filter(|&e| {
            if e != EngineChoice::Kvm {
                return true;
            }
            match kvm_skip_reason() {
                None => true,
                Some(why) => {
                    eprintln!("kvm skipped: {why}");
                    false
                }
            }
        })
        .collect()
}

pub fn qemu_path() -> Option<&'static str> {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "qemu-system-x86_64")
}

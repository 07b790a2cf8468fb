//! Snapshot files end to end: `vmscope run --save-at N --save FILE`, then `vmscope restore FILE`
//! on another engine continues exactly where the saved run was; a damaged file is refused with
//! the section it is damaged in.
//! Teaches: a machine is data, and data can cross from one engine to another.

mod support;

use support::*;

const CMDLINE: &str = "workloads=compute:3,syscall:100,rng-read:2";
const AT: &str = "200000";

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_saved_machine_continues_on_another_engine_as_if_never_stopped() {
    let file = std::env::temp_dir().join(format!("vmscope-snap-{}.vmsnap", std::process::id()));
    let f = file.to_str().unwrap();
    let base = [
        "run",
        "kernel",
        "--engine",
        "bt",
        "--virtio-rng",
        "--cmdline",
        CMDLINE,
    ];
    let full = vmscope(&base);
    assert_eq!(full.status.code(), Some(33));
    let mut saving = base.to_vec();
    saving.extend(["--save-at", AT, "--save", f]);
    let saved = vmscope(&saving);
    assert_eq!(text(&saved), text(&full), "saving does not change the run");
    let mut prefix_args = base.to_vec();
    prefix_args.extend(["--max-instructions", AT]);
    let prefix = text(&vmscope(&prefix_args));
    for engine in ["interp", "bt"] {
        let restored = vmscope(&["restore", f, "--engine", engine]);
        assert_eq!(
            restored.status.code(),
            Some(33),
            "{}",
            String::from_utf8_lossy(&restored.stderr)
        );
        assert_eq!(
            prefix.clone() + &text(&restored),
            text(&full),
            "restored on {engine}"
        );
    }
    // A flipped byte in the middle of the file: refused, naming a section.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5A;
    std::fs::write(&file, &bytes).unwrap();
    let bad = vmscope(&["restore", f, "--engine", "interp"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_ne!(bad.status.code(), Some(33));
    assert!(
        err.contains("not a usable snapshot") && err.contains("section"),
        "{err}"
    );
    let _ = std::fs::remove_file(&file);
}

/// Ctrl-C with `--save FILE`: the guest stops at an instruction boundary, is saved, and
/// vmscope exits 130; restored on bt, the guest's counter goes on from the next tick. On kvm,
/// because only there does `dirty:N` take real time (its ticks are 10 ms of host time).
#[test]
fn ctrl_c_saves_the_machine_and_restore_goes_on() {
    use std::io::{BufRead, BufReader};
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let file = std::env::temp_dir().join(format!("vmscope-ctrlc-{}.vmsnap", std::process::id()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(["run", "kernel", "--engine", "kvm"])
        .args(["--cmdline", "workloads=dirty:1000", "--save"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut before = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        before += &line;
        before.push('\n');
        if line == "dirty: tick 20" {
            break;
        }
    }
    let pid = child.id().to_string();
    let kill = std::process::Command::new("kill").args(["-INT", &pid]).status();
    assert!(kill.unwrap().success());
    for line in lines {
        before += &line.unwrap();
        before.push('\n');
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("Ctrl-C: saved the machine"), "{err}");
    let restored = vmscope(&["restore", file.to_str().unwrap(), "--engine", "bt"]);
    assert_eq!(restored.status.code(), Some(33));
    let all = before + &text(&restored);
    let ticks: Vec<u64> = all
        .lines()
        .filter_map(|l| l.strip_prefix("dirty: tick "))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(ticks, (0..1000).collect::<Vec<_>>(), "every tick once");
    let sum = vmscope::compare::suite::expected_checksum("dirty", 1000).unwrap();
    assert!(
        all.contains(&format!("checksum={sum:#x}")),
        "the restored memory is the guest's: {all}"
    );
    let _ = std::fs::remove_file(&file);
}

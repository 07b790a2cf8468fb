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

/// The RESULT lines, their `guest_tsc=` fields taken out.
fn without_tsc(serial: &str) -> String {
    serial
        .lines()
        .filter(|l| l.starts_with("RESULT"))
        .map(|l| match l.find(" guest_tsc=") {
            Some(at) => {
                let rest = &l[at + 1..];
                let end = rest.find(' ').map_or(l.len(), |e| at + 1 + e);
                format!("{}{}", &l[..at], &l[end..])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// In-process, so the whole final state can be compared: saved at N on one emulated engine,
/// restored from the file on the other, the run ends in the uninterrupted run's CPU state,
/// instruction count, virtual time and output.
#[test]
fn a_restored_run_ends_in_the_same_state_bit_for_bit() {
    use vmscope::runner::SavePlan;
    use vmscope::{EngineChoice, RunOptions};
    let base = RunOptions {
        cmdline: CMDLINE.into(),
        virtio_rng: Some(vmscope::attach::RngSpec {
            transport: vmscope::disk::VirtioTransport::Pci,
            seed: 0,
        }),
        ..RunOptions::default()
    };
    for (save_on, restore_on) in [
        (EngineChoice::Bt, EngineChoice::Interp),
        (EngineChoice::Interp, EngineChoice::Bt),
    ] {
        let (full, full_serial) = run_builtin(
            "kernel",
            RunOptions {
                engine: save_on,
                ..base.clone()
            },
        );
        let file = std::env::temp_dir().join(format!(
            "vmscope-snap-lib-{}-{save_on}.vmsnap",
            std::process::id()
        ));
        let saving = RunOptions {
            engine: save_on,
            save: Some(SavePlan {
                at: Some(AT.parse().unwrap()),
                path: file.clone(),
            }),
            ..base.clone()
        };
        let (_, saved_serial) = run_builtin("kernel", saving);
        assert_eq!(saved_serial, full_serial);
        let (_, prefix) = run_builtin(
            "kernel",
            RunOptions {
                engine: save_on,
                max_instructions: Some(AT.parse().unwrap()),
                ..base.clone()
            },
        );
        let mut rest = Vec::new();
        let restored =
            vmscope::snapshot::restore_and_run(&file, restore_on, None, &[], &mut rest, &mut |n| {
                eprintln!("{n}")
            })
            .unwrap();
        assert_eq!(
            prefix + &String::from_utf8_lossy(&rest),
            full_serial,
            "{save_on} → {restore_on}: output"
        );
        assert_eq!(
            restored.machine.cpu, full.machine.cpu,
            "{save_on} → {restore_on}: CPU state"
        );
        assert_eq!(
            restored.machine.stats.instructions, full.machine.stats.instructions,
            "instructions"
        );
        assert_eq!(
            restored.machine.bus.now_ns(),
            full.machine.bus.now_ns(),
            "virtual time"
        );
        assert_eq!(restored.status, full.status);
        let _ = std::fs::remove_file(&file);
    }
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
    // On kvm time is the host's: the guest's TSC readings and its count of timer interrupts
    // differ (this PVM host does not let vmscope set the TSC); every result is the same.
    match kvm_skip_reason() {
        Some(why) => eprintln!("kvm restore skipped: {why}"),
        None => {
            let restored = vmscope(&["restore", f, "--engine", "kvm"]);
            assert_eq!(restored.status.code(), Some(33));
            assert_eq!(
                without_tsc(&(prefix.clone() + &text(&restored))),
                without_tsc(&text(&full)),
                "restored on kvm"
            );
        }
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
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status();
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

/// A machine with a disk, saved in the middle of disk-write: the file carries the disk as it
/// was then, `restore --disk NEW` writes it to a new file (never over the one it was saved
/// from), and the restored run ends with the output and the disk contents of an uninterrupted
/// run — through virtio-blk and through IDE.
#[test]
fn a_saved_disk_comes_back_as_it_was_at_the_save() {
    let dir = std::env::temp_dir().join(format!("vmscope-snapdisk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // 200 requests of 4 KiB: disk-write is still writing after 300,000 instructions.
    let cmdline = "workloads=disk-write,disk-read iterations=200";
    let at = "300000";
    for interface in ["virtio-pci", "ide"] {
        let disk = |name: &str| {
            let path = dir.join(format!("{interface}-{name}.img"));
            std::fs::write(&path, vec![0u8; 16 << 20]).unwrap();
            path
        };
        let run = |image: &std::path::Path, extra: &[&str]| {
            let spec = format!("{},if={interface}", image.display());
            let mut args = vec!["run", "kernel", "--engine", "bt", "--disk", &spec];
            args.extend(["--cmdline", cmdline]);
            args.extend(extra);
            vmscope(&args)
        };
        let (full_disk, saved_disk, prefix_disk) = (disk("full"), disk("saved"), disk("prefix"));
        let full = run(&full_disk, &[]);
        assert_eq!(
            full.status.code(),
            Some(33),
            "{}",
            String::from_utf8_lossy(&full.stderr)
        );
        let snap = dir.join(format!("{interface}.vmsnap"));
        let saving = run(
            &saved_disk,
            &["--save-at", at, "--save", snap.to_str().unwrap()],
        );
        assert_eq!(saving.status.code(), Some(33));
        let prefix = run(&prefix_disk, &["--max-instructions", at]);
        assert!(
            !text(&prefix).contains("RESULT workload=disk-write"),
            "the save falls inside disk-write"
        );
        let at_save = std::fs::read(&prefix_disk).unwrap();
        assert!(at_save.iter().any(|b| *b != 0), "disk-write had begun");
        assert!(
            at_save != std::fs::read(&full_disk).unwrap(),
            "and not ended"
        );

        let restored_disk = dir.join(format!("{interface}-restored.img"));
        let glance = vmscope(&[
            "restore",
            snap.to_str().unwrap(),
            "--disk",
            restored_disk.to_str().unwrap(),
            "--max-instructions",
            "0",
        ]);
        assert_eq!(
            glance.status.code(),
            Some(4),
            "{}",
            String::from_utf8_lossy(&glance.stderr)
        );
        assert!(
            std::fs::read(&restored_disk).unwrap() == at_save,
            "{interface}: the restored file holds the disk as it was at the save"
        );
        let again = vmscope(&[
            "restore",
            snap.to_str().unwrap(),
            "--disk",
            restored_disk.to_str().unwrap(),
        ]);
        assert_ne!(
            again.status.code(),
            Some(33),
            "an existing file is never overwritten"
        );
        std::fs::remove_file(&restored_disk).unwrap();

        let restored = vmscope(&[
            "restore",
            snap.to_str().unwrap(),
            "--engine",
            "interp",
            "--disk",
            restored_disk.to_str().unwrap(),
        ]);
        assert_eq!(
            restored.status.code(),
            Some(33),
            "{}",
            String::from_utf8_lossy(&restored.stderr)
        );
        assert_eq!(
            text(&prefix) + &text(&restored),
            text(&full),
            "{interface}: the output"
        );
        assert!(
            std::fs::read(&restored_disk).unwrap() == std::fs::read(&full_disk).unwrap(),
            "{interface}: the restored run's disk is the uninterrupted run's"
        );
        let temporary = vmscope(&["restore", snap.to_str().unwrap(), "--engine", "bt"]);
        assert_eq!(temporary.status.code(), Some(33));
        assert!(String::from_utf8_lossy(&temporary.stderr).contains("a temporary copy"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

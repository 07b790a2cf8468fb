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

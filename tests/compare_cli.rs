//! `vmscope compare` from the command line: the table on stdout, JSON and SVG files, errors.
//! Teaches: what a user sees; the exit status a script can rely on.

use std::process::Command;

fn vmscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmscope"))
}

#[test]
fn compare_writes_the_table_json_and_plot() {
    let dir = std::env::temp_dir().join(format!("vmscope-compare-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, plot) = (dir.join("r.json"), dir.join("r.svg"));
    let out = vmscope()
        .args([
            "compare",
            "--engines",
            "interp",
            "--workloads",
            "syscall,cpuid",
        ])
        .args(["--iterations", "5", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&plot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("syscall") && stdout.contains("cpuid"),
        "{stdout}"
    );
    assert!(stdout.contains("all agree"), "{stdout}");
    assert!(
        stderr.contains("compare: interp: syscall × 5"),
        "progress goes to stderr: {stderr}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["workload"], "syscall");
    assert_eq!(results[0]["ops"], 5);
    assert_eq!(results[0]["checksum"], "0x000000000000000f"); // 1 + 2 + 3 + 4 + 5
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<title>").count(), 2, "one bar per result");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_engines_and_workloads_are_errors_naming_the_choices() {
    let out = vmscope()
        .args(["compare", "--engines", "virtualbox"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown engine \"virtualbox\"")
            && err.contains("qemu-tcg")
            && err.contains("bochs"),
        "{err}"
    );

    let out = vmscope()
        .args(["compare", "--engines", "interp", "--workloads", "fork"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown workload \"fork\"") && err.contains("pagefault"),
        "{err}"
    );
}

#[test]
fn compare_io_measures_ata_against_virtio_with_verified_data() {
    let dir = std::env::temp_dir().join(format!("vmscope-compare-io-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, plot) = (dir.join("io.json"), dir.join("io.svg"));
    let out = vmscope()
        .args([
            "compare",
            "--io",
            "--engines",
            "interp",
            "--iterations",
            "64",
        ])
        .args(["--request", "65536", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&plot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let cells = v["io"].as_array().unwrap();
    let cell = |i: &str| cells.iter().find(|c| c["interface"] == i).unwrap();
    let exits = |i: &str| cell(i)["exits_per_mb"].as_f64().unwrap();
    assert_eq!(cells.len(), 3);
    // ATA PIO: one trap per 32-bit data word at least (256 KiB of words per MB).
    assert!(exits("ide") >= 262_144.0, "{}", exits("ide"));
    for virtio in ["virtio-mmio", "virtio-pci"] {
        assert!(
            exits(virtio) * 1000.0 < exits("ide"),
            "{virtio}: {}",
            exits(virtio)
        );
        let irqs = cell(virtio)["interrupts_per_mb"].as_f64().unwrap();
        assert!(
            irqs <= 0.5,
            "{virtio}: {irqs} interrupts per MB, want one per batch of 32"
        );
        assert!(cell(virtio)["mb_per_s"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(
        cell("ide")["interrupts_per_mb"].as_f64().unwrap(),
        128.0,
        "one per 8 KiB block (READ MULTIPLE of 16 sectors)"
    );
    assert!(stdout.contains("fewer exits per MB"), "{stdout}");
    // The console rows: console-write through the UART and a virtio-console, 64 lines each.
    let console = v["console"].as_array().unwrap();
    assert_eq!(console.len(), 2);
    assert!(console.iter().all(|c| c["lines"] == 64), "{console:?}");
    assert!(stdout.contains("fewer exits per KB"), "{stdout}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("virtio-pci"),
        "{svg}"
    );
    // A request size that is not whole sectors is refused before anything runs.
    let bad = vmscope()
        .args([
            "compare",
            "--io",
            "--engines",
            "interp",
            "--request",
            "1000",
        ])
        .output()
        .unwrap();
    assert_ne!(bad.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("multiple of 512"));
}

#[test]
fn the_teaching_kernels_workloads_are_checked_before_any_guest_runs() {
    // --iterations lets another kernel bring workloads the host does not know; the teaching
    // kernel's are the suite's, so a wrong name is refused before a boot (the guest used to
    // find out, after the host had calibrated and booted it).
    let out = vmscope()
        .args(["compare", "--engines", "interp", "--iterations", "5"])
        .args(["--workloads", "cpuid,nosuchworkload"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown workload \"nosuchworkload\"") && err.contains("teaching kernel"),
        "{err}"
    );
    assert!(
        !err.contains("compare: interp"),
        "nothing ran before the error: {err}"
    );
}

#[test]
fn checking_the_output_files_first_neither_truncates_nor_leaves_files() {
    let dir = std::env::temp_dir().join(format!("vmscope-compare-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old, new) = (dir.join("old.json"), dir.join("new.svg"));
    std::fs::write(&old, "{\"earlier\": true}\n").unwrap();
    // The run fails after the files were checked (an unknown workload).
    let out = vmscope()
        .args(["compare", "--engines", "interp", "--workloads", "fork"])
        .arg("--json")
        .arg(&old)
        .arg("--plot")
        .arg(&new)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(&old).unwrap(),
        "{\"earlier\": true}\n",
        "an earlier result survives a failed run"
    );
    assert!(!new.exists(), "no empty file left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_refuses_a_file_that_is_not_a_multiboot_kernel_before_booting_it() {
    // `jmp $` carrying the RESULT marker: as a flat binary it never sees the workloads on a
    // command line, and it used to spin until the 600 s boot timeout (on PVM's KVM, forever).
    let dir = std::env::temp_dir().join(format!("vmscope-compare-flat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("spin.img");
    std::fs::write(&img, b"\xeb\xfeRESULT workload=").unwrap();
    let mut child = vmscope()
        .arg("compare")
        .arg(&img)
        .args(["--engines", "interp", "--workloads", "cpuid"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("compare booted a flat binary instead of refusing it");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(img.to_str().unwrap()) && err.contains("is not a Multiboot kernel"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_boot_that_ends_badly_is_told_in_words() {
    // A Multiboot kernel (a.out kludge, loaded at 1 MiB) of `cli; hlt` that carries the
    // RESULT marker: compare boots it and it halts at once.
    let dir = std::env::temp_dir().join(format!("vmscope-compare-halt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("halt.bin");
    let (magic, flags) = (0x1BAD_B002u32, 0x0001_0000u32);
    let mut kernel = Vec::new();
    for word in [
        magic,
        flags,
        magic.wrapping_add(flags).wrapping_neg(),
        0x10_0000, // header_addr
        0x10_0000, // load_addr
        0,         // load_end_addr: the whole file
        0,         // bss_end_addr
        0x10_0020, // entry_addr
    ] {
        kernel.extend(word.to_le_bytes());
    }
    kernel.resize(0x20, 0x90);
    kernel.extend(b"\xfa\xf4RESULT workload=");
    std::fs::write(&img, kernel).unwrap();
    let out = vmscope()
        .arg("compare")
        .arg(&img)
        .args([
            "--engines",
            "interp",
            "--workloads",
            "cpuid",
            "--iterations",
            "1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("did not finish cleanly (guest halted with interrupts disabled"),
        "{err}"
    );
    assert!(!err.contains("(Shutdown)"), "no Rust debug form: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

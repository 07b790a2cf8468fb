//! The `vmscope` command line as a user meets it: the demo, exit statuses, errors, statistics.
//! Teaches: a tool's interface is part of its behaviour and is tested like the rest.

mod support;

use support::vmscope;

use std::process::Command;

#[test]
fn run_without_arguments_runs_the_demo_and_shuts_down_cleanly() {
    let out = vmscope(&["run", "--engine", "interp"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let demo = guests::by_name("demo").unwrap();
    assert_eq!(stdout, demo.expected_serial);
    assert!(stderr.contains("clean shutdown"), "{stderr}");
}

#[test]
fn exit_status_is_the_debug_exit_status() {
    let out = vmscope(&["run", "hello-real", "--engine", "interp"]);
    assert_eq!(out.status.code(), Some(0x21));
    let out = vmscope(&["run", "triple-fault", "--engine", "interp"]);
    // Even: it cannot be mistaken for a guest's debug-exit status, which is always odd.
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("triple fault"));
}

#[test]
fn stats_report_instructions_exits_and_devices() {
    let out = vmscope(&["run", "hello64", "--engine", "interp", "--stats"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("instructions (counted): "), "{stderr}");
    assert!(stderr.contains("uart"), "{stderr}");
    assert!(
        stderr.contains("hardware interrupts delivered: "),
        "{stderr}"
    );
}

#[test]
fn bad_images_are_host_errors_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("vmscope-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let elf = dir.join("truncated.elf");
    let demo = guests::by_name("hello32").unwrap().image;
    std::fs::write(&elf, &demo[..200.min(demo.len())]).unwrap();
    let out = vmscope(&["run", elf.to_str().unwrap(), "--engine", "interp"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("truncated.elf"), "{stderr}");
    let out = vmscope(&["run", "/nonexistent/kernel.elf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kernel.elf"));
    let out = vmscope(&["run", "hello64", "--memory", "64K"]);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn step_prints_instructions_and_changed_registers() {
    let out = vmscope(&["step", "hello-real", "-n", "5"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    // The first instruction is the far jump at the reset vector F000:FFF0.
    assert!(lines[0].starts_with("f000:0000fff0"), "{}", lines[0]);
    assert!(lines[0].contains("jmp"), "{}", lines[0]);
    assert!(lines[0].contains("cs=0xf000"), "{}", lines[0]);
}

#[test]
fn guests_export_writes_bootable_images() {
    let dir = std::env::temp_dir().join(format!("vmscope-export-{}", std::process::id()));
    let out = vmscope(&["guests", "--export", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let hello = std::fs::read(dir.join("hello64.elf")).unwrap();
    assert_eq!(hello, guests::by_name("hello64").unwrap().image);
    assert!(String::from_utf8_lossy(&out.stdout).contains("demo"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_that_are_not_images_get_an_error_saying_what_they_look_like() {
    let dir = std::env::temp_dir().join(format!("vmscope-notimg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let mut bz = vec![0u8; 4096];
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    let cases = [
        (write("empty.img", b""), "is empty"),
        ("/dev/null".to_string(), "is empty"),
        (write("zeros.img", &vec![0u8; 1 << 20]), "bytes of zeros"),
        (write("vmlinuz", &bz), "Linux bzImage"),
        (write("short.rom", &[0x90; 1000]), "not a ROM size"),
        (
            write("mb.bin", &0x1BAD_B002u32.to_le_bytes()),
            "header is cut off",
        ),
        (write("big.img", &vec![0x90u8; 700 << 10]), "--format flat"),
        ("/dev/zero".to_string(), "larger than 512 MiB"),
    ];
    for (path, expected) in &cases {
        let out = vmscope(&["run", path, "--engine", "interp"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {stderr}");
        assert!(stderr.contains(expected), "{path}: {stderr}");
        assert!(
            stderr.contains(path.as_str()),
            "the error names the file: {stderr}"
        );
    }
    // Asked for explicitly, a flat binary loads whatever it is.
    let out = vmscope(&[
        "run",
        &cases[6].0,
        "--format",
        "flat",
        "--engine",
        "interp",
        "--max-instructions",
        "50",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn options_that_once_misled_are_refused_with_a_reason() {
    let err = |args: &[&str]| {
        let out = vmscope(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(err(&["run", "hello64", "--switch-to", "interp"]).contains("--switch-after"));
    let twice = err(&[
        "compare",
        "--engines",
        "interp",
        "--workloads",
        "cpuid,cpuid",
    ]);
    assert!(twice.contains("listed twice"), "{twice}");
    let json = err(&[
        "compare",
        "--engines",
        "interp",
        "--workloads",
        "cpuid",
        "--json",
        "/nonexistent-dir/out.json",
    ]);
    assert!(json.contains("checked before running"), "{json}");
    let not_kernel = err(&["compare", "hello64", "--engines", "interp"]);
    assert!(
        not_kernel.contains("does not look like a kernel"),
        "{not_kernel}"
    );
    let walk = err(&[
        "mmu",
        "walk",
        "demo",
        "--va",
        "0x8000000000000000",
        "--after",
        "5000",
    ]);
    assert!(walk.contains("not canonical"), "{walk}");
    let wide = err(&[
        "mmu",
        "walk",
        "hello32",
        "--va",
        "0x100000000",
        "--after",
        "500",
    ]);
    assert!(wide.contains("wider than 32 bits"), "{wide}");
    let sst = err(&["conformance", "sst", "--only", "ZZ"]);
    assert!(sst.contains("ZZ"), "{sst}");
}

#[test]
fn a_triple_fault_from_pvm_refusing_32_bit_paging_says_so() {
    if accel_kvm::detect_flavour() != accel_kvm::KvmFlavour::Pvm {
        eprintln!("skipped: this host's KVM is not PVM (32-bit paging works there)");
        return;
    }
    let out = vmscope(&["run", "hello32", "--engine", "kvm"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("cannot run 32-bit or PAE paging"),
        "{stderr}"
    );
    assert!(stderr.contains("--engine interp"), "{stderr}");
}

#[test]
fn a_command_line_may_start_with_a_dash() {
    // hello32 prints its Multiboot command line.
    let out = vmscope(&[
        "run",
        "hello32",
        "--engine",
        "interp",
        "--cmdline",
        "-foo bar",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0x21),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("command line: -foo bar"));
}

/// A scratch directory for one test's files.
fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vmscope-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_command_that_boots_an_image_reads_at_most_the_cap() {
    let dir = scratch("cap");
    // One byte over the cap, sparse: `bt show`, `mmu` and `compare` used to read whatever they
    // were given (/dev/zero until the host ran out of memory).
    let big = dir.join("huge.img");
    std::fs::File::create(&big)
        .unwrap()
        .set_len((512 << 20) + 1)
        .unwrap();
    let big = big.to_str().unwrap();
    for args in [
        &["bt", "show", big][..],
        &["mmu", "walk", big, "--va", "0"],
        &["mmu", "shadow", big],
        &["compare", big, "--engines", "interp"],
        &["step", big],
    ] {
        let out = vmscope(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(big) && stderr.contains("larger than 512 MiB"),
            "{args:?}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn format_flat_is_one_option_of_every_command_that_boots_an_image() {
    let dir = scratch("format");
    // 700 KiB of NOPs: too large to be guessed a boot-sector program, fine when asked for.
    let img = dir.join("nops.img");
    std::fs::write(&img, vec![0x90u8; 700 << 10]).unwrap();
    let img = img.to_str().unwrap();
    for args in [
        &["run", img, "--engine", "interp", "--max-instructions", "10"][..],
        &["step", img, "-n", "2"],
        &["bt", "show", img, "--after", "10"],
        &["mmu", "walk", img, "--va", "0x7c00", "--after", "10"],
        &["mmu", "shadow", img, "--after", "10"],
    ] {
        let out = vmscope(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(img) && stderr.contains("--format flat"),
            "{args:?}: {stderr}"
        );
        let out = vmscope(&[args, &["--format", "flat"]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = if args[0] == "run" { 4 } else { 0 };
        assert_eq!(out.status.code(), Some(want), "{args:?}: {stderr}");
    }
    // The rule is in the help of each of them.
    for cmd in [&["run"][..], &["step"], &["bt", "show"], &["mmu", "walk"]] {
        let out = vmscope(&[cmd, &["--help"]].concat());
        let help = String::from_utf8_lossy(&out.stdout);
        for part in [
            "Multiboot",
            "*.rom",
            "0000:7C00",
            "0x98400",
            "bzImage",
            "512 MiB",
        ] {
            assert!(help.contains(part), "{cmd:?} --help lacks {part:?}: {help}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_guest_that_stops_early_is_told_in_words_by_every_command() {
    let words = "guest wrote 0x10 to isa-debug-exit";
    for args in [
        &["step", "hello64", "-n", "100000"][..],
        &["bt", "show", "hello64", "--after", "100000000"],
        &[
            "mmu",
            "walk",
            "hello64",
            "--va",
            "0x1000",
            "--after",
            "100000000",
        ],
    ] {
        let out = vmscope(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(text.contains(words), "{args:?}: {text}");
        assert!(!text.contains("DebugExit {"), "{args:?}: {text}");
    }
}

#[test]
fn a_non_canonical_address_is_refused_before_the_guest_runs() {
    // Non-canonical is wrong in every mode, so `mmu walk` says so before it runs the guest: here
    // `jmp $` for 10^12 instructions, which used to run (for hours) before the answer came.
    let dir = scratch("canonical");
    let spin = dir.join("spin.img");
    std::fs::write(&spin, [0xEB, 0xFE]).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(["mmu", "walk", spin.to_str().unwrap()])
        .args(["--va", "0x8000000000000000", "--after", "1000000000000"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("mmu walk ran the guest before checking --va");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("0x8000000000000000 is not canonical") && stderr.contains("#GP"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stepping_into_pvms_32_bit_paging_limit_says_so_too() {
    if accel_kvm::detect_flavour() != accel_kvm::KvmFlavour::Pvm {
        eprintln!("skipped: this host's KVM is not PVM (32-bit paging works there)");
        return;
    }
    let out = vmscope(&["step", "hello32", "--engine", "kvm", "-n", "100000"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stdout.contains("triple fault"), "{stdout}");
    assert!(
        stderr.contains("cannot run 32-bit or PAE paging") && stderr.contains("--engine interp"),
        "{stderr}"
    );
    let out = vmscope(&["step", "hello32", "--engine", "kvm", "--skip", "100000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--engine interp"), "{stderr}");
}

//! Multiboot boot modules (`vmscope run --module "FILE ARGS"`): the `hardened` C kernel lists
//! each module's string, length and FNV-1a hash and checks it lies page-aligned after the
//! kernel — on interp, bt and kvm, and on QEMU with `-initrd`, which must print the same.

mod support;

use std::process::Command;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Two module files (a short text, 10,000 pseudo-random bytes) and the lines the kernel must
/// print for `--module "TEXT one two" --module BIN`.
fn modules() -> (std::path::PathBuf, std::path::PathBuf, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("vmscope-modules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("m1.txt");
    let bin = dir.join("m2.bin");
    std::fs::write(&text, b"hello module\n").unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let data: Vec<u8> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&bin, &data).unwrap();
    let expect = vec![
        format!(
            "hardened: module 0 \"{} one two\": 13 bytes, fnv1a {:016x}, page-aligned after the kernel",
            text.display(),
            fnv1a(b"hello module\n")
        ),
        format!(
            "hardened: module 1 \"{}\": 10000 bytes, fnv1a {:016x}, page-aligned after the kernel",
            bin.display(),
            fnv1a(&data)
        ),
    ];
    (text, bin, expect)
}

fn module_lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| l.starts_with("hardened: module"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_kernel_finds_every_module_after_itself_on_every_engine() {
    let (text, bin, expect) = modules();
    for engine in support::engines_with_kvm() {
        let engine = format!("{engine:?}").to_lowercase();
        let out = support::vmscope(&[
            "run",
            "hardened",
            "--engine",
            &engine,
            "--module",
            &format!("{} one two", text.display()),
            "--module",
            &bin.display().to_string(),
        ]);
        assert_eq!(out.status.code(), Some(33), "{engine}: {out:?}");
        assert_eq!(module_lines(&out.stdout), expect, "{engine}");
    }
}

#[test]
fn qemu_places_the_same_modules_the_same_way() {
    let Some(qemu) = support::qemu_path() else {
        eprintln!("skipped: qemu-system-x86_64 is not installed (scripts/setup.sh installs it)");
        return;
    };
    let (text, bin, expect) = modules();
    let kernel = text.with_file_name("hardened.elf");
    std::fs::write(&kernel, guests::by_name("hardened").unwrap().image).unwrap();
    let out = Command::new(qemu)
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(format!("{} one two,{}", text.display(), bin.display()))
        .args(["-serial", "stdio", "-display", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .output()
        .unwrap();
    assert_eq!(module_lines(&out.stdout), expect, "QEMU: {out:?}");
}

#[test]
fn module_errors_name_the_file_or_say_what_is_missing() {
    let out = support::vmscope(&["run", "hardened", "--module", "/nonexistent/initrd one"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/initrd"), "{err}");
    // A module bigger than the RAM after the kernel.
    let (_, bin, _) = modules();
    let big = bin.with_file_name("big.bin");
    std::fs::write(&big, vec![0u8; 3 << 20]).unwrap();
    let out = support::vmscope(&[
        "run",
        "hardened",
        "--memory",
        "4M",
        "--module",
        &big.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no free usable RAM") && err.contains("big.bin"),
        "{err}"
    );
    // Only a Multiboot kernel takes modules.
    let out = support::vmscope(&[
        "run",
        "--format",
        "flat",
        "hardened",
        "--module",
        &big.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a Multiboot kernel"));
}

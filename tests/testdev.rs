//! QEMU's test devices on vmscope: the `testdev` guest probes pc-testdev and pci-testdev from
//! the inside, on every engine, and QEMU (`-device pc-testdev -device pci-testdev`) prints the
//! same lines — the second opinion this file exists for.
//! Teaches: a device a test harness relies on must behave like the harness's own, corner
//! cases included (unaligned port reads, writes an ioeventfd takes away from the device).

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// What the guest printed on QEMU 10 here, and what vmscope must print too.
const WITH_DEVICES: &str = "\
pc-testdev: scratch 1122, at 0xe1 0000, byte window beef3344, iomem f0, irq 5 requested
pci-testdev: found
mmio-no-eventfd 3
mmio-wildcard-eventfd 0
mmio-datamatch-eventfd 0
portio-no-eventfd 3
portio-wildcard-eventfd 0
portio-datamatch-eventfd 0
";

fn engine_name(e: vmscope::EngineChoice) -> &'static str {
    match e {
        vmscope::EngineChoice::Interp => "interp",
        vmscope::EngineChoice::Bt => "bt",
        vmscope::EngineChoice::Kvm => "kvm",
        other => panic!("no CLI name for {other:?} here"),
    }
}

#[test]
fn the_testdev_guest_sees_both_devices_on_every_engine() {
    for engine in engines_with_kvm() {
        let e = engine_name(engine);
        let out = vmscope(&[
            "run",
            "testdev",
            "--engine",
            e,
            "--device",
            "pc-testdev",
            "--device",
            "pci-testdev",
        ]);
        let serial = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            serial,
            WITH_DEVICES,
            "{e}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(33), "{e}");
    }
}

#[test]
fn without_the_devices_the_guest_says_so_and_debugcon_keeps_its_port() {
    let out = vmscope(&["run", "testdev", "--engine", "interp"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "pc-testdev: absent\npci-testdev: absent\n"
    );
    let out = vmscope(&[
        "run",
        "testdev",
        "--device",
        "pc-testdev",
        "--device",
        "pc-testdev",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("given twice"));
    let out = vmscope(&["run", "testdev", "--device", "e1000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pci-testdev"),
        "the choices are named"
    );
}

#[test]
fn qemu_prints_the_same_with_its_own_test_devices() {
    let Some(qemu) = qemu_path() else {
        eprintln!("skipped: qemu-system-x86_64 is not installed (scripts/setup.sh installs it)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("vmscope-testdev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kernel = dir.join("testdev.elf");
    std::fs::write(&kernel, guests::by_name("testdev").unwrap().image).unwrap();
    let mut child = Command::new(qemu)
        .arg("-kernel")
        .arg(&kernel)
        .args([
            "-accel",
            "tcg",
            "-m",
            "64",
            "-display",
            "none",
            "-no-reboot",
        ])
        .args(["-serial", "stdio", "-monitor", "none"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .args(["-device", "pc-testdev", "-device", "pci-testdev"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting qemu");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "QEMU did not finish the testdev guest"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(String::from_utf8_lossy(&out.stdout), WITH_DEVICES);
    assert_eq!(out.status.code(), Some(33));
}

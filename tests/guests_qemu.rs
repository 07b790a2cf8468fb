//! The Multiboot guests on QEMU (`-kernel`) print exactly what they print on vmscope.
//! Teaches: a second, independent machine is the best check that our machine behaves like a PC.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

#[test]
fn multiboot_guests_match_on_qemu_tcg() {
    let Some(qemu) = qemu_path() else {
        eprintln!("skipped: qemu-system-x86_64 is not installed (scripts/setup.sh installs it)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("vmscope-qemu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for g in guests::all() {
        let path = dir.join(g.name);
        std::fs::write(&path, g.image).unwrap();
        let mut cmd = Command::new(qemu);
        if g.name == "paging-matrix" {
            // SMEP, SMAP and 1 GiB pages come only with QEMU's "max" CPU model.
            cmd.args(["-cpu", "max"]);
        }
        match g.kind {
            guests::GuestKind::Multiboot => {
                cmd.arg("-kernel").arg(&path).args(["-append", CMDLINE]);
            }
            guests::GuestKind::FirmwareRom => {
                cmd.arg("-bios").arg(&path);
            }
        }
        cmd.args([
            "-accel",
            "tcg",
            "-m",
            "64",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
        ])
        .args([
            "-monitor",
            "none",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting qemu");
        // The demo guest halts instead of exiting; give it a moment, then stop QEMU.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = child.wait_with_output().unwrap();
        let serial = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
        match (g.name, status) {
            ("demo", None) => {}
            // QEMU's reserved-bit error code differs (see PAGING_MATRIX_QEMU_DIFFERENCE).
            ("paging-matrix", Some(s)) => assert_eq!(s.code(), Some(0x2B), "paging-matrix status"),
            ("triple-fault", Some(s)) => assert_eq!(s.code(), Some(0), "-no-reboot exits 0"),
            (_, Some(s)) => assert_eq!(s.code(), Some(expected_status(g)), "{} status", g.name),
            (_, None) => panic!("{} did not finish on QEMU; output: {serial}", g.name),
        }
        {
            // QEMU's Multiboot loader puts the kernel path before the -append text, and its
            // firmware reserves the top 128 KiB of RAM, which mem_upper then leaves out.
            let mut expected = expected_serial(g)
                .replace(
                    "command line: ",
                    &format!("command line: {} ", path.display()),
                )
                .replace("mem_upper: 64512 KiB", "mem_upper: 64384 KiB");
            if g.name == "platform" {
                // QEMU 7.2's TCG CPU offers neither TSC-deadline nor x2APIC (documented there).
                for (ours, qemus) in guests::PLATFORM_QEMU_DIFFERENCES {
                    expected = expected.replace(ours, qemus);
                }
            }
            let expected = if g.name == "paging-matrix" {
                let (ours, qemus) = guests::PAGING_MATRIX_QEMU_DIFFERENCE;
                expected.replace(ours, qemus)
            } else {
                expected
            };
            assert_eq!(serial, expected, "{} on QEMU", g.name);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

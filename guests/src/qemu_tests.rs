//! Boots every guest on QEMU and compares its serial output with `expected_serial`.
//! Teaches: a second, independent machine is the best check that a guest (and its expected
//! text) is right before our own engines are judged by it.
//!
//! Ignored by default (it needs `qemu-system-x86_64`): `cargo test -p guests -- --ignored`.
//! Where QEMU legitimately differs from vmscope the expectation is adjusted, and says why.

use super::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What QEMU prints for a guest, and the exit status it should report.
fn qemu_expectation(guest: &Guest, kernel_path: &str) -> (String, Option<i32>) {
    let mut text = guest.expected_serial.to_string();
    // QEMU's loader puts the kernel's path in front of the -append text, and its firmware
    // reserves the top 128 KiB of RAM, which Multiboot's mem_upper then leaves out.
    text = text.replace("command line: ", &format!("command line: {kernel_path} "));
    text = text.replace("mem_upper: 64512 KiB", "mem_upper: 64384 KiB");
    let mut status = match guest.ending {
        Ending::DebugExit(v) => Some(qemu_exit_status(v) as i32),
        Ending::TripleFault => Some(0), // -no-reboot turns the reset into an exit
        Ending::HaltWithInterruptsDisabled => None, // runs until we stop it
    };
    if guest.name == "ud" {
        // QEMU's CPU has an x87 unit, so FSIN runs: the guest reports that instead.
        text = "fsin executed without #UD\n".to_string();
        status = Some(qemu_exit_status(exit::PROBE_RAN) as i32);
    }
    (text, status)
}

/// Runs QEMU in `dir` until it exits or `limit` passes; returns (serial output, exit status).
fn run_qemu(guest: &Guest, dir: &str, kernel_path: &str, limit: Duration) -> (String, Option<i32>) {
    let mut command = Command::new("qemu-system-x86_64");
    command.current_dir(dir);
    match guest.kind {
        GuestKind::FirmwareRom => command.args(["-bios", kernel_path]),
        GuestKind::Multiboot => command.args(["-kernel", kernel_path, "-append", DEFAULT_CMDLINE]),
    };
    command
        .args([
            "-serial",
            "stdio",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .args(["-m", &DEFAULT_MEMORY_MIB.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("qemu-system-x86_64 is installed");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (reader.join().unwrap(), status)
}

#[test]
#[ignore = "needs qemu-system-x86_64"]
fn every_guest_prints_its_expected_text_on_qemu() {
    let out_dir = env!("OUT_DIR");
    for guest in all() {
        // Run from OUT_DIR with a bare file name, so the command line QEMU builds is short.
        let (expected, expected_status) = qemu_expectation(guest, guest.file_name);
        let limit = if expected_status.is_some() { 60 } else { 5 };
        let limit = Duration::from_secs(limit);
        let (text, status) = run_qemu(guest, out_dir, guest.file_name, limit);
        assert_eq!(text, expected, "{}: serial output", guest.name);
        assert_eq!(status, expected_status, "{}: exit status", guest.name);
    }
}

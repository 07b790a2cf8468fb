//! virtio-console end to end: the device on the board and in `--devices`, the teaching kernel
//! printing through it (`console=virtio`) on interp, bt and kvm with the UART run's text, across
//! an engine switch, the fallback without a device, and `compare --io`'s console rows.
//! Teaches: a paravirtual device is checked against the emulated one by what the user reads.

mod support;

use std::process::Command;

use support::*;
use vmscope::compare::engines::EngineId;
use vmscope::compare::{io, suite};
use vmscope::disk::VirtioTransport;
use vmscope::{EngineChoice, RunOptions, SwitchPlan, SwitchUnit};

fn vmscope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(args)
        .output()
        .expect("running vmscope")
}

const WORK: &str = "workloads=console-write:40,cpuid:10";
const OK: i32 = 33; // isa-debug-exit 0x10

/// A run's text without what varies with the engine and the console: guest_tsc values, the
/// timer count, and the line in which the kernel announces that it moves to the
/// virtio-console.
fn text(serial: &str) -> String {
    serial
        .lines()
        .filter(|l| !l.starts_with("console: virtio-console, "))
        .map(|l| {
            if l.starts_with("kernel: done after ") {
                return "kernel: done".to_string();
            }
            l.split(' ')
                .map(|w| {
                    if w.starts_with("guest_tsc=") {
                        "guest_tsc=…"
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn kernel(engine: EngineChoice, console: Option<VirtioTransport>, cmdline: &str) -> RunOptions {
    RunOptions {
        engine,
        cmdline: cmdline.to_string(),
        virtio_console: console,
        ..RunOptions::default()
    }
}

/// (status, serial, UART accesses, virtio-console accesses) of a kernel run.
fn run(opts: RunOptions) -> (i32, String, u64, u64) {
    let (outcome, serial) = run_builtin("kernel", opts);
    let count = |d: &str| {
        outcome
            .machine
            .bus
            .stats
            .by_device
            .get(d)
            .copied()
            .unwrap_or(0)
    };
    (
        outcome.status,
        serial,
        count("uart"),
        count("virtio-console"),
    )
}

#[test]
fn devices_lists_the_console_after_the_disks() {
    let out = vmscope(&[
        "run",
        "hello64",
        "--engine",
        "interp",
        "--devices",
        "--virtio-console",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        guests::by_name("hello64").unwrap().expected_serial,
        "a guest that never looks for it is unaffected: {stderr}"
    );
    for want in [
        "00:02.0 1af4:1043 class 078000 virtio-console INTA gsi 18 bar0 mem 0xe0000000+0x4000",
        "consoles:",
        "virtio-console: virtio-pci 00:02.0 bar0 0xe0000000 gsi 18",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in:\n{stderr}");
    }
    // After the disks, by the same placement rule: the next PCI slot, the next mmio window.
    let dir = std::env::temp_dir().join(format!("vmscope-vcon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.img"), dir.join("b.img"));
    std::fs::write(&a, vec![0u8; 4096]).unwrap();
    std::fs::write(&b, vec![0u8; 4096]).unwrap();
    let (pci, mmio) = (
        a.display().to_string(),
        format!("{},if=virtio-mmio", b.display()),
    );
    let out = vmscope(&[
        "run",
        "hello64",
        "--engine",
        "interp",
        "--devices",
        "--disk",
        &pci,
        "--disk",
        &mmio,
        "--virtio-console=virtio-mmio",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(OK), "{stderr}");
    for want in [
        "mmio 0xd0001000-0xd00011ff  virtio-console",
        "virtio-console: virtio-mmio 0xd0001000 gsi 21",
        "virtio-pci 00:02.0 bar0 0xe0000000 gsi 18",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in:\n{stderr}");
    }
    let out = vmscope(&[
        "run",
        "hello64",
        "--disk",
        &pci,
        "--virtio-console=virtio-pci",
        "--devices",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("virtio-console: virtio-pci 00:03.0 bar0 0xe0004000 gsi 19"),
        "{stderr}"
    );
    let bad = vmscope(&["run", "hello64", "--virtio-console=serial"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("virtio-mmio") && err.contains("virtio-pci"),
        "{err}"
    );
    let help = String::from_utf8_lossy(&vmscope(&["run", "--help"]).stdout).into_owned();
    assert!(help.contains("--virtio-console[=<TRANSPORT>]"), "{help}");
}

#[test]
fn the_kernel_prints_through_the_virtio_console_on_every_engine() {
    for engine in engines_with_kvm() {
        let (status, uart_text, uart_accesses, _) = run(kernel(engine, None, WORK));
        assert_eq!(status, OK, "{engine:?}:\n{uart_text}");
        assert_eq!(uart_text.matches("line 000000").count(), 40);
        for transport in [VirtioTransport::Pci, VirtioTransport::Mmio] {
            let what = format!("{engine:?} {transport:?}");
            let cmdline = format!("{WORK} console=virtio");
            let (status, serial, uart, virtio) = run(kernel(engine, Some(transport), &cmdline));
            assert_eq!(status, OK, "{what}:\n{serial}");
            let announced = format!("console: virtio-console, {} at ", transport.name());
            assert!(serial.contains(&announced), "{what}:\n{serial}");
            assert_eq!(text(&serial), text(&uart_text), "{what}: the same text");
            // One doorbell per line; the UART carried only the banner and the announcement.
            assert!(virtio >= 40, "{what}: {virtio} virtio-console accesses");
            assert!(
                uart * 4 < uart_accesses,
                "{what}: UART {uart} accesses against {uart_accesses} without the console"
            );
        }
    }
}

#[test]
fn the_console_keeps_printing_across_an_engine_switch() {
    let cmdline = "workloads=console-write:300 console=virtio";
    let (_, plain, _, _) = run(kernel(
        EngineChoice::Interp,
        Some(VirtioTransport::Pci),
        cmdline,
    ));
    let targets: Vec<EngineChoice> = engines_with_kvm()
        .into_iter()
        .filter(|&e| e != EngineChoice::Interp)
        .collect();
    for to in targets {
        let mut opts = kernel(EngineChoice::Interp, Some(VirtioTransport::Pci), cmdline);
        // In the middle of console-write (a line is a few hundred instructions).
        opts.switch = Some(SwitchPlan {
            after: 40_000,
            unit: SwitchUnit::Instructions,
            to,
        });
        let (outcome, serial) = run_builtin("kernel", opts);
        assert_eq!(outcome.engines.len(), 2, "{to:?}: the switch happened");
        assert_eq!(outcome.status, OK, "{to:?}:\n{serial}");
        assert_eq!(text(&serial), text(&plain), "{to:?}");
        suite::check_console_lines(&serial, 300).unwrap();
    }
}

#[test]
fn console_virtio_without_a_device_says_so_and_stays_on_the_uart() {
    let (_, uart_text, _, _) = run(kernel(EngineChoice::Interp, None, WORK));
    let cmdline = format!("{WORK} console=virtio");
    let (status, serial, _, _) = run(kernel(EngineChoice::Interp, None, &cmdline));
    assert_eq!(status, OK, "{serial}");
    let said: Vec<&str> = serial
        .lines()
        .filter(|l| l.starts_with("console: "))
        .collect();
    assert_eq!(said.len(), 1, "{serial}");
    assert!(
        said[0].contains("no virtio-console") && said[0].contains("staying on the UART"),
        "{}",
        said[0]
    );
    let without: String = serial
        .lines()
        .filter(|l| !l.starts_with("console: "))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(text(&without), text(&uart_text));
    let (status, serial, _, _) = run(kernel(
        EngineChoice::Interp,
        None,
        "workloads=cpuid:1 console=hvc0",
    ));
    assert_eq!(
        status,
        guests::qemu_exit_status(guests::exit::KERNEL_BAD_CMDLINE) as i32
    );
    assert!(
        serial.contains("console= must be uart or virtio"),
        "{serial}"
    );
}

#[test]
fn compare_io_has_console_rows() {
    let cells = io::run_console(&[EngineId::Interp], Some(16), &mut |_| {}).unwrap();
    let cell = |c: &str| cells.iter().find(|x| x.console == c).unwrap();
    assert_eq!(cells.len(), 2);
    let (uart, pv) = (cell("uart"), cell("virtio-console"));
    for c in [uart, pv] {
        assert_eq!(c.lines, 16);
        assert_eq!(
            c.checksum,
            format!("{:#018x}", suite::expected_console_checksum(16))
        );
    }
    // The UART: an IN (line status) and an OUT per byte. The virtio-console: one doorbell
    // per 64-byte line.
    assert!(uart.exits_per_kb >= 2048.0, "{}", uart.exits_per_kb);
    assert!(pv.exits_per_kb <= 17.0, "{}", pv.exits_per_kb);
    let table = io::console_table(&cells);
    assert!(table.contains("interp   virtio-console"), "{table}");
    assert!(table.contains("fewer exits per KB"), "{table}");
}

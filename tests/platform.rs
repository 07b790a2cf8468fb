//! The `platform` guest — fw_cfg, ACPI, local APIC, PM timer, IOAPIC — on every engine and QEMU.
//! Teaches: one kernel written for QEMU's PC sees the same machine on our interpreter, on KVM
//! (with our device models behind it) and on QEMU itself; and it notices when the machine lies.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use emulator::machine::{loader, RunLimit};
use emulator::{Engine, Exit, Machine};
use support::*;
use vmscope::{EngineChoice, RunOptions, SwitchPlan, SwitchUnit};

fn platform() -> &'static guests::Guest {
    guests::by_name("platform").expect("the platform guest is built in")
}

#[test]
fn every_check_passes_on_the_interpreter_and_reaches_the_devices() {
    let g = platform();
    let (outcome, serial) = run_builtin("platform", opts(EngineChoice::Interp));
    assert_eq!(serial, expected_serial(g));
    assert_eq!(outcome.status, expected_status(g));
    let by_device = &outcome.machine.bus.stats.by_device;
    for device in ["lapic", "ioapic", "fw_cfg", "acpi-pm", "pit"] {
        assert!(
            by_device.get(device).copied().unwrap_or(0) > 0,
            "{device} was never accessed: {by_device:?}"
        );
    }
    // All through the local APIC: self-IPIs 0x40 and 0x43 (x2APIC), the TPR-held 0x45 and the
    // CR8-held 0x46, the one-shot and 3 periodic timer interrupts, 3 PIT ticks + 1 calibration
    // interrupt via the IOAPIC, the UART's level interrupt and the TSC deadline. (Exact: the
    // interpreter's run is deterministic.)
    assert_eq!(outcome.machine.stats.interrupts, 14);
    // The x2APIC check leaves the APIC re-enabled in xAPIC mode, with the PIC's LINT0 masked.
    let lapic = &outcome.machine.bus.lapic;
    assert!(lapic.hardware_enabled() && !lapic.x2apic_mode());
    assert!(!lapic.accepts_pic());
}

#[test]
fn qemu_prints_the_same_except_the_documented_cpu_features() {
    let Some(qemu) = qemu_path() else {
        eprintln!("skipped: qemu-system-x86_64 is not installed (scripts/setup.sh installs it)");
        return;
    };
    let g = platform();
    let path = std::env::temp_dir().join(format!("vmscope-platform-{}.elf", std::process::id()));
    std::fs::write(&path, g.image).unwrap();
    let mut child = Command::new(qemu)
        .arg("-kernel")
        .arg(&path)
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
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting qemu");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&path);
    let serial = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let mut expected = expected_serial(g);
    for (ours, qemus) in guests::PLATFORM_QEMU_DIFFERENCES {
        assert!(expected.contains(ours));
        expected = expected.replace(ours, qemus);
    }
    assert_eq!(serial, expected, "platform on QEMU");
    assert_eq!(status.and_then(|s| s.code()), Some(expected_status(g)));
}

#[test]
fn kvm_runs_it_with_our_apic_behind_it() {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: KVM is not usable here: {why}");
        return;
    }
    let g = platform();
    let (outcome, serial) = run_builtin("platform", opts(EngineChoice::Kvm));
    assert_eq!(serial, expected_serial(g), "platform on KVM");
    assert_eq!(outcome.status, expected_status(g));
    // x2APIC and TSC-deadline went through MSR exits to the bus's local APIC.
    let exits = &outcome.machine.stats.exits;
    assert!(exits.get("msr").copied().unwrap_or(0) >= 8, "{exits:?}");
    assert!(
        outcome
            .machine
            .bus
            .stats
            .by_device
            .get("lapic")
            .copied()
            .unwrap_or(0)
            > 20
    );
}

#[test]
fn switching_engines_mid_run_keeps_the_apic_state() {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: KVM is not usable here: {why}");
        return;
    }
    let g = platform();
    // ~2600 port accesses print everything up to the LAPIC checks: switch in the middle of them.
    for (from, to, after) in [
        (EngineChoice::Interp, EngineChoice::Kvm, 2_000),
        (EngineChoice::Kvm, EngineChoice::Interp, 2_300),
    ] {
        let opts = RunOptions {
            engine: from,
            switch: Some(SwitchPlan {
                after,
                unit: SwitchUnit::Io,
                to,
            }),
            ..opts(from)
        };
        let (outcome, serial) = run_builtin("platform", opts);
        assert_eq!(serial, expected_serial(g), "{from} -> {to} after {after}");
        assert_eq!(outcome.engines.len(), 2, "{:?}", outcome.engines);
        assert_eq!(outcome.status, expected_status(g));
    }
}

/// Runs the platform guest on the interpreter in a machine prepared by `prepare`.
fn run_in(prepare: impl FnOnce(&mut Machine)) -> (Exit, String) {
    let mut machine = Machine::new(64 << 20).unwrap();
    prepare(&mut machine);
    loader::load_image(&mut machine, "platform.elf", platform().image, "").unwrap();
    let mut interp = emulator::interp::Interpreter::new();
    let limit = RunLimit {
        instructions: Some(50_000_000),
        ..Default::default()
    };
    let exit = interp.run(&mut machine, limit).unwrap();
    let serial = String::from_utf8_lossy(&machine.bus.take_serial_output()).into_owned();
    (exit, serial)
}

#[test]
fn the_guest_rejects_a_madt_with_a_bad_checksum() {
    let (exit, serial) = run_in(|m| {
        let ram = m.ram.as_slice();
        let read = |a: u64, n: usize| ram.get(a as usize..a as usize + n).map(|s| s.to_vec());
        let info = devices::acpi::parse::parse(&read).unwrap();
        let (_, madt) = info
            .rsdt
            .iter()
            .find(|(s, _)| s == "APIC")
            .cloned()
            .unwrap();
        let byte = m.ram.read_le(madt + 40, 1).unwrap();
        m.ram.write_le(madt + 40, 1, byte ^ 0x80).unwrap();
    });
    assert!(
        serial.ends_with("FAIL: no valid MADT (APIC) in the RSDT\n"),
        "{serial}"
    );
    assert!(
        matches!(exit, Exit::DebugExit { value: 0x14, .. }),
        "{exit:?}"
    );
}

#[test]
fn the_guest_notices_a_pm_timer_that_does_not_count() {
    // Point the FADT's PM timer at the POST port (and fix the checksum): reads give a constant,
    // and the guest says so instead of waiting forever.
    let (exit, serial) = run_in(|m| {
        let ram = m.ram.as_slice();
        let read = |a: u64, n: usize| ram.get(a as usize..a as usize + n).map(|s| s.to_vec());
        let info = devices::acpi::parse::parse(&read).unwrap();
        let (_, fadt) = info
            .rsdt
            .iter()
            .find(|(s, _)| s == "FACP")
            .cloned()
            .unwrap();
        let len = m.ram.read_le(fadt + 4, 4).unwrap() as usize;
        let mut table = vec![0u8; len];
        m.ram.read(fadt, &mut table).unwrap();
        table[76..80].copy_from_slice(&0x80u32.to_le_bytes());
        table[9] = 0;
        table[9] = devices::acpi::loader::checksum(&table);
        m.ram.write(fadt, &table).unwrap();
    });
    assert!(
        serial.contains("acpi: fadt: PM timer at port 0x080, 24-bit\n"),
        "{serial}"
    );
    assert!(
        serial.ends_with("FAIL: the PM timer does not count\n"),
        "{serial}"
    );
    assert!(
        matches!(exit, Exit::DebugExit { value: 0x14, .. }),
        "{exit:?}"
    );
}

#[test]
fn an_apic_timer_armed_before_a_spin_loop_interrupts_it_on_the_interpreter() {
    // 32-bit code, no I/O while it waits: arm a 1 µs one-shot APIC timer, then spin on a flag
    // that only the timer's handler sets. The interpreter must notice the timer it armed.
    let mut code = Vec::new();
    let mov_mmio = |code: &mut Vec<u8>, addr: u32, value: u32| {
        code.extend_from_slice(&[0xC7, 0x05]); // mov dword [addr], value
        code.extend_from_slice(&addr.to_le_bytes());
        code.extend_from_slice(&value.to_le_bytes());
    };
    code.extend_from_slice(&[0xBC, 0x00, 0x80, 0x01, 0x00]); // mov esp, 0x18000
    code.extend_from_slice(&[0x0F, 0x01, 0x15, 0x20, 0x20, 0x01, 0x00]); // lgdt [0x12020]
    code.extend_from_slice(&[0x0F, 0x01, 0x1D, 0x00, 0x20, 0x01, 0x00]); // lidt [0x12000]
    mov_mmio(&mut code, 0xFEE0_00F0, 0x1FF); // SVR: enabled
    mov_mmio(&mut code, 0xFEE0_03E0, 0xB); // divide by 1
    mov_mmio(&mut code, 0xFEE0_0320, 0x30); // LVT timer: one-shot, vector 0x30
    mov_mmio(&mut code, 0xFEE0_0380, 1000); // 1000 ns
    code.push(0xFB); // sti
    code.extend_from_slice(&[0x80, 0x3D, 0x10, 0x20, 0x01, 0x00, 0x00]); // spin: cmp byte [flag], 0
    code.extend_from_slice(&[0x74, 0xF7]); // je spin
    code.extend_from_slice(&[0xB0, 0x10, 0xE6, 0xF4, 0xF4]); // mov al, 0x10; out 0xF4, al; hlt
    let mut handler = vec![0xC6, 0x05, 0x10, 0x20, 0x01, 0x00, 0x01]; // mov byte [flag], 1
    handler.extend_from_slice(&[0xC7, 0x05, 0xB0, 0x00, 0xE0, 0xFE, 0, 0, 0, 0]); // EOI
    handler.push(0xCF); // iret

    let mut m = Machine::new(1 << 20).unwrap();
    m.ram.write(0x1_0000, &code).unwrap();
    m.ram.write(0x1_0100, &handler).unwrap();
    // IDT gate 0x30 -> 0x10100, selector 0x10, 32-bit interrupt gate; IDTR and GDTR.
    m.ram
        .write(
            0x1_1000 + 0x30 * 8,
            &[0x00, 0x01, 0x10, 0x00, 0x00, 0x8E, 0x01, 0x00],
        )
        .unwrap();
    m.ram
        .write(0x1_2000, &[0x87, 0x01, 0x00, 0x10, 0x01, 0x00])
        .unwrap();
    m.ram
        .write(0x1_2020, &[0x1F, 0x00, 0x00, 0x21, 0x01, 0x00])
        .unwrap();
    m.ram
        .write(0x1_2110, &0x00CF_9A00_0000_FFFFu64.to_le_bytes())
        .unwrap();
    m.ram
        .write(0x1_2118, &0x00CF_9200_0000_FFFFu64.to_le_bytes())
        .unwrap();
    m.cpu = emulator::cpu::state::CpuState::multiboot_entry(0x1_0000, 0);
    let mut interp = emulator::interp::Interpreter::new();
    let limit = RunLimit {
        instructions: Some(1_000_000),
        ..Default::default()
    };
    let exit = interp.run(&mut m, limit).unwrap();
    assert!(
        matches!(exit, Exit::DebugExit { value: 0x10, .. }),
        "{exit:?}"
    );
    assert_eq!(m.stats.interrupts, 1);
    assert!(
        m.stats.instructions < 5_000,
        "{} instructions",
        m.stats.instructions
    );
}

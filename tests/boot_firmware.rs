//! `--boot firmware`: Multiboot kernels started at the reset vector by vmscope's boot ROM.
//! Teaches: a firmware boot is only a longer road to the same place — the kernel prints exactly
//! what it prints after a direct boot, on the interpreter and on KVM.

mod support;

use support::vmscope;

use std::process::Output;

/// Host time shows through under KVM: the teaching kernel's `guest_tsc=` values and its count
/// of timer interrupts differ from run to run (direct or not), so those numbers are masked.
fn mask_host_time(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let words: Vec<String> = line
            .split(' ')
            .map(|w| match w.split_once('=') {
                Some(("guest_tsc", _)) => "guest_tsc=T".to_string(),
                _ => w.to_string(),
            })
            .collect();
        let line = words.join(" ");
        match line.strip_prefix("kernel: done after ") {
            Some(_) => out.push_str("kernel: done after N timer interrupts"),
            None => out.push_str(&line),
        }
        out.push('\n');
    }
    out
}

/// Runs `guest` with both boot methods on `engine` and checks they agree; returns the output.
fn same_output_both_ways(guest: &str, engine: &str, cmdline: &str) -> String {
    let run = |boot: &str| {
        vmscope(&[
            "run",
            guest,
            "--engine",
            engine,
            "--boot",
            boot,
            "--cmdline",
            cmdline,
        ])
    };
    let direct = run("direct");
    let firmware = run("firmware");
    let stderr = String::from_utf8_lossy(&firmware.stderr).to_string();
    let text = |o: &Output| {
        let t = String::from_utf8_lossy(&o.stdout).to_string();
        if engine == "kvm" {
            mask_host_time(&t)
        } else {
            t
        }
    };
    assert_eq!(
        text(&firmware),
        text(&direct),
        "{guest} on {engine}: serial output differs between --boot firmware and direct\n{stderr}"
    );
    assert_eq!(firmware.status.code(), direct.status.code(), "{stderr}");
    assert!(
        stderr.contains("booted by the firmware from F000:FFF0"),
        "{stderr}"
    );
    String::from_utf8_lossy(&firmware.stdout).to_string()
}

const KERNEL_CMDLINE: &str = "workloads=syscall:20,pagefault:20,portio:20";

#[test]
fn firmware_boot_prints_what_direct_boot_prints_on_the_interpreter() {
    for name in ["demo", "hello32", "hello-aout"] {
        let g = guests::by_name(name).unwrap();
        let out = same_output_both_ways(name, "interp", guests::DEFAULT_CMDLINE);
        assert_eq!(out, g.expected_serial, "{name}");
    }
    let out = same_output_both_ways("kernel", "interp", KERNEL_CMDLINE);
    assert!(out.contains("syscall"), "{out}");
}

#[test]
fn firmware_boot_prints_what_direct_boot_prints_on_kvm() {
    if let Some(why) = support::kvm_skip_reason() {
        eprintln!("skipped: KVM is not usable here: {why}");
        return;
    }
    let demo = same_output_both_ways("demo", "kvm", guests::DEFAULT_CMDLINE);
    assert_eq!(demo, guests::by_name("demo").unwrap().expected_serial);
    // hello32 uses 32-bit paging, which PVM refuses: then both boots fail the same way.
    same_output_both_ways("hello32", "kvm", guests::DEFAULT_CMDLINE);
    let out = same_output_both_ways("kernel", "kvm", KERNEL_CMDLINE);
    assert!(out.contains("RESULT workload=portio ops=20"), "{out}");
}

#[test]
fn step_with_firmware_boot_starts_at_the_reset_vector_in_real_mode() {
    let out = vmscope(&["step", "demo", "--boot", "firmware", "-n", "14"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("f000:0000fff0"), "{stdout}");
    assert!(stdout.contains("mode: 16-bit protected mode"), "{stdout}");
    assert!(stdout.contains("mode: 32-bit protected mode"), "{stdout}");
    let direct = vmscope(&["step", "demo", "-n", "1"]);
    assert!(
        !String::from_utf8_lossy(&direct.stdout).starts_with("f000:"),
        "direct boot stays the default"
    );
}

#[test]
fn the_firmware_alone_says_it_has_no_kernel() {
    let dir = std::env::temp_dir().join(format!("vmscope-fw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rom = dir.join("firmware.rom");
    std::fs::write(&rom, guests::FIRMWARE_ROM).unwrap();
    let out = vmscope(&["run", rom.to_str().unwrap(), "--engine", "interp"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no kernel to start"),
        "{out:?}"
    );
    assert_eq!(
        out.status.code(),
        Some(guests::qemu_exit_status(guests::exit::NOT_MULTIBOOT) as i32)
    );
}

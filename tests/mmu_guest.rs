//! The paging-matrix guest on the interpreter, on QEMU (`-cpu max`) and on KVM, and the shadow
//! MMU's counters as `--stats` shows them.
//! Teaches: one guest that checks paging rules from inside is the referee between three MMUs.

mod support;

use std::process::{Command, Stdio};

use support::*;
use vmscope::{EngineChoice, RunOptions};

fn run_with(engine: EngineChoice, cmdline: &str) -> (vmscope::GuestOutcome, String) {
    run_builtin(
        "paging-matrix",
        RunOptions {
            engine,
            cmdline: cmdline.to_string(),
            ..RunOptions::default()
        },
    )
}

/// The lines that report a case ("ok ..." / "FAIL ...").
fn case_lines(serial: &str) -> Vec<&str> {
    serial
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("FAIL "))
        .collect()
}

#[test]
fn every_case_passes_on_the_interpreter_and_the_shadow_was_exercised() {
    let (outcome, serial) = run_with(EngineChoice::Interp, CMDLINE);
    let g = guests::by_name("paging-matrix").unwrap();
    assert_eq!(serial, g.expected_serial);
    assert_eq!(outcome.status, 33);
    assert_eq!(case_lines(&serial).len(), 34);
    let m = outcome.machine.stats.mmu;
    // 16 configurations x 48 probes, about half of which fault, plus the single cases.
    assert!(m.page_faults > 300, "{m:?}");
    assert_eq!(
        outcome.machine.stats.exceptions.get("#PF").copied(),
        Some(m.page_faults),
        "every fault the MMU raised was delivered"
    );
    assert!(
        m.space_reuses >= 2,
        "switching back found a retained shadow: {m:?}"
    );
    assert!(m.pt_write_traps > 0 && m.inval_pt_write > 0, "{m:?}");
    assert!(
        m.inval_mode_change > 0,
        "SMEP 0->1 and the mode switches flush: {m:?}"
    );
    assert!(m.accessed_set > 0 && m.dirty_set > 0, "{m:?}");
    assert!(m.tlb_hits > 10 * m.tlb_misses, "{m:?}");
}

#[test]
fn long_mode_cases_agree_between_kvm_and_the_interpreter() {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: KVM is not usable here: {why}");
        return;
    }
    // PVM (see DESIGN.md) refuses paging without long mode, so both runs skip those phases.
    let (kvm, kvm_serial) = run_with(EngineChoice::Kvm, "nolegacy");
    let (interp, interp_serial) = run_with(EngineChoice::Interp, "nolegacy");
    assert_eq!(interp.status, 33, "{interp_serial}");
    assert_eq!(kvm.status, 33, "{kvm_serial}");
    assert!(kvm_serial.contains("skipped 32-bit and PAE paging"));
    let interp_cases = case_lines(&interp_serial);
    let kvm_cases = case_lines(&kvm_serial);
    // The host may offer fewer features (CPUID decides); every case it runs must agree.
    assert!(kvm_cases.len() >= 12, "{kvm_serial}");
    for line in &kvm_cases {
        assert!(
            interp_cases.contains(line),
            "kvm reported {line:?}, which the interpreter did not"
        );
    }
}

#[test]
fn qemu_agrees_except_for_its_reserved_bit_error_code() {
    let Some(qemu) = qemu_path() else {
        eprintln!("skipped: qemu-system-x86_64 is not installed (scripts/setup.sh installs it)");
        return;
    };
    let g = guests::by_name("paging-matrix").unwrap();
    let path = std::env::temp_dir().join(format!("vmscope-pm-{}.elf", std::process::id()));
    std::fs::write(&path, g.image).unwrap();
    let out = Command::new(qemu)
        .args([
            "-cpu", "max", "-accel", "tcg", "-m", "64", "-display", "none",
        ])
        .args(["-no-reboot", "-serial", "stdio", "-monitor", "none"])
        .args([
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("starting qemu");
    let _ = std::fs::remove_file(&path);
    let serial = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (ours, qemus) = guests::PAGING_MATRIX_QEMU_DIFFERENCE;
    assert_eq!(serial, g.expected_serial.replace(ours, qemus));
    assert_eq!(
        out.status.code(),
        Some(guests::qemu_exit_status(guests::exit::PAGING_CHECK_FAILED) as i32)
    );
}

#[test]
fn stats_show_the_shadow_counters() {
    let out = Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(["run", "paging-matrix", "--engine", "interp", "--stats"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(33), "{stderr}");
    for needle in [
        "software MMU: ",
        "  shadow: ",
        "reused a retained shadow",
        "page-table write traps: ",
        "entries invalidated by: CR3 ",
    ] {
        assert!(stderr.contains(needle), "{needle:?} missing in:\n{stderr}");
    }
}

/// Retained shadows must be invisible to the guest: with plain-TLB behaviour (flush on every
/// CR3 write) it prints the same, only the counters differ.
#[test]
fn the_guest_cannot_tell_retained_shadows_from_a_plain_tlb() {
    use emulator::interp::Interpreter;
    use emulator::mmu::ShadowConfig;
    use emulator::{Engine, Machine, RunLimit};
    let g = guests::by_name("paging-matrix").unwrap();
    let run = |retain: bool| {
        let mut m = Machine::new(64 << 20).unwrap();
        emulator::machine::loader::load_image(&mut m, g.file_name, g.image, CMDLINE).unwrap();
        let mut interp = Interpreter::with_mmu_config(ShadowConfig {
            retain_address_spaces: retain,
            max_spaces: 8,
        });
        let exit = interp
            .run(&mut m, RunLimit::instructions(5_000_000))
            .unwrap();
        let serial = String::from_utf8_lossy(&m.bus.take_serial_output()).into_owned();
        (exit, serial, m.stats.mmu)
    };
    let (exit_kept, serial_kept, kept) = run(true);
    let (exit_plain, serial_plain, plain) = run(false);
    assert_eq!(exit_kept, exit_plain);
    assert_eq!(serial_kept, g.expected_serial);
    assert_eq!(serial_plain, serial_kept);
    assert_eq!(
        (kept.inval_cr3, kept.space_reuses > 0),
        (0, true),
        "{kept:?}"
    );
    assert!(plain.inval_cr3 > 0 && plain.space_reuses == 0, "{plain:?}");
    assert!(plain.page_walks > kept.page_walks, "{plain:?} vs {kept:?}");
}

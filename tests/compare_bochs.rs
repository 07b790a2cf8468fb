//! `vmscope compare` on Bochs: the teaching kernel booted by Bochs's BIOS from a disk image made
//! at run time (src/bootdisk.rs + guests/asm/bootdisk.S), its checksum checked on the host.
//! Teaches: one kernel, another emulator, another way in — and the same answer.
//!
//! scripts/setup.sh installs Bochs; where it is missing these tests fail and say so, rather
//! than pass without having run.

use vmscope::compare::{self, bochs, suite, CompareOptions, EngineId};

fn require_bochs() {
    if let Err(why) = bochs::available() {
        panic!("the Bochs tests need Bochs 2.7 with its BIOS images: {why}");
    }
}

#[test]
fn compute_on_bochs_gives_the_host_checksum_and_a_speed() {
    require_bochs();
    let opts = CompareOptions {
        engines: vec![EngineId::Bochs],
        workloads: vec!["compute".into(), "syscall".into()],
        iterations: Some(5),
        modes: Vec::new(),
        ..CompareOptions::for_builtin_kernel()
    };
    let report = compare::run(&opts, &mut |line| eprintln!("{line}")).unwrap();
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    let compute = report.cell("compute", "bochs").expect("a compute cell");
    let expected = suite::expected_checksum("compute", 5).unwrap();
    assert_eq!(compute.checksum, format!("0x{expected:016x}"));
    assert_eq!(
        compute.expected_checksum.as_deref(),
        Some(compute.checksum.as_str())
    );
    // Speed from the interpreter's count per round whenever a time was measured (on a loaded
    // machine five rounds can vanish in the baseline's noise: then no speed, not a wrong one),
    // and no count of Bochs's own.
    if compute.ns_per_op.is_some_and(|ns| ns > 0.0) {
        assert!(
            compute.guest_ips.is_some_and(|ips| ips > 0.0),
            "{compute:?}"
        );
    } else {
        assert_eq!(compute.guest_ips, None, "{compute:?}");
    }
    assert_eq!(compute.instructions_per_op, None);
    let syscall = report.cell("syscall", "bochs").unwrap();
    assert_eq!(syscall.checksum, "0x000000000000000f");
    assert_eq!(report.engines[0].method, "wall_minus_baseline");
    assert!(report.engines[0].label.contains(bochs::CPU_MODEL));
}

#[test]
fn the_whole_suite_leaves_out_what_bochs_cannot_compare_and_an_explicit_list_runs_it() {
    require_bochs();
    // The kernel's null port reads all ones on Bochs: asked for, it runs and disagrees.
    let opts = CompareOptions {
        engines: vec![EngineId::Bochs],
        workloads: vec!["portio".into()],
        iterations: Some(3),
        modes: Vec::new(),
        ..CompareOptions::for_builtin_kernel()
    };
    let report = compare::run(&opts, &mut |_| {}).unwrap();
    assert_eq!(report.mismatches.len(), 1, "{:?}", report.mismatches);
    assert_eq!(report.mismatches[0].against, "host reference");
    // The whole suite says why it leaves portio and mmio out.
    for w in ["portio", "mmio"] {
        assert!(suite::not_comparable(w, EngineId::Bochs).is_some());
        assert!(suite::not_comparable(w, EngineId::Interp).is_none());
    }
}

#[test]
fn a_kernel_that_fails_on_bochs_is_an_error_with_its_last_words() {
    require_bochs();
    let err = bochs::boot(
        "kernel.elf",
        guests::KERNEL_ELF,
        "workloads=no-such-workload",
    )
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("exit value was 0x16"), "{text}");
    assert!(text.contains("last output"), "{text}");
}

#[test]
fn the_kernels_whole_output_leaves_the_uart_before_bochs_stops() {
    require_bochs();
    let boot = bochs::boot("kernel.elf", guests::KERNEL_ELF, "workloads=cpuid:3").unwrap();
    assert!(
        boot.serial.starts_with("vmscope teaching kernel"),
        "{}",
        boot.serial
    );
    // The kernel's EXIT waits for "transmitter empty" before it stops Bochs (pc.inc).
    assert!(
        boot.serial.ends_with(" timer interrupts\n"),
        "{:?}",
        boot.serial
    );
    assert_eq!(
        boot.instructions, None,
        "Bochs counts no instructions for us"
    );
}

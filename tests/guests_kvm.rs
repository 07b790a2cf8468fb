//! Every built-in guest on KVM gives the interpreter's output — where the host's KVM can run it.
//! Teaches: hardware-assisted and emulated runs of one guest must be indistinguishable to the guest.

mod support;

use accel_kvm::{detect_flavour, KvmFlavour};
use emulator::Exit;
use support::*;
use vmscope::EngineChoice;

/// Modes this host's KVM flavour cannot run, by guest, with the reason (see DESIGN.md).
fn unsupported_here(name: &str, flavour: KvmFlavour) -> Option<&'static str> {
    match (name, flavour) {
        ("hello32" | "hello-aout", KvmFlavour::Pvm) => {
            Some("PVM refuses 32-bit paging (#GP on the CR0.PG write)")
        }
        ("triple-fault", KvmFlavour::Pvm) => {
            Some("PVM interprets ring-0 code and its instruction emulator refuses INT3")
        }
        ("paging-matrix", KvmFlavour::Pvm) => {
            Some("PVM refuses 32-bit and PAE paging; tests/mmu_guest.rs runs it with `nolegacy`")
        }
        _ => None,
    }
}

#[test]
fn every_guest_matches_the_interpreter_on_kvm() {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: KVM is not usable here: {why}");
        return;
    }
    let flavour = detect_flavour();
    for g in guests::all() {
        if let Some(why) = unsupported_here(g.name, flavour) {
            eprintln!("skipped {} on kvm ({flavour}): {why}", g.name);
            continue;
        }
        let (outcome, serial) = run_builtin(g.name, opts(EngineChoice::Kvm));
        match g.name {
            "triple-fault" => {
                assert!(
                    matches!(outcome.exit, Exit::TripleFault { .. }),
                    "{:?}",
                    outcome.exit
                );
                assert_eq!(serial, expected_serial(g));
            }
            // PVM runs guest ring 3 on the host CPU: CS and IF show the host's (see lib.rs).
            "sensitive" if flavour == KvmFlavour::Pvm => {
                let mut expected = expected_serial(g);
                for (ours, pvm) in guests::SENSITIVE_PVM_DIFFERENCES {
                    assert!(expected.contains(ours), "{ours}");
                    expected = expected.replace(ours, pvm);
                }
                assert_eq!(serial, expected, "serial output of sensitive on kvm (PVM)");
                assert_eq!(outcome.status, expected_status(g));
            }
            _ => {
                assert_eq!(
                    serial,
                    expected_serial(g),
                    "serial output of {} on kvm",
                    g.name
                );
                assert_eq!(
                    outcome.status,
                    expected_status(g),
                    "exit status of {}",
                    g.name
                );
            }
        }
        assert!(
            outcome.engines[0].starts_with("kvm"),
            "{:?}",
            outcome.engines
        );
    }
}

#[test]
fn kvm_and_interpreter_count_different_things() {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: KVM is not usable here: {why}");
        return;
    }
    let (kvm, _) = run_builtin("hello64", opts(EngineChoice::Kvm));
    let (interp, _) = run_builtin("hello64", opts(EngineChoice::Interp));
    // Only the interpreter counts instructions; KVM reports VM exits instead.
    assert_eq!(kvm.machine.stats.instructions, 0);
    assert!(interp.machine.stats.instructions > 0);
    assert!(kvm.machine.stats.total_exits() > 0);
    // The same port I/O reached the same devices either way.
    assert_eq!(
        kvm.machine.bus.stats.by_device.get("uart"),
        interp.machine.bus.stats.by_device.get("uart")
    );
}

//! The project's own guests (the `guests` crate) booted under the KVM engine.
//! Teaches: with hardware virtualization every kernel runs as written; PVM runs some and stops
//! the others at well-defined points, which the engine reports instead of hanging.

mod common;

use accel_kvm::{detect_flavour, KvmEngine, KvmFlavour};
use common::kvm_or_skip;
use emulator::machine::loader::load_image;
use emulator::{Engine, EngineError, Exit, Machine, RunLimit};
use guests::Ending;

fn boot(name: &str) -> (guests::Guest, String, Result<Exit, EngineError>) {
    boot_with(name, false)
}

/// `strict`: stop where KVM cannot emulate an instruction instead of handing it to the
/// interpreter (`KvmEngine::with_strict_emulation`).
fn boot_with(name: &str, strict: bool) -> (guests::Guest, String, Result<Exit, EngineError>) {
    let guest = *guests::by_name(name).unwrap_or_else(|| panic!("no guest named {name}"));
    let mut m = Machine::new(u64::from(guests::DEFAULT_MEMORY_MIB) << 20).unwrap();
    load_image(
        &mut m,
        guest.file_name,
        guest.image,
        guests::DEFAULT_CMDLINE,
    )
    .unwrap();
    let mut kvm = KvmEngine::new(&m).unwrap().with_strict_emulation(strict);
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED);
    let serial = String::from_utf8_lossy(&m.bus.take_serial_output()).into_owned();
    (guest, serial, exit)
}

fn ended_as_expected(guest: &guests::Guest, exit: &Result<Exit, EngineError>) -> bool {
    match (exit, guest.ending) {
        (Ok(Exit::DebugExit { value, .. }), Ending::DebugExit(v)) => *value == v,
        (Ok(Exit::Shutdown), Ending::HaltWithInterruptsDisabled) => true,
        (Ok(Exit::TripleFault { .. }), Ending::TripleFault) => true,
        _ => false,
    }
}

/// On hardware the run must be exactly right; on PVM, `pvm_check` says what must hold there.
fn check(name: &str, pvm_check: impl FnOnce(&guests::Guest, &str, &Result<Exit, EngineError>)) {
    let (guest, serial, exit) = boot(name);
    if detect_flavour() == KvmFlavour::Pvm {
        pvm_check(&guest, &serial, &exit);
    } else {
        assert_eq!(serial, guest.expected_serial, "{name}: serial output");
        assert!(
            ended_as_expected(&guest, &exit),
            "{name}: ended with {exit:?}"
        );
    }
}

fn unsupported_naming(exit: &Result<Exit, EngineError>, bytes: &str) {
    match exit {
        Err(EngineError::Unsupported(why)) => assert!(why.contains(bytes), "{why}"),
        other => panic!("expected a clear Unsupported naming {bytes}, got {other:?}"),
    }
}

#[test]
fn hello_real_rom_boots_from_the_reset_vector() {
    if !kvm_or_skip("hello_real_rom_boots_from_the_reset_vector") {
        return;
    }
    check("hello-real", |guest, serial, exit| {
        assert_eq!(serial, guest.expected_serial);
        assert!(ended_as_expected(guest, exit), "{exit:?}");
    });
}

#[test]
fn hello64_and_the_demo_visit_ring_3_and_come_back() {
    if !kvm_or_skip("hello64_and_the_demo_visit_ring_3_and_come_back") {
        return;
    }
    // Long mode set up by the guest, IDT, TSS, five PIT interrupts through our PIC, IRETQ to
    // ring 3, SYSCALL/SYSRETQ and INT 0x80. On PVM the last two do not reach ring 0 the
    // architectural way (tests/system_calls.rs); the kernel recognises the faults they become
    // and finishes them, so the run is exactly right on every flavour.
    for name in ["hello64", "demo"] {
        let (guest, serial, exit) = boot(name);
        assert_eq!(serial, guest.expected_serial, "{name}: serial output");
        assert!(
            ended_as_expected(&guest, &exit),
            "{name}: ended with {exit:?}"
        );
    }
}

#[test]
fn paging32_kernels_run_or_triple_fault_on_pvm() {
    if !kvm_or_skip("paging32_kernels_run_or_triple_fault_on_pvm") {
        return;
    }
    for name in ["hello32", "hello-aout"] {
        check(name, |_, serial, exit| {
            // PVM refuses CR0.PG without long mode (#GP; these kernels have no IDT yet).
            assert!(
                matches!(exit, Ok(Exit::TripleFault { .. })),
                "{name}: {exit:?}"
            );
            assert_eq!(serial, "", "{name}");
        });
    }
}

#[test]
fn ring0_instructions_pvm_cannot_emulate_run_on_the_interpreter_or_are_reported() {
    if !kvm_or_skip("ring0_instructions_pvm_cannot_emulate_run_on_the_interpreter_or_are_reported")
    {
        return;
    }
    // INT3 (0xCC) in ring 0 and FSIN (D9 FE) are outside KVM's instruction emulator on PVM.
    // By default the interpreter executes them, so the guests end as they do on interp.
    check("triple-fault", |guest, serial, exit| {
        assert_eq!(serial, guest.expected_serial);
        assert!(ended_as_expected(guest, exit), "{exit:?}");
    });
    let (_, _, exit) = boot("ud");
    if detect_flavour() == KvmFlavour::Pvm {
        // The interpreter's x87 runs FSIN: the guest reports that the probe ran (0x12).
        assert!(
            matches!(exit, Ok(Exit::DebugExit { value: 0x12, .. })),
            "{exit:?}"
        );
        // Strict: the old stop, naming the instruction bytes.
        unsupported_naming(&boot_with("triple-fault", true).2, "[cc");
        unsupported_naming(&boot_with("ud", true).2, "[d9, fe");
    } else {
        // On hardware FSIN simply runs on the host CPU's x87: exit value 0x12.
        assert!(
            matches!(exit, Ok(Exit::DebugExit { value: 0x12, .. })),
            "{exit:?}"
        );
    }
}

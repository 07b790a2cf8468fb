//! Every built-in guest on the interpreter: exact serial output and exit status.
//! Teaches: the interpreter is the reference — what a guest prints there is what it must print everywhere.

mod support;

use emulator::Exit;
use support::*;
use vmscope::EngineChoice;

#[test]
fn every_guest_prints_its_expected_output_on_the_interpreter() {
    for g in guests::all() {
        let (outcome, serial) = run_builtin(g.name, opts(EngineChoice::Interp));
        if g.name == "triple-fault" {
            assert!(
                matches!(outcome.exit, Exit::TripleFault { .. }),
                "{:?}",
                outcome.exit
            );
            assert_eq!(outcome.status, 6);
            assert_eq!(serial, expected_serial(g));
            continue;
        }
        assert_eq!(serial, expected_serial(g), "serial output of {}", g.name);
        assert_eq!(
            outcome.status,
            expected_status(g),
            "exit status of {}",
            g.name
        );
        assert!(
            outcome.machine.stats.instructions > 100,
            "{} ran {} instructions",
            g.name,
            outcome.machine.stats.instructions
        );
    }
}

#[test]
fn interpreter_runs_are_deterministic() {
    let (a, sa) = run_builtin("hello64", opts(EngineChoice::Interp));
    let (b, sb) = run_builtin("hello64", opts(EngineChoice::Interp));
    assert_eq!(sa, sb);
    assert_eq!(a.machine.cpu, b.machine.cpu);
    assert_eq!(a.machine.stats, b.machine.stats);
    assert_eq!(a.machine.bus.now_ns(), b.machine.bus.now_ns());
}

#[test]
fn hello64_takes_timer_interrupts_and_system_calls() {
    let (outcome, _) = run_builtin("hello64", opts(EngineChoice::Interp));
    let stats = &outcome.machine.stats;
    assert!(
        stats.interrupts >= 5,
        "timer interrupts: {}",
        stats.interrupts
    );
    assert!(stats.exceptions.get("syscall").copied().unwrap_or(0) >= 1);
    assert!(
        stats
            .exceptions
            .get("int n (software)")
            .copied()
            .unwrap_or(0)
            >= 1
    );
    assert!(stats.exits.get("io").copied().unwrap_or(0) > 20);
    assert!(stats.mmu.page_walks > 0);
}

#[test]
fn ud_guest_runs_fsin_on_the_interpreters_x87() {
    let (outcome, serial) = run_builtin("ud", opts(EngineChoice::Interp));
    assert_eq!(serial, "fsin executed without #UD\n");
    assert!(outcome.machine.stats.unimplemented.is_empty());
    // FSIN of an empty ST(0): a masked stack underflow (IE + SF), the indefinite NaN.
    assert_eq!(outcome.machine.cpu.fpu.fsw() & 0x41, 0x41);
}

//! Writes no engine saw: a debugger, another engine. After `Machine::memory_changed_behind_engines`
//! (or `Engine::invalidate`) the interpreter and the translator run the new bytes, not their
//! cached decode or block of the old ones.
//! Teaches: a cache of guest memory needs to hear of every write — or of the fact that it missed some.

mod support;

use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Invalidate, Machine, RunLimit};

/// `mov al, 1; hlt` at 0x7C00 in real mode; the test later patches the immediate.
fn machine() -> Machine {
    let mut m = support::real_mode(&[0xB0, 0x01, 0xF4]);
    m.cpu.rflags |= emulator::cpu::flags::IF; // HLT waits instead of ending the run
    m
}

/// Runs `engine` from 0x7C00 until HLT (two instructions) and returns AL.
fn run_once(engine: &mut dyn Engine, m: &mut Machine) -> u8 {
    m.cpu.rip = 0x7C00;
    m.cpu.events.halted = false;
    let exit = engine.run(m, RunLimit::instructions(2)).unwrap();
    assert_eq!(exit, Exit::LimitReached);
    m.cpu.gpr[0] as u8
}

fn runs_what_changed_behind_its_back(engine: &mut dyn Engine, name: &str) {
    let mut m = machine();
    assert_eq!(run_once(engine, &mut m), 1, "{name}");
    // Patch the code directly in RAM: no engine's write path sees it.
    m.ram.write(0x7C01, &[0x02]).unwrap();
    m.memory_changed_behind_engines();
    assert_eq!(
        run_once(engine, &mut m),
        2,
        "{name}: the new byte, not a cached decode"
    );
    m.ram.write(0x7C01, &[0x03]).unwrap();
    engine.invalidate(
        &mut m,
        Invalidate::Memory {
            phys: 0x7C01,
            len: 1,
        },
    );
    assert_eq!(
        run_once(engine, &mut m),
        3,
        "{name}: after Engine::invalidate"
    );
}

#[test]
fn the_interpreter_drops_its_decodes_when_the_memory_epoch_moves() {
    runs_what_changed_behind_its_back(&mut Interpreter::new(), "interp");
}

#[test]
fn the_translator_drops_its_blocks_when_the_memory_epoch_moves() {
    runs_what_changed_behind_its_back(&mut BinaryTranslator::default(), "bt");
}

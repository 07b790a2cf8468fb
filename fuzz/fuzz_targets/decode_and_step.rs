//! Bytes as guest code in a small machine (real, 16/32-bit protected, long mode, ring 3), run
//! for 64 instructions on the interpreter and on the binary translator: guest faults are fine, panics are not.
#![no_main]

use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::{Engine, RunLimit};
use libfuzzer_sys::fuzz_target;
use vmscope::fuzz::modes::new_machine;
use vmscope::fuzz::Mode;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, code)) = data.split_first() else {
        return;
    };
    let mode = Mode::ALL[usize::from(pick) % Mode::ALL.len()];
    // As `vmscope fuzz` bounds a case: instructions, and I/O accesses (REP INS/OUTS).
    let limit = RunLimit {
        io_accesses: Some(64),
        ..RunLimit::instructions(64)
    };
    let mut m = new_machine(mode, code);
    let _ = Interpreter::new().run(&mut m, limit);
    let mut m = new_machine(mode, code);
    let _ = BinaryTranslator::default().run(&mut m, limit);
});

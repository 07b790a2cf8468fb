//! Minimised images `vmscope fuzz` found where the engines disagreed, one test each, with the
//! command that found it. Each runs the image as the fuzzer does and compares everything.
//! Teaches: every bug a fuzzer finds becomes a test that fails before the fix.

use vmscope::fuzz::compare::{compare, Verdict};
use vmscope::fuzz::finding::unhex;
use vmscope::fuzz::run::Runner;
use vmscope::fuzz::{Case, EngineKind, Mode};

/// Runs `code` (hex) in `mode` on interp and bt under the fuzzer's default limit; they must agree.
fn agree(mode: Mode, code: &str) {
    let case = Case::from_bytes(mode, &unhex(code).unwrap());
    let limit = mode.default_limit();
    let a = Runner::new(EngineKind::Interp, mode)
        .unwrap()
        .run(&case, limit);
    let b = Runner::new(EngineKind::Bt, mode).unwrap().run(&case, limit);
    match compare(&case, limit, &a, &b) {
        Verdict::Same => {}
        other => panic!("interp vs bt on {code}: {other:?}"),
    }
}

/// `dec rcx; jne $-9; (bad)`: bt ran the undecodable byte through the interpreter's dispatch,
/// which counted it as an unimplemented instruction ("invalid"); the interpreter raises #UD at
/// decode and counts nothing. Found by `vmscope fuzz --mode long --seed 1 --cases 101`.
#[test]
fn an_undecodable_instruction_in_a_translated_block_is_not_counted_as_unimplemented() {
    agree(Mode::Long, "48ffc90f85f7ffffffc4");
}

/// `add al, 0x41; out 0xD0, al; push imm32; jbe` loops (the JBE lands inside the ADD: `41 e6 d0`
/// is the OUT again) pushing down through the page table that maps the low 2 MiB; one push
/// rewrites the entry of the code page itself. The interpreter's next fetch walks the new
/// entry and takes the #PF; bt ran the rest of its block and the chained one from the stale
/// translation. Found by `vmscope fuzz --mode long --seed 1 --cases 26`.
#[test]
fn a_store_into_the_page_table_mapping_the_code_ends_the_translated_block() {
    agree(Mode::Long, "0441e6d0687d7a3bdb76f6");
}

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

/// Loops of short chained blocks that use up the instruction budget exactly: bt ran one
/// instruction past the limit (2001 of 2000), because the next block did not fit the empty
/// budget and was interpreted one instruction anyway. Found by `vmscope fuzz --cases 10000
/// --seed 20261207` in ring 3 (cases 71, 1628, 2572) and real mode (case 3172).
#[test]
fn a_chain_that_uses_up_the_instruction_budget_runs_no_further() {
    // imul eax, ebx; jrcxz; jbe back to the jrcxz: one-instruction blocks chained in a loop.
    agree(Mode::Ring3, "0fafc3e3060f86f8ffffff");
    // jmp far [mem] to a selector that faults, then a jp/jae loop.
    agree(
        Mode::Ring3,
        "ff2d000000000c0001002b000f8a000000000f83f4ffffff",
    );
    // cmovno under LOOP, then jno back to the start.
    agree(
        Mode::Ring3,
        "48b902000000000000006667440f413c2541000100e2f348ba03000000000000000f81d9ffffff",
    );
    // sti; call; jbe; leave; js; popf; ret — with timer interrupts.
    agree(Mode::Real, "fbe80000763cc9789dc3");
}

/// Runs the ring-3 `code` (hex) on the interpreter and on the CPU (KVM): they must agree, or
/// differ only as a documented rule says (`expect_rule`: a host-dependent corner, which one
/// CPU answers as the model does and another not). Skipped, with the reason, without KVM.
fn agree_with_the_cpu(code: &str, expect_rule: Option<&str>) {
    if let Err(why) = accel_kvm::kvm_for_tests() {
        eprintln!("kvm skipped: {why}");
        return;
    }
    let mode = Mode::Ring3;
    let case = Case::from_bytes(mode, &unhex(code).unwrap());
    let limit = mode.default_limit();
    let a = Runner::new(EngineKind::Interp, mode)
        .unwrap()
        .run(&case, limit);
    let b = Runner::new(EngineKind::Kvm, mode)
        .unwrap()
        .run(&case, limit);
    match (compare(&case, limit, &a, &b), expect_rule) {
        (Verdict::Same, _) => {}
        (Verdict::NotComparable(rule), Some(expected)) if rule == expected => {}
        (other, _) => panic!("interp vs kvm on {code}: {other:?}"),
    }
}

/// x87 and SSE corners the CPU answered differently from the first x87 unit, found by
/// `vmscope fuzz --mode ring3` (seeds 11, 12, 22, 23): each as the CPU does it.
#[test]
fn x87_corners_agree_with_the_cpu() {
    // FST m32 from an empty stack to a page that faults: the fault leaves FSW alone (the
    // stack-underflow flags were set before the store).
    agree_with_the_cpu("d911e6f4", None);
    // FSTP1 (D9 D8+i, "FSTPNCE"): no stack-underflow check.
    agree_with_the_cpu("d9d9e6f4", None);
    // FLDPI, then FNINIT: TOP back to 0 over the registers as they are.
    agree_with_the_cpu("d9eb0502000000dbe3e6f4", None);
    // EMMS also resets TOP.
    agree_with_the_cpu("d9e80f77e6f4", None);
    // An MMX instruction makes the stack full; FLD overflows (C1 = 1); FCMOVcc leaves C1.
    agree_with_the_cpu("0f6fc0d9e8dbd1e6f4", None);
    // √2, 1/3 and FPREM on the CPU's own FPU.
    agree_with_the_cpu(
        "d9e8d9e8dec1d9fad9e8d9e8d9e8dec1def9d9e8d9e8dec1d9e8d9c9d9f8e6f4",
        None,
    );
    // FPTAN(1): an AMD host's is 1 ulp above the true value; the interpreter's is the true one,
    // as an Intel host's.
    agree_with_the_cpu("d9e8d9f2e6f4", Some("x87 transcendental"));
}

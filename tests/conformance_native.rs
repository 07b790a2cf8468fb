//! `vmscope conformance native`: the interpreter against the real CPU, and the interpreter fixes it found.
//! Teaches: a differential test must itself be tested — a known-wrong result has to show up as a failure.

use accel_kvm::kvm_available;
use emulator::cpu::state::flags::{AF, CF, ZF};
use emulator::cpu::state::reg;
use emulator::interp::Interpreter;
use vmscope::conformance::native::{self, Case, Options, Outcome, DATA, STACK_TOP};

fn kvm_or_skip(test: &str) -> bool {
    match kvm_available() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            false
        }
    }
}

/// A case with `code`, RSP/R15 as the runner sets them and the given registers.
fn case(code: &[u8], regs: &[(usize, u64)]) -> Case {
    let mut gpr = [0u64; 16];
    gpr[reg::RSP] = STACK_TOP;
    gpr[15] = DATA;
    for &(r, v) in regs {
        gpr[r] = v;
    }
    Case {
        code: code.to_vec(),
        gpr,
        rflags: 0x3202,
        undefined_flags: 0,
        undefined_regs: 0,
        text: String::new(),
    }
}

fn interp(c: &Case) -> Outcome {
    let mut m = native::new_machine();
    let out = native::run_interp(&mut m, &mut Interpreter::new(), c, &[0u8; 4096]);
    assert_eq!(out.abnormal, None, "the case did not reach its exit OUT");
    out
}

#[test]
fn a_sample_of_every_form_agrees_with_the_cpu() {
    if !kvm_or_skip("a_sample_of_every_form_agrees_with_the_cpu") {
        return;
    }
    let report = native::run(&Options {
        forms: "all".into(),
        cases: 20,
        seed: 2026,
        corrupt_interp_rflags: 0,
    })
    .unwrap();
    assert!(report.rows.len() > 300, "only {} forms", report.rows.len());
    assert_eq!(report.passed(), report.total(), "{}", report.render(20));
}

#[test]
fn a_deliberately_wrong_interpreter_flag_is_reported() {
    if !kvm_or_skip("a_deliberately_wrong_interpreter_flag_is_reported") {
        return;
    }
    let report = native::run(&Options {
        forms: "Add_rm64_r64".into(),
        cases: 10,
        seed: 1,
        corrupt_interp_rflags: CF,
    })
    .unwrap();
    assert_eq!((report.passed(), report.total()), (0, 10));
    assert!(
        report.failures[0].contains("rflags"),
        "{}",
        report.failures[0]
    );
    assert!(report.render(0).ends_with("passed 0 of 10\n"));
}

#[test]
fn compare_ignores_only_the_undefined_flags_and_registers() {
    let mut c = case(&[0x48, 0x21, 0xC8], &[]); // and rax, rcx
    let a = interp(&c);
    let mut b = a.clone();
    assert!(native::compare(&c, &a, &b).is_empty());
    b.rflags ^= AF;
    assert_eq!(
        native::compare(&c, &a, &b).len(),
        1,
        "AF is compared unless declared undefined"
    );
    c.undefined_flags = AF;
    assert!(native::compare(&c, &a, &b).is_empty());
    b.rflags ^= ZF;
    assert!(native::compare(&c, &a, &b)[0].starts_with("rflags"));
    let mut b = a.clone();
    b.gpr[reg::RDX] ^= 1;
    b.data[17] ^= 0x80;
    let diffs = native::compare(&c, &a, &b);
    assert_eq!(diffs.len(), 2, "{diffs:?}");
    c.undefined_regs = 1 << reg::RDX;
    assert_eq!(native::compare(&c, &a, &b).len(), 1);
}

// The interpreter bugs this comparison found, as known answers (no KVM needed).

#[test]
fn shld_64_sets_cf_from_the_last_bit_shifted_out() {
    // shld rax, rbx, 1 (it overflowed a 128-bit shift before)
    let out = interp(&case(
        &[0x48, 0x0F, 0xA4, 0xD8, 0x01],
        &[
            (reg::RAX, 0x8000_0000_0000_0001),
            (reg::RBX, 0x8000_0000_0000_0000),
        ],
    ));
    assert_eq!(out.gpr[reg::RAX], 3);
    assert_ne!(out.rflags & CF, 0);
}

#[test]
fn xadd_with_one_register_as_both_operands_keeps_the_sum() {
    let out = interp(&case(&[0x4D, 0x0F, 0xC1, 0xD2], &[(10, 5)])); // xadd r10, r10
    assert_eq!(out.gpr[10], 10);
}

#[test]
fn failed_cmpxchg_leaves_a_32_bit_register_destination_whole() {
    // cmpxchg ecx, ebx with eax != ecx: EAX ← ECX (zero-extended), RCX untouched.
    let out = interp(&case(
        &[0x0F, 0xB1, 0xD9],
        &[
            (reg::RAX, 0xFFFF_FFFF_0000_0001),
            (reg::RCX, 0xAAAA_BBBB_0000_0002),
        ],
    ));
    assert_eq!(out.gpr[reg::RAX], 2);
    assert_eq!(out.gpr[reg::RCX], 0xAAAA_BBBB_0000_0002);
    assert_eq!(out.rflags & ZF, 0);
}

#[test]
fn a_shift_by_zero_still_zero_extends_a_32_bit_register() {
    let out = interp(&case(
        &[0x41, 0xC1, 0xE6, 0x00],
        &[(14, 0xFFFF_FFFF_1234_5678)],
    )); // shl r14d, 0
    assert_eq!(out.gpr[14], 0x1234_5678);
    // shld r12d, eax, 0 likewise
    let out = interp(&case(
        &[0x41, 0x0F, 0xA4, 0xC4, 0x00],
        &[(12, 0xFFFF_FFFF_1234_5678)],
    ));
    assert_eq!(out.gpr[12], 0x1234_5678);
}

//! `vmscope conformance native`: the interpreter against the real CPU, and the interpreter fixes it found.
//! Teaches: a differential test must itself be tested — a known-wrong result has to show up as a failure.

use emulator::cpu::state::flags::{AF, CF, ZF};
use emulator::cpu::state::reg;
use emulator::interp::Interpreter;
use vmscope::conformance::native::{self, Case, CodeMode, Options, Outcome, DATA, STACK_TOP};
use vmscope::conformance::native_machine::{READONLY, UNMAPPED};

fn kvm_or_skip(test: &str) -> bool {
    match accel_kvm::kvm_for_tests() {
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
        mode: CodeMode::Long64,
        code: code.to_vec(),
        gpr,
        rflags: 0x3202,
        undefined_flags: 0,
        undefined_regs: 0,
        compare_flags: 0,
        text: String::new(),
        stack_init: Vec::new(),
        fpu: None,
        fsw_not_compared: 0,
        multi_part: false,
        mmx_operand: false,
    }
}

/// The same in 32-bit compatibility mode.
fn case32(code: &[u8], regs: &[(usize, u64)]) -> Case {
    Case {
        mode: CodeMode::Compat32,
        ..case(code, regs)
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
        strict: false,
        corrupt_interp_rflags: 0,
    })
    .unwrap();
    assert!(report.rows.len() > 600, "only {} forms", report.rows.len());
    let compat = report
        .rows
        .iter()
        .filter(|r| r.0.starts_with("32/"))
        .count();
    assert!(compat > 250, "only {compat} compatibility-mode forms");
    assert_eq!(report.passed(), report.total(), "{}", report.render(20));
    // Faulting cases are part of the sample, and were compared (vector, error code, frame).
    for v in ["#DE", "#DB", "#BP", "#UD", "#SS", "#GP", "#PF", "#AC"] {
        assert!(
            report.faults.get(v).copied().unwrap_or(0) > 0,
            "no {v} case: {:?}",
            report.faults
        );
    }
}

#[test]
fn forms_select_by_mode_and_prefix() {
    use vmscope::conformance::native_forms::select_forms;
    let all = select_forms("all").len();
    let (f64, f32) = (select_forms("64").len(), select_forms("32").len());
    assert_eq!(all, f64 + f32);
    assert!(select_forms("32").iter().all(|f| f.name.starts_with("32/")));
    assert!(select_forms("32/daa").iter().any(|f| f.name == "32/Daa"));
    assert!(select_forms("64")
        .iter()
        .all(|f| f.mode == CodeMode::Long64));
    // DAA has no 64-bit form: only the #UD case of its byte.
    let daa: Vec<String> = select_forms("daa").into_iter().map(|f| f.name).collect();
    assert_eq!(daa, ["daa_in_64"]);
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
        strict: false,
        corrupt_interp_rflags: CF,
    })
    .unwrap();
    assert_eq!((report.passed(), report.total()), (0, 10));
    assert!(
        report.failures[0].contains("rflags"),
        "{}",
        report.failures[0]
    );
    // The report names the seed and a command that replays exactly the failing forms.
    assert!(report.render(0).ends_with(
        "passed 0 of 10\nseed 1; replay: vmscope conformance native --seed 1 --cases 10 --forms Add_rm64_r64\n"
    ));
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

// Compatibility mode and faults on the interpreter, against the SDM (no KVM needed).

#[test]
fn compatibility_mode_runs_the_instructions_64_bit_mode_took_away() {
    // daa: AL 0x9A + CF=0 → 0x00 with CF=1 (SDM DAA example: 0x9A → 0x00, CF, AF).
    let out = interp(&case32(&[0x27], &[(reg::RAX, 0x9A)]));
    assert_eq!(out.fault, None);
    assert_eq!(out.gpr[reg::RAX] & 0xFF, 0x00);
    assert_ne!(out.rflags & CF, 0);
    // The same byte in 64-bit mode is #UD, at the instruction.
    let out = interp(&case(&[0x27], &[(reg::RAX, 0x9A)]));
    let f = out.fault.expect("#UD");
    assert_eq!((f.vector, f.rip), (6, native::CODE));
    // inc eax is one byte (0x40) in 32-bit code; pusha stores eight 32-bit registers.
    let out = interp(&case32(
        &[0x40, 0x60],
        &[(reg::RAX, 0xFFFF_FFFF), (reg::RDI, 7)],
    ));
    assert_eq!(out.gpr[reg::RAX] & 0xFFFF_FFFF, 0);
    assert_eq!(out.gpr[reg::RSP], STACK_TOP - 32);
    let pushed_edi = u32::from_le_bytes(out.stack[0x800 - 32..0x800 - 28].try_into().unwrap());
    assert_eq!(pushed_edi, 7);
}

#[test]
fn a_write_fault_reports_w_in_the_error_code_even_for_the_read_of_add() {
    // add [r15+0x10], al with R15 on a page that is not present: #PF, error code W|U = 6.
    let out = interp(&case(&[0x41, 0x00, 0x47, 0x10], &[(15, UNMAPPED)]));
    let f = out.fault.expect("#PF");
    assert_eq!((f.vector, f.error_code, f.cr2), (14, 6, UNMAPPED + 0x10));
    // cmp only reads: U = 4.
    let out = interp(&case(&[0x41, 0x38, 0x47, 0x10], &[(15, UNMAPPED)]));
    assert_eq!(out.fault.unwrap().error_code, 4);
    // bts on a read-only page: P|W|U = 7.
    let out = interp(&case(
        &[0x41, 0x0F, 0xBA, 0x6F, 0x10, 0x03],
        &[(15, READONLY)],
    ));
    assert_eq!(out.fault.unwrap().error_code, 7);
}

#[test]
fn a_fault_frame_has_rf_set_and_the_faulting_rip() {
    // div rcx with RCX = 0: #DE at the DIV, RF = 1 in the pushed RFLAGS (a fault).
    let out = interp(&case(&[0x48, 0xF7, 0xF1], &[(reg::RAX, 5)]));
    let f = out.fault.expect("#DE");
    assert_eq!((f.vector, f.rip, f.rsp), (0, native::CODE, STACK_TOP));
    assert_ne!(f.rflags & emulator::cpu::state::flags::RF, 0);
    // int3 is a trap: RIP after it, RF clear.
    let f = interp(&case(&[0xCC], &[])).fault.expect("#BP");
    assert_eq!((f.vector, f.rip), (3, native::CODE + 1));
    assert_eq!(f.rflags & emulator::cpu::state::flags::RF, 0);
}

#[test]
fn pop_to_memory_that_faults_leaves_rsp_unchanged() {
    // pop qword [r15] with R15 on the read-only page.
    let out = interp(&case(&[0x41, 0x8F, 0x07], &[(15, READONLY)]));
    assert_eq!(out.fault.as_ref().map(|f| f.vector), Some(14));
    assert_eq!(out.gpr[reg::RSP], STACK_TOP);
}

#[test]
fn alignment_check_faults_a_misaligned_ring_3_access_before_paging() {
    let ac = emulator::cpu::state::flags::AC;
    // mov eax, [r15+1]: no fault without RFLAGS.AC, #AC(0) with it (CR0.AM is set).
    let mut c = case(&[0x41, 0x8B, 0x47, 0x01], &[]);
    assert_eq!(interp(&c).fault, None);
    c.rflags |= ac;
    let f = interp(&c).fault.expect("#AC");
    assert_eq!((f.vector, f.error_code), (17, 0));
    // Aligned: no fault. On a page that is not present: #AC still comes first.
    let mut c = case(&[0x41, 0x8B, 0x47, 0x04], &[]);
    c.rflags |= ac;
    assert_eq!(interp(&c).fault, None);
    let mut c = case(&[0x41, 0x8B, 0x47, 0x01], &[(15, UNMAPPED)]);
    c.rflags |= ac;
    assert_eq!(interp(&c).fault.unwrap().vector, 17);
}

#[test]
fn invd_and_wbinvd_are_privileged() {
    for code in [[0x0F, 0x08], [0x0F, 0x09]] {
        let f = interp(&case(&code, &[])).fault.expect("#GP");
        assert_eq!((f.vector, f.error_code), (13, 0), "{code:x?}");
    }
}

#[test]
fn compare_reports_a_different_fault() {
    let c = case(&[0x48, 0xF7, 0xF1], &[(reg::RAX, 5)]); // div rcx, RCX = 0: #DE
    let a = interp(&c);
    let mut b = a.clone();
    assert!(native::compare(&c, &a, &b).is_empty());
    b.fault.as_mut().unwrap().vector = 13;
    assert!(native::compare(&c, &a, &b)[0].starts_with("fault"));
    let mut b = a.clone();
    b.fault = None;
    assert!(native::compare(&c, &a, &b)[0].starts_with("fault"));
}

/// The instructions PVM cannot check in compatibility mode (see `PVM_QUIRKS`), against the SDM.
#[test]
fn bound_into_and_arpl_follow_the_sdm_in_compatibility_mode() {
    // bound eax, [DATA] with both bounds 0 (the data page is zero): EAX = 0 is inside, 5 is
    // not: #BR, a fault (RIP at BOUND).
    let mut code = vec![0x62, 0x05];
    code.extend_from_slice(&(DATA as u32).to_le_bytes());
    assert_eq!(interp(&case32(&code, &[(reg::RAX, 0)])).fault, None);
    let f = interp(&case32(&code, &[(reg::RAX, 5)])).fault.expect("#BR");
    assert_eq!((f.vector, f.rip), (5, native::CODE));
    // into: nothing with OF = 0; with OF = 1 an #OF trap (RIP after INTO).
    assert_eq!(interp(&case32(&[0xCE], &[])).fault, None);
    let mut c = case32(&[0xCE], &[]);
    c.rflags |= emulator::cpu::state::flags::OF;
    let f = interp(&c).fault.expect("#OF");
    assert_eq!((f.vector, f.rip), (4, native::CODE + 1));
    // arpl ax, cx: RPL of AX raised to CX's, ZF = 1; already as high: ZF = 0.
    let out = interp(&case32(&[0x63, 0xC8], &[(reg::RAX, 0x10), (reg::RCX, 3)]));
    assert_eq!((out.gpr[reg::RAX] & 0xFFFF, out.rflags & ZF), (0x13, ZF));
    let out = interp(&case32(&[0x63, 0xC8], &[(reg::RAX, 0x13), (reg::RCX, 1)]));
    assert_eq!((out.gpr[reg::RAX] & 0xFFFF, out.rflags & ZF), (0x13, 0));
}

#[test]
fn only_the_documented_pvm_differences_are_set_aside() {
    use vmscope::conformance::native_forms::select_forms;
    let form = |name: &str| {
        select_forms(name)
            .into_iter()
            .find(|f| f.name == name)
            .unwrap()
    };
    let base = interp(&case(&[0x90], &[]));
    let with = |vector: Option<u8>| {
        let mut o = base.clone();
        o.fault = vector.map(|vector| native::Fault {
            vector,
            error_code: 0,
            cr2: 0,
            rip: native::CODE,
            cs: 0x1B,
            rflags: 0x3202,
            rsp: STACK_TOP,
        });
        o
    };
    let (none, ud, gp) = (with(None), with(Some(6)), with(Some(13)));
    // Compatibility mode runs in KVM's emulator: #UD where the CPU has none is set aside...
    assert!(native::pvm_quirk(&form("32/Daa"), &none, &ud).is_some());
    // ...but not in 64-bit code, and not the other way round.
    assert!(native::pvm_quirk(&form("Add_rm64_r64"), &none, &ud).is_none());
    assert!(native::pvm_quirk(&form("32/Daa"), &ud, &none).is_none());
    // A ring-3 #GP the emulator turned into #UD; INT n as #UD.
    assert!(native::pvm_quirk(&form("Popcnt_r64_rm64"), &gp, &ud).is_some());
    assert!(native::pvm_quirk(&form("int_21"), &gp, &ud).is_some());
    // A wrong vector of another kind is a failure.
    assert!(native::pvm_quirk(&form("Add_rm64_r64"), &gp, &with(Some(14))).is_none());
    // AAM flags: set aside only when the registers and the fault agree.
    let mut flags = none.clone();
    flags.rflags ^= ZF;
    assert!(native::pvm_quirk(&form("32/Aam_imm8"), &none, &flags).is_some());
    let mut regs = flags.clone();
    regs.gpr[reg::RAX] ^= 1;
    assert!(native::pvm_quirk(&form("32/Aam_imm8"), &none, &regs).is_none());
    assert!(native::pvm_quirk(&form("Add_rm64_r64"), &none, &flags).is_none());
}

#[test]
fn a_page_split_write_faults_with_cr2_at_the_start_of_the_missing_page() {
    // mov [r15], eax with R15 two bytes below the unmapped page: #PF(W|U), CR2 = the page.
    let out = interp(&case(&[0x41, 0x89, 0x07], &[(15, UNMAPPED - 2)]));
    let f = out.fault.expect("#PF");
    assert_eq!((f.vector, f.error_code, f.cr2), (14, 6, UNMAPPED));
    // A read reports the same address.
    let out = interp(&case(&[0x41, 0x8B, 0x07], &[(15, UNMAPPED - 2)]));
    assert_eq!(out.fault.unwrap().cr2, UNMAPPED);
}

#[test]
fn enter_checks_its_final_stack_pointer_after_the_pushes() {
    // enter 3, 0 with RFLAGS.AC: the push of RBP is aligned, the final RSP (−3) is not: #AC,
    // RSP and RBP as before, the pushed RBP left on the stack (as the CPU does).
    let mut c = case(&[0xC8, 0x03, 0x00, 0x00], &[(reg::RBP, 0x1122_3344)]);
    c.rflags |= emulator::cpu::state::flags::AC;
    let out = interp(&c);
    let f = out.fault.expect("#AC");
    assert_eq!((f.vector, f.rsp), (17, STACK_TOP));
    assert_eq!(out.gpr[reg::RBP], 0x1122_3344);
    assert_eq!(out.stack[0x800 - 8], 0x44);
    // Without AC it completes: RBP = the frame, RSP = frame − 3.
    let out = interp(&case(&[0xC8, 0x03, 0x00, 0x00], &[]));
    assert_eq!(out.fault, None);
    assert_eq!(
        (out.gpr[reg::RBP], out.gpr[reg::RSP]),
        (STACK_TOP - 8, STACK_TOP - 11)
    );
}

#[test]
fn cmpxchg8b_reads_its_destination_as_a_write() {
    // cmpxchg8b [r15] on the read-only page: #PF with P|W|U even though it compares first.
    let out = interp(&case(&[0x41, 0x0F, 0xC7, 0x0F], &[(15, READONLY)]));
    let f = out.fault.expect("#PF");
    assert_eq!((f.vector, f.error_code), (14, 7));
}

#[test]
fn compatibility_mode_cases_include_16_bit_addressing_through_the_alias_page() {
    use vmscope::conformance::native::Rng;
    use vmscope::conformance::native_forms::{generate, select_forms};
    let form = select_forms("32/Add_rm16_r16").remove(0);
    let mut rng = Rng::new(5);
    let data = [0u8; 4096];
    let cases: Vec<Case> = (0..400)
        .filter_map(|_| generate(&form, &mut rng, &data))
        .collect();
    // 66 67 01 /r disp16: operand and address size both 16 bits.
    let a16 = cases
        .iter()
        .filter(|c| c.code.starts_with(&[0x66, 0x67, 0x01]))
        .count();
    assert!(
        a16 > 10,
        "{a16} of {} cases use 16-bit addressing",
        cases.len()
    );
    // The alias maps the data page below 64 KiB: a write through it lands in the data page.
    let out = interp(&case32(
        &[0x66, 0x67, 0x89, 0x06, 0x10, 0xB0], // mov [0xB010], ax
        &[(reg::RAX, 0xBEEF)],
    ));
    assert_eq!((out.data[0x10], out.data[0x11]), (0xEF, 0xBE));
}

#[test]
fn the_command_selects_forms_by_mode_and_explains_what_it_sets_aside() {
    if !kvm_or_skip("the_command_selects_forms_by_mode_and_explains_what_it_sets_aside") {
        return;
    }
    let vmscope = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vmscope"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = vmscope(&[
        "conformance",
        "native",
        "--forms",
        "32/Add_rm32_r32,ud2",
        "--cases",
        "5",
        "--rules",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Not comparable on PVM"), "{stdout}");
    assert!(
        stdout.contains("cases that faulted natively: #UD 5"),
        "{stdout}"
    );
    assert!(stdout.ends_with("passed 10 of 10\nseed 1\n"), "{stdout}");
    let out = vmscope(&["conformance", "native", "--forms", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no form matches"));
}

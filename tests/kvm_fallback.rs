//! What KVM cannot emulate, the interpreter runs: on PVM, guest ring-0 code goes through KVM's
//! instruction emulator, which lacks INT3, x87 and more; vmscope executes that one instruction
//! on its interpreter with the vCPU's state and goes back to KVM (`--kvm-strict` stops instead).
//! Teaches: one machine, two engines — an engine switch for a single instruction.

mod support;

use support::*;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = vmscope(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ud` executes FSIN in ring 0, `triple-fault` INT3 with a broken IDT: both stop PVM's emulator.
const GUESTS: [&str; 2] = ["ud", "triple-fault"];

#[test]
fn kvm_runs_what_its_emulator_cannot_and_ends_as_the_interpreter_does() {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("kvm skipped: {why}");
        return;
    }
    let pvm = accel_kvm::detect_flavour() == accel_kvm::KvmFlavour::Pvm;
    for guest in GUESTS {
        let (want_status, want_serial, _) = run(&["run", guest, "--engine", "interp"]);
        let (status, serial, err) = run(&["run", guest, "--engine", "kvm", "--stats"]);
        assert_eq!(
            (status, &serial),
            (want_status, &want_serial),
            "{guest}: {err}"
        );
        if pvm {
            assert!(
                err.contains("emulated-for-kvm"),
                "{guest}: counted in --stats: {err}"
            );
            let (status, _, err) = run(&["--kvm-strict", "run", guest, "--engine", "kvm"]);
            assert_eq!(status, 2, "{guest}: --kvm-strict stops");
            assert!(err.contains("KVM could not emulate"), "{guest}: {err}");
        }
    }
}

//! Moving a running guest between engines: the guest must not notice.
//! Teaches: CpuState is complete — KVM and the interpreter can hand one CPU back and forth.

mod support;

use support::*;
use vmscope::{EngineChoice, RunOptions, SwitchPlan, SwitchUnit};

fn switched(from: EngineChoice, to: EngineChoice, after: u64, unit: SwitchUnit) -> RunOptions {
    RunOptions {
        engine: from,
        switch: Some(SwitchPlan { after, unit, to }),
        ..opts(from)
    }
}

#[test]
fn interp_to_interp_switch_is_invisible() {
    let (plain, plain_out) = run_builtin("hello64", opts(EngineChoice::Interp));
    let (sw, sw_out) = run_builtin(
        "hello64",
        switched(
            EngineChoice::Interp,
            EngineChoice::Interp,
            1000,
            SwitchUnit::Instructions,
        ),
    );
    assert_eq!(sw_out, plain_out);
    assert_eq!(sw.status, plain.status);
    assert_eq!(sw.engines.len(), 2);
    assert_eq!(sw.machine.cpu, plain.machine.cpu);
}

#[test]
fn kvm_to_interp_and_interp_to_kvm_give_identical_output() {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: KVM is not usable here: {why}");
        return;
    }
    let g = guests::by_name("hello64").unwrap();
    let (reference, reference_out) = run_builtin("hello64", opts(EngineChoice::Interp));
    assert_eq!(reference_out, expected_serial(g));
    for (from, to) in [
        (EngineChoice::Kvm, EngineChoice::Interp),
        (EngineChoice::Interp, EngineChoice::Kvm),
    ] {
        for after in [10, 60, 200] {
            let (sw, out) = run_builtin("hello64", switched(from, to, after, SwitchUnit::Io));
            assert_eq!(
                out, reference_out,
                "{from} → {to} after {after} I/O accesses"
            );
            assert_eq!(sw.status, reference.status);
            assert_eq!(
                sw.engines.len(),
                2,
                "{from} → {to} after {after}: {:?}",
                sw.engines
            );
            assert!(sw.engines[1].starts_with(&to.to_string()));
        }
    }
}

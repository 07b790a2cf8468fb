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

/// The guests the translator switch tests move between engines.
const BT_SWITCH_GUESTS: [&str; 3] = ["hello64", "kernel", "demo"];

/// interp and bt retire the same instructions at the same virtual times, so a switch between
/// them in either direction — at any instruction — leaves nothing for the guest to notice: the
/// serial output, the exit, the instruction count and the final `CpuState` all equal a plain
/// interpreter run. The translator starts with an empty cache after the switch. Switch points
/// are fractions of each guest's own length, so every one lands mid-run.
#[test]
fn interp_to_bt_and_bt_to_interp_are_invisible() {
    for name in BT_SWITCH_GUESTS {
        let g = guests::by_name(name).unwrap();
        let (reference, reference_out) = run_builtin(name, opts(EngineChoice::Interp));
        assert_eq!(reference_out, expected_serial(g), "{name} on interp");
        for (from, to) in [
            (EngineChoice::Interp, EngineChoice::Bt),
            (EngineChoice::Bt, EngineChoice::Interp),
        ] {
            let total = reference.machine.stats.instructions;
            for after in [1, total / 3, total * 2 / 3] {
                let (sw, out) =
                    run_builtin(name, switched(from, to, after, SwitchUnit::Instructions));
                let what = format!("{name}: {from} → {to} after {after} instructions");
                assert_eq!(out, reference_out, "{what}");
                assert_eq!(sw.exit, reference.exit, "{what}");
                assert_eq!(sw.status, expected_status(g), "{what}");
                assert_eq!(sw.engines.len(), 2, "{what}: {:?}", sw.engines);
                assert!(sw.engines[1].starts_with(&to.to_string()), "{what}");
                assert_eq!(sw.machine.stats.engine_switches, 1, "{what}");
                assert_eq!(
                    sw.machine.stats.instructions, reference.machine.stats.instructions,
                    "{what}"
                );
                assert_eq!(sw.machine.cpu, reference.machine.cpu, "{what}");
                // (One instruction on bt is a first visit: interpreted, not translated.)
                let bt_ran_one = from == EngineChoice::Bt && after == 1;
                assert!(
                    bt_ran_one || sw.machine.stats.translator.blocks_executed > 0,
                    "{what}: bt ran blocks"
                );
            }
        }
    }
}

/// bt reports its cache when it hands over (`--stats` prints it per engine), and its counters
/// stay in `Stats` after the switch.
#[test]
fn bt_reports_its_cache_when_switched_away() {
    let (sw, _) = run_builtin(
        "kernel",
        switched(
            EngineChoice::Bt,
            EngineChoice::Interp,
            50_000,
            SwitchUnit::Instructions,
        ),
    );
    assert_eq!(sw.reports.len(), 1, "{:?}", sw.reports);
    assert!(
        sw.reports[0].contains("translation cache"),
        "{}",
        sw.reports[0]
    );
    let t = &sw.machine.stats.translator;
    assert!(t.blocks_translated > 0 && t.blocks_executed > 0, "{t:?}");
}

/// KVM and the translator hand the guest to each other by I/O count (KVM cannot count
/// instructions without single-stepping); KVM writes RAM the translator never saw, so the
/// new translator starts with empty caches.
#[test]
fn bt_to_kvm_and_kvm_to_bt_give_identical_output() {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: KVM is not usable here: {why}");
        return;
    }
    for name in BT_SWITCH_GUESTS {
        let g = guests::by_name(name).unwrap();
        let (_, reference_out) = run_builtin(name, opts(EngineChoice::Interp));
        for (from, to) in [
            (EngineChoice::Bt, EngineChoice::Kvm),
            (EngineChoice::Kvm, EngineChoice::Bt),
        ] {
            for after in [10, 200] {
                let (sw, out) = run_builtin(name, switched(from, to, after, SwitchUnit::Io));
                let what = format!("{name}: {from} → {to} after {after} I/O accesses");
                assert_eq!(out, reference_out, "{what}");
                assert_eq!(sw.status, expected_status(g), "{what}");
                assert_eq!(sw.engines.len(), 2, "{what}: {:?}", sw.engines);
                assert!(sw.engines[1].starts_with(&to.to_string()), "{what}");
            }
        }
    }
}

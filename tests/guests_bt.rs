//! Every built-in guest on the binary translator, against the interpreter: same output, same
//! final `CpuState`, and — in lockstep — the same state at every translated-block boundary.
//! Teaches: a fast engine is only trusted when it agrees with the reference at every step.

mod support;

use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::machine::loader::{load_image_with_boot, BootMethod};
use emulator::{Engine, Exit, Machine, RunLimit};
use support::*;
use vmscope::EngineChoice;

#[test]
fn every_guest_gives_the_interpreters_output_and_final_state_on_bt() {
    for g in guests::all() {
        let (reference, ref_serial) = run_builtin(g.name, opts(EngineChoice::Interp));
        let (outcome, serial) = run_builtin(g.name, opts(EngineChoice::Bt));
        assert_eq!(serial, ref_serial, "serial output of {} on bt", g.name);
        assert_eq!(serial, expected_serial(g), "expected output of {}", g.name);
        assert_eq!(outcome.exit, reference.exit, "how {} ended", g.name);
        assert_eq!(
            outcome.machine.cpu, reference.machine.cpu,
            "final CpuState of {}",
            g.name
        );
        assert_eq!(
            outcome.machine.stats.instructions, reference.machine.stats.instructions,
            "instructions retired by {}",
            g.name
        );
        assert_eq!(
            outcome.machine.stats.interrupts, reference.machine.stats.interrupts,
            "interrupts taken by {}",
            g.name
        );
        assert_eq!(
            outcome.machine.bus.now_ns(),
            reference.machine.bus.now_ns(),
            "virtual time of {}",
            g.name
        );
    }
}

fn machine_for(name: &str, cmdline: &str) -> Machine {
    let g = guests::by_name(name).expect("built-in guest");
    let mut m = Machine::new(64 << 20).expect("machine");
    load_image_with_boot(
        &mut m,
        g.file_name,
        g.image,
        cmdline,
        BootMethod::Direct,
        guests::FIRMWARE_ROM,
    )
    .expect("load");
    m
}

/// Runs `bt` one block at a time and the interpreter for as many instructions, comparing
/// registers, virtual time and serial output after every block. Returns the blocks compared.
fn lockstep(name: &str, cmdline: &str, max_instructions: u64) -> u64 {
    let mut a = machine_for(name, cmdline);
    let mut b = machine_for(name, cmdline);
    let mut bt = BinaryTranslator::default();
    let mut interp = Interpreter::new();
    let mut blocks = 0;
    while b.stats.instructions < max_instructions {
        let before = b.stats.instructions;
        let exit_bt = bt.run_one_block(&mut b);
        let n = b.stats.instructions - before;
        let mut exit_interp = interp
            .run(&mut a, RunLimit::instructions(n))
            .expect("interpreter");
        if exit_bt != Exit::LimitReached && exit_interp == Exit::LimitReached {
            // bt saw the halt at the boundary after its last instruction; the interpreter
            // sees it at its next boundary.
            exit_interp = interp
                .run(&mut a, RunLimit::instructions(1))
                .expect("interpreter");
        }
        blocks += 1;
        assert_eq!(
            a.cpu, b.cpu,
            "{name}: state differs after block {blocks} ending at instruction {} (rip {:#x})",
            b.stats.instructions, b.cpu.rip
        );
        assert_eq!(a.stats.instructions, b.stats.instructions, "{name}: count");
        assert_eq!(a.bus.now_ns(), b.bus.now_ns(), "{name}: virtual time");
        assert_eq!(
            a.bus.take_serial_output(),
            b.bus.take_serial_output(),
            "{name}: serial output"
        );
        if exit_bt != Exit::LimitReached {
            assert_eq!(exit_interp, exit_bt, "{name}: exit");
            break;
        }
    }
    blocks
}

#[test]
fn bt_and_interp_agree_at_every_block_boundary_on_the_teaching_kernel() {
    let blocks = lockstep("kernel", "workloads=all iterations=3", 3_000_000);
    assert!(blocks > 1000, "only {blocks} blocks compared");
}

#[test]
fn bt_and_interp_agree_at_every_block_boundary_on_the_small_guests() {
    for name in [
        "hello-real",
        "hello32",
        "hello64",
        "demo",
        "paging-matrix",
        "platform",
        "sensitive",
    ] {
        let blocks = lockstep(name, CMDLINE, 2_000_000);
        assert!(blocks > 10, "{name}: only {blocks} blocks compared");
    }
}

#[test]
fn bt_translates_chains_and_reports_its_cache() {
    let mut m = machine_for("kernel", "workloads=compute:2");
    let mut bt = BinaryTranslator::default();
    let exit = bt.run(&mut m, RunLimit::UNLIMITED).expect("bt");
    assert!(matches!(exit, Exit::DebugExit { .. }), "{exit:?}");
    let s = bt.stats();
    assert!(s.blocks_translated > 50, "{s:?}");
    // The compute loops run from the cache: far more executions than translations, most
    // entered through chain links.
    assert!(s.blocks_executed > 100 * s.blocks_translated, "{s:?}");
    assert!(s.blocks_chained * 2 > s.blocks_executed, "{s:?}");
    let (live, used, capacity) = bt.cache_usage();
    assert!(live > 0 && used > 0 && used <= capacity);
    // The machine's Stats carry the same counters (they add up across engine switches).
    assert_eq!(m.stats.translator, s);
    let text = m.stats.report(&m.bus.stats);
    assert!(text.contains("binary translator:"), "{text}");
    let report = bt.report().expect("bt reports its cache");
    assert!(report.contains("KiB of host memory"), "{report}");
}

#[test]
fn a_tiny_cache_flushes_and_still_runs_correctly() {
    let cmdline = "workloads=all iterations=2";
    let mut o = opts(EngineChoice::Interp);
    o.cmdline = cmdline.into();
    let (reference, ref_serial) = run_builtin("kernel", o);
    let mut m = machine_for("kernel", cmdline);
    let mut bt = BinaryTranslator::new(64 << 10);
    let mut serial = Vec::new();
    let exit = loop {
        let exit = bt
            .run(&mut m, RunLimit::instructions(1_000_000))
            .expect("bt");
        serial.extend(m.bus.take_serial_output());
        if exit != Exit::LimitReached {
            break exit;
        }
    };
    assert_eq!(exit, reference.exit);
    assert_eq!(String::from_utf8_lossy(&serial), ref_serial);
    assert_eq!(m.cpu, reference.machine.cpu);
    assert!(bt.stats().capacity_flushes > 0, "{:?}", bt.stats());
}

#[test]
fn accessed_and_dirty_bits_written_into_cached_code_are_seen_by_both_emulated_engines() {
    // `jit pte-in-code`: a page-table entry is also the immediate of a MOVABS the guest runs
    // before and after the walker sets A and then D in it (QEMU and KVM see 0, 0x20, 0x60).
    for engine in [EngineChoice::Interp, EngineChoice::Bt] {
        let mut o = opts(engine);
        o.cmdline = "pte-in-code".into();
        let (outcome, serial) = run_builtin("jit", o);
        assert!(
            matches!(outcome.exit, Exit::DebugExit { value: 0x10, .. }),
            "{engine:?}: {:?}\n{serial}",
            outcome.exit
        );
        assert!(!serial.contains("FAIL"), "{engine:?}:\n{serial}");
    }
}

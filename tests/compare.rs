//! `vmscope compare` and the teaching kernel: every workload's RESULT line on the interpreter,
//! checksum agreement across engines, a corrupted result caught, the table and JSON shapes.
//! Teaches: a benchmark's numbers are only as good as the proof that each engine did the work.

use vmscope::compare::{self, suite, verify, CompareOptions, EngineId, Report};
use vmscope::{run_guest, EngineChoice, RunOptions};

/// Each workload with its own small count; pagefault passes 128 to cover a window release.
const COUNTS: [(&str, u64); 13] = [
    ("compute", 3),
    ("syscall", 11),
    ("int80", 12),
    ("portio", 13),
    ("mmio", 14),
    ("pagefault", 130),
    ("ptemod", 15),
    ("cr3switch", 16),
    ("divzero", 17),
    ("cpuid", 18),
    ("rdtsc", 19),
    ("cli_sti", 20),
    ("clock", 21),
];

fn interp_only(iterations: u64, workloads: &[&str]) -> CompareOptions {
    CompareOptions {
        engines: vec![EngineId::Interp],
        iterations: Some(iterations),
        modes: Vec::new(),
        workloads: workloads.iter().map(|w| w.to_string()).collect(),
        ..CompareOptions::for_builtin_kernel()
    }
}

#[test]
fn every_workload_prints_the_count_asked_for_and_the_host_computed_checksum() {
    let list: Vec<String> = COUNTS.iter().map(|(w, n)| format!("{w}:{n}")).collect();
    let opts = RunOptions {
        engine: EngineChoice::Interp,
        cmdline: format!("workloads={} iterations=999", list.join(",")),
        ..RunOptions::default()
    };
    let mut serial = Vec::new();
    let outcome = run_guest(
        "kernel.elf",
        guests::KERNEL_ELF,
        &opts,
        &mut serial,
        &mut |_| {},
    )
    .expect("the kernel runs on the interpreter");
    let serial = String::from_utf8(serial).unwrap();
    assert_eq!(outcome.status, 33, "exit 0x10 expected:\n{serial}");
    let lines = suite::parse_results(&serial).unwrap();
    assert_eq!(lines.len(), COUNTS.len(), "{serial}");
    for ((name, n), line) in COUNTS.iter().zip(&lines) {
        assert_eq!(line.workload, *name);
        assert_eq!(line.ops, *n, "{name}: ops");
        assert_eq!(
            Some(line.checksum),
            suite::expected_checksum(name, *n),
            "{name} × {n}: checksum"
        );
        assert!(line.guest_tsc > 0, "{name}: the TSC must advance");
    }
    // The kernel's machinery did its work: faults, spaces, I/O on the null device.
    let stats = &outcome.machine.stats;
    assert!(
        stats.exceptions.get("#PF").copied().unwrap_or(0) >= 130,
        "{stats:?}"
    );
    assert!(
        stats.exceptions.get("#DE").copied().unwrap_or(0) >= 17,
        "{stats:?}"
    );
    assert_eq!(
        outcome.machine.bus.stats.by_device.get("null"),
        Some(&(2 * 13 + 14))
    );
    assert!(serial.ends_with(" timer interrupts\n"), "{serial}");
}

#[test]
fn a_bad_command_line_stops_the_kernel_with_its_own_exit_value() {
    for cmdline in [
        "workloads=syscall,nosuch",
        "workloads=cpuid:12x",
        "iterations=3 workloads=cpuid:",
    ] {
        let opts = RunOptions {
            cmdline: cmdline.into(),
            ..RunOptions::default()
        };
        let mut serial = Vec::new();
        let outcome = run_guest(
            "kernel.elf",
            guests::KERNEL_ELF,
            &opts,
            &mut serial,
            &mut |_| {},
        )
        .unwrap();
        let expected = guests::qemu_exit_status(guests::exit::KERNEL_BAD_CMDLINE) as i32;
        assert_eq!(
            outcome.status,
            expected,
            "{cmdline}: {}",
            String::from_utf8_lossy(&serial)
        );
        assert!(suite::parse_results(&String::from_utf8_lossy(&serial))
            .unwrap()
            .is_empty());
    }
}

#[test]
fn compare_on_the_interpreter_checks_every_checksum_against_the_host() {
    let report = compare::run(&interp_only(6, &[]), &mut |_| {}).unwrap();
    assert_eq!(report.results.len(), suite::SUITE.len());
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    for m in &report.results {
        assert_eq!(m.ops, 6);
        assert_eq!(
            Some(&m.checksum),
            m.expected_checksum.as_ref(),
            "{}",
            m.workload
        );
        assert!(
            m.instructions_per_op.unwrap() > 0.0,
            "{}: interp counts",
            m.workload
        );
    }
    // compute's round is deterministic: the count Bochs's column is converted with (to 0.1%:
    // a timer interrupt may land in the loop).
    let compute = report.cell("compute", "interp").unwrap();
    let reference = suite::COMPUTE_INSTRUCTIONS_PER_OP as f64;
    let counted = compute.instructions_per_op.unwrap();
    assert!(
        (counted - reference).abs() < reference * 1e-3,
        "interp counts {counted} instructions per compute round; suite.rs says {reference}"
    );
    // The portio op is an OUT and an IN: two traps to the bus per op, and nothing else.
    assert_eq!(
        report.cell("portio", "interp").unwrap().exits_per_op,
        Some(2.0)
    );
}

#[test]
fn a_corrupted_engine_result_is_caught() {
    let report = compare::run(&interp_only(4, &["syscall", "cpuid"]), &mut |_| {}).unwrap();
    assert!(report.mismatches.is_empty());
    // Pretend a second engine ran the same counts and got one checksum wrong.
    let mut results = report.results.clone();
    let mut other: Vec<_> = report
        .results
        .iter()
        .map(|m| compare::Measurement {
            engine: "kvm".into(),
            ..m.clone()
        })
        .collect();
    other[1].checksum = "0x00000000deadbeef".into();
    results.extend(other);
    let mismatches = verify(&results);
    assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    assert_eq!(
        (
            mismatches[0].workload.as_str(),
            mismatches[0].engine.as_str()
        ),
        ("cpuid", "kvm")
    );
    assert_eq!(mismatches[0].against, "host reference");
    assert!(mismatches[0].to_string().contains("0x00000000deadbeef"));

    // A workload the host has no reference for is still checked engine against engine.
    for m in &mut results {
        m.workload = "custom".into();
        m.expected_checksum = None;
    }
    results.truncate(3);
    results[2].engine = "qemu-tcg".into();
    results[2].ops = results[0].ops;
    results[2].checksum = "0x0000000000000001".into();
    let mismatches = verify(&results);
    assert_eq!(mismatches.len(), 2, "{mismatches:?}"); // interp's two results differ, and qemu-tcg
    assert_eq!(mismatches[1].against, "interp");

    // The table says so loudly.
    let mut bad = report;
    bad.mismatches = verify(&{
        let mut r = bad.results.clone();
        r[0].checksum = "0x0000000000000bad".into();
        r
    });
    assert!(compare::table::render(&bad).contains("CHECKSUM MISMATCH: syscall on interp"));
}

#[test]
fn every_available_engine_agrees_with_the_interpreter() {
    let report = compare::run(
        &CompareOptions {
            iterations: Some(40),
            modes: Vec::new(),
            ..CompareOptions::for_builtin_kernel()
        },
        &mut |line| eprintln!("{line}"),
    )
    .unwrap();
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    let ran: Vec<&str> = report.engines.iter().map(|e| e.engine.as_str()).collect();
    eprintln!("engines here: {ran:?}, skipped: {:?}", report.skipped);
    // Each engine runs the suite less what it cannot compare (Bochs: no null device).
    let expected: usize = report
        .engines
        .iter()
        .map(|e| {
            let id = EngineId::parse(&e.engine).unwrap();
            let n = suite::SUITE
                .iter()
                .filter(|w| suite::not_comparable(w.name, id).is_none());
            n.count()
        })
        .sum();
    assert_eq!(report.results.len(), expected);
    for e in &report.engines {
        if e.engine.starts_with("kvm") || e.engine.starts_with("qemu") {
            assert_eq!(e.method, "guest_tsc");
            if e.engine.contains("kvm") {
                assert!(
                    e.label.contains(&accel_kvm::detect_flavour().to_string()),
                    "{}",
                    e.label
                );
            }
        }
    }
}

/// The report with every measured number replaced by a fixed one, so the layout can be
/// snapshotted: numbers change from run to run, the shape must not.
fn with_fixed_numbers(mut report: Report) -> Report {
    report.host.cpu = "CPU".into();
    report.host.tsc_ghz = 2.5;
    report.host.kvm = "KVM".into();
    for m in &mut report.results {
        m.ns_per_op = Some(1234.5);
        m.guest_ips = m.instructions_per_op.map(|_| 98_765_432.1);
        m.exits_per_op = m.exits_per_op.map(|_| 1.5);
        m.instructions_per_op = m.instructions_per_op.map(|_| 42.0);
        m.guest_tsc = 7;
    }
    report
}

#[test]
fn the_table_layout() {
    let mut report = with_fixed_numbers(compare::run(&interp_only(2, &[]), &mut |_| {}).unwrap());
    // A second column as an outside engine reports it: no exits, no instruction count.
    report.engines.push(compare::EngineColumn {
        engine: "qemu-kvm".into(),
        mode: "full".into(),
        label: "qemu-kvm (KVM flavour)".into(),
        method: "guest_tsc".into(),
    });
    let outside: Vec<_> = report
        .results
        .iter()
        .map(|m| compare::Measurement {
            engine: "qemu-kvm".into(),
            ns_per_op: Some(98_765.4),
            guest_ips: None,
            exits_per_op: None,
            instructions_per_op: None,
            ..m.clone()
        })
        .collect();
    report.results.extend(outside);
    report.skipped.push(compare::Skipped {
        engine: "kvm".into(),
        reason: "KVM is not usable: /dev/kvm does not exist".into(),
    });
    insta::assert_snapshot!(compare::table::render(&report));
}

/// Keys whose value may be null (where an engine cannot report it), with their other type.
const NULLABLE: [(&str, &str); 6] = [
    ("ns_per_op", "number | null"),
    ("guest_ips", "number | null"),
    ("exits_per_op", "number | null"),
    ("instructions_per_op", "number | null"),
    ("expected_checksum", "string | null"),
    ("qemu", "string | null"),
];

/// The JSON's shape: every key with the type of its value.
fn schema(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let field = |k: &String, v| match NULLABLE.iter().find(|(n, _)| n == k) {
        Some((_, t)) => Value::from(*t),
        None => schema(v),
    };
    match v {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), field(k, v))).collect())
        }
        Value::Array(items) => Value::Array(items.first().map(schema).into_iter().collect()),
        Value::Number(n) if n.is_f64() => "number".into(),
        Value::Number(_) => "integer".into(),
        Value::String(_) => "string".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

#[test]
fn the_json_schema() {
    let report = compare::run(&interp_only(2, &["syscall"]), &mut |_| {}).unwrap();
    let mut json = compare::json::to_value(&report);
    // Keys other tools read keep their names and meanings; this pins them.
    let first = &json["results"][0];
    for key in [
        "workload",
        "engine",
        "ops",
        "ns_per_op",
        "guest_ips",
        "exits_per_op",
        "checksum",
    ] {
        assert!(first.get(key).is_some(), "results[].{key} missing");
    }
    json["skipped"] = serde_json::json!([{"engine": "qemu-kvm", "reason": "why"}]);
    json["mismatches"] = serde_json::json!([]);
    insta::assert_json_snapshot!(schema(&json));
}

#[test]
fn modes_full_and_pv_give_a_column_each_with_the_same_checksums() {
    let opts = CompareOptions {
        modes: vec![compare::Mode::Full, compare::Mode::Pv],
        ..interp_only(20, &["ptemod", "pagefault", "cpuid"])
    };
    let report = compare::run(&opts, &mut |_| {}).unwrap();
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    let modes: Vec<&str> = report.engines.iter().map(|e| e.mode.as_str()).collect();
    assert_eq!(modes, ["full", "pv"]);
    for w in ["ptemod", "pagefault", "cpuid"] {
        let full = report.cell_in(w, "interp", "full").unwrap();
        let pv = report.cell_in(w, "interp", "pv").unwrap();
        assert_eq!(full.checksum, pv.checksum, "{w}");
    }
    // The PV kernel changes a PTE with one hypercall per op (an exit to the VMM) instead of a
    // store the shadow MMU traps; CPUID is the same either way.
    let ptemod_pv = report.cell_in("ptemod", "interp", "pv").unwrap();
    assert!(ptemod_pv.exits_per_op.unwrap() >= 1.0, "{ptemod_pv:?}");
    let ptemod_full = report.cell_in("ptemod", "interp", "full").unwrap();
    assert!(ptemod_full.exits_per_op.unwrap() < 0.5, "{ptemod_full:?}");
    let table = compare::table::render(&report);
    assert!(table.contains("interp pv"), "{table}");
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["mode"] == "pv"));
}

#[test]
fn a_workload_run_on_request_is_compared_only_when_named() {
    let report = compare::run(&interp_only(7, &["nmi"]), &mut |_| {}).unwrap();
    assert_eq!(report.results.len(), 1);
    let m = &report.results[0];
    assert_eq!((m.workload.as_str(), m.ops), ("nmi", 7));
    let want = suite::expected_checksum("nmi", 7).unwrap();
    assert_eq!(m.checksum, format!("{want:#018x}"));
    assert_eq!(m.expected_checksum.as_ref(), Some(&m.checksum));
    assert!(
        suite::SUITE.iter().all(|w| w.name != "nmi"),
        "not in the default suite"
    );
}

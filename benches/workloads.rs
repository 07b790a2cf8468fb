//! Criterion benches of the teaching kernel's workloads on the in-process engines (interp, bt, kvm).
//! Teaches: the same numbers as `vmscope compare`, tracked over time so a regression in an
//! engine (a slower exit path, a slower interpreter) shows up as a change here.
//!
//! Each sample boots the kernel with `workloads=NAME:iters` and reports the workload's own
//! time (see `vmscope::compare`: guest TSC on KVM, wall time minus a 0-op boot on interp), so
//! boot and VM creation stay out of the numbers. KVM is skipped where /dev/kvm is not usable.
//! The binary translator runs `compute` only — ring-3 straight-line code, where translation
//! pays (`workloads/bt/compute` beside `workloads/interp/compute`); the exit-heavy workloads are
//! mostly interpreter callouts on bt, and `vmscope compare` shows them all.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use vmscope::compare::{engines, measure_one, suite, CompareOptions, EngineId};

fn workloads(c: &mut Criterion) {
    let tsc_hz = engines::host_tsc_hz(Duration::from_millis(50));
    let opts = CompareOptions::for_builtin_kernel();
    for engine in [EngineId::Interp, EngineId::Bt, EngineId::Kvm] {
        if let Err(why) = engine.available() {
            eprintln!("skipping {}: {why}", engine.name());
            continue;
        }
        let mut group = c.benchmark_group(format!("workloads/{}", engine.name()));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        let on_this_engine = |name: &str| engine != EngineId::Bt || name == "compute";
        for w in suite::SUITE.iter().filter(|w| on_this_engine(w.name)) {
            group.bench_function(w.name, |b| {
                b.iter_custom(|iters| {
                    let m = measure_one(engine, &opts, w.name, iters.max(1), tsc_hz)
                        .unwrap_or_else(|e| panic!("{} on {}: {e:#}", w.name, engine.name()));
                    assert_eq!(
                        Some(&m.checksum),
                        m.expected_checksum.as_ref(),
                        "{} on {} computed something else",
                        w.name,
                        engine.name()
                    );
                    Duration::from_secs_f64(m.ns_per_op.unwrap_or(0.0) * iters as f64 / 1e9)
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, workloads);
criterion_main!(benches);

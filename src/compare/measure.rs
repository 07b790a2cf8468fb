//! Turning boots into numbers: which boots to run for a cell and how to divide.
//! Teaches: measuring a short operation means subtracting everything around it — the boot,
//! the VM's creation, the printing — either by a second run without the operation or by a
//! clock that only runs around the loop (the guest's TSC).

use anyhow::{bail, Result};

use super::engines::{self, Boot, EngineId};
use super::suite::{self, ResultLine};
use super::{CompareOptions, Measurement, Mode};

/// Measures every workload with two boots each (N operations and 0), so `Stats` differences
/// give exits per operation; time comes from the guest TSC where it is host time, else from
/// the difference of the two wall times. In-process engines and Bochs.
pub fn two_boots(
    engine: EngineId,
    mode: Mode,
    opts: &CompareOptions,
    workloads: &[String],
    count: &dyn Fn(&str) -> u64,
    host_tsc_hz: f64,
    progress: &mut dyn FnMut(String),
) -> Result<(&'static str, Vec<Measurement>)> {
    let label = mode.label(engine);
    let mut method = "wall_minus_baseline";
    let mut cells = Vec::new();
    for name in workloads {
        let n = count(name);
        progress(format!("compare: {label}: {name} × {n}"));
        let run = |ops: u64| -> Result<(Boot, ResultLine)> {
            let cmdline = format!("workloads={name}:{ops}");
            let boot = engines::boot(
                engine,
                &opts.image_name,
                &opts.image,
                &cmdline,
                host_tsc_hz,
                mode,
            )?;
            let line = single_result(&boot.serial, name, ops, &label)?;
            Ok((boot, line))
        };
        // The baseline's wall time matters only without a host-time TSC; the faster of two
        // boots is the one least disturbed by other work on the host.
        let (mut base, _) = run(0)?;
        if base.guest_tsc_hz.is_none() {
            let (again, _) = run(0)?;
            if again.wall < base.wall {
                base = again;
            }
        }
        let (full, line) = run(n)?;
        let per_op = |d: f64| (n > 0).then(|| d / n as f64);
        let wall_ns = full.wall.saturating_sub(base.wall).as_nanos() as f64;
        let ns_per_op = match full.guest_tsc_hz {
            Some(hz) => {
                method = "guest_tsc";
                per_op(line.guest_tsc as f64 / hz * 1e9)
            }
            None => per_op(wall_ns),
        };
        let diff = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?) as f64);
        let instructions = diff(full.instructions, base.instructions);
        // An engine that does not count: the interpreter's count for the same work.
        let reference = suite::instructions_per_op(name)
            .filter(|_| engine.speed_from_reference_count())
            .map(|i| (i * n) as f64);
        let cell = Measurement {
            workload: name.clone(),
            engine: engine.name().into(),
            mode: mode.name().into(),
            ops: n,
            ns_per_op,
            guest_ips: instructions
                .or(reference)
                .filter(|_| wall_ns > 0.0)
                .map(|i| i / wall_ns * 1e9),
            exits_per_op: diff(full.exits, base.exits).and_then(per_op),
            checksum: hex(line.checksum),
            expected_checksum: suite::expected_checksum(name, n).map(hex),
            guest_tsc: line.guest_tsc,
            instructions_per_op: instructions.and_then(per_op),
        };
        progress(format!("compare: {label}: {name}: {}", summary(&cell)));
        cells.push(cell);
    }
    Ok((method, cells))
}

/// Measures every workload in one boot (`workloads=a:N,b:M,…`), timing each by its guest TSC:
/// for QEMU, whose start-up alone takes seconds under PVM.
pub fn one_boot(
    engine: EngineId,
    mode: Mode,
    opts: &CompareOptions,
    workloads: &[String],
    count: &dyn Fn(&str) -> u64,
    host_tsc_hz: f64,
    progress: &mut dyn FnMut(String),
) -> Result<(&'static str, Vec<Measurement>)> {
    let label = mode.label(engine);
    let list: Vec<String> = workloads
        .iter()
        .map(|w| format!("{w}:{}", count(w)))
        .collect();
    let cmdline = format!("workloads={}", list.join(","));
    progress(format!("compare: {label}: one boot, {cmdline}"));
    let boot = engines::boot(
        engine,
        &opts.image_name,
        &opts.image,
        &cmdline,
        host_tsc_hz,
        mode,
    )?;
    let lines = suite::parse_results(&boot.serial).map_err(anyhow::Error::msg)?;
    if lines.len() != workloads.len() {
        bail!(
            "{label}: {} RESULT lines for {} workloads:\n{}",
            lines.len(),
            workloads.len(),
            boot.serial
        );
    }
    let hz = boot.guest_tsc_hz.unwrap_or(host_tsc_hz);
    let mut cells = Vec::new();
    for (name, line) in workloads.iter().zip(lines) {
        let n = count(name);
        check_line(&line, name, n, &label)?;
        let cell = Measurement {
            workload: name.clone(),
            engine: engine.name().into(),
            mode: mode.name().into(),
            ops: n,
            ns_per_op: (n > 0).then(|| line.guest_tsc as f64 / hz * 1e9 / n as f64),
            guest_ips: None,
            exits_per_op: None,
            checksum: hex(line.checksum),
            expected_checksum: suite::expected_checksum(name, n).map(hex),
            guest_tsc: line.guest_tsc,
            instructions_per_op: None,
        };
        progress(format!("compare: {label}: {name}: {}", summary(&cell)));
        cells.push(cell);
    }
    Ok(("guest_tsc", cells))
}

pub(crate) fn single_result(serial: &str, name: &str, ops: u64, label: &str) -> Result<ResultLine> {
    let mut lines = suite::parse_results(serial).map_err(anyhow::Error::msg)?;
    if lines.len() != 1 {
        bail!(
            "{label}: expected one RESULT line for {name}, got {}:\n{serial}",
            lines.len()
        );
    }
    let line = lines.remove(0);
    check_line(&line, name, ops, label)?;
    Ok(line)
}

/// The kernel must report the workload and the count it was asked for.
fn check_line(line: &ResultLine, name: &str, ops: u64, label: &str) -> Result<()> {
    if line.workload != name || line.ops != ops {
        bail!(
            "{label}: asked for {name} × {ops}, the kernel reported {} × {}",
            line.workload,
            line.ops
        );
    }
    Ok(())
}

pub fn hex(v: u64) -> String {
    format!("0x{v:016x}")
}

fn summary(m: &Measurement) -> String {
    let mut s = m
        .ns_per_op
        .map_or("no operations".to_string(), |ns| format!("{ns:.1} ns/op"));
    if let Some(e) = m.exits_per_op {
        s += &format!(", {e:.2} exits/op");
    }
    if let Some(ips) = m.guest_ips {
        s += &format!(", {:.1} M guest instructions/s", ips / 1e6);
    }
    s
}

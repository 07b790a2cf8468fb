//! The comparison as a text table: rows = workloads, columns = engines.
//! Teaches: how to read the numbers — time per operation on the host, the exits behind it,
//! and for `compute` the guest's speed — with the method and the checksums stated below.

use std::fmt::Write;

use super::suite;
use super::Report;

/// Renders the report: header, one row per workload, then notes and any checksum mismatch.
pub fn render(report: &Report) -> String {
    let mut header = vec!["workload".to_string(), "ring".to_string()];
    header.extend(report.engines.iter().map(|e| e.label.clone()));
    let mut rows = vec![header];
    for w in &report.workloads {
        let ring = suite::workload(w).map_or("?".to_string(), |s| s.ring.to_string());
        let mut row = vec![w.clone(), ring];
        for e in &report.engines {
            row.push(
                report
                    .cell_in(w, &e.engine, &e.mode)
                    .map_or("-".into(), |m| cell(w, m)),
            );
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vmscope compare: {} on {} — host time per operation (exits per operation)",
        report.image, report.host.cpu
    );
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (text, w))| {
                if c < 2 {
                    format!("{text:<w$}")
                } else {
                    format!("{text:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if i == 0 {
            let total = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    notes(report, &mut out);
    out
}

/// One cell: time per op (compute: guest speed), then exits per op where reported.
fn cell(workload: &str, m: &super::Measurement) -> String {
    let Some(ns) = m.ns_per_op else {
        return "0 ops".into();
    };
    let mut s = if workload == "compute" {
        match m.guest_ips {
            Some(ips) => format!("{:.1} M instr/s", ips / 1e6),
            None => format!("{} ops/s", si(1e9 / ns)),
        }
    } else {
        duration(ns)
    };
    if let Some(e) = m.exits_per_op {
        let _ = write!(s, " ({e:.2})");
    }
    s
}

/// "812 ns", "12.3 µs", "1.25 ms", "2.00 s".
pub fn duration(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.1} ns"),
        n if n < 1e6 => format!("{:.2} µs", n / 1e3),
        n if n < 1e9 => format!("{:.2} ms", n / 1e6),
        n => format!("{:.2} s", n / 1e9),
    }
}

/// 7310 -> "7.31 k".
fn si(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.2} k", v / 1e3),
        v => format!("{v:.1}"),
    }
}

fn notes(report: &Report, out: &mut String) {
    let _ = writeln!(out);
    for w in &report.workloads {
        let Some(s) = suite::workload(w) else {
            continue;
        };
        let counted = report
            .results
            .iter()
            .find(|m| m.workload == *w && m.instructions_per_op.is_some());
        let extra = counted
            .and_then(|m| m.instructions_per_op)
            .map_or(String::new(), |i| format!(", {i:.0} guest instructions"));
        let _ = writeln!(out, "  {:<10} one op = {}{extra}", w, s.op);
    }
    let _ = writeln!(out);
    for e in &report.engines {
        let how = match e.method.as_str() {
            "guest_tsc" => format!(
                "guest TSC around the loop (host TSC {:.3} GHz)",
                report.host.tsc_ghz
            ),
            _ => "host wall time of a boot minus a boot with 0 ops".into(),
        };
        let _ = writeln!(out, "  {}: time from the {how}", e.label);
    }
    for s in &report.skipped {
        let _ = writeln!(out, "  {}: skipped, {}", s.engine, s.reason);
    }
    let with_ref = report
        .results
        .iter()
        .filter(|m| m.expected_checksum.is_some())
        .count();
    if report.mismatches.is_empty() {
        let _ = writeln!(
            out,
            "  checksums: {} results, all agree ({with_ref} checked against the host's reference)",
            report.results.len()
        );
    } else {
        for m in &report.mismatches {
            let _ = writeln!(out, "  CHECKSUM MISMATCH: {m}");
        }
    }
}

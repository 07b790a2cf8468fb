//! A bar chart of the comparison as SVG, written by hand: a log-scale axis of host time per
//! operation, one group of bars per workload, one colour per engine.
//! Teaches: a log scale is the honest way to show numbers that differ by factors of 10,000;
//! and an SVG is just text — rectangles and labels at computed coordinates.

use std::fmt::Write;

use super::table::duration;
use super::Report;

const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 110.0;
const RIGHT: f64 = 30.0;
const BAR_H: f64 = 12.0;
const GROUP_GAP: f64 = 10.0;
const TOP: f64 = 70.0;
const COLOURS: [&str; 6] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1",
];

/// The chart for `report` (an empty axis when nothing was measured).
pub fn render(report: &Report) -> String {
    let values: Vec<f64> = report
        .results
        .iter()
        .filter_map(|m| m.ns_per_op)
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(0.0, f64::max);
    let (lo_exp, hi_exp) = if values.is_empty() {
        (0, 3)
    } else {
        (
            lo.log10().floor() as i32,
            (hi.log10().ceil() as i32).max(lo.log10().floor() as i32 + 1),
        )
    };
    let plot_w = WIDTH - LABEL_W - RIGHT;
    let x = |ns: f64| {
        let f = (ns.max(10f64.powi(lo_exp)).log10() - lo_exp as f64) / (hi_exp - lo_exp) as f64;
        LABEL_W + f * plot_w
    };
    let n_eng = report.engines.len().max(1) as f64;
    let group_h = n_eng * BAR_H + GROUP_GAP;
    let height = TOP + report.workloads.len() as f64 * group_h + 40.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LABEL_W}" y="18" font-size="14" font-weight="bold">{}</text>"#,
        escape(&format!(
            "vmscope compare: host time per operation (log scale, lower is faster) — {}",
            report.image
        ))
    );
    for (i, e) in report.engines.iter().enumerate() {
        let lx = LABEL_W + i as f64 * 200.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="30" width="10" height="10" fill="{}"/><text x="{}" y="39">{}</text>"#,
            COLOURS[i % COLOURS.len()],
            lx + 14.0,
            escape(&e.label)
        );
    }
    let axis_bottom = height - 30.0;
    for exp in lo_exp..=hi_exp {
        let gx = x(10f64.powi(exp));
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="{}" x2="{gx:.1}" y2="{axis_bottom}" stroke="#ccc"/><text x="{gx:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP - 12.0,
            axis_bottom + 14.0,
            escape(
                &duration(10f64.powi(exp))
                    .replace(".0 ", " ")
                    .replace(".00 ", " ")
            )
        );
    }
    for (g, w) in report.workloads.iter().enumerate() {
        let gy = TOP + g as f64 * group_h;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LABEL_W - 6.0,
            gy + n_eng * BAR_H / 2.0 + 4.0,
            escape(w)
        );
        for (i, e) in report.engines.iter().enumerate() {
            let Some(ns) = report
                .cell_in(w, &e.engine, &e.mode)
                .and_then(|m| m.ns_per_op)
            else {
                continue;
            };
            let y = gy + i as f64 * BAR_H;
            let bw = (x(ns) - LABEL_W).max(1.0);
            let _ = writeln!(
                s,
                r#"<rect x="{LABEL_W}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                BAR_H - 2.0,
                COLOURS[i % COLOURS.len()],
                escape(&format!("{w} on {}: {}", e.label, duration(ns)))
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn write(report: &Report, path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::write(path, render(report)).with_context(|| format!("writing {}", path.display()))
}

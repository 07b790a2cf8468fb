//! The JSON form of a report: a stable interface for scripts, the book and the GUI.
//! Teaches: nothing new — but its keys are a contract: `workload`, `engine`, `ops`,
//! `ns_per_op`, `guest_ips` (null where not countable), `exits_per_op`, `checksum` keep their
//! meaning; new keys may be added.

use anyhow::{Context, Result};

use super::Report;

/// Schema version: bump when a key changes meaning (never done so far).
pub const SCHEMA: u32 = 1;

/// The report as a JSON value.
pub fn to_value(report: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(report).expect("a report is plain data");
    v["schema"] = SCHEMA.into();
    v["vmscope"] = env!("CARGO_PKG_VERSION").into();
    v
}

/// Pretty-printed JSON, as `--json FILE` writes it.
pub fn to_string(report: &Report) -> String {
    serde_json::to_string_pretty(&to_value(report)).expect("a JSON value prints") + "\n"
}

pub fn write(report: &Report, path: &std::path::Path) -> Result<()> {
    std::fs::write(path, to_string(report)).with_context(|| format!("writing {}", path.display()))
}

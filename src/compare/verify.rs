//! Checksum agreement: every engine must have done the same work.
//! Teaches: a faster engine that computes something else is not faster; comparing against a
//! reference computed on the host (and between engines) turns a wrong result into an error.

use serde::Serialize;

use super::Measurement;

/// One disagreement, with both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub workload: String,
    pub engine: String,
    /// "full" or "pv".
    pub mode: String,
    pub ops: u64,
    pub checksum: String,
    /// The host's reference value, or the checksum of the engine named in `against`.
    pub expected: String,
    /// "host reference" or the other engine's name.
    pub against: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = if self.mode == "pv" { " pv" } else { "" };
        write!(
            f,
            "{} on {}{mode} ({} ops): checksum {}, but {} says {}",
            self.workload, self.engine, self.ops, self.checksum, self.against, self.expected
        )
    }
}

/// Every result that disagrees with the host's reference for its count, and — for results
/// with the same workload and count — with the first engine that produced it.
pub fn verify(results: &[Measurement]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for (i, m) in results.iter().enumerate() {
        if let Some(expected) = &m.expected_checksum {
            if *expected != m.checksum {
                out.push(mismatch(m, expected, "host reference"));
                continue;
            }
        }
        let first = results[..i]
            .iter()
            .find(|o| o.workload == m.workload && o.ops == m.ops);
        if let Some(o) = first {
            if o.checksum != m.checksum {
                let against = match o.mode.as_str() {
                    "pv" => format!("{} pv", o.engine),
                    _ => o.engine.clone(),
                };
                out.push(mismatch(m, &o.checksum, &against));
            }
        }
    }
    out
}

fn mismatch(m: &Measurement, expected: &str, against: &str) -> Mismatch {
    Mismatch {
        workload: m.workload.clone(),
        engine: m.engine.clone(),
        mode: m.mode.clone(),
        ops: m.ops,
        checksum: m.checksum.clone(),
        expected: expected.to_string(),
        against: against.to_string(),
    }
}

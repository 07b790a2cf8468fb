//! Where two emulated engines part: the first instruction count after which their states differ.
//! Teaches: bisection over a deterministic run — the same case with a smaller instruction limit is an earlier snapshot.

use super::compare::emulated;
use super::gen::Case;
use super::modes;
use super::run::{current_instruction, EngineKind, Runner};

/// The smallest instruction limit at which `a` and `b` (both emulated) end differently, and a
/// line saying where: the instruction the reference was about to run there.
pub fn first_divergence(case: &Case, a: EngineKind, b: EngineKind, limit: u64) -> Option<String> {
    if a == EngineKind::Kvm || b == EngineKind::Kvm {
        return None;
    }
    let (mut ra, mut rb) = (Runner(a), Runner(b));
    let mut differs = |n: u64| {
        let (x, y) = (ra.run(case, n), rb.run(case, n));
        (!emulated(&x, &y).is_empty()).then_some(x)
    };
    differs(limit)?;
    let (mut lo, mut hi) = (0u64, limit); // lo agrees, hi differs
    if differs(0).is_some() {
        return Some("the engines differ before the first instruction".into());
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if differs(mid).is_some() {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // The state both agree on after `lo` instructions: what ran next.
    let before = ra.run(case, lo);
    let mut m = modes::new_machine(case.mode, &[]);
    m.cpu = before.cpu.clone();
    m.ram.as_mut_slice().copy_from_slice(&before.ram);
    let text = current_instruction(&m).map_or("(undecodable)".to_string(), |i| i.to_string());
    Some(format!(
        "first divergence: after {lo} agreeing instructions, at rip {:#x}: {text}",
        before.cpu.rip
    ))
}

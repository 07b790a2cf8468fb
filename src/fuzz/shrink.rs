//! Shrinking a case that shows a difference: drop pieces, then bytes, while the difference stays.
//! Teaches: delta debugging — a minimal failing input explains a bug better than a long random one.
//!
//! First whole pieces are dropped (halves, quarters, … single pieces; references are kept
//! pointing at the same instruction by [`Case::without`]), then the laid-out code is taken byte
//! by byte and bytes are dropped the same way. Every candidate is run again on both engines; it
//! is kept when the two still differ.

use super::gen::Case;

/// Shrinks `case` while `differs` holds, trying at most `budget` candidates.
pub fn shrink(case: &Case, differs: &mut dyn FnMut(&Case) -> bool, budget: usize) -> Case {
    let mut tries = 0;
    let pieces = drop_runs(case.clone(), differs, &mut tries, budget);
    let bytes = Case::from_bytes(pieces.mode, &pieces.code());
    let smaller = drop_runs(bytes, differs, &mut tries, budget);
    // Keep the piece form when byte shrinking won nothing (it replays the same bytes).
    if smaller.code().len() < pieces.code().len() {
        smaller
    } else {
        pieces
    }
}

fn drop_runs(
    mut case: Case,
    differs: &mut dyn FnMut(&Case) -> bool,
    tries: &mut usize,
    budget: usize,
) -> Case {
    let mut run = case.items.len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        while start < case.items.len() && *tries < budget {
            let end = (start + run).min(case.items.len());
            let candidate = case.without(start..end);
            *tries += 1;
            if differs(&candidate) {
                case = candidate;
            } else {
                start = end;
            }
        }
        if run == 1 || *tries >= budget {
            return case;
        }
        run = run.div_ceil(2);
    }
}

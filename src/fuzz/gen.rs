//! A fuzz case: a list of pieces of code (random bytes, or instructions), laid out at the mode's code address.
//! Teaches: how a structured test generator keeps jumps and self-modifying stores pointing at the right bytes as code moves.
//!
//! A piece either is fixed bytes or refers to another piece: a near branch, a store into that
//! piece's bytes, a far jump to it. References are by piece index, so dropping pieces while
//! shrinking keeps every remaining jump aimed at the same instruction (or at the one that now
//! takes the dropped one's place); [`Case::code`] lays the pieces out and fills in addresses.

use super::gen_ops::{self, Env};
use super::modes;
use super::Mode;
use crate::conformance::native::Rng;

/// One piece of a case's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Bytes(Vec<u8>),
    /// An instruction that names the address of piece `to` (plus `delta`, reduced modulo that
    /// piece's length; `to` = the number of pieces means the end marker).
    Ref {
        to: usize,
        delta: u16,
        form: RefForm,
    },
}

/// How a reference is encoded: always `head`, an address field, then `tail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefForm {
    /// The target relative to the end of this instruction (a near JMP, Jcc, CALL, LOOP).
    Rel { head: Vec<u8>, width: u8 },
    /// The target minus `base` (a segment base), or relative to the end of the instruction
    /// when `rip_relative`; then `tail` (an immediate).
    Abs {
        head: Vec<u8>,
        width: u8,
        base: u64,
        rip_relative: bool,
        tail: Vec<u8>,
    },
    /// A far pointer: the target minus `base` as the offset, then `selector`.
    Far {
        head: Vec<u8>,
        width: u8,
        base: u64,
        selector: u16,
    },
}

impl Item {
    pub fn len(&self) -> usize {
        match self {
            Item::Bytes(b) => b.len(),
            Item::Ref { form, .. } => match form {
                RefForm::Rel { head, width } => head.len() + *width as usize,
                RefForm::Abs {
                    head, width, tail, ..
                } => head.len() + *width as usize + tail.len(),
                RefForm::Far { head, width, .. } => head.len() + *width as usize + 2,
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn encode(&self, at: u64, target: u64, out: &mut Vec<u8>) {
        let field = |out: &mut Vec<u8>, v: u64, width: u8| {
            out.extend_from_slice(&v.to_le_bytes()[..width as usize]);
        };
        let end = at + self.len() as u64;
        match self {
            Item::Bytes(b) => out.extend_from_slice(b),
            Item::Ref { form, .. } => match form {
                RefForm::Rel { head, width } => {
                    out.extend_from_slice(head);
                    field(out, target.wrapping_sub(end), *width);
                }
                RefForm::Abs {
                    head,
                    width,
                    base,
                    rip_relative,
                    tail,
                } => {
                    out.extend_from_slice(head);
                    let v = if *rip_relative {
                        target.wrapping_sub(end)
                    } else {
                        target.wrapping_sub(*base)
                    };
                    field(out, v, *width);
                    out.extend_from_slice(tail);
                }
                RefForm::Far {
                    head,
                    width,
                    base,
                    selector,
                } => {
                    out.extend_from_slice(head);
                    field(out, target.wrapping_sub(*base), *width);
                    field(out, *selector as u64, 2);
                }
            },
        }
    }
}

/// A generated (or replayed) case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub mode: Mode,
    pub items: Vec<Item>,
}

impl Case {
    /// A case made of fixed bytes (a finding read back from a file).
    pub fn from_bytes(mode: Mode, bytes: &[u8]) -> Case {
        Case {
            mode,
            items: bytes.iter().map(|&b| Item::Bytes(vec![b])).collect(),
        }
    }

    /// The case's code laid out at the mode's code address (without the end marker).
    pub fn code(&self) -> Vec<u8> {
        let start = modes::code_start(self.mode);
        let mut addrs = Vec::with_capacity(self.items.len() + 1);
        let mut at = start;
        for item in &self.items {
            addrs.push(at);
            at += item.len() as u64;
        }
        addrs.push(at);
        let mut out = Vec::with_capacity((at - start) as usize);
        for (i, item) in self.items.iter().enumerate() {
            let target = match item {
                Item::Bytes(_) => 0,
                Item::Ref { to, delta, .. } => {
                    let to = (*to).min(self.items.len());
                    let len = self.items.get(to).map_or(0, Item::len) as u64;
                    addrs[to] + if len > 0 { *delta as u64 % len } else { 0 }
                }
            };
            item.encode(addrs[i], target, &mut out);
        }
        out
    }

    /// The same case without the pieces in `range`: references past them move down, references
    /// into them now name the piece that follows.
    pub fn without(&self, range: std::ops::Range<usize>) -> Case {
        let n = range.len();
        let items = self
            .items
            .iter()
            .enumerate()
            .filter(|(i, _)| !range.contains(i))
            .map(|(_, item)| match item {
                Item::Ref { to, delta, form } => Item::Ref {
                    to: if *to >= range.end {
                        to - n
                    } else {
                        (*to).min(range.start)
                    },
                    delta: if range.contains(to) { 0 } else { *delta },
                    form: form.clone(),
                },
                other => other.clone(),
            })
            .collect();
        Case {
            mode: self.mode,
            items,
        }
    }
}

/// How many pieces a case has at most.
pub const MAX_ITEMS: u64 = 48;

/// Generates case number `index` of the batch with `seed` (cases are independent: case k of a
/// seed is the same whatever ran before it).
pub fn generate(mode: Mode, seed: u64, index: u64) -> Case {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.next_u64();
    let mut g = gen_ops::Gen::new(&mut rng, Env::initial(mode));
    // A quarter of the cases are only random bytes; the rest mix pieces of both kinds.
    let only_bytes = g.rng.below(4) == 0;
    let target = 1 + g.rng.below(MAX_ITEMS);
    while (g.items.len() as u64) < target {
        if only_bytes || g.rng.below(10) == 0 {
            g.random_bytes();
        } else {
            g.structured();
        }
    }
    Case {
        mode,
        items: g.items,
    }
}

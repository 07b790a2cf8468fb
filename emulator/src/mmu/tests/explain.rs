//! The explanation of a walk: the entries, their bits, the rules checked and the exact fault.
//! Teaches: an explanation is tested like output: exact lines, and no side effects.

use super::*;
use crate::mmu::walk::Level;
use crate::mmu::{explain, Access, PagingMode};

#[test]
fn a_four_level_walk_is_explained_level_by_level_without_side_effects() {
    let mut m = machine();
    long_mode(&mut m);
    let mut next = 0x10_000;
    map4(&mut m, &mut next, 0x40_1000, 0x7000, P | RW | US);
    let e = explain(&mut m, 0x40_1234, Access::write(false));
    assert_eq!(e.mode, PagingMode::FourLevel);
    let levels: Vec<Level> = e.steps.iter().map(|s| s.level).collect();
    assert_eq!(levels, [Level::Pml4, Level::Pdpt, Level::Pd, Level::Pt]);
    assert_eq!(e.steps[3].index, 1);
    assert_eq!(e.outcome.unwrap().phys, 0x7234);
    let text = e.to_string();
    assert!(
        text.contains("4. PTE   index   1 (linear bits 20:12)"),
        "{text}"
    );
    assert!(
        text.contains("result: physical address 0x7234 (4 KiB page)"),
        "{text}"
    );
    assert!(
        text.contains("a real access would also set: A in the PML4E"),
        "{text}"
    );
    let pte = pte_addr4(&mut m, 0x40_1000);
    assert_eq!(m.phys_read(pte, 8) & A, 0, "explaining sets no bits");
}

#[test]
fn a_refused_access_names_the_rule_and_the_error_code() {
    let mut m = machine();
    long_mode(&mut m);
    m.cpu.cr4 |= CR4_SMEP;
    let mut next = 0x10_000;
    map4(&mut m, &mut next, 0x40_1000, 0x7000, P | RW | US);
    let text = explain(&mut m, 0x40_1000, Access::fetch(false)).to_string();
    assert!(text.contains("[FAIL] CR4.SMEP=1"), "{text}");
    assert!(text.contains("result: #PF — SMEP"), "{text}");
    assert!(text.contains("error code 0x11 = P=1"), "{text}");
    let text = explain(&mut m, 0x80_0000, Access::read(true)).to_string();
    assert!(text.contains("3. PDE"), "{text}");
    assert!(text.contains("result: #PF — PDE not present"), "{text}");
    assert!(
        text.contains("error code 0x4 = P=0 (not present) W=0 U=1"),
        "{text}"
    );
}

//! Write-protect tracing: guest writes to page tables invalidate exactly the shadows built from them.
//! Teaches: a shadow stays correct only if every write to a page it copied is noticed.

use super::*;
use crate::mmu::{Access, Mmu, PageFault};

fn read(mmu: &mut Mmu, m: &mut Machine, lin: u64) -> Result<u64, PageFault> {
    mmu.translate(m, lin, Access::read(false))
}

/// A guest store: translate for writing, then write (as the interpreter does).
fn store(mmu: &mut Mmu, m: &mut Machine, lin: u64, size: usize, value: u64) {
    let phys = mmu.translate(m, lin, Access::write(false)).unwrap();
    m.phys_write(phys, size, value);
}

/// CR3 0x1000 maps 0x40_0000 → 0x20_0000 and identity-maps the low 1 MiB (where the tables
/// are), so the guest can edit its tables through linear = physical addresses.
fn setup() -> (Machine, u64) {
    let mut m = machine();
    long_mode(&mut m);
    let mut next = 0x10_0000;
    for page in (0..0x10_0000).step_by(0x1000) {
        map4(&mut m, &mut next, page, page, P | RW);
    }
    map4(&mut m, &mut next, 0x40_0000, 0x20_0000, P | RW);
    (m, next)
}

#[test]
fn a_guest_write_to_a_pte_invalidates_its_shadow_entry() {
    let (mut m, _) = setup();
    let mut mmu = Mmu::default();
    assert_eq!(read(&mut mmu, &mut m, 0x40_0000), Ok(0x20_0000));
    let pte = pte_addr4(&mut m, 0x40_0000);
    // The tables are allocated from 1 MiB up; map that too so the guest can reach the PTE.
    let mut next = 0x80_0000;
    map4(&mut m, &mut next, pte & !0xFFF, pte & !0xFFF, P | RW);
    store(&mut mmu, &mut m, pte, 8, 0x25_0000 | P | RW);
    assert_eq!(
        read(&mut mmu, &mut m, 0x40_0000),
        Ok(0x25_0000),
        "no INVLPG needed"
    );
    assert_eq!(m.stats.mmu.inval_pt_write, 1);
    assert!(m.stats.mmu.pt_write_traps >= 1);
    // A byte write into the same PTE (clearing P) is caught as well.
    store(&mut mmu, &mut m, pte, 1, 0);
    assert_eq!(
        read(&mut mmu, &mut m, 0x40_0000),
        Err(PageFault {
            linear: 0x40_0000,
            error_code: 0
        })
    );
}

#[test]
fn editing_a_non_current_address_space_is_seen_after_switching_to_it() {
    let (mut m, mut next) = setup();
    // Space B (CR3 0x9000): 0x40_0000 → 0x30_0000, its PT reachable from space A.
    m.cpu.cr3 = 0x9000;
    map4(&mut m, &mut next, 0x40_0000, 0x30_0000, P | RW);
    let pte_b = pte_addr4(&mut m, 0x40_0000);
    m.cpu.cr3 = 0x1000;
    map4(&mut m, &mut next, pte_b & !0xFFF, pte_b & !0xFFF, P | RW);
    let mut mmu = Mmu::default();
    mmu.write_cr3(&mut m, 0x9000).unwrap();
    assert_eq!(read(&mut mmu, &mut m, 0x40_0000), Ok(0x30_0000)); // B's shadow is warm
    mmu.write_cr3(&mut m, 0x1000).unwrap();
    assert_eq!(read(&mut mmu, &mut m, 0x40_0000), Ok(0x20_0000));
    // From A, rewrite B's PTE; then switch to B, whose shadow was retained.
    store(&mut mmu, &mut m, pte_b, 8, 0x35_0000 | P | RW);
    mmu.write_cr3(&mut m, 0x9000).unwrap();
    assert_eq!(m.stats.mmu.space_reuses, 1, "B's shadow was found again");
    assert_eq!(read(&mut mmu, &mut m, 0x40_0000), Ok(0x35_0000));
    // A's own shadow entry for 0x40_0000 was untouched by the write.
    mmu.write_cr3(&mut m, 0x1000).unwrap();
    let walks = m.stats.mmu.page_walks;
    assert_eq!(read(&mut mmu, &mut m, 0x40_0000), Ok(0x20_0000));
    assert_eq!(m.stats.mmu.page_walks, walks);
}

#[test]
fn a_not_present_entry_made_present_is_used_without_invlpg() {
    let (mut m, _) = setup();
    let mut mmu = Mmu::default();
    let lin = 0x40_1000;
    assert_eq!(read(&mut mmu, &mut m, lin).unwrap_err().error_code, 0);
    let pte = pte_addr4(&mut m, 0x40_0000) + 8; // the PTE after 0x40_0000's
    let mut next = 0x80_0000;
    map4(&mut m, &mut next, pte & !0xFFF, pte & !0xFFF, P | RW);
    store(&mut mmu, &mut m, pte, 8, 0x22_0000 | P);
    assert_eq!(read(&mut mmu, &mut m, lin), Ok(0x22_0000));
}

#[test]
fn rewriting_a_pde_invalidates_its_whole_2_mib_region() {
    let (mut m, _) = setup();
    let mut mmu = Mmu::default();
    for i in 0..4 {
        read(&mut mmu, &mut m, 0x1000 * i).unwrap();
    }
    // The PDE that covers 0-2 MiB, read through the identity map (tables sit above 1 MiB,
    // in the same 2 MiB region, so identity-map them first).
    let mut next = 0x80_0000;
    let pml4e = m.phys_read(0x1000, 8);
    let pdpte = m.phys_read(pml4e & !0xFFF, 8);
    let pde_addr = pdpte & !0xFFF;
    map4(
        &mut m,
        &mut next,
        pde_addr & !0xFFF,
        pde_addr & !0xFFF,
        P | RW,
    );
    let pde = m.phys_read(pde_addr, 8);
    // Replace it by a 2 MiB page at 4 MiB: every page of the region moves.
    store(&mut mmu, &mut m, pde_addr, 8, 0x40_0000 | P | RW | PS);
    assert_eq!(read(&mut mmu, &mut m, 0x3000), Ok(0x40_3000));
    assert!(m.stats.mmu.inval_pt_write >= 4, "{:?}", m.stats.mmu);
    assert_ne!(pde, m.phys_read(pde_addr, 8));
}

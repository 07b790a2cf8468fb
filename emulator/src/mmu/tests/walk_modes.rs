//! Walks in each paging mode: addresses, large pages, reserved bits, A/D, rights and error codes.
//! Teaches: every rule is a few page-table entries and one expected address or error code.

use super::*;
use crate::cpu::flags::AC;
use crate::mmu::fault::pf;
use crate::mmu::{walk, Access, PageFault};

fn code(m: &mut Machine, lin: u64, a: Access) -> u32 {
    walk(m, lin, a).unwrap_err().error_code
}

#[test]
fn four_level_walk_maps_and_sets_accessed_then_dirty() {
    let mut m = machine();
    long_mode(&mut m);
    let mut next = 0x10_000;
    map4(&mut m, &mut next, 0x40_1000, 0x7000, P | RW);
    let pte = pte_addr4(&mut m, 0x40_1000);
    let r = walk(&mut m, 0x40_1234, Access::read(false)).unwrap();
    assert_eq!(r.phys, 0x7234);
    assert_eq!(m.phys_read(pte, 8) & (A | D), A, "a read sets A only");
    assert_eq!(m.phys_read(0x1000, 8) & A, A, "upper levels get A too");
    walk(&mut m, 0x40_1234, Access::write(false)).unwrap();
    assert_eq!(m.phys_read(pte, 8) & (A | D), A | D, "a write sets D");
    // A user read is refused: the PTE is supervisor-only; error code P|U.
    assert_eq!(code(&mut m, 0x40_1234, Access::read(true)), pf::P | pf::U);
    // Unmapped: not-present write from supervisor; CR2 is the full linear address.
    let f = walk(&mut m, 0x40_3008, Access::write(false)).unwrap_err();
    assert_eq!(
        f,
        PageFault {
            linear: 0x40_3008,
            error_code: pf::W
        }
    );
}

#[test]
fn a_faulting_write_does_not_set_the_dirty_bit() {
    let mut m = machine();
    long_mode(&mut m);
    let mut next = 0x10_000;
    map4(&mut m, &mut next, 0x5000, 0x9000, P);
    let pte = pte_addr4(&mut m, 0x5000);
    assert_eq!(code(&mut m, 0x5000, Access::write(false)), pf::P | pf::W);
    assert_eq!(m.phys_read(pte, 8) & (A | D), 0);
}

#[test]
fn two_mib_and_one_gib_pages_in_long_mode() {
    let mut m = machine();
    long_mode(&mut m);
    m.phys_write(0x1000, 8, 0x2000 | P | RW);
    m.phys_write(0x2000, 8, 0x3000 | P | RW); // PDPTE 0 → PD
    m.phys_write(0x3000 + 8, 8, 0x40_0000 | P | RW | PS); // PDE 1: 2 MiB at 4 MiB
    m.phys_write(0x2000 + 8, 8, 0x8000_0000 | P | RW | PS | G); // PDPTE 1: 1 GiB at 2 GiB
    let r = walk(&mut m, 0x2F_FFF8, Access::read(false)).unwrap();
    assert_eq!((r.phys, r.page_size), (0x4F_FFF8, 2 << 20));
    let r = walk(&mut m, 0x4123_4567, Access::write(false)).unwrap();
    assert_eq!((r.phys, r.page_size), (0x8123_4567, 1 << 30));
    assert!(!r.global, "G counts only with CR4.PGE");
    assert_eq!(
        m.phys_read(0x2008, 8) & (A | D),
        A | D,
        "D lands in the PDPTE"
    );
    m.cpu.cr4 |= CR4_PGE;
    assert!(
        walk(&mut m, 0x4000_0000, Access::read(false))
            .unwrap()
            .global
    );
    // Bits 20:13 of a 2 MiB PDE are reserved; so is PS in a PML4E.
    m.phys_write(0x3000 + 8, 8, 0x40_0000 | P | RW | PS | 1 << 13);
    assert_eq!(
        code(&mut m, 0x20_0000, Access::read(false)),
        pf::P | pf::RSVD
    );
    m.phys_write(0x1000, 8, 0x2000 | P | RW | PS);
    assert_eq!(
        code(&mut m, 0x0, Access::read(true)),
        pf::P | pf::RSVD | pf::U
    );
}

#[test]
fn reserved_bits_above_maxphyaddr_and_xd_without_nxe() {
    let mut m = machine();
    long_mode(&mut m);
    let mut next = 0x10_000;
    map4(&mut m, &mut next, 0x6000, 0x6000 | 1 << 51, P | RW);
    assert_eq!(code(&mut m, 0x6000, Access::read(false)), pf::P | pf::RSVD);
    map4(&mut m, &mut next, 0x6000, 0x6000 | XD, P | RW);
    // With NXE the XD bit makes the page no-execute: a fetch faults with I/D set.
    assert_eq!(code(&mut m, 0x6000, Access::fetch(false)), pf::P | pf::ID);
    assert!(walk(&mut m, 0x6000, Access::read(false)).is_ok());
    // Without NXE the same bit is reserved, for every kind of access.
    m.cpu.efer &= !EFER_NXE;
    assert_eq!(code(&mut m, 0x6000, Access::read(false)), pf::P | pf::RSVD);
}

#[test]
fn thirty_two_bit_walk_with_4k_and_4m_pages_and_write_protect() {
    let mut m = machine();
    m.phys_write(0x1000, 4, 0x2000 | P | US); // PDE 0 → PT, read-only
    m.phys_write(0x2000 + 5 * 4, 4, 0x9000 | P | RW | US);
    m.phys_write(0x1000 + 4, 4, 0x40_0000 | P | RW | PS); // PDE 1: 4 MiB page
    m.cpu.cr0 = CR0_PE | CR0_PG;
    m.cpu.cr3 = 0x1000;
    assert_eq!(
        walk(&mut m, 0x5123, Access::read(true)).unwrap().phys,
        0x9123
    );
    // Without CR4.PSE the PS bit is ignored: the PDE points at a page table at 0x400000.
    assert_eq!(
        walk(&mut m, 0x40_0000, Access::read(false))
            .unwrap_err()
            .error_code,
        0,
        "the 'page table' at 4 MiB is all zeroes: not present"
    );
    m.cpu.cr4 = CR4_PSE;
    let r = walk(&mut m, 0x41_0000, Access::read(false)).unwrap();
    assert_eq!((r.phys, r.page_size), (0x41_0000, 4 << 20));
    // The PDE is read-only: supervisor writes pass without CR0.WP and fault with it.
    assert!(walk(&mut m, 0x5000, Access::write(false)).is_ok());
    m.cpu.cr0 |= CR0_WP;
    assert_eq!(code(&mut m, 0x5000, Access::write(false)), pf::P | pf::W);
    // 32-bit paging has no XD: a fetch fault reports I/D only with SMEP, even with EFER.NXE.
    m.cpu.efer = EFER_NXE;
    m.phys_write(0x2000 + 6 * 4, 4, 0x9000 | P | RW);
    assert_eq!(code(&mut m, 0x6000, Access::fetch(true)), pf::P | pf::U);
    m.cpu.cr4 |= CR4_SMEP;
    assert_eq!(
        code(&mut m, 0x6000, Access::fetch(true)),
        pf::P | pf::U | pf::ID
    );
}

#[test]
fn pse36_4m_pages_reach_above_4g_and_bit_21_is_reserved() {
    let mut m = machine();
    m.cpu.cr0 = CR0_PE | CR0_PG;
    m.cpu.cr4 = CR4_PSE;
    m.cpu.cr3 = 0x1000;
    // Bits 20:13 = 0x03 → physical bits 39:32 = 3.
    m.phys_write(0x1000 + 2 * 4, 4, 0x80_0000 | 3 << 13 | P | PS);
    let r = walk(&mut m, 0x80_1234, Access::read(false)).unwrap();
    assert_eq!(r.phys, 0x3_0080_1234);
    m.phys_write(0x1000 + 2 * 4, 4, 0x80_0000 | 1 << 21 | P | PS);
    assert_eq!(
        code(&mut m, 0x80_1234, Access::read(false)),
        pf::P | pf::RSVD
    );
}

#[test]
fn pae_walk_uses_pdptes_and_2m_pages() {
    let mut m = machine();
    m.cpu.cr0 = CR0_PE | CR0_PG;
    m.cpu.cr4 = CR4_PAE;
    m.cpu.efer = EFER_NXE;
    m.cpu.cr3 = 0x1020; // PDPT at 0x1020 (32-byte aligned)
    m.phys_write(0x1020 + 8, 8, 0x3000 | P); // PDPTE 1 (1-2 GiB) → PD at 0x3000
    m.phys_write(0x3000, 8, 0x4000 | P | RW | US);
    m.phys_write(0x4000 + 3 * 8, 8, 0x8000 | P | RW | US | XD);
    m.phys_write(0x3000 + 8, 8, 0x60_0000 | P | RW | PS);
    let r = walk(&mut m, 0x4000_3010, Access::write(true)).unwrap();
    assert_eq!(r.phys, 0x8010);
    assert!(!r.executable);
    assert_eq!(
        m.phys_read(0x1028, 8),
        0x3000 | P,
        "PDPTEs never get A bits"
    );
    let r = walk(&mut m, 0x4030_0000, Access::read(false)).unwrap();
    assert_eq!((r.phys, r.page_size), (0x70_0000, 2 << 20));
    // PDPTE 0 is not present.
    assert_eq!(code(&mut m, 0x1000, Access::read(false)), 0);
    assert_eq!(
        code(&mut m, 0x4000_3000, Access::fetch(true)),
        pf::P | pf::U | pf::ID
    );
}

#[test]
fn smep_and_smap_follow_cpl_ac_and_implicit_accesses() {
    let mut m = machine();
    long_mode(&mut m);
    let mut next = 0x10_000;
    map4(&mut m, &mut next, 0x7000, 0x7000, P | RW | US); // a user page
    m.cpu.cr4 |= CR4_SMEP | CR4_SMAP;
    m.cpu.rflags &= !AC;
    assert_eq!(code(&mut m, 0x7000, Access::fetch(false)), pf::P | pf::ID);
    assert_eq!(code(&mut m, 0x7000, Access::read(false)), pf::P);
    assert_eq!(code(&mut m, 0x7000, Access::write(false)), pf::P | pf::W);
    assert!(
        walk(&mut m, 0x7000, Access::read(true)).is_ok(),
        "CPL 3 is not affected"
    );
    m.cpu.rflags |= AC; // STAC
    assert!(walk(&mut m, 0x7000, Access::write(false)).is_ok());
    assert_eq!(
        code(&mut m, 0x7000, Access::implicit(false)),
        pf::P,
        "implicit supervisor accesses ignore AC"
    );
    assert_eq!(
        code(&mut m, 0x7000, Access::fetch(false)),
        pf::P | pf::ID,
        "AC does not lift SMEP"
    );
}

#[test]
fn supervisor_writes_to_read_only_user_pages_depend_on_wp() {
    let mut m = machine();
    long_mode(&mut m);
    let mut next = 0x10_000;
    map4(&mut m, &mut next, 0x7000, 0x7000, P | US);
    assert_eq!(code(&mut m, 0x7000, Access::write(false)), pf::P | pf::W);
    assert_eq!(
        code(&mut m, 0x7000, Access::write(true)),
        pf::P | pf::W | pf::U
    );
    m.cpu.cr0 &= !CR0_WP;
    assert!(walk(&mut m, 0x7000, Access::write(false)).is_ok());
    assert_eq!(
        code(&mut m, 0x7000, Access::write(true)),
        pf::P | pf::W | pf::U
    );
}

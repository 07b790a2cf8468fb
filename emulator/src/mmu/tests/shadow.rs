//! The shadow: hits, address-space retention across CR3 writes, and each invalidation cause.
//! Teaches: a cache of translations is judged by when it must forget, and what it may keep.

use super::*;
use crate::cpu::flags::AC;
use crate::mmu::permission::{check, fast_masks, sflag, Rights};
use crate::mmu::{Access, ControlRegs, InvpcidKind, Mmu, PagingGp, ShadowConfig};

fn read(mmu: &mut Mmu, m: &mut Machine, lin: u64) -> u64 {
    mmu.translate(m, lin, Access::read(false)).unwrap()
}

/// Two 4-level address spaces: CR3 0x1000 maps 0x40_0000 → 0x20_0000, CR3 0x8000 maps it → 0x30_0000.
fn two_spaces() -> (Machine, u64) {
    let mut m = machine();
    long_mode(&mut m);
    let mut next = 0x10_0000;
    map4(&mut m, &mut next, 0x40_0000, 0x20_0000, P | RW);
    m.cpu.cr3 = 0x8000;
    map4(&mut m, &mut next, 0x40_0000, 0x30_0000, P | RW);
    m.cpu.cr3 = 0x1000;
    (m, next)
}

#[test]
fn a_second_access_hits_the_shadow() {
    let (mut m, _) = two_spaces();
    let mut mmu = Mmu::default();
    assert_eq!(read(&mut mmu, &mut m, 0x40_0010), 0x20_0010);
    assert_eq!(read(&mut mmu, &mut m, 0x40_0FF0), 0x20_0FF0);
    let s = m.stats.mmu;
    assert_eq!((s.tlb_misses, s.tlb_hits, s.shadow_fills), (1, 1, 1));
    // A write needs the dirty bit: one more walk, then writes hit too.
    mmu.translate(&mut m, 0x40_0000, Access::write(false))
        .unwrap();
    mmu.translate(&mut m, 0x40_0008, Access::write(false))
        .unwrap();
    assert_eq!((m.stats.mmu.tlb_misses, m.stats.mmu.dirty_set), (2, 1));
}

#[test]
fn retained_address_spaces_survive_cr3_switches() {
    let (mut m, _) = two_spaces();
    let mut mmu = Mmu::default();
    assert_eq!(read(&mut mmu, &mut m, 0x40_0000), 0x20_0000);
    mmu.write_cr3(&mut m, 0x8000).unwrap();
    assert_eq!(read(&mut mmu, &mut m, 0x40_0000), 0x30_0000);
    mmu.write_cr3(&mut m, 0x1000).unwrap();
    let walks = m.stats.mmu.page_walks;
    assert_eq!(read(&mut mmu, &mut m, 0x40_0000), 0x20_0000);
    assert_eq!(
        m.stats.mmu.page_walks, walks,
        "the first space's shadow was kept"
    );
    assert_eq!(m.stats.mmu.space_reuses, 1);
    assert_eq!(m.stats.mmu.spaces_created, 2);
    assert_eq!(mmu.spaces().len(), 2);
    assert!(mmu.spaces()[0].current);
}

#[test]
fn a_plain_tlb_flushes_non_global_entries_on_cr3_writes() {
    let (mut m, _) = two_spaces();
    m.cpu.cr4 |= CR4_PGE;
    let mut next = 0x20_0000;
    map4(&mut m, &mut next, 0x50_0000, 0x5000, P | RW | G);
    let mut mmu = Mmu::with_config(ShadowConfig {
        retain_address_spaces: false,
        max_spaces: 8,
    });
    read(&mut mmu, &mut m, 0x40_0000);
    read(&mut mmu, &mut m, 0x50_0000);
    mmu.write_cr3(&mut m, 0x1000).unwrap(); // same CR3: still a flush of non-global entries
    assert_eq!(m.stats.mmu.inval_cr3, 1);
    let walks = m.stats.mmu.page_walks;
    read(&mut mmu, &mut m, 0x50_0000);
    assert_eq!(m.stats.mmu.page_walks, walks, "the global entry survived");
    read(&mut mmu, &mut m, 0x40_0000);
    assert_eq!(m.stats.mmu.page_walks, walks + 1);
}

#[test]
fn pcid_no_flush_bit_keeps_entries_and_invpcid_drops_them() {
    let (mut m, _) = two_spaces();
    let mut mmu = Mmu::with_config(ShadowConfig {
        retain_address_spaces: false,
        max_spaces: 8,
    });
    read(&mut mmu, &mut m, 0x40_0000);
    let old = ControlRegs::of(&m.cpu);
    m.cpu.cr4 |= CR4_PCIDE;
    mmu.control_changed(&mut m, old).unwrap();
    read(&mut mmu, &mut m, 0x40_0000);
    // CR3 0x8000 with PCID 5, then back to 0x1000/PCID 0 with bit 63: no flush.
    mmu.write_cr3(&mut m, 0x8005).unwrap();
    assert_eq!(m.cpu.cr3, 0x8005);
    assert_eq!(read(&mut mmu, &mut m, 0x40_0000), 0x30_0000);
    mmu.write_cr3(&mut m, 1 << 63 | 0x1000).unwrap();
    assert_eq!(m.cpu.cr3, 0x1000, "bit 63 is not stored");
    let walks = m.stats.mmu.page_walks;
    assert_eq!(read(&mut mmu, &mut m, 0x40_0000), 0x20_0000);
    assert_eq!(m.stats.mmu.page_walks, walks, "PCID 0 kept its entry");
    let mut stats = m.stats.clone();
    mmu.invpcid(&mut stats, InvpcidKind::SingleContext, 5, 0);
    assert_eq!(stats.mmu.inval_invpcid, 1);
    mmu.invpcid(&mut stats, InvpcidKind::Address, 0, 0x40_0000);
    assert_eq!(stats.mmu.inval_invpcid, 2);
    m.stats = stats;
    read(&mut mmu, &mut m, 0x40_0000);
    assert_eq!(m.stats.mmu.page_walks, walks + 1);
}

#[test]
fn invlpg_drops_one_page_in_every_retained_space() {
    let (mut m, _) = two_spaces();
    let mut mmu = Mmu::default();
    read(&mut mmu, &mut m, 0x40_0000);
    read(&mut mmu, &mut m, 0x40_1000 - 8);
    mmu.write_cr3(&mut m, 0x8000).unwrap();
    read(&mut mmu, &mut m, 0x40_0000);
    let mut stats = m.stats.clone();
    mmu.invlpg(&mut stats, 0x40_0123);
    assert_eq!(stats.mmu.inval_invlpg, 2, "one entry in each space");
    mmu.invlpg(&mut stats, 0x40_0123);
    assert_eq!(stats.mmu.inval_invlpg, 2, "nothing left to drop");
}

#[test]
fn paging_mode_changes_drop_every_shadow() {
    let (mut m, _) = two_spaces();
    let mut mmu = Mmu::default();
    read(&mut mmu, &mut m, 0x40_0000);
    // CR0.WP and CR4.SMAP change nothing cached: rights are checked at every hit.
    let old = ControlRegs::of(&m.cpu);
    m.cpu.cr0 &= !CR0_WP;
    m.cpu.cr4 |= CR4_SMAP;
    mmu.control_changed(&mut m, old).unwrap();
    assert_eq!(m.stats.mmu.inval_mode_change, 0);
    // EFER.NXE changes what XD means: everything goes.
    let old = ControlRegs::of(&m.cpu);
    m.cpu.efer &= !EFER_NXE;
    mmu.control_changed(&mut m, old).unwrap();
    assert_eq!(m.stats.mmu.inval_mode_change, 1);
    assert!(mmu.spaces().iter().all(|s| s.entries.is_empty()));
    // A change made behind the MMU's back (another engine, a debugger) is noticed too.
    read(&mut mmu, &mut m, 0x40_0000);
    m.cpu.cr4 |= CR4_PGE;
    read(&mut mmu, &mut m, 0x40_0000);
    assert_eq!(m.stats.mmu.inval_mode_change, 2);
}

#[test]
fn pcide_needs_long_mode_and_pcid_zero_and_a_refused_write_is_undone() {
    let (mut m, _) = two_spaces();
    let mut mmu = Mmu::default();
    m.cpu.cr3 = 0x1003;
    let old = ControlRegs::of(&m.cpu);
    m.cpu.cr4 |= CR4_PCIDE;
    assert_eq!(
        mmu.control_changed(&mut m, old),
        Err(PagingGp::PcideNotAllowed)
    );
    assert_eq!(m.cpu.cr4, old.cr4);
    assert_eq!(
        mmu.write_cr3(&mut m, 1 << 45),
        Err(PagingGp::ReservedCr3(1 << 45))
    );
}

#[test]
fn pae_pdptes_are_loaded_on_cr3_writes_and_checked() {
    let mut m = machine();
    m.cpu.cr0 = CR0_PE | CR0_PG;
    m.cpu.cr4 = CR4_PAE;
    m.cpu.cr3 = 0x1000;
    m.phys_write(0x1000, 8, 0x3000 | P);
    m.phys_write(0x3000, 8, 0x4000 | P | RW);
    m.phys_write(0x4000 + 8, 8, 0x9000 | P | RW);
    m.phys_write(0x5000, 8, 0x6000 | P | RW); // a second PD
    m.phys_write(0x6000 + 8, 8, 0xA000 | P | RW);
    let mut mmu = Mmu::default();
    assert_eq!(read(&mut mmu, &mut m, 0x1000), 0x9000);
    // Rewriting the PDPT in memory changes nothing until CR3 is written again.
    m.phys_write(0x1000, 8, 0x5000 | P);
    let mut stats = m.stats.clone();
    mmu.invlpg(&mut stats, 0x1000);
    assert_eq!(
        read(&mut mmu, &mut m, 0x1000),
        0x9000,
        "the PDPTE register still points at 0x3000"
    );
    mmu.write_cr3(&mut m, 0x1000).unwrap();
    assert_eq!(read(&mut mmu, &mut m, 0x1000), 0xA000);
    // A PDPTE with reserved bits (2:1) makes MOV to CR3 fault; CR3 keeps its value.
    m.phys_write(0x2000, 8, 0x3000 | P | RW);
    assert!(matches!(
        mmu.write_cr3(&mut m, 0x2000),
        Err(PagingGp::ReservedPdpte { index: 0, .. })
    ));
    assert_eq!(m.cpu.cr3, 0x1000);
}

#[test]
fn mmio_pages_are_never_cached() {
    let mut m = machine();
    long_mode(&mut m);
    let mut next = 0x10_0000;
    map4(&mut m, &mut next, 0x70_0000, 0xFEC0_0000, P | RW);
    let mut mmu = Mmu::default();
    for _ in 0..3 {
        assert_eq!(read(&mut mmu, &mut m, 0x70_0004), 0xFEC0_0004);
    }
    let s = m.stats.mmu;
    assert_eq!((s.mmio_bypass, s.tlb_hits, s.shadow_fills), (3, 0, 0));
}

/// The fast check on a hit must never allow what the full check refuses.
#[test]
fn fast_masks_agree_with_the_full_permission_check() {
    let bools = [false, true];
    for cr0_wp in bools {
        for smep in bools {
            for smap in bools {
                for ac in bools {
                    let regs = ControlRegs {
                        cr0: CR0_PG | if cr0_wp { CR0_WP } else { 0 },
                        cr3: 0,
                        cr4: CR4_PAE
                            | if smep { CR4_SMEP } else { 0 }
                            | if smap { CR4_SMAP } else { 0 },
                        efer: EFER_LMA | EFER_NXE,
                    };
                    let rflags = if ac { AC } else { 0 };
                    for bits in 0..8u64 {
                        let r = Rights {
                            user: bits & 1 != 0,
                            writable: bits & 2 != 0,
                            executable: bits & 4 != 0,
                        };
                        let flags = bits | sflag::DIRTY;
                        for (user, write, fetch, implicit) in [
                            (false, false, false, false),
                            (false, true, false, false),
                            (false, false, true, false),
                            (true, false, false, false),
                            (true, true, false, false),
                            (true, false, true, false),
                            (false, false, false, true),
                            (false, true, false, true),
                        ] {
                            let a = Access {
                                user,
                                write,
                                fetch,
                                implicit,
                            };
                            let (need, deny) = fast_masks(&regs, rflags, a);
                            let fast = flags & need == need && flags & deny == 0;
                            let full = check(&regs, rflags, a, r).is_ok();
                            assert_eq!(
                                fast, full,
                                "{a:?} rights {r:?} wp {cr0_wp} smep {smep} smap {smap} ac {ac}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn flush_all_forgets_every_space_after_another_engine_ran() {
    let (mut m, _) = two_spaces();
    let mut mmu = Mmu::default();
    read(&mut mmu, &mut m, 0x40_0000);
    mmu.write_cr3(&mut m, 0x8000).unwrap();
    read(&mut mmu, &mut m, 0x40_0000);
    let mut stats = m.stats.clone();
    mmu.flush_all(&mut stats);
    assert_eq!(stats.mmu.inval_other, 2);
    assert!(mmu.spaces().is_empty());
    m.stats = stats;
    assert_eq!(
        read(&mut mmu, &mut m, 0x40_0000),
        0x30_0000,
        "CR3 0x8000 is still current"
    );
}

#[test]
fn a_run_of_another_engine_drops_every_shadow() {
    let (mut m, _) = two_spaces();
    let mut mmu = Mmu::default();
    read(&mut mmu, &mut m, 0x40_0000);
    // KVM rewrote the PTE natively (no tracing) and said so.
    let mut next = 0x20_0000;
    map4(&mut m, &mut next, 0x40_0000, 0x28_0000, P | RW);
    m.memory_changed_behind_engines();
    assert_eq!(read(&mut mmu, &mut m, 0x40_0000), 0x28_0000);
    assert_eq!(m.stats.mmu.inval_other, 1);
}

#[test]
fn invlpg_of_one_address_drops_every_piece_of_a_large_page() {
    let mut m = machine();
    long_mode(&mut m);
    m.phys_write(0x1000, 8, 0x2000 | P | RW);
    m.phys_write(0x2000, 8, 0x3000 | P | RW);
    m.phys_write(0x3000 + 8, 8, 0x40_0000 | P | RW | PS); // 2 MiB at 2 MiB → 4 MiB
    let mut mmu = Mmu::default();
    for i in 0..3 {
        read(&mut mmu, &mut m, 0x20_0000 + i * 0x1000);
    }
    let mut stats = m.stats.clone();
    mmu.invlpg(&mut stats, 0x3F_F000); // an address of the same 2 MiB page, not cached itself
    assert_eq!(stats.mmu.inval_invlpg, 3);
}

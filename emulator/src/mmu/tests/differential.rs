//! Differential test: after random page-table edits, CR3 switches and protection changes, every
//! translation the shadow gives must equal a fresh walk of the current tables.
//! Teaches: the shadow's one invariant, checked the way a hypervisor developer would fuzz it.

use super::*;
use crate::cpu::flags::AC;
use crate::mmu::{peek_walk, Access, Mmu, ShadowConfig};

/// xorshift64: a deterministic stream of pseudo-random numbers, no dependency needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ROOTS: [u64; 3] = [0x1000, 0x2000, 0x3000];
/// Page tables live in 0x10_0000..0x18_0000, identity-mapped (supervisor, writable) in every
/// address space, so the "guest" edits them through its own mappings, as a kernel does.
const TABLES: u64 = 0x10_0000;
/// The linear window the test plays in: 64 pages over 4 PDEs, at 16 MiB.
const WINDOW: u64 = 0x100_0000;

fn build(m: &mut Machine) -> u64 {
    let mut next = TABLES;
    for &root in &ROOTS {
        m.cpu.cr3 = root;
        for page in (TABLES..TABLES + 0x8_0000).step_by(0x1000) {
            map4(m, &mut next, page, page, P | RW);
        }
        for i in 0..64 {
            map4(
                m,
                &mut next,
                WINDOW + i * 0x8_0000,
                0x20_0000 + i * 0x1000,
                P | RW | US,
            );
        }
    }
    assert!(
        next < TABLES + 0x8_0000,
        "tables stay in the identity-mapped window"
    );
    next
}

fn random_access(rng: &mut Rng) -> Access {
    let user = rng.below(2) == 1;
    match rng.below(3) {
        0 => Access::read(user),
        1 => Access::write(user),
        _ => Access::fetch(user),
    }
}

fn run(retain: bool, seed: u64) {
    let mut m = Machine::new(16 << 20).unwrap();
    long_mode(&mut m);
    build(&mut m);
    m.cpu.cr3 = ROOTS[0];
    let mut mmu = Mmu::with_config(ShadowConfig {
        retain_address_spaces: retain,
        max_spaces: 2, // fewer than the address spaces: eviction happens too
    });
    let mut rng = Rng(seed);
    for step in 0..4000 {
        match rng.below(10) {
            // Rewrite a random leaf or directory entry of a random address space through the
            // current address space (a store to the identity-mapped table page).
            0 | 1 => {
                let saved = m.cpu.cr3;
                m.cpu.cr3 = ROOTS[rng.below(3) as usize];
                let lin = WINDOW + rng.below(64) * 0x8_0000;
                let mut addr = pte_addr4(&mut m, lin);
                if rng.below(4) == 0 {
                    // The PDE instead: point it at another page table or make it absent.
                    let pml4e = m.phys_read(m.cpu.cr3 + ((lin >> 39) & 0x1FF) * 8, 8);
                    let pdpte = m.phys_read((pml4e & !0xFFF) + ((lin >> 30) & 0x1FF) * 8, 8);
                    addr = (pdpte & !0xFFF) + ((lin >> 21) & 0x1FF) * 8;
                }
                if !(TABLES..TABLES + 0x8_0000).contains(&addr) {
                    m.cpu.cr3 = saved; // the PDE above is absent: nothing to edit here
                    continue;
                }
                let old = m.phys_read(addr, 8);
                let flags =
                    [0, P, P | RW, P | US, P | RW | US, P | RW | US | XD][rng.below(6) as usize];
                let value = if addr & 0xFFF == pte_addr4(&mut m, lin) & 0xFFF && old & PS == 0 {
                    (0x20_0000 + rng.below(64) * 0x1000) | flags
                } else {
                    (old & !0xFFF & !XD) | flags | (old & PS)
                };
                m.cpu.cr3 = saved;
                let phys = mmu.translate(&mut m, addr, Access::write(false)).unwrap();
                assert_eq!(phys, addr, "tables are identity-mapped");
                m.phys_write(phys, if rng.below(2) == 0 { 8 } else { 4 }, value);
            }
            2 => {
                let root = ROOTS[rng.below(3) as usize];
                mmu.write_cr3(&mut m, root).unwrap();
            }
            3 => {
                let old = ControlRegs::of(&m.cpu);
                m.cpu.cr0 ^= CR0_WP * rng.below(2);
                m.cpu.cr4 ^= (CR4_SMEP * rng.below(2)) | (CR4_SMAP * rng.below(2));
                mmu.control_changed(&mut m, old).unwrap();
                m.cpu.rflags ^= AC * rng.below(2);
            }
            _ => {
                let lin = WINDOW + rng.below(64) * 0x8_0000 + rng.below(0x1000);
                let access = random_access(&mut rng);
                let expected = peek_walk(&mut m, lin, access).map(|w| w.phys);
                let got = mmu.translate(&mut m, lin, access);
                assert_eq!(
                    got, expected,
                    "seed {seed} step {step}: {access:?} at {lin:#x}"
                );
            }
        }
    }
}

use crate::mmu::ControlRegs;

#[test]
fn retained_shadows_always_equal_a_fresh_walk() {
    for seed in 1..=6 {
        run(true, 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(seed));
    }
}

#[test]
fn a_plain_tlb_with_tracing_always_equals_a_fresh_walk() {
    for seed in 1..=3 {
        run(false, 0x2545_F491_4F6C_DD1Du64.wrapping_mul(seed));
    }
}

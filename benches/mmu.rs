//! Criterion benchmarks of the shadow MMU: ns per guest memory access (hit and miss), and a
//! CR3-switch-heavy workload with and without keeping shadows across address-space switches.
//! Teaches: what a shadow hit costs compared with a page walk, and what retention saves.
//!
//! Every "element" is one guest memory access: a translation through `Mmu::translate` plus the
//! 8-byte read of guest RAM the interpreter would do with its result.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use emulator::cpu::ctl::*;
use emulator::mmu::{Access, Mmu, ShadowConfig};
use emulator::Machine;

const P: u64 = 1;
const RW: u64 = 2;
const ADDR: u64 = 0x000F_FFFF_FFFF_F000;

/// A long-mode machine; page tables are allocated from `next`.
struct Tables {
    m: Machine,
    next: u64,
}

impl Tables {
    fn new() -> Self {
        let mut m = Machine::new(32 << 20).expect("RAM");
        m.cpu.cr0 = CR0_PE | CR0_PG | CR0_WP;
        m.cpu.cr4 = CR4_PAE;
        m.cpu.efer = EFER_LME | EFER_LMA | EFER_NXE;
        Tables { m, next: 0x10_0000 }
    }

    fn alloc(&mut self) -> u64 {
        let t = self.next;
        self.next += 0x1000;
        t
    }

    /// Maps `lin` → `phys` (4 KiB) in the address space rooted at `root`.
    fn map(&mut self, root: u64, lin: u64, phys: u64) {
        let mut table = root;
        for shift in [39u32, 30, 21] {
            let addr = table + ((lin >> shift) & 0x1FF) * 8;
            let mut e = self.m.phys_read(addr, 8);
            if e & P == 0 {
                e = self.alloc() | P | RW;
                self.m.phys_write(addr, 8, e);
            }
            table = e & ADDR;
        }
        self.m
            .phys_write(table + ((lin >> 12) & 0x1FF) * 8, 8, phys | P | RW);
    }
}

/// One access: translate, then read 8 bytes of guest RAM.
#[inline]
fn access(mmu: &mut Mmu, m: &mut Machine, lin: u64) -> u64 {
    let phys = mmu.translate(m, lin, Access::read(false)).expect("mapped");
    m.phys_read(phys, 8)
}

fn hit_and_miss(c: &mut Criterion) {
    let mut t = Tables::new();
    let root = t.alloc();
    t.m.cpu.cr3 = root;
    // Hits: 256 pages, all resident in the 1024-entry shadow.
    for i in 0..256 {
        t.map(root, 0x4000_0000 + i * 0x1000, 0x80_0000 + i * 0x1000);
    }
    // Misses: 16 pages 4 MiB apart share one direct-mapped slot, so each access walks.
    for i in 0..16 {
        t.map(root, 0x8000_0000 + i * 0x40_0000, 0x90_0000);
    }
    let mut m = t.m;
    let mut group = c.benchmark_group("mmu_access");
    group.throughput(Throughput::Elements(1024));
    let mut mmu = Mmu::default();
    group.bench_function("shadow_hit", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for i in 0..1024u64 {
                sum = sum.wrapping_add(access(&mut mmu, &mut m, 0x4000_0000 + (i % 256) * 0x1000));
            }
            sum
        })
    });
    group.bench_function("shadow_hit_translate_only", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for i in 0..1024u64 {
                let lin = 0x4000_0000 + (i % 256) * 0x1000;
                sum = sum.wrapping_add(mmu.translate(&mut m, lin, Access::read(false)).unwrap());
            }
            sum
        })
    });
    let mut mmu = Mmu::default();
    group.bench_function("shadow_miss_4_level_walk", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for i in 0..1024u64 {
                sum =
                    sum.wrapping_add(access(&mut mmu, &mut m, 0x8000_0000 + (i % 16) * 0x40_0000));
            }
            sum
        })
    });
    group.finish();
}

/// Four processes, 64 pages each; the "scheduler" switches CR3 every 64 accesses.
fn cr3_switches(c: &mut Criterion) {
    let mut t = Tables::new();
    let roots: Vec<u64> = (0..4).map(|_| t.alloc()).collect();
    for (p, &root) in roots.iter().enumerate() {
        for i in 0..64 {
            t.map(
                root,
                0x40_0000 + i * 0x1000,
                0x80_0000 + (p as u64 * 64 + i) * 0x1000,
            );
        }
    }
    t.m.cpu.cr3 = roots[0];
    let mut m = t.m;
    let mut group = c.benchmark_group("mmu_cr3_switch_heavy");
    group.throughput(Throughput::Elements(4 * 64 * 4));
    for retain in [true, false] {
        let mut mmu = Mmu::with_config(ShadowConfig {
            retain_address_spaces: retain,
            max_spaces: 8,
        });
        let name = if retain {
            "retained_shadows"
        } else {
            "flush_on_cr3_write"
        };
        group.bench_with_input(BenchmarkId::from_parameter(name), &roots, |b, roots| {
            b.iter(|| {
                let mut sum = 0u64;
                for _round in 0..4 {
                    for &root in roots {
                        mmu.write_cr3(&mut m, root).expect("valid CR3");
                        for i in 0..64u64 {
                            sum =
                                sum.wrapping_add(access(&mut mmu, &mut m, 0x40_0000 + i * 0x1000));
                        }
                    }
                }
                sum
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hit_and_miss, cr3_switches);
criterion_main!(benches);

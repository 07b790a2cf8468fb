//! Helpers shared by the KVM engine tests: a skip check, a tiny byte assembler, descriptor tables.
//! Teaches: the least a guest needs — code bytes, a GDT, an IDT, page tables — built by hand.

#![allow(dead_code)]

use std::collections::HashMap;

use accel_kvm::KvmEngine;
use emulator::cpu::state::{ctl, reg, CpuState, DescriptorTable, Seg, Segment};
use emulator::Machine;

pub const RAM: u64 = 4 << 20;
pub const GDT: u64 = 0x500;
pub const IDT: u64 = 0x800;
pub const STACK_TOP: u64 = 0x7000;
pub const PML4: u64 = 0x2_0000;
pub const CODE: u64 = 0x1_0000;

pub const SEL_CODE32: u16 = 0x10;
pub const SEL_DATA: u16 = 0x18;
pub const SEL_CODE64: u16 = 0x20;
pub const SEL_USER_CODE64: u16 = 0x28 | 3;
pub const SEL_USER_DATA: u16 = 0x30 | 3;
pub const SEL_USER_CODE32: u16 = 0x38 | 3;

/// Returns false (after saying why) when this host has no usable /dev/kvm.
pub fn kvm_or_skip(test: &str) -> bool {
    match accel_kvm::kvm_for_tests() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            false
        }
    }
}

/// A byte assembler with labels: enough to write test guests readably.
#[derive(Default)]
pub struct Asm {
    origin: u64,
    pub code: Vec<u8>,
    labels: HashMap<&'static str, usize>,
    rel8: Vec<(usize, &'static str)>,
    rel32: Vec<(usize, &'static str)>,
    abs32: Vec<(usize, &'static str)>,
}

impl Asm {
    pub fn new(origin: u64) -> Self {
        Asm {
            origin,
            ..Default::default()
        }
    }

    pub fn here(&self) -> u64 {
        self.origin + self.code.len() as u64
    }

    pub fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.insert(name, self.code.len());
        self
    }

    pub fn b(&mut self, bytes: &[u8]) -> &mut Self {
        self.code.extend_from_slice(bytes);
        self
    }

    /// A short jump/Jcc: `opcode rel8` to `target`.
    pub fn j8(&mut self, opcode: u8, target: &'static str) -> &mut Self {
        self.code.push(opcode);
        self.rel8.push((self.code.len(), target));
        self.code.push(0);
        self
    }

    /// CALL rel32 to `target`.
    pub fn call(&mut self, target: &'static str) -> &mut Self {
        self.code.push(0xE8);
        self.rel32.push((self.code.len(), target));
        self.code.extend_from_slice(&[0; 4]);
        self
    }

    /// `opcode imm32` where the immediate is the absolute address of `target`.
    pub fn abs32(&mut self, opcode: &[u8], target: &'static str) -> &mut Self {
        self.code.extend_from_slice(opcode);
        self.abs32.push((self.code.len(), target));
        self.code.extend_from_slice(&[0; 4]);
        self
    }

    /// `opcode imm32`.
    pub fn imm32(&mut self, opcode: &[u8], value: u32) -> &mut Self {
        self.code.extend_from_slice(opcode);
        self.code.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn out_al(&mut self, port: u8) -> &mut Self {
        self.b(&[0xE6, port])
    }

    pub fn mov_al(&mut self, value: u8) -> &mut Self {
        self.b(&[0xB0, value])
    }

    pub fn addr(&self, name: &str) -> u64 {
        self.origin + self.labels[name] as u64
    }

    /// Resolves the label references and returns the code.
    pub fn finish(&mut self) -> Vec<u8> {
        for &(at, target) in &self.rel8 {
            let rel = self.labels[target] as i64 - (at as i64 + 1);
            assert!(
                (-128..128).contains(&rel),
                "jump to {target} out of rel8 range"
            );
            self.code[at] = rel as i8 as u8;
        }
        for &(at, target) in &self.rel32 {
            let rel = self.labels[target] as i64 - (at as i64 + 4);
            self.code[at..at + 4].copy_from_slice(&(rel as i32).to_le_bytes());
        }
        for &(at, target) in &self.abs32 {
            let a = (self.origin + self.labels[target] as u64) as u32;
            self.code[at..at + 4].copy_from_slice(&a.to_le_bytes());
        }
        self.code.clone()
    }
}

/// A machine with `code` at `origin` and a flat 32-bit protected-mode CPU (paging off) at `entry`,
/// with a real GDT (null, null, code32 0x10, data 0x18, code64 0x20, and ring-3 code64 0x28,
/// data 0x30, code32 0x38), a stack, and an empty IDT.
pub fn protected_machine(code: &[u8], origin: u64, entry: u64) -> Machine {
    let mut m = Machine::new(RAM).unwrap();
    m.ram.write(origin, code).unwrap();
    write_gdt(&mut m);
    m.cpu = CpuState::multiboot_entry(entry as u32, 0);
    m.cpu.gdtr = DescriptorTable {
        base: GDT,
        limit: 8 * 8 - 1,
    };
    m.cpu.gpr[reg::RSP] = STACK_TOP;
    m
}

pub fn write_gdt(m: &mut Machine) {
    let entries: [u64; 8] = [
        0,
        0,
        0x00CF_9A00_0000_FFFF, // 0x10: code, 32-bit, 4 GiB
        0x00CF_9200_0000_FFFF, // 0x18: data, 4 GiB
        0x00AF_9A00_0000_FFFF, // 0x20: code, 64-bit
        0x00AF_FA00_0000_FFFF, // 0x28: code, 64-bit, DPL 3
        0x00CF_F200_0000_FFFF, // 0x30: data, 4 GiB, DPL 3
        0x00CF_FA00_0000_FFFF, // 0x38: code, 32-bit, DPL 3
    ];
    for (i, e) in entries.iter().enumerate() {
        m.ram.write_le(GDT + 8 * i as u64, 8, *e).unwrap();
    }
}

/// A 32-bit IDT: every vector goes to `default`, except those listed.
pub fn write_idt32(m: &mut Machine, default: u64, gates: &[(u8, u64)]) {
    for v in 0..=255u8 {
        let target = gates.iter().find(|g| g.0 == v).map_or(default, |g| g.1);
        let gate = (target & 0xFFFF)
            | (SEL_CODE32 as u64) << 16
            | 0x8E00u64 << 32
            | (target >> 16 & 0xFFFF) << 48;
        m.ram.write_le(IDT + 8 * v as u64, 8, gate).unwrap();
    }
    m.cpu.idtr = DescriptorTable {
        base: IDT,
        limit: 256 * 8 - 1,
    };
}

/// Identity-maps the first 1 GiB with 2 MiB pages, user-accessible: PML4 → PDPT → PD at 0x20000.
pub fn write_page_tables(m: &mut Machine) {
    let pdpt = PML4 + 0x1000;
    let pd = PML4 + 0x2000;
    m.ram.write_le(PML4, 8, pdpt | 0x7).unwrap();
    m.ram.write_le(pdpt, 8, pd | 0x7).unwrap();
    for i in 0..512u64 {
        m.ram.write_le(pd + 8 * i, 8, (i << 21) | 0x87).unwrap();
    }
}

/// A machine already in 64-bit long mode: paging via `write_page_tables`, CS.L = 1.
pub fn long_mode_machine(code: &[u8], origin: u64, entry: u64) -> Machine {
    let mut m = protected_machine(code, origin, entry);
    write_page_tables(&mut m);
    let cpu = &mut m.cpu;
    cpu.cr3 = PML4;
    cpu.cr4 = ctl::CR4_PAE;
    cpu.cr0 = ctl::CR0_PE | ctl::CR0_ET | ctl::CR0_NE | ctl::CR0_WP | ctl::CR0_PG;
    cpu.efer = ctl::EFER_LME | ctl::EFER_LMA;
    cpu.seg[Seg::Cs as usize] = Segment {
        selector: SEL_CODE64,
        l: true,
        db: false,
        ..Segment::flat32(SEL_CODE64, true)
    };
    m
}

/// An engine for `m`, panicking with the reason if KVM refuses.
pub fn engine(m: &Machine) -> KvmEngine {
    KvmEngine::new(m).unwrap_or_else(|e| panic!("creating the KVM engine failed: {e}"))
}

//! Test support: assemble small guest programs with GNU as at test time.
//! Teaches: nothing for students; it keeps interpreter tests readable as assembly.

#![allow(dead_code)] // each test binary uses a subset

use std::process::Command;

use emulator::bt::BinaryTranslator;
use emulator::cpu::{ctl, flags, reg, CpuState, DescriptorTable, Seg, Segment};
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Machine, RunLimit};

/// Runs the interpreter for at most a million instructions — and the same program from the
/// same state on the binary translator, which must end identically (every interpreter test is
/// a translator test too).
pub fn run(m: &mut Machine) -> Exit {
    let start = m.snapshot().expect("snapshot of the test machine");
    let exit = Interpreter::new()
        .run(m, RunLimit::instructions(1_000_000))
        .unwrap();
    let mut t = Machine::new(m.ram.size()).unwrap();
    t.pv = m.pv;
    t.restore(&start)
        .expect("restore into a machine of the same size");
    let exit_bt = BinaryTranslator::default()
        .run(&mut t, RunLimit::instructions(1_000_000))
        .unwrap();
    assert_eq!(exit_bt, exit, "bt ended differently from the interpreter");
    assert_eq!(
        t.cpu, m.cpu,
        "bt's final CpuState differs from the interpreter's"
    );
    assert_eq!(
        t.stats.instructions, m.stats.instructions,
        "bt's instruction count"
    );
    let (mut a, mut b) = (
        vec![0u8; m.ram.size() as usize],
        vec![0u8; m.ram.size() as usize],
    );
    m.ram.read(0, &mut a).unwrap();
    t.ram.read(0, &mut b).unwrap();
    assert!(a == b, "bt left different RAM from the interpreter's");
    exit
}

/// A real-mode machine with `code` at 0x7C00, CS:IP = 0000:7C00, SP = 0x7000, interrupts off.
pub fn real_mode(code: &[u8]) -> Machine {
    let mut m = Machine::new(2 << 20).unwrap();
    m.ram.write(0x7C00, code).unwrap();
    m.cpu.seg = [Segment::real_mode(0, false); 6];
    m.cpu.seg[Seg::Cs as usize] = Segment::real_mode(0, true);
    m.cpu.rip = 0x7C00;
    m.cpu.gpr[reg::RSP] = 0x7000;
    m.cpu.rflags = flags::FIXED1;
    m
}

/// Flat 32-bit protected mode with `code` at 0x10000. GDT at 0x1000: null, code 0x08, data 0x10,
/// and a DPL-3 read-only byte-granular data segment 0x18 with limit 0xFFF.
pub fn protected_mode(code: &[u8]) -> Machine {
    let mut m = Machine::new(4 << 20).unwrap();
    m.ram.write(0x10000, code).unwrap();
    m.ram.write_le(0x1008, 8, 0x00CF_9A00_0000_FFFF).unwrap();
    m.ram.write_le(0x1010, 8, 0x00CF_9200_0000_FFFF).unwrap();
    m.ram.write_le(0x1018, 8, 0x0000_F000_0000_0FFF).unwrap();
    m.cpu = CpuState::multiboot_entry(0x10000, 0);
    m.cpu.seg = [Segment::flat32(0x10, false); 6];
    m.cpu.seg[Seg::Cs as usize] = Segment::flat32(0x08, true);
    m.cpu.gdtr = DescriptorTable {
        base: 0x1000,
        limit: 31,
    };
    m.cpu.gpr[reg::RSP] = 0x9000;
    m
}

/// Long mode, CR3 = 0x1000: PD[0] → PT at 0x4000 identity-mapping 0-2 MiB with 4 KiB pages
/// (so single pages can be remapped), code at 0x10000.
pub fn long_mode(code: &[u8]) -> Machine {
    let mut m = Machine::new(4 << 20).unwrap();
    m.ram.write(0x10000, code).unwrap();
    m.ram.write_le(0x1000, 8, 0x2000 | 3).unwrap();
    m.ram.write_le(0x2000, 8, 0x3000 | 3).unwrap();
    m.ram.write_le(0x3000, 8, 0x4000 | 3).unwrap();
    for page in 0..512u64 {
        m.ram
            .write_le(0x4000 + page * 8, 8, page << 12 | 3)
            .unwrap();
    }
    // A second address space at CR3 0x5000 shares the PDPT.
    m.ram.write_le(0x5000, 8, 0x2000 | 3).unwrap();
    let mut s = CpuState::multiboot_entry(0x10000, 0);
    s.cr0 |= ctl::CR0_PG | ctl::CR0_WP;
    s.cr4 = ctl::CR4_PAE;
    s.cr3 = 0x1000;
    s.efer = ctl::EFER_LME | ctl::EFER_LMA | ctl::EFER_NXE;
    s.seg[Seg::Cs as usize] = Segment {
        l: true,
        db: false,
        ..Segment::flat32(0x08, true)
    };
    s.gpr[reg::RSP] = 0x9000;
    m.cpu = s;
    m
}

/// Assembles Intel-syntax `source` for `bits` (16, 32 or 64) into a flat binary based at `org`.
pub fn assemble(bits: u32, org: u64, source: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!(
        "vmscope-asm-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("t.s");
    let obj = dir.join("t.o");
    let bin = dir.join("t.bin");
    let code = match bits {
        16 => ".code16",
        32 => ".code32",
        _ => ".code64",
    };
    std::fs::write(&src, format!(".intel_syntax noprefix\n{code}\n{source}\n")).unwrap();
    let as_arch = if bits == 64 { "--64" } else { "--32" };
    let ok = Command::new("as")
        .args([as_arch, "-o"])
        .arg(&obj)
        .arg(&src)
        .status()
        .expect("GNU as is needed for these tests (Debian package binutils)");
    assert!(ok.success(), "assembling failed:\n{source}");
    let emul = if bits == 64 { "elf_x86_64" } else { "elf_i386" };
    let ok = Command::new("ld")
        .args(["-m", emul, "--oformat", "binary", "-e", "0", "-Ttext"])
        .arg(format!("{org:#x}"))
        .arg("-o")
        .arg(&bin)
        .arg(&obj)
        .status()
        .unwrap();
    assert!(ok.success(), "linking failed");
    let bytes = std::fs::read(&bin).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

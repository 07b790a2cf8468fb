//! The machines `vmscope fuzz` runs its cases in, one per mode, built straight in RAM and `CpuState`.
//! Teaches: what each x86 mode needs before its first instruction — IVT or IDT, GDT, TSS, page tables — and nothing more.
//!
//! Real, 16-bit, 32-bit and 64-bit ring-0 cases share one layout below 1 MiB (so a case may
//! switch modes and find what the new mode needs); ring-3 cases run in the native conformance
//! machine (`conformance::native_machine`), locked down so that ring 3 cannot reach its tables.
//!
//! | Address   | What                                                                  |
//! |-----------|-----------------------------------------------------------------------|
//! | `0x0000`  | real-mode IVT: vector v → `0000:STUBS16 + 4v`                          |
//! | `0x1000`  | GDT (see [`GDT`])                                                     |
//! | `0x2000`  | IDT of 16-bit gates, `0x2800` of 32-bit gates, `0x3000` of 64-bit gates |
//! | `0x4000`  | 32-bit TSS, `0x4100` 64-bit TSS                                       |
//! | `0x5000`  | PML4, PDPT, PD for 0–2 MiB, PT for 0–2 MiB (4 KiB pages), `0xC000` PD for 3–4 GiB |
//! | `0x9000`  | the stack page (SP starts at `0xA000`)                                |
//! | `0xA000`  | pseudo-descriptors for LGDT/LIDT (GDT, IVT, IDT16, IDT32, IDT64)       |
//! | `0xB000`  | stubs: 16-bit, `0xB400` 32-bit, `0xB800` 64-bit; 4 bytes per vector    |
//! | `0x10000` | the case's code, then the end marker                                  |
//! | `0x20000` | 16 KiB of data (fixed pseudo-random bytes)                            |
//! | `0x30000` | long mode: not present; `0x31000` read-only; `0x32000` not executable |
//!
//! A stub for an exception (vectors 0–31) is `hlt` with interrupts off (every gate and real-mode
//! INT clears IF): the case ends there on every engine, and where RIP stopped says which vector.
//! A stub for a software interrupt (32–255) is `iret`: INT n comes back.

use emulator::cpu::state::{ctl, flags, reg, CpuState, DescriptorTable, Seg, Segment};
use emulator::Machine;

use super::Mode;
use crate::conformance::native_machine as native;

pub const RAM: u64 = 2 << 20;
pub const GDT_BASE: u64 = 0x1000;
pub const IDT16: u64 = 0x2000;
pub const IDT32: u64 = 0x2800;
pub const IDT64: u64 = 0x3000;
pub const TSS32: u64 = 0x4000;
pub const TSS64: u64 = 0x4100;
pub const PML4: u64 = 0x5000;
const PDPT: u64 = 0x6000;
const PD0: u64 = 0x7000;
const PT0: u64 = 0x8000;
const PD3: u64 = 0xC000;
pub const STACK_TOP: u64 = 0xA000;
/// Pseudo-descriptors (limit, base) that mode-switching code loads with LGDT/LIDT.
pub const PTR_GDT: u64 = 0xA000;
pub const PTR_IVT: u64 = 0xA010;
pub const PTR_IDT16: u64 = 0xA020;
pub const PTR_IDT32: u64 = 0xA030;
pub const PTR_IDT64: u64 = 0xA040;
pub const STUBS16: u64 = 0xB000;
pub const STUBS32: u64 = 0xB400;
pub const STUBS64: u64 = 0xB800;
pub const CODE: u64 = 0x10000;
pub const DATA: u64 = 0x20000;
pub const DATA_LEN: u64 = 0x4000;
pub const NOT_PRESENT: u64 = 0x30000;
pub const READ_ONLY: u64 = 0x31000;
pub const NO_EXEC: u64 = 0x32000;
/// The ports a ring-3 case may use (IOPL 0, the TSS bitmap allows these): POST codes and
/// isa-debug-exit, which ends a ring-3 case.
pub const RING3_PORTS: [u16; 2] = [0x80, 0xF4];

/// Selectors of the shared GDT.
pub mod sel {
    pub const CODE32: u16 = 0x08;
    pub const DATA32: u16 = 0x10;
    /// 16-bit code, base 0 (the 16-bit stubs).
    pub const CODE16_LOW: u16 = 0x18;
    /// 16-bit data, base 0 (the stack in 16-bit modes).
    pub const DATA16_LOW: u16 = 0x20;
    pub const CODE64: u16 = 0x28;
    /// 16-bit code, base `CODE` (a pm16 case's code).
    pub const CODE16: u16 = 0x30;
    /// 16-bit data, base `DATA`.
    pub const DATA16: u16 = 0x38;
    /// 16-bit data, base `CODE`: the writable alias of the code (ES in 16-bit modes).
    pub const CODE16_ALIAS: u16 = 0x40;
    pub const TSS32: u16 = 0x48;
    pub const TSS64: u16 = 0x50;
    /// Flat data, DPL 3 (loading it at CPL 0 is fine, as SS it is a #GP).
    pub const DATA32_DPL3: u16 = 0x60;
    /// Data with a 4 KiB byte-granular limit (accesses past it: #GP or #SS).
    pub const DATA_SMALL: u16 = 0x68;
    /// Conforming 32-bit code.
    pub const CODE32_CONFORMING: u16 = 0x70;
    /// Data, not present (loading it: #NP).
    pub const DATA_NOT_PRESENT: u16 = 0x78;
    pub const ALL: [u16; 15] = [
        0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38, 0x40, 0x48, 0x50, 0x60, 0x68, 0x70, 0x78,
    ];
}

/// The shared GDT; every code and data descriptor has its accessed bit set, so loading one
/// writes nothing.
pub const GDT: [u64; 16] = [
    0,
    0x00CF_9B00_0000_FFFF, // 0x08 code32 flat
    0x00CF_9300_0000_FFFF, // 0x10 data32 flat
    0x0000_9B00_0000_FFFF, // 0x18 code16 base 0
    0x0000_9300_0000_FFFF, // 0x20 data16 base 0
    0x00AF_9B00_0000_FFFF, // 0x28 code64
    0x0000_9B01_0000_FFFF, // 0x30 code16 base 0x10000
    0x0000_9302_0000_FFFF, // 0x38 data16 base 0x20000
    0x0000_9301_0000_FFFF, // 0x40 data16 base 0x10000 (code alias)
    0x0000_8B00_4000_0067, // 0x48 busy 32-bit TSS at 0x4000
    0x0000_8B00_4100_0067, // 0x50 busy 64-bit TSS at 0x4100 (upper half: the next entry)
    0,
    0x00CF_F300_0000_FFFF, // 0x60 data32 flat, DPL 3
    0x0000_9300_0000_0FFF, // 0x68 data, limit 0xFFF
    0x00CF_9F00_0000_FFFF, // 0x70 code32 conforming
    0x00CF_1300_0000_FFFF, // 0x78 data, not present
];

/// The hidden part a descriptor loads (as the CPU fills it).
pub fn segment(selector: u16) -> Segment {
    let raw = GDT[selector as usize >> 3];
    let limit_raw = (raw & 0xFFFF) | ((raw >> 32) & 0xF_0000);
    let g = raw & (1 << 55) != 0;
    Segment {
        selector,
        base: ((raw >> 16) & 0xFF_FFFF) | ((raw >> 32) & 0xFF00_0000),
        limit: if g {
            (limit_raw << 12 | 0xFFF) as u32
        } else {
            limit_raw as u32
        },
        type_: ((raw >> 40) & 0xF) as u8,
        s: raw & (1 << 44) != 0,
        dpl: ((raw >> 45) & 3) as u8,
        present: raw & (1 << 47) != 0,
        avl: raw & (1 << 52) != 0,
        l: raw & (1 << 53) != 0,
        db: raw & (1 << 54) != 0,
        g,
        unusable: false,
    }
}

/// The bytes at the data area, the same for every case (so a finding needs only its code).
pub fn data_bytes() -> Vec<u8> {
    let mut rng = crate::conformance::native::Rng::new(0xDA7A);
    (0..DATA_LEN).map(|_| rng.next_u64() as u8).collect()
}

/// Where a case's code starts (linear) and what ends it: HLT in ring 0 (interrupts are off),
/// `out 0xF4, al` (isa-debug-exit) in ring 3, where HLT is a #GP.
pub fn code_start(mode: Mode) -> u64 {
    match mode {
        Mode::Ring3 => native::CODE,
        _ => CODE,
    }
}

pub fn end_marker(mode: Mode) -> &'static [u8] {
    match mode {
        Mode::Ring3 => &[0xE6, 0xF4],
        _ => &[0xF4],
    }
}

/// A machine for `mode` with `code` (the case, then the end marker) in place.
pub fn new_machine(mode: Mode, code: &[u8]) -> Machine {
    let mut m = match mode {
        Mode::Ring3 => ring3_machine(),
        _ => ring0_machine(mode),
    };
    let mut image = code.to_vec();
    image.extend_from_slice(end_marker(mode));
    let start = code_start(mode);
    let room = (m.ram.size() - start).min(0x10000) as usize;
    image.truncate(room);
    m.ram.write(start, &image).expect("code inside RAM");
    m
}

fn ring3_machine() -> Machine {
    let mut m = native::new_machine();
    native::lock_down(&mut m, &RING3_PORTS);
    let data = data_bytes();
    m.ram.write(native::DATA, &data[..4096]).unwrap();
    m.ram.write(native::READONLY, &data[..4096]).unwrap();
    native::set_user_segments(&mut m.cpu, native::CodeMode::Long64);
    m.cpu.rip = native::CODE;
    m.cpu.rflags = flags::FIXED1 | flags::IF;
    m.cpu.gpr = gprs(64, native::DATA, native::STACK_TOP, native::DATA + 0x300);
    m
}

/// Initial registers: pointers into the data area (as the mode's data segment sees it), a
/// small count in RCX, the null device's port in RDX, patterns elsewhere.
fn gprs(bits: u32, data: u64, stack: u64, frame: u64) -> [u64; 16] {
    let mut g = [0u64; 16];
    g[reg::RAX] = 0x0123_4567_89AB_CDEF;
    g[reg::RCX] = 5;
    g[reg::RDX] = 0x700;
    g[reg::RBX] = data + 0x100;
    g[reg::RSP] = stack;
    g[reg::RBP] = frame;
    g[reg::RSI] = data + 0x200;
    g[reg::RDI] = data + 0x400;
    for (i, v) in g.iter_mut().enumerate().skip(8) {
        *v = 0x0808_0808_0808_0808u64.wrapping_mul(i as u64) ^ (i as u64) << 60;
    }
    if bits < 64 {
        for v in g.iter_mut() {
            *v &= 0xFFFF_FFFF;
        }
        g[8..].fill(0);
    }
    g
}

fn write_tables(m: &mut Machine) {
    let ram = &mut m.ram;
    for v in 0..256u64 {
        ram.write_le(4 * v, 4, STUBS16 + 4 * v).unwrap(); // 0000:stub
        let exception = v < 32;
        let halt: &[u8] = &[0xF4, 0xEB, 0xFD, 0x90]; // hlt; jmp $-1
        ram.write(STUBS16 + 4 * v, if exception { halt } else { &[0xCF] })
            .unwrap();
        ram.write(STUBS32 + 4 * v, if exception { halt } else { &[0xCF] })
            .unwrap();
        ram.write(
            STUBS64 + 4 * v,
            if exception { halt } else { &[0x48, 0xCF] },
        )
        .unwrap();
        let gate = |off: u64, sel: u16, kind: u64| {
            (off & 0xFFFF) | (sel as u64) << 16 | (0x80 | kind) << 40 | (off >> 16 & 0xFFFF) << 48
        };
        ram.write_le(IDT16 + 8 * v, 8, gate(STUBS16 + 4 * v, sel::CODE16_LOW, 6))
            .unwrap();
        ram.write_le(IDT32 + 8 * v, 8, gate(STUBS32 + 4 * v, sel::CODE32, 0xE))
            .unwrap();
        ram.write_le(IDT64 + 16 * v, 8, gate(STUBS64 + 4 * v, sel::CODE64, 0xE))
            .unwrap();
    }
    for (i, e) in GDT.iter().enumerate() {
        ram.write_le(GDT_BASE + 8 * i as u64, 8, *e).unwrap();
    }
    // TSSs: ring-0 stack pointers (used only if a task switch or ring change happens).
    ram.write_le(TSS32 + 4, 4, STACK_TOP).unwrap();
    ram.write_le(TSS32 + 8, 2, sel::DATA32 as u64).unwrap();
    ram.write_le(TSS32 + 102, 2, 0x68).unwrap();
    ram.write_le(TSS64 + 4, 8, STACK_TOP).unwrap();
    ram.write_le(TSS64 + 102, 2, 0x68).unwrap();
    // Page tables (ring 0: no U bit; A and D left for the walker to set).
    ram.write_le(PML4, 8, PDPT | 3).unwrap();
    ram.write_le(PDPT, 8, PD0 | 3).unwrap();
    ram.write_le(PDPT + 24, 8, PD3 | 3).unwrap();
    ram.write_le(PD0, 8, PT0 | 3).unwrap();
    for i in 1..512u64 {
        ram.write_le(PD0 + 8 * i, 8, i << 21 | 0x83).unwrap();
        ram.write_le(PD3 + 8 * i, 8, ((3 << 30) + (i << 21)) | 0x83)
            .unwrap();
    }
    ram.write_le(PD3, 8, 3 << 30 | 0x83).unwrap();
    for i in 0..512u64 {
        let page = i << 12;
        let pte = match page {
            NOT_PRESENT => 0,
            READ_ONLY => page | 1,
            NO_EXEC => page | 3 | 1 << 63,
            _ => page | 3,
        };
        ram.write_le(PT0 + 8 * i, 8, pte).unwrap();
    }
    for (at, limit, base) in [
        (PTR_GDT, 8 * GDT.len() as u64 - 1, GDT_BASE),
        (PTR_IVT, 0x3FF, 0),
        (PTR_IDT16, 0x7FF, IDT16),
        (PTR_IDT32, 0x7FF, IDT32),
        (PTR_IDT64, 0xFFF, IDT64),
    ] {
        ram.write_le(at, 2, limit).unwrap();
        ram.write_le(at + 2, 8, base).unwrap();
    }
    ram.write(DATA, &data_bytes()).unwrap();
}

fn ring0_machine(mode: Mode) -> Machine {
    let mut m = Machine::new(RAM).expect("guest RAM");
    write_tables(&mut m);
    let mut s = CpuState::reset();
    s.gdtr = DescriptorTable {
        base: GDT_BASE,
        limit: 8 * GDT.len() as u16 - 1,
    };
    s.tr = Segment {
        type_: 0xB,
        ..segment(sel::TSS32)
    };
    s.rflags = flags::FIXED1;
    s.rip = CODE;
    let set = |s: &mut CpuState, cs: Segment, ds: Segment, es: Segment, ss: Segment| {
        s.seg = [ds; 6];
        s.seg[Seg::Cs as usize] = cs;
        s.seg[Seg::Es as usize] = es;
        s.seg[Seg::Ss as usize] = ss;
    };
    match mode {
        Mode::Real => {
            let real = |sel: u16, code| Segment::real_mode(sel, code);
            let code = (CODE >> 4) as u16;
            set(
                &mut s,
                real(code, true),
                real((DATA >> 4) as u16, false),
                real(code, false),
                real(0, false),
            );
            s.rip = 0;
            s.idtr = DescriptorTable {
                base: 0,
                limit: 0x3FF,
            };
            s.gpr = gprs(16, 0, STACK_TOP, STACK_TOP - 0x800);
        }
        Mode::Pm16 => {
            s.cr0 = ctl::CR0_PE | ctl::CR0_ET;
            set(
                &mut s,
                segment(sel::CODE16),
                segment(sel::DATA16),
                segment(sel::CODE16_ALIAS),
                segment(sel::DATA16_LOW),
            );
            s.rip = 0;
            s.idtr = DescriptorTable {
                base: IDT16,
                limit: 0x7FF,
            };
            s.gpr = gprs(16, 0, STACK_TOP, STACK_TOP - 0x800);
        }
        Mode::Pm32 => {
            s.cr0 = ctl::CR0_PE | ctl::CR0_ET;
            let d = segment(sel::DATA32);
            set(&mut s, segment(sel::CODE32), d, d, d);
            s.idtr = DescriptorTable {
                base: IDT32,
                limit: 0x7FF,
            };
            s.gpr = gprs(32, DATA, STACK_TOP, DATA + 0x300);
        }
        Mode::Long | Mode::Ring3 => {
            s.cr0 = ctl::CR0_PE | ctl::CR0_ET | ctl::CR0_NE | ctl::CR0_WP | ctl::CR0_PG;
            s.cr4 = ctl::CR4_PAE | ctl::CR4_OSFXSR | ctl::CR4_OSXMMEXCPT;
            s.cr3 = PML4;
            s.efer = ctl::EFER_LME | ctl::EFER_LMA | ctl::EFER_NXE;
            let d = segment(sel::DATA32);
            set(&mut s, segment(sel::CODE64), d, d, d);
            s.idtr = DescriptorTable {
                base: IDT64,
                limit: 0xFFF,
            };
            s.tr = Segment {
                type_: 0xB,
                ..segment(sel::TSS64)
            };
            s.gpr = gprs(64, DATA, STACK_TOP, DATA + 0x300);
        }
    }
    m.cpu = s;
    m
}

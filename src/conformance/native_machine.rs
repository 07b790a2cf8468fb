//! The small long-mode machine `conformance native` runs its cases in: GDT, IDT, TSS, page tables.
//! Teaches: the least a CPU needs to run ring-3 code in 64-bit and compatibility mode and to report its faults.
//!
//! Everything is written straight into guest RAM and `CpuState` (no boot code): both engines start
//! from the same bytes. Layout (all identity-mapped, user-accessible 4 KiB pages below 2 MiB):
//!
//! | Address   | What                                                                 |
//! |-----------|----------------------------------------------------------------------|
//! | `0x1000`  | GDT: kernel code/data, user 64-bit code, user data, user 32-bit code, 64-bit TSS |
//! | `0x2000`  | PML4, PDPT, PD, PT (the first 2 MiB in 4 KiB pages)                  |
//! | `0x6000`  | IDT: vectors 0–31, interrupt gates to the stubs (3 and 4 with DPL 3)  |
//! | `0x7000`  | TSS (RSP0 = top of the kernel stack)                                 |
//! | `0x8000`  | one 16-byte stub per vector: `push 0` (if the CPU pushed no error code), `out 0x81, al` |
//! | `0x9000`  | the kernel stack; the exception frame ends at `0xA000`               |
//! | `0x10000` | the case's code, then `out 0x80, al`                                 |
//! | `0xB000`  | the data page again (a second mapping, for 16-bit addresses)         |
//! | `0x30000` | the data page memory operands use; `0x50000` is not present, `0x60000` is read-only |
//!
//! A fault in a case therefore ends in a stub's OUT: the vector is where RIP stopped, the error
//! code and the interrupted RIP/CS/RFLAGS/RSP are on the kernel stack, and every other register
//! still holds its value at the fault.

use emulator::cpu::state::{ctl, CpuState, DescriptorTable, Seg, Segment};
use emulator::Machine;

pub const RAM: u64 = 2 << 20;
const GDT: u64 = 0x1000;
const PML4: u64 = 0x2000;
const PT: u64 = PML4 + 0x3000;
const IDT: u64 = 0x6000;
const TSS: u64 = 0x7000;
/// The TSS's limit: the 104-byte 64-bit TSS, a 32-byte I/O bitmap (ports 0–255) and its end byte.
const TSS_LIMIT: u64 = 0x68 + 32;
/// The exception stubs: vector `v` at `STUBS + 16 * v`.
pub const STUBS: u64 = 0x8000;
const STUB_SIZE: u64 = 16;
/// RSP0: where the CPU builds the exception frame.
pub const KSTACK_TOP: u64 = 0xA000;
/// Where each case's instruction is placed.
pub const CODE: u64 = 0x10000;
/// The random data page memory operands point into.
pub const DATA: u64 = 0x30000;
/// The stack page; RSP starts in its middle.
pub const STACK: u64 = 0x40000;
pub const STACK_TOP: u64 = STACK + 0x800;
/// A second linear address of the data page, below 64 KiB: what 16-bit addressing (an 0x67
/// prefix in 32-bit code) can reach.
pub const DATA_ALIAS16: u64 = 0xB000;
/// A page that is not present: any access is a #PF.
pub const UNMAPPED: u64 = 0x50000;
/// A read-only user page holding a copy of the data page: writes are a #PF.
pub const READONLY: u64 = 0x60000;
/// A non-canonical address (bit 47 set, bits 63:48 clear): any access is a #GP(0).
pub const NONCANONICAL: u64 = DATA | 1 << 47;
pub const USER_CS64: u16 = 0x18 | 3;
pub const USER_SS: u16 = 0x20 | 3;
pub const USER_CS32: u16 = 0x28 | 3;
const TSS_SEL: u16 = 0x30;
/// The case's exit port (`out 0x80, al`: POST codes, ignored by the bus).
pub const EXIT_BYTES: [u8; 2] = [0xE6, 0x80];
/// Vectors for which the CPU pushes an error code.
const ERROR_CODE_VECTORS: [u8; 9] = [8, 10, 11, 12, 13, 14, 17, 21, 30];

/// What an exception left: read from the stub RIP stopped at and the frame on the kernel stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub vector: u8,
    pub error_code: u64,
    /// CR2 (compared for #PF only).
    pub cr2: u64,
    /// The interrupted RIP, CS, RFLAGS and RSP from the frame.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
}

impl Fault {
    pub fn name(&self) -> String {
        const NAMES: [&str; 22] = [
            "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "v9", "#TS", "#NP",
            "#SS", "#GP", "#PF", "v15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
        ];
        NAMES
            .get(self.vector as usize)
            .map_or(format!("v{}", self.vector), |n| n.to_string())
    }
}

/// The modes a case's code segment can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMode {
    /// 64-bit mode: CS.L = 1.
    Long64,
    /// Compatibility mode: CS.L = 0, CS.D = 1 (32-bit code in a long-mode guest).
    Compat32,
}

impl CodeMode {
    pub fn bits(self) -> u32 {
        match self {
            CodeMode::Long64 => 64,
            CodeMode::Compat32 => 32,
        }
    }
}

fn write_tables(m: &mut Machine) {
    let gdt: [u64; 8] = [
        0,
        0x00AF_9A00_0000_FFFF, // 0x08: code, 64-bit, DPL 0
        0x00CF_9200_0000_FFFF, // 0x10: data, DPL 0
        0x00AF_FA00_0000_FFFF, // 0x18: code, 64-bit, DPL 3
        0x00CF_F200_0000_FFFF, // 0x20: data, DPL 3
        0x00CF_FA00_0000_FFFF, // 0x28: code, 32-bit (L=0, D=1), DPL 3: compatibility mode
        // 0x30: available 64-bit TSS (type 9), base TSS (< 16 MiB), upper half 0.
        0x0000_8900_0000_0000 | TSS_LIMIT | (TSS & 0xFF_FFFF) << 16,
        0,
    ];
    for (i, e) in gdt.iter().enumerate() {
        m.ram.write_le(GDT + 8 * i as u64, 8, *e).unwrap();
    }
    // Page tables: PML4 → PDPT → PD; PD[0] → PT (4 KiB pages), the rest 2 MiB pages, all user.
    let (pdpt, pd) = (PML4 + 0x1000, PML4 + 0x2000);
    m.ram.write_le(PML4, 8, pdpt | 7).unwrap();
    m.ram.write_le(pdpt, 8, pd | 7).unwrap();
    m.ram.write_le(pd, 8, PT | 7).unwrap();
    for i in 1..512u64 {
        m.ram.write_le(pd + 8 * i, 8, (i << 21) | 0x87).unwrap();
    }
    for i in 0..512u64 {
        let page = i << 12;
        let pte = match page {
            UNMAPPED => 0,
            DATA_ALIAS16 => DATA | 7,
            READONLY => page | 5,
            _ => page | 7,
        };
        m.ram.write_le(PT + 8 * i, 8, pte).unwrap();
    }
    // IDT: 64-bit interrupt gates (type 0xE) to the stubs; #BP and #OF reachable from ring 3
    // (INT3/INTO), every other vector DPL 0 (INT n from ring 3 is then a #GP).
    for v in 0..32u64 {
        let stub = STUBS + STUB_SIZE * v;
        let dpl = if v == 3 || v == 4 { 3 } else { 0 };
        let low =
            (stub & 0xFFFF) | 0x08 << 16 | (0x8E | dpl << 5) << 40 | ((stub >> 16) & 0xFFFF) << 48;
        m.ram.write_le(IDT + 16 * v, 8, low).unwrap();
        m.ram.write_le(IDT + 16 * v + 8, 8, stub >> 32).unwrap();
        // The stub: push a 0 where the CPU pushes no error code, so every frame looks alike.
        let mut code = Vec::new();
        if !ERROR_CODE_VECTORS.contains(&(v as u8)) {
            code.extend_from_slice(&[0x6A, 0x00]);
        }
        code.extend_from_slice(&[0xE6, 0x81, 0xF4, 0xEB, 0xFD]); // out 0x81, al; hlt; jmp hlt
        m.ram.write(stub, &code).unwrap();
    }
    // TSS: RSP0, and an I/O bitmap allowing ports 0–255. IOPL 3 alone allows the OUTs on a
    // CPU, but PVM checks the bitmap whatever IOPL says (measured: without it, #GP).
    m.ram.write_le(TSS + 4, 8, KSTACK_TOP).unwrap();
    m.ram.write_le(TSS + 102, 2, 0x68).unwrap();
    m.ram.write(TSS + 0x68, &[0u8; 33]).unwrap();
    m.ram.write(TSS + 0x68 + 32, &[0xFF]).unwrap();
}

/// A machine ready for cases: tables in RAM, a ring-3 64-bit CPU.
pub fn new_machine() -> Machine {
    let mut m = Machine::new(RAM).expect("guest RAM");
    write_tables(&mut m);
    let mut cpu = CpuState::multiboot_entry(CODE as u32, 0);
    cpu.gdtr = DescriptorTable {
        base: GDT,
        limit: 8 * 8 - 1,
    };
    cpu.idtr = DescriptorTable {
        base: IDT,
        limit: 32 * 16 - 1,
    };
    cpu.tr = Segment {
        selector: TSS_SEL,
        base: TSS,
        limit: TSS_LIMIT as u32,
        type_: 0xB, // busy 64-bit TSS
        s: false,
        present: true,
        ..Default::default()
    };
    cpu.cr3 = PML4;
    // OSXMMEXCPT: unmasked SSE exceptions are #XM (PVM runs ring 3 with the host's CR4, which
    // has it, whatever the guest's says).
    cpu.cr4 = ctl::CR4_PAE | ctl::CR4_OSFXSR | ctl::CR4_OSXMMEXCPT;
    cpu.cr0 = ctl::CR0_PE
        | ctl::CR0_ET
        | ctl::CR0_NE
        | ctl::CR0_WP
        | ctl::CR0_PG
        | ctl::CR0_MP
        | ctl::CR0_AM;
    cpu.efer = ctl::EFER_LME | ctl::EFER_LMA;
    m.cpu = cpu;
    set_user_segments(&mut m.cpu, CodeMode::Long64);
    m
}

/// Ring-3 segments for `mode` (a fault may have left the CPU in ring 0 with other ones).
pub fn set_user_segments(cpu: &mut CpuState, mode: CodeMode) {
    let data = Segment {
        dpl: 3,
        ..Segment::flat32(USER_SS, false)
    };
    cpu.seg = [data; 6];
    cpu.seg[Seg::Cs as usize] = match mode {
        CodeMode::Long64 => Segment {
            dpl: 3,
            l: true,
            db: false,
            ..Segment::flat32(USER_CS64, true)
        },
        CodeMode::Compat32 => Segment {
            dpl: 3,
            ..Segment::flat32(USER_CS32, true)
        },
    };
    // Null FS/GS, as a 64-bit kernel leaves them (under PVM they read back as 0 anyway).
    for s in [Seg::Fs, Seg::Gs] {
        cpu.seg[s as usize] = Segment {
            selector: 0,
            unusable: true,
            ..data
        };
    }
    cpu.cr2 = 0;
    cpu.events = Default::default();
}

/// If RIP stopped right after a stub's OUT, the fault that led there.
pub fn fault_at(m: &Machine) -> Option<Fault> {
    let rip = m.cpu.rip;
    if !(STUBS..STUBS + 32 * STUB_SIZE).contains(&rip) {
        return None;
    }
    let vector = ((rip - STUBS) / STUB_SIZE) as u8;
    let frame = KSTACK_TOP - 6 * 8;
    let word = |i: u64| m.ram.read_le(frame + 8 * i, 8).unwrap_or(0);
    Some(Fault {
        vector,
        error_code: word(0),
        cr2: m.cpu.cr2,
        rip: word(1),
        cs: word(2),
        rflags: word(3),
        rsp: word(4),
    })
}

/// Turns the conformance machine into one that random ring-3 code cannot reach past (what
/// `vmscope fuzz --mode ring3` runs): the tables, stubs and kernel stack below `CODE` become
/// supervisor pages, what lies past the end of RAM is not mapped, every paging entry has its
/// accessed and dirty bits set already (a CPU and
/// an emulator may set them at different moments; now neither writes them), the I/O bitmap
/// allows only `ports` (IOPL 0 makes every other IN/OUT a #GP, so ring 3 cannot program the
/// timers or the interrupt controllers), and CR4.TSD makes RDTSC a #GP (its value is host time
/// on KVM).
pub fn lock_down(m: &mut Machine, ports: &[u16]) {
    let (pdpt, pd) = (PML4 + 0x1000, PML4 + 0x2000);
    for table in [PML4, pdpt] {
        let e = m.ram.read_le(table, 8).unwrap();
        m.ram.write_le(table, 8, e | 0x20).unwrap();
    }
    for i in 0..512u64 {
        let e = m.ram.read_le(pd + 8 * i, 8).unwrap();
        // A 2 MiB page gets A and D; the entry pointing to the page table only A. Pages with
        // no RAM behind them are not mapped (KVM cannot fetch code from where no memory is).
        let ad = if e & 0x80 != 0 { 0x60 } else { 0x20 };
        let present = (i << 21) < m.ram.size();
        m.ram
            .write_le(pd + 8 * i, 8, if present { e | ad } else { 0 })
            .unwrap();
        let pte = m.ram.read_le(PT + 8 * i, 8).unwrap();
        if pte & 1 != 0 {
            let user = if (i << 12) < CODE && (i << 12) != DATA_ALIAS16 {
                0
            } else {
                4
            };
            m.ram
                .write_le(PT + 8 * i, 8, (pte & !4) | user | 0x60)
                .unwrap();
        }
    }
    let mut bitmap = [0xFFu8; 32];
    for &p in ports.iter().filter(|&&p| p < 256) {
        bitmap[p as usize / 8] &= !(1 << (p % 8));
    }
    m.ram.write(TSS + 0x68, &bitmap).unwrap();
    m.cpu.cr4 |= ctl::CR4_TSD;
}

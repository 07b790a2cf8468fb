//! `vmscope conformance native`: the interpreter compared with the real CPU, instruction by instruction.
//! Teaches: differential testing — run one random state on the emulator and natively in a KVM ring-3 guest, then diff.
//!
//! Each case is one instruction (see [`super::native_forms`]) followed by `out 0x80, al`. Both
//! machines start from the same 64-bit ring-3 state, made directly in `CpuState` (GDT, identity
//! page tables with user pages, CS/SS at DPL 3, IOPL 3 so the OUT is allowed and exits to the VMM).
//! Both run until that one I/O access; then every GPR, RIP, RFLAGS (less the flags the architecture
//! leaves undefined for the case), the data page and the stack page are compared. KVM re-enters the
//! same vCPU for every case with new registers, so a case costs one exit.

use std::fmt::Write as _;

use accel_kvm::{kvm_available, KvmEngine};
use emulator::cpu::state::{ctl, flags, CpuState, DescriptorTable, Seg, Segment};
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Machine, RunLimit};

pub use super::native_forms::Case;
use super::native_forms::{self, Form};

const RAM: u64 = 2 << 20;
const GDT: u64 = 0x1000;
const PML4: u64 = 0x2000;
/// Where each case's instruction is placed.
pub const CODE: u64 = 0x10000;
/// The random data page memory operands point into (R15 holds its address).
pub const DATA: u64 = 0x30000;
/// The stack page; RSP starts in its middle.
pub const STACK: u64 = 0x40000;
pub const STACK_TOP: u64 = STACK + 0x800;
const USER_CS: u16 = 0x18 | 3;
const USER_SS: u16 = 0x20 | 3;
/// The port of the exit instruction (`out 0x80, al`: POST codes, ignored by the bus).
const EXIT_BYTES: [u8; 2] = [0xE6, 0x80];

/// A small deterministic generator (SplitMix64), so `--seed` reproduces a run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// All ones or all zeros.
    pub fn mask(&mut self) -> u64 {
        if self.next_u64() & 1 == 0 {
            0
        } else {
            u64::MAX
        }
    }
}

/// What the CPU left behind after one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    pub data: Vec<u8>,
    pub stack: Vec<u8>,
    /// `None` when the engine stopped at the exit OUT; otherwise why it did not.
    pub abnormal: Option<String>,
}

/// Options for [`run`].
#[derive(Debug, Clone)]
pub struct Options {
    pub forms: String,
    pub cases: usize,
    pub seed: u64,
    /// Test hook: XOR this into the interpreter's RFLAGS before comparing (proves a wrong result
    /// is reported).
    pub corrupt_interp_rflags: u64,
}

/// Per-form counts and the first failures.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<(String, usize, usize)>,
    pub failures: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.rows.iter().map(|r| r.1).sum()
    }
    pub fn total(&self) -> usize {
        self.rows.iter().map(|r| r.2).sum()
    }
    pub fn render(&self, details: usize) -> String {
        let mut out = String::new();
        for (name, p, t) in &self.rows {
            let mark = if p == t { "ok" } else { "FAIL" };
            let _ = writeln!(out, "{name:<28} {p:>5}/{t:<5} {mark}");
        }
        for f in self.failures.iter().take(details) {
            let _ = writeln!(out, "{f}");
        }
        let _ = writeln!(out, "passed {} of {}", self.passed(), self.total());
        out
    }
}

fn write_setup(m: &mut Machine) {
    let gdt: [u64; 5] = [
        0,
        0x00AF_9A00_0000_FFFF, // 0x08: code, 64-bit, DPL 0
        0x00CF_9200_0000_FFFF, // 0x10: data, DPL 0
        0x00AF_FA00_0000_FFFF, // 0x18: code, 64-bit, DPL 3
        0x00CF_F200_0000_FFFF, // 0x20: data, DPL 3
    ];
    for (i, e) in gdt.iter().enumerate() {
        m.ram.write_le(GDT + 8 * i as u64, 8, *e).unwrap();
    }
    // Identity-map the first 1 GiB with user-accessible 2 MiB pages.
    let (pdpt, pd) = (PML4 + 0x1000, PML4 + 0x2000);
    m.ram.write_le(PML4, 8, pdpt | 7).unwrap();
    m.ram.write_le(pdpt, 8, pd | 7).unwrap();
    for i in 0..512u64 {
        m.ram.write_le(pd + 8 * i, 8, (i << 21) | 0x87).unwrap();
    }
    let mut cpu = CpuState::multiboot_entry(CODE as u32, 0);
    cpu.gdtr = DescriptorTable {
        base: GDT,
        limit: 5 * 8 - 1,
    };
    cpu.cr3 = PML4;
    cpu.cr4 = ctl::CR4_PAE | ctl::CR4_OSFXSR;
    cpu.cr0 = ctl::CR0_PE | ctl::CR0_ET | ctl::CR0_NE | ctl::CR0_WP | ctl::CR0_PG | ctl::CR0_MP;
    cpu.efer = ctl::EFER_LME | ctl::EFER_LMA;
    let data = Segment {
        dpl: 3,
        ..Segment::flat32(USER_SS, false)
    };
    cpu.seg = [data; 6];
    cpu.seg[Seg::Cs as usize] = Segment {
        dpl: 3,
        l: true,
        db: false,
        ..Segment::flat32(USER_CS, true)
    };
    m.cpu = cpu;
}

/// A machine ready for cases: page tables, GDT, ring-3 long-mode CPU.
pub fn new_machine() -> Machine {
    let mut m = Machine::new(RAM).expect("guest RAM");
    write_setup(&mut m);
    m
}

/// Puts `case` (and `data`) into `m`: code + exit OUT at CODE, data page, zeroed stack page.
fn load_case(m: &mut Machine, case: &Case, data: &[u8]) {
    let mut code = case.code.clone();
    code.extend_from_slice(&EXIT_BYTES);
    m.ram.write(CODE, &code).unwrap();
    m.ram.write(DATA, data).unwrap();
    m.ram.write(STACK, &[0u8; 4096]).unwrap();
    m.cpu.gpr = case.gpr;
    m.cpu.rflags = case.rflags;
    m.cpu.rip = CODE;
}

fn outcome(m: &Machine, exit: Result<Exit, String>, expect_rip: u64) -> Outcome {
    let mut data = vec![0u8; 4096];
    let mut stack = vec![0u8; 4096];
    m.ram.read(DATA, &mut data).unwrap();
    m.ram.read(STACK, &mut stack).unwrap();
    let abnormal = match exit {
        Ok(Exit::LimitReached) if m.cpu.rip == expect_rip => None,
        Ok(e) => Some(format!("stopped with {e:?} at rip {:#x}", m.cpu.rip)),
        Err(e) => Some(e),
    };
    Outcome {
        gpr: m.cpu.gpr,
        rip: m.cpu.rip,
        rflags: m.cpu.rflags,
        data,
        stack,
        abnormal,
    }
}

fn limit() -> RunLimit {
    RunLimit {
        instructions: None,
        io_accesses: Some(1),
    }
}

/// Runs `case` on the interpreter.
pub fn run_interp(m: &mut Machine, interp: &mut Interpreter, case: &Case, data: &[u8]) -> Outcome {
    load_case(m, case, data);
    interp.flush_caches(m);
    let lim = RunLimit {
        instructions: Some(100_000),
        ..limit()
    };
    let exit = interp.run(m, lim).map_err(|e| e.to_string());
    outcome(m, exit, CODE + case.code.len() as u64 + 2)
}

/// Runs `case` natively on KVM (ring 3).
pub fn run_kvm(m: &mut Machine, kvm: &mut KvmEngine, case: &Case, data: &[u8]) -> Outcome {
    load_case(m, case, data);
    let exit = kvm.run(m, limit()).map_err(|e| e.to_string());
    outcome(m, exit, CODE + case.code.len() as u64 + 2)
}

/// The differences between two outcomes of `case` (empty = agree), ignoring undefined flags/regs.
pub fn compare(case: &Case, interp: &Outcome, native: &Outcome) -> Vec<String> {
    let mut diffs = Vec::new();
    if interp.abnormal.is_some() || native.abnormal.is_some() {
        if interp.abnormal != native.abnormal {
            diffs.push(format!(
                "interp: {:?}, native: {:?}",
                interp.abnormal, native.abnormal
            ));
        }
        return diffs;
    }
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    for (i, name) in NAMES.iter().enumerate() {
        if case.undefined_regs & (1 << i) == 0 && interp.gpr[i] != native.gpr[i] {
            diffs.push(format!(
                "{name}: interp {:#x} native {:#x}",
                interp.gpr[i], native.gpr[i]
            ));
        }
    }
    if interp.rip != native.rip {
        diffs.push(format!(
            "rip: interp {:#x} native {:#x}",
            interp.rip, native.rip
        ));
    }
    // RF and the reserved/system bits are not the instruction's result.
    let mask = (flags::STATUS | flags::DF) & !case.undefined_flags;
    if interp.rflags & mask != native.rflags & mask {
        diffs.push(format!(
            "rflags: interp {:#x} native {:#x} (compared bits {mask:#x})",
            interp.rflags & mask,
            native.rflags & mask
        ));
    }
    for (what, a, b, base) in [
        ("data", &interp.data, &native.data, DATA),
        ("stack", &interp.stack, &native.stack, STACK),
    ] {
        if let Some(off) = (0..a.len()).find(|&o| a[o] != b[o]) {
            diffs.push(format!(
                "{what} byte {:#x}: interp {:#04x} native {:#04x}",
                base + off as u64,
                a[off],
                b[off]
            ));
        }
    }
    diffs
}

fn hex_regs(g: &[u64; 16]) -> String {
    g.iter()
        .map(|v| format!("{v:x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs every selected form `opts.cases` times on both engines and compares.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    kvm_available().map_err(|e| anyhow::anyhow!("conformance native needs KVM: {e}"))?;
    let forms: Vec<Form> = native_forms::select_forms(&opts.forms);
    if forms.is_empty() {
        anyhow::bail!("no form matches {:?}", opts.forms);
    }
    let mut mi = new_machine();
    let mut mk = new_machine();
    let mut interp = Interpreter::new();
    let mut kvm = KvmEngine::new(&mk)?;
    let mut rng = Rng::new(opts.seed);
    let mut report = Report::default();
    let mut data = vec![0u8; 4096];
    for form in &forms {
        let mut passed = 0;
        let mut tried = 0;
        let mut draws = 0;
        while tried < opts.cases && draws < opts.cases * 50 + 100 {
            draws += 1;
            for b in data.iter_mut() {
                *b = rng.next_u64() as u8;
            }
            let Some(case) = native_forms::generate(form, &mut rng, &data) else {
                continue;
            };
            tried += 1;
            let mut a = run_interp(&mut mi, &mut interp, &case, &data);
            a.rflags ^= opts.corrupt_interp_rflags;
            let b = run_kvm(&mut mk, &mut kvm, &case, &data);
            let diffs = compare(&case, &a, &b);
            if diffs.is_empty() {
                passed += 1;
            } else if report.failures.len() < 1000 {
                report.failures.push(format!(
                    "FAIL {}: {} [{}]\n  before: rflags {:#x} regs {}\n  {}",
                    form.name,
                    case.text,
                    case.code
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>(),
                    case.rflags,
                    hex_regs(&case.gpr),
                    diffs.join("\n  ")
                ));
            }
        }
        report.rows.push((form.name.clone(), passed, tried));
    }
    Ok(report)
}

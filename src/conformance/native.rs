//! `vmscope conformance native`: the interpreter compared with the real CPU, instruction by instruction.
//! Teaches: differential testing — run one random state on the emulator and natively in a KVM ring-3 guest, then diff.
//!
//! Each case is one instruction (see [`super::native_forms`], [`super::native_raw`]) followed by
//! `out 0x80, al`. Both machines start from the same ring-3 state in 64-bit or compatibility mode,
//! made directly in `CpuState` ([`super::native_machine`]: GDT, IDT, TSS, page tables, IOPL 3 so
//! the OUT exits to the VMM). Both run until one I/O access: the case's OUT, or the OUT of the
//! exception stub a fault went to. Then every GPR, RIP, RFLAGS (less the flags the architecture
//! leaves undefined for the case), the data page and the stack page are compared, and for a fault
//! the vector, error code, CR2 (#PF) and the frame's CS/RIP/RSP/RFLAGS. KVM re-enters the same
//! vCPU for every case with new registers, so a case costs one exit. The binary translator runs
//! every case too (a block of the instruction and the OUT callout: its specialised form and its
//! deferred flags) and must agree with the CPU under the same rules; its differences print as
//! `bt: …`.
//!
//! On PVM (KVM without VT-x) 64-bit ring-3 code runs on the CPU, but 32-bit compatibility-mode
//! code and every ring-3 #GP go through KVM's instruction emulator: for them the oracle is that
//! emulator, not silicon. Where it measurably differs from the SDM, [`PVM_QUIRKS`] says so and
//! [`pvm_quirk`] counts the case as not comparable (`--strict` counts it as a failure).

use std::fmt::Write as _;

use accel_kvm::{kvm_available, KvmEngine};
use emulator::bt::BinaryTranslator;
use emulator::cpu::state::{flags, reg};
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Machine, RunLimit};

pub use super::native_forms::Case;
use super::native_forms::{self, Form};
use super::native_vendor;

use super::native_machine::{
    fault_at, set_user_segments, EXIT_BYTES, KSTACK_TOP, READONLY, UNMAPPED,
};
pub use super::native_machine::{new_machine, CodeMode, Fault, CODE, DATA, STACK, STACK_TOP};

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
    /// `None` when the engine stopped at the exit OUT or in an exception stub; otherwise why.
    pub abnormal: Option<String>,
    /// The exception the case raised (then RIP, RSP and RFLAGS are the frame's).
    pub fault: Option<Fault>,
    /// The x87/SSE state at the end (compared for the vector forms).
    pub fpu: emulator::cpu::FpuState,
}

/// Options for [`run`].
#[derive(Debug, Clone)]
pub struct Options {
    pub forms: String,
    pub cases: usize,
    pub seed: u64,
    /// Count every difference as a failure, also the documented PVM quirks.
    pub strict: bool,
    /// Test hook: XOR this into the interpreter's RFLAGS before comparing (proves a wrong result
    /// is reported).
    pub corrupt_interp_rflags: u64,
}

/// Per-form counts and the first failures.
#[derive(Debug, Default)]
pub struct Report {
    /// Per form: name, passed, compared, not comparable (PVM quirks).
    pub rows: Vec<(String, usize, usize, usize)>,
    pub failures: Vec<String>,
    /// How many cases faulted on the real CPU, by exception.
    pub faults: std::collections::BTreeMap<String, usize>,
    /// Cases not compared because PVM differs from a CPU in a documented way, by quirk.
    pub quirks: std::collections::BTreeMap<&'static str, usize>,
    /// Cases where a documented difference between CPU vendors was set aside, by difference
    /// (see [`super::native_vendor`]).
    pub vendor: std::collections::BTreeMap<&'static str, usize>,
    /// The seed and case count of the run, so a failure can be replayed exactly.
    pub seed: u64,
    pub cases: usize,
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
        for (name, p, t, q) in &self.rows {
            let mark = match (p, t) {
                (_, 0) if *q > 0 => "not comparable (PVM quirk)",
                (_, 0) => "no valid case drawn",
                _ if p == t => "ok",
                _ => "FAIL",
            };
            let _ = writeln!(out, "{name:<28} {p:>5}/{t:<5} {mark}");
        }
        for f in self.failures.iter().take(details) {
            let _ = writeln!(out, "{f}");
        }
        if !self.faults.is_empty() {
            let list: Vec<String> = self
                .faults
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(out, "cases that faulted natively: {}", list.join(", "));
        }
        for (q, n) in &self.quirks {
            let _ = writeln!(out, "not comparable on PVM ({q}): {n} cases");
        }
        for (v, n) in &self.vendor {
            let _ = writeln!(out, "set aside as a CPU vendor difference ({v}): {n} cases");
        }
        let _ = writeln!(out, "passed {} of {}", self.passed(), self.total());
        let failing: Vec<&str> = self
            .rows
            .iter()
            .filter(|(_, p, t, _)| p != t)
            .map(|(name, ..)| name.as_str())
            .collect();
        if failing.is_empty() {
            let _ = writeln!(out, "seed {}", self.seed);
        } else {
            let _ = writeln!(
                out,
                "seed {}; replay: vmscope conformance native --seed {} --cases {} --forms {}",
                self.seed,
                self.seed,
                self.cases,
                failing.join(",")
            );
        }
        out
    }
}

/// Puts `case` (and `data`) into `m`: code + exit OUT at CODE, the data page (and its read-only
/// copy), the stack page with the case's initial stack bytes, ring-3 segments for its mode.
fn load_case(m: &mut Machine, case: &Case, data: &[u8]) {
    let mut code = case.code.clone();
    code.extend_from_slice(&EXIT_BYTES);
    m.ram.write(CODE, &code).unwrap();
    m.ram.write(DATA, data).unwrap();
    m.ram.write(READONLY, data).unwrap();
    m.ram.write(STACK, &[0u8; 4096]).unwrap();
    m.ram.write(STACK_TOP, &case.stack_init).unwrap();
    // The page below the unmapped one: split accesses and REP strings that run into the
    // unmapped page write here; start every case from the same (zero) bytes.
    m.ram.write(UNMAPPED - 4096, &[0u8; 4096]).unwrap();
    m.ram.write(KSTACK_TOP - 64, &[0u8; 64]).unwrap();
    set_user_segments(&mut m.cpu, case.mode);
    m.cpu.fpu = case.fpu.as_deref().cloned().unwrap_or_default();
    m.cpu.gpr = case.gpr;
    m.cpu.rflags = case.rflags;
    m.cpu.rip = CODE;
}

fn outcome(m: &Machine, exit: Result<Exit, String>, expect_rip: u64) -> Outcome {
    let mut data = vec![0u8; 4096];
    let mut stack = vec![0u8; 4096];
    m.ram.read(DATA, &mut data).unwrap();
    m.ram.read(STACK, &mut stack).unwrap();
    let fault = fault_at(m);
    let abnormal = match exit {
        Ok(Exit::LimitReached) if m.cpu.rip == expect_rip || fault.is_some() => None,
        Ok(e) => Some(format!(
            "stopped ({}) at rip {:#x}",
            crate::runner::exit_summary(&e),
            m.cpu.rip
        )),
        Err(e) => Some(e),
    };
    let mut out = Outcome {
        gpr: m.cpu.gpr,
        rip: m.cpu.rip,
        rflags: m.cpu.rflags,
        data,
        stack,
        abnormal,
        fault: None,
        fpu: m.cpu.fpu.clone(),
    };
    if let Some(f) = fault {
        // The state at the fault: RIP, RSP and RFLAGS from the frame, the rest as they are.
        out.rip = f.rip;
        out.rflags = f.rflags;
        out.gpr[reg::RSP] = f.rsp;
        out.fault = Some(f);
    }
    out
}

fn limit() -> RunLimit {
    RunLimit::io_accesses(1)
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

/// Runs `case` on the binary translator (its block: the instruction, then the `out` callout).
pub fn run_bt(m: &mut Machine, bt: &mut BinaryTranslator, case: &Case, data: &[u8]) -> Outcome {
    load_case(m, case, data);
    bt.flush_caches(m);
    let lim = RunLimit {
        instructions: Some(100_000),
        ..limit()
    };
    let exit = bt.run(m, lim).map_err(|e| e.to_string());
    outcome(m, exit, CODE + case.code.len() as u64 + 2)
}

/// Runs `case` natively on KVM (ring 3).
pub fn run_kvm(m: &mut Machine, kvm: &mut KvmEngine, case: &Case, data: &[u8]) -> Outcome {
    load_case(m, case, data);
    // A case whose code KVM's instruction emulator misreads may loop without I/O (seen with
    // address-size-prefixed hint NOPs in compatibility mode): a time bound ends it.
    let lim = RunLimit {
        time_ns: Some(200_000_000),
        ..limit()
    };
    let exit = kvm.run(m, lim).map_err(|e| e.to_string());
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
    match (&interp.fault, &native.fault) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            let page = if case.multi_part { !0xFFF } else { u64::MAX };
            let cr2 = |f: &Fault| if f.vector == 14 { f.cr2 & page } else { 0 };
            if (a.vector, a.error_code, a.cs, cr2(a)) != (b.vector, b.error_code, b.cs, cr2(b)) {
                diffs.push(format!(
                    "fault: interp {} error {:#x} cs {:#x} cr2 {:#x}, native {} error {:#x} cs {:#x} cr2 {:#x}",
                    a.name(), a.error_code, a.cs, cr2(a), b.name(), b.error_code, b.cs, cr2(b)
                ));
            }
        }
        (a, b) => diffs.push(format!(
            "fault: interp {}, native {}",
            a.as_ref().map_or("none".into(), Fault::name),
            b.as_ref().map_or("none".into(), Fault::name)
        )),
    }
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    // Compatibility mode sees only EAX..EDI; the SDM leaves the upper halves and R8-R15
    // undefined across a mode switch, so only the low 32 bits of the eight are compared.
    let (nregs, width) = match case.mode {
        CodeMode::Long64 => (16, u64::MAX),
        CodeMode::Compat32 => (8, 0xFFFF_FFFF),
    };
    for (i, name) in NAMES.iter().enumerate().take(nregs) {
        if case.undefined_regs & (1 << i) == 0 && (interp.gpr[i] ^ native.gpr[i]) & width != 0 {
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
    // After a fault the instruction did not complete: every flag is defined, also RF (set in
    // the frame of a fault) and the system flags. Otherwise RF and the system bits are not the
    // instruction's result.
    let trap = |f: &Fault| matches!(f.vector, 1 | 3 | 4);
    let mask = match (&interp.fault, &native.fault) {
        // A trap (#DB single-step, INT3, INTO) comes after the instruction completed: its
        // undefined flags stay undefined.
        (Some(a), Some(b)) if trap(a) && trap(b) => FRAME_FLAGS & !case.undefined_flags,
        (Some(_), Some(_)) => FRAME_FLAGS,
        _ => (flags::STATUS | flags::DF | case.compare_flags) & !case.undefined_flags,
    };
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
    if case.fpu.is_some() {
        let (mut interp_fpu, mut native_fpu) = (interp.fpu.clone(), native.fpu.clone());
        let keep = case.fsw_not_compared;
        native_fpu.set_fsw((native.fpu.fsw() & !keep) | (interp.fpu.fsw() & keep));
        if case.mmx_operand && native.fault.is_some() {
            // A faulting MMX instruction may or may not have made the x87 state MMX-shaped
            // (the SDM does not say; AMD CPUs differ by instruction): compare both as if it had.
            interp_fpu.enter_mmx();
            native_fpu.enter_mmx();
        }
        for d in interp_fpu.differences(&native_fpu) {
            diffs.push(format!("x87/SSE {d} (interp vs native)"));
        }
    }
    diffs
}

/// The RFLAGS bits compared in an exception frame. Not IOPL: PVM pushes the frame with IOPL 0
/// although the guest runs with IOPL 3 (measured; a PVM quirk, see [`PVM_QUIRKS`]).
const FRAME_FLAGS: u64 =
    flags::STATUS | flags::DF | flags::TF | flags::IF | flags::NT | flags::RF | flags::AC;

/// What this harness found PVM (KVM without VT-x) to do differently from a CPU, and how the
/// comparison deals with it. `--rules` prints them; [`pvm_quirk`] recognises the cases.
pub const PVM_QUIRKS: &[(&str, &str)] = &[
    (
        "IN/OUT at CPL 3 with IOPL 3",
        "#GP unless the TSS I/O bitmap allows the port: PVM checks the bitmap whatever IOPL says (the harness's TSS has a bitmap for ports 0-255)",
    ),
    (
        "RFLAGS.IOPL seen from ring 3",
        "0 although the guest runs with IOPL 3: in exception frames (IOPL is not compared there), in what PUSHF stores, and POPF cannot change IF (nor NT, measured on an Intel host)",
    ),
    (
        "FS/GS selectors in 64-bit ring 3",
        "read back as 0 whatever was loaded (cases start with null FS/GS); POP FS/GS is checked against the host's GDT, not the guest's",
    ),
    (
        COMPAT_EMULATED,
        "DAA AAA AAS ARPL BOUND POPCNT INT3 (and INT n) are #UD, INTO's #OF arrives as #UD, AAM/AAD set SF ZF PF from EAX instead of AL, LZCNT runs as BSR, hint NOPs (0F 18-0F 1F: NOP r/m, ENDBR, CLDEMOTE, prefetches) ignore TF, compute their memory operand (#PF/#GP where the CPU touches nothing) and with 0x67 are decoded with a wrong length, TF on a REP string instruction traps once after all iterations (with RF set), TF after POP SS traps at once (no SS shadow), a REP string faulting part-way leaves other status flags, a 16-bit ENTER pushes 4 bytes and ENTER with a nesting level is #UD, no #AC is raised (cases in 32-bit code never set RFLAGS.AC)",
    ),
    (
        "INT n (n != 3) from ring 3",
        "arrives as #UD instead of the gate's #GP (known: INT 0x80 does the same)",
    ),
    (
        "#GP from ring 3 (e.g. a non-canonical address)",
        "PVM hands the instruction to KVM's instruction emulator, which raises #UD for instructions it does not know (POPCNT, ...)",
    ),
];

const COMPAT_EMULATED: &str =
    "32-bit compatibility-mode code: run by KVM's instruction emulator, not by the CPU";

/// If `native` differs from `interp` in one of the documented PVM ways, which one (the case is
/// then counted as not comparable instead of passed or failed).
pub fn pvm_quirk(form: &Form, interp: &Outcome, native: &Outcome) -> Option<&'static str> {
    let vector = |o: &Outcome| o.fault.as_ref().map(|f| f.vector);
    let (vi, vn) = (vector(interp), vector(native));
    let name = form.name.as_str();
    if vn == Some(6) && vi != Some(6) {
        if form.mode == CodeMode::Compat32 {
            return Some(PVM_QUIRKS[3].0);
        }
        if name.starts_with("int_") {
            return Some(PVM_QUIRKS[4].0);
        }
        if vi == Some(13) {
            return Some(PVM_QUIRKS[5].0);
        }
    }
    let seg_pop = ["Popw_FS", "Popq_FS", "Popw_GS", "Popq_GS"].contains(&name);
    if seg_pop && vi != vn {
        return Some(PVM_QUIRKS[2].0);
    }
    // PUSHF runs natively with the host's IOPL (0): only bits 13:12 of the pushed flags differ.
    if form.mode == CodeMode::Long64 && name.starts_with("Pushf") && vi == vn {
        let diff: Vec<usize> = (0..interp.stack.len())
            .filter(|&i| interp.stack[i] != native.stack[i])
            .collect();
        if diff.len() == 1 && interp.stack[diff[0]] ^ native.stack[diff[0]] == 0x30 {
            return Some(PVM_QUIRKS[1].0);
        }
    }
    // POPF: with the host's IOPL 0 in ring 3 it cannot change IF (nor NT, on an Intel host).
    let popf_diff = (interp.rflags ^ native.rflags)
        & (flags::STATUS | flags::DF | flags::IF | flags::AC | flags::NT | flags::ID);
    let only_if_nt = popf_diff != 0 && popf_diff & !(flags::IF | flags::NT) == 0;
    if name.starts_with("Popf") && vi == vn && interp.gpr == native.gpr && only_if_nt {
        return Some(PVM_QUIRKS[1].0);
    }
    // Single-stepping a REP string instruction: the emulator runs every iteration, then traps.
    // ENTER with a 16-bit operand pushes BP as 4 bytes in the emulator.
    if name.starts_with("32/Enterw") {
        return Some(PVM_QUIRKS[3].0);
    }
    // After POP SS it traps at once instead of after the next instruction (the SS shadow).
    // A REP string instruction interrupted part-way by a fault leaves other flags.
    let stepped = name.contains("rep") || name.ends_with("_SS");
    let rep_fault = name.contains("rep") && vi.is_some() && interp.gpr == native.gpr;
    let rep_stepped = name.contains("rep") && vi == Some(1);
    if form.mode == CodeMode::Compat32
        && (stepped && vi == Some(1) && vn == Some(1) || rep_fault && vi == vn || rep_stepped)
    {
        return Some(PVM_QUIRKS[3].0);
    }
    // Hint NOPs: the emulator neither single-steps them nor leaves their memory operand alone,
    // and with an address-size prefix it misreads their length (measured: garbage executed).
    let hint = [
        "Nop",
        "Reservednop",
        "Prefetch",
        "Cldemote",
        "Endbr",
        "Rdssp",
    ]
    .iter()
    .any(|h| name.strip_prefix("32/").is_some_and(|n| n.starts_with(h)));
    if hint {
        return Some(PVM_QUIRKS[3].0);
    }
    // AAM/AAD: the emulator's flags (from EAX); registers must agree. LZCNT: run as BSR.
    let aam =
        (name.starts_with("32/Aam") || name.starts_with("32/Aad")) && interp.gpr == native.gpr;
    if (aam || name.starts_with("32/Lzcnt")) && vi == vn {
        return Some(PVM_QUIRKS[3].0);
    }
    None
}

/// The x87 state a vector case started from, for its failure report.
fn x87_before(f: &emulator::cpu::FpuState) -> String {
    let st: Vec<String> = (0..8).map(|i| format!("{:020x}", f.st(i))).collect();
    format!(
        "\n  before x87: fcw {:#06x} fsw {:#06x} tags {:#04x} mxcsr {:#x} st0..7 {}",
        f.fcw(),
        f.fsw(),
        f.tags(),
        f.mxcsr(),
        st.join(" ")
    )
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
    let mut mt = new_machine();
    let mut interp = Interpreter::new();
    let mut bt = BinaryTranslator::default();
    let mut kvm = KvmEngine::new(&mk)?;
    let pvm = accel_kvm::detect_flavour() == accel_kvm::KvmFlavour::Pvm;
    let vendor = native_vendor::host_vendor();
    let mut rng = Rng::new(opts.seed);
    let mut report = Report {
        seed: opts.seed,
        cases: opts.cases,
        ..Report::default()
    };
    let mut data = vec![0u8; 4096];
    for form in &forms {
        let mut passed = 0;
        let mut tried = 0;
        let mut skipped = 0;
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
            // Where Intel and AMD differ, the CPU's answer in those bits is replaced by the
            // model's; the rest of the case is compared as usual.
            let mut native_for_interp = b.clone();
            if let Some(v) = native_vendor::align(&case, &a, &mut native_for_interp, vendor) {
                *report.vendor.entry(v).or_default() += 1;
            }
            let mut diffs = compare(&case, &a, &native_for_interp);
            // The translator must agree with the CPU as well (its specialised form, lazy flags).
            let t = run_bt(&mut mt, &mut bt, &case, &data);
            let mut native_for_bt = b.clone();
            native_vendor::align(&case, &t, &mut native_for_bt, vendor);
            diffs.extend(
                compare(&case, &t, &native_for_bt)
                    .into_iter()
                    .map(|d| format!("bt: {}", d.replace("interp", "bt"))),
            );
            if !diffs.is_empty() && !opts.strict {
                if let Some(v) = native_vendor::different_path(&case, &a, &b) {
                    tried -= 1;
                    *report.vendor.entry(v).or_default() += 1;
                    continue;
                }
            }
            if !diffs.is_empty() && pvm && !opts.strict {
                if let Some(q) = pvm_quirk(form, &a, &b) {
                    tried -= 1;
                    skipped += 1;
                    *report.quirks.entry(q).or_default() += 1;
                    if skipped >= opts.cases {
                        break; // a form PVM cannot run as a CPU would: stop drawing
                    }
                    continue;
                }
            }
            if let Some(f) = &b.fault {
                *report.faults.entry(f.name()).or_default() += 1;
            }
            if diffs.is_empty() {
                passed += 1;
            } else if report.failures.len() < 1000 {
                report.failures.push(format!(
                    "FAIL {}: {} [{}]\n  before: rflags {:#x} regs {}{}\n  {}",
                    form.name,
                    case.text,
                    case.code
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>(),
                    case.rflags,
                    hex_regs(&case.gpr),
                    case.fpu.as_deref().map_or(String::new(), x87_before),
                    diffs.join("\n  ")
                ));
            }
        }
        report
            .rows
            .push((form.name.clone(), passed, tried, skipped));
    }
    Ok(report)
}

//! Runs the SingleStepTests 80286 real-mode set on the interpreter and compares with the hardware.
//! Teaches: differential testing against captured hardware states — load, run one instruction, compare.
//!
//! Each test: real mode, segment bases = selector × 16, the INIT registers and RAM bytes loaded,
//! run from CS:IP until the CPU halts on the HLT that follows the instruction (or the HLT at the
//! exception handler the IVT points to), then every register and every byte FINA lists — and every
//! byte the interpreter wrote that FINA does not list, which must still hold its INIT value — is
//! compared. Undefined flags and accepted differences come from [`super::rules`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use emulator::cpu::{ctl, flags, CpuState, DescriptorTable, Seg, Segment};
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Machine, RunLimit};

use super::moo::{self, r, Test, REG_NAMES};
use super::rules::{self, fl, Treatment};

/// The 286 reaches 0x10FFEF in real mode (FFFF:FFFF); 2 MiB covers it with no 1 MiB wrap.
const RAM_BYTES: u64 = 2 << 20;
/// Steps allowed per test: the instruction (REP runs in chunks of 4096 per step), an exception
/// delivery and the HLT.
const MAX_STEPS: usize = 64;

/// Where the test set is, as paths that exist on this machine (or that it is missing here too).
fn where_the_tests_are() -> String {
    let dir = super::default_sst_dir();
    match dir.canonicalize() {
        Ok(dir) if dir.join("README.md").is_file() => format!(
            "the test set is in {} (its README.md says what it holds; run `vmscope conformance \
             sst` without DIR to use it)",
            dir.display()
        ),
        _ => format!(
            "the test set is not at its default place either, {} (the project's \
             ../shared/testdata/sst-80286-real; the project's ../shared/DESIGN.md, section \
             \"Test data\", says how it gets there)",
            dir.display()
        ),
    }
}

/// Errors of a conformance run (the test data, not the interpreter).
#[derive(Debug, thiserror::Error)]
pub enum SstError {
    /// the SingleStepTests directory {0} does not exist (and where the test set is instead)
    #[error("the SingleStepTests directory {} does not exist; {}", .0.display(), where_the_tests_are())]
    MissingDir(PathBuf),
    /// {0} holds no *.MOO.gz files
    #[error("{0} holds no *.MOO.gz or *.MOO files")]
    Empty(PathBuf),
    #[error(transparent)]
    Moo(#[from] moo::MooError),
    #[error("cannot list {path}: {source}")]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("creating the test machine: {0}")]
    Machine(String),
}

/// Result of one opcode file.
#[derive(Debug, Clone, Default)]
pub struct OpcodeResult {
    /// File stem, e.g. `D3.4`.
    pub opcode: String,
    pub mnemonic: String,
    /// Tests in the file minus revoked ones.
    pub total: usize,
    pub passed: usize,
    /// Tests not compared because of a documented difference.
    pub masked: usize,
    /// Tests a difference applied to, by index in [`rules::DIFFERENCES`] (masked or adjusted).
    pub by_difference: BTreeMap<usize, usize>,
    /// Tests whose hash is in the revocation list (not counted at all).
    pub revoked: usize,
    /// The first few failures, described.
    pub failures: Vec<String>,
    pub failed: usize,
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub opcodes: Vec<OpcodeResult>,
}

impl Report {
    pub fn total(&self) -> usize {
        self.opcodes.iter().map(|o| o.total).sum()
    }
    pub fn passed(&self) -> usize {
        self.opcodes.iter().map(|o| o.passed).sum()
    }
    pub fn masked(&self) -> usize {
        self.opcodes.iter().map(|o| o.masked).sum()
    }
    pub fn failed(&self) -> usize {
        self.opcodes.iter().map(|o| o.failed).sum()
    }

    /// The last line: `passed N of M (masked K)`.
    pub fn summary(&self) -> String {
        format!(
            "passed {} of {} (masked {})",
            self.passed(),
            self.total(),
            self.masked()
        )
    }

    /// The per-opcode table, then failure details (up to `details` per opcode), then the summary.
    pub fn render(&self, details: usize) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<6} {:<8} {:>6} {:>6} {:>6} {:>6}",
            "opcode", "mnemonic", "tests", "passed", "failed", "masked"
        );
        for o in &self.opcodes {
            let mark = if o.failed > 0 { "  <-- FAIL" } else { "" };
            let _ = writeln!(
                out,
                "{:<6} {:<8} {:>6} {:>6} {:>6} {:>6}{mark}",
                o.opcode, o.mnemonic, o.total, o.passed, o.failed, o.masked
            );
        }
        for o in self.opcodes.iter().filter(|o| o.failed > 0) {
            for f in o.failures.iter().take(details) {
                let _ = writeln!(out, "{}: {f}", o.opcode);
            }
        }
        let mut by_difference: BTreeMap<usize, usize> = BTreeMap::new();
        for o in &self.opcodes {
            for (i, n) in &o.by_difference {
                *by_difference.entry(*i).or_default() += n;
            }
        }
        for (i, n) in by_difference {
            let d = &rules::DIFFERENCES[i];
            let how = match d.treatment {
                Treatment::Mask => "masked",
                Treatment::StackFaultIs13 => "compared with #SS sent to the #GP handler",
            };
            let _ = writeln!(out, "difference {}: {n} tests {how}: {}", i + 1, d.reason);
        }
        let _ = writeln!(out, "{}", self.summary());
        out
    }
}

/// Lists the opcode files in `dir` in name order.
pub fn opcode_files(dir: &Path) -> Result<Vec<PathBuf>, SstError> {
    if !dir.is_dir() {
        return Err(SstError::MissingDir(dir.to_path_buf()));
    }
    let list = |source| SstError::List {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list)? {
        let path = entry.map_err(list)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".MOO.gz") || name.ends_with(".MOO") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(SstError::Empty(dir.to_path_buf()));
    }
    Ok(files)
}

/// File stem without the `.MOO(.gz)` suffix: `D3.4`.
fn stem(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
    name.trim_end_matches(".gz")
        .trim_end_matches(".MOO")
        .to_string()
}

/// Runs every opcode file in `dir` whose stem starts with `filter` (all if empty).
pub fn run_dir(dir: &Path, filter: &str) -> Result<Report, SstError> {
    let revoked = moo::read_revocations(&dir.join("revocation_list.txt"))?;
    let mut runner = Runner::new()?;
    let mut report = Report::default();
    for path in opcode_files(dir)? {
        let stem = stem(&path);
        if !stem.starts_with(filter) {
            continue;
        }
        let file = moo::read_file(&path)?;
        report.opcodes.push(runner.run_file(&stem, &file, &revoked));
    }
    Ok(report)
}

/// A reusable machine and interpreter; each test restores the bytes the previous one touched.
pub struct Runner {
    machine: Machine,
    interp: Interpreter,
}

impl Runner {
    pub fn new() -> Result<Self, SstError> {
        let mut machine = Machine::new(RAM_BYTES).map_err(|e| SstError::Machine(e.to_string()))?;
        // No devices: every port reads as open bus (0xFF…) and ignores writes, as on the test
        // machine — the PIC's ports included.
        machine.bus = devices::Bus::with_no_ports();
        machine
            .bus
            .add_pio_device(Box::new(OpenBus), &[(0, 0xFFFF)])
            .expect("a bus with no ports has room");
        Ok(Runner {
            machine,
            interp: Interpreter::new(),
        })
    }

    pub fn run_file(
        &mut self,
        stem: &str,
        file: &moo::MooFile,
        revoked: &[String],
    ) -> OpcodeResult {
        let mut res = OpcodeResult {
            opcode: stem.to_string(),
            mnemonic: file.mnemonic.clone(),
            ..Default::default()
        };
        for test in &file.tests {
            if !revoked.is_empty() && revoked.contains(&test.hash_hex()) {
                res.revoked += 1;
                continue;
            }
            res.total += 1;
            let difference = rules::difference_for(test);
            if let Some((i, _)) = difference {
                *res.by_difference.entry(i).or_default() += 1;
            }
            let treatment = difference.map(|(_, d)| d.treatment);
            if treatment == Some(Treatment::Mask) {
                res.masked += 1;
                continue;
            }
            match self.run_test(stem, test, treatment) {
                Ok(()) => res.passed += 1,
                Err(why) => {
                    res.failed += 1;
                    if res.failures.len() < 8 {
                        res.failures.push(format!(
                            "test {} `{}` ({}): {why}",
                            test.index,
                            test.name,
                            hex(&test.bytes)
                        ));
                    }
                }
            }
        }
        res
    }

    /// Runs one test; `Err` describes every mismatch.
    pub fn run_test(
        &mut self,
        stem: &str,
        test: &Test,
        treatment: Option<Treatment>,
    ) -> Result<(), String> {
        let m = &mut self.machine;
        load_state(m, test);
        if treatment == Some(Treatment::StackFaultIs13) {
            // Later CPUs raise #SS here: send vector 12 to the handler the 286 used (vector 13).
            let mut entry = [0u8; 4];
            let _ = m.ram.read(13 * 4, &mut entry);
            let _ = m.ram.write(12 * 4, &entry);
        }
        // The RAM was rewritten from outside the interpreter: forget decoded instructions.
        self.interp.flush_caches(m);
        self.interp.record_writes(true);
        let mut outcome = Ok(());
        for _ in 0..MAX_STEPS {
            match self.interp.run(m, RunLimit::instructions(1)) {
                Ok(Exit::LimitReached) => {}
                Ok(other) => {
                    outcome = Err(format!(
                        "the machine stopped: {}",
                        crate::runner::exit_summary(&other)
                    ));
                    break;
                }
                Err(e) => {
                    outcome = Err(format!("engine error: {e}"));
                    break;
                }
            }
            if m.cpu.events.halted {
                break;
            }
        }
        if outcome.is_ok() && !m.cpu.events.halted {
            outcome = Err(format!("no HLT reached within {MAX_STEPS} steps"));
        }
        let written = self.interp.take_recorded_writes();
        self.interp.record_writes(false);
        let compared = outcome.and_then(|()| compare(m, stem, test, &written));
        // Put back zeros wherever this test left bytes, so the next one starts from clean RAM.
        for &(addr, _) in test.init.ram.iter().chain(&test.fina.ram) {
            let _ = m.ram.write(addr as u64, &[0]);
        }
        for &(addr, len) in &written {
            for a in addr..addr + len as u64 {
                let _ = m.ram.write(a, &[0]);
            }
        }
        let _ = m.ram.write(12 * 4, &[0; 4]);
        compared
    }
}

/// Answers every port with all ones, like the test machine's empty I/O space.
struct OpenBus;

impl devices::BusDevice for OpenBus {
    fn name(&self) -> &'static str {
        "open bus"
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Real mode with the INIT registers (bits 12–15 of FLAGS cleared, as a 286 holds them).
fn load_state(m: &mut Machine, test: &Test) {
    let reg = |i: usize| test.init.regs[i].unwrap_or(0);
    let mut cpu = CpuState::reset();
    cpu.cr0 = ctl::CR0_ET;
    let seg = |sel: u16, code: bool| Segment::real_mode(sel, code);
    cpu.seg[Seg::Es as usize] = seg(reg(r::ES), false);
    cpu.seg[Seg::Cs as usize] = seg(reg(r::CS), true);
    cpu.seg[Seg::Ss as usize] = seg(reg(r::SS), false);
    cpu.seg[Seg::Ds as usize] = seg(reg(r::DS), false);
    cpu.seg[Seg::Fs as usize] = seg(0, false);
    cpu.seg[Seg::Gs as usize] = seg(0, false);
    // The 286's real-mode IVT: 256 vectors at address 0.
    cpu.idtr = DescriptorTable {
        base: 0,
        limit: 0x3FF,
    };
    let order = [r::AX, r::CX, r::DX, r::BX, r::SP, r::BP, r::SI, r::DI];
    for (i, &src) in order.iter().enumerate() {
        cpu.gpr[i] = reg(src) as u64;
    }
    cpu.rip = reg(r::IP) as u64;
    cpu.rflags = (reg(r::FLAGS) as u64 & 0x0FD5) | flags::FIXED1;
    m.cpu = cpu;
    for &(addr, value) in &test.init.ram {
        let _ = m.ram.write(addr as u64, &[value]);
    }
}

/// The 14 registers of the machine's CPU in MOO order.
fn machine_regs(cpu: &CpuState) -> [u16; 14] {
    let g = |i: usize| cpu.gpr[i] as u16;
    let s = |x: Seg| cpu.seg[x as usize].selector;
    [
        g(0),
        g(3),
        g(1),
        g(2),
        s(Seg::Cs),
        s(Seg::Ss),
        s(Seg::Ds),
        s(Seg::Es),
        g(4),
        g(5),
        g(6),
        g(7),
        cpu.rip as u16,
        cpu.rflags as u16,
    ]
}

// ANCHOR: sst_compare
fn compare(m: &Machine, stem: &str, test: &Test, written: &[(u64, u32)]) -> Result<(), String> {
    let undefined = rules::undefined_flags(stem, test);
    let flag_mask = !(undefined | fl::HIGH_NIBBLE);
    let mut diffs = Vec::new();
    let ours = machine_regs(&m.cpu);
    for i in 0..14 {
        let want = test.fina.regs[i].or(test.init.regs[i]).unwrap_or(0);
        let (a, b) = if i == r::FLAGS {
            (ours[i] & flag_mask, want & flag_mask)
        } else {
            (ours[i], want)
        };
        if a != b {
            diffs.push(format!("{}={a:#06x} want {b:#06x}", REG_NAMES[i]));
        }
    }
    // ANCHOR_END: sst_compare
    // Expected bytes: INIT overlaid with FINA. The FLAGS image an exception pushed is masked too.
    let mut expect: BTreeMap<u64, u8> = BTreeMap::new();
    for &(a, v) in test.init.ram.iter().chain(&test.fina.ram) {
        expect.insert(a as u64, v);
    }
    // The FLAGS image an exception pushed is the first word below the initial SS:SP. (The EXCP
    // chunk's address is one byte below it in this data set, so we compute it ourselves.)
    let mut byte_mask: BTreeMap<u64, u8> = BTreeMap::new();
    if test.exception.is_some() {
        let ss = (test.init.regs[r::SS].unwrap_or(0) as u64) << 4;
        let sp = test.init.regs[r::SP].unwrap_or(0);
        byte_mask.insert(ss + sp.wrapping_sub(2) as u64, flag_mask as u8);
        byte_mask.insert(ss + sp.wrapping_sub(1) as u64, (flag_mask >> 8) as u8);
    }
    let mut check = |addr: u64, want: u8| {
        let got = m.ram.read_le(addr, 1).unwrap_or(0) as u8;
        let mask = byte_mask.get(&addr).copied().unwrap_or(0xFF);
        if got & mask != want & mask {
            diffs.push(format!("[{addr:#07x}]={got:#04x} want {want:#04x}"));
        }
    };
    for &(a, _) in &test.fina.ram {
        check(a as u64, expect[&(a as u64)]);
    }
    // Bytes we wrote that the hardware did not change must keep their INIT value (or zero).
    let fina: std::collections::BTreeSet<u64> = test.fina.ram.iter().map(|e| e.0 as u64).collect();
    for &(addr, len) in written {
        for a in addr..addr + len as u64 {
            if !fina.contains(&a) {
                check(a, expect.get(&a).copied().unwrap_or(0));
            }
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join(", "))
    }
}

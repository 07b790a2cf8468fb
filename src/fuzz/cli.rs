//! `vmscope fuzz`: batches of generated cases per mode, each run on every engine; differences shrunk, written and replayed.
//! Teaches: a fuzzer is a loop of generate → run everywhere → compare → shrink, and its output must be a command that reproduces.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;

use super::compare::{compare, Verdict};
use super::compare_kvm::KVM_RULES;
use super::finding::{hex, Finding};
use super::gen::{generate, Case};
use super::run::{EngineKind, Runner};
use super::{shrink, Mode};

#[derive(clap::Args, Debug, Clone)]
pub struct FuzzArgs {
    /// Modes to fuzz, comma-separated (default: all five).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub mode: Vec<Mode>,
    /// Seed of the case generator: the same seed makes the same cases.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Cases per mode.
    #[arg(long, default_value_t = 1000)]
    pub cases: u64,
    /// Engines, comma-separated; the first is the reference (default: interp,bt, and kvm for
    /// ring3 where /dev/kvm works).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub engines: Vec<EngineKind>,
    /// Stop starting new cases after this many seconds per mode.
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<f64>,
    /// Instructions per case at most (default: 20000; ring3: 2000).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Where findings are written.
    #[arg(long, default_value = "target/fuzz-findings")]
    pub out: PathBuf,
    /// Re-run a written finding instead of fuzzing.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["mode", "engines"])]
    pub replay: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the comparison rules and exit.
    #[arg(long)]
    pub rules: bool,
    /// One line per case: how it ended and how long each engine took.
    #[arg(long)]
    pub verbose: bool,
}

/// One mode's batch.
#[derive(Debug, Clone)]
pub struct Batch {
    pub mode: Mode,
    pub seed: u64,
    pub cases: u64,
    pub limit: Option<u64>,
    pub time_limit: Option<Duration>,
    /// How many differences are shrunk and kept (the rest are only counted).
    pub max_findings: usize,
    /// Candidates the shrinker may try per finding.
    pub shrink_budget: usize,
    /// Print one line per case to stderr.
    pub verbose: bool,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            mode: Mode::Pm32,
            seed: 1,
            cases: 1000,
            limit: None,
            time_limit: None,
            max_findings: 10,
            shrink_budget: 600,
            verbose: false,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct BatchReport {
    pub mode: String,
    pub engines: Vec<String>,
    pub cases: u64,
    /// Cases where some pair of engines differed.
    pub differences: u64,
    /// Pairs set aside by a documented rule, by rule.
    pub not_comparable: BTreeMap<&'static str, u64>,
    pub seconds: f64,
    /// How the reference engine's cases ended, by kind.
    pub endings: BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
}

/// How a case ended, by kind: the end marker, an exception (the stub RIP stopped in), …
fn ending(o: &super::Observation, mode: Mode, code_len: u64) -> String {
    use super::modes::{STUBS16, STUBS32, STUBS64};
    use emulator::Exit;
    let stub = |rip: u64| {
        for (base, size) in [
            (STUBS16, 4),
            (STUBS32, 4),
            (STUBS64, 4),
            (crate::conformance::native_machine::STUBS, 16),
        ] {
            if (base..base + 256 * size).contains(&rip) && (mode == Mode::Ring3) == (size == 16) {
                let v = ((rip - base) / size) as u8;
                return Some(emulator::interp::vector_name(v));
            }
        }
        None
    };
    let lin = o.cpu.linear_rip();
    match &o.exit {
        Ok(Exit::LimitReached) => "instruction limit".into(),
        Ok(Exit::Shutdown) => match stub(lin) {
            Some(v) => format!("exception {v}"),
            None if lin == super::modes::code_start(mode) + code_len + 1 => "end".into(),
            None => "hlt".into(),
        },
        Ok(Exit::DebugExit { .. })
            if mode == Mode::Ring3 && lin == super::modes::code_start(mode) + code_len + 2 =>
        {
            "end".into()
        }
        Ok(Exit::DebugExit { .. }) => "debug exit".into(),
        Ok(Exit::TripleFault { .. }) => "triple fault".into(),
        Ok(Exit::ResetRequested) => "reset".into(),
        Ok(Exit::PowerOff) => "power off".into(),
        Err(_) => "engine error".into(),
    }
}

/// Runs one mode's batch on `engines` (the first is the reference).
pub fn run_batch(
    batch: &Batch,
    engines: &[EngineKind],
    progress: Option<&mut dyn FnMut(u64)>,
) -> Result<BatchReport> {
    if engines.len() < 2 {
        bail!("fuzzing needs at least two engines, got {engines:?}");
    }
    let limit = batch.limit.unwrap_or(batch.mode.default_limit());
    let mut runners = engines
        .iter()
        .map(|&e| Runner::new(e, batch.mode))
        .collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    let mut report = BatchReport {
        mode: batch.mode.to_string(),
        engines: engines.iter().map(|e| e.name().to_string()).collect(),
        ..Default::default()
    };
    let mut progress = progress;
    for index in 0..batch.cases {
        if batch.time_limit.is_some_and(|t| start.elapsed() >= t) {
            break;
        }
        let case = generate(batch.mode, batch.seed, index);
        report.cases += 1;
        let t0 = Instant::now();
        let reference = runners[0].run(&case, limit);
        let mut times = vec![t0.elapsed()];
        let code_len = case.code().len() as u64;
        *report
            .endings
            .entry(ending(&reference, batch.mode, code_len))
            .or_default() += 1;
        let mut differed = false;
        for i in 1..runners.len() {
            let t = Instant::now();
            let other = runners[i].run_after(&case, limit, Some(&reference));
            times.push(t.elapsed());
            match compare(&case, limit, &reference, &other) {
                Verdict::Same => {}
                Verdict::NotComparable(rule) => {
                    *report.not_comparable.entry(rule).or_default() += 1
                }
                Verdict::Differ(diffs) => {
                    differed = true;
                    if report.findings.len() < batch.max_findings {
                        let (first, rest) = runners.split_at_mut(i);
                        let f = shrink_finding(
                            batch,
                            limit,
                            index,
                            &case,
                            &mut first[0],
                            &mut rest[0],
                            diffs,
                        );
                        if !report
                            .findings
                            .iter()
                            .any(|g| g.code == f.code && g.engines == f.engines)
                        {
                            report.findings.push(f);
                        }
                    }
                }
            }
        }
        report.differences += differed as u64;
        if batch.verbose {
            let ms: Vec<String> = times
                .iter()
                .map(|t| format!("{:.1}", t.as_secs_f64() * 1e3))
                .collect();
            eprintln!(
                "{} case {index}: {} after {} instructions, {} bytes; ms {}{}",
                batch.mode,
                ending(&reference, batch.mode, code_len),
                reference.stats.instructions,
                case.code().len(),
                ms.join(" "),
                if differed { " DIFFERENCE" } else { "" }
            );
        }
        if let Some(p) = progress.as_mut() {
            p(index + 1);
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

fn shrink_finding(
    batch: &Batch,
    limit: u64,
    index: u64,
    case: &Case,
    a: &mut Runner,
    b: &mut Runner,
    diffs: Vec<String>,
) -> Finding {
    let mut differs = |c: &Case| {
        let x = a.run(c, limit);
        let y = b.run_after(c, limit, Some(&x));
        matches!(compare(c, limit, &x, &y), Verdict::Differ(_))
    };
    let small = shrink::shrink(case, &mut differs, batch.shrink_budget);
    let x = a.run(&small, limit);
    let y = b.run_after(&small, limit, Some(&x));
    // A shrunk case that no longer differs (a flaky host) is not a finding: keep the original.
    let (small, mut differences) = match compare(&small, limit, &x, &y) {
        Verdict::Differ(d) => (small, d),
        _ => (case.clone(), diffs),
    };
    differences.extend(super::bisect::first_divergence(
        &small,
        a.kind(),
        b.kind(),
        limit,
    ));
    Finding {
        mode: batch.mode,
        engines: [a.kind(), b.kind()],
        code: hex(&small.code()),
        limit,
        seed: batch.seed,
        case: index,
        differences,
        original_len: case.code().len(),
    }
}

/// Disassembly of a finding's code, one instruction a line.
pub fn disassemble(mode: Mode, code: &[u8]) -> String {
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
    let bits = match mode {
        Mode::Real | Mode::Pm16 => 16,
        Mode::Pm32 => 32,
        _ => 64,
    };
    let start = super::modes::code_start(mode);
    let code = [code, super::modes::end_marker(mode)].concat();
    let code = &code[..];
    let mut d = Decoder::with_ip(bits, code, start, DecoderOptions::NONE);
    let mut f = IntelFormatter::new();
    let mut out = String::new();
    while d.can_decode() {
        let i = d.decode();
        let at = (i.ip() - start) as usize;
        let mut text = String::new();
        f.format(&i, &mut text);
        out.push_str(&format!(
            "    {:#07x}  {:<24} {text}\n",
            i.ip(),
            hex(&code[at..at + i.len()])
        ));
    }
    out
}

/// `vmscope fuzz`: returns the process exit status (1 when a difference was found).
pub fn fuzz(args: FuzzArgs) -> Result<i32> {
    if args.rules {
        print!("{}", rules_text());
        return Ok(0);
    }
    if let Some(path) = &args.replay {
        let f = Finding::read(path)?;
        println!(
            "{} on {} vs {}: {}",
            path.display(),
            f.engines[0].name(),
            f.engines[1].name(),
            f.mode
        );
        print!("{}", disassemble(f.mode, &super::finding::unhex(&f.code)?));
        return Ok(match f.replay()? {
            Verdict::Same => {
                println!("the engines agree now");
                0
            }
            Verdict::NotComparable(rule) => {
                println!("not comparable: {rule}");
                0
            }
            Verdict::Differ(mut d) => {
                d.extend(super::bisect::first_divergence(
                    &f.case_code()?,
                    f.engines[0],
                    f.engines[1],
                    f.limit,
                ));
                println!("DIFFERENCE\n  {}", d.join("\n  "));
                1
            }
        });
    }
    let kvm = accel_kvm::kvm_available().is_ok();
    if args.engines.contains(&EngineKind::Kvm) && !kvm {
        bail!(
            "--engines kvm: KVM is not usable here ({})",
            accel_kvm::kvm_available().unwrap_err()
        );
    }
    let modes = if args.mode.is_empty() {
        Mode::ALL.to_vec()
    } else {
        args.mode.clone()
    };
    let mut reports = Vec::new();
    for mode in modes {
        let engines = if args.engines.is_empty() {
            mode.default_engines(kvm)
        } else {
            args.engines.clone()
        };
        let batch = Batch {
            mode,
            seed: args.seed,
            cases: args.cases,
            limit: args.limit,
            time_limit: args.time_limit.map(Duration::from_secs_f64),
            verbose: args.verbose,
            ..Batch::default()
        };
        let report = run_batch(&batch, &engines, None)?;
        let mut paths = Vec::new();
        for f in &report.findings {
            paths.push(f.write(&args.out)?);
        }
        if !args.json {
            print!("{}", render(&report, &paths));
        }
        reports.push(report);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(if reports.iter().any(|r| r.differences > 0) {
        1
    } else {
        0
    })
}

fn render(r: &BatchReport, paths: &[PathBuf]) -> String {
    let mut out = format!(
        "{:<6} {} cases on {}: {} with differences, {:.1} s\n",
        r.mode,
        r.cases,
        r.engines.join(", "),
        r.differences,
        r.seconds
    );
    let endings: Vec<String> = r.endings.iter().map(|(k, v)| format!("{k} {v}")).collect();
    out.push_str(&format!(
        "       endings ({}): {}\n",
        r.engines[0],
        endings.join(", ")
    ));
    for (rule, n) in &r.not_comparable {
        out.push_str(&format!("       not comparable ({rule}): {n}\n"));
    }
    for (f, path) in r.findings.iter().zip(paths) {
        let code = super::finding::unhex(&f.code).unwrap_or_default();
        out.push_str(&format!(
            "DIFFERENCE {} vs {} in {} case {} (shrunk from {} to {} bytes):\n{}  {}\n  replay: {}\n  found by: {}\n",
            f.engines[0].name(),
            f.engines[1].name(),
            f.mode,
            f.case,
            f.original_len,
            code.len(),
            disassemble(f.mode, &code),
            f.differences.join("\n  "),
            Finding::replay_command(path),
            f.found_by()
        ));
    }
    out
}

fn rules_text() -> String {
    let mut out = String::from(
        "interp vs bt: everything (Exit, CpuState, RAM, Stats but the translator's and MMU hit counters, I/O, output, virtual time)\n\
         vs kvm: exit kind, GPRs, RIP, RFLAGS less flags undefined at the end, selectors, CR2, RAM, port I/O, serial, instructions\n\
         kvm differences not counted, by rule:\n",
    );
    for (name, why) in KVM_RULES {
        out.push_str(&format!("  {name:<28} {why}\n"));
    }
    out.push_str("kvm fields masked:\n");
    for (name, why) in super::compare_kvm::KVM_MASKS {
        out.push_str(&format!("  {name:<28} {why}\n"));
    }
    out
}

//! The engines' speed in a browser against native: the web demo's `vmscope.bench` in headless Chromium.
//! Teaches: what compiling an emulator to WebAssembly costs — the same guest, the same engine,
//! guest instructions per second in the page beside the same code run natively in-process.
//!
//! `cargo bench --bench web` builds the site (`scripts/web.sh build`), serves it, opens it in
//! headless Chromium (`tests/support/webdriver.rs`) and calls `vmscope.bench(guest, cmdline,
//! engine, max_instructions)`, which runs a guest to its end synchronously, without the UI.
//! The same guest then runs here, natively, the way the page's bench runs it (the emulator
//! crate's engines on a freshly loaded machine; only the run is timed, as in the page). Each
//! cell is the best of `REPEATS` runs after one warm-up run (the browser's JIT tiers up, the
//! host's caches fill). It also prints the size of the .wasm, raw and gzipped (what a visitor downloads),
//! and when the default page ran its first guest instruction. Nothing here asserts a speed.

#[path = "../tests/support/web_site.rs"]
mod web_site;
#[path = "../tests/support/webdriver.rs"]
mod webdriver;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::machine::loader::{load_image_with_boot, BootMethod};
use emulator::{Engine, Machine, RunLimit};
use serde_json::{json, Value};
use web_site::{wait_ready, wait_status, Site};
use webdriver::Browser;

/// Runs per cell after the warm-up; the best one is shown.
const REPEATS: usize = 3;
/// A run that goes past this many instructions is stopped (none of these should).
const MAX_INSTRUCTIONS: u64 = 2_000_000_000;

/// One guest and command line to measure.
struct Case {
    guest: &'static str,
    cmdline: &'static str,
}

const CASES: [Case; 2] = [
    // ~21.7 M instructions: 100 rounds of sieve + CRC-32 + xorshift in ring 3.
    Case {
        guest: "kernel",
        cmdline: "workloads=compute iterations=100",
    },
    Case {
        guest: "sieve32",
        cmdline: "rounds=2",
    },
];

/// One measured run: guest instructions, milliseconds, serial output, how it ended.
struct Run {
    instructions: u64,
    ms: f64,
    serial: String,
    exit: String,
}

impl Run {
    fn mips(&self) -> f64 {
        self.instructions as f64 / (self.ms * 1e3)
    }
}

fn main() {
    if !Browser::present_or_skip("bench web") {
        return;
    }
    // A panic, not process::exit: unwinding drops the browser and the server (their own
    // process groups), which would otherwise outlive the bench and hold its output open.
    let fail = |e: String| -> ! { panic!("bench web: {e}") };
    web_site::build().unwrap_or_else(|e| fail(e));
    wasm_sizes();
    let site = Site::serve().unwrap_or_else(|e| fail(e));
    let browser = Browser::start().unwrap_or_else(|e| fail(e));

    // A visitor's first impression: how long until the default page runs its guest.
    let first = first_instruction(&browser, &site).unwrap_or_else(|e| fail(e));
    println!("default page: first guest instruction at {first:.0} ms after navigation start");

    // The benchmark page: loaded, but not running a guest of its own.
    browser
        .goto(&site.page("run=0"))
        .unwrap_or_else(|e| fail(e));
    wait_ready(&browser, Duration::from_secs(60)).unwrap_or_else(|e| fail(e));

    println!();
    println!(
        "{:<9} {:<34} {:<7} {:>13} {:>13} {:>13} {:>7}  note",
        "guest", "cmdline", "engine", "instructions", "browser Mi/s", "native Mi/s", "ratio"
    );
    for case in &CASES {
        if guests::by_name(case.guest).is_none() {
            println!(
                "{:<9} skipped: no built-in guest named {}",
                case.guest, case.guest
            );
            continue;
        }
        for engine in ["interp", "bt"] {
            let web = best(|| in_browser(&browser, case, engine));
            let native = best(|| natively(case, engine));
            let (web, native) = match (web, native) {
                (Ok(w), Ok(n)) => (w, n),
                (w, n) => {
                    let why = [w.err(), n.err()].into_iter().flatten().collect::<Vec<_>>();
                    println!(
                        "{:<9} {:<34} {engine:<7} failed: {}",
                        case.guest,
                        case.cmdline,
                        why.join("; ")
                    );
                    continue;
                }
            };
            println!(
                "{:<9} {:<34} {engine:<7} {:>13} {:>13.1} {:>13.1} {:>6.2}x  {}",
                case.guest,
                case.cmdline,
                web.instructions,
                web.mips(),
                native.mips(),
                native.mips() / web.mips(),
                agreement(case, &web, &native)
            );
            let _ = std::io::stdout().flush();
        }
    }
    println!("(ratio = native / browser: how many times faster the same engine runs natively)");
    let errors = web_site::page_errors(&browser).unwrap_or_else(|e| fail(e));
    if !errors.is_empty() {
        fail(format!("the page reported errors: {errors:?}"));
    }
}

/// One warm-up run, then the fastest of `REPEATS`.
fn best(mut run: impl FnMut() -> Result<Run, String>) -> Result<Run, String> {
    run()?;
    let mut best: Option<Run> = None;
    for _ in 0..REPEATS {
        let r = run()?;
        if best.as_ref().is_none_or(|b| r.mips() > b.mips()) {
            best = Some(r);
        }
    }
    Ok(best.expect("REPEATS > 0"))
}

fn in_browser(b: &Browser, case: &Case, engine: &str) -> Result<Run, String> {
    let v = b.execute(
        "return JSON.parse(JSON.stringify(window.vmscope.bench(...arguments)));",
        &[
            json!(case.guest),
            json!(case.cmdline),
            json!(engine),
            json!(MAX_INSTRUCTIONS),
        ],
    )?;
    let number = |k: &str| {
        v[k].as_f64()
            .ok_or_else(|| format!("vmscope.bench answered no number {k}: {v}"))
    };
    Ok(Run {
        instructions: number("instructions")? as u64,
        ms: number("ms")?.max(1e-3),
        serial: v["serial"].as_str().unwrap_or_default().to_string(),
        exit: match &v["exit"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    })
}

/// The same run natively, the way the page's bench does it (`gui::remote::bench`): a 64 MiB
/// machine, the image loaded directly (no firmware), one engine `run` to the end; only the
/// run is timed.
fn natively(case: &Case, engine: &str) -> Result<Run, String> {
    let g = guests::by_name(case.guest).ok_or(format!("no guest {}", case.guest))?;
    let mut machine = Machine::new(64 << 20).map_err(|e| e.to_string())?;
    load_image_with_boot(
        &mut machine,
        g.file_name,
        g.image,
        case.cmdline,
        BootMethod::Direct,
        guests::FIRMWARE_ROM,
    )
    .map_err(|e| e.to_string())?;
    let mut engine_box: Box<dyn Engine> = match engine {
        "interp" => Box::new(Interpreter::new()),
        _ => Box::new(BinaryTranslator::default()),
    };
    let t = Instant::now();
    let exit = engine_box
        .run(&mut machine, RunLimit::instructions(MAX_INSTRUCTIONS))
        .map_err(|e| format!("{} natively on {engine}: {e}", case.guest))?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    Ok(Run {
        instructions: machine.stats.instructions,
        ms,
        serial: String::from_utf8_lossy(&machine.bus.take_serial_output()).into_owned(),
        exit: format!("{exit:?}"),
    })
}

/// Whether the browser's run did the same work as the native one: the same instruction count,
/// and the same output (for the kernel: the same RESULT checksums; its TSC readings differ).
fn agreement(case: &Case, web: &Run, native: &Run) -> String {
    let mut notes = Vec::new();
    if web.instructions != native.instructions {
        notes.push(format!("native ran {} instructions", native.instructions));
    }
    let same_output = if case.guest == "kernel" {
        let sums = |s: &str| {
            vmscope::compare::suite::parse_results(s).map(|r| {
                r.iter()
                    .map(|l| (l.workload.clone(), l.checksum))
                    .collect::<Vec<_>>()
            })
        };
        match (sums(&web.serial), sums(&native.serial)) {
            (Ok(w), Ok(n)) => !w.is_empty() && w == n,
            _ => false,
        }
    } else {
        web.serial == native.serial
    };
    if !same_output {
        notes.push(format!(
            "OUTPUT DIFFERS (browser {:?}, exit {})",
            web.serial.lines().last().unwrap_or(""),
            web.exit
        ));
    }
    if notes.is_empty() {
        "same output".into()
    } else {
        notes.join("; ")
    }
}

/// Loads the default page and answers `first_instruction_ms` once the guest has started.
fn first_instruction(b: &Browser, site: &Site) -> Result<f64, String> {
    b.goto(&site.page(""))?;
    wait_ready(b, Duration::from_secs(60))?;
    let s = wait_status(
        b,
        "the first guest instruction",
        Duration::from_secs(60),
        |s| s["first_instruction_ms"].is_number(),
    )?;
    Ok(s["first_instruction_ms"].as_f64().unwrap_or_default())
}

/// Prints every .wasm file of the site with its size raw and gzipped (flate2, default level).
fn wasm_sizes() {
    let mut found = Vec::new();
    find_wasm(&web_site::dist(), &mut found);
    if found.is_empty() {
        println!("no .wasm file in {}", web_site::dist().display());
    }
    for path in found {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let gzipped = gz
            .write_all(&bytes)
            .and_then(|_| gz.finish())
            .map_or(0, |v| v.len());
        println!(
            "{}: {:.2} MiB, {:.2} MiB gzipped",
            path.strip_prefix(web_site::repo())
                .unwrap_or(&path)
                .display(),
            bytes.len() as f64 / (1 << 20) as f64,
            gzipped as f64 / (1 << 20) as f64
        );
    }
}

fn find_wasm(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            find_wasm(&p, out);
        } else if p.extension().is_some_and(|x| x == "wasm") {
            out.push(p);
        }
    }
}

//! The app's remote control: text commands in, a status record out, and a headless speed run.
//! Teaches: a GUI a script can drive and read back is a GUI you can test — the browser test drives the web page through this.
//!
//! The web demo exposes these to JavaScript as `vmscope.command("step 3")`, `vmscope.status()`
//! and `vmscope.bench(…)`; tests here drive them natively. Nothing in this module draws.

use std::collections::BTreeMap;

use serde::Serialize;

use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::machine::loader::{load_image_with_boot, BootMethod};
use emulator::{Engine, Exit, Machine, RunLimit};

use crate::app::{Action, VmscopeApp};
use crate::session::{EngineKind, GuestImage, Session};

/// The commands [`apply`] understands, for error messages.
pub const COMMANDS: &str =
    "run, pause, step N, back N, engine NAME, load GUEST [CMDLINE], cmdline [TEXT], save [FILE]";

/// What the page shows, as data: the test reads this instead of pixels.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Frames the app has drawn (0 = the page never painted).
    pub frames: u64,
    pub guest: String,
    pub cmdline: String,
    pub engine: &'static str,
    pub running: bool,
    /// Why the guest ended, once it has.
    pub finished: Option<String>,
    /// Why it is paused, if it is.
    pub stop: Option<String>,
    /// Guest instructions retired (the session's position).
    pub instructions: u64,
    pub rip: String,
    /// Register name → hex value, as the registers panel shows them.
    pub registers: BTreeMap<&'static str, String>,
    pub serial: String,
    /// The code view's lines, `=>` marking the current instruction.
    pub code: Vec<String>,
    /// Guest instructions per second over the last speed sample.
    pub ips: f64,
    /// The last error or notice the status bar shows.
    pub message: Option<String>,
}

/// The status of `app` after it drew `frames` frames.
pub fn status(app: &VmscopeApp, frames: u64) -> Status {
    let s = &app.session;
    let cpu = &s.machine.cpu;
    const GPR: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    let mut registers: BTreeMap<&'static str, String> = GPR
        .iter()
        .zip(cpu.gpr)
        .map(|(n, v)| (*n, format!("{v:#x}")))
        .collect();
    for (n, v) in [
        ("rip", cpu.rip),
        ("rflags", cpu.rflags),
        ("cr0", cpu.cr0),
        ("cr3", cpu.cr3),
        ("cr4", cpu.cr4),
        ("efer", cpu.efer),
    ] {
        registers.insert(n, format!("{v:#x}"));
    }
    let code = app
        .facts
        .code_lines
        .iter()
        .map(|(ip, text)| {
            let mark = if Some(*ip) == app.facts.code_current {
                "=>"
            } else {
                "  "
            };
            format!("{mark} {ip:#x}: {text}")
        })
        .collect();
    Status {
        frames,
        guest: s.image.name.clone(),
        cmdline: s.image.cmdline.clone(),
        engine: s.engine_kind().label(),
        running: s.is_running(),
        finished: s.finished.as_ref().map(crate::session::describe_exit),
        stop: s.last_stop.as_ref().map(|r| r.to_string()),
        instructions: s.position(),
        rip: format!("{:#x}", cpu.rip),
        registers,
        serial: s.serial.clone(),
        code,
        ips: app.ips.instructions.back().map_or(0.0, |[_, v]| *v),
        message: app.error.clone().or_else(|| s.notice.clone()),
    }
}

/// Does what one text command asks (see [`COMMANDS`]).
pub fn apply(app: &mut VmscopeApp, command: &str) -> Result<(), String> {
    let mut words = command.split_whitespace();
    let verb = words.next().unwrap_or("");
    let count = |w: Option<&str>| -> Result<u64, String> {
        w.map_or(Ok(1), |n| {
            n.parse()
                .map_err(|_| format!("{verb}: {n:?} is not a number"))
        })
    };
    match verb {
        "run" => {
            if !app.session.is_running() {
                app.act(Action::RunOrPause);
            }
        }
        "pause" => app.session.pause(),
        "step" => {
            for _ in 0..count(words.next())? {
                app.act(Action::StepInto);
            }
        }
        "back" => {
            let n = count(words.next())?;
            app.session.step_back(n)?;
        }
        "engine" => {
            let name = words.next().unwrap_or("");
            let kind = EngineKind::from_label(name)
                .ok_or_else(|| format!("engine: unknown engine {name:?}"))?;
            app.session.pause();
            app.session.switch_engine(kind)?;
        }
        "load" => {
            let name = words.next().ok_or("load: which guest?")?;
            let cmdline: Vec<&str> = words.collect();
            let mut image = GuestImage::builtin(name)
                .ok_or_else(|| format!("load: no built-in guest {name:?}"))?
                .with_boot(app.session.image.boot)
                .with_disks(app.session.image.disks.clone());
            if !cmdline.is_empty() {
                image.cmdline = cmdline.join(" ");
            }
            app.replace_session(Session::new(image), false);
            if let Some(e) = app.error.clone() {
                return Err(e);
            }
        }
        "cmdline" => {
            // As the "Command line" window does: reboot the same image with a new command line.
            let mut image = app.session.image.clone();
            image.cmdline = words.collect::<Vec<_>>().join(" ");
            app.replace_session(Session::new(image), true);
            if let Some(e) = app.error.clone() {
                return Err(e);
            }
        }
        "save" => {
            // As Ctrl+S and the window's Save button do: the sink decides where it goes.
            let name = words
                .next()
                .map_or_else(|| app.session.snapshot_file_name(), str::to_string);
            app.save_snapshot_as(&name)?;
        }
        "" => return Err(format!("empty command (commands: {COMMANDS})")),
        other => return Err(format!("unknown command {other:?} (commands: {COMMANDS})")),
    }
    Ok(())
}

/// What a headless speed run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub guest: String,
    pub engine: &'static str,
    pub instructions: u64,
    /// Host milliseconds the engine ran (boot and load excluded).
    pub ms: f64,
    /// Millions of guest instructions per host second.
    pub mips: f64,
    pub serial: String,
    /// How the guest ended ("stopped" if the instruction limit came first).
    pub exit: String,
}

/// Runs a built-in guest on `engine` without any UI until it ends or `max_instructions`
/// retire, timed with `now_ms` (the browser passes `performance.now`, natively a clock):
/// the engine's own speed on this host, the number the page's speed row is compared with.
pub fn bench(
    guest: &str,
    cmdline: &str,
    engine: EngineKind,
    max_instructions: u64,
    now_ms: &dyn Fn() -> f64,
) -> Result<BenchResult, String> {
    let g = guests::by_name(guest).ok_or_else(|| format!("no built-in guest {guest:?}"))?;
    let mut machine = Machine::new(crate::session::DEFAULT_MEMORY).map_err(|e| e.to_string())?;
    load_image_with_boot(
        &mut machine,
        g.file_name,
        g.image,
        cmdline,
        BootMethod::Direct,
        guests::FIRMWARE_ROM,
    )
    .map_err(|e| e.to_string())?;
    let mut engine_box: Box<dyn Engine> = match engine {
        EngineKind::Interp => Box::new(Interpreter::new()),
        EngineKind::Bt => Box::new(BinaryTranslator::default()),
        EngineKind::Kvm => return Err("bench runs the emulated engines (interp, bt)".into()),
    };
    let start = now_ms();
    let exit = engine_box
        .run(&mut machine, RunLimit::instructions(max_instructions))
        .map_err(|e| format!("{} failed: {e}", engine.label()))?;
    let ms = now_ms() - start;
    let instructions = machine.stats.instructions;
    Ok(BenchResult {
        guest: guest.to_string(),
        engine: engine.label(),
        instructions,
        ms,
        mips: if ms > 0.0 {
            instructions as f64 / ms / 1e3
        } else {
            0.0
        },
        serial: String::from_utf8_lossy(&machine.bus.take_serial_output()).into_owned(),
        exit: match exit {
            Exit::LimitReached => "stopped".into(),
            e => crate::session::describe_exit(&e),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(guest: &str) -> VmscopeApp {
        VmscopeApp::new(Session::builtin(guest).unwrap())
    }

    #[test]
    fn commands_step_back_and_load() {
        let mut a = app("hello64");
        apply(&mut a, "step 4").unwrap();
        assert_eq!(status(&a, 0).instructions, 4);
        let rip4 = status(&a, 0).rip;
        apply(&mut a, "step").unwrap();
        apply(&mut a, "back 1").unwrap();
        assert_eq!(status(&a, 0).instructions, 4);
        assert_eq!(status(&a, 0).rip, rip4);
        apply(&mut a, "engine bt").unwrap();
        assert_eq!(status(&a, 0).engine, "bt");
        apply(&mut a, "load kernel workloads=compute iterations=1").unwrap();
        let st = status(&a, 0);
        assert_eq!(st.guest, "kernel.elf");
        assert_eq!(st.cmdline, "workloads=compute iterations=1");
        assert_eq!(st.instructions, 0);
        apply(&mut a, "step 3").unwrap();
        apply(&mut a, "cmdline workloads=ipc").unwrap();
        let st = status(&a, 0);
        assert_eq!(
            (st.guest.as_str(), st.cmdline.as_str()),
            ("kernel.elf", "workloads=ipc")
        );
        assert_eq!(st.instructions, 0, "a new command line reboots");
    }

    #[test]
    fn bad_commands_say_what_is_known() {
        let mut a = app("hello64");
        for bad in ["", "jump", "step x", "engine qemu", "load nosuch"] {
            let e = apply(&mut a, bad).unwrap_err();
            assert!(!e.is_empty(), "{bad:?}");
        }
        assert!(apply(&mut a, "fly").unwrap_err().contains("step N"));
        assert!(
            apply(&mut a, "back 1").is_err(),
            "nothing to step back over yet"
        );
    }

    #[test]
    fn run_then_status_shows_the_serial_output_and_the_end() {
        let mut a = app("hello64");
        apply(&mut a, "run").unwrap();
        assert!(a.session.run_until_stopped(1_000_000, 1_000));
        let st = status(&a, 3);
        let g = guests::by_name("hello64").unwrap();
        assert_eq!(st.serial, g.expected_serial);
        assert!(st.finished.is_some());
        assert!(!st.running);
        assert_eq!(st.frames, 3);
        assert_eq!(st.registers["rip"], st.rip);
    }

    #[test]
    fn bench_runs_a_guest_to_its_end_on_both_emulated_engines() {
        let t0 = std::time::Instant::now();
        let clock = move || t0.elapsed().as_secs_f64() * 1e3;
        let g = guests::by_name("hello64").unwrap();
        let mut counts = Vec::new();
        for e in [EngineKind::Interp, EngineKind::Bt] {
            let r = bench("hello64", "", e, u64::MAX, &clock).unwrap();
            assert_eq!(r.serial, g.expected_serial, "{e:?}");
            assert!(r.exit.contains("isa-debug-exit"), "{}", r.exit);
            counts.push(r.instructions);
        }
        assert_eq!(
            counts[0], counts[1],
            "both engines retire the same instructions"
        );
        let r = bench("hello64", "", EngineKind::Interp, 100, &clock).unwrap();
        assert_eq!((r.instructions, r.exit.as_str()), (100, "stopped"));
        assert!(bench("hello64", "", EngineKind::Kvm, 1, &clock).is_err());
    }
}

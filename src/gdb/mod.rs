//! `vmscope run IMAGE --gdb 127.0.0.1:1234`: a GDB remote stub in front of any engine.
//! Teaches: the GDB remote serial protocol — a debugger is a client asking a VMM for state and runs.
//!
//! As QEMU's `-s -S`, the machine is built and loaded, then waits before its first instruction
//! until gdb connects (`target remote 127.0.0.1:1234`); it always waits, so a breakpoint can be
//! set before anything runs. The `gdbstub` crate speaks the protocol; `target.rs` answers its
//! questions from `CpuState` and guest memory (`memory.rs`: virtual addresses through the
//! guest's page tables), `run.rs` runs the engine for `stepi` and `continue`. When gdb detaches
//! the guest runs on to its end; when gdb kills it, the machine stops there.

mod arch;
mod memory;
mod run;
mod target;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};

use anyhow::{bail, Context, Result};
use emulator::{Exit, RunLimit};
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};
use gdbstub::target::Target;

use crate::runner::{build_machine, exit_status, GuestOutcome, RunOptions};
pub use run::{DebugEngine, VmTarget};

/// The listening address from `--gdb ADDR`: `HOST:PORT` on a loopback interface only (the
/// protocol has no authentication: whoever connects can read and write all guest memory).
pub fn listen_address(spec: &str) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = spec
        .to_socket_addrs()
        .with_context(|| format!("--gdb {spec}: expected HOST:PORT, e.g. 127.0.0.1:1234"))?
        .collect();
    match addrs.iter().find(|a| !a.ip().is_loopback()) {
        Some(a) => bail!(
            "--gdb {spec}: {} is not a loopback address; the gdb stub only listens on \
             127.0.0.1 or ::1 (anyone who can connect controls the guest)",
            a.ip()
        ),
        None => addrs
            .into_iter()
            .next()
            .with_context(|| format!("--gdb {spec}: the name resolves to no address")),
    }
}

/// How a debugging session ended.
pub enum GdbEnd {
    /// The guest ran to its end (gdb saw the exit, or gdb had detached and it ran on).
    Ended(GuestOutcome),
    /// gdb killed the guest (`kill`, or quitting gdb while attached); the machine stopped there.
    Killed(GuestOutcome),
}

/// Builds the machine, waits for gdb on `addr`, and serves it until the guest ends or gdb
/// kills it. "waiting for gdb on ADDR" goes to `notice` once the socket listens.
pub fn run_with_gdb(
    addr: &str,
    name: &str,
    bytes: &[u8],
    opts: &RunOptions,
    serial: Box<dyn Write>,
    notice: &mut dyn FnMut(String),
) -> Result<GdbEnd> {
    if opts.switch.is_some() {
        bail!("--gdb cannot be combined with --switch-after: the debugger keeps one engine");
    }
    if opts.max_instructions.is_some() {
        bail!("--gdb cannot be combined with --max-instructions: stop the guest from gdb");
    }
    let addr = listen_address(addr)?;
    let (machine, image, _) = build_machine(name, bytes, opts, notice)?;
    let engine = DebugEngine::new(opts.engine, &machine, notice)?;
    if matches!(engine, DebugEngine::Kvm(_)) {
        notice(
            "vmscope: note: with a breakpoint or watchpoint set, kvm single-steps the guest \
             (one exit per instruction); --engine interp or bt is much faster for that"
                .into(),
        );
    }
    let mut target = VmTarget::new(machine, engine, serial);
    let listener =
        TcpListener::bind(addr).with_context(|| format!("--gdb: listening on {addr}"))?;
    let bound = listener.local_addr()?;
    notice(format!("vmscope: waiting for gdb on {bound}"));
    let (stream, peer) = listener.accept().context("--gdb: accepting gdb")?;
    drop(listener);
    let _ = stream.set_nodelay(true);
    notice(format!("vmscope: gdb connected from {peer}"));

    let (reason, lost) = match GdbStub::new(stream).run_blocking::<EventLoop>(&mut target) {
        Ok(reason) => (reason, false),
        // gdb went away without detaching (killed, or the network dropped): as QEMU does,
        // the guest runs on.
        Err(e) if e.is_connection_error() => {
            notice(format!(
                "vmscope: lost the connection to gdb ({e}); the guest runs on"
            ));
            (DisconnectReason::Disconnect, true)
        }
        Err(e) => bail!("gdb session: {e}"),
    };
    let killed = match reason {
        DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_) => false,
        DisconnectReason::Kill => {
            notice("vmscope: gdb killed the guest".into());
            true
        }
        DisconnectReason::Disconnect => {
            if target.finished.is_none() {
                if !lost {
                    notice("vmscope: gdb detached; the guest runs on".into());
                }
                run_to_end(&mut target)?;
            }
            false
        }
    };
    target.drain_serial();
    let engines = vec![target.engine.get().describe()];
    let reports = target.engine.get().report().into_iter().collect();
    let exit = target.finished.clone().unwrap_or(Exit::LimitReached);
    let outcome = GuestOutcome {
        status: if killed { 0 } else { exit_status(&exit) },
        exit,
        engines,
        reports,
        machine: target.machine,
        image: image.to_string(),
        migrated: None,
        saved_on_ctrl_c: None,
    };
    Ok(if killed {
        GdbEnd::Killed(outcome)
    } else {
        GdbEnd::Ended(outcome)
    })
}

/// After gdb detached: the guest runs on without a debugger, as under `vmscope run`.
fn run_to_end(target: &mut VmTarget) -> Result<()> {
    let limit = if target.engine.get().counts_instructions() {
        RunLimit::instructions(1_000_000)
    } else {
        RunLimit::time_ns(50_000_000)
    };
    loop {
        let exit = target.engine.get().run(&mut target.machine, limit)?;
        target.drain_serial();
        if exit != Exit::LimitReached {
            target.finished = Some(exit);
            return Ok(());
        }
    }
}

/// `gdbstub`'s blocking loop: run the guest until it stops or gdb sends something.
enum EventLoop {}

impl BlockingEventLoop for EventLoop {
    type Target = VmTarget;
    type Connection = TcpStream;
    type StopReason = SingleThreadStopReason<u64>;

    #[allow(clippy::type_complexity)]
    fn wait_for_stop_reason(
        target: &mut VmTarget,
        conn: &mut TcpStream,
    ) -> Result<
        Event<SingleThreadStopReason<u64>>,
        WaitForStopReasonError<<VmTarget as Target>::Error, <TcpStream as Connection>::Error>,
    > {
        // A broken connection counts as "data": reading it next reports the error.
        let incoming = || conn.peek().map(|b| b.is_some()).unwrap_or(true);
        match target
            .resume(incoming)
            .map_err(WaitForStopReasonError::Target)?
        {
            run::RunEvent::IncomingData => {
                let byte = conn.read().map_err(WaitForStopReasonError::Connection)?;
                Ok(Event::IncomingData(byte))
            }
            run::RunEvent::Stopped(reason) => Ok(Event::TargetStopped(reason)),
        }
    }

    /// Ctrl-C in gdb: the guest stops where it is, reported as SIGINT (as QEMU does).
    fn on_interrupt(_target: &mut VmTarget) -> Result<Option<SingleThreadStopReason<u64>>, String> {
        Ok(Some(SingleThreadStopReason::Signal(
            gdbstub::common::Signal::SIGINT,
        )))
    }
}

//! `--migrate-to thread:ENGINE`: the destination in a thread of this process, over a socket
//! pair. Teaches nothing new about migration — it is the same stream — but puts the whole
//! protocol in one command: what the book's experiments and a first try need.
//!
//! The destination's output and notices are held until the source has reported, then
//! printed after it (`wait`), so one terminal shows the source's half, its report, and the
//! destination's half in that order, the same every run.

use std::sync::Mutex;
use std::thread::JoinHandle;

use super::{dest, Stream};
use crate::EngineChoice;

/// What the destination thread did.
pub struct Finished {
    /// The guest's output at the destination.
    pub serial: Vec<u8>,
    /// Notices and the run's summary, for stderr.
    pub notices: Vec<String>,
    /// The guest's exit status at the destination; `None` if the migration failed there.
    pub status: Option<i32>,
}

static DESTINATION: Mutex<Option<JoinHandle<Finished>>> = Mutex::new(None);

/// Starts the destination on `stream` (the other end is the source's).
pub fn start(engine: EngineChoice, stream: Stream) {
    let handle = std::thread::spawn(move || {
        let mut notices = Vec::new();
        let mut serial = Vec::new();
        let status = receive_and_run(engine, stream, &mut serial, &mut notices);
        let status = match status {
            Ok(s) => Some(s),
            Err(e) => {
                notices.push(format!("vmscope: destination: {e:#}"));
                None
            }
        };
        Finished {
            serial,
            notices,
            status,
        }
    });
    *DESTINATION.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
}

fn receive_and_run(
    engine: EngineChoice,
    stream: Stream,
    serial: &mut Vec<u8>,
    notices: &mut Vec<String>,
) -> anyhow::Result<i32> {
    let mut notice = |n: String| notices.push(n.replacen("vmscope: ", "vmscope: destination: ", 1));
    let received = dest::receive(stream, engine, None, &mut notice)?;
    let image = received
        .meta
        .image
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let outcome = crate::runner::run_machine(
        received.machine,
        format!("{image} (migrated here)"),
        &received.attached,
        &received.opts,
        serial,
        &mut notice,
    )?;
    notice(format!("vmscope: engine: {}", outcome.engines.join(" → ")));
    notice(format!("vmscope: {}", outcome.summary()));
    Ok(outcome.status)
}

/// Waits for the destination thread, if one was started.
pub fn wait() -> Option<Finished> {
    let handle = DESTINATION
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()?;
    Some(handle.join().unwrap_or_else(|_| Finished {
        serial: Vec::new(),
        notices: vec!["vmscope: destination: the thread panicked".into()],
        status: None,
    }))
}

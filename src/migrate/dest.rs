//! The receiving side of a live migration: build the machine META describes, take pages as
//! they come, restore the state, answer GOOD, run. Teaches: the destination trusts nothing
//! it is sent — every page number, length and section is checked before it touches RAM.

use std::io::Write;

use anyhow::{bail, Context, Result};
use emulator::machine::snapshot::MachineSnapshot;
use emulator::Machine;

use super::wire::{self, PageBatch, RoundReport};
use super::{Endpoint, Listener, Stream};
use crate::attach::Attached;
use crate::runner::{GuestOutcome, RunOptions};
use crate::snapshot::{self, Meta};
use crate::EngineChoice;

/// The largest RAM a stream may ask for (what `--memory` accepts).
const MAX_MEMORY: u64 = 64 << 30;

/// A machine received and restored, ready to run.
pub struct Received {
    pub machine: Machine,
    pub attached: Attached,
    pub opts: RunOptions,
    pub meta: Meta,
    pub rounds: Vec<RoundReport>,
    pub pages: u64,
    pub bytes: u64,
}

/// `vmscope migrate-listen ADDR`: wait for one migration, receive it, run the guest to the end
/// on `engine`. `ready` is told the address once it listens.
pub fn listen_and_run(
    at: &Endpoint,
    engine: EngineChoice,
    max_instructions: Option<u64>,
    serial: &mut dyn Write,
    notice: &mut dyn FnMut(String),
) -> Result<GuestOutcome> {
    let listener = Listener::bind(at)?;
    notice(format!(
        "vmscope: waiting for a migration on {}",
        listener.endpoint()?
    ));
    let stream = listener.accept()?;
    drop(listener);
    let received = receive(stream, engine, max_instructions, notice)?;
    for r in &received.rounds {
        notice(format!(
            "vmscope: received round {}: {} pages ({} dirtied meanwhile)",
            r.round, r.sent, r.dirtied
        ));
    }
    let image = received.meta.image.lines().next().unwrap_or_default();
    notice(format!(
        "vmscope: received {image} after {} instructions: {} pages, {:.1} MiB; running it here",
        received.meta.instructions,
        received.pages,
        received.bytes as f64 / (1 << 20) as f64
    ));
    let image = format!("{image} (migrated here)");
    crate::runner::run_machine(
        received.machine,
        image,
        &received.attached,
        &received.opts,
        serial,
        notice,
    )
}

/// Receives one machine from `stream` and answers GOOD, or FAIL with the reason (and returns
/// that error).
pub fn receive(
    mut stream: Stream,
    engine: EngineChoice,
    max_instructions: Option<u64>,
    notice: &mut dyn FnMut(String),
) -> Result<Received> {
    stream.set_timeouts(Some(std::time::Duration::from_secs(60)))?;
    let result = receive_machine(&mut stream, engine, max_instructions, notice);
    match &result {
        Ok(_) => wire::write_message(&mut stream, wire::GOOD, b"")
            .context("telling the source the machine runs here")?,
        Err(e) => {
            // The source may be gone already; the error is reported here either way.
            let _ = wire::write_message(&mut stream, wire::FAIL, format!("{e:#}").as_bytes());
        }
    }
    result.context("receiving a migration")
}

fn receive_machine(
    stream: &mut Stream,
    engine: EngineChoice,
    max_instructions: Option<u64>,
    notice: &mut dyn FnMut(String),
) -> Result<Received> {
    let mut reader = wire::Reader::new(stream);
    reader.read_greeting()?;
    let first = reader.read_message()?;
    if first.tag != wire::META {
        bail!(
            "message 0 is {}, not META: the stream must say what machine it carries first",
            first.tag_name()
        );
    }
    let meta = snapshot::parse_meta(&first.payload).context("message 0 (META)")?;
    if meta.memory == 0 || meta.memory > MAX_MEMORY || meta.memory % wire::PAGE_BYTES as u64 != 0 {
        bail!(
            "message 0 (META): {} bytes of RAM is not a machine this vmscope builds",
            meta.memory
        );
    }
    if !meta.disks.is_empty() {
        bail!("message 0 (META): the machine has disks, which a migration does not carry");
    }
    let opts = snapshot::rebuild_options(&meta, engine, max_instructions, &[])?;
    let (mut machine, attached) = crate::runner::build_board(&opts)?;
    // The source sends its non-zero pages only: everything else is zeros, here too.
    machine.ram.as_mut_slice().fill(0);
    let page_count = meta.memory / wire::PAGE_BYTES as u64;
    let mut rounds = Vec::new();
    let mut pages = 0u64;
    loop {
        let at = reader.offset;
        let index = reader.messages;
        let m = reader.read_message()?;
        let here = || format!("message {index} ({}) at byte {at}", m.tag_name());
        match m.tag {
            wire::PAGE => {
                let batch: PageBatch = postcard::from_bytes(&m.payload)
                    .map_err(|e| anyhow::anyhow!("{}: does not decode: {e}", here()))?;
                let ram = machine.ram.as_mut_slice();
                for (number, bytes) in &batch.pages {
                    if *number >= page_count {
                        bail!(
                            "{}: page {number:#x} is beyond RAM ({page_count:#x} pages)",
                            here()
                        );
                    }
                    let start = *number as usize * wire::PAGE_BYTES;
                    let dst = &mut ram[start..start + wire::PAGE_BYTES];
                    match bytes.len() {
                        0 => dst.fill(0),
                        wire::PAGE_BYTES => dst.copy_from_slice(bytes),
                        n => bail!("{}: page {number:#x} holds {n} bytes, not 4096", here()),
                    }
                }
                pages += batch.pages.len() as u64;
            }
            wire::ROUND => {
                let report: RoundReport = postcard::from_bytes(&m.payload)
                    .map_err(|e| anyhow::anyhow!("{}: does not decode: {e}", here()))?;
                rounds.push(report);
            }
            wire::STOP => {
                let sections = snapshot::file::decode(&m.payload)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", here()))?;
                let parts = snapshot::parts_from_sections(&sections, &meta, Vec::new())
                    .with_context(here)?;
                let snap = MachineSnapshot::from_parts(parts)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", here()))?;
                machine
                    .restore_keeping_ram(&snap)
                    .map_err(|e| anyhow::anyhow!("{}: restoring: {e}", here()))?;
                notice(format!(
                    "vmscope: the machine's state arrived ({} bytes)",
                    m.payload.len()
                ));
                return Ok(Received {
                    machine,
                    attached,
                    opts,
                    meta,
                    rounds,
                    pages,
                    bytes: reader.offset,
                });
            }
            _ => bail!("{}: not a message a source sends", here()),
        }
    }
}

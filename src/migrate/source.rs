//! The sending side of a live migration: pre-copy rounds between the guest's slices, then
//! the stop-and-copy. Teaches: the dirty log turns "copy RAM" into a loop that converges when
//! the link outruns the guest's writes — and the downtime is what the last round leaves over.

use std::collections::VecDeque;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use emulator::Machine;

use super::wire::{self, PageBatch, RoundReport};
use super::{MigratePlan, Stream};

/// Rounds of pre-copy before the guest is stopped whatever is left.
pub const MAX_ROUNDS: u32 = 30;
/// Guest time of one slice while migrating: the guest runs this long between batches.
pub const SLICE_NS: u64 = 1_000_000;
/// How long the source waits for the destination's answer after the stop-and-copy.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// A migration in progress.
pub struct Precopy {
    out: BufWriter<Stream>,
    bandwidth: u64,
    round: u32,
    /// Pages this round still has to send.
    queue: VecDeque<u64>,
    sent_in_round: u64,
    round_start_ns: u64,
    /// Bytes the link may still carry (earned by guest time, spent by pages).
    credit: u64,
    last_ns: u64,
    pub rounds: Vec<RoundReport>,
    /// Bytes written to the stream.
    pub bytes: u64,
}

/// What the runner does after a slice.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Keep running the guest; more pre-copy to do.
    Run,
    /// Stop the guest and call [`Precopy::stop_and_copy`].
    Stop,
}

/// A migration that finished: the guest runs at the destination now.
#[derive(Debug, Clone)]
pub struct Migrated {
    pub rounds: Vec<RoundReport>,
    /// Pages sent with the guest stopped.
    pub final_pages: u64,
    /// Bytes of CPU and device state.
    pub state_bytes: u64,
    /// Host time from stopping the guest to the destination's GOOD.
    pub downtime: Duration,
    /// What the stop-and-copy takes at the link's speed (pages and state over
    /// `--migrate-bandwidth`), in ns: the downtime a real link of that speed would give.
    pub link_downtime_ns: u64,
    /// Everything written to the stream.
    pub bytes: u64,
}

impl Precopy {
    /// Connects, sends the greeting and `META`, starts the dirty log and queues every page
    /// that is not all zeros (the destination's RAM starts zeroed).
    pub fn start(plan: &MigratePlan, machine: &mut Machine, meta_json: &[u8]) -> Result<Precopy> {
        let stream = super::Stream::connect(&plan.to)?;
        stream.set_timeouts(Some(Duration::from_secs(10)))?;
        let mut out = BufWriter::with_capacity(1 << 20, stream);
        wire::write_greeting(&mut out)?;
        wire::write_message(&mut out, wire::META, meta_json)?;
        machine.ram.start_dirty_log();
        let queue = machine
            .ram
            .as_slice()
            .chunks(wire::PAGE_BYTES)
            .enumerate()
            .filter(|(_, page)| page.iter().any(|b| *b != 0))
            .map(|(n, _)| n as u64)
            .collect();
        let now = machine.bus.now_ns();
        Ok(Precopy {
            out,
            bandwidth: plan.bandwidth.max(wire::PAGE_BYTES as u64),
            round: 0,
            queue,
            sent_in_round: 0,
            round_start_ns: now,
            credit: 0,
            last_ns: now,
            rounds: Vec::new(),
            bytes: 10 + 12 + meta_json.len() as u64,
        })
    }

    /// Bytes the link carries in one slice.
    fn slice_bytes(&self) -> u64 {
        (self.bandwidth as u128 * SLICE_NS as u128 / 1_000_000_000) as u64
    }

    // ANCHOR: after_slice
    /// After a slice of the guest: the link has earned bytes for the guest time that passed;
    /// spend them on this round's pages. A round that is sent ends: the pages dirtied
    /// meanwhile are the next round's — or, if they fit in one slice of the link (or this
    /// was the last round allowed), it is time to stop the guest.
    pub fn after_slice(&mut self, machine: &mut Machine) -> Result<Next> {
        let now = machine.bus.now_ns();
        let earned =
            self.bandwidth as u128 * now.saturating_sub(self.last_ns) as u128 / 1_000_000_000;
        self.last_ns = now;
        // A long halt must not bank a burst the link could never have sent in one go.
        self.credit = (self.credit + earned as u64).min(2 * self.slice_bytes());
        let affordable = (self.credit / wire::PAGE_BYTES as u64) as usize;
        let count = affordable.min(self.queue.len());
        let pages: Vec<u64> = self.queue.drain(..count).collect();
        self.send_pages(machine, &pages)?;
        self.credit -= count as u64 * wire::PAGE_BYTES as u64;
        self.sent_in_round += count as u64;
        if !self.queue.is_empty() {
            return Ok(Next::Run);
        }
        let dirty = machine.ram.take_dirty_pages();
        let report = RoundReport {
            round: self.round,
            sent: self.sent_in_round,
            dirtied: dirty.len() as u64,
            guest_ns: now - self.round_start_ns,
        };
        self.rounds.push(report);
        self.send(wire::ROUND, &postcard::to_allocvec(&report)?)?;
        self.out.flush()?;
        self.round += 1;
        self.queue = dirty.into();
        self.sent_in_round = 0;
        self.round_start_ns = now;
        let fits = self.queue.len() as u64 * wire::PAGE_BYTES as u64 <= self.slice_bytes();
        if fits || self.round >= MAX_ROUNDS {
            return Ok(Next::Stop);
        }
        Ok(Next::Run)
    }
    // ANCHOR_END: after_slice

    // ANCHOR: stop_and_copy
    /// The guest is stopped: send what is still dirty, then the CPU and devices, and wait for
    /// the destination to say it has the machine. An error leaves the machine as it was, to
    /// run on here.
    pub fn stop_and_copy(
        mut self,
        machine: &mut Machine,
        state: &[u8],
        stopped: Instant,
    ) -> Result<Migrated> {
        machine.mark_pending_dma_dirty();
        let mut last: Vec<u64> = self.queue.drain(..).collect();
        last.extend(machine.ram.take_dirty_pages());
        last.sort_unstable();
        last.dedup();
        machine.ram.stop_dirty_log();
        self.send_pages(machine, &last)?;
        self.send(wire::STOP, state)?;
        self.out.flush()?;
        let mut stream = self
            .out
            .into_inner()
            .map_err(|e| anyhow::anyhow!("sending the last bytes: {}", e.error()))?;
        stream.set_timeouts(Some(ANSWER_TIMEOUT))?;
        let mut reader = wire::Reader::new(&mut stream);
        let answer = reader
            .read_message()
            .context("waiting for the destination's answer")?;
        match answer.tag {
            wire::GOOD => Ok(Migrated {
                rounds: self.rounds,
                final_pages: last.len() as u64,
                state_bytes: state.len() as u64,
                downtime: stopped.elapsed(),
                link_downtime_ns: ((last.len() * wire::PAGE_BYTES + state.len()) as u128
                    * 1_000_000_000
                    / self.bandwidth as u128) as u64,
                bytes: self.bytes,
            }),
            wire::FAIL => bail!(
                "the destination refused the machine: {}",
                String::from_utf8_lossy(&answer.payload)
            ),
            _ => bail!("the destination answered {}, not GOOD", answer.tag_name()),
        }
    }
    // ANCHOR_END: stop_and_copy

    /// Pages as they are now, in batches; pages of zeros go as a number alone.
    fn send_pages(&mut self, machine: &Machine, pages: &[u64]) -> Result<()> {
        let ram = machine.ram.as_slice();
        for chunk in pages.chunks(wire::PAGES_PER_BATCH) {
            let batch = PageBatch {
                round: self.round,
                pages: chunk
                    .iter()
                    .map(|n| {
                        let start = *n as usize * wire::PAGE_BYTES;
                        let bytes = &ram[start..start + wire::PAGE_BYTES];
                        let copy = if bytes.iter().all(|b| *b == 0) {
                            Vec::new()
                        } else {
                            bytes.to_vec()
                        };
                        (*n, copy)
                    })
                    .collect(),
            };
            self.send(wire::PAGE, &postcard::to_allocvec(&batch)?)?;
        }
        Ok(())
    }

    fn send(&mut self, tag: [u8; 4], payload: &[u8]) -> Result<()> {
        wire::write_message(&mut self.out, tag, payload)
            .with_context(|| format!("sending {}", String::from_utf8_lossy(&tag)))?;
        self.bytes += 12 + payload.len() as u64;
        Ok(())
    }
}

impl Migrated {
    /// The report, one line per round, then the stop-and-copy and the total.
    pub fn describe(&self, to: &super::Endpoint) -> Vec<String> {
        let mut lines: Vec<String> = self
            .rounds
            .iter()
            .map(|r| {
                format!(
                    "migration round {}: {} pages sent, {} dirtied meanwhile ({:.1} ms of guest time)",
                    r.round,
                    r.sent,
                    r.dirtied,
                    r.guest_ns as f64 / 1e6
                )
            })
            .collect();
        lines.push(format!(
            "stop-and-copy: {} pages and {} KiB of CPU and device state; downtime {:.1} ms ({:.1} ms at the link's speed)",
            self.final_pages,
            self.state_bytes.div_ceil(1024),
            self.downtime.as_secs_f64() * 1e3,
            self.link_downtime_ns as f64 / 1e6
        ));
        lines.push(format!(
            "migrated to {to}: {} rounds, {:.1} MiB sent; the guest runs there now",
            self.rounds.len(),
            self.bytes as f64 / (1 << 20) as f64
        ));
        lines
    }
}

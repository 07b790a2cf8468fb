//! virtio-console (spec 5.3), one port: bytes out through the transmitq, bytes in through receive buffers the guest lends us.
//! Teaches: the asymmetry of virtio input — the device cannot push data, it can only fill buffers the driver made available earlier.
//!
//! Queue 0 is receiveq (port 0), queue 1 transmitq; without VIRTIO_CONSOLE_F_MULTIPORT there
//! are no control queues. Output goes to a buffer the host drains with
//! [`VirtioConsole::take_output`] (like the UART's), or to a host writer set with
//! [`VirtioConsole::set_output_sink`]. Input from the host ([`VirtioConsole::receive`]) waits
//! here until the guest has made receive buffers available: when it notifies receiveq, or at
//! the transport's next tick ([`VirtioDevice::poll`]).
//!
//! Features: only VIRTIO_CONSOLE_F_EMERG_WRITE (a byte written to config offset 8 is output
//! at once, even before the driver set the device up). We do not offer VIRTIO_CONSOLE_F_SIZE:
//! the order of `cols` and `rows` in the config space is where the spec and Linux disagreed
//! for years (Linux read them the other way round before it changed to the spec's order), so
//! whichever order we chose, some guest would see 25 columns and 80 rows. Without the feature
//! the driver keeps its default size.

use std::collections::VecDeque;
use std::io::Write;

use super::{read_config_bytes, Queue, QueueError, VirtioDevice, DEVICE_ID_CONSOLE};
use crate::bus::Dma;
use crate::snapshot::{DeviceSnapshot, SnapshotError};

pub const VIRTIO_CONSOLE_F_SIZE: u32 = 0;
pub const VIRTIO_CONSOLE_F_MULTIPORT: u32 = 1;
pub const VIRTIO_CONSOLE_F_EMERG_WRITE: u32 = 2;

pub const RECEIVEQ: usize = 0;
pub const TRANSMITQ: usize = 1;
pub const QUEUE_SIZE: u16 = 64;
/// Offset of `emerg_wr` in `struct virtio_console_config {cols, rows, max_nr_ports, emerg_wr}`.
pub const EMERG_WR_OFFSET: u64 = 8;

/// Guest output kept when nobody drains it: beyond this the oldest half is dropped.
pub const MAX_BUFFERED_OUTPUT: usize = 16 << 20;
/// Host input waiting for receive buffers; more is dropped.
pub const MAX_PENDING_INPUT: usize = 1 << 20;

/// Where the bytes the guest transmits go.
enum Output {
    Buffer(Vec<u8>),
    Sink(Box<dyn Write>),
}

impl Output {
    fn push(&mut self, bytes: &[u8]) {
        match self {
            Output::Buffer(buffer) => {
                if buffer.len() + bytes.len() > MAX_BUFFERED_OUTPUT {
                    let oldest = buffer.len().min(MAX_BUFFERED_OUTPUT / 2);
                    buffer.drain(..oldest);
                }
                let room = MAX_BUFFERED_OUTPUT.saturating_sub(buffer.len());
                let start = bytes.len().saturating_sub(room);
                buffer.extend_from_slice(&bytes[start..]);
            }
            // A host writer that fails loses output; it must never stop or crash the guest.
            Output::Sink(sink) => {
                let _ = sink.write_all(bytes).and_then(|_| sink.flush());
            }
        }
    }
}

/// The layout of [`ConsoleSnapshot`]: 1.
const SNAPSHOT_VERSION: u16 = 1;

/// virtio-console in a machine snapshot.
#[derive(serde::Serialize, serde::Deserialize)]
struct ConsoleSnapshot {
    pending_input: VecDeque<u8>,
    buffered_output: Vec<u8>,
    bytes_out: u64,
    bytes_in: u64,
}

/// A virtio console with one port.
pub struct VirtioConsole {
    output: Output,
    pending_input: VecDeque<u8>,
    /// Bytes the guest sent (transmitq and `emerg_wr`).
    bytes_out: u64,
    /// Bytes delivered into receive buffers.
    bytes_in: u64,
}

impl Default for VirtioConsole {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtioConsole {
    /// A console whose output is buffered for [`VirtioConsole::take_output`].
    pub fn new() -> Self {
        VirtioConsole {
            output: Output::Buffer(Vec::new()),
            pending_input: VecDeque::new(),
            bytes_out: 0,
            bytes_in: 0,
        }
    }

    /// Bytes the guest wrote since the last call (empty while a sink is set).
    pub fn take_output(&mut self) -> Vec<u8> {
        match &mut self.output {
            Output::Buffer(b) => std::mem::take(b),
            Output::Sink(_) => Vec::new(),
        }
    }

    /// Sends output straight to `sink` from now on; what was buffered is written first.
    pub fn set_output_sink(&mut self, sink: Box<dyn Write>) {
        let buffered = self.take_output();
        self.output = Output::Sink(sink);
        self.output.push(&buffered);
    }

    /// Host input for the guest; delivered as receive buffers become available.
    pub fn receive(&mut self, bytes: &[u8]) {
        let room = MAX_PENDING_INPUT - self.pending_input.len();
        self.pending_input.extend(&bytes[..bytes.len().min(room)]);
    }

    /// Input bytes still waiting for receive buffers.
    pub fn pending_input(&self) -> usize {
        self.pending_input.len()
    }

    /// (bytes the guest sent, bytes delivered to the guest).
    pub fn byte_counts(&self) -> (u64, u64) {
        (self.bytes_out, self.bytes_in)
    }

    /// Fills receive buffers with pending input while there is both.
    fn deliver_input(&mut self, rx: &mut Queue, dma: &mut Dma) -> Result<(), QueueError> {
        while !self.pending_input.is_empty() && rx.ready() {
            let Some(chain) = rx.pop(dma)? else {
                break;
            };
            let room = chain.writable_len().min(self.pending_input.len() as u64) as usize;
            let chunk: Vec<u8> = self.pending_input.iter().take(room).copied().collect();
            let n = chain.write_at(dma, 0, &chunk)?;
            self.pending_input.drain(..n);
            self.bytes_in += n as u64;
            rx.add_used(dma, chain.head, n as u32)?;
        }
        Ok(())
    }

    /// Sends every transmit buffer's readable bytes to the output.
    fn transmit(&mut self, tx: &mut Queue, dma: &mut Dma) -> Result<(), QueueError> {
        while let Some(chain) = tx.pop(dma)? {
            // Writable buffers in a transmitq are a driver error (5.3.6.1); we just ignore them.
            let data = chain.read_all(dma, 0)?;
            self.bytes_out += data.len() as u64;
            self.output.push(&data);
            tx.add_used(dma, chain.head, 0)?;
        }
        Ok(())
    }
}

impl VirtioDevice for VirtioConsole {
    fn device_type(&self) -> u32 {
        DEVICE_ID_CONSOLE
    }

    fn name(&self) -> &'static str {
        "virtio-console"
    }

    fn features(&self) -> u64 {
        1 << VIRTIO_CONSOLE_F_EMERG_WRITE
    }

    fn queue_count(&self) -> usize {
        2
    }

    fn queue_max_size(&self, _q: usize) -> u16 {
        QUEUE_SIZE
    }

    /// cols, rows (0: not offered), max_nr_ports (0: no MULTIPORT), emerg_wr (write-only).
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&[0u8; 12], offset, data);
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        // The lower byte of emerg_wr is output at once (5.3.5.1).
        if offset == EMERG_WR_OFFSET && !data.is_empty() {
            self.bytes_out += 1;
            self.output.push(&data[..1]);
        }
    }

    fn process(&mut self, q: usize, queue: &mut Queue, dma: &mut Dma) -> Result<(), QueueError> {
        match q {
            RECEIVEQ => self.deliver_input(queue, dma),
            TRANSMITQ => self.transmit(queue, dma),
            _ => Ok(()),
        }
    }

    fn poll(&mut self, queues: &mut [Queue], dma: &mut Dma) -> Result<(), QueueError> {
        match queues.get_mut(RECEIVEQ) {
            Some(rx) => self.deliver_input(rx, dma),
            None => Ok(()),
        }
    }

    fn wants_poll(&self) -> bool {
        !self.pending_input.is_empty()
    }

    /// Input not yet delivered and output nobody took yet (a host sink has it already).
    fn snapshot(&self) -> Option<DeviceSnapshot> {
        let state = ConsoleSnapshot {
            pending_input: self.pending_input.clone(),
            buffered_output: match &self.output {
                Output::Buffer(b) => b.clone(),
                Output::Sink(_) => Vec::new(),
            },
            bytes_out: self.bytes_out,
            bytes_in: self.bytes_in,
        };
        Some(DeviceSnapshot::of(self.name(), SNAPSHOT_VERSION, &state))
    }

    fn restore(&mut self, snap: &DeviceSnapshot) -> Result<(), SnapshotError> {
        let state: ConsoleSnapshot = snap.get(self.name(), SNAPSHOT_VERSION)?;
        self.pending_input = state.pending_input;
        if let Output::Buffer(b) = &mut self.output {
            *b = state.buffered_output;
        }
        self.bytes_out = state.bytes_out;
        self.bytes_in = state.bytes_in;
        Ok(())
    }
}

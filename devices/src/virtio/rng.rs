//! virtio-rng, the entropy device (spec 5.4): one queue of device-writable buffers the device fills with random bytes.
//! Teaches: the simplest virtio device — and why an emulator's "randomness" should be a seeded generator, so runs repeat.
//!
//! By default the bytes come from SplitMix64 (Steele, Lea, Flood: "Fast splittable
//! pseudorandom number generators", 2014) started from a seed given at construction: the
//! same seed gives the same bytes, so an emulated run is repeatable like everything else on
//! the virtual clock. That is no entropy at all — a guest must not make keys from it. A host
//! that wants real entropy passes its own source ([`VirtioRng::with_source`], e.g. one over
//! `getrandom`); the portable core makes no OS calls of its own.

use super::{Queue, QueueError, VirtioDevice, DEVICE_ID_ENTROPY};
use crate::bus::Dma;
use crate::snapshot::{DeviceSnapshot, SnapshotError};

pub const QUEUE_SIZE: u16 = 64;
/// Bytes given per request at most (the spec lets the device use less than the buffer).
pub const MAX_BYTES_PER_REQUEST: u64 = 64 << 10;

/// SplitMix64: a 64-bit counter stepped by the golden-ratio constant and scrambled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A host entropy source: fills the buffer it is given.
pub type EntropySource = Box<dyn FnMut(&mut [u8])>;

enum Source {
    Seeded { seed: u64, rng: SplitMix64 },
    Host(EntropySource),
}

/// A virtio entropy device.
pub struct VirtioRng {
    source: Source,
    bytes_given: u64,
}

impl VirtioRng {
    /// Deterministic bytes from SplitMix64 seeded with `seed` (restarted at every reset).
    pub fn new(seed: u64) -> Self {
        VirtioRng {
            source: Source::Seeded {
                seed,
                rng: SplitMix64::new(seed),
            },
            bytes_given: 0,
        }
    }

    /// Bytes from the caller's entropy source.
    pub fn with_source(source: EntropySource) -> Self {
        VirtioRng {
            source: Source::Host(source),
            bytes_given: 0,
        }
    }

    /// Random bytes handed to the guest so far.
    pub fn bytes_given(&self) -> u64 {
        self.bytes_given
    }

    fn fill(&mut self, buf: &mut [u8]) {
        match &mut self.source {
            Source::Seeded { rng, .. } => rng.fill(buf),
            Source::Host(f) => f(buf),
        }
    }
}

impl VirtioDevice for VirtioRng {
    fn device_type(&self) -> u32 {
        DEVICE_ID_ENTROPY
    }

    fn name(&self) -> &'static str {
        "virtio-rng"
    }

    fn features(&self) -> u64 {
        0
    }

    fn queue_count(&self) -> usize {
        1
    }

    fn queue_max_size(&self, _q: usize) -> u16 {
        QUEUE_SIZE
    }

    /// No configuration space.
    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn reset(&mut self) {
        if let Source::Seeded { seed, rng } = &mut self.source {
            *rng = SplitMix64::new(*seed);
        }
    }

    fn process(&mut self, _q: usize, queue: &mut Queue, dma: &mut Dma) -> Result<(), QueueError> {
        while let Some(chain) = queue.pop(dma)? {
            // Readable buffers are a driver error (5.4.6.1): only the writable part is filled.
            let len = chain.writable_len().min(MAX_BYTES_PER_REQUEST) as usize;
            let mut buf = vec![0u8; len];
            self.fill(&mut buf);
            let n = chain.write_at(dma, 0, &buf)?;
            self.bytes_given += n as u64;
            queue.add_used(dma, chain.head, n as u32)?;
        }
        Ok(())
    }

    /// The generator's position; a host entropy source cannot be rewound, so `None`.
    fn snapshot(&self) -> Option<DeviceSnapshot> {
        match &self.source {
            // Layout 1: (the generator, bytes given).
            Source::Seeded { rng, .. } => {
                Some(DeviceSnapshot::of(self.name(), 1, &(rng, self.bytes_given)))
            }
            Source::Host(_) => None,
        }
    }

    fn restore(&mut self, snap: &DeviceSnapshot) -> Result<(), SnapshotError> {
        let (saved, given): (SplitMix64, u64) = snap.get(self.name(), 1)?;
        match &mut self.source {
            Source::Seeded { rng, .. } => *rng = saved,
            Source::Host(_) => return Err(SnapshotError::Unsupported("virtio-rng (host entropy)")),
        }
        self.bytes_given = given;
        Ok(())
    }
}

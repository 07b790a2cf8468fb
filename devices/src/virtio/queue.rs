//! The split virtqueue (spec 2.7): descriptor table, available ring, used ring, all in guest RAM.
//! Teaches: how a device walks descriptor chains the guest wrote, and why it must distrust every index, length and address in them.
//!
//! ```text
//!  Descriptor Area (16·N)        Driver Area (6 + 2·N)          Device Area (6 + 8·N)
//!  desc[i]: addr  u64            flags u16  (NO_INTERRUPT)      flags u16  (NO_NOTIFY)
//!           len   u32            idx   u16  next slot to fill   idx   u16  next slot to fill
//!           flags u16 NEXT|WRITE ring[N] u16  chain heads       ring[N] {id u32, len u32}
//!                     |INDIRECT  used_event u16 (EVENT_IDX)     avail_event u16 (EVENT_IDX)
//!           next  u16
//! ```
//!
//! The driver writes a chain into the table, its head into `avail.ring[idx % N]`, bumps
//! `avail.idx` and notifies. The device ([`Queue::pop`]) reads `avail.idx` once, takes the
//! head, follows `next` links (or an indirect table) and hands the device model a
//! [`DescChain`]: a checked list of (addr, len, writable) segments. When done it writes
//! `{head, bytes written}` into the used ring and bumps `used.idx` ([`Queue::add_used`]).
//!
//! Everything the guest wrote is hostile until checked: a `next` pointing past the table, a
//! chain that loops, an indirect table inside an indirect table, lengths that add up past
//! 4 GiB, an address outside RAM, an `avail.idx` that claims more entries than the ring
//! holds. Each is a [`QueueError`]; the core then sets DEVICE_NEEDS_RESET (spec 2.1.2).
//! Memory ordering does not matter here (one thread runs guest and device in turn), but
//! each ring index is still read once per pop, as a device on real SMP must.

use thiserror::Error;

use crate::bus::{Dma, DmaError};

pub const VIRTQ_DESC_F_NEXT: u16 = 1;
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
pub const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;

/// The largest queue size the split format allows (spec 2.7).
pub const MAX_QUEUE_SIZE: u16 = 32768;
/// Bytes one chain may describe. The spec caps a chain at 4 GiB; we refuse far less, as the
/// spec lets a device have "a reasonable limit" (2.7.4.1): no guest request needs more.
pub const MAX_CHAIN_BYTES: u64 = 64 << 20;
/// Descriptors one indirect table may hold: a table longer than the largest possible queue
/// cannot be a real request.
pub const MAX_INDIRECT_DESCRIPTORS: u32 = MAX_QUEUE_SIZE as u32;

/// A ring the driver broke. The transport sets DEVICE_NEEDS_RESET and stops the device.
#[derive(serde::Serialize, serde::Deserialize, Debug, Error, Clone, PartialEq, Eq)]
pub enum QueueError {
    #[error("descriptor index {index} is outside a table of {size}")]
    DescIndexOutOfRange { index: u32, size: u32 },
    #[error("descriptor chain longer than {limit} descriptors (a loop?)")]
    ChainTooLong { limit: u32 },
    #[error("indirect descriptor used but VIRTIO_F_INDIRECT_DESC was not negotiated")]
    IndirectNotNegotiated,
    #[error("indirect descriptor inside an indirect table")]
    NestedIndirect,
    #[error("descriptor has both INDIRECT and NEXT set")]
    IndirectWithNext,
    #[error(
        "indirect table of {len} bytes (must be a non-zero multiple of 16, at most 32768 entries)"
    )]
    BadIndirectTable { len: u32 },
    #[error("descriptor chain of {bytes} bytes is too large")]
    ChainTooLarge { bytes: u64 },
    #[error("device-readable descriptor after a device-writable one")]
    ReadableAfterWritable,
    #[error("available index {avail} is more than the queue size ahead of {next}")]
    AvailIndexJump { avail: u16, next: u16 },
    #[error("queue is not ready")]
    NotReady,
    #[error(transparent)]
    Dma(#[from] DmaError),
    #[error("malformed request: {0}")]
    BadRequest(#[serde(with = "crate::snapshot::interned::one")] crate::snapshot::StaticName),
}

/// One buffer of a chain: `len` bytes at guest-physical `addr`, checked to lie in RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub len: u32,
    /// Device-writable (VIRTQ_DESC_F_WRITE); otherwise device-readable.
    pub writable: bool,
}

/// A popped descriptor chain: readable segments first, then writable ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescChain {
    /// The head index, returned in the used ring.
    pub head: u16,
    pub segments: Vec<Segment>,
}

impl DescChain {
    pub fn readable(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().filter(|s| !s.writable)
    }

    pub fn writable(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().filter(|s| s.writable)
    }

    pub fn readable_len(&self) -> u64 {
        self.readable().map(|s| u64::from(s.len)).sum()
    }

    pub fn writable_len(&self) -> u64 {
        self.writable().map(|s| u64::from(s.len)).sum()
    }

    /// Copies the readable bytes from `offset` on into `buf`, as if the readable segments
    /// were one buffer. Returns how many bytes there were (less than `buf` at the end).
    pub fn read_at(&self, dma: &Dma, offset: u64, buf: &mut [u8]) -> Result<usize, DmaError> {
        let mut done = 0;
        for (addr, n) in spans(self.readable(), offset, buf.len()) {
            dma.read(addr, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(done)
    }

    /// All readable bytes from `offset` on.
    pub fn read_all(&self, dma: &Dma, offset: u64) -> Result<Vec<u8>, DmaError> {
        let len = self.readable_len().saturating_sub(offset) as usize;
        let mut buf = vec![0; len];
        self.read_at(dma, offset, &mut buf)?;
        Ok(buf)
    }

    /// Writes `data` into the writable segments from `offset` on, as if they were one buffer.
    /// Returns the bytes written (fewer than `data` when the buffers end first).
    pub fn write_at(&self, dma: &mut Dma, offset: u64, data: &[u8]) -> Result<usize, DmaError> {
        let mut done = 0;
        for (addr, n) in spans(self.writable(), offset, data.len()) {
            dma.write(addr, &data[done..done + n])?;
            done += n;
        }
        Ok(done)
    }
}

/// The (address, length) pieces of `segments` covering `len` bytes from `offset`.
fn spans<'a>(
    segments: impl Iterator<Item = &'a Segment>,
    mut offset: u64,
    len: usize,
) -> Vec<(u64, usize)> {
    let mut left = len;
    let mut out = Vec::new();
    for s in segments {
        if left == 0 {
            break;
        }
        let slen = u64::from(s.len);
        if offset >= slen {
            offset -= slen;
            continue;
        }
        let n = ((slen - offset) as usize).min(left);
        out.push((s.addr + offset, n));
        left -= n;
        offset = 0;
    }
    out
}

/// The three areas of a split queue (the PCI names; mmio calls them Desc, Driver, Device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueArea {
    /// The descriptor table.
    Descriptors,
    /// The available ring, written by the driver.
    Driver,
    /// The used ring, written by the device.
    Device,
}

/// One descriptor as read from guest memory.
#[derive(Debug, Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

fn read_desc(dma: &Dma, table: u64, index: u32) -> Result<Desc, DmaError> {
    let mut b = [0u8; 16];
    dma.read(table + 16 * u64::from(index), &mut b)?;
    Ok(Desc {
        addr: u64::from_le_bytes(b[0..8].try_into().unwrap()),
        len: u32::from_le_bytes(b[8..12].try_into().unwrap()),
        flags: u16::from_le_bytes(b[12..14].try_into().unwrap()),
        next: u16::from_le_bytes(b[14..16].try_into().unwrap()),
    })
}

// ANCHOR: need_event
/// The spec's `vring_need_event` (2.7.7): has the used index passed `event` on its way
/// from `old` to `new`? Done in 16-bit wrapping arithmetic, as the indices wrap.
pub fn vring_need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}
// ANCHOR_END: need_event

/// One split virtqueue: its configuration (from the transport) and the device's position.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    max_size: u16,
    /// 0 after the driver wrote an invalid size: the queue cannot be enabled.
    size: u16,
    ready: bool,
    desc: u64,
    driver: u64,
    device: u64,
    indirect: bool,
    event_idx: bool,
    /// The next available ring slot the device will read (free-running).
    next_avail: u16,
    /// The next used ring slot the device will write (= used.idx).
    next_used: u16,
    /// used.idx when the core last decided about an interrupt.
    signalled_used: u16,
}

impl Queue {
    /// A queue of at most `max_size` entries, in its reset state (size = max).
    pub fn new(max_size: u16) -> Self {
        assert!(
            max_size.is_power_of_two() && max_size <= MAX_QUEUE_SIZE,
            "a queue's maximum size is a power of two up to 32768"
        );
        Queue {
            max_size,
            size: max_size,
            ready: false,
            desc: 0,
            driver: 0,
            device: 0,
            indirect: false,
            event_idx: false,
            next_avail: 0,
            next_used: 0,
            signalled_used: 0,
        }
    }

    /// Back to the state after [`Queue::new`].
    pub fn reset(&mut self) {
        *self = Queue::new(self.max_size);
    }

    pub fn max_size(&self) -> u16 {
        self.max_size
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    pub fn ready(&self) -> bool {
        self.ready
    }

    /// used.idx as the device last wrote it.
    pub fn used_idx(&self) -> u16 {
        self.next_used
    }

    /// The next available slot the device will look at.
    pub fn next_avail(&self) -> u16 {
        self.next_avail
    }

    /// Sets the size: a power of two in 1 ..= max. An invalid size is recorded as 0.
    /// Refused while the queue is enabled.
    pub fn set_size(&mut self, size: u16) -> bool {
        if self.ready {
            return false;
        }
        let ok = size.is_power_of_two() && size <= self.max_size;
        self.size = if ok { size } else { 0 };
        ok
    }

    pub fn addr(&self, area: QueueArea) -> u64 {
        match area {
            QueueArea::Descriptors => self.desc,
            QueueArea::Driver => self.driver,
            QueueArea::Device => self.device,
        }
    }

    pub fn set_addr(&mut self, area: QueueArea, addr: u64) {
        match area {
            QueueArea::Descriptors => self.desc = addr,
            QueueArea::Driver => self.driver = addr,
            QueueArea::Device => self.device = addr,
        }
    }

    /// Which negotiated ring features apply (set when FEATURES_OK is accepted).
    pub fn set_ring_features(&mut self, indirect: bool, event_idx: bool) {
        self.indirect = indirect;
        self.event_idx = event_idx;
    }

    /// Enables or disables the queue. Enabling starts the rings from index 0 and needs a
    /// valid size.
    pub fn set_ready(&mut self, ready: bool) -> bool {
        if ready && self.size == 0 {
            return false;
        }
        if ready && !self.ready {
            self.next_avail = 0;
            self.next_used = 0;
            self.signalled_used = 0;
        }
        self.ready = ready;
        true
    }

    fn avail_ring_entry(&self, slot: u16) -> u64 {
        self.driver + 4 + 2 * u64::from(slot % self.size)
    }

    fn used_event_addr(&self) -> u64 {
        self.driver + 4 + 2 * u64::from(self.size)
    }

    fn avail_event_addr(&self) -> u64 {
        self.device + 4 + 8 * u64::from(self.size)
    }

    // ANCHOR: pop
    /// Takes the next available chain, checked, or `None` when the driver has added none.
    pub fn pop(&mut self, dma: &mut Dma) -> Result<Option<DescChain>, QueueError> {
        if !self.ready {
            return Err(QueueError::NotReady);
        }
        let avail_idx = dma.read_u16(self.driver + 2)?;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(QueueError::AvailIndexJump {
                avail: avail_idx,
                next: self.next_avail,
            });
        }
        let head = dma.read_u16(self.avail_ring_entry(self.next_avail))?;
        self.next_avail = self.next_avail.wrapping_add(1);
        if self.event_idx {
            // Tell the driver which avail index we want to be notified about next.
            dma.write_u16(self.avail_event_addr(), self.next_avail)?;
        }
        let segments = self.walk(dma, head)?;
        Ok(Some(DescChain { head, segments }))
    }
    // ANCHOR_END: pop

    /// Follows the chain starting at `head`, through at most one indirect table.
    fn walk(&self, dma: &Dma, head: u16) -> Result<Vec<Segment>, QueueError> {
        let size = u32::from(self.size);
        let mut segments = Vec::new();
        let mut total: u64 = 0;
        let mut seen_writable = false;
        // (table address, entries in it, whether it is an indirect table)
        let (mut table, mut entries, mut in_indirect) = (self.desc, size, false);
        let mut index = u32::from(head);
        let mut count = 0u32;
        loop {
            if index >= entries {
                return Err(QueueError::DescIndexOutOfRange {
                    index,
                    size: entries,
                });
            }
            count += 1;
            if count > entries {
                return Err(QueueError::ChainTooLong { limit: entries });
            }
            let d = read_desc(dma, table, index)?;
            if d.flags & VIRTQ_DESC_F_INDIRECT != 0 {
                if in_indirect {
                    return Err(QueueError::NestedIndirect);
                }
                if !self.indirect {
                    return Err(QueueError::IndirectNotNegotiated);
                }
                if d.flags & VIRTQ_DESC_F_NEXT != 0 {
                    return Err(QueueError::IndirectWithNext);
                }
                let n = d.len / 16;
                if d.len == 0 || !d.len.is_multiple_of(16) || n > MAX_INDIRECT_DESCRIPTORS {
                    return Err(QueueError::BadIndirectTable { len: d.len });
                }
                dma.check(d.addr, u64::from(d.len))?;
                // The WRITE flag of the descriptor naming the table is ignored (2.7.5.3.2).
                (table, entries, in_indirect) = (d.addr, n, true);
                index = 0;
                count = 0;
                continue;
            }
            let writable = d.flags & VIRTQ_DESC_F_WRITE != 0;
            if seen_writable && !writable {
                return Err(QueueError::ReadableAfterWritable);
            }
            seen_writable |= writable;
            total += u64::from(d.len);
            if total > MAX_CHAIN_BYTES {
                return Err(QueueError::ChainTooLarge { bytes: total });
            }
            dma.check(d.addr, u64::from(d.len))?;
            segments.push(Segment {
                addr: d.addr,
                len: d.len,
                writable,
            });
            if d.flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(segments);
            }
            index = u32::from(d.next);
        }
    }

    /// Returns chain `head` to the driver with `len` bytes written into its writable part.
    pub fn add_used(&mut self, dma: &mut Dma, head: u16, len: u32) -> Result<(), QueueError> {
        if !self.ready {
            return Err(QueueError::NotReady);
        }
        let slot = self.device + 4 + 8 * u64::from(self.next_used % self.size);
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        dma.write(slot, &elem)?;
        self.next_used = self.next_used.wrapping_add(1);
        dma.write_u16(self.device + 2, self.next_used)?;
        Ok(())
    }

    // ANCHOR: set_notifications
    /// Tells the driver whether the device wants to be notified of new available buffers
    /// (spec 2.7.10; advisory, the driver may notify anyway): without EVENT_IDX through the
    /// used ring's NO_NOTIFY flag, with it by moving `avail_event` out of reach (half the
    /// index space ahead) or back to the next index.
    pub fn set_notifications(&mut self, dma: &mut Dma, wanted: bool) -> Result<(), QueueError> {
        if !self.ready {
            return Err(QueueError::NotReady);
        }
        if self.event_idx {
            let event = if wanted {
                self.next_avail
            } else {
                self.next_avail.wrapping_add(0x8000)
            };
            dma.write_u16(self.avail_event_addr(), event)?;
        } else {
            let flags = if wanted { 0 } else { VIRTQ_USED_F_NO_NOTIFY };
            dma.write_u16(self.device, flags)?;
        }
        Ok(())
    }
    // ANCHOR_END: set_notifications

    // ANCHOR: needs_interrupt
    /// Were used entries added since the last call, and if so does the driver want an
    /// interrupt for them? With EVENT_IDX the driver's `used_event` decides (spec 2.7.7);
    /// without it the avail ring's NO_INTERRUPT flag.
    pub fn needs_interrupt(&mut self, dma: &Dma) -> Result<Option<bool>, QueueError> {
        if !self.ready || self.next_used == self.signalled_used {
            return Ok(None);
        }
        let old = std::mem::replace(&mut self.signalled_used, self.next_used);
        let wanted = if self.event_idx {
            let used_event = dma.read_u16(self.used_event_addr())?;
            vring_need_event(used_event, self.next_used, old)
        } else {
            dma.read_u16(self.driver)? & VIRTQ_AVAIL_F_NO_INTERRUPT == 0
        };
        Ok(Some(wanted))
    }
    // ANCHOR_END: needs_interrupt
}

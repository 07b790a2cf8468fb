//! Tests of the virtio layer, driven through the mmio registers by a tiny in-test driver.
//! Teaches: what a guest driver does, step by step, to bring a virtio device up and hand it work.
//!
//! [`Driver`] owns a 1 MiB guest RAM and one [`VirtioMmio`] and behaves as Linux's
//! virtio_mmio + virtio_ring do: check magic/version/ID, reset, ACKNOWLEDGE, DRIVER, read
//! the offer, write the accepted subset, FEATURES_OK and read it back, set up each queue
//! (QueueSel, QueueNumMax, QueueNum, the three addresses, QueueReady), DRIVER_OK. Queue q's
//! rings live at 0x10000·(q+1) (descriptors), +0x1000 (avail), +0x2000 (used); request
//! buffers live from [`DATA`] up.

mod bad_input;
mod blk;
mod console;
mod core;
mod net;
mod notify;
mod props;
mod rng;

use super::mmio::*;
use super::queue::{VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use super::*;
use crate::bus::{BusDevice, IrqLine, TestCtx};

pub const RAM_SIZE: usize = 1 << 20;
/// Where tests put request buffers.
pub const DATA: u64 = 0x80000;

pub fn line() -> IrqLine {
    IrqLine::new(16).unwrap()
}

/// The driver's view of one queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct DrvQueue {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// Next descriptor index to hand out (a bump allocator, wrapping).
    pub free: u16,
    pub avail_idx: u16,
}

pub struct Driver {
    pub t: TestCtx,
    pub dev: VirtioMmio,
    pub q: Vec<DrvQueue>,
}

impl Driver {
    pub fn new(device: Box<dyn VirtioDevice>) -> Self {
        Driver {
            t: TestCtx {
                ram: vec![0; RAM_SIZE],
                ..Default::default()
            },
            dev: VirtioMmio::new(device, line()),
            q: Vec::new(),
        }
    }

    /// A device brought all the way up, every queue at its maximum size, accepting the
    /// offered features in `accept`.
    pub fn up(device: Box<dyn VirtioDevice>, accept: u64) -> Self {
        let mut d = Driver::new(device);
        assert!(d.negotiate(accept), "FEATURES_OK refused");
        let mut q = 0;
        loop {
            d.write(REG_QUEUE_SEL, q);
            let max = d.read(REG_QUEUE_NUM_MAX) as u16;
            if max == 0 {
                break;
            }
            d.setup_queue(q as u16, max);
            q += 1;
        }
        d.driver_ok();
        d
    }

    pub fn read(&mut self, offset: u64) -> u32 {
        self.dev.mmio_read(offset, 4, &mut self.t.ctx()) as u32
    }

    pub fn write(&mut self, offset: u64, value: u32) {
        self.dev
            .mmio_write(offset, 4, u64::from(value), &mut self.t.ctx());
        // The bus ticks a device after every access.
        self.dev.tick(&mut self.t.ctx());
    }

    pub fn status(&mut self) -> u8 {
        self.read(REG_STATUS) as u8
    }

    pub fn offered(&mut self) -> u64 {
        self.write(REG_DEVICE_FEATURES_SEL, 0);
        let lo = self.read(REG_DEVICE_FEATURES);
        self.write(REG_DEVICE_FEATURES_SEL, 1);
        let hi = self.read(REG_DEVICE_FEATURES);
        u64::from(hi) << 32 | u64::from(lo)
    }

    /// Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; true if the device kept FEATURES_OK.
    /// `accept` is written as is (a driver may ask for what was not offered; tests do).
    pub fn negotiate(&mut self, accept: u64) -> bool {
        assert_eq!(self.read(REG_MAGIC), MMIO_MAGIC);
        assert_eq!(self.read(REG_VERSION), 2);
        assert_ne!(self.read(REG_DEVICE_ID), 0);
        self.write(REG_STATUS, 0);
        self.write(REG_STATUS, u32::from(STATUS_ACKNOWLEDGE));
        self.write(REG_STATUS, u32::from(STATUS_ACKNOWLEDGE | STATUS_DRIVER));
        self.write(REG_DRIVER_FEATURES_SEL, 0);
        self.write(REG_DRIVER_FEATURES, accept as u32);
        self.write(REG_DRIVER_FEATURES_SEL, 1);
        self.write(REG_DRIVER_FEATURES, (accept >> 32) as u32);
        let s = self.status();
        self.write(REG_STATUS, u32::from(s | STATUS_FEATURES_OK));
        self.status() & STATUS_FEATURES_OK != 0
    }

    /// The queue-setup steps of spec 4.2.3.2 for queue `q` of `size` entries.
    pub fn setup_queue(&mut self, q: u16, size: u16) {
        let base = 0x10000 * (u64::from(q) + 1);
        let dq = DrvQueue {
            size,
            desc: base,
            avail: base + 0x1000,
            used: base + 0x2000,
            free: 0,
            avail_idx: 0,
        };
        self.write(REG_QUEUE_SEL, u32::from(q));
        assert_eq!(self.read(REG_QUEUE_READY), 0, "queue already in use");
        assert!(self.read(REG_QUEUE_NUM_MAX) >= u32::from(size));
        self.write(REG_QUEUE_NUM, u32::from(size));
        for (lo, addr) in [
            (REG_QUEUE_DESC_LOW, dq.desc),
            (REG_QUEUE_DRIVER_LOW, dq.avail),
            (REG_QUEUE_DEVICE_LOW, dq.used),
        ] {
            self.write(lo, addr as u32);
            self.write(lo + 4, (addr >> 32) as u32);
        }
        self.write(REG_QUEUE_READY, 1);
        if self.q.len() <= usize::from(q) {
            self.q.resize(usize::from(q) + 1, DrvQueue::default());
        }
        self.q[usize::from(q)] = dq;
    }

    pub fn driver_ok(&mut self) {
        let s = self.status();
        self.write(REG_STATUS, u32::from(s | STATUS_DRIVER_OK));
    }

    // ---- guest memory ----

    pub fn put(&mut self, addr: u64, bytes: &[u8]) {
        self.t.ram[addr as usize..addr as usize + bytes.len()].copy_from_slice(bytes);
    }

    pub fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        self.t.ram[addr as usize..addr as usize + len].to_vec()
    }

    pub fn put_u16(&mut self, addr: u64, v: u16) {
        self.put(addr, &v.to_le_bytes());
    }

    pub fn get_u16(&self, addr: u64) -> u16 {
        u16::from_le_bytes(self.get(addr, 2).try_into().unwrap())
    }

    pub fn get_u32(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.get(addr, 4).try_into().unwrap())
    }

    /// Writes a 16-byte descriptor at `table[index]`.
    pub fn put_desc(&mut self, table: u64, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..16].copy_from_slice(&next.to_le_bytes());
        self.put(table + 16 * u64::from(index), &b);
    }

    /// Takes `n` consecutive descriptor indices of queue `q`.
    fn alloc(&mut self, q: usize, n: u16) -> Vec<u16> {
        let dq = &mut self.q[q];
        (0..n)
            .map(|_| {
                let i = dq.free;
                dq.free = (dq.free + 1) % dq.size;
                i
            })
            .collect()
    }

    /// Writes a chain of (addr, len, writable) buffers into `table` at `indices`.
    fn put_chain(&mut self, table: u64, indices: &[u16], bufs: &[(u64, u32, bool)]) {
        for (k, &(addr, len, writable)) in bufs.iter().enumerate() {
            let mut flags = if writable { VIRTQ_DESC_F_WRITE } else { 0 };
            let next = indices.get(k + 1).copied().unwrap_or(0);
            if k + 1 < bufs.len() {
                flags |= VIRTQ_DESC_F_NEXT;
            }
            self.put_desc(table, indices[k], addr, len, flags, next);
        }
    }

    /// Puts a chain into queue `q`'s table (not yet available); returns its head.
    pub fn add_chain(&mut self, q: usize, bufs: &[(u64, u32, bool)]) -> u16 {
        let idx = self.alloc(q, bufs.len() as u16);
        let table = self.q[q].desc;
        self.put_chain(table, &idx, bufs);
        idx[0]
    }

    /// Puts `bufs` into an indirect table at `table_addr`, named by one descriptor of `q`.
    pub fn add_indirect(&mut self, q: usize, table_addr: u64, bufs: &[(u64, u32, bool)]) -> u16 {
        let idx: Vec<u16> = (0..bufs.len() as u16).collect();
        self.put_chain(table_addr, &idx, bufs);
        let head = self.alloc(q, 1)[0];
        let table = self.q[q].desc;
        let len = 16 * bufs.len() as u32;
        self.put_desc(table, head, table_addr, len, VIRTQ_DESC_F_INDIRECT, 0);
        head
    }

    /// Makes chain `head` available: ring entry, then the index.
    pub fn publish(&mut self, q: usize, head: u16) {
        let dq = self.q[q];
        self.put_u16(dq.avail + 4 + 2 * u64::from(dq.avail_idx % dq.size), head);
        self.q[q].avail_idx = dq.avail_idx.wrapping_add(1);
        self.put_u16(dq.avail + 2, self.q[q].avail_idx);
    }

    pub fn notify(&mut self, q: usize) {
        self.write(REG_QUEUE_NOTIFY, q as u32);
    }

    pub fn used_idx(&self, q: usize) -> u16 {
        self.get_u16(self.q[q].used + 2)
    }

    /// Used ring entry `i`: (id, len).
    pub fn used_elem(&self, q: usize, i: u16) -> (u32, u32) {
        let dq = self.q[q];
        let at = dq.used + 4 + 8 * u64::from(i % dq.size);
        (self.get_u32(at), self.get_u32(at + 4))
    }

    /// Sets the avail ring's `used_event` (EVENT_IDX).
    pub fn set_used_event(&mut self, q: usize, v: u16) {
        let dq = self.q[q];
        self.put_u16(dq.avail + 4 + 2 * u64::from(dq.size), v);
    }

    /// The used ring's `avail_event` as the device wrote it.
    pub fn avail_event(&self, q: usize) -> u16 {
        let dq = self.q[q];
        self.get_u16(dq.used + 4 + 8 * u64::from(dq.size))
    }

    pub fn irq_high(&self) -> bool {
        self.t.irq.is_high(line())
    }

    /// The interrupt handler: read InterruptStatus, acknowledge it; returns what it read.
    pub fn handle_irq(&mut self) -> u32 {
        let isr = self.read(REG_INTERRUPT_STATUS);
        self.write(REG_INTERRUPT_ACK, isr);
        isr
    }

    /// The used ring region of queue `q` (device writes there are expected).
    pub fn used_ring(&self, q: usize) -> std::ops::Range<u64> {
        let dq = self.q[q];
        dq.used..dq.used + 6 + 8 * u64::from(dq.size)
    }
}

/// VERSION_1 alone: the minimum a modern driver accepts.
pub const V1: u64 = 1 << VIRTIO_F_VERSION_1;
pub const INDIRECT: u64 = 1 << VIRTIO_F_RING_INDIRECT_DESC;
pub const EVENT_IDX: u64 = 1 << VIRTIO_F_RING_EVENT_IDX;

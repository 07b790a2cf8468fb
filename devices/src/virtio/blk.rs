//! virtio-blk (spec 5.2): a disk as one request queue of {header, data, status} chains.
//! Teaches: a request format carried by descriptors — what the device must check before it touches the disk, and how it reports failure.
//!
//! ```text
//!  device-readable  | type u32 | reserved u32 | sector u64 |   16 bytes, always
//!  readable (OUT)   | data: 512·n bytes to write                |
//!   or writable (IN)| data: 512·n bytes read from the disk      |
//!  device-writable  | status u8: 0 OK, 1 IOERR, 2 UNSUPP        |   the last writable byte
//! ```
//!
//! The device caches nothing: every OUT reaches the backend before its status is written, and
//! FLUSH asks the backend ([`BlockBackend::flush`], an fsync for a file) to make completed
//! writes durable (5.2.6.2: offering VIRTIO_BLK_F_FLUSH obliges us to honour it). A driver
//! that did not accept VIRTIO_BLK_F_FLUSH will never send one and may assume every completed
//! write is stable, so then each OUT is flushed before it completes. A request the device can answer — a short
//! header, a sector past the end, a write to a read-only disk, data in the wrong direction —
//! gets IOERR with the disk untouched; a chain with no writable byte for the status cannot be
//! answered at all and is a [`QueueError`] (the device goes NEEDS_RESET).

use super::{read_config_bytes, Queue, QueueError, VirtioDevice, DEVICE_ID_BLOCK};
use crate::block::{BlockBackend, DiskMark};
use crate::bus::Dma;
use crate::snapshot::{DeviceSnapshot, SnapshotError};
use crate::virtio::DescChain;

pub const VIRTIO_BLK_F_SIZE_MAX: u32 = 1;
pub const VIRTIO_BLK_F_SEG_MAX: u32 = 2;
pub const VIRTIO_BLK_F_GEOMETRY: u32 = 4;
pub const VIRTIO_BLK_F_RO: u32 = 5;
pub const VIRTIO_BLK_F_BLK_SIZE: u32 = 6;
pub const VIRTIO_BLK_F_FLUSH: u32 = 9;

pub const VIRTIO_BLK_T_IN: u32 = 0;
pub const VIRTIO_BLK_T_OUT: u32 = 1;
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;

pub const VIRTIO_BLK_S_OK: u8 = 0;
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

/// The protocol's sector: always 512 bytes, whatever `blk_size` says.
pub const SECTOR_SIZE: u64 = 512;
/// Length of the request header (type, reserved, sector).
pub const HEADER_LEN: u64 = 16;
/// Length of the GET_ID answer: a NUL-padded ASCII string, no terminator at 20 bytes.
pub const ID_LEN: usize = 20;
/// Our one request queue's maximum size.
pub const QUEUE_SIZE: u16 = 256;
/// `seg_max`: data segments per request; the header and status take two more descriptors
/// (what QEMU advertises too: queue size − 2).
pub const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;

/// Counts of what the disk was asked to do.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct BlkStats {
    pub reads: u64,
    pub writes: u64,
    pub flushes: u64,
    pub get_id: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub ioerr: u64,
    pub unsupported: u64,
}

/// The layout of [`BlkSnapshot`] (with `BlkStats`): 1.
const SNAPSHOT_VERSION: u16 = 1;

/// virtio-blk in a machine snapshot (the disk's checkpoint itself is held by the snapshot).
#[derive(serde::Serialize, serde::Deserialize)]
struct BlkSnapshot {
    flush_negotiated: bool,
    stats: BlkStats,
    disk: DiskMark,
}

/// A virtio block device over a [`BlockBackend`].
pub struct VirtioBlk {
    backend: Box<dyn BlockBackend>,
    /// Did the driver accept VIRTIO_BLK_F_FLUSH? If not, every write must be stable when it
    /// completes (5.2.6.2, case 1: FLUSH offered, not negotiated), so each OUT is flushed.
    flush_negotiated: bool,
    stats: BlkStats,
}

impl VirtioBlk {
    pub fn new(backend: Box<dyn BlockBackend>) -> Self {
        VirtioBlk {
            backend,
            flush_negotiated: false,
            stats: BlkStats::default(),
        }
    }

    pub fn backend(&self) -> &dyn BlockBackend {
        &*self.backend
    }

    pub fn backend_mut(&mut self) -> &mut dyn BlockBackend {
        &mut *self.backend
    }

    pub fn stats(&self) -> &BlkStats {
        &self.stats
    }

    /// Capacity in 512-byte sectors (a partial last sector is not addressable).
    pub fn capacity(&self) -> u64 {
        self.backend.len() / SECTOR_SIZE
    }

    /// `struct virtio_blk_config` up to `num_queues` (5.2.4); what follows is read as 0.
    fn config(&self) -> [u8; 36] {
        let mut c = [0u8; 36];
        c[0..8].copy_from_slice(&self.capacity().to_le_bytes());
        // 8: size_max (not offered)
        c[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        // 16: geometry (not offered)
        c[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        // 24: topology (not offered), 32: writeback (no CONFIG_WCE), 34: num_queues (no MQ)
        c
    }

    /// Carries out one request and returns (status, data bytes written to the guest).
    fn execute(&mut self, chain: &DescChain, dma: &mut Dma) -> Result<(u8, u32), QueueError> {
        let readable = chain.readable_len();
        // Everything writable but the final status byte is the IN data area.
        let data_in = chain.writable_len() - 1;
        let mut header = [0u8; HEADER_LEN as usize];
        if readable < HEADER_LEN {
            return Ok((VIRTIO_BLK_S_IOERR, 0));
        }
        chain.read_at(dma, 0, &mut header)?;
        let kind = u32::from_le_bytes(header[0..4].try_into().unwrap());
        let sector = u64::from_le_bytes(header[8..16].try_into().unwrap());
        let data_out = readable - HEADER_LEN;
        match kind {
            VIRTIO_BLK_T_IN => {
                // The buffer to fill must be device-writable, and only it.
                if data_out != 0 {
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                }
                let Some(offset) = self.check_range(sector, data_in) else {
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                };
                let mut buf = vec![0u8; data_in as usize];
                if self.backend.read_at(offset, &mut buf).is_err() {
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                }
                let n = chain.write_at(dma, 0, &buf)?;
                self.stats.reads += 1;
                self.stats.bytes_read += n as u64;
                Ok((VIRTIO_BLK_S_OK, n as u32))
            }
            VIRTIO_BLK_T_OUT => {
                // The data must be device-readable: nothing writable but the status byte.
                if data_in != 0 || self.backend.read_only() {
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                }
                let Some(offset) = self.check_range(sector, data_out) else {
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                };
                let data = chain.read_all(dma, HEADER_LEN)?;
                if self.backend.write_at(offset, &data).is_err()
                    || (!self.flush_negotiated && self.backend.flush().is_err())
                {
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                }
                self.stats.writes += 1;
                self.stats.bytes_written += data.len() as u64;
                Ok((VIRTIO_BLK_S_OK, 0))
            }
            VIRTIO_BLK_T_FLUSH => {
                self.stats.flushes += 1;
                match self.backend.flush() {
                    Ok(()) => Ok((VIRTIO_BLK_S_OK, 0)),
                    Err(_) => Ok((VIRTIO_BLK_S_IOERR, 0)),
                }
            }
            VIRTIO_BLK_T_GET_ID => {
                let mut id = [0u8; ID_LEN];
                let name = self.backend.id();
                let n = name.len().min(ID_LEN);
                id[..n].copy_from_slice(&name.as_bytes()[..n]);
                let len = (data_in as usize).min(ID_LEN);
                let n = chain.write_at(dma, 0, &id[..len])?;
                self.stats.get_id += 1;
                Ok((VIRTIO_BLK_S_OK, n as u32))
            }
            _ => {
                self.stats.unsupported += 1;
                Ok((VIRTIO_BLK_S_UNSUPP, 0))
            }
        }
    }

    /// The byte offset of `len` bytes at `sector`, if they are whole sectors inside the disk.
    fn check_range(&self, sector: u64, len: u64) -> Option<u64> {
        if !len.is_multiple_of(SECTOR_SIZE) {
            return None;
        }
        let offset = sector.checked_mul(SECTOR_SIZE)?;
        let end = offset.checked_add(len)?;
        (end <= self.capacity() * SECTOR_SIZE).then_some(offset)
    }
}

impl VirtioDevice for VirtioBlk {
    fn device_type(&self) -> u32 {
        DEVICE_ID_BLOCK
    }

    fn name(&self) -> &'static str {
        "virtio-blk"
    }

    fn features(&self) -> u64 {
        let mut f =
            1 << VIRTIO_BLK_F_SEG_MAX | 1 << VIRTIO_BLK_F_BLK_SIZE | 1 << VIRTIO_BLK_F_FLUSH;
        if self.backend.read_only() {
            f |= 1 << VIRTIO_BLK_F_RO;
        }
        f
    }

    fn queue_count(&self) -> usize {
        1
    }

    fn queue_max_size(&self, _q: usize) -> u16 {
        QUEUE_SIZE
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.config(), offset, data);
    }

    fn activate(&mut self, negotiated: u64) {
        self.flush_negotiated = negotiated & 1 << VIRTIO_BLK_F_FLUSH != 0;
    }

    fn reset(&mut self) {
        self.flush_negotiated = false;
    }

    fn process(&mut self, _q: usize, queue: &mut Queue, dma: &mut Dma) -> Result<(), QueueError> {
        while let Some(chain) = queue.pop(dma)? {
            if chain.writable_len() == 0 {
                return Err(QueueError::BadRequest("no writable byte for the status"));
            }
            let (status, written) = self.execute(&chain, dma)?;
            if status == VIRTIO_BLK_S_IOERR {
                self.stats.ioerr += 1;
            }
            chain.write_at(dma, chain.writable_len() - 1, &[status])?;
            // Used length: the data bytes written plus the status byte. When the status is not
            // right behind them (an error, a GET_ID buffer longer than 20) that undercounts,
            // which the spec permits (2.7.8.2); overcounting would not be.
            queue.add_used(dma, chain.head, written + 1)?;
        }
        Ok(())
    }

    /// The disk's checkpoint with the counters: no checkpoint (a plain file), no snapshot.
    fn snapshot(&self) -> Option<DeviceSnapshot> {
        let checkpoint = self.backend.checkpoint()?;
        let state = BlkSnapshot {
            flush_negotiated: self.flush_negotiated,
            stats: self.stats.clone(),
            disk: checkpoint.mark,
        };
        Some(DeviceSnapshot::of(self.name(), SNAPSHOT_VERSION, &state).holding(checkpoint.keep))
    }

    fn restore(&mut self, snap: &DeviceSnapshot) -> Result<(), SnapshotError> {
        let state: BlkSnapshot = snap.get(self.name(), SNAPSHOT_VERSION)?;
        self.backend
            .rollback(&state.disk)
            .map_err(|e| SnapshotError::BadState {
                device: "virtio-blk",
                detail: format!("rolling the disk back: {e}"),
            })?;
        self.flush_negotiated = state.flush_negotiated;
        self.stats = state.stats;
        Ok(())
    }
}

//! What a disk device reads and writes: a block backend, whatever holds the bytes.
//! Teaches: the split every VMM makes between the device model the guest talks to (ATA,
//! virtio-blk) and the host storage behind it (a file, memory), so one can change without the other.
//!
//! The portable core has [`MemDisk`] (bytes in memory: tests, the browser); the `vmscope`
//! binary adds a raw-file backend with a lock (`src/disk.rs`). Offsets and lengths are in
//! bytes; device models check them against [`BlockBackend::len`] before asking, and a backend
//! refuses anything past its end anyway — a disk is never written past its size.

use thiserror::Error;

/// Why a backend could not do what a device asked.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BlockError {
    #[error("{len:#x} bytes at offset {offset:#x} are past the end of the disk ({size:#x} bytes)")]
    OutOfRange { offset: u64, len: u64, size: u64 },
    #[error("the disk is read-only")]
    ReadOnly,
    #[error("host I/O error: {0}")]
    Io(String),
}

/// Host storage behind a disk device.
pub trait BlockBackend {
    /// Size in bytes (a whole number of 512-byte sectors for the devices that use sectors).
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn read_only(&self) -> bool;
    /// Fills `buf` from `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError>;
    /// Writes `data` at `offset`; it need not be durable until [`BlockBackend::flush`].
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError>;
    /// Makes every completed write durable (fsync for a file).
    fn flush(&mut self) -> Result<(), BlockError>;
    /// Up to 20 bytes naming the disk (virtio-blk GET_ID, ATA serial number).
    fn id(&self) -> String;

    /// Marks the disk's present contents so [`BlockBackend::rollback`] can return to them (a
    /// machine snapshot of the device holding the disk). `None`: this backend keeps no undo
    /// journal, and a machine holding it cannot be snapshotted. See `disk_journal.rs`.
    fn checkpoint(&self) -> Option<DiskCheckpoint> {
        None
    }

    /// Puts the disk's contents back as they were at `to`.
    fn rollback(&mut self, _to: &DiskMark) -> Result<(), BlockError> {
        Err(BlockError::Io("this disk keeps no undo journal".into()))
    }
}

/// A point in a disk's history that [`BlockBackend::rollback`] returns to, as data: which
/// journal (a number unique within this process) and which of its generations. It is what a
/// device's snapshot stores; it means nothing to another process (a snapshot file must carry
/// the disk some other way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiskMark {
    pub journal: u64,
    pub generation: u64,
}

/// A live checkpoint: its [`DiskMark`] and the handle that keeps the backend able to return
/// to it (dropping the last clone lets a journal forget it). Keep `keep` with the snapshot.
#[derive(Clone)]
pub struct DiskCheckpoint {
    pub mark: DiskMark,
    pub keep: std::rc::Rc<dyn std::any::Any>,
}

impl std::fmt::Debug for DiskCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DiskCheckpoint({:?})", self.mark)
    }
}

/// Checks `[offset, offset + len)` against a disk of `size` bytes.
pub fn check_range(offset: u64, len: u64, size: u64) -> Result<(), BlockError> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(BlockError::OutOfRange { offset, len, size }),
    }
}

/// A disk held in memory.
#[derive(Debug, Clone)]
pub struct MemDisk {
    pub bytes: Vec<u8>,
    pub read_only: bool,
    /// How many flushes were asked for (tests check that FLUSH reaches the backend).
    pub flushes: u64,
    pub name: String,
}

impl MemDisk {
    pub fn new(bytes: Vec<u8>) -> Self {
        MemDisk {
            bytes,
            read_only: false,
            flushes: 0,
            name: "vmscope-mem".into(),
        }
    }
}

impl BlockBackend for MemDisk {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_range(offset, buf.len() as u64, self.len())?;
        buf.copy_from_slice(&self.bytes[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        check_range(offset, data.len() as u64, self.len())?;
        self.bytes[offset as usize..offset as usize + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        self.flushes += 1;
        Ok(())
    }
    fn id(&self) -> String {
        self.name.clone()
    }
}

/// A [`MemDisk`] its owner still reaches after a device took the backend (tests look at the
/// bytes a guest wrote; a debugger could show them).
#[derive(Debug, Clone)]
pub struct SharedMemDisk(pub std::rc::Rc<std::cell::RefCell<MemDisk>>);

impl SharedMemDisk {
    pub fn new(disk: MemDisk) -> Self {
        SharedMemDisk(std::rc::Rc::new(std::cell::RefCell::new(disk)))
    }
}

impl BlockBackend for SharedMemDisk {
    fn len(&self) -> u64 {
        self.0.borrow().len()
    }
    fn read_only(&self) -> bool {
        self.0.borrow().read_only
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.0.borrow_mut().read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        self.0.borrow_mut().write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        self.0.borrow_mut().flush()
    }
    fn id(&self) -> String {
        self.0.borrow().id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_disk_refuses_the_past_its_end_and_read_only_writes() {
        let mut d = MemDisk::new(vec![0; 1024]);
        assert!(d.write_at(1020, &[1; 8]).is_err());
        assert!(d.read_at(u64::MAX, &mut [0; 2]).is_err());
        d.write_at(512, &[7; 512]).unwrap();
        let mut b = [0; 4];
        d.read_at(1020, &mut b).unwrap();
        assert_eq!(b, [7; 4]);
        d.read_only = true;
        assert_eq!(d.write_at(0, &[1]), Err(BlockError::ReadOnly));
        assert_eq!(d.bytes.len(), 1024);
    }
}

//! A disk that can go back in time: an undo journal in front of any block backend.
//! Teaches: why a machine snapshot must include the disk, and how to get it without copying the
//! disk — keep the old contents of every sector the guest overwrites after a checkpoint.
//!
//! A [`JournaledDisk`] is a handle (cheap to clone) to one backend and its journal; every
//! machine a debugger boots for the same session gets a clone, so a rewind into a freshly
//! booted machine rolls back the one file the guest writes. Nothing is recorded until the first
//! [`BlockBackend::checkpoint`]: `vmscope run` never pays for the journal.
//!
//! The journal is a list of generations, one per live checkpoint, oldest first. A generation
//! holds the *pre-image* of each sector first written while it was the newest: the sector as it
//! was when that checkpoint was taken. Rolling back to checkpoint `c` writes back the
//! pre-images of every generation from the newest down to `c`'s own, newest first, so each
//! sector ends as it was at `c`; the newer generations are gone (their checkpoints now refuse
//! a rollback) and `c`'s generation starts empty again. When a checkpoint is dropped (the step
//! back ring forgot that snapshot), its generation merges into the one before it, keeping the
//! older pre-image of a sector both hold — so memory stays bounded by the sectors written, and
//! at most one copy per sector per live checkpoint.
//!
//! What a rollback means for the file: it holds what the guest had written *up to the moment
//! it was rewound to*. Replaying forward writes the same data again; a guest that takes another
//! path after a rewind writes something else. The file always matches the guest's present.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use crate::block::{BlockBackend, BlockError, DiskCheckpoint, DiskMark};

/// The journal's unit: writes are recorded per 512-byte sector.
const SECTOR: u64 = 512;

/// The pre-images of the sectors first written while checkpoint `id` was the newest.
#[derive(Debug)]
struct Generation {
    id: u64,
    pre_images: BTreeMap<u64, Vec<u8>>,
}

struct Journal {
    /// Which journal this is, among all made in this process ([`DiskMark::journal`]).
    serial: u64,
    backend: Box<dyn BlockBackend>,
    generations: Vec<Generation>,
    next_id: u64,
    /// Set by [`JournaledDisk::accept_saved_mark`]: the next rollback to another journal's
    /// mark is taken as "already there".
    adopt_saved_mark: bool,
}

/// A block backend with an undo journal, shared by every device built on a clone of it.
#[derive(Clone)]
pub struct JournaledDisk(Rc<RefCell<Journal>>);

impl std::fmt::Debug for JournaledDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let j = self.0.borrow();
        f.debug_struct("JournaledDisk")
            .field("bytes", &j.backend.len())
            .field("generations", &j.generations.len())
            .field("journaled_sectors", &self.journaled_sectors())
            .finish()
    }
}

/// A live checkpoint: dropping it merges its generation into the one before.
struct CheckpointToken {
    id: u64,
    journal: Weak<RefCell<Journal>>,
}

impl Drop for CheckpointToken {
    fn drop(&mut self) {
        let Some(journal) = self.journal.upgrade() else {
            return;
        };
        // A checkpoint is dropped by whoever holds a snapshot, never while the journal is in
        // use; should it be, the generation just stays (more memory, still correct).
        let Ok(mut j) = journal.try_borrow_mut() else {
            return;
        };
        let Some(at) = j.generations.iter().position(|g| g.id == self.id) else {
            return;
        };
        let gone = j.generations.remove(at);
        if at > 0 {
            let older = &mut j.generations[at - 1];
            for (sector, data) in gone.pre_images {
                older.pre_images.entry(sector).or_insert(data);
            }
        }
    }
}

impl JournaledDisk {
    pub fn new(backend: Box<dyn BlockBackend>) -> Self {
        static SERIALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        JournaledDisk(Rc::new(RefCell::new(Journal {
            serial: SERIALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            backend,
            generations: Vec::new(),
            next_id: 1,
            adopt_saved_mark: false,
        })))
    }

    /// The backend's contents were just written from a snapshot file: the device state that
    /// comes with them names a checkpoint of the *saving* process's journal, which means
    /// nothing here (its serial may even equal this journal's). The next rollback, to any
    /// mark, succeeds without changing anything (the disk is at that mark already); after it,
    /// marks are checked again.
    pub fn accept_saved_mark(&self) {
        self.0.borrow_mut().adopt_saved_mark = true;
    }

    /// Sectors whose old contents the journal holds (over all generations).
    pub fn journaled_sectors(&self) -> usize {
        let j = self.0.borrow();
        j.generations.iter().map(|g| g.pre_images.len()).sum()
    }

    /// Live checkpoints.
    pub fn checkpoints(&self) -> usize {
        self.0.borrow().generations.len()
    }

    /// Runs `f` on the backend behind the journal (a test reading what the guest wrote).
    pub fn with_backend<R>(&self, f: impl FnOnce(&mut dyn BlockBackend) -> R) -> R {
        f(&mut *self.0.borrow_mut().backend)
    }
}

impl Journal {
    /// Saves the pre-image of every sector `[offset, offset + len)` touches that the newest
    /// generation does not hold yet.
    fn record(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        let Some(newest) = self.generations.last() else {
            return Ok(());
        };
        let size = self.backend.len();
        let first = offset / SECTOR;
        let end = offset.saturating_add(len).div_ceil(SECTOR);
        let missing: Vec<u64> = (first..end)
            .filter(|s| !newest.pre_images.contains_key(s))
            .collect();
        let mut saved = Vec::with_capacity(missing.len());
        for sector in missing {
            let at = sector * SECTOR;
            // A disk whose size is not a whole number of sectors has a short last one.
            let mut old = vec![0; SECTOR.min(size.saturating_sub(at)) as usize];
            self.backend.read_at(at, &mut old)?;
            saved.push((sector, old));
        }
        let newest = self.generations.last_mut().expect("checked above");
        newest.pre_images.extend(saved);
        Ok(())
    }
}

impl BlockBackend for JournaledDisk {
    fn len(&self) -> u64 {
        self.0.borrow().backend.len()
    }
    fn read_only(&self) -> bool {
        self.0.borrow().backend.read_only()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.0.borrow_mut().backend.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        let mut j = self.0.borrow_mut();
        // Refused writes leave nothing to undo: check before journaling.
        if j.backend.read_only() {
            return Err(BlockError::ReadOnly);
        }
        crate::block::check_range(offset, data.len() as u64, j.backend.len())?;
        j.record(offset, data.len() as u64)?;
        j.backend.write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        self.0.borrow_mut().backend.flush()
    }
    fn id(&self) -> String {
        self.0.borrow().backend.id()
    }

    fn checkpoint(&self) -> Option<DiskCheckpoint> {
        let mut j = self.0.borrow_mut();
        let id = j.next_id;
        j.next_id += 1;
        j.generations.push(Generation {
            id,
            pre_images: BTreeMap::new(),
        });
        Some(DiskCheckpoint {
            mark: DiskMark {
                journal: j.serial,
                generation: id,
            },
            keep: Rc::new(CheckpointToken {
                id,
                journal: Rc::downgrade(&self.0),
            }),
        })
    }

    // ANCHOR: rollback
    fn rollback(&mut self, to: &DiskMark) -> Result<(), BlockError> {
        let mut j = self.0.borrow_mut();
        // Marks from a snapshot file come from another process, whose journal serials may
        // well equal ours: once asked to, adopt whatever mark comes.
        if std::mem::take(&mut j.adopt_saved_mark) {
            return Ok(());
        }
        if to.journal != j.serial {
            return Err(BlockError::Io(
                "the checkpoint belongs to another disk".into(),
            ));
        }
        let Some(at) = j.generations.iter().position(|g| g.id == to.generation) else {
            return Err(BlockError::Io(
                "the checkpoint was rolled back past: the disk no longer holds its state".into(),
            ));
        };
        while j.generations.len() > at {
            let generation = j.generations.pop().expect("len > at");
            for (sector, old) in generation.pre_images.iter().rev() {
                j.backend.write_at(sector * SECTOR, old)?;
            }
        }
        j.generations.push(Generation {
            id: to.generation,
            pre_images: BTreeMap::new(),
        });
        // The file holds the rewound contents durably, as a guest flush would leave them.
        j.backend.flush()
    }
    // ANCHOR_END: rollback
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{MemDisk, SharedMemDisk};

    fn disk() -> (JournaledDisk, SharedMemDisk) {
        let mem = SharedMemDisk::new(MemDisk::new(vec![0; 8 * 512]));
        (JournaledDisk::new(Box::new(mem.clone())), mem)
    }

    fn sector(mem: &SharedMemDisk, n: usize) -> u8 {
        mem.0.borrow().bytes[n * 512]
    }

    #[test]
    fn a_saved_mark_is_adopted_once_after_a_restore_from_a_file() {
        let (saving, _) = disk();
        let mark = saving.checkpoint().unwrap().mark;
        let (mut restored, mem) = disk();
        assert!(
            restored.rollback(&mark).is_err(),
            "a foreign mark is refused"
        );
        let own = restored.checkpoint().unwrap();
        restored.write_at(512, &[9; 512]).unwrap();
        restored.accept_saved_mark();
        restored.rollback(&own.mark).unwrap();
        assert_eq!(
            sector(&mem, 1),
            9,
            "even a mark of its own is adopted, not rolled back to"
        );
        drop(own);
        restored.write_at(0, &[7; 512]).unwrap();
        restored.accept_saved_mark();
        restored.rollback(&mark).unwrap();
        assert_eq!(sector(&mem, 0), 7, "adopting changes nothing");
        assert!(restored.rollback(&mark).is_err(), "only once");
    }

    #[test]
    fn nothing_is_journaled_before_the_first_checkpoint() {
        let (mut d, _) = disk();
        d.write_at(0, &[1; 1024]).unwrap();
        assert_eq!(d.journaled_sectors(), 0);
    }

    #[test]
    fn a_rollback_restores_every_sector_written_since_and_only_those() {
        let (mut d, mem) = disk();
        d.write_at(512, &[1; 512]).unwrap();
        let first = d.checkpoint().unwrap();
        d.write_at(512, &[2; 512]).unwrap();
        d.write_at(1024 + 100, &[3; 10]).unwrap(); // part of sector 2
        let second = d.checkpoint().unwrap();
        d.write_at(512, &[4; 1536]).unwrap(); // sectors 1–3
        assert_eq!((sector(&mem, 1), sector(&mem, 3)), (4, 4));

        d.rollback(&second.mark).unwrap();
        assert_eq!((sector(&mem, 1), sector(&mem, 3)), (2, 0));
        assert_eq!(mem.0.borrow().bytes[1024 + 100], 3);
        d.rollback(&first.mark).unwrap();
        assert_eq!(sector(&mem, 1), 1);
        assert!(mem.0.borrow().bytes[1024..1536].iter().all(|&b| b == 0));
        assert!(mem.0.borrow().flushes >= 2, "a rollback is made durable");
        // The newer checkpoint is gone; the older one can be rolled back to again.
        assert!(d.rollback(&second.mark).is_err());
        d.write_at(512, &[9; 512]).unwrap();
        d.rollback(&first.mark).unwrap();
        assert_eq!(sector(&mem, 1), 1);
    }

    #[test]
    fn a_dropped_checkpoint_merges_into_the_one_before() {
        let (mut d, mem) = disk();
        let first = d.checkpoint().unwrap();
        d.write_at(0, &[1; 512]).unwrap();
        let middle = d.checkpoint().unwrap();
        d.write_at(0, &[2; 512]).unwrap();
        d.write_at(512, &[2; 512]).unwrap();
        drop(middle);
        assert_eq!(d.checkpoints(), 1);
        assert_eq!(
            d.journaled_sectors(),
            2,
            "sector 0 once (the older image), sector 1"
        );
        d.rollback(&first.mark).unwrap();
        assert_eq!((sector(&mem, 0), sector(&mem, 1)), (0, 0));
    }

    #[test]
    fn refused_writes_journal_nothing_and_foreign_checkpoints_are_refused() {
        let (mut d, _) = disk();
        let c = d.checkpoint().unwrap();
        assert!(d.write_at(8 * 512 - 1, &[1; 2]).is_err());
        assert_eq!(d.journaled_sectors(), 0);
        let (mut other, _) = disk();
        assert!(other.rollback(&c.mark).is_err());
    }
}

//! Guest RAM: one contiguous block of host memory that every engine shares.
//! Teaches: a VMM's guest memory is just host memory at an offset; KVM maps the very same pages.
//!
//! On 64-bit hosts the block is a `vm-memory` `GuestMemoryMmap` (an anonymous mmap KVM can map with
//! `KVM_SET_USER_MEMORY_REGION`, so switching engines copies nothing); on wasm32, where vm-memory
//! does not build, a plain boxed slice.

use thiserror::Error;

/// Errors from guest memory accesses outside RAM.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum MemoryError {
    /// guest physical range {addr:#x}+{len:#x} is outside RAM ({size:#x} bytes)
    #[error("guest physical range {addr:#x}+{len:#x} is outside RAM ({size:#x} bytes)")]
    OutOfRange { addr: u64, len: u64, size: u64 },
    /// could not allocate {0} bytes of guest RAM
    #[error("could not allocate {0:#x} bytes of guest RAM")]
    Allocation(u64),
}

#[cfg(target_pointer_width = "64")]
mod backing {
    use vm_memory::{GuestAddress, GuestMemoryBackend as _, GuestMemoryMmap};

    pub struct Backing {
        mmap: GuestMemoryMmap,
        ptr: *mut u8,
    }

    impl Backing {
        pub fn new(size: usize) -> Option<Self> {
            let mmap = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), size)]).ok()?;
            let ptr = mmap.get_host_address(GuestAddress(0)).ok()?;
            Some(Backing { mmap, ptr })
        }

        pub fn as_slice(&self, size: usize) -> &[u8] {
            let _ = &self.mmap;
            // SAFETY: `ptr` is the start of one anonymous mapping of exactly `size` bytes owned by
            // `self.mmap`, which lives as long as `self`; the shared borrow of `self` keeps Rust
            // writers away. KVM writes to it only while this thread is blocked in KVM_RUN.
            unsafe { std::slice::from_raw_parts(self.ptr, size) }
        }

        pub fn as_mut_slice(&mut self, size: usize) -> &mut [u8] {
            // SAFETY: as in `as_slice`; the exclusive borrow of `self` makes this the only view.
            unsafe { std::slice::from_raw_parts_mut(self.ptr, size) }
        }

        pub fn host_address(&self) -> *mut u8 {
            self.ptr
        }
    }
}

#[cfg(not(target_pointer_width = "64"))]
mod backing {
    pub struct Backing {
        buf: Box<[u8]>,
    }

    impl Backing {
        pub fn new(size: usize) -> Option<Self> {
            Some(Backing {
                buf: vec![0u8; size].into_boxed_slice(),
            })
        }

        pub fn as_slice(&self, _size: usize) -> &[u8] {
            &self.buf
        }

        pub fn as_mut_slice(&mut self, _size: usize) -> &mut [u8] {
            &mut self.buf
        }

        pub fn host_address(&self) -> *mut u8 {
            self.buf.as_ptr() as *mut u8
        }
    }
}

/// Guest RAM starting at guest-physical address 0.
pub struct GuestRam {
    backing: backing::Backing,
    size: usize,
    /// While logging (live migration's pre-copy): one bit per 4 KiB page written since the
    /// log was last taken. Every write through `write`, `write_le` and `fill` sets its bits;
    /// writers that bypass them (device DMA, KVM) report theirs with [`GuestRam::mark_dirty`].
    dirty: Option<Box<[u64]>>,
}

impl std::fmt::Debug for GuestRam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GuestRam({:#x} bytes)", self.size)
    }
}

impl GuestRam {
    /// Allocates `size` bytes of zeroed RAM (rounded up to 4 KiB).
    pub fn new(size: u64) -> Result<Self, MemoryError> {
        let size = size.div_ceil(4096) * 4096;
        let backing = usize::try_from(size)
            .ok()
            .filter(|s| *s > 0)
            .and_then(backing::Backing::new)
            .ok_or(MemoryError::Allocation(size))?;
        Ok(GuestRam {
            backing,
            size: size as usize,
            dirty: None,
        })
    }

    // ANCHOR: dirty_log
    /// Starts the dirty-page log with every page clean.
    pub fn start_dirty_log(&mut self) {
        let words = (self.size / 4096).div_ceil(64);
        self.dirty = Some(vec![0u64; words].into_boxed_slice());
    }

    /// Stops the dirty-page log (writes cost nothing extra again).
    pub fn stop_dirty_log(&mut self) {
        self.dirty = None;
    }

    /// Is the dirty-page log on?
    pub fn dirty_logging(&self) -> bool {
        self.dirty.is_some()
    }

    /// Records that `[addr, addr + len)` was written (clipped to RAM). Without a log, nothing.
    #[inline]
    pub fn mark_dirty(&mut self, addr: u64, len: u64) {
        let Some(bits) = self.dirty.as_deref_mut() else {
            return;
        };
        if len == 0 || addr >= self.size as u64 {
            return;
        }
        let last = addr.saturating_add(len - 1).min(self.size as u64 - 1) >> 12;
        for page in addr >> 12..=last {
            bits[(page / 64) as usize] |= 1 << (page % 64);
        }
    }

    /// Marks pages from a bitmap in KVM's layout (bit `i` of word `w` = page `64w + i`).
    pub fn mark_dirty_bitmap(&mut self, bitmap: &[u64]) {
        if let Some(bits) = self.dirty.as_deref_mut() {
            for (mine, theirs) in bits.iter_mut().zip(bitmap) {
                *mine |= theirs;
            }
        }
    }

    /// The page numbers written since the log started or was last taken, ascending; the log
    /// starts over with every page clean. Empty without a log.
    pub fn take_dirty_pages(&mut self) -> Vec<u64> {
        let mut pages = Vec::new();
        if let Some(bits) = self.dirty.as_deref_mut() {
            for (w, word) in bits.iter_mut().enumerate() {
                let mut rest = std::mem::take(word);
                while rest != 0 {
                    pages.push(w as u64 * 64 + rest.trailing_zeros() as u64);
                    rest &= rest - 1;
                }
            }
        }
        pages
    }
    // ANCHOR_END: dirty_log

    pub fn size(&self) -> u64 {
        self.size as u64
    }

    pub fn as_slice(&self) -> &[u8] {
        self.backing.as_slice(self.size)
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.backing.as_mut_slice(self.size)
    }

    /// Host address of guest-physical 0, for mapping into KVM.
    pub fn host_address(&self) -> *mut u8 {
        self.backing.host_address()
    }

    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, MemoryError> {
        let end = addr.checked_add(len as u64);
        match end {
            Some(end) if end <= self.size as u64 => Ok(addr as usize..end as usize),
            _ => Err(MemoryError::OutOfRange {
                addr,
                len: len as u64,
                size: self.size as u64,
            }),
        }
    }

    pub fn contains(&self, addr: u64, len: usize) -> bool {
        self.range(addr, len).is_ok()
    }

    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.as_slice()[r]);
        Ok(())
    }

    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        let r = self.range(addr, data.len())?;
        self.as_mut_slice()[r].copy_from_slice(data);
        self.mark_dirty(addr, data.len() as u64);
        Ok(())
    }

    /// Reads a little-endian value of `size` bytes (1, 2, 4 or 8).
    pub fn read_le(&self, addr: u64, size: usize) -> Result<u64, MemoryError> {
        let r = self.range(addr, size)?;
        let b = &self.as_slice()[r];
        // Fixed-size reads for the common widths: every guest data access comes through here,
        // and a variable-length copy would cost a memcpy call each time.
        Ok(match *b {
            [b0] => b0 as u64,
            [b0, b1] => u16::from_le_bytes([b0, b1]) as u64,
            [b0, b1, b2, b3] => u32::from_le_bytes([b0, b1, b2, b3]) as u64,
            [b0, b1, b2, b3, b4, b5, b6, b7] => {
                u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7])
            }
            _ => {
                let mut bytes = [0u8; 8];
                bytes[..size].copy_from_slice(b);
                u64::from_le_bytes(bytes)
            }
        })
    }

    pub fn write_le(&mut self, addr: u64, size: usize, value: u64) -> Result<(), MemoryError> {
        let r = self.range(addr, size)?;
        let b = &mut self.as_mut_slice()[r];
        match b.len() {
            1 => b[0] = value as u8,
            2 => b.copy_from_slice(&(value as u16).to_le_bytes()),
            4 => b.copy_from_slice(&(value as u32).to_le_bytes()),
            8 => b.copy_from_slice(&value.to_le_bytes()),
            n => b.copy_from_slice(&value.to_le_bytes()[..n]),
        }
        if self.dirty.is_some() {
            self.mark_dirty(addr, size as u64);
        }
        Ok(())
    }

    pub fn fill(&mut self, addr: u64, len: usize, byte: u8) -> Result<(), MemoryError> {
        let r = self.range(addr, len)?;
        self.as_mut_slice()[r].fill(byte);
        self.mark_dirty(addr, len as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_was_written_and_rejects_out_of_range() {
        let mut ram = GuestRam::new(8192).unwrap();
        ram.write_le(0x1000, 4, 0xdead_beef).unwrap();
        assert_eq!(ram.read_le(0x1000, 2).unwrap(), 0xbeef);
        assert_eq!(ram.read_le(0x1002, 2).unwrap(), 0xdead);
        ram.write_le(0x1008, 8, 0x0123_4567_89ab_cdef).unwrap();
        ram.write_le(0x1008, 1, 0xff).unwrap();
        assert_eq!(ram.read_le(0x1008, 8).unwrap(), 0x0123_4567_89ab_cdff);
        assert_eq!(ram.read_le(0x100c, 4).unwrap(), 0x0123_4567);
        assert_eq!(ram.read_le(0x1009, 3).unwrap(), 0x89_abcd);
        assert!(matches!(
            ram.read_le(8190, 4),
            Err(MemoryError::OutOfRange { addr: 8190, .. })
        ));
        assert!(ram.write(u64::MAX, &[1]).is_err());
    }

    #[test]
    fn the_dirty_log_records_written_pages_once_per_take() {
        let mut ram = GuestRam::new(1 << 20).unwrap();
        ram.write_le(0x1000, 4, 1).unwrap();
        assert!(ram.take_dirty_pages().is_empty(), "no log, no pages");
        ram.start_dirty_log();
        ram.write_le(0x1ffe, 4, 1).unwrap(); // straddles pages 1 and 2
        ram.fill(0x40000, 1, 0).unwrap(); // a write of the same value still dirties
        ram.write(0xFFFFF, &[7]).unwrap();
        ram.mark_dirty(0x9000, 0x2000);
        ram.mark_dirty(0xFFFFF, 100); // clipped at the end of RAM
        assert_eq!(ram.take_dirty_pages(), vec![1, 2, 9, 10, 0x40, 0xFF]);
        assert!(
            ram.take_dirty_pages().is_empty(),
            "taking the log cleans it"
        );
        let mut kvm_style = vec![0u64; 4];
        kvm_style[1] = 1 << 3; // page 67
        ram.mark_dirty_bitmap(&kvm_style);
        assert_eq!(ram.take_dirty_pages(), vec![67]);
        ram.stop_dirty_log();
        ram.write_le(0x1000, 1, 1).unwrap();
        assert!(ram.take_dirty_pages().is_empty());
    }
}

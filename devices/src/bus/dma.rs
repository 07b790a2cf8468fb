//! Device access to guest RAM (DMA), bounds-checked and logged.
//! Teaches: a device reads and writes guest memory behind the CPU's back — so every address a
//! guest hands a device must be checked, and every write must reach the CPU's code caches.
//!
//! Engines hand the bus the very RAM KVM maps (`&mut [u8]`); a device sees it only through
//! [`Dma`]: reads and writes of guest-physical ranges, each checked against the RAM's size.
//! An access outside RAM is a [`DmaError`] the device turns into its own error status (virtio's
//! IOERR, an ATA abort), never a host access elsewhere. Each successful write is recorded; the
//! engines drain the record ([`crate::Bus::take_dma_writes`]) into the interpreter's decoded-
//! instruction cache, the translator's blocks and the shadow MMU's page-table tracking, exactly
//! as they treat the CPU's own writes — a guest may DMA code, or page tables.

use thiserror::Error;

/// A guest-physical range a device could not reach.
#[derive(serde::Serialize, serde::Deserialize, Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("DMA to guest physical {addr:#x}+{len:#x} is outside RAM ({ram:#x} bytes)")]
pub struct DmaError {
    pub addr: u64,
    pub len: u64,
    pub ram: u64,
}

/// One device write to guest RAM: `len` bytes at `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaWrite {
    pub addr: u64,
    pub len: u64,
}

/// A device's view of guest RAM during one access.
pub struct Dma<'a> {
    ram: &'a mut [u8],
    log: Option<&'a mut Vec<DmaWrite>>,
}

impl<'a> Dma<'a> {
    pub fn new(ram: &'a mut [u8], log: &'a mut Vec<DmaWrite>) -> Self {
        Dma {
            ram,
            log: Some(log),
        }
    }

    /// No guest RAM at all: every access is an error (device unit tests without memory).
    pub fn none() -> Dma<'static> {
        Dma {
            ram: &mut [],
            log: None,
        }
    }

    /// Size of guest RAM in bytes (0 when the caller attached none).
    pub fn ram_size(&self) -> u64 {
        self.ram.len() as u64
    }

    // ANCHOR: dma_checked
    /// The host range of `[addr, addr + len)`, if it lies wholly in RAM.
    fn range(&self, addr: u64, len: u64) -> Result<std::ops::Range<usize>, DmaError> {
        let err = DmaError {
            addr,
            len,
            ram: self.ram_size(),
        };
        let end = addr.checked_add(len).ok_or(err)?;
        if end > self.ram_size() {
            return Err(err);
        }
        Ok(addr as usize..end as usize)
    }

    /// Is `[addr, addr + len)` wholly inside RAM?
    pub fn check(&self, addr: u64, len: u64) -> Result<(), DmaError> {
        self.range(addr, len).map(|_| ())
    }

    /// Copies guest RAM at `addr` into `buf`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let r = self.range(addr, buf.len() as u64)?;
        buf.copy_from_slice(&self.ram[r]);
        Ok(())
    }

    /// Copies `data` into guest RAM at `addr`, and records the write.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError> {
        let r = self.range(addr, data.len() as u64)?;
        self.ram[r].copy_from_slice(data);
        if !data.is_empty() {
            self.note(addr, data.len() as u64);
        }
        Ok(())
    }
    // ANCHOR_END: dma_checked

    /// Fills `len` bytes at `addr` with `byte`.
    pub fn fill(&mut self, addr: u64, len: u64, byte: u8) -> Result<(), DmaError> {
        let r = self.range(addr, len)?;
        self.ram[r].fill(byte);
        if len != 0 {
            self.note(addr, len);
        }
        Ok(())
    }

    fn note(&mut self, addr: u64, len: u64) {
        let Some(log) = self.log.as_deref_mut() else {
            return;
        };
        // Adjacent writes (a descriptor chain's buffers, a used ring's fields) merge.
        if let Some(last) = log.last_mut() {
            if last.addr + last.len == addr {
                last.len += len;
                return;
            }
        }
        log.push(DmaWrite { addr, len });
    }

    pub fn read_u16(&self, addr: u64) -> Result<u16, DmaError> {
        let mut b = [0; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    pub fn read_u32(&self, addr: u64) -> Result<u32, DmaError> {
        let mut b = [0; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn read_u64(&self, addr: u64) -> Result<u64, DmaError> {
        let mut b = [0; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn write_u16(&mut self, addr: u64, v: u16) -> Result<(), DmaError> {
        self.write(addr, &v.to_le_bytes())
    }

    pub fn write_u32(&mut self, addr: u64, v: u32) -> Result<(), DmaError> {
        self.write(addr, &v.to_le_bytes())
    }

    pub fn write_u64(&mut self, addr: u64, v: u64) -> Result<(), DmaError> {
        self.write(addr, &v.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_outside_ram_are_errors_and_change_nothing() {
        let mut ram = vec![0u8; 4096];
        let mut log = Vec::new();
        let mut dma = Dma::new(&mut ram, &mut log);
        assert!(dma.write(4095, &[1, 2]).is_err(), "straddles the end");
        assert!(dma.write(u64::MAX, &[1]).is_err(), "wraps around");
        assert!(dma.read(4096, &mut [0]).is_err());
        assert!(dma.check(0, 4097).is_err());
        assert_eq!(
            dma.read_u32(4094).unwrap_err(),
            DmaError {
                addr: 4094,
                len: 4,
                ram: 4096
            }
        );
        assert!(log.is_empty());
        assert!(ram.iter().all(|&b| b == 0));
    }

    #[test]
    fn writes_are_logged_and_adjacent_ones_merge() {
        let mut ram = vec![0u8; 8192];
        let mut log = Vec::new();
        let mut dma = Dma::new(&mut ram, &mut log);
        dma.write_u32(0x100, 0xAABBCCDD).unwrap();
        dma.write_u16(0x104, 0x1122).unwrap();
        dma.fill(0x1000, 16, 0xEE).unwrap();
        assert_eq!(dma.read_u64(0x100).unwrap(), 0x1122_AABB_CCDD);
        assert_eq!(
            log,
            [
                DmaWrite {
                    addr: 0x100,
                    len: 6
                },
                DmaWrite {
                    addr: 0x1000,
                    len: 16
                }
            ]
        );
    }

    #[test]
    fn no_ram_attached_means_every_access_fails() {
        let mut log = Vec::new();
        let dma = Dma::new(&mut [], &mut log);
        assert!(dma.read_u16(0).is_err());
    }
}

//! Command execution: what each command byte does to the task file, the data buffer and the disk.
//! Teaches: how a sector address is assembled (CHS, 28-bit and 48-bit LBA), how a command ends
//! (status, error bits, the interrupt), and the PIO data-in and data-out block sequences.
//!
//! Every command runs to its first DRQ block (or to its end) inside the OUT that wrote it.
//! Addresses are checked before any data moves: a range that reaches past the last sector
//! fails at once with IDNF, and the backend is never asked for bytes past its end (each block
//! is checked again against the backend's size right before the access).

use crate::block::check_range;

use super::{
    device, error, status, Addressing, Ata, DeviceCtx, Geometry, Power, Reg, Run, Transfer,
    MAX_MULTIPLE, READY, SECTOR_SIZE,
};

pub(super) const RECALIBRATE: std::ops::RangeInclusive<u8> = 0x10..=0x1F;
pub(super) const READ_SECTORS: u8 = 0x20;
pub(super) const READ_SECTORS_NO_RETRY: u8 = 0x21;
pub(super) const READ_SECTORS_EXT: u8 = 0x24;
pub(super) const READ_MULTIPLE_EXT: u8 = 0x29;
pub(super) const WRITE_SECTORS: u8 = 0x30;
pub(super) const WRITE_SECTORS_NO_RETRY: u8 = 0x31;
pub(super) const WRITE_SECTORS_EXT: u8 = 0x34;
pub(super) const WRITE_MULTIPLE_EXT: u8 = 0x39;
pub(super) const READ_VERIFY_SECTORS: u8 = 0x40;
pub(super) const READ_VERIFY_SECTORS_NO_RETRY: u8 = 0x41;
pub(super) const READ_VERIFY_SECTORS_EXT: u8 = 0x42;
pub(super) const EXECUTE_DEVICE_DIAGNOSTIC: u8 = 0x90;
pub(super) const INITIALIZE_DEVICE_PARAMETERS: u8 = 0x91;
pub(super) const READ_MULTIPLE: u8 = 0xC4;
pub(super) const WRITE_MULTIPLE: u8 = 0xC5;
pub(super) const SET_MULTIPLE_MODE: u8 = 0xC6;
pub(super) const STANDBY_IMMEDIATE: u8 = 0xE0;
pub(super) const IDLE_IMMEDIATE: u8 = 0xE1;
pub(super) const STANDBY: u8 = 0xE2;
pub(super) const IDLE: u8 = 0xE3;
pub(super) const CHECK_POWER_MODE: u8 = 0xE5;
pub(super) const SLEEP: u8 = 0xE6;
pub(super) const FLUSH_CACHE: u8 = 0xE7;
pub(super) const FLUSH_CACHE_EXT: u8 = 0xEA;
pub(super) const IDENTIFY_DEVICE: u8 = 0xEC;
pub(super) const SET_FEATURES: u8 = 0xEF;

/// SET FEATURES subcommands (the features register).
const FEATURE_WRITE_CACHE_ON: u8 = 0x02;
const FEATURE_TRANSFER_MODE: u8 = 0x03;
const FEATURE_WRITE_CACHE_OFF: u8 = 0x82;

/// The largest address a 28-bit command reaches: IDENTIFY words 60–61 stop at 0FFFFFFFh.
pub(super) const LBA28_LIMIT: u64 = 0x0FFF_FFFF;
/// The most sectors CHS translation covers (16383 × 16 × 63, the 8.4 GB barrier).
pub(super) const CHS_LIMIT: u64 = 16_383 * 16 * 63;
/// READ VERIFY reads the backend this many sectors at a time.
const VERIFY_CHUNK: u64 = 128;

/// The sector a 28-bit LBA command names: LBA low/mid/high are bits 23:0, the device
/// register's low nibble bits 27:24.
pub fn lba28(low: u8, mid: u8, high: u8, device: u8) -> u64 {
    (((device & 0x0F) as u64) << 24) | ((high as u64) << 16) | ((mid as u64) << 8) | low as u64
}

/// The sector a 48-bit command names: the current bytes of LBA low/mid/high are bits 23:0,
/// their previous (HOB) bytes bits 47:24.
pub fn lba48(low: Reg, mid: Reg, high: Reg) -> u64 {
    let bytes = [low.cur, mid.cur, high.cur, low.prev, mid.prev, high.prev];
    bytes
        .iter()
        .enumerate()
        .fold(0, |acc, (i, &b)| acc | (b as u64) << (8 * i))
}

/// The LBA of a CHS address under a translation of `heads` × `sectors` per track; `None` if
/// the address names no sector (sector 0, or a head or sector past the geometry).
pub fn chs_to_lba(cylinder: u32, head: u32, sector: u32, heads: u32, sectors: u32) -> Option<u64> {
    if sector == 0 || sector > sectors || head >= heads {
        return None;
    }
    Some((cylinder as u64 * heads as u64 + head as u64) * sectors as u64 + sector as u64 - 1)
}

/// The cylinders a translation has on a disk of `total` sectors (IDENTIFY words 1 and 54).
pub(super) fn cylinders(total: u64, g: Geometry) -> u64 {
    (total.min(CHS_LIMIT) / (g.heads as u64 * g.sectors as u64).max(1)).min(0xFFFF)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Read,
    Write,
}

impl Ata {
    /// Executes `command` on the master (the register side has checked it is addressed).
    pub(super) fn execute(&mut self, command: u8, ctx: &mut DeviceCtx) {
        self.s.error = 0;
        self.s.transfer = Transfer::None;
        self.s.buffer.clear();
        self.s.pos = 0;
        match command {
            IDENTIFY_DEVICE => self.identify(ctx),
            READ_SECTORS | READ_SECTORS_NO_RETRY => self.start(Dir::Read, false, false, ctx),
            READ_SECTORS_EXT => self.start(Dir::Read, true, false, ctx),
            READ_MULTIPLE => self.start(Dir::Read, false, true, ctx),
            READ_MULTIPLE_EXT => self.start(Dir::Read, true, true, ctx),
            WRITE_SECTORS | WRITE_SECTORS_NO_RETRY => self.start(Dir::Write, false, false, ctx),
            WRITE_SECTORS_EXT => self.start(Dir::Write, true, false, ctx),
            WRITE_MULTIPLE => self.start(Dir::Write, false, true, ctx),
            WRITE_MULTIPLE_EXT => self.start(Dir::Write, true, true, ctx),
            READ_VERIFY_SECTORS | READ_VERIFY_SECTORS_NO_RETRY => self.verify(false, ctx),
            READ_VERIFY_SECTORS_EXT => self.verify(true, ctx),
            SET_MULTIPLE_MODE => self.set_multiple(ctx),
            FLUSH_CACHE | FLUSH_CACHE_EXT => self.flush(ctx),
            SET_FEATURES => self.set_features(ctx),
            INITIALIZE_DEVICE_PARAMETERS => self.initialize_parameters(ctx),
            EXECUTE_DEVICE_DIAGNOSTIC => {
                // Both devices run it; with device 1 absent device 0 reports for both and the
                // signature it leaves selects device 0 again.
                self.s.signature();
                self.raise_irq(ctx);
            }
            STANDBY_IMMEDIATE | STANDBY => self.enter_power(Power::Standby, ctx),
            IDLE_IMMEDIATE | IDLE => self.enter_power(Power::Idle, ctx),
            SLEEP => self.enter_power(Power::Sleep, ctx),
            CHECK_POWER_MODE => {
                self.s.count.cur = match self.s.power {
                    Power::Standby | Power::Sleep => 0x00,
                    Power::Idle => 0x80,
                    Power::Active => 0xFF,
                };
                self.complete(ctx);
            }
            c if RECALIBRATE.contains(&c) => self.complete(ctx),
            _ => self.fail(error::ABRT, ctx),
        }
    }

    // ---- how commands end ----

    /// Successful end of a command without data (or of a data-out command): ready, interrupt.
    fn complete(&mut self, ctx: &mut DeviceCtx) {
        self.s.transfer = Transfer::None;
        self.s.status = READY;
        self.raise_irq(ctx);
    }

    /// Error end: ERR in status, `bits` in the error register, DRQ gone, interrupt.
    fn fail(&mut self, bits: u8, ctx: &mut DeviceCtx) {
        self.s.transfer = Transfer::None;
        self.s.buffer.clear();
        self.s.pos = 0;
        self.s.error = bits;
        self.s.status = READY | status::ERR;
        self.raise_irq(ctx);
    }

    /// The data-in ends after its last word: DRQ drops, and there is no interrupt.
    fn end_data_in(&mut self) {
        self.s.transfer = Transfer::None;
        self.s.buffer.clear();
        self.s.pos = 0;
        self.s.status = READY;
    }

    // ---- addresses ----

    /// The first sector, count and addressing the task file names for a read, write or verify;
    /// `None` when a CHS address names no sector.
    fn command_range(&self, ext: bool) -> Option<(u64, u64, Addressing)> {
        let s = &self.s;
        if ext {
            // 48-bit commands are LBA-only; the device register's LBA bit is not consulted.
            let count = ((s.count.prev as u64) << 8) | s.count.cur as u64;
            let count = if count == 0 { 65_536 } else { count };
            return Some((
                lba48(s.lba_low, s.lba_mid, s.lba_high),
                count,
                Addressing::Lba48,
            ));
        }
        let count = if s.count.cur == 0 {
            256
        } else {
            s.count.cur as u64
        };
        if s.device & device::LBA != 0 {
            let lba = lba28(s.lba_low.cur, s.lba_mid.cur, s.lba_high.cur, s.device);
            return Some((lba, count, Addressing::Lba28));
        }
        let g = s.geometry;
        let cylinder = ((s.lba_high.cur as u32) << 8) | s.lba_mid.cur as u32;
        if cylinder as u64 >= cylinders(self.total_sectors(), g) {
            return None;
        }
        let head = (s.device & 0x0F) as u32;
        let lba = chs_to_lba(cylinder, head, s.lba_low.cur as u32, g.heads, g.sectors)?;
        Some((lba, count, Addressing::Chs))
    }

    /// Is `[lba, lba + count)` within what `addressing` can reach on this disk?
    fn range_ok(&self, lba: u64, count: u64, addressing: Addressing) -> bool {
        let total = self.total_sectors();
        let limit = match addressing {
            Addressing::Lba48 => total,
            Addressing::Lba28 => total.min(LBA28_LIMIT),
            Addressing::Chs => {
                let g = self.s.geometry;
                cylinders(total, g) * g.heads as u64 * g.sectors as u64
            }
        };
        lba.checked_add(count).is_some_and(|end| end <= limit)
    }

    /// Puts the address of a failed sector into the task file, as error outputs report it.
    fn report_lba(&mut self, lba: u64, addressing: Addressing) {
        let s = &mut self.s;
        match addressing {
            Addressing::Lba48 => {
                s.lba_low = Reg {
                    cur: lba as u8,
                    prev: (lba >> 24) as u8,
                };
                s.lba_mid = Reg {
                    cur: (lba >> 8) as u8,
                    prev: (lba >> 32) as u8,
                };
                s.lba_high = Reg {
                    cur: (lba >> 16) as u8,
                    prev: (lba >> 40) as u8,
                };
            }
            Addressing::Lba28 => {
                s.lba_low.cur = lba as u8;
                s.lba_mid.cur = (lba >> 8) as u8;
                s.lba_high.cur = (lba >> 16) as u8;
                s.device = (s.device & 0xF0) | ((lba >> 24) as u8 & 0x0F);
            }
            Addressing::Chs => {
                let g = s.geometry;
                let per_cylinder = (g.heads * g.sectors).max(1) as u64;
                let cylinder = lba / per_cylinder;
                let head = (lba % per_cylinder) / g.sectors.max(1) as u64;
                let sector = lba % g.sectors.max(1) as u64 + 1;
                s.lba_low.cur = sector as u8;
                s.lba_mid.cur = cylinder as u8;
                s.lba_high.cur = (cylinder >> 8) as u8;
                s.device = (s.device & 0xF0) | (head as u8 & 0x0F);
            }
        }
    }

    // ---- data commands ----

    /// READ/WRITE SECTORS (EXT) and READ/WRITE MULTIPLE (EXT): checks, then the first block.
    fn start(&mut self, dir: Dir, ext: bool, multiple: bool, ctx: &mut DeviceCtx) {
        let per_block = if multiple {
            if self.s.multiple == 0 {
                return self.fail(error::ABRT, ctx); // multiple mode is disabled
            }
            self.s.multiple as u32
        } else {
            1
        };
        let Some((lba, count, addressing)) = self.command_range(ext) else {
            return self.fail(error::IDNF, ctx);
        };
        if !self.range_ok(lba, count, addressing) {
            return self.fail(error::IDNF, ctx);
        }
        if dir == Dir::Write && self.disk.read_only() {
            return self.fail(error::ABRT, ctx);
        }
        self.s.power = Power::Active;
        let run = Run {
            lba,
            remaining: count as u32,
            per_block,
            addressing,
        };
        match dir {
            Dir::Read => self.load_read_block(run, ctx),
            Dir::Write => self.await_write_block(run, false, ctx),
        }
    }

    fn block_sectors(run: &Run) -> u32 {
        run.remaining.min(run.per_block)
    }

    // ANCHOR: read_block
    /// Fills the buffer with the next data-in block, sets DRQ and interrupts.
    fn load_read_block(&mut self, run: Run, ctx: &mut DeviceCtx) {
        let n = Self::block_sectors(&run) as u64;
        let offset = run.lba * SECTOR_SIZE;
        let mut buffer = std::mem::take(&mut self.s.buffer);
        buffer.clear();
        buffer.resize((n * SECTOR_SIZE) as usize, 0);
        let result = check_range(offset, n * SECTOR_SIZE, self.disk.len())
            .and_then(|()| self.disk.read_at(offset, &mut buffer));
        self.s.buffer = buffer;
        if result.is_err() {
            self.report_lba(run.lba, run.addressing);
            return self.fail(error::UNC, ctx);
        }
        self.sectors_read += n;
        self.s.transfer = Transfer::Read(run);
        self.s.pos = 0;
        self.s.status = READY | status::DRQ;
        self.raise_irq(ctx);
    }

    /// The host has read the last word of a data-in block.
    pub(super) fn data_in_block_done(&mut self, ctx: &mut DeviceCtx) {
        let Transfer::Read(mut run) = self.s.transfer else {
            return self.end_data_in(); // IDENTIFY: one block
        };
        let n = Self::block_sectors(&run);
        run.lba += n as u64;
        run.remaining -= n;
        if run.remaining == 0 {
            self.end_data_in();
        } else {
            self.load_read_block(run, ctx);
        }
    }
    // ANCHOR_END: read_block

    /// Opens the buffer for the next data-out block; DRQ, with an interrupt except the first.
    fn await_write_block(&mut self, run: Run, interrupt: bool, ctx: &mut DeviceCtx) {
        let n = Self::block_sectors(&run) as u64;
        self.s.buffer.clear();
        self.s.buffer.resize((n * SECTOR_SIZE) as usize, 0);
        self.s.pos = 0;
        self.s.transfer = Transfer::Write(run);
        self.s.status = READY | status::DRQ;
        if interrupt {
            self.raise_irq(ctx);
        }
    }

    /// The host has written the last word of a data-out block: it goes to the backend.
    pub(super) fn data_out_block_done(&mut self, ctx: &mut DeviceCtx) {
        let Transfer::Write(mut run) = self.s.transfer else {
            return;
        };
        let n = Self::block_sectors(&run);
        let offset = run.lba * SECTOR_SIZE;
        let len = self.s.buffer.len() as u64;
        let result = check_range(offset, len, self.disk.len())
            .and_then(|()| self.disk.write_at(offset, &self.s.buffer));
        if result.is_err() {
            self.report_lba(run.lba, run.addressing);
            return self.fail(error::ABRT, ctx);
        }
        self.sectors_written += n as u64;
        run.lba += n as u64;
        run.remaining -= n;
        if run.remaining > 0 {
            return self.await_write_block(run, true, ctx);
        }
        self.s.buffer.clear();
        self.s.pos = 0;
        if !self.s.write_cache {
            // Write-through: the data is on the medium before the command reports completion.
            self.flushes += 1;
            if self.disk.flush().is_err() {
                return self.fail(error::ABRT, ctx);
            }
        }
        self.complete(ctx);
    }

    /// IDENTIFY DEVICE: one data-in block.
    fn identify(&mut self, ctx: &mut DeviceCtx) {
        let serial = self.disk.id();
        let info = super::identify::DriveInfo {
            serial: &serial,
            total_sectors: self.total_sectors(),
            geometry: self.s.geometry,
            multiple: self.s.multiple,
            write_cache: self.s.write_cache,
        };
        self.s.buffer = super::identify::identify_bytes(&info);
        self.s.pos = 0;
        self.s.transfer = Transfer::Identify;
        self.s.status = READY | status::DRQ;
        self.raise_irq(ctx);
    }

    /// READ VERIFY SECTORS (EXT): reads the sectors from the backend, transfers nothing.
    fn verify(&mut self, ext: bool, ctx: &mut DeviceCtx) {
        let Some((lba, count, addressing)) = self.command_range(ext) else {
            return self.fail(error::IDNF, ctx);
        };
        if !self.range_ok(lba, count, addressing) {
            return self.fail(error::IDNF, ctx);
        }
        self.s.power = Power::Active;
        let mut chunk = vec![0; (VERIFY_CHUNK * SECTOR_SIZE) as usize];
        let end = lba + count;
        let mut at = lba;
        while at < end {
            let n = (end - at).min(VERIFY_CHUNK);
            let buf = &mut chunk[..(n * SECTOR_SIZE) as usize];
            let offset = at * SECTOR_SIZE;
            let result = check_range(offset, n * SECTOR_SIZE, self.disk.len())
                .and_then(|()| self.disk.read_at(offset, buf));
            if result.is_err() {
                self.report_lba(at, addressing);
                return self.fail(error::UNC, ctx);
            }
            at += n;
        }
        self.complete(ctx);
    }

    // ---- settings ----

    /// SET MULTIPLE MODE: 0 disables READ/WRITE MULTIPLE; 1, 2, 4, 8 and 16 set the block
    /// size; anything else aborts and leaves multiple mode disabled.
    fn set_multiple(&mut self, ctx: &mut DeviceCtx) {
        let n = self.s.count.cur;
        if n == 0 || (n <= MAX_MULTIPLE && n.is_power_of_two()) {
            self.s.multiple = n;
            self.complete(ctx);
        } else {
            self.s.multiple = 0;
            self.fail(error::ABRT, ctx);
        }
    }

    /// FLUSH CACHE (EXT): the backend makes every completed write durable.
    fn flush(&mut self, ctx: &mut DeviceCtx) {
        self.s.power = Power::Active;
        self.flushes += 1;
        match self.disk.flush() {
            Ok(()) => self.complete(ctx),
            Err(_) => self.fail(error::ABRT, ctx),
        }
    }

    /// SET FEATURES: the transfer mode (PIO default and PIO modes 0–4; DMA modes abort, there
    /// is no DMA) and the volatile write cache on/off.
    fn set_features(&mut self, ctx: &mut DeviceCtx) {
        let ok = match self.s.features.cur {
            FEATURE_WRITE_CACHE_ON => {
                self.s.write_cache = true;
                true
            }
            FEATURE_WRITE_CACHE_OFF => {
                self.s.write_cache = false;
                true
            }
            FEATURE_TRANSFER_MODE => {
                let mode = self.s.count.cur;
                match mode >> 3 {
                    0 if mode <= 1 => {
                        self.s.pio_mode = 0; // PIO default mode (IORDY on or off)
                        true
                    }
                    1 if mode & 7 <= 4 => {
                        self.s.pio_mode = mode & 7;
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if ok {
            self.complete(ctx);
        } else {
            self.fail(error::ABRT, ctx);
        }
    }

    /// INITIALIZE DEVICE PARAMETERS: the CHS translation, sectors per track from the count,
    /// heads from the device register's low nibble plus one.
    fn initialize_parameters(&mut self, ctx: &mut DeviceCtx) {
        let sectors = self.s.count.cur as u32;
        if sectors == 0 {
            return self.fail(error::ABRT, ctx);
        }
        self.s.geometry = Geometry {
            heads: (self.s.device & 0x0F) as u32 + 1,
            sectors,
        };
        self.complete(ctx);
    }

    fn enter_power(&mut self, power: Power, ctx: &mut DeviceCtx) {
        self.s.power = power;
        self.complete(ctx);
    }
}

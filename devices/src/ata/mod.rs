//! An ATA/IDE hard-disk controller, PIO only: the primary channel (0x1F0–0x1F7, 0x3F6, IRQ 14).
//! Teaches: the task-file interface every PC disk driver once spoke — registers written, a
//! command byte, then DRQ/INTRQ handshakes moving 512-byte sectors through one 16-bit port.
//!
//! The model follows the T13 ATA/ATAPI-8 ACS command set and the ATA PIO protocols:
//! - **Task file.** Features, sector count and the three LBA bytes are each a two-byte FIFO
//!   ([`Reg`]): a write pushes the old value into the "previous" (HOB) copy, which a 48-bit
//!   command reads as the high bytes. Device-control bit 7 (HOB) makes reads return the
//!   previous copies; any write to a command-block register clears it.
//! - **Status.** BSY is never seen set outside a software reset: the device does every command
//!   synchronously, inside the guest's OUT to the command register. DRDY|DSC mean ready, DRQ
//!   that the data port has a block to move, ERR that the error register says what failed.
//! - **PIO data-in** (READ SECTORS, IDENTIFY): DRQ and an interrupt per DRQ block (a sector, or
//!   a READ MULTIPLE block); after the last word of the last block DRQ drops, no interrupt.
//! - **PIO data-out** (WRITE SECTORS): DRQ without interrupt for the first block; each block
//!   is written to the backend when its last word arrives, then an interrupt asks for the next
//!   one, or reports completion after the last.
//! - **INTRQ** is a level the device drives on IRQ 14 while an interrupt is pending, nIEN is 0
//!   and the drive is selected. Reading the status register (not the alternate status),
//!   writing a command and a software reset clear the pending interrupt.
//!
//! **The absent slave.** The channel has only a master (device 0). When the guest selects
//! device 1 the master answers as ATA's "device 0 only" configuration asks: writes to the
//! task-file registers land in the shared registers, reads of them return those values, but
//! the status and alternate status read 00h (no device: the value Linux's libata and hand
//! written probes check), data-port reads return FFFFh, and commands are ignored — except
//! EXECUTE DEVICE DIAGNOSTIC, which both devices always execute. The master's INTRQ is released
//! while device 1 is selected (a deselected device must not drive the line).
//!
//! **CHS.** Commands with LBA = 0 in the device register are translated with the current
//! geometry (16 heads, 63 sectors per track until INITIALIZE DEVICE PARAMETERS changes it),
//! reported in IDENTIFY words 1/3/6 and 54–58.
//!
//! **Errors** are found before data moves where the spec allows: an address range reaching
//! past the last sector (or past 0FFFFFFFh for 28-bit commands) ends the command at once with
//! ERR + IDNF, a write to a read-only backend with ERR + ABRT — no DRQ, nothing written. A
//! backend that fails mid-command ends it with UNC (reads, READ VERIFY) or ABRT (writes,
//! flushes), the failing block's first sector in the LBA registers. On success the task file
//! is left as the host wrote it (ACS makes it undefined).
//!
//! **Settings.** Multiple mode is off at power-on (IDENTIFY word 59 = 0) until SET MULTIPLE
//! MODE; the write cache is on (off: each write command is flushed before it completes).
//! A software reset keeps the multiple count, write cache and CHS translation.
//!
//! **Snapshots** hold the registers, the transfer in progress and the counters, plus a
//! checkpoint of the disk ([`BlockBackend::checkpoint`]): restoring rolls the disk back too, so
//! a rewound guest reads what it had written by then. A backend without an undo journal (a
//! plain file in `vmscope run`) makes the snapshot fail instead — registers rewound over a disk
//! that was not would be a lie. The GUI puts its disks behind a `JournaledDisk`.

use std::any::Any;

use crate::block::{BlockBackend, DiskMark};
use crate::bus::{BusDevice, DeviceCtx, IrqLine};
use crate::snapshot::{DeviceSnapshot, SnapshotError};

mod commands;
mod identify;
#[cfg(test)]
mod tests;

pub use commands::{chs_to_lba, lba28, lba48};
pub use identify::identify_checksum_ok;

/// The command block's ports (inclusive): data, error/features, sector count, LBA low/mid/high,
/// device, status/command.
pub const COMMAND_PORTS: (u16, u16) = (0x1F0, 0x1F7);
/// The control block's port: alternate status (read) / device control (write).
pub const CONTROL_PORT: u16 = 0x3F6;
/// The ISA interrupt line of the primary IDE channel.
pub const IRQ: u8 = 14;
/// Bytes per sector (the only logical sector size this device reports).
pub const SECTOR_SIZE: u64 = 512;
/// The largest DRQ block READ/WRITE MULTIPLE accept (IDENTIFY word 47), in sectors.
pub const MAX_MULTIPLE: u8 = 16;

// ANCHOR: ata_registers
/// Offsets of the command-block registers from [`COMMAND_PORTS`]`.0`.
pub mod reg {
    pub const DATA: u16 = 0;
    /// Error (read) / Features (write).
    pub const ERROR_FEATURES: u16 = 1;
    pub const SECTOR_COUNT: u16 = 2;
    /// LBA bits 7:0 (CHS: sector number).
    pub const LBA_LOW: u16 = 3;
    /// LBA bits 15:8 (CHS: cylinder low).
    pub const LBA_MID: u16 = 4;
    /// LBA bits 23:16 (CHS: cylinder high).
    pub const LBA_HIGH: u16 = 5;
    /// Device/head: bit 6 LBA, bit 4 DEV, bits 3:0 LBA 27:24 or the head.
    pub const DEVICE: u16 = 6;
    /// Status (read) / Command (write).
    pub const STATUS_COMMAND: u16 = 7;
}
// ANCHOR_END: ata_registers

/// Status register bits.
pub mod status {
    /// Busy: the device owns the task file (here: only while SRST is held).
    pub const BSY: u8 = 0x80;
    /// Device ready: it accepts commands.
    pub const DRDY: u8 = 0x40;
    /// Device fault (never set by this model).
    pub const DF: u8 = 0x20;
    /// Device seek complete (ATA-1..5 name; "service" or command specific since).
    pub const DSC: u8 = 0x10;
    /// Data request: the data port has a block to transfer.
    pub const DRQ: u8 = 0x08;
    /// The last command failed; the error register says why.
    pub const ERR: u8 = 0x01;
}

/// Error register bits.
pub mod error {
    /// Uncorrectable data error (a backend read failed).
    pub const UNC: u8 = 0x40;
    /// ID not found: the address is outside the user-accessible sectors.
    pub const IDNF: u8 = 0x10;
    /// Command aborted: unknown command, bad parameter, read-only disk, failed write.
    pub const ABRT: u8 = 0x04;
    /// After reset or EXECUTE DEVICE DIAGNOSTIC: device 0 passed, device 1 absent.
    pub const DIAG_PASSED: u8 = 0x01;
}

/// Device register bits.
pub mod device {
    /// LBA addressing (else CHS).
    pub const LBA: u8 = 0x40;
    /// Device 1 (slave) selected.
    pub const DEV: u8 = 0x10;
}

/// Device control register bits.
pub mod control {
    /// Reads of the task file return the previous (high-order) bytes.
    pub const HOB: u8 = 0x80;
    /// Software reset, held while set.
    pub const SRST: u8 = 0x04;
    /// Interrupts disabled (INTRQ released).
    pub const NIEN: u8 = 0x02;
}

/// What the device does when idle: ready, seek complete.
const READY: u8 = status::DRDY | status::DSC;

/// One task-file register with its "previous content" copy: a two-byte FIFO.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reg {
    /// The most recently written byte.
    pub cur: u8,
    /// The byte written before it (the high-order byte for 48-bit commands).
    pub prev: u8,
}

impl Reg {
    /// A host write: the current value moves into the previous copy.
    pub fn push(&mut self, value: u8) {
        self.prev = self.cur;
        self.cur = value;
    }

    fn read(self, hob: bool) -> u8 {
        if hob {
            self.prev
        } else {
            self.cur
        }
    }
}

/// How the command being executed names sectors (how an error address is written back).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
enum Addressing {
    Chs,
    Lba28,
    Lba48,
}

/// A multi-sector transfer in progress.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    /// The first sector of the block in the buffer.
    pub lba: u64,
    /// Sectors not yet completed, the buffered block included.
    pub remaining: u32,
    /// Sectors per DRQ block (1, or the multiple count).
    pub per_block: u32,
    pub addressing: Addressing,
}

/// What the data port is doing.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    None,
    /// IDENTIFY data going to the host.
    Identify,
    /// Sectors going to the host.
    Read(Run),
    /// Sectors coming from the host.
    Write(Run),
}

/// The power states of the power-management feature set.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    Active,
    Idle,
    Standby,
    /// Only a reset wakes the device; commands are ignored.
    Sleep,
}

/// The CHS translation in use (INITIALIZE DEVICE PARAMETERS).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    pub heads: u32,
    pub sectors: u32,
}

impl Geometry {
    /// What IDENTIFY words 1/3/6 report and the power-on translation.
    pub const DEFAULT: Geometry = Geometry {
        heads: 16,
        sectors: 63,
    };
}

/// Everything the device holds apart from the disk and the statistics: plain data.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
struct AtaState {
    features: Reg,
    count: Reg,
    lba_low: Reg,
    lba_mid: Reg,
    lba_high: Reg,
    device: u8,
    status: u8,
    error: u8,
    control: u8,
    /// The device has an interrupt pending (INTRQ asserted unless masked or deselected).
    intrq: bool,
    /// What the device currently drives on its line.
    line_high: bool,
    transfer: Transfer,
    /// The DRQ block being transferred, and the next byte in it.
    buffer: Vec<u8>,
    pos: usize,
    /// Sectors per READ/WRITE MULTIPLE block; 0: multiple mode disabled.
    multiple: u8,
    geometry: Geometry,
    write_cache: bool,
    /// The PIO mode SET FEATURES last selected (no timing effect: the transfer is synchronous).
    pio_mode: u8,
    power: Power,
}

impl AtaState {
    fn power_on() -> Self {
        let mut s = AtaState {
            features: Reg::default(),
            count: Reg::default(),
            lba_low: Reg::default(),
            lba_mid: Reg::default(),
            lba_high: Reg::default(),
            device: 0,
            status: READY,
            error: 0,
            control: 0,
            intrq: false,
            line_high: false,
            transfer: Transfer::None,
            buffer: Vec::new(),
            pos: 0,
            multiple: 0,
            geometry: Geometry::DEFAULT,
            write_cache: true,
            pio_mode: 0,
            power: Power::Active,
        };
        s.signature();
        s
    }

    /// The ATA device signature in the task file, and "diagnostics passed": what reset and
    /// EXECUTE DEVICE DIAGNOSTIC leave (an ATAPI device would put 14h/EBh in LBA mid/high).
    fn signature(&mut self) {
        self.count = Reg { cur: 1, prev: 0 };
        self.lba_low = Reg { cur: 1, prev: 0 };
        self.lba_mid = Reg::default();
        self.lba_high = Reg::default();
        self.device = 0;
        self.error = error::DIAG_PASSED;
        self.status = READY;
        self.transfer = Transfer::None;
        self.buffer.clear();
        self.pos = 0;
    }

    fn slave_selected(&self) -> bool {
        self.device & device::DEV != 0
    }
}

/// The primary IDE channel with one ATA hard disk (the master) on a [`BlockBackend`].
pub struct Ata {
    disk: Box<dyn BlockBackend>,
    line: IrqLine,
    s: AtaState,
    /// Sectors read from the backend for the guest (READ commands; not READ VERIFY).
    pub sectors_read: u64,
    /// Sectors written to the backend.
    pub sectors_written: u64,
    /// Commands the drive executed, aborted ones included (not the ignored ones).
    pub commands: u64,
    /// Backend flushes: FLUSH CACHE (EXT), and writes completed with the write cache off.
    pub flushes: u64,
    /// Interrupts delivered: rising edges the device drove on its line.
    pub interrupts: u64,
}

impl std::fmt::Debug for Ata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ata")
            .field("disk_bytes", &self.disk.len())
            .field("state", &self.s)
            .finish_non_exhaustive()
    }
}

impl Ata {
    /// A channel whose master is `disk`, interrupting on `irq` (IRQ 14 on a PC: [`IRQ`]).
    pub fn new(disk: Box<dyn BlockBackend>, irq: IrqLine) -> Ata {
        Ata {
            disk,
            line: irq,
            s: AtaState::power_on(),
            sectors_read: 0,
            sectors_written: 0,
            commands: 0,
            flushes: 0,
            interrupts: 0,
        }
    }

    /// The backend behind the master.
    pub fn disk(&self) -> &dyn BlockBackend {
        &*self.disk
    }

    /// The backend, mutably (a host-side flush at exit, say).
    pub fn disk_mut(&mut self) -> &mut dyn BlockBackend {
        &mut *self.disk
    }

    /// The disk's size in whole sectors (a partial last sector is not addressable).
    pub fn total_sectors(&self) -> u64 {
        self.disk.len() / SECTOR_SIZE
    }

    /// Is device 1 (absent) selected?
    fn slave_selected(&self) -> bool {
        self.s.slave_selected()
    }

    // ---- interrupts ----

    /// Drives the line from the pending flag, nIEN and the selection.
    fn update_irq(&mut self, ctx: &mut DeviceCtx) {
        let level = self.s.intrq && self.s.control & control::NIEN == 0 && !self.slave_selected();
        if level != self.s.line_high {
            ctx.set_irq_level(self.line, level);
            self.s.line_high = level;
            if level {
                self.interrupts += 1;
            }
        }
    }

    /// The device asserts INTRQ (a DRQ block is ready, or a command completed).
    fn raise_irq(&mut self, ctx: &mut DeviceCtx) {
        self.s.intrq = true;
        self.update_irq(ctx);
    }

    fn clear_irq(&mut self, ctx: &mut DeviceCtx) {
        self.s.intrq = false;
        self.update_irq(ctx);
    }

    // ---- the registers ----

    fn status_value(&self) -> u8 {
        if self.slave_selected() {
            0
        } else if self.s.control & control::SRST != 0 {
            status::BSY
        } else {
            self.s.status
        }
    }

    /// A byte-wide register read at `port` (data port excluded).
    fn read_register(&mut self, port: u16, ctx: &mut DeviceCtx) -> u8 {
        let hob = self.s.control & control::HOB != 0;
        if port == CONTROL_PORT {
            return self.status_value();
        }
        match port.wrapping_sub(COMMAND_PORTS.0) {
            reg::ERROR_FEATURES => self.s.error, // HOB or not: the error register has no FIFO
            reg::SECTOR_COUNT => self.s.count.read(hob),
            reg::LBA_LOW => self.s.lba_low.read(hob),
            reg::LBA_MID => self.s.lba_mid.read(hob),
            reg::LBA_HIGH => self.s.lba_high.read(hob),
            reg::DEVICE => self.s.device,
            reg::STATUS_COMMAND => {
                let value = self.status_value();
                // The status read is the interrupt acknowledge — for the selected device only.
                if !self.slave_selected() {
                    self.clear_irq(ctx);
                }
                value
            }
            _ => 0xFF,
        }
    }

    /// A byte-wide register write at `port` (data port excluded).
    fn write_register(&mut self, port: u16, value: u8, ctx: &mut DeviceCtx) {
        if port == CONTROL_PORT {
            self.write_control(value, ctx);
            return;
        }
        let offset = port.wrapping_sub(COMMAND_PORTS.0);
        if !(reg::ERROR_FEATURES..=reg::STATUS_COMMAND).contains(&offset) {
            return;
        }
        // A write to any command-block register clears HOB.
        self.s.control &= !control::HOB;
        match offset {
            reg::ERROR_FEATURES => self.s.features.push(value),
            reg::SECTOR_COUNT => self.s.count.push(value),
            reg::LBA_LOW => self.s.lba_low.push(value),
            reg::LBA_MID => self.s.lba_mid.push(value),
            reg::LBA_HIGH => self.s.lba_high.push(value),
            reg::DEVICE => {
                self.s.device = value;
                self.update_irq(ctx);
            }
            _ => self.write_command(value, ctx),
        }
    }

    fn write_command(&mut self, command: u8, ctx: &mut DeviceCtx) {
        if self.s.control & control::SRST != 0 {
            return; // held in reset
        }
        let diagnostic = command == commands::EXECUTE_DEVICE_DIAGNOSTIC;
        if self.slave_selected() && !diagnostic {
            return; // addressed to the absent device 1
        }
        if self.s.power == Power::Sleep {
            return; // asleep until a reset
        }
        self.clear_irq(ctx);
        self.commands += 1;
        self.execute(command, ctx);
    }

    fn write_control(&mut self, value: u8, ctx: &mut DeviceCtx) {
        let was_reset = self.s.control & control::SRST != 0;
        self.s.control = value;
        let reset = value & control::SRST != 0;
        if reset && !was_reset {
            // Reset asserted: whatever was going on stops, the interrupt goes away.
            self.s.transfer = Transfer::None;
            self.s.buffer.clear();
            self.s.pos = 0;
            self.s.status = status::BSY;
            self.s.intrq = false;
        } else if !reset && was_reset {
            // Reset released: the device comes back with its signature (no interrupt).
            self.s.signature();
            if self.s.power == Power::Sleep {
                self.s.power = Power::Standby;
            }
        }
        self.update_irq(ctx);
    }

    // ---- the data port ----

    // ANCHOR: data_read
    /// One 16-bit transfer from the data port: FFFFh without side effects unless DRQ is set
    /// for a data-in command on the selected master.
    fn data_read(&mut self, ctx: &mut DeviceCtx) -> u16 {
        let data_in = matches!(self.s.transfer, Transfer::Identify | Transfer::Read(_));
        if !data_in || self.slave_selected() || self.s.status & status::DRQ == 0 {
            return 0xFFFF;
        }
        let pos = self.s.pos;
        let word = match self.s.buffer.get(pos..pos + 2) {
            Some(b) => u16::from_le_bytes([b[0], b[1]]),
            None => return 0xFFFF,
        };
        self.s.pos = pos + 2;
        if self.s.pos >= self.s.buffer.len() {
            self.data_in_block_done(ctx);
        }
        word
    }
    // ANCHOR_END: data_read

    /// One 16-bit transfer to the data port; ignored unless DRQ is set for a data-out command.
    fn data_write(&mut self, word: u16, ctx: &mut DeviceCtx) {
        if !matches!(self.s.transfer, Transfer::Write(_))
            || self.slave_selected()
            || self.s.status & status::DRQ == 0
        {
            return;
        }
        let pos = self.s.pos;
        let Some(b) = self.s.buffer.get_mut(pos..pos + 2) else {
            return;
        };
        b.copy_from_slice(&word.to_le_bytes());
        self.s.pos = pos + 2;
        if self.s.pos >= self.s.buffer.len() {
            self.data_out_block_done(ctx);
        }
    }
}

impl BusDevice for Ata {
    fn name(&self) -> &'static str {
        "ata"
    }

    /// Data port: 16 bits per transfer (a 32-bit access moves two words, low first; an 8-bit
    /// access still moves a word — the drive asserts IOCS16 — and returns its low byte).
    /// Other ports are byte registers; a wider access reads consecutive ports, as the chipset
    /// splits it into byte cycles.
    fn pio_read(&mut self, port: u16, size: u8, ctx: &mut DeviceCtx) -> u32 {
        let size = size.clamp(1, 4);
        if port == COMMAND_PORTS.0 {
            let low = self.data_read(ctx) as u32;
            return match size {
                1 => low & 0xFF,
                2 | 3 => low,
                _ => low | (self.data_read(ctx) as u32) << 16,
            };
        }
        let mut value = 0u32;
        for i in 0..size {
            let p = port.wrapping_add(i as u16);
            let ours = p == CONTROL_PORT || (COMMAND_PORTS.0 < p && p <= COMMAND_PORTS.1);
            let byte = if ours {
                self.read_register(p, ctx)
            } else {
                0xFF
            };
            value |= (byte as u32) << (8 * i);
        }
        value
    }

    fn pio_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut DeviceCtx) {
        let size = size.clamp(1, 4);
        if port == COMMAND_PORTS.0 {
            self.data_write(value as u16, ctx);
            if size == 4 {
                self.data_write((value >> 16) as u16, ctx);
            }
            return;
        }
        for i in 0..size {
            let p = port.wrapping_add(i as u16);
            self.write_register(p, (value >> (8 * i)) as u8, ctx);
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn snapshot(&self) -> Option<DeviceSnapshot> {
        let checkpoint = self.disk.checkpoint()?;
        let state = AtaSnapshot {
            s: self.s.clone(),
            counters: [
                self.sectors_read,
                self.sectors_written,
                self.commands,
                self.flushes,
                self.interrupts,
            ],
            disk: checkpoint.mark,
        };
        Some(DeviceSnapshot::of(self.name(), SNAPSHOT_VERSION, &state).holding(checkpoint.keep))
    }

    fn restore(&mut self, snap: &DeviceSnapshot) -> Result<(), SnapshotError> {
        let state: AtaSnapshot = snap.get(self.name(), SNAPSHOT_VERSION)?;
        self.disk
            .rollback(&state.disk)
            .map_err(|e| SnapshotError::BadState {
                device: "ata",
                detail: format!("rolling the disk back: {e}"),
            })?;
        self.s = state.s;
        [
            self.sectors_read,
            self.sectors_written,
            self.commands,
            self.flushes,
            self.interrupts,
        ] = state.counters;
        Ok(())
    }
}

/// The layout of [`AtaSnapshot`] (with `AtaState`): 1.
const SNAPSHOT_VERSION: u16 = 1;

/// The device in a machine snapshot: its state, its counters and where its disk was (the
/// checkpoint itself is held by the snapshot, `DeviceSnapshot::holding`).
#[derive(serde::Serialize, serde::Deserialize)]
struct AtaSnapshot {
    s: AtaState,
    counters: [u64; 5],
    disk: DiskMark,
}

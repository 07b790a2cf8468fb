//! Unit tests: the device driven through its ports, as a driver drives it.

use std::cell::RefCell;
use std::rc::Rc;

use super::*;
use crate::block::{BlockError, MemDisk};
use crate::bus::TestCtx;

mod robustness;
mod snapshot;

const DATA: u16 = 0x1F0;
const ERROR: u16 = 0x1F1;
const COUNT: u16 = 0x1F2;
const LBA_LOW: u16 = 0x1F3;
const LBA_MID: u16 = 0x1F4;
const LBA_HIGH: u16 = 0x1F5;
const DEVICE: u16 = 0x1F6;
const CMD: u16 = 0x1F7;
const ALT: u16 = 0x3F6;

const READY: u8 = 0x50;
const READY_DRQ: u8 = 0x58;
const READY_ERR: u8 = 0x51;

use crate::block::SharedMemDisk as Shared;

/// Sector `s` of the test disks: its number in the first 8 bytes, then a pattern.
fn sector_data(s: u64) -> Vec<u8> {
    let mut v: Vec<u8> = (0..512).map(|i| (i as u64 + s * 3) as u8 ^ 0x5A).collect();
    v[..8].copy_from_slice(&s.to_le_bytes());
    v
}

fn patterned(sectors: u64) -> MemDisk {
    MemDisk::new((0..sectors).flat_map(sector_data).collect())
}

struct Rig {
    ata: Ata,
    t: TestCtx,
    disk: Rc<RefCell<MemDisk>>,
}

impl Rig {
    fn new(sectors: u64) -> Rig {
        Rig::with(patterned(sectors))
    }

    fn with(mem: MemDisk) -> Rig {
        let disk = Rc::new(RefCell::new(mem));
        let ata = Ata::new(Box::new(Shared(disk.clone())), IrqLine::isa(IRQ));
        Rig {
            ata,
            t: TestCtx::default(),
            disk,
        }
    }

    fn outb(&mut self, port: u16, value: u8) {
        self.ata.pio_write(port, 1, value as u32, &mut self.t.ctx());
    }
    fn inb(&mut self, port: u16) -> u8 {
        self.ata.pio_read(port, 1, &mut self.t.ctx()) as u8
    }
    fn inw(&mut self) -> u16 {
        self.ata.pio_read(DATA, 2, &mut self.t.ctx()) as u16
    }
    fn outw(&mut self, value: u16) {
        self.ata.pio_write(DATA, 2, value as u32, &mut self.t.ctx());
    }
    fn status(&mut self) -> u8 {
        self.inb(CMD)
    }
    fn alt(&mut self) -> u8 {
        self.inb(ALT)
    }
    fn line_high(&self) -> bool {
        self.t.irq.is_high(IrqLine::isa(IRQ))
    }
    /// Did the line see a rising edge since the last call?
    fn edge(&mut self) -> bool {
        self.t.irq.take_edges() & (1 << IRQ) != 0
    }

    fn lba28(&mut self, command: u8, lba: u32, count: u8) {
        self.outb(DEVICE, 0xE0 | (lba >> 24) as u8 & 0x0F);
        self.outb(COUNT, count);
        self.outb(LBA_LOW, lba as u8);
        self.outb(LBA_MID, (lba >> 8) as u8);
        self.outb(LBA_HIGH, (lba >> 16) as u8);
        self.outb(CMD, command);
    }

    /// The 48-bit sequence: the high-order bytes first, then the low ones, then the command.
    fn lba48(&mut self, command: u8, lba: u64, count: u16) {
        self.outb(DEVICE, 0x40);
        for (port, shift) in [(LBA_LOW, 24), (LBA_MID, 32), (LBA_HIGH, 40)] {
            self.outb(port, (lba >> shift) as u8);
        }
        self.outb(COUNT, (count >> 8) as u8);
        self.outb(COUNT, count as u8);
        for (port, shift) in [(LBA_LOW, 0), (LBA_MID, 8), (LBA_HIGH, 16)] {
            self.outb(port, (lba >> shift) as u8);
        }
        self.outb(CMD, command);
    }

    fn command(&mut self, command: u8) {
        self.outb(CMD, command);
    }

    fn read_block(&mut self, bytes: usize) -> Vec<u8> {
        (0..bytes / 2)
            .flat_map(|_| self.inw().to_le_bytes())
            .collect()
    }

    fn write_block(&mut self, data: &[u8]) {
        for pair in data.chunks(2) {
            self.outw(u16::from_le_bytes([pair[0], pair[1]]));
        }
    }

    fn identify(&mut self) -> [u16; 256] {
        self.command(0xEC);
        assert_eq!(self.status(), READY_DRQ);
        let mut w = [0u16; 256];
        for x in &mut w {
            *x = self.inw();
        }
        assert_eq!(self.status(), READY, "DRQ drops after the 256th word");
        w
    }
}

/// Decodes an ATA string (first character in each word's high byte).
fn ata_string(words: &[u16]) -> String {
    words
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .map(char::from)
        .collect()
}

#[test]
fn identify_reports_size_features_strings_and_a_valid_checksum() {
    let mut r = Rig::new(2048);
    let w = r.identify();
    assert!(r.edge(), "one interrupt for the IDENTIFY block");
    assert_eq!(w[0], 0x0040, "ATA device");
    assert_eq!(
        (w[1], w[3], w[6]),
        (2, 16, 63),
        "2048 / (16 * 63) cylinders"
    );
    assert_eq!(ata_string(&w[10..20]), format!("{:<20}", "vmscope-mem"));
    assert_eq!(ata_string(&w[27..47]), format!("{:<40}", identify::MODEL));
    assert_eq!(ata_string(&w[23..27]), format!("{:<8}", identify::FIRMWARE));
    assert_eq!(w[47], 0x8000 | MAX_MULTIPLE as u16);
    assert_ne!(w[49] & (1 << 9), 0, "LBA supported");
    assert_eq!(w[49] & (1 << 8), 0, "no DMA");
    assert_eq!(w[59], 0, "multiple mode off at power-on");
    assert_eq!((w[60], w[61]), (2048, 0), "LBA28 capacity");
    assert_eq!(&w[100..104], &[2048, 0, 0, 0], "LBA48 capacity");
    assert_eq!(w[83] & 0xC000, 0x4000, "word 83 valid");
    assert_eq!(
        w[83] & (1 << 10 | 1 << 13 | 1 << 12),
        1 << 10 | 1 << 13 | 1 << 12
    );
    assert_eq!(
        w[86] & (1 << 10 | 1 << 13),
        1 << 10 | 1 << 13,
        "48-bit enabled"
    );
    assert_ne!(w[85] & (1 << 5), 0, "write cache enabled");
    assert_eq!(w[255] & 0xFF, 0xA5);
    let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
    assert!(identify_checksum_ok(&bytes));
    let mut broken = bytes.clone();
    broken[100] ^= 1;
    assert!(!identify_checksum_ok(&broken));
    assert_eq!(r.inw(), 0xFFFF, "no DRQ: the data port reads all ones");

    // The multiple setting and write cache show up in words 59 and 85.
    r.outb(COUNT, 8);
    r.command(0xC6);
    r.outb(0x1F1, 0x82);
    r.command(0xEF);
    let w = r.identify();
    assert_eq!(w[59], 0x0108);
    assert_eq!(w[85] & (1 << 5), 0);
    let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
    assert!(identify_checksum_ok(&bytes), "checksum follows the data");
}

#[test]
fn a_big_disk_caps_the_28_bit_capacity_and_the_chs_cylinders() {
    let info = identify::DriveInfo {
        serial: "x",
        total_sectors: 1 << 30,
        geometry: Geometry::DEFAULT,
        multiple: 0,
        write_cache: true,
    };
    let w = identify::identify_words(&info);
    assert_eq!((w[60], w[61]), (0xFFFF, 0x0FFF));
    assert_eq!(&w[100..104], &[0, 0x4000, 0, 0]);
    assert_eq!(w[1], 16383);
}

#[test]
fn an_lba28_read_delivers_each_sector_with_its_own_interrupt() {
    let mut r = Rig::new(64);
    r.lba28(0x20, 5, 3);
    for s in 5..8 {
        assert!(r.edge(), "interrupt for sector {s}");
        assert!(r.line_high());
        assert_eq!(r.status(), READY_DRQ);
        assert!(!r.line_high(), "the status read acknowledged it");
        assert_eq!(r.read_block(512), sector_data(s));
    }
    assert!(!r.edge(), "no interrupt after the last data-in block");
    assert_eq!(r.status(), READY);
    assert_eq!((r.ata.sectors_read, r.ata.interrupts), (3, 3));
}

#[test]
fn write_sectors_asks_for_each_block_and_reaches_the_backend() {
    let mut r = Rig::new(64);
    r.lba28(0x30, 10, 2);
    assert_eq!(r.alt(), READY_DRQ);
    assert!(!r.edge(), "no interrupt before the first data-out block");
    r.write_block(&[0xAA; 512]);
    assert!(r.edge(), "interrupt: the second block is wanted");
    assert_eq!(r.status(), READY_DRQ);
    assert_eq!(&r.disk.borrow().bytes[10 * 512..11 * 512], &[0xAA; 512][..]);
    r.write_block(&[0xBB; 512]);
    assert!(r.edge(), "completion interrupt");
    assert_eq!(r.status(), READY);
    assert_eq!(&r.disk.borrow().bytes[11 * 512..12 * 512], &[0xBB; 512][..]);
    assert_eq!(
        &r.disk.borrow().bytes[12 * 512..13 * 512],
        &sector_data(12)[..]
    );
    assert_eq!(r.ata.sectors_written, 2);
}

#[test]
fn multiple_commands_move_a_block_per_interrupt() {
    let mut r = Rig::new(64);
    r.lba28(0xC5, 0, 1);
    assert_eq!(
        (r.status(), r.inb(ERROR)),
        (READY_ERR, error::ABRT),
        "mode off"
    );

    r.outb(COUNT, 3);
    r.command(0xC6);
    assert_eq!(
        (r.status(), r.inb(ERROR)),
        (READY_ERR, error::ABRT),
        "not a power of two"
    );
    r.outb(COUNT, 4);
    r.command(0xC6);
    assert_eq!(r.status(), READY);
    r.edge();
    let before = r.ata.interrupts;

    let data: Vec<u8> = (0..6 * 512).map(|i| (i / 7) as u8).collect();
    r.lba28(0xC5, 20, 6); // blocks of 4 + 2 sectors
    r.write_block(&data[..3 * 512]);
    assert!(!r.edge(), "nothing happens within a block");
    r.write_block(&data[3 * 512..4 * 512]);
    assert!(r.edge());
    assert_eq!(r.status(), READY_DRQ);
    r.write_block(&data[4 * 512..]);
    assert!(r.edge());
    assert_eq!(r.status(), READY);
    assert_eq!(&r.disk.borrow().bytes[20 * 512..26 * 512], &data[..]);

    r.lba48(0x29, 20, 6);
    assert!(r.edge());
    assert_eq!(r.status(), READY_DRQ);
    let first = r.read_block(4 * 512);
    assert!(r.edge(), "second block");
    assert_eq!(r.status(), READY_DRQ);
    let second = r.read_block(2 * 512);
    assert_eq!(r.status(), READY);
    assert_eq!([first, second].concat(), data);
    assert_eq!(
        r.ata.interrupts - before,
        4,
        "two per command, one per block"
    );
}

#[test]
fn a_sector_count_of_zero_means_256_or_65536() {
    let mut r = Rig::new(300);
    r.lba28(0x20, 0, 0);
    for s in 0..256u64 {
        assert_eq!(r.status(), READY_DRQ, "sector {s}");
        assert_eq!(r.read_block(512)[..8], s.to_le_bytes());
    }
    assert_eq!(r.status(), READY);
    assert_eq!(r.ata.sectors_read, 256);
    r.lba48(0x24, 0, 0); // 65,536 sectors do not fit on 300
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::IDNF));
}

#[test]
fn the_48_bit_address_comes_from_the_hob_bytes() {
    let reg = |cur, prev| Reg { cur, prev };
    assert_eq!(
        lba48(reg(0x11, 0x44), reg(0x22, 0x55), reg(0x33, 0x66)),
        0x6655_4433_2211
    );
    assert_eq!(
        lba28(0x11, 0x22, 0x33, 0xE4),
        0x0433_2211,
        "device bits 7:4 ignored"
    );
    assert_eq!(chs_to_lba(1, 2, 3, 16, 63), Some((16 + 2) * 63 + 2));
    assert_eq!(chs_to_lba(0, 0, 0, 16, 63), None, "sectors count from 1");
    assert_eq!(chs_to_lba(0, 16, 1, 16, 63), None);

    let mut r = Rig::new(64);
    // Only a previous byte set: LBA 2^24 + 5, far past a 64-sector disk.
    r.lba48(0x24, (1 << 24) + 5, 1);
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::IDNF));
    r.lba48(0x24, 1 << 40, 1);
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::IDNF));
    // The same low bytes with the HOB bytes clear: sector 5.
    r.lba48(0x24, 5, 1);
    assert_eq!(r.status(), READY_DRQ);
    assert_eq!(r.read_block(512), sector_data(5));
    // Written through the 48-bit path, read back through the 28-bit one.
    r.lba48(0x34, 40, 2);
    r.write_block(&[0x77; 1024]);
    assert_eq!(r.status(), READY);
    r.lba28(0x20, 41, 1);
    assert_eq!(r.read_block(512), vec![0x77; 512]);

    // Register reads: HOB selects the previous bytes; a register write clears HOB.
    r.outb(LBA_LOW, 0xAB);
    r.outb(LBA_LOW, 0xCD);
    assert_eq!(r.inb(LBA_LOW), 0xCD);
    r.outb(ALT, control::HOB);
    assert_eq!(r.inb(LBA_LOW), 0xAB);
    r.outb(COUNT, 9);
    assert_eq!(r.inb(LBA_LOW), 0xCD, "HOB was cleared by the write");
}

#[test]
fn flush_cache_reaches_the_backend() {
    let mut r = Rig::new(8);
    r.command(0xE7);
    assert!(r.edge());
    assert_eq!(r.status(), READY);
    r.command(0xEA);
    assert!(r.edge());
    assert_eq!((r.disk.borrow().flushes, r.ata.flushes), (2, 2));
    // Write cache off: a write is flushed before it completes.
    r.outb(0x1F1, 0x82);
    r.command(0xEF);
    assert_eq!(r.status(), READY);
    r.lba28(0x30, 0, 1);
    r.write_block(&[3; 512]);
    assert_eq!(r.disk.borrow().flushes, 3);
}

#[test]
fn nien_keeps_the_line_low_and_a_pending_interrupt_shows_when_cleared() {
    let mut r = Rig::new(8);
    r.outb(ALT, control::NIEN);
    r.lba28(0x20, 0, 1);
    assert_eq!(r.alt(), READY_DRQ);
    assert!(!r.edge() && !r.line_high());
    assert_eq!(r.ata.interrupts, 0);
    r.outb(ALT, 0);
    assert!(r.edge() && r.line_high(), "still pending: the line rises");
    r.status();
    assert!(!r.line_high());
}

#[test]
fn a_status_read_acknowledges_and_an_alternate_status_read_does_not() {
    let mut r = Rig::new(8);
    r.command(0xEC);
    assert!(r.line_high());
    assert_eq!(r.alt(), READY_DRQ);
    assert!(r.line_high(), "alternate status has no side effect");
    assert_eq!(r.status(), READY_DRQ);
    assert!(!r.line_high());
    r.edge();
    // Low then high again is a new edge for the PIC.
    r.command(0xE7);
    assert!(r.edge());
}

#[test]
fn software_reset_leaves_the_signature_and_cancels_the_transfer() {
    let mut r = Rig::new(8);
    r.lba28(0x20, 3, 2);
    r.inw();
    r.outb(ALT, control::SRST | control::NIEN);
    assert_eq!(r.alt(), status::BSY);
    assert!(!r.line_high(), "reset drops INTRQ");
    r.command(0xEC);
    r.outb(ALT, 0);
    assert_eq!(
        [COUNT, LBA_LOW, LBA_MID, LBA_HIGH, DEVICE, ERROR].map(|p| r.inb(p)),
        [1, 1, 0, 0, 0, 1]
    );
    assert_eq!(r.status(), READY);
    assert_eq!(r.inw(), 0xFFFF, "the read was cancelled");
    assert!(!r.line_high());
    assert_eq!(
        r.ata.commands, 1,
        "the command written during reset was ignored"
    );
}

#[test]
fn the_data_port_moves_two_words_per_32_bit_access() {
    let mut r = Rig::new(8);
    r.lba28(0x20, 2, 1);
    let dwords: Vec<u8> = (0..128)
        .flat_map(|_| r.ata.pio_read(DATA, 4, &mut r.t.ctx()).to_le_bytes())
        .collect();
    assert_eq!(dwords, sector_data(2));
    assert_eq!(r.status(), READY);
    r.lba28(0x30, 3, 1);
    for i in 0..128u32 {
        r.ata.pio_write(DATA, 4, i * 0x0101_0101, &mut r.t.ctx());
    }
    assert_eq!(r.status(), READY);
    let expect: Vec<u8> = (0..128u32)
        .flat_map(|i| (i * 0x0101_0101).to_le_bytes())
        .collect();
    assert_eq!(&r.disk.borrow().bytes[3 * 512..4 * 512], &expect[..]);
}

#[test]
fn a_wide_register_access_is_split_into_byte_registers() {
    let mut r = Rig::new(8);
    r.ata.pio_write(COUNT, 2, 0x0907, &mut r.t.ctx());
    assert_eq!((r.inb(COUNT), r.inb(LBA_LOW)), (7, 9));
    assert_eq!(r.ata.pio_read(COUNT, 2, &mut r.t.ctx()), 0x0907);
}

#[test]
fn the_absent_slave_reads_status_zero_and_ignores_commands() {
    let mut r = Rig::new(8);
    r.outb(DEVICE, 0xB0);
    assert_eq!((r.status(), r.alt()), (0, 0));
    r.command(0xEC);
    assert!(!r.edge());
    assert_eq!((r.status(), r.inw()), (0, 0xFFFF));
    r.outb(COUNT, 0x55);
    assert_eq!(r.inb(COUNT), 0x55, "the task file is shared");
    assert_eq!(r.ata.commands, 0);
    // A pending master interrupt is not driven while the slave is selected.
    r.outb(DEVICE, 0xA0);
    r.command(0xE7);
    assert!(r.line_high());
    r.outb(DEVICE, 0xB0);
    assert!(!r.line_high());
    r.outb(DEVICE, 0xA0);
    assert!(r.line_high());
    r.status();
    // EXECUTE DEVICE DIAGNOSTIC runs whoever is selected, and selects device 0.
    r.outb(DEVICE, 0xB0);
    r.command(0x90);
    assert_eq!((r.inb(DEVICE), r.inb(ERROR), r.status()), (0, 1, READY));
    assert_eq!(r.ata.commands, 2);
}

#[test]
fn chs_addresses_use_the_current_translation() {
    let mut r = Rig::new(2048);
    let chs = |r: &mut Rig, command, c: u16, h: u8, s: u8| {
        r.outb(DEVICE, 0xA0 | h);
        r.outb(COUNT, 1);
        r.outb(LBA_LOW, s);
        r.outb(LBA_MID, c as u8);
        r.outb(LBA_HIGH, (c >> 8) as u8);
        r.command(command);
    };
    chs(&mut r, 0x20, 1, 2, 3);
    assert_eq!(r.status(), READY_DRQ);
    assert_eq!(r.read_block(512), sector_data((16 + 2) * 63 + 2));
    chs(&mut r, 0x20, 0, 0, 0);
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::IDNF));
    chs(&mut r, 0x20, 2, 0, 1); // only 2 cylinders
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::IDNF));
    // INITIALIZE DEVICE PARAMETERS: 4 heads, 17 sectors per track.
    r.outb(DEVICE, 0xA3);
    r.outb(COUNT, 17);
    r.command(0x91);
    assert_eq!(r.status(), READY);
    chs(&mut r, 0x20, 0, 1, 1);
    assert_eq!(r.read_block(512), sector_data(17));
    let w = r.identify();
    assert_eq!((w[54], w[55], w[56]), (2048 / 68, 4, 17));
}

#[test]
fn power_modes_and_read_verify() {
    let mut r = Rig::new(16);
    let power = |r: &mut Rig| {
        r.command(0xE5);
        r.inb(COUNT)
    };
    assert_eq!(power(&mut r), 0xFF);
    r.command(0xE0);
    assert_eq!(power(&mut r), 0x00);
    r.command(0xE1);
    assert_eq!(power(&mut r), 0x80);
    r.lba28(0x40, 0, 16);
    assert!(r.edge());
    assert_eq!(r.status(), READY, "verify transfers no data");
    assert_eq!(r.ata.sectors_read, 0);
    assert_eq!(power(&mut r), 0xFF, "media access wakes the drive");
    r.lba28(0x40, 10, 7);
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::IDNF));
    r.command(0xE6); // SLEEP: only a reset wakes it
    r.status();
    r.command(0xEC);
    assert_eq!(r.status(), READY);
    r.outb(ALT, control::SRST);
    r.outb(ALT, 0);
    assert_eq!(power(&mut r), 0x00, "standby after the reset");
}

#[test]
fn set_features_accepts_pio_modes_and_refuses_dma() {
    let mut r = Rig::new(8);
    for (mode, ok) in [
        (0x00, true),
        (0x0C, true),
        (0x0D, false),
        (0x22, false),
        (0x45, false),
    ] {
        r.outb(0x1F1, 0x03);
        r.outb(COUNT, mode);
        r.command(0xEF);
        assert_eq!(r.status() & status::ERR == 0, ok, "mode {mode:#x}");
    }
    r.outb(0x1F1, 0x55);
    r.command(0xEF);
    assert_eq!(r.inb(ERROR), error::ABRT);
}

//! Unit tests for what must not go wrong: bad addresses, read-only and failing backends,
//! unknown commands, and random register traffic.

use super::*;

/// A disk whose sector `bad` fails every read and write with a host I/O error.
struct BadSector {
    inner: MemDisk,
    bad: u64,
}

impl BadSector {
    fn hits(&self, offset: u64, len: usize) -> bool {
        let first = offset / 512;
        let last = (offset + len as u64).div_ceil(512);
        (first..last).contains(&self.bad)
    }
}

impl BlockBackend for BadSector {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        if self.hits(offset, buf.len()) {
            return Err(BlockError::Io("bad sector".into()));
        }
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        if self.hits(offset, data.len()) {
            return Err(BlockError::Io("bad sector".into()));
        }
        self.inner.write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        Ok(())
    }
    fn id(&self) -> String {
        "bad".into()
    }
}

#[test]
fn a_write_to_a_read_only_disk_aborts_and_changes_nothing() {
    let mut mem = patterned(16);
    mem.read_only = true;
    let before = mem.bytes.clone();
    let mut r = Rig::with(mem);
    r.lba28(0x30, 1, 1);
    assert!(r.edge());
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::ABRT));
    r.write_block(&[0xEE; 512]);
    r.lba48(0x34, 1, 1);
    r.write_block(&[0xEE; 512]);
    assert_eq!(r.disk.borrow().bytes, before);
    assert_eq!(r.ata.sectors_written, 0);
}

#[test]
fn addresses_past_the_end_are_id_not_found_and_touch_nothing() {
    let mut r = Rig::new(16);
    let before = r.disk.borrow().bytes.clone();
    r.lba28(0x20, 16, 1);
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::IDNF));
    assert_eq!(r.inw(), 0xFFFF);
    r.lba28(0x30, 15, 2); // straddles the end
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::IDNF));
    r.write_block(&[1; 1024]);
    r.lba48(0x34, u64::MAX >> 16, 1);
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::IDNF));
    r.write_block(&[1; 512]);
    assert_eq!(r.disk.borrow().bytes, before);
    assert_eq!(r.disk.borrow().bytes.len(), 16 * 512);
    r.lba28(0x20, 15, 1); // the last sector is fine
    assert_eq!(r.status(), READY_DRQ);
    assert_eq!(r.read_block(512), sector_data(15));
}

#[test]
fn unknown_commands_abort() {
    let mut r = Rig::new(8);
    for command in [0x00, 0xA1, 0xC8, 0xFF] {
        r.command(command);
        assert!(r.edge(), "{command:#x}");
        assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::ABRT));
    }
    r.command(0x10); // RECALIBRATE
    assert_eq!((r.status(), r.inb(ERROR)), (READY, 0));
    assert_eq!(r.ata.commands, 5);
}

#[test]
fn backend_errors_are_unc_for_reads_and_abrt_for_writes() {
    let inner = patterned(16);
    let mut ata = Ata::new(Box::new(BadSector { inner, bad: 6 }), IrqLine::isa(IRQ));
    let mut r = Rig::new(1);
    std::mem::swap(&mut r.ata, &mut ata);
    r.lba28(0x20, 5, 3);
    assert_eq!(r.status(), READY_DRQ);
    assert_eq!(r.read_block(512), sector_data(5));
    assert!(r.edge());
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::UNC));
    assert_eq!(r.inb(LBA_LOW), 6, "the failing sector is reported");
    r.lba28(0x30, 6, 1);
    r.write_block(&[0; 512]);
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::ABRT));
    r.lba28(0x40, 4, 4); // READ VERIFY across the bad sector
    assert_eq!((r.status(), r.inb(ERROR)), (READY_ERR, error::UNC));
}

/// A small xorshift generator: the same sequence every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Thousands of random accesses, biased towards what drivers do: now and then a well-formed
/// command on a small address, the data port half of the time, else any register and value.
fn fuzz(r: &mut Rig, seed: u64, steps: usize) {
    let commands = [
        0x20, 0x21, 0x24, 0x29, 0x30, 0x31, 0x34, 0x39, 0x40, 0x42, 0x90, 0x91, 0xC4, 0xC5, 0xC6,
        0xE0, 0xE1, 0xE5, 0xE6, 0xE7, 0xEA, 0xEC, 0xEF, 0x10, 0x00, 0xFF,
    ];
    let ports = [ERROR, COUNT, LBA_LOW, LBA_MID, LBA_HIGH, DEVICE, CMD, ALT];
    let mut rng = XorShift(seed);
    for _ in 0..steps {
        let x = rng.next();
        let pick = |list: &[u8], bits: u64| list[(bits % list.len() as u64) as usize];
        match x & 15 {
            0 => {
                // A whole command: small count and address, the LBA28 or LBA48 sequence.
                let count = (x >> 8) as u8 & 0x0F;
                let lba = (x >> 16) as u8 & 0x3F;
                r.outb(DEVICE, if x >> 24 & 1 == 0 { 0xE0 } else { 0xA0 });
                for (port, value) in [(COUNT, 0), (LBA_LOW, 0), (LBA_MID, 0), (LBA_HIGH, 0)] {
                    r.outb(port, value);
                }
                for (port, value) in [(COUNT, count), (LBA_LOW, lba), (LBA_MID, 0), (LBA_HIGH, 0)] {
                    r.outb(port, value);
                }
                r.outb(CMD, pick(&commands, x >> 32));
            }
            1..=6 => {
                // A burst on the data port, as a driver's REP INSW/OUTSW.
                let size = [2, 4, 2, 1][(x >> 8 & 3) as usize];
                for i in 0..(x >> 12) % 300 {
                    if x >> 10 & 1 == 0 {
                        r.ata.pio_read(DATA, size, &mut r.t.ctx());
                    } else {
                        r.ata
                            .pio_write(DATA, size, (x >> 32) as u32 ^ i as u32, &mut r.t.ctx());
                    }
                }
            }
            _ => {
                let port = ports[(x >> 8 & 7) as usize];
                let size = [1, 1, 1, 1, 1, 1, 2, 4][(x >> 11 & 7) as usize];
                let value = match port {
                    CMD if x >> 14 & 3 != 0 => pick(&commands, x >> 16),
                    ALT if x >> 14 & 3 != 0 => 0,
                    _ => (x >> 24) as u8,
                } as u32
                    | ((x >> 32) as u32 & 0xFFFF_FF00);
                if x >> 40 & 1 == 0 {
                    r.ata.pio_read(port, size, &mut r.t.ctx());
                } else {
                    r.ata.pio_write(port, size, value, &mut r.t.ctx());
                }
            }
        }
        // Without DRQ on the selected master, the data port reads all ones.
        let alt = r.alt();
        if r.inb(DEVICE) & 0x10 == 0 && alt & status::DRQ == 0 {
            assert_eq!(r.inw(), 0xFFFF);
        }
    }
}

#[test]
fn random_register_traffic_never_panics_nor_resizes_the_disk() {
    let mut r = Rig::new(40);
    fuzz(&mut r, 0x2545_F491_4F6C_DD1D, 20_000);
    assert_eq!(r.disk.borrow().bytes.len(), 40 * 512);
    let a = &r.ata;
    assert!(a.commands > 1000, "the traffic reached the command set");
    assert!(
        a.sectors_read > 0 && a.sectors_written > 0,
        "and moved sectors"
    );

    let mut mem = patterned(40);
    mem.read_only = true;
    let before = mem.bytes.clone();
    let mut r = Rig::with(mem);
    fuzz(&mut r, 0x9E37_79B9_7F4A_7C15, 20_000);
    assert_eq!(r.disk.borrow().bytes, before);
    assert_eq!(r.ata.sectors_written, 0);
    assert!(r.ata.sectors_read > 0);
}

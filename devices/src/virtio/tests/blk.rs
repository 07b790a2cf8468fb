//! virtio-blk round trips through the mmio transport, against an in-memory disk.
//! Teaches: the request format (header, data, status) and the cases the device must refuse without touching the disk.

use std::cell::RefCell;
use std::rc::Rc;

use super::*;
use crate::block::MemDisk;
use crate::virtio::blk::*;

pub use crate::block::SharedMemDisk as SharedDisk;

pub const SECTORS: usize = 64;
pub const HDR: u64 = DATA;
pub const OUT: u64 = DATA + 0x1000;
pub const IN: u64 = DATA + 0x20000;
pub const STATUS: u64 = 0xFF000;

/// A 32 KiB disk whose byte i is (i * 7 + i / 512) as u8, shared with the test.
pub fn disk(read_only: bool) -> SharedDisk {
    let bytes = (0..SECTORS * 512)
        .map(|i| (i * 7 + i / 512) as u8)
        .collect();
    let mut d = MemDisk::new(bytes);
    d.read_only = read_only;
    SharedDisk(Rc::new(RefCell::new(d)))
}

/// A driver with virtio-blk over `disk` up, accepting everything offered.
pub fn blk_up(disk: &SharedDisk) -> Driver {
    let mut d = Driver::new(Box::new(VirtioBlk::new(Box::new(disk.clone()))));
    let all = d.offered();
    assert!(d.negotiate(all));
    d.setup_queue(0, 16);
    d.driver_ok();
    d
}

pub fn header(kind: u32, sector: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&kind.to_le_bytes());
    h[8..16].copy_from_slice(&sector.to_le_bytes());
    h
}

/// One request the way Linux's virtio_blk lays it out; returns (status, used len, IN data).
pub fn request(
    d: &mut Driver,
    kind: u32,
    sector: u64,
    out: &[u8],
    in_len: u32,
) -> (u8, u32, Vec<u8>) {
    d.put(HDR, &header(kind, sector));
    d.put(OUT, out);
    d.put(STATUS, &[0xEE]);
    let mut bufs = vec![(HDR, 16, false)];
    if !out.is_empty() {
        bufs.push((OUT, out.len() as u32, false));
    }
    if in_len > 0 {
        bufs.push((IN, in_len, true));
    }
    bufs.push((STATUS, 1, true));
    submit(d, &bufs)
}

/// Publishes `bufs` as one chain, notifies, and returns (status, used len, IN data).
pub fn submit(d: &mut Driver, bufs: &[(u64, u32, bool)]) -> (u8, u32, Vec<u8>) {
    let head = d.add_chain(0, bufs);
    d.publish(0, head);
    finish(d, head)
}

pub fn finish(d: &mut Driver, head: u16) -> (u8, u32, Vec<u8>) {
    let before = d.used_idx(0);
    d.notify(0);
    assert_eq!(
        d.used_idx(0),
        before.wrapping_add(1),
        "one request completed"
    );
    let (id, len) = d.used_elem(0, before);
    assert_eq!(id, u32::from(head));
    let in_len = len.saturating_sub(1) as usize;
    (d.get(STATUS, 1)[0], len, d.get(IN, in_len))
}

pub fn contents(disk: &SharedDisk) -> Vec<u8> {
    disk.0.borrow().bytes.clone()
}

#[test]
fn config_space_and_features_describe_the_disk() {
    let disk = disk(false);
    let mut d = Driver::new(Box::new(VirtioBlk::new(Box::new(disk.clone()))));
    assert_eq!(d.read(REG_DEVICE_ID), DEVICE_ID_BLOCK);
    let f = d.offered();
    for bit in [
        VIRTIO_BLK_F_SEG_MAX,
        VIRTIO_BLK_F_BLK_SIZE,
        VIRTIO_BLK_F_FLUSH,
    ] {
        assert_ne!(f & 1 << bit, 0, "bit {bit} offered");
    }
    assert_eq!(f & 1 << VIRTIO_BLK_F_RO, 0);
    let cap = u64::from(d.read(REG_CONFIG)) | u64::from(d.read(REG_CONFIG + 4)) << 32;
    assert_eq!(cap, SECTORS as u64);
    assert_eq!(d.read(REG_CONFIG + 12), SEG_MAX);
    assert_eq!(d.read(REG_CONFIG + 20), 512);
    // Byte-wide config access works too (the spec allows any width there).
    assert_eq!(
        d.dev.mmio_read(REG_CONFIG, 1, &mut d.t.ctx()),
        SECTORS as u64
    );
    let ro = disk_ro_offer();
    assert_ne!(ro & 1 << VIRTIO_BLK_F_RO, 0);
}

fn disk_ro_offer() -> u64 {
    let mut d = Driver::new(Box::new(VirtioBlk::new(Box::new(disk(true)))));
    d.offered()
}

#[test]
fn read_write_flush_and_get_id_round_trip() {
    let disk = disk(false);
    let mut d = blk_up(&disk);
    let original = contents(&disk);

    let (status, len, data) = request(&mut d, VIRTIO_BLK_T_IN, 2, &[], 1024);
    assert_eq!((status, len), (VIRTIO_BLK_S_OK, 1025));
    assert_eq!(data, original[1024..2048]);

    let pattern: Vec<u8> = (0..1536).map(|i| (i % 251) as u8).collect();
    let (status, len, _) = request(&mut d, VIRTIO_BLK_T_OUT, 5, &pattern, 0);
    assert_eq!((status, len), (VIRTIO_BLK_S_OK, 1));
    // The write reached the backend before the request completed.
    assert_eq!(contents(&disk)[5 * 512..8 * 512], pattern[..]);
    assert_eq!(contents(&disk)[..5 * 512], original[..5 * 512]);

    let (status, _, data) = request(&mut d, VIRTIO_BLK_T_IN, 5, &[], 1536);
    assert_eq!((status, data), (VIRTIO_BLK_S_OK, pattern.clone()));

    let (status, _, _) = request(&mut d, VIRTIO_BLK_T_FLUSH, 0, &[], 0);
    assert_eq!(status, VIRTIO_BLK_S_OK);
    assert_eq!(disk.0.borrow().flushes, 1, "FLUSH reached the backend");

    let (status, len, id) = request(&mut d, VIRTIO_BLK_T_GET_ID, 0, &[], 20);
    assert_eq!((status, len), (VIRTIO_BLK_S_OK, 21));
    assert_eq!(&id[..11], b"vmscope-mem");
    assert!(id[11..].iter().all(|&b| b == 0), "NUL-padded");

    let (status, _, _) = request(&mut d, 0x1234, 0, &[], 0);
    assert_eq!(status, VIRTIO_BLK_S_UNSUPP);
    let stats = d.dev.stats().clone();
    assert_eq!(stats.requests, 6);
    assert_eq!(d.dev.device_as::<VirtioBlk>().unwrap().stats().writes, 1);
}

#[test]
fn data_split_over_many_descriptors_is_one_buffer() {
    let disk = disk(false);
    let mut d = blk_up(&disk);
    d.put(HDR, &header(VIRTIO_BLK_T_IN, 1));
    // 1024 bytes as 3 + 509 + 512: the framing is independent of the content (2.7.4).
    let bufs = [
        (HDR, 16, false),
        (IN, 3, true),
        (IN + 0x100, 509, true),
        (IN + 0x400, 512, true),
        (STATUS, 1, true),
    ];
    let (status, len, _) = submit(&mut d, &bufs);
    assert_eq!((status, len), (VIRTIO_BLK_S_OK, 1025));
    let c = contents(&disk);
    assert_eq!(d.get(IN, 3), c[512..515]);
    assert_eq!(d.get(IN + 0x100, 509), c[515..1024]);
    assert_eq!(d.get(IN + 0x400, 512), c[1024..1536]);
    // The header may also be split, and share a descriptor with the OUT data.
    let mut out = header(VIRTIO_BLK_T_OUT, 0).to_vec();
    out.extend(std::iter::repeat_n(0xAB, 512));
    d.put(OUT, &out);
    let (status, _, _) = submit(
        &mut d,
        &[(OUT, 10, false), (OUT + 10, 518, false), (STATUS, 1, true)],
    );
    assert_eq!(status, VIRTIO_BLK_S_OK);
    assert!(contents(&disk)[..512].iter().all(|&b| b == 0xAB));
}

#[test]
fn read_only_disk_refuses_writes_and_keeps_its_bytes() {
    let disk = disk(true);
    let mut d = blk_up(&disk);
    let before = contents(&disk);
    let (status, len, _) = request(&mut d, VIRTIO_BLK_T_OUT, 0, &[0x55; 512], 0);
    assert_eq!((status, len), (VIRTIO_BLK_S_IOERR, 1));
    assert_eq!(contents(&disk), before);
    let (status, _, data) = request(&mut d, VIRTIO_BLK_T_IN, 0, &[], 512);
    assert_eq!((status, data), (VIRTIO_BLK_S_OK, before[..512].to_vec()));
}

#[test]
fn requests_past_the_end_or_malformed_get_ioerr_and_touch_nothing() {
    let disk = disk(false);
    let mut d = blk_up(&disk);
    let before = contents(&disk);
    let n = SECTORS as u64;
    let cases: &[(&str, u32, u64, usize, u32)] = &[
        ("read past the end", VIRTIO_BLK_T_IN, n, 0, 512),
        ("read straddling the end", VIRTIO_BLK_T_IN, n - 1, 0, 1024),
        ("write past the end", VIRTIO_BLK_T_OUT, n, 512, 0),
        ("write straddling the end", VIRTIO_BLK_T_OUT, n - 1, 1024, 0),
        (
            "sector * 512 overflows",
            VIRTIO_BLK_T_OUT,
            u64::MAX / 256,
            512,
            0,
        ),
        ("read of half a sector", VIRTIO_BLK_T_IN, 0, 0, 256),
        ("write of half a sector", VIRTIO_BLK_T_OUT, 0, 256, 0),
        ("IN with device-readable data", VIRTIO_BLK_T_IN, 0, 512, 0),
        ("OUT with device-writable data", VIRTIO_BLK_T_OUT, 0, 0, 512),
    ];
    for &(what, kind, sector, out, in_len) in cases {
        d.put(IN, &[0xCC; 1024]);
        let (status, len, _) = request(&mut d, kind, sector, &vec![0x77; out], in_len);
        assert_eq!((status, len), (VIRTIO_BLK_S_IOERR, 1), "{what}");
        assert_eq!(contents(&disk), before, "{what}: disk unchanged");
        assert!(
            d.get(IN, 1024).iter().all(|&b| b == 0xCC),
            "{what}: IN buffer untouched"
        );
    }
    // A header shorter than 16 bytes: IOERR, written into the status byte we were given.
    d.put(HDR, &header(VIRTIO_BLK_T_OUT, 0));
    let (status, _, _) = submit(&mut d, &[(HDR, 15, false), (STATUS, 1, true)]);
    assert_eq!(status, VIRTIO_BLK_S_IOERR);
    // A zero-length header descriptor: the header is missing, still an answerable request.
    let (status, _, _) = submit(&mut d, &[(HDR, 0, false), (STATUS, 1, true)]);
    assert_eq!(status, VIRTIO_BLK_S_IOERR);
    assert_eq!(contents(&disk), before);
    assert_eq!(
        d.status() & STATUS_NEEDS_RESET,
        0,
        "all answered, none fatal"
    );
}

#[test]
fn indirect_descriptors_carry_a_whole_request() {
    let disk = disk(false);
    let mut d = blk_up(&disk);
    let table = DATA + 0x10000;
    d.put(HDR, &header(VIRTIO_BLK_T_IN, 3));
    let head = d.add_indirect(
        0,
        table,
        &[(HDR, 16, false), (IN, 512, true), (STATUS, 1, true)],
    );
    d.publish(0, head);
    let (status, len, data) = finish(&mut d, head);
    assert_eq!((status, len), (VIRTIO_BLK_S_OK, 513));
    assert_eq!(data, contents(&disk)[3 * 512..4 * 512]);

    // Direct descriptors followed by one indirect one: valid too (2.7.5.3.2).
    d.put(HDR, &header(VIRTIO_BLK_T_OUT, 7));
    d.put(OUT, &[0x3C; 512]);
    d.put_desc(table, 0, OUT, 512, VIRTQ_DESC_F_NEXT, 1);
    d.put_desc(table, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    let i = d.add_chain(0, &[(HDR, 16, false)]);
    let j = d.add_chain(0, &[(0, 0, false)]);
    d.put_desc(d.q[0].desc, i, HDR, 16, VIRTQ_DESC_F_NEXT, j);
    d.put_desc(d.q[0].desc, j, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
    d.publish(0, i);
    let (status, _, _) = finish(&mut d, i);
    assert_eq!(status, VIRTIO_BLK_S_OK);
    assert!(contents(&disk)[7 * 512..8 * 512].iter().all(|&b| b == 0x3C));
}

#[test]
fn many_requests_in_one_notification_and_the_ring_wraps() {
    let disk = disk(false);
    let mut d = blk_up(&disk);
    // 16-entry queue, 3 descriptors per request: 40 rounds of 5 requests wrap both rings
    // and the descriptor allocator many times.
    for round in 0..40u64 {
        let first = d.used_idx(0);
        for k in 0..5u64 {
            let hdr = HDR + 0x20 * k;
            let st = STATUS + k;
            d.put(hdr, &header(VIRTIO_BLK_T_IN, (round + k) % SECTORS as u64));
            let head = d.add_chain(
                0,
                &[(hdr, 16, false), (IN + 0x200 * k, 512, true), (st, 1, true)],
            );
            d.publish(0, head);
        }
        d.notify(0);
        assert_eq!(d.used_idx(0), first.wrapping_add(5));
        for k in 0..5u64 {
            assert_eq!(d.get(STATUS + k, 1)[0], VIRTIO_BLK_S_OK);
            let s = ((round + k) % SECTORS as u64) as usize * 512;
            assert_eq!(d.get(IN + 0x200 * k, 512), contents(&disk)[s..s + 512]);
        }
    }
    assert_eq!(d.dev.stats().requests, 200);
}

#[test]
fn the_line_is_high_while_interrupt_status_is_set() {
    let disk = disk(false);
    let mut d = blk_up(&disk);
    assert!(!d.irq_high());
    request(&mut d, VIRTIO_BLK_T_IN, 0, &[], 512);
    assert!(d.irq_high());
    assert_eq!(d.read(REG_INTERRUPT_STATUS), u32::from(ISR_QUEUE));
    assert_eq!(d.handle_irq(), u32::from(ISR_QUEUE));
    assert!(!d.irq_high(), "dropped on InterruptACK");
    assert_eq!(d.dev.stats().interrupts, 1);
}

#[test]
fn without_negotiated_flush_every_write_is_flushed_before_it_completes() {
    let disk = disk(false);
    let mut d = Driver::new(Box::new(VirtioBlk::new(Box::new(disk.clone()))));
    let offer = d.offered();
    assert!(d.negotiate(offer & !(1 << VIRTIO_BLK_F_FLUSH)));
    d.setup_queue(0, 16);
    d.driver_ok();
    request(&mut d, VIRTIO_BLK_T_OUT, 0, &[1; 512], 0);
    request(&mut d, VIRTIO_BLK_T_OUT, 1, &[2; 512], 0);
    assert_eq!(
        disk.0.borrow().flushes,
        2,
        "write-through: stable at completion"
    );
    // With FLUSH negotiated, writes are flushed only when asked.
    let mut d = blk_up(&disk);
    request(&mut d, VIRTIO_BLK_T_OUT, 0, &[3; 512], 0);
    assert_eq!(disk.0.borrow().flushes, 2);
}

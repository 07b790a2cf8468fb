//! Broken rings: each must end in DEVICE_NEEDS_RESET with the disk and the rest of RAM untouched.
//! Teaches: the checks a device owes the host against a guest that lies in its descriptors.

use super::blk::*;
use super::*;
use crate::virtio::blk::*;

/// Runs `setup` (which publishes one bad chain) against a fresh blk device, notifies, and
/// checks the device broke cleanly; returns the error it reported.
fn broken(accept_all: bool, setup: impl FnOnce(&mut Driver)) -> QueueError {
    let disk = disk(false);
    let mut d = Driver::new(Box::new(VirtioBlk::new(Box::new(disk.clone()))));
    let offer = d.offered();
    let accept = if accept_all { offer } else { offer & !INDIRECT };
    assert!(d.negotiate(accept));
    d.setup_queue(0, 16);
    d.driver_ok();
    d.put(HDR, &header(VIRTIO_BLK_T_OUT, 0));
    d.put(OUT, &[0x99; 512]);
    setup(&mut d);
    let disk_before = contents(&disk);
    let ram_before = d.t.ram.clone();
    d.t.dma_writes.clear();
    d.notify(0);

    let what = format!("{:?}", d.dev.core().last_error());
    assert_ne!(
        d.status() & STATUS_NEEDS_RESET,
        0,
        "{what}: NEEDS_RESET set"
    );
    assert_eq!(
        d.read(REG_INTERRUPT_STATUS),
        u32::from(ISR_CONFIG),
        "{what}: config change"
    );
    assert!(d.irq_high(), "{what}: the driver is told");
    assert_eq!(d.used_idx(0), 0, "{what}: nothing completed");
    assert_eq!(contents(&disk), disk_before, "{what}: disk unchanged");
    let used = d.used_ring(0);
    for w in &d.t.dma_writes {
        assert!(
            used.start <= w.addr && w.addr + w.len <= used.end,
            "{what}: write {w:?}"
        );
    }
    for (i, (a, b)) in d.t.ram.iter().zip(&ram_before).enumerate() {
        assert!(
            a == b || used.contains(&(i as u64)),
            "{what}: RAM changed at {i:#x}"
        );
    }
    assert_eq!(d.dev.stats().queue_errors, 1);

    // A broken device ignores further notifications, even valid requests, until reset.
    d.handle_irq();
    let ignored = d.dev.stats().notifications_ignored;
    let head = d.add_chain(0, &[(HDR, 16, false), (OUT, 512, false), (STATUS, 1, true)]);
    d.publish(0, head);
    d.notify(0);
    assert_eq!(d.dev.stats().notifications_ignored, ignored + 1);
    assert_eq!(contents(&disk), disk_before);
    let err = d
        .dev
        .core()
        .last_error()
        .cloned()
        .expect("an error was recorded");

    // Reset and set up again: the device works.
    assert!(d.negotiate(accept));
    assert_eq!(
        d.status() & STATUS_NEEDS_RESET,
        0,
        "reset clears NEEDS_RESET"
    );
    d.setup_queue(0, 16);
    d.driver_ok();
    let (status, _, _) = request(&mut d, VIRTIO_BLK_T_OUT, 1, &[0x42; 512], 0);
    assert_eq!(status, VIRTIO_BLK_S_OK);
    assert!(contents(&disk)[512..1024].iter().all(|&b| b == 0x42));
    err
}

/// Publishes a chain whose descriptors the test writes itself: (index, addr, len, flags, next).
fn raw(d: &mut Driver, head: u16, descs: &[(u16, u64, u32, u16, u16)]) {
    let table = d.q[0].desc;
    for &(i, addr, len, flags, next) in descs {
        d.put_desc(table, i, addr, len, flags, next);
    }
    d.publish(0, head);
}

const N: u16 = VIRTQ_DESC_F_NEXT;
const W: u16 = VIRTQ_DESC_F_WRITE;
const I: u16 = VIRTQ_DESC_F_INDIRECT;

#[test]
fn a_looping_chain_is_refused() {
    let e = broken(true, |d| {
        raw(d, 0, &[(0, HDR, 16, N, 1), (1, OUT, 512, N, 0)])
    });
    assert_eq!(e, QueueError::ChainTooLong { limit: 16 });
    let e = broken(true, |d| raw(d, 5, &[(5, OUT, 512, N, 5)]));
    assert_eq!(e, QueueError::ChainTooLong { limit: 16 });
}

#[test]
fn descriptor_indices_outside_the_table_are_refused() {
    let e = broken(true, |d| raw(d, 0, &[(0, HDR, 16, N, 16)]));
    assert_eq!(
        e,
        QueueError::DescIndexOutOfRange {
            index: 16,
            size: 16
        }
    );
    // A head index in the available ring past the table.
    let e = broken(true, |d| raw(d, 200, &[]));
    assert_eq!(
        e,
        QueueError::DescIndexOutOfRange {
            index: 200,
            size: 16
        }
    );
    // In an indirect table of 2 entries, `next` 2 is outside it.
    let e = broken(true, |d| {
        let t = DATA + 0x10000;
        d.put_desc(t, 0, HDR, 16, N, 2);
        raw(d, 0, &[(0, t, 32, I, 0)]);
    });
    assert_eq!(e, QueueError::DescIndexOutOfRange { index: 2, size: 2 });
}

#[test]
fn a_loop_inside_an_indirect_table_is_refused() {
    let e = broken(true, |d| {
        let t = DATA + 0x10000;
        for k in 0..4u16 {
            d.put_desc(t, k, HDR, 16, N, (k + 1) % 4);
        }
        raw(d, 0, &[(0, t, 64, I, 0)]);
    });
    assert_eq!(e, QueueError::ChainTooLong { limit: 4 });
}

#[test]
fn addresses_outside_ram_are_refused() {
    let ram = RAM_SIZE as u64;
    for (addr, len) in [(ram - 8, 16), (ram, 1), (u64::MAX - 3, 8), (u64::MAX, 1)] {
        let e = broken(true, |d| {
            raw(d, 0, &[(0, HDR, 16, N, 1), (1, addr, len, W, 0)])
        });
        assert!(matches!(e, QueueError::Dma(_)), "{addr:#x}+{len}: {e:?}");
    }
    // An indirect table outside RAM.
    let e = broken(true, |d| raw(d, 0, &[(0, ram - 16, 32, I, 0)]));
    assert!(matches!(e, QueueError::Dma(_)), "{e:?}");
}

#[test]
fn rings_outside_ram_are_refused() {
    for area in [
        REG_QUEUE_DESC_LOW,
        REG_QUEUE_DRIVER_LOW,
        REG_QUEUE_DEVICE_LOW,
    ] {
        let disk = disk(false);
        let mut d = blk_up(&disk);
        // Set queue 0 up again by hand with one area moved above 4 GiB, past RAM.
        d.write(REG_STATUS, 0);
        let offer = d.offered();
        assert!(d.negotiate(offer));
        d.write(REG_QUEUE_SEL, 0);
        d.write(REG_QUEUE_NUM, 16);
        d.write(REG_QUEUE_DESC_LOW, d.q[0].desc as u32);
        d.write(REG_QUEUE_DRIVER_LOW, d.q[0].avail as u32);
        d.write(REG_QUEUE_DEVICE_LOW, d.q[0].used as u32);
        d.write(area + 4, 1); // high half: the area is now above 4 GiB
        d.write(REG_QUEUE_READY, 1);
        d.driver_ok();
        d.put(HDR, &header(VIRTIO_BLK_T_IN, 0));
        let head = d.add_chain(0, &[(HDR, 16, false), (IN, 512, true), (STATUS, 1, true)]);
        d.publish(0, head);
        let before = contents(&disk);
        d.notify(0);
        assert_ne!(d.status() & STATUS_NEEDS_RESET, 0, "area {area:#x}");
        assert!(matches!(
            d.dev.core().last_error(),
            Some(QueueError::Dma(_))
        ));
        assert_eq!(contents(&disk), before);
    }
}

#[test]
fn a_readable_descriptor_after_a_writable_one_is_refused() {
    let e = broken(true, |d| {
        raw(d, 0, &[(0, STATUS, 1, W | N, 1), (1, HDR, 16, 0, 0)])
    });
    assert_eq!(e, QueueError::ReadableAfterWritable);
    // Also across the step into an indirect table.
    let e = broken(true, |d| {
        let t = DATA + 0x10000;
        d.put_desc(t, 0, OUT, 512, 0, 0);
        raw(d, 0, &[(0, STATUS, 1, W | N, 1), (1, t, 16, I, 0)]);
    });
    assert_eq!(e, QueueError::ReadableAfterWritable);
}

#[test]
fn a_request_without_room_for_its_status_is_refused() {
    let e = broken(true, |d| {
        raw(d, 0, &[(0, HDR, 16, N, 1), (1, OUT, 512, 0, 0)])
    });
    assert!(matches!(e, QueueError::BadRequest(_)));
    // A zero-length "status" descriptor is no status byte either.
    let e = broken(true, |d| {
        raw(d, 0, &[(0, HDR, 16, N, 1), (1, STATUS, 0, W, 0)])
    });
    assert!(matches!(e, QueueError::BadRequest(_)));
}

#[test]
fn bad_indirect_tables_are_refused() {
    let t = DATA + 0x10000;
    let e = broken(true, |d| raw(d, 0, &[(0, t, 0, I, 0)]));
    assert_eq!(e, QueueError::BadIndirectTable { len: 0 });
    let e = broken(true, |d| raw(d, 0, &[(0, t, 24, I, 0)]));
    assert_eq!(e, QueueError::BadIndirectTable { len: 24 });
    let e = broken(true, |d| {
        raw(d, 0, &[(0, t, 16, I | N, 1), (1, STATUS, 1, W, 0)])
    });
    assert_eq!(e, QueueError::IndirectWithNext);
    let e = broken(true, |d| {
        d.put_desc(t, 0, t + 0x100, 16, I, 0);
        raw(d, 0, &[(0, t, 16, I, 0)]);
    });
    assert_eq!(e, QueueError::NestedIndirect);
    // Not negotiated: the driver did not accept VIRTIO_F_INDIRECT_DESC.
    let e = broken(false, |d| {
        d.put_desc(t, 0, HDR, 16, N, 1);
        d.put_desc(t, 1, STATUS, 1, W, 0);
        raw(d, 0, &[(0, t, 32, I, 0)]);
    });
    assert_eq!(e, QueueError::IndirectNotNegotiated);
}

#[test]
fn huge_lengths_are_refused() {
    // One 2 GiB buffer: past the 64 MiB cap (checked before RAM, so no 2 GiB copy either).
    let e = broken(true, |d| {
        raw(d, 0, &[(0, HDR, 16, N, 1), (1, 0, 0x8000_0000, W, 0)])
    });
    assert!(matches!(e, QueueError::ChainTooLarge { .. }), "{e:?}");
    // Lengths whose sum overflows u32.
    let e = broken(true, |d| {
        raw(d, 0, &[(0, 0, u32::MAX, N, 1), (1, 0, u32::MAX, W, 0)]);
    });
    assert!(matches!(e, QueueError::ChainTooLarge { .. }), "{e:?}");
}

#[test]
fn an_available_index_too_far_ahead_is_refused() {
    let e = broken(true, |d| {
        raw(d, 0, &[(0, HDR, 16, N, 1), (1, STATUS, 1, W, 0)]);
        let avail = d.q[0].avail;
        d.put_u16(avail + 2, 17); // 17 entries in a 16-entry ring
    });
    assert_eq!(e, QueueError::AvailIndexJump { avail: 17, next: 0 });
}

//! Used buffer notification suppression: EVENT_IDX's used_event, and the older NO_INTERRUPT flag.
//! Teaches: how a driver batches completions — the device interrupts only when the used index passes the mark the driver set.

use super::blk::*;
use super::*;
use crate::virtio::blk::*;
use crate::virtio::queue::{vring_need_event, VIRTQ_AVAIL_F_NO_INTERRUPT};

fn up(accept_event_idx: bool) -> Driver {
    let disk = disk(false);
    let mut d = Driver::new(Box::new(VirtioBlk::new(Box::new(disk))));
    let offer = d.offered();
    let accept = if accept_event_idx {
        offer
    } else {
        offer & !EVENT_IDX
    };
    assert!(d.negotiate(accept));
    d.setup_queue(0, 16);
    d.driver_ok();
    d
}

/// Publishes `n` FLUSH requests and notifies once.
fn flushes(d: &mut Driver, n: u64) {
    for k in 0..n {
        d.put(HDR + 0x20 * k, &header(VIRTIO_BLK_T_FLUSH, 0));
        let head = d.add_chain(0, &[(HDR + 0x20 * k, 16, false), (STATUS + k, 1, true)]);
        d.publish(0, head);
    }
    d.notify(0);
}

#[test]
fn vring_need_event_matches_the_spec_examples() {
    // used_event 0: interrupt after the first buffer (old 0 → new 1), not after the second.
    assert!(vring_need_event(0, 1, 0));
    assert!(!vring_need_event(0, 2, 1));
    // A batch that steps over the mark still interrupts.
    assert!(vring_need_event(5, 8, 3));
    assert!(!vring_need_event(9, 8, 3));
    // Across the 16-bit wrap.
    assert!(vring_need_event(0xFFFF, 2, 0xFFFE));
}

#[test]
fn event_idx_interrupts_only_when_used_event_is_reached() {
    let mut d = up(true);
    // The driver wants to hear when entry 3 is used (used.idx reaches 4).
    d.set_used_event(0, 3);
    flushes(&mut d, 2);
    assert_eq!(d.used_idx(0), 2);
    assert!(!d.irq_high(), "used_event not reached");
    assert_eq!(d.dev.stats().interrupts_suppressed, 1);
    flushes(&mut d, 2);
    assert_eq!(d.used_idx(0), 4);
    assert!(d.irq_high(), "entry 3 was used");
    d.handle_irq();
    // Past the mark and the driver did not move it: quiet again.
    flushes(&mut d, 1);
    assert!(!d.irq_high());
    // avail_event: the device asks to be notified at the next avail index.
    assert_eq!(d.avail_event(0), d.q[0].avail_idx);
    // With EVENT_IDX the NO_INTERRUPT flag means nothing (the device ignores flags).
    let avail = d.q[0].avail;
    d.put_u16(avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
    d.set_used_event(0, d.used_idx(0));
    flushes(&mut d, 1);
    assert!(d.irq_high());
    assert_eq!(d.dev.stats().interrupts, 2);
}

#[test]
fn no_interrupt_flag_suppresses_without_event_idx() {
    let mut d = up(false);
    let avail = d.q[0].avail;
    d.put_u16(avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
    flushes(&mut d, 3);
    assert_eq!(d.used_idx(0), 3);
    assert!(!d.irq_high());
    assert_eq!(d.dev.stats().interrupts_suppressed, 1);
    // Without EVENT_IDX the device never writes avail_event.
    assert_eq!(d.avail_event(0), 0);
    d.put_u16(avail, 0);
    flushes(&mut d, 1);
    assert!(d.irq_high());
    assert_eq!(d.handle_irq(), u32::from(ISR_QUEUE));
}

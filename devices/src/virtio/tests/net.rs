//! virtio-net: frames out through transmitq (the header stripped), frames in through the
//! receive buffers the driver lends (the header written), what a broken driver gets.
//! Teaches: one doorbell can carry a whole batch of frames.

use super::*;
use crate::net::{MacAddr, NetLink, LINK_QUEUE_LIMIT};
use crate::virtio::net::*;
use crate::virtio::queue::VIRTQ_USED_F_NO_NOTIFY;

const MAC: u64 = 1 << VIRTIO_NET_F_MAC;
const STATUS: u64 = 1 << VIRTIO_NET_F_STATUS;

fn up() -> (Driver, NetLink) {
    let link = NetLink::new();
    let dev = VirtioNet::new(MacAddr::vmscope(3), link.clone());
    (Driver::up(Box::new(dev), V1 | MAC | STATUS), link)
}

fn frame(n: u8, len: usize) -> Vec<u8> {
    let mut f = vec![n; len];
    f[..6].copy_from_slice(&[0xFF; 6]);
    f
}

/// Publishes header + `payload` at `addr` on transmitq.
fn send(d: &mut Driver, addr: u64, payload: &[u8]) {
    let mut buf = vec![0u8; HEADER_LEN];
    buf.extend_from_slice(payload);
    d.put(addr, &buf);
    let head = d.add_chain(TRANSMITQ, &[(addr, buf.len() as u32, false)]);
    d.publish(TRANSMITQ, head);
}

#[test]
fn config_space_names_the_mac_and_the_link() {
    let (mut d, link) = up();
    assert_eq!(d.read(REG_DEVICE_ID), DEVICE_ID_NET);
    assert_eq!(d.offered() & (MAC | STATUS), MAC | STATUS);
    let mac: Vec<u8> = (0..6)
        .map(|i| d.dev.mmio_read(REG_CONFIG + i, 1, &mut d.t.ctx()) as u8)
        .collect();
    assert_eq!(mac, MacAddr::vmscope(3).0);
    let status = |d: &mut Driver| d.dev.mmio_read(REG_CONFIG + 6, 2, &mut d.t.ctx()) as u16;
    assert_eq!(status(&mut d), VIRTIO_NET_S_LINK_UP);
    link.set_carrier(false);
    assert_eq!(status(&mut d), 0);
}

#[test]
fn a_batch_of_frames_costs_one_notification() {
    let (mut d, link) = up();
    for k in 0..8u8 {
        send(
            &mut d,
            DATA + 0x800 * u64::from(k),
            &frame(k, 60 + usize::from(k)),
        );
    }
    d.notify(TRANSMITQ);
    let sent = link.take_transmitted();
    assert_eq!(sent.len(), 8);
    for (k, f) in sent.iter().enumerate() {
        assert_eq!(
            *f,
            frame(k as u8, 60 + k),
            "header stripped, bytes in order"
        );
    }
    assert_eq!(d.used_idx(TRANSMITQ), 8);
    assert_eq!(d.dev.core().stats().notifications, 1);
}

#[test]
fn received_frames_wait_for_buffers_and_carry_a_header() {
    let (mut d, link) = up();
    assert!(link.deliver(&frame(7, 98)));
    d.dev.tick(&mut d.t.ctx());
    assert_eq!(d.used_idx(RECEIVEQ), 0, "no buffers yet: the frame waits");
    assert_eq!(link.backlog_for_guest(), 1);
    let head = d.add_chain(RECEIVEQ, &[(DATA, 1526, true)]);
    d.publish(RECEIVEQ, head);
    d.notify(RECEIVEQ);
    assert_eq!(d.used_elem(RECEIVEQ, 0), (u32::from(head), 12 + 98));
    let hdr = d.get(DATA, HEADER_LEN);
    assert_eq!(
        &hdr[..10],
        &[0; 10],
        "no offloads: flags, gso, csum all zero"
    );
    assert_eq!(u16::from_le_bytes([hdr[10], hdr[11]]), 1, "num_buffers");
    assert_eq!(d.get(DATA + 12, 98), frame(7, 98));
    assert!(d.irq_high());
    // A frame arriving while a buffer waits goes in at the next look (Bus::service_device).
    d.handle_irq();
    let head = d.add_chain(RECEIVEQ, &[(DATA + 0x1000, 1526, true)]);
    d.publish(RECEIVEQ, head);
    d.notify(RECEIVEQ);
    link.deliver(&frame(9, 60));
    d.dev.tick(&mut d.t.ctx());
    assert_eq!(d.used_elem(RECEIVEQ, 1), (u32::from(head), 72));
}

#[test]
fn a_buffer_too_small_drops_the_frame_not_the_device() {
    let (mut d, link) = up();
    link.deliver(&frame(1, 1514));
    let small = d.add_chain(RECEIVEQ, &[(DATA, 200, true)]);
    d.publish(RECEIVEQ, small);
    d.notify(RECEIVEQ);
    assert_eq!(d.used_elem(RECEIVEQ, 0), (u32::from(small), 0));
    assert_eq!(
        d.dev
            .device_as::<VirtioNet>()
            .unwrap()
            .stats()
            .rx_dropped_small_buffer,
        1
    );
    assert_eq!(d.status() & STATUS_NEEDS_RESET, 0);
}

#[test]
fn bad_transmit_buffers_are_counted_or_reset_the_device() {
    let (mut d, link) = up();
    // Only a header, or a giant frame: completed, dropped, counted.
    send(&mut d, DATA, &[]);
    send(&mut d, DATA + 0x1000, &frame(1, 3000));
    d.notify(TRANSMITQ);
    assert!(link.take_transmitted().is_empty());
    assert_eq!(d.used_idx(TRANSMITQ), 2);
    assert_eq!(
        d.dev.device_as::<VirtioNet>().unwrap().stats().tx_dropped,
        2
    );
    // A descriptor pointing outside RAM: NEEDS_RESET, nothing sent, no panic.
    let head = d.add_chain(TRANSMITQ, &[(RAM_SIZE as u64 - 8, 64, false)]);
    d.publish(TRANSMITQ, head);
    d.notify(TRANSMITQ);
    assert_ne!(d.status() & STATUS_NEEDS_RESET, 0);
    assert!(link.take_transmitted().is_empty());
}

#[test]
fn a_peer_flooding_a_guest_that_never_reads_stays_bounded() {
    let (mut d, link) = up();
    for k in 0..LINK_QUEUE_LIMIT * 4 {
        link.deliver(&frame(k as u8, 64));
        d.dev.tick(&mut d.t.ctx());
    }
    assert_eq!(link.backlog_for_guest(), LINK_QUEUE_LIMIT);
    assert_eq!(link.stats().1.dropped_full, 3 * LINK_QUEUE_LIMIT as u64);
}

#[test]
fn the_driver_is_asked_for_receive_doorbells_only_while_frames_wait() {
    let (mut d, link) = up();
    let used_flags = |d: &Driver| d.get_u16(d.q[RECEIVEQ].used);
    let head = d.add_chain(RECEIVEQ, &[(DATA, 1526, true)]);
    d.publish(RECEIVEQ, head);
    d.notify(RECEIVEQ);
    assert_eq!(
        used_flags(&d),
        VIRTQ_USED_F_NO_NOTIFY,
        "nothing waits: no doorbell needed"
    );
    // Two frames, one buffer: the second waits, so the next buffer is news.
    link.deliver(&frame(1, 60));
    link.deliver(&frame(2, 60));
    d.dev.tick(&mut d.t.ctx());
    assert_eq!(d.used_idx(RECEIVEQ), 1);
    assert_eq!(
        used_flags(&d),
        0,
        "a frame waits for a buffer: ring the doorbell"
    );
    let head = d.add_chain(RECEIVEQ, &[(DATA + 0x1000, 1526, true)]);
    d.publish(RECEIVEQ, head);
    d.notify(RECEIVEQ);
    assert_eq!(d.used_idx(RECEIVEQ), 2);
    assert_eq!(used_flags(&d), VIRTQ_USED_F_NO_NOTIFY);
}

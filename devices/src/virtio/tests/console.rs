//! virtio-console: output through the transmitq, input into receive buffers, emergency write.
//! Teaches: input waits on the host side until the guest lends a buffer.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use super::*;
use crate::virtio::console::*;

fn up() -> Driver {
    Driver::up(Box::new(VirtioConsole::new()), V1 | EVENT_IDX | INDIRECT)
}

fn console(d: &mut Driver) -> &mut VirtioConsole {
    d.dev.device_as::<VirtioConsole>().unwrap()
}

/// Publishes a transmit buffer holding `text` at `addr`.
fn send(d: &mut Driver, addr: u64, text: &[u8]) {
    d.put(addr, text);
    let head = d.add_chain(TRANSMITQ, &[(addr, text.len() as u32, false)]);
    d.publish(TRANSMITQ, head);
}

#[test]
fn output_through_the_transmitq() {
    let mut d = up();
    assert_eq!(d.read(REG_DEVICE_ID), DEVICE_ID_CONSOLE);
    send(&mut d, DATA, b"hello, ");
    send(&mut d, DATA + 0x100, b"world\n");
    d.notify(TRANSMITQ);
    assert_eq!(console(&mut d).take_output(), b"hello, world\n");
    assert_eq!(d.used_idx(TRANSMITQ), 2);
    assert_eq!(d.used_elem(TRANSMITQ, 0).1, 0, "the device wrote nothing");
    assert!(console(&mut d).take_output().is_empty(), "drained");
    // A multi-descriptor transmit buffer is one piece of text.
    d.put(DATA, b"ab");
    d.put(DATA + 0x40, b"cd");
    let head = d.add_chain(TRANSMITQ, &[(DATA, 2, false), (DATA + 0x40, 2, false)]);
    d.publish(TRANSMITQ, head);
    d.notify(TRANSMITQ);
    assert_eq!(console(&mut d).take_output(), b"abcd");
}

#[derive(Clone, Default)]
struct Sink(Rc<RefCell<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn output_can_go_to_a_host_sink() {
    let mut d = up();
    send(&mut d, DATA, b"early ");
    d.notify(TRANSMITQ);
    let sink = Sink::default();
    console(&mut d).set_output_sink(Box::new(sink.clone()));
    send(&mut d, DATA, b"late");
    d.notify(TRANSMITQ);
    assert_eq!(
        &*sink.0.borrow(),
        b"early late",
        "buffered output goes first"
    );
    assert!(console(&mut d).take_output().is_empty());
}

/// What Linux does after draining the used ring with EVENT_IDX: acknowledge, and ask for an
/// interrupt at the next used entry (used_event = the used index seen).
fn rearm(d: &mut Driver) {
    d.handle_irq();
    let seen = d.used_idx(RECEIVEQ);
    d.set_used_event(RECEIVEQ, seen);
}

#[test]
fn input_waits_for_receive_buffers() {
    let mut d = up();
    console(&mut d).receive(b"typed before any buffer");
    d.dev.tick(&mut d.t.ctx());
    assert_eq!(console(&mut d).pending_input(), 23);
    assert!(
        d.dev.tick(&mut d.t.ctx()).is_some(),
        "asks to be ticked again"
    );
    // The driver lends two 8-byte buffers and notifies receiveq: they fill at once.
    for k in 0..2 {
        let head = d.add_chain(RECEIVEQ, &[(DATA + 0x100 * k, 8, true)]);
        d.publish(RECEIVEQ, head);
    }
    d.notify(RECEIVEQ);
    assert_eq!(d.used_idx(RECEIVEQ), 2);
    assert_eq!(d.used_elem(RECEIVEQ, 0), (0, 8));
    assert_eq!(d.get(DATA, 8), b"typed be");
    assert_eq!(d.get(DATA + 0x100, 8), b"fore any");
    assert!(d.irq_high());
    rearm(&mut d);
    // Another buffer, no notification: the rest arrives at the next tick (poll).
    let head = d.add_chain(RECEIVEQ, &[(DATA + 0x200, 64, true)]);
    d.publish(RECEIVEQ, head);
    assert_eq!(d.dev.tick(&mut d.t.ctx()), None, "nothing left to poll for");
    assert_eq!(d.used_elem(RECEIVEQ, 2), (u32::from(head), 7));
    assert_eq!(d.get(DATA + 0x200, 7), b" buffer");
    assert!(d.irq_high());
    // Input arriving later fills the buffers already waiting.
    rearm(&mut d);
    let head = d.add_chain(RECEIVEQ, &[(DATA + 0x300, 64, true)]);
    d.publish(RECEIVEQ, head);
    d.notify(RECEIVEQ);
    assert_eq!(
        d.used_idx(RECEIVEQ),
        3,
        "no input: the buffer stays available"
    );
    console(&mut d).receive(b"x");
    d.dev.tick(&mut d.t.ctx());
    assert_eq!(d.used_elem(RECEIVEQ, 3), (u32::from(head), 1));
    assert_eq!(console(&mut d).byte_counts().1, 24);
}

#[test]
fn emergency_write_works_before_setup() {
    let mut d = Driver::new(Box::new(VirtioConsole::new()));
    let f = d.offered();
    assert_ne!(f & 1 << VIRTIO_CONSOLE_F_EMERG_WRITE, 0);
    assert_eq!(f & 1 << VIRTIO_CONSOLE_F_SIZE, 0, "no size: see console.rs");
    d.write(REG_CONFIG + EMERG_WR_OFFSET, u32::from(b'!'));
    d.dev.mmio_write(
        REG_CONFIG + EMERG_WR_OFFSET,
        1,
        u64::from(b'?'),
        &mut d.t.ctx(),
    );
    assert_eq!(console(&mut d).take_output(), b"!?");
}

#[test]
fn queue_misuse_is_survived_and_reported() {
    // Notifications before DRIVER_OK are dropped: nothing is output.
    let mut d = Driver::new(Box::new(VirtioConsole::new()));
    assert!(d.negotiate(V1));
    d.setup_queue(TRANSMITQ as u16, 8);
    d.put(DATA, b"too early");
    let head = d.add_chain(TRANSMITQ, &[(DATA, 9, false)]);
    d.publish(TRANSMITQ, head);
    d.notify(TRANSMITQ);
    assert!(console(&mut d).take_output().is_empty());
    assert_eq!(d.dev.core().stats().notifications_ignored, 1);
    // A notification for a queue that does not exist is ignored too.
    d.driver_ok();
    d.notify(7);
    assert_eq!(d.dev.core().stats().notifications_ignored, 2);

    let mut d = up();
    // A device-writable buffer in the transmitq: ignored, the readable part still goes out.
    d.put(DATA, b"ok");
    let head = d.add_chain(TRANSMITQ, &[(DATA, 2, false), (DATA + 0x100, 0x40, true)]);
    d.publish(TRANSMITQ, head);
    d.notify(TRANSMITQ);
    assert_eq!(console(&mut d).take_output(), b"ok");
    // A read-only buffer in the receiveq takes no input; a later writable one gets it all.
    console(&mut d).receive(b"in");
    let head = d.add_chain(RECEIVEQ, &[(DATA + 0x200, 8, false)]);
    d.publish(RECEIVEQ, head);
    d.notify(RECEIVEQ);
    assert_eq!(d.used_elem(RECEIVEQ, 0).1, 0, "nothing written into it");
    assert_eq!(console(&mut d).pending_input(), 2);
    // A transmit buffer outside RAM: DEVICE_NEEDS_RESET, and no byte of it is output.
    let head = d.add_chain(TRANSMITQ, &[(RAM_SIZE as u64 - 4, 64, false)]);
    d.publish(TRANSMITQ, head);
    d.notify(TRANSMITQ);
    assert_ne!(d.status() & STATUS_NEEDS_RESET, 0);
    assert!(console(&mut d).take_output().is_empty());
    // Until the driver resets, the device ignores its queues; EMERG_WRITE still works.
    d.notify(TRANSMITQ);
    d.write(REG_CONFIG + EMERG_WR_OFFSET, u32::from(b'!'));
    assert_eq!(console(&mut d).take_output(), b"!");
}

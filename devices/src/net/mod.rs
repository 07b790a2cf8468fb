//! Networking: Ethernet frames, the link between a NIC and its peer, NICs, and the switch.
//! Teaches: a virtual NIC is a DMA engine plus a cable; what is at the other end of the cable
//! (a switch port, a tap device, another guest) is the host's business, not the device's.
//!
//! The pieces, from the guest outwards:
//! - a NIC model — [`rtl8139`] (emulated: registers a real driver knows) or virtio-net
//!   (`virtio::net`, paravirtual) — moves frames between guest RAM and a [`NetLink`];
//! - the [`NetLink`] is the cable: two bounded queues, one per direction, shared between the
//!   device (inside a machine) and the host side (the runner of `vmscope net`);
//! - the host side connects links to a [`switch`] port or to a tap device (`host-backends`),
//!   and can record each port in [`pcap`] format.
//!
//! Frames are Ethernet II frames without preamble and FCS, as Linux's tap devices and pcap
//! files carry them: destination MAC, source MAC, EtherType (or an 802.1Q tag), payload.

pub mod eeprom93c46;
pub mod frame;
pub mod pcap;
pub mod rtl8139;
pub mod switch;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

pub use frame::MacAddr;

/// Frames waiting in one direction of a link; more are dropped and counted. Bounded memory
/// whatever the guest or the peer does (a guest that never empties its receive queue).
pub const LINK_QUEUE_LIMIT: usize = 256;

/// The shortest frame a link carries: the 14-byte Ethernet header. (Ethernet's 60-byte
/// minimum is padding a NIC adds on the wire; tap devices and pcap files carry unpadded frames.)
pub const MIN_FRAME: usize = frame::HEADER_LEN;
/// The longest: 1514 bytes (1500 of payload) plus a 4-byte 802.1Q tag.
pub const MAX_FRAME: usize = 1518;

/// What one direction of a link counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DirectionStats {
    pub frames: u64,
    pub bytes: u64,
    /// Dropped because the queue was full.
    pub dropped_full: u64,
    /// Dropped because shorter than [`MIN_FRAME`] or longer than [`MAX_FRAME`].
    pub dropped_size: u64,
    /// Sent while the cable was unplugged (nothing at the other end).
    pub dropped_no_carrier: u64,
}

#[derive(Debug, Default)]
struct LinkState {
    /// Frames the guest transmitted, for the host side to take.
    from_guest: VecDeque<Vec<u8>>,
    /// Frames for the guest, waiting until the NIC has receive buffers.
    to_guest: VecDeque<Vec<u8>>,
    tx: DirectionStats,
    rx: DirectionStats,
    carrier_down: bool,
}

/// The cable between a NIC and its peer. Cloning gives another handle on the same cable: the
/// device keeps one, the host side the other.
#[derive(Debug, Clone, Default)]
pub struct NetLink(Arc<Mutex<LinkState>>);

fn push_bounded(queue: &mut VecDeque<Vec<u8>>, stats: &mut DirectionStats, frame: &[u8]) -> bool {
    if frame.len() < MIN_FRAME || frame.len() > MAX_FRAME {
        stats.dropped_size += 1;
        return false;
    }
    if queue.len() >= LINK_QUEUE_LIMIT {
        stats.dropped_full += 1;
        return false;
    }
    stats.frames += 1;
    stats.bytes += frame.len() as u64;
    queue.push_back(frame.to_vec());
    true
}

impl NetLink {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, LinkState> {
        // A panic elsewhere while holding the lock leaves plain queues behind: still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- the device's side ----

    /// The guest sent `frame` (the NIC read it from guest RAM). False: dropped (too short,
    /// too long, or the host side has not taken the last [`LINK_QUEUE_LIMIT`] frames).
    pub fn transmit(&self, frame: &[u8]) -> bool {
        let mut s = self.state();
        let s = &mut *s;
        if s.carrier_down {
            s.tx.dropped_no_carrier += 1;
            return false;
        }
        push_bounded(&mut s.from_guest, &mut s.tx, frame)
    }

    /// The next frame for the guest, once the NIC has a buffer for it.
    pub fn next_for_guest(&self) -> Option<Vec<u8>> {
        self.state().to_guest.pop_front()
    }

    // ANCHOR: can_transmit
    /// Is there room for another frame from the guest? A NIC that finds none holds its
    /// transmit work back (the sender stalls, as on a wire that is busy) instead of dropping.
    pub fn can_transmit(&self) -> bool {
        let s = self.state();
        s.carrier_down || s.from_guest.len() < LINK_QUEUE_LIMIT
    }
    // ANCHOR_END: can_transmit

    /// Is a frame waiting for the guest?
    pub fn has_for_guest(&self) -> bool {
        !self.state().to_guest.is_empty()
    }

    /// Is the cable plugged in? (The NIC's link-status bit.)
    pub fn carrier(&self) -> bool {
        !self.state().carrier_down
    }

    // ---- the host's side ----

    /// Every frame the guest transmitted since the last call, oldest first.
    pub fn take_transmitted(&self) -> Vec<Vec<u8>> {
        self.state().from_guest.drain(..).collect()
    }

    // ANCHOR: take_up_to
    /// At most `max` of the frames the guest transmitted, oldest first; the rest stay (and
    /// hold the sender back once [`LINK_QUEUE_LIMIT`] are waiting): the cable's speed.
    pub fn take_transmitted_up_to(&self, max: usize) -> Vec<Vec<u8>> {
        let mut s = self.state();
        let n = s.from_guest.len().min(max);
        s.from_guest.drain(..n).collect()
    }
    // ANCHOR_END: take_up_to

    /// Queues `frame` for the guest. False: dropped (size, or the guest has not taken the
    /// last [`LINK_QUEUE_LIMIT`] frames). The NIC's owner must then let the device look
    /// (`Bus::service_device`), so the frame reaches the guest without waiting for a timer.
    pub fn deliver(&self, frame: &[u8]) -> bool {
        let mut s = self.state();
        let s = &mut *s;
        push_bounded(&mut s.to_guest, &mut s.rx, frame)
    }

    /// Plugs the cable in or pulls it: without carrier the NIC reports the link down and
    /// what the guest sends goes nowhere (counted, never queued — a sender does not stall).
    pub fn set_carrier(&self, up: bool) {
        self.state().carrier_down = !up;
    }

    /// (guest → host, host → guest) counters.
    pub fn stats(&self) -> (DirectionStats, DirectionStats) {
        let s = self.state();
        (s.tx, s.rx)
    }

    /// Frames queued towards the guest and not yet taken by its NIC.
    pub fn backlog_for_guest(&self) -> usize {
        self.state().to_guest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Vec<u8> {
        vec![0xAB; len]
    }

    #[test]
    fn a_frame_crosses_each_way_in_order() {
        let nic = NetLink::new();
        let host = nic.clone();
        assert!(nic.transmit(&frame(60)));
        assert!(nic.transmit(&frame(61)));
        let sent = host.take_transmitted();
        assert_eq!(sent.iter().map(Vec::len).collect::<Vec<_>>(), [60, 61]);
        assert!(host.deliver(&frame(42)));
        assert!(nic.has_for_guest());
        assert_eq!(nic.next_for_guest().map(|f| f.len()), Some(42));
        assert_eq!(nic.next_for_guest(), None);
    }

    #[test]
    fn an_unplugged_cable_takes_frames_into_nothing() {
        let link = NetLink::new();
        link.set_carrier(false);
        for _ in 0..LINK_QUEUE_LIMIT + 1 {
            assert!(link.can_transmit(), "a sender never stalls on a dead cable");
            assert!(!link.transmit(&frame(60)));
        }
        assert!(link.take_transmitted().is_empty());
        assert_eq!(
            link.stats().0.dropped_no_carrier,
            LINK_QUEUE_LIMIT as u64 + 1
        );
    }

    #[test]
    fn runts_giants_and_overflow_are_dropped_and_counted() {
        let link = NetLink::new();
        assert!(!link.transmit(&frame(13)));
        assert!(!link.transmit(&frame(MAX_FRAME + 1)));
        assert!(link.transmit(&frame(MAX_FRAME)));
        for _ in 0..LINK_QUEUE_LIMIT + 10 {
            link.deliver(&frame(64));
        }
        let (tx, rx) = link.stats();
        assert_eq!((tx.frames, tx.dropped_size), (1, 2));
        assert_eq!(rx.frames, LINK_QUEUE_LIMIT as u64);
        assert_eq!(rx.dropped_full, 10);
        assert_eq!(link.backlog_for_guest(), LINK_QUEUE_LIMIT);
    }
}

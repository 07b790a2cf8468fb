//! virtio-net (spec 5.1): the paravirtual NIC — one receive and one transmit queue, a MAC and a link status in config space.
//! Teaches: why a paravirtual NIC is cheap — a frame is a descriptor, a whole batch of them costs one doorbell, and nothing on the way is a register a real chip would need.
//!
//! Queue 0 is receiveq1, queue 1 transmitq1 (no multiqueue, no control queue). Every buffer
//! starts with the 12-byte `virtio_net_hdr_v1` (flags, gso_type, hdr_len, gso_size,
//! csum_start, csum_offset, num_buffers): with VIRTIO_F_VERSION_1 the header always has
//! `num_buffers`. We offer no offloads (no CSUM, no GSO, no MRG_RXBUF), so on transmit the
//! header says nothing we need and on receive we write it as zeros with `num_buffers` = 1:
//! each received frame goes whole into one buffer chain, which the driver must make big
//! enough (5.1.6.3.1: 1526 bytes without MRG_RXBUF or GSO).
//!
//! The other end of the cable is a [`NetLink`]: frames the guest sends go there, frames the
//! host delivers wait there until the driver has made receive buffers available — when it
//! notifies receiveq, or when the host asks the device to look (`Bus::service_device`) or at
//! the transport's poll tick.

use super::{read_config_bytes, Queue, QueueError, VirtioDevice, DEVICE_ID_NET};
use crate::bus::Dma;
use crate::net::{MacAddr, NetLink};

pub const VIRTIO_NET_F_MAC: u32 = 5;
pub const VIRTIO_NET_F_STATUS: u32 = 16;
/// `status` field bit: the link is up.
pub const VIRTIO_NET_S_LINK_UP: u16 = 1;

pub const RECEIVEQ: usize = 0;
pub const TRANSMITQ: usize = 1;
pub const QUEUE_SIZE: u16 = 256;
/// `struct virtio_net_hdr_v1`.
pub const HEADER_LEN: usize = 12;

/// What the device counted, beyond the link's own counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NetStats {
    /// Frames written into receive buffers.
    pub rx_frames: u64,
    /// Frames sent on to the link.
    pub tx_frames: u64,
    /// Transmit chains shorter than the header, or whose frame the link refused (too short
    /// or too long): completed and dropped.
    pub tx_dropped: u64,
    /// Frames dropped because the driver's receive buffer was too small for header + frame.
    pub rx_dropped_small_buffer: u64,
}

/// A virtio network device on `link`.
pub struct VirtioNet {
    mac: MacAddr,
    link: NetLink,
    stats: NetStats,
    /// Transmit chains are waiting because the link was full.
    tx_stalled: bool,
}

impl VirtioNet {
    pub fn new(mac: MacAddr, link: NetLink) -> Self {
        VirtioNet {
            mac,
            link,
            stats: NetStats::default(),
            tx_stalled: false,
        }
    }

    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    pub fn stats(&self) -> NetStats {
        self.stats
    }

    // ANCHOR: vnet_receive
    /// Moves frames waiting on the link into receive buffers while there are both.
    fn receive(&mut self, rx: &mut Queue, dma: &mut Dma) -> Result<(), QueueError> {
        while rx.ready() && self.link.has_for_guest() {
            let Some(chain) = rx.pop(dma)? else {
                break; // no buffers: the frames wait on the link (bounded there)
            };
            let Some(frame) = self.link.next_for_guest() else {
                // Cannot happen (we checked), but a buffer taken must go back.
                rx.add_used(dma, chain.head, 0)?;
                break;
            };
            if chain.writable_len() < (HEADER_LEN + frame.len()) as u64 {
                self.stats.rx_dropped_small_buffer += 1;
                rx.add_used(dma, chain.head, 0)?;
                continue;
            }
            let mut header = [0u8; HEADER_LEN];
            header[10..12].copy_from_slice(&1u16.to_le_bytes()); // num_buffers
            chain.write_at(dma, 0, &header)?;
            chain.write_at(dma, HEADER_LEN as u64, &frame)?;
            self.stats.rx_frames += 1;
            rx.add_used(dma, chain.head, (HEADER_LEN + frame.len()) as u32)?;
        }
        // New receive buffers are news only while frames wait for them: otherwise the next
        // frame's arrival (the host's service, the poll tick) finds them anyway, and the
        // driver can skip the doorbell — one exit less per frame received.
        if rx.ready() {
            rx.set_notifications(dma, self.link.has_for_guest())?;
        }
        Ok(())
    }
    // ANCHOR_END: vnet_receive

    // ANCHOR: vnet_transmit
    /// Sends every transmit chain's frame (the readable bytes after the header) to the link,
    /// while the link has room; the rest wait in the ring (`tx_stalled`) until the host has
    /// taken frames off the link and services the device, or the next poll tick.
    fn transmit(&mut self, tx: &mut Queue, dma: &mut Dma) -> Result<(), QueueError> {
        self.tx_stalled = false;
        loop {
            if !self.link.can_transmit() {
                self.tx_stalled = true;
                return Ok(());
            }
            let Some(chain) = tx.pop(dma)? else {
                return Ok(());
            };
            let bytes = chain.read_all(dma, 0)?;
            let sent = bytes.len() > HEADER_LEN && self.link.transmit(&bytes[HEADER_LEN..]);
            if sent {
                self.stats.tx_frames += 1;
            } else {
                self.stats.tx_dropped += 1;
            }
            tx.add_used(dma, chain.head, 0)?;
        }
    }
    // ANCHOR_END: vnet_transmit
}

impl VirtioDevice for VirtioNet {
    fn device_type(&self) -> u32 {
        DEVICE_ID_NET
    }

    fn name(&self) -> &'static str {
        "virtio-net"
    }

    fn features(&self) -> u64 {
        1 << VIRTIO_NET_F_MAC | 1 << VIRTIO_NET_F_STATUS
    }

    fn queue_count(&self) -> usize {
        2
    }

    fn queue_max_size(&self, _q: usize) -> u16 {
        QUEUE_SIZE
    }

    /// `struct virtio_net_config`: mac[6], status (le16); max_virtqueue_pairs and mtu exist
    /// only with features we do not offer.
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut config = [0u8; 8];
        config[..6].copy_from_slice(&self.mac.0);
        let status = if self.link.carrier() {
            VIRTIO_NET_S_LINK_UP
        } else {
            0
        };
        config[6..8].copy_from_slice(&status.to_le_bytes());
        read_config_bytes(&config, offset, data);
    }

    fn process(&mut self, q: usize, queue: &mut Queue, dma: &mut Dma) -> Result<(), QueueError> {
        match q {
            RECEIVEQ => self.receive(queue, dma),
            TRANSMITQ => self.transmit(queue, dma),
            _ => Ok(()),
        }
    }

    fn poll(&mut self, queues: &mut [Queue], dma: &mut Dma) -> Result<(), QueueError> {
        if let Some(rx) = queues.get_mut(RECEIVEQ) {
            self.receive(rx, dma)?;
        }
        match queues.get_mut(TRANSMITQ) {
            Some(tx) if self.tx_stalled && tx.ready() => self.transmit(tx, dma),
            _ => Ok(()),
        }
    }

    fn wants_poll(&self) -> bool {
        self.link.has_for_guest() || self.tx_stalled
    }

    fn reset(&mut self) {
        self.tx_stalled = false;
    }
}

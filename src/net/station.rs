//! A host-side station on a guest's cable: it answers ARP and ping for its address, sinks the
//! UDP datagrams sent to its discard port (checking them), and makes datagrams for the guest.
//! Teaches: the least a peer must do for a guest's network stack to work — and it lets
//! `compare --net` measure one NIC without a second guest's costs mixed in.

use devices::net::frame::{self, MacAddr, ETHERTYPE_ARP, ETHERTYPE_IPV4};

/// The UDP port the teaching kernel's udp-send sends to (discard) and udp-recv listens on.
pub const DISCARD_PORT: u16 = 9;
/// udp-send's source port, and ours.
pub const SOURCE_PORT: u16 = 1024;
/// Payload bytes of the teaching kernel's datagrams: 128 words.
pub const DATAGRAM_BYTES: usize = 1024;

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01B3;

/// The Internet checksum (RFC 1071) of `data`.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// A station with one MAC and one IPv4 address.
#[derive(Debug, Clone)]
pub struct Station {
    pub mac: MacAddr,
    pub ip: [u8; 4],
    /// The console.S fold of every payload word of the datagrams received on the discard port.
    udp_fold: u64,
    pub udp_received: u64,
    pub arp_answered: u64,
    pub echo_answered: u64,
    /// Frames that were not for us or not understood (counted, not answered).
    pub ignored: u64,
}

impl Station {
    pub fn new(mac: MacAddr, ip: [u8; 4]) -> Station {
        Station {
            mac,
            ip,
            udp_fold: FNV_OFFSET,
            udp_received: 0,
            arp_answered: 0,
            echo_answered: 0,
            ignored: 0,
        }
    }

    /// The fold of what arrived on the discard port: `udp-send:N`'s checksum when all came.
    pub fn udp_checksum(&self) -> u64 {
        self.udp_fold
    }

    /// Takes one frame from the guest; returns what the station sends back.
    pub fn receive(&mut self, f: &[u8]) -> Option<Vec<u8>> {
        let reply = match frame::ethertype(f) {
            Some(ETHERTYPE_ARP) => self.arp(f),
            Some(ETHERTYPE_IPV4) => self.ipv4(f),
            _ => None,
        };
        if reply.is_none() {
            self.ignored += 1;
        }
        reply
    }

    fn arp(&mut self, f: &[u8]) -> Option<Vec<u8>> {
        let a = f.get(14..42)?;
        // Ethernet/IPv4, request, for our address.
        if a[0..8] != [0, 1, 8, 0, 6, 4, 0, 1] || a[24..28] != self.ip {
            return None;
        }
        let mut r = Vec::with_capacity(60);
        r.extend_from_slice(&a[8..14]); // to the asker
        r.extend_from_slice(&self.mac.0);
        r.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        r.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        r.extend_from_slice(&self.mac.0);
        r.extend_from_slice(&self.ip);
        r.extend_from_slice(&a[8..18]); // the asker's MAC and IP
        r.resize(60, 0);
        self.arp_answered += 1;
        Some(r)
    }

    fn ipv4(&mut self, f: &[u8]) -> Option<Vec<u8>> {
        let ip = f.get(14..34)?;
        if ip[0] != 0x45 || ip[16..20] != self.ip || internet_checksum(ip) != 0 {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let payload = f.get(34..14 + total)?;
        match ip[9] {
            1 if payload.first() == Some(&8) && internet_checksum(payload) == 0 => {
                self.echo_answered += 1;
                let mut icmp = payload.to_vec();
                icmp[0] = 0; // echo reply
                icmp[2..4].copy_from_slice(&[0, 0]);
                let c = internet_checksum(&icmp);
                icmp[2..4].copy_from_slice(&c.to_be_bytes());
                let to_mac = frame::source(f)?;
                Some(self.ipv4_frame(to_mac, ip[12..16].try_into().ok()?, 1, &icmp))
            }
            17 => {
                let udp = payload;
                if udp.len() < 8 || u16::from_be_bytes([udp[2], udp[3]]) != DISCARD_PORT {
                    return None;
                }
                for w in udp[8..].chunks_exact(8) {
                    let word = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                    self.udp_fold = (self.udp_fold ^ word).wrapping_mul(FNV_PRIME);
                }
                self.udp_received += 1;
                None
            }
            _ => None,
        }
    }

    /// An IPv4 frame from us to `to` (TTL 64, no options, checksummed).
    fn ipv4_frame(&self, to_mac: MacAddr, to_ip: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(34 + payload.len());
        f.extend_from_slice(&to_mac.0);
        f.extend_from_slice(&self.mac.0);
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let total = (20 + payload.len()) as u16;
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[8] = 64;
        ip[9] = protocol;
        ip[12..16].copy_from_slice(&self.ip);
        ip[16..20].copy_from_slice(&to_ip);
        let c = internet_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(payload);
        f
    }

    /// Datagram `k` of what `udp-recv` expects, from us to `to` (word i = k << 32 | i; UDP
    /// checksum 0: none).
    pub fn datagram(&self, to_mac: MacAddr, to_ip: [u8; 4], k: u64) -> Vec<u8> {
        let mut udp = Vec::with_capacity(8 + DATAGRAM_BYTES);
        udp.extend_from_slice(&SOURCE_PORT.to_be_bytes());
        udp.extend_from_slice(&DISCARD_PORT.to_be_bytes());
        udp.extend_from_slice(&((8 + DATAGRAM_BYTES) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        for i in 0..(DATAGRAM_BYTES / 8) as u64 {
            udp.extend_from_slice(&(k << 32 | i).to_le_bytes());
        }
        self.ipv4_frame(to_mac, to_ip, 17, &udp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest() -> MacAddr {
        MacAddr::vmscope(1)
    }

    fn arp_request(target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xFF; 6];
        f.extend_from_slice(&guest().0);
        f.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&guest().0);
        f.extend_from_slice(&[10, 0, 0, 1]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f.resize(60, 0);
        f
    }

    #[test]
    fn answers_arp_for_its_address_only() {
        let mut s = Station::new(MacAddr::vmscope(99), [10, 0, 0, 2]);
        let r = s.receive(&arp_request([10, 0, 0, 2])).unwrap();
        assert_eq!(frame::destination(&r), Some(guest()));
        assert_eq!(&r[20..22], &[0, 2], "a reply");
        assert_eq!(&r[22..28], &MacAddr::vmscope(99).0);
        assert_eq!(&r[38..42], &[10, 0, 0, 1]);
        assert_eq!(s.receive(&arp_request([10, 0, 0, 3])), None);
        assert_eq!((s.arp_answered, s.ignored), (1, 1));
    }

    #[test]
    fn datagrams_it_makes_are_ones_it_accepts_and_the_fold_is_udp_sends() {
        let sender = Station::new(MacAddr::vmscope(1), [10, 0, 0, 1]);
        let mut sink = Station::new(MacAddr::vmscope(2), [10, 0, 0, 2]);
        for k in 0..5 {
            let d = sender.datagram(sink.mac, sink.ip, k);
            assert_eq!(d.len(), 14 + 20 + 8 + DATAGRAM_BYTES);
            assert_eq!(internet_checksum(&d[14..34]), 0, "IP header checksum");
            assert_eq!(sink.receive(&d), None);
        }
        assert_eq!(sink.udp_received, 5);
        assert_eq!(
            sink.udp_checksum(),
            crate::compare::suite::expected_udp_checksum(5)
        );
        // A corrupted header is not taken.
        let mut bad = sender.datagram(sink.mac, sink.ip, 5);
        bad[22] ^= 1;
        sink.receive(&bad);
        assert_eq!(sink.udp_received, 5);
    }

    #[test]
    fn echo_requests_are_answered_with_a_valid_reply() {
        let guest_station = Station::new(guest(), [10, 0, 0, 1]);
        let mut s = Station::new(MacAddr::vmscope(2), [10, 0, 0, 2]);
        let mut icmp = vec![8, 0, 0, 0, 0x76, 0x6d, 0, 1];
        icmp.extend_from_slice(&[7; 56]);
        let c = internet_checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let req = guest_station.ipv4_frame(s.mac, s.ip, 1, &icmp);
        let rep = s.receive(&req).unwrap();
        assert_eq!(frame::destination(&rep), Some(guest()));
        assert_eq!(rep[34], 0, "echo reply");
        assert_eq!(internet_checksum(&rep[34..]), 0);
        assert_eq!(&rep[38..], &icmp[4..], "id, sequence and payload echoed");
    }
}

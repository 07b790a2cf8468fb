//! Ethernet II frames and 802.1Q VLAN tags: the few fields a NIC, a switch and a capture read.
//! Teaches: an Ethernet frame is 6 + 6 + 2 bytes of header and a payload; a VLAN tag is four
//! bytes slipped in before the EtherType (TPID 0x8100, then priority and a 12-bit VLAN ID).

use std::fmt;

pub const HEADER_LEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// The 802.1Q tag protocol identifier, where the EtherType would be.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// The tag's length (TPID + TCI).
pub const VLAN_TAG_LEN: usize = 4;

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xFF; 6]);

    /// vmscope's NICs: a locally administered unicast prefix 02:76:6d ("vm") and the guest's
    /// number, so the MACs of a `vmscope net` run are predictable and never a vendor's.
    pub fn vmscope(n: u16) -> MacAddr {
        let [hi, lo] = n.to_be_bytes();
        MacAddr([0x02, 0x76, 0x6d, 0x00, hi, lo])
    }

    /// Group (multicast or broadcast): the I/G bit, the lowest bit of the first byte.
    pub fn is_group(&self) -> bool {
        self.0[0] & 1 != 0
    }

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (also with `-`).
    pub fn parse(s: &str) -> Option<MacAddr> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut out {
            let p = parts.next()?;
            if p.len() != 2 {
                return None;
            }
            *b = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The destination MAC of a frame at least [`HEADER_LEN`] long.
pub fn destination(frame: &[u8]) -> Option<MacAddr> {
    Some(MacAddr(frame.get(0..6)?.try_into().ok()?))
}

pub fn source(frame: &[u8]) -> Option<MacAddr> {
    Some(MacAddr(frame.get(6..12)?.try_into().ok()?))
}

/// The field after the MACs: an EtherType, or [`ETHERTYPE_VLAN`] for a tagged frame.
pub fn ethertype(frame: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?))
}

/// The VLAN ID of a tagged frame (the TCI's low 12 bits), `None` for an untagged one.
pub fn vlan_id(frame: &[u8]) -> Option<u16> {
    if ethertype(frame)? != ETHERTYPE_VLAN {
        return None;
    }
    Some(u16::from_be_bytes(frame.get(14..16)?.try_into().ok()?) & 0x0FFF)
}

/// `frame` with a tag for `vid` (priority 0) inserted after the MACs.
pub fn push_vlan(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + VLAN_TAG_LEN);
    out.extend_from_slice(&frame[..12.min(frame.len())]);
    out.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
    out.extend_from_slice(&(vid & 0x0FFF).to_be_bytes());
    out.extend_from_slice(frame.get(12..).unwrap_or(&[]));
    out
}

/// `frame` without its VLAN tag (unchanged if it has none).
pub fn pop_vlan(frame: &[u8]) -> Vec<u8> {
    if vlan_id(frame).is_none() {
        return frame.to_vec();
    }
    let mut out = Vec::with_capacity(frame.len() - VLAN_TAG_LEN);
    out.extend_from_slice(&frame[..12]);
    out.extend_from_slice(&frame[12 + VLAN_TAG_LEN..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_print_and_classify() {
        let m = MacAddr::parse("02:76:6d:00:00:07").unwrap();
        assert_eq!(m, MacAddr::vmscope(7));
        assert_eq!(m.to_string(), "02:76:6d:00:00:07");
        assert!(!m.is_group());
        assert!(MacAddr::BROADCAST.is_group() && MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::parse("01:00:5e:00:00:01").unwrap().is_group());
        for bad in [
            "02:76:6d:00:00",
            "02:76:6d:00:00:07:08",
            "0g:00:00:00:00:00",
            "2:76:6d:0:0:7",
        ] {
            assert_eq!(MacAddr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_vlan_tag_goes_in_and_comes_out() {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[0xFF; 6]);
        f[6..12].copy_from_slice(&MacAddr::vmscope(1).0);
        f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        assert_eq!(vlan_id(&f), None);
        let tagged = push_vlan(&f, 0x123);
        assert_eq!(tagged.len(), 64);
        assert_eq!(vlan_id(&tagged), Some(0x123));
        assert_eq!(source(&tagged), Some(MacAddr::vmscope(1)));
        assert_eq!(ethertype(&tagged[4..]), Some(ETHERTYPE_ARP));
        assert_eq!(pop_vlan(&tagged), f);
        assert_eq!(pop_vlan(&f), f);
    }
}

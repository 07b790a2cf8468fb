//! A second opinion on `devices::net::pcap`: Debian's tcpdump reads the file vmscope wrote.
//! Skips, saying so, when tcpdump is not installed (scripts/setup.sh installs it).

use std::process::Command;

use devices::net::frame::{self, MacAddr};
use devices::net::pcap::PcapWriter;

const A: MacAddr = MacAddr([0x02, 0x76, 0x6d, 0x00, 0x00, 0x01]);
const B: MacAddr = MacAddr([0x02, 0x76, 0x6d, 0x00, 0x00, 0x02]);

fn ethernet(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// ARP request: who has `target`? tell `sender_ip` (at `sender`).
fn arp_request(sender: MacAddr, sender_ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1]; // Ethernet, IPv4, 6/4-byte addresses, request
    p.extend_from_slice(&sender.0);
    p.extend_from_slice(&sender_ip);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&target);
    ethernet(MacAddr::BROADCAST, sender, frame::ETHERTYPE_ARP, &p)
}

/// The Internet checksum: one's-complement sum of 16-bit words, complemented.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

fn icmp_echo_request(src: [u8; 4], dst: [u8; 4], id: u16, seq: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"vmscope pcap test");
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 1, 0, 0]); // id 1, DF, TTL 64, ICMP
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    ip
}

#[test]
fn tcpdump_reads_what_the_writer_wrote() {
    if Command::new("tcpdump").arg("--version").output().is_err() {
        eprintln!("SKIP: tcpdump is not installed (Debian package tcpdump; scripts/setup.sh)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("vmscope-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("capture.pcap");

    let arp = arp_request(A, [10, 0, 0, 1], [10, 0, 0, 2]);
    let ping = ethernet(
        B,
        A,
        frame::ETHERTYPE_IPV4,
        &icmp_echo_request([10, 0, 0, 1], [10, 0, 0, 2], 0x1234, 1),
    );
    let tagged = frame::push_vlan(&ping, 5);
    assert_eq!(frame::vlan_id(&tagged), Some(5));

    let file = std::fs::File::create(&path).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(file)).unwrap();
    w.write_frame(1_500_000_000, &arp).unwrap();
    w.write_frame(1_500_250_000, &tagged).unwrap();
    w.flush().unwrap();
    assert_eq!((w.frames(), w.errors()), (2, 0));
    drop(w);

    let out = Command::new("tcpdump")
        .args(["-nn", "-e", "-r"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.status.success(), "tcpdump failed: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "two packets expected:\n{stdout}");
    // Timestamps are printed in local time; the sub-second part does not depend on the zone.
    assert!(lines[0].contains(".500000 "), "{}", lines[0]);
    assert!(lines[1].contains(".500250 "), "{}", lines[1]);
    for want in [
        "02:76:6d:00:00:01 > ff:ff:ff:ff:ff:ff",
        "ARP",
        "Request who-has 10.0.0.2 tell 10.0.0.1",
    ] {
        assert!(lines[0].contains(want), "{want:?} not in {:?}", lines[0]);
    }
    for want in [
        "02:76:6d:00:00:01 > 02:76:6d:00:00:02",
        "vlan 5",
        "10.0.0.1 > 10.0.0.2",
        "ICMP echo request",
        "id 4660, seq 1",
    ] {
        assert!(lines[1].contains(want), "{want:?} not in {:?}", lines[1]);
    }
}

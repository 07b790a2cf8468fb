//! The tap backend against the real kernel, inside a throwaway network namespace: Linux pings
//! an address that only this test answers, through the tap's descriptor (ARP, then ICMP echo).
//! Skips, saying why, without root, /dev/net/tun, `ip` (iproute2) or `ping` (iputils-ping).

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use host_backends::tap::Tap;

/// The address the test answers for, and its MAC (vmscope's prefix, guest 0x63).
const PEER_IP: [u8; 4] = [10, 77, 0, 2];
const PEER_MAC: [u8; 6] = [0x02, 0x76, 0x6d, 0x00, 0x00, 0x63];

fn ip(args: &[&str]) -> Output {
    Command::new("ip").args(args).output().expect("running ip")
}

fn ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespace, deleted when the test ends however it ends.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

/// The ping, killed if the test gives up on it.
struct Ping(Child);

impl Drop for Ping {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn why_skip() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (creating namespaces and taps needs it)".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("ping", "iputils-ping")] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Some(format!("`{tool}` not installed (Debian package {package})"));
        }
    }
    None
}

/// The Internet checksum of `bytes` (one's-complement sum of 16-bit words, complemented):
/// 0 over a header that carries its correct checksum.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ARP reply to a request for [`PEER_IP`], if `frame` is one.
fn answer_arp(frame: &[u8]) -> Option<Vec<u8>> {
    let arp = frame.get(14..42)?;
    // Ethernet/IPv4, request, for our address.
    if arp[0..8] != [0, 1, 0x08, 0x00, 6, 4, 0, 1] || arp[24..28] != PEER_IP {
        return None;
    }
    let (sender_mac, sender_ip) = (&arp[8..14], &arp[14..18]);
    let mut reply = Vec::with_capacity(42);
    reply.extend_from_slice(sender_mac);
    reply.extend_from_slice(&PEER_MAC);
    reply.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    reply.extend_from_slice(&PEER_MAC);
    reply.extend_from_slice(&PEER_IP);
    reply.extend_from_slice(sender_mac);
    reply.extend_from_slice(sender_ip);
    Some(reply)
}

/// An echo reply to an ICMP echo request for [`PEER_IP`], if `frame` is one (its checksums
/// checked).
fn answer_ping(frame: &[u8]) -> Option<Vec<u8>> {
    let ip_start = 14;
    let header_len = usize::from(frame.get(ip_start)? & 0x0F) * 4;
    let ip_header = frame.get(ip_start..ip_start + header_len)?;
    let total = usize::from(u16::from_be_bytes([ip_header[2], ip_header[3]]));
    if ip_header[0] >> 4 != 4 || ip_header[9] != 1 || ip_header[16..20] != PEER_IP {
        return None;
    }
    let icmp = frame.get(ip_start + header_len..ip_start + total)?;
    if icmp[0] != 8 {
        return None;
    }
    assert_eq!(checksum(ip_header), 0, "Linux sent a bad IP checksum?");
    assert_eq!(checksum(icmp), 0, "Linux sent a bad ICMP checksum?");

    let mut reply = Vec::with_capacity(14 + total);
    reply.extend_from_slice(&frame[6..12]);
    reply.extend_from_slice(&PEER_MAC);
    reply.extend_from_slice(&[0x08, 0x00]);
    let mut ip = ip_header.to_vec();
    ip[8] = 64; // TTL
    ip[12..16].copy_from_slice(&PEER_IP);
    ip[16..20].copy_from_slice(&ip_header[12..16]);
    ip[10..12].fill(0);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut echo = icmp.to_vec();
    echo[0] = 0; // echo reply; code, identifier, sequence and data stay
    echo[2..4].fill(0);
    let c = checksum(&echo);
    echo[2..4].copy_from_slice(&c.to_be_bytes());
    reply.extend_from_slice(&ip);
    reply.extend_from_slice(&echo);
    Some(reply)
}

#[test]
fn linux_pings_through_a_tap_in_a_namespace_and_the_test_answers() {
    if let Some(why) = why_skip() {
        eprintln!("SKIP: tap test: {why}");
        return;
    }
    let pid = std::process::id();
    let ns = Netns(format!("vmscope-tap-test-{pid}"));
    let add = ip(&["netns", "add", &ns.0]);
    if !add.status.success() {
        eprintln!(
            "SKIP: tap test: cannot create a network namespace: {}",
            String::from_utf8_lossy(&add.stderr)
        );
        return;
    }
    let name = format!("vmtap{}", pid % 100_000);
    let mut tap = Tap::open_in_netns(&name, &ns.0).expect("opening the tap in the namespace");
    assert_eq!(
        (tap.name(), tap.netns()),
        (name.as_str(), Some(ns.0.as_str()))
    );
    // It exists inside the namespace and not in the host's.
    ok(&["-n", &ns.0, "link", "show", "dev", &name]);
    assert!(!ip(&["link", "show", "dev", &name]).status.success());
    let mut buf = vec![0u8; 65536];
    assert_eq!(
        tap.read_frame(&mut buf).unwrap(),
        None,
        "down: nothing to read"
    );

    ok(&["-n", &ns.0, "link", "set", "dev", &name, "up"]);
    ok(&["-n", &ns.0, "addr", "add", "10.77.0.1/24", "dev", &name]);
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            "ping",
            "-c",
            "2",
            "-W",
            "2",
            "10.77.0.2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting ping");
    let mut ping = Ping(ping);

    let (mut arp_replies, mut echo_replies) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = ping.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "ping did not finish in 20 s");
        let Some(n) = tap.read_frame(&mut buf).unwrap() else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        let frame = &buf[..n];
        let reply = match frame.get(12..14) {
            Some([0x08, 0x06]) => answer_arp(frame).inspect(|_| arp_replies += 1),
            Some([0x08, 0x00]) => answer_ping(frame).inspect(|_| echo_replies += 1),
            _ => None, // IPv6 neighbour discovery and the like
        };
        if let Some(reply) = reply {
            tap.write_frame(&reply).unwrap();
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    ping.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    ping.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stdout.contains("2 packets transmitted, 2 received"),
        "ping ({status}):\n{stdout}{stderr}"
    );
    assert!(arp_replies >= 1, "no ARP request seen");
    assert_eq!(echo_replies, 2);
    // ping (a raw socket) is handed replies before the kernel checks their ICMP checksum; the
    // kernel's own ICMP counters in the namespace say whether they were right.
    let icmp = icmp_counters(&ns.0);
    assert_eq!((icmp("InCsumErrors"), icmp("InEchoReps")), (0, 2));
}

/// The `Icmp:` counters of /proc/net/snmp as seen inside `netns`.
fn icmp_counters(netns: &str) -> impl Fn(&str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "cat", "/proc/net/snmp"])
        .output()
        .expect("reading /proc/net/snmp in the namespace");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Two lines start with "Icmp:": the names, then the values.
    let mut lines = text.lines().filter(|l| l.starts_with("Icmp:"));
    let names: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let values: Vec<u64> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    move |name: &str| {
        let at = names.iter().skip(1).position(|n| n == name);
        at.and_then(|i| values.get(i).copied())
            .unwrap_or_else(|| panic!("no Icmp counter {name} in:\n{text}"))
    }
}

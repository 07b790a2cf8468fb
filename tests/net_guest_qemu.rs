//! The teaching kernel's network stack against QEMU's NICs: two QEMUs joined by a socket
//! netdev, every pairing of QEMU's rtl8139 and virtio-net-pci (modern), ping/pong one way and
//! udp-send/udp-recv the other, with the checksums the host computes from the workloads'
//! definitions (guests/kernel/net.S); a lost reply and a machine without a NIC as well.
//! Teaches: an independent implementation of a device is the oracle for a driver — here
//! QEMU's, before vmscope's own NIC models are checked against the same kernel.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// isa-debug-exit values (guests/kernel/layout.inc) and QEMU's status for them, (v << 1) | 1.
const OK: i32 = (0x10 << 1) | 1;
const NO_NIC: i32 = (0x21 << 1) | 1;
/// One QEMU may take this long (TCG boot, ARP, the workloads) before it is killed.
const QEMU_DEADLINE: Duration = Duration::from_secs(25);
const PINGS: u64 = 5;
const DATAGRAMS: u64 = 200;

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01B3;

/// console.S's fold: h = (h XOR word) × FNV_PRIME.
fn fold(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(FNV_PRIME)
}

/// ping's checksum when the replies to `seqs` came back (and pong's for the requests it
/// answered): every payload is seven words, word i of sequence number s = s << 32 | i. With
/// every reply, what the host's `expected_ping_checksum` says.
fn ping_checksum(seqs: impl IntoIterator<Item = u64>) -> u64 {
    seqs.into_iter().fold(FNV_OFFSET, |h, seq| {
        (0..7).fold(h, |h, i| fold(h, (seq << 32) | i))
    })
}

use vmscope::compare::suite::expected_udp_checksum as udp_checksum;

#[derive(Clone, Copy, Debug)]
enum Nic {
    Rtl8139,
    VirtioNet,
}

impl Nic {
    fn device(self) -> &'static str {
        match self {
            Nic::Rtl8139 => "rtl8139",
            Nic::VirtioNet => "virtio-net-pci,disable-legacy=on",
        }
    }
    /// How the kernel names where it found the NIC (QEMU's first free slot is 00:03.0).
    fn found(self) -> &'static str {
        match self {
            Nic::Rtl8139 => "net: rtl8139, pci 00:03.0, i/o ports 0x",
            Nic::VirtioNet => "net: virtio-net, virtio-pci at 00:03.0, registers at 0x",
        }
    }
}

fn qemu_available() -> bool {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A QEMU running the kernel with `append`, its NIC on `netdev` (none if `None`).
fn spawn(kernel: &Path, append: &str, nic: Option<(Nic, &str, &str)>) -> Child {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel",
        "tcg",
        "-m",
        "64",
        "-display",
        "none",
        "-no-reboot",
    ])
    .args(["-monitor", "none", "-serial", "stdio", "-nic", "none"])
    .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
    .arg("-kernel")
    .arg(kernel)
    .args(["-append", append]);
    if let Some((nic, netdev, mac)) = nic {
        cmd.args(["-netdev", netdev])
            .args(["-device", &format!("{},netdev=n0,mac={mac}", nic.device())]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting qemu-system-x86_64")
}

/// Waits for a QEMU until `deadline`, killing it then; (exit status or -1, serial, stderr).
fn finish(mut child: Child, deadline: Instant) -> (i32, String, String) {
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, out.replace("\r\n", "\n"), err)
}

/// A free TCP port on the loopback (free a moment ago: QEMU binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Guest {
    status: i32,
    serial: String,
    stderr: String,
}

/// Guest A (10.0.0.1, listening) and guest B (10.0.0.2, connecting) on one link.
fn pair(kernel: &Path, a: (Nic, &str), b: (Nic, &str)) -> (Guest, Guest) {
    let port = free_port();
    let deadline = Instant::now() + QEMU_DEADLINE;
    let listen = format!("socket,id=n0,listen=127.0.0.1:{port}");
    let connect = format!("socket,id=n0,connect=127.0.0.1:{port}");
    let guest_a = spawn(
        kernel,
        &format!("workloads={} ip=10.0.0.1 peer=10.0.0.2", a.1),
        Some((a.0, &listen, "02:76:6d:00:00:01")),
    );
    // QEMU refuses to start when its connect= finds nobody listening yet (status 1): try
    // again. Any other status is the kernel's (isa-debug-exit): B ran — a quick sender may be
    // done within the 100 ms, and another B would find an A that waits for nobody.
    let b_append = format!("workloads={} ip=10.0.0.2 peer=10.0.0.1", b.1);
    let mut tries = 0;
    let guest_b = loop {
        std::thread::sleep(Duration::from_millis(100));
        let mut child = spawn(
            kernel,
            &b_append,
            Some((b.0, &connect, "02:76:6d:00:00:02")),
        );
        std::thread::sleep(Duration::from_millis(100));
        match child.try_wait().unwrap() {
            Some(s) if s.code() == Some(1) && tries < 30 => tries += 1,
            _ => break child,
        }
    };
    let (status, serial, stderr) = finish(guest_a, deadline);
    let ga = Guest {
        status,
        serial,
        stderr,
    };
    let (status, serial, stderr) = finish(guest_b, deadline);
    let gb = Guest {
        status,
        serial,
        stderr,
    };
    (ga, gb)
}

/// The RESULT lines: (workload, ops, checksum).
fn results(serial: &str) -> Vec<(String, u64, u64)> {
    serial
        .lines()
        .filter_map(|line| line.strip_prefix("RESULT "))
        .map(|rest| {
            let field = |key: &str| {
                rest.split(' ')
                    .find_map(|f| f.strip_prefix(key))
                    .unwrap_or_else(|| panic!("no {key} in {rest}"))
                    .to_string()
            };
            let checksum = field("checksum=0x");
            (
                field("workload="),
                field("ops=").parse().unwrap(),
                u64::from_str_radix(&checksum, 16).unwrap(),
            )
        })
        .collect()
}

/// The kernel image in a directory of the test's own (`tag`: the tests run in parallel).
fn kernel_file(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmscope-net-qemu-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kernel.elf");
    std::fs::write(&path, guests::KERNEL_ELF).unwrap();
    path
}

#[test]
fn the_kernel_pings_and_streams_udp_over_every_pairing_of_qemus_nics() {
    if !qemu_available() {
        eprintln!("skipped: qemu-system-x86_64 is not installed (scripts/setup.sh installs it)");
        return;
    }
    let kernel = kernel_file("pairings");
    let started = Instant::now();
    let want_ping = ping_checksum(1..=PINGS);
    assert_eq!(
        want_ping,
        vmscope::compare::suite::expected_ping_checksum(PINGS)
    );
    let want_udp = udp_checksum(DATAGRAMS);
    for (nic_a, nic_b) in [
        (Nic::Rtl8139, Nic::Rtl8139),
        (Nic::Rtl8139, Nic::VirtioNet),
        (Nic::VirtioNet, Nic::Rtl8139),
        (Nic::VirtioNet, Nic::VirtioNet),
    ] {
        // A pings B, then B sends A datagrams: both directions, both roles, one boot each.
        let wa = format!("ping:{PINGS},udp-recv:{DATAGRAMS}");
        let wb = format!("pong:{PINGS},udp-send:{DATAGRAMS}");
        let (a, b) = pair(&kernel, (nic_a, &wa), (nic_b, &wb));
        let what = format!(
            "A {nic_a:?} ({wa}) and B {nic_b:?} ({wb})\n--- A:\n{}{}\n--- B:\n{}{}",
            a.serial, a.stderr, b.serial, b.stderr
        );
        assert_eq!((a.status, b.status), (OK, OK), "{what}");
        assert!(a.serial.contains(nic_a.found()), "{what}");
        assert!(b.serial.contains(nic_b.found()), "{what}");
        assert!(
            a.serial.contains("; mac 02:76:6d:00:00:01 ip 10.0.0.1\n"),
            "{what}"
        );
        assert!(
            b.serial.contains("; mac 02:76:6d:00:00:02 ip 10.0.0.2\n"),
            "{what}"
        );
        assert!(
            a.serial
                .contains("net: peer 10.0.0.2 is at 02:76:6d:00:00:02\n"),
            "{what}"
        );
        assert!(
            b.serial
                .contains("net: peer 10.0.0.1 is at 02:76:6d:00:00:01\n"),
            "{what}"
        );
        for seq in 1..=PINGS {
            assert!(
                a.serial
                    .contains(&format!("ping: reply from 10.0.0.2 seq={seq}\n")),
                "{what}"
            );
            assert!(
                b.serial
                    .contains(&format!("pong: echo request from 10.0.0.1 seq={seq}\n")),
                "{what}"
            );
        }
        assert_eq!(
            results(&a.serial),
            [
                ("ping".to_string(), PINGS, want_ping),
                ("udp-recv".to_string(), DATAGRAMS, want_udp)
            ],
            "{what}"
        );
        assert_eq!(
            results(&b.serial),
            [
                ("pong".to_string(), PINGS, want_ping),
                ("udp-send".to_string(), DATAGRAMS, want_udp)
            ],
            "{what}"
        );
    }
    eprintln!("four pairings in {:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(kernel.parent().unwrap());
}

/// A burst: udp-send of BURST datagrams as fast as the sender's NIC takes them, into a
/// receiver that sleeps whenever its busy polls find nothing — it must wake on the NIC's
/// interrupt (guests/kernel/net.S, net_receive), not at the next tick, or its queue overflows
/// (on vmscope; QEMU's socket netdev holds frames back while the receiving NIC has no room,
/// so here it checks that waking on receive works and loses nothing). Both NICs as receiver.
#[test]
fn a_burst_of_datagrams_reaches_a_receiver_that_sleeps_between_them() {
    if !qemu_available() {
        eprintln!("skipped: qemu-system-x86_64 is not installed (scripts/setup.sh installs it)");
        return;
    }
    const BURST: u64 = 2000;
    let kernel = kernel_file("burst");
    let want = udp_checksum(BURST);
    for (receiver, sender) in [
        (Nic::Rtl8139, Nic::VirtioNet),
        (Nic::VirtioNet, Nic::Rtl8139),
    ] {
        let wa = format!("udp-recv:{BURST}");
        let wb = format!("udp-send:{BURST}");
        let (a, b) = pair(&kernel, (receiver, &wa), (sender, &wb));
        let what = format!(
            "A {receiver:?} ({wa}) and B {sender:?} ({wb})\n--- A:\n{}{}\n--- B:\n{}{}",
            a.serial, a.stderr, b.serial, b.stderr
        );
        assert_eq!((a.status, b.status), (OK, OK), "{what}");
        assert_eq!(
            results(&a.serial),
            [("udp-recv".to_string(), BURST, want)],
            "{what}"
        );
        assert_eq!(
            results(&b.serial),
            [("udp-send".to_string(), BURST, want)],
            "{what}"
        );
    }
    let _ = std::fs::remove_dir_all(kernel.parent().unwrap());
}

#[test]
fn a_lost_reply_times_out_and_changes_the_checksum() {
    if !qemu_available() {
        eprintln!("skipped: qemu-system-x86_64 is not installed (scripts/setup.sh installs it)");
        return;
    }
    let kernel = kernel_file("timeout");
    // pong answers two requests and stops: the third goes unanswered for ping's 1 s.
    let (a, b) = pair(
        &kernel,
        (Nic::VirtioNet, "ping:3"),
        (Nic::Rtl8139, "pong:2"),
    );
    let what = format!(
        "--- A:\n{}{}\n--- B:\n{}{}",
        a.serial, a.stderr, b.serial, b.stderr
    );
    assert_eq!((a.status, b.status), (OK, OK), "{what}");
    assert!(
        a.serial.contains("ping: reply from 10.0.0.2 seq=2\n"),
        "{what}"
    );
    assert!(a.serial.contains("ping: timeout seq=3\n"), "{what}");
    let got = ping_checksum(1..=2);
    assert_ne!(got, ping_checksum(1..=3));
    assert_eq!(results(&a.serial), [("ping".to_string(), 3, got)], "{what}");
    assert_eq!(results(&b.serial), [("pong".to_string(), 2, got)], "{what}");

    // No NIC at all: the prepare step says so and the kernel ends with EXIT_NO_NIC.
    let child = spawn(&kernel, "workloads=ping:1", None);
    let (status, serial, err) = finish(child, Instant::now() + QEMU_DEADLINE);
    assert_eq!(status, NO_NIC, "{serial}{err}");
    assert!(
        serial.contains("net: the network workloads need a NIC and there is none"),
        "{serial}"
    );
    let _ = std::fs::remove_dir_all(kernel.parent().unwrap());
}

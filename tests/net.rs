//! `vmscope net` end to end: two teaching kernels ping each other and stream UDP through the
//! switch on every engine pairing and NIC, a guest in another VLAN is unreachable, the pcap
//! files read back with Debian's tcpdump, and Linux's own ping reaches a guest through a tap.
//! Teaches: a network test needs a peer that was not written by the same hand — here QEMU
//! (tests/net_guest_qemu.rs), tcpdump and the host's Linux.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::netns::{tcpdump, Netns};
use support::*;
use vmscope::compare::suite::{expected_ping_checksum, expected_udp_checksum, parse_results};
use vmscope::EngineChoice;

const OK: i32 = 33; // isa-debug-exit 0x10
const NET_TIMEOUT: i32 = guests::qemu_exit_status(guests::exit::KERNEL_NET_TIMEOUT) as i32;
const PINGS: u64 = 3;
const DATAGRAMS: u64 = 300;

fn engine_name(e: EngineChoice) -> &'static str {
    match e {
        EngineChoice::Interp => "interp",
        EngineChoice::Bt => "bt",
        EngineChoice::Kvm => "kvm",
        other => panic!("no CLI name for {other:?}"),
    }
}

/// Runs `vmscope net ARGS`; (status, stdout, stderr).
fn net(args: &[String]) -> (i32, String, String) {
    let mut all = vec!["net".to_string()];
    all.extend_from_slice(args);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = vmscope(&refs);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lines guest `name` printed, without their `name | ` prefix.
fn console(stdout: &str, name: &str) -> String {
    let prefix = format!("{name} | ");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// (workload, ops, checksum) of every RESULT line guest `name` printed.
fn results(stdout: &str, name: &str) -> Vec<(String, u64, u64)> {
    parse_results(&console(stdout, name))
        .unwrap()
        .into_iter()
        .map(|r| (r.workload, r.ops, r.checksum))
        .collect()
}

fn vm(engine: &str, nic: &str, extra: &str, cmdline: &str) -> String {
    format!("--vm=kernel,engine={engine},nic={nic}{extra},cmdline={cmdline}")
}

#[test]
fn two_guests_ping_and_stream_on_every_engine_pairing_and_nic() {
    let engines = engines_with_kvm();
    let nics = ["virtio", "rtl8139", "virtio-mmio"];
    let mut pairs = Vec::new();
    for (i, &a) in engines.iter().enumerate() {
        for &b in &engines[i..] {
            pairs.push((a, b));
        }
    }
    for (k, (a, b)) in pairs.into_iter().enumerate() {
        let (nic_a, nic_b) = (nics[k % 3], nics[(k + 1) % 3]);
        let what = format!("{a:?}/{nic_a} ↔ {b:?}/{nic_b}");
        let (status, out, err) = net(&[
            vm(
                engine_name(a),
                nic_a,
                "",
                &format!("workloads=ping:{PINGS},udp-send:{DATAGRAMS} ip=10.0.0.1 peer=10.0.0.2"),
            ),
            vm(
                engine_name(b),
                nic_b,
                "",
                &format!("workloads=pong:{PINGS},udp-recv:{DATAGRAMS} ip=10.0.0.2 peer=10.0.0.1"),
            ),
            "--stats".into(),
        ]);
        assert_eq!(status, OK, "{what}\n{out}{err}");
        let ping = expected_ping_checksum(PINGS);
        let udp = expected_udp_checksum(DATAGRAMS);
        assert_eq!(
            results(&out, "vm0"),
            [
                ("ping".into(), PINGS, ping),
                ("udp-send".into(), DATAGRAMS, udp)
            ],
            "{what}\n{out}"
        );
        assert_eq!(
            results(&out, "vm1"),
            [
                ("pong".into(), PINGS, ping),
                ("udp-recv".into(), DATAGRAMS, udp)
            ],
            "{what}\n{out}"
        );
        for seq in 1..=PINGS {
            assert!(
                console(&out, "vm0").contains(&format!("ping: reply from 10.0.0.2 seq={seq}")),
                "{what}\n{out}"
            );
        }
        // The switch learned both stations on their own ports.
        assert!(err.contains("02:76:6d:00:00:01    1  vm0"), "{what}\n{err}");
        assert!(err.contains("02:76:6d:00:00:02    1  vm1"), "{what}\n{err}");
    }
}

#[test]
fn a_guest_in_another_vlan_is_unreachable_and_captures_read_back_with_tcpdump() {
    let dir = std::env::temp_dir().join(format!("vmscope-net-pcap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The pinging guest on kvm where it works: isolation must not depend on the engine.
    let first = engine_name(*engines_with_kvm().last().unwrap());
    let (status, out, err) = net(&[
        vm(
            first,
            "virtio",
            ",vlan=10",
            "workloads=ping:2 ip=10.0.0.1 peer=10.0.0.2",
        ),
        vm(
            "interp",
            "rtl8139",
            ",vlan=10",
            "workloads=pong:2 ip=10.0.0.2 peer=10.0.0.1",
        ),
        // Same subnet, asks for the same peer — but its port is in VLAN 20.
        vm(
            "bt",
            "virtio",
            ",vlan=20,name=outsider",
            "workloads=ping:1 ip=10.0.0.3 peer=10.0.0.2",
        ),
        format!("--pcap={}", dir.display()),
        "--stats".into(),
    ]);
    assert_eq!(status, 1, "the guests ended differently\n{out}{err}");
    assert!(err.contains("vm0: guest wrote 0x10"), "{err}");
    assert!(err.contains("vm1: guest wrote 0x10"), "{err}");
    assert!(
        err.contains(&format!(
            "outsider: guest wrote 0x23 to isa-debug-exit: exit status {NET_TIMEOUT}"
        )),
        "the outsider's ARP went unanswered: {err}"
    );
    assert_eq!(
        results(&out, "vm1"),
        [("pong".into(), 2, expected_ping_checksum(2))]
    );
    assert!(
        console(&out, "outsider").contains("no ARP answer from 10.0.0.2"),
        "{out}"
    );

    let Some(tcpdump) = tcpdump() else {
        return eprintln!(
            "pcap check skipped: tcpdump is not installed (scripts/setup.sh installs it)"
        );
    };
    let read = |port: &str| {
        let out = Command::new(&tcpdump)
            .args(["-nn", "-e", "-r"])
            .arg(dir.join(format!("{port}.pcap")))
            .output()
            .expect("running tcpdump");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let vm1 = read("vm1");
    for want in [
        "02:76:6d:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Request who-has 10.0.0.2 tell 10.0.0.1",
        "Reply 10.0.0.2 is-at 02:76:6d:00:00:02",
        "10.0.0.1 > 10.0.0.2: ICMP echo request, id 30317, seq 1, length 64",
        "10.0.0.2 > 10.0.0.1: ICMP echo reply, id 30317, seq 2, length 64",
    ] {
        assert!(vm1.contains(want), "vm1.pcap lacks {want:?}:\n{vm1}");
    }
    let outsider = read("outsider");
    assert!(
        outsider.contains("Request who-has 10.0.0.2 tell 10.0.0.3"),
        "{outsider}"
    );
    assert!(
        !outsider.contains("10.0.0.1"),
        "VLAN 10's frames reached VLAN 20:\n{outsider}"
    );
    assert!(
        !vm1.contains("10.0.0.3"),
        "VLAN 20's broadcasts reached VLAN 10:\n{vm1}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn linux_pings_a_guest_through_a_tap_and_tcpdump_sees_it() {
    let ns = match Netns::new("tap") {
        Ok(ns) => ns,
        Err(why) => return eprintln!("skipped: {why}"),
    };
    let Some(tcpdump) = tcpdump() else {
        return eprintln!("skipped: tcpdump is not installed (scripts/setup.sh installs it)");
    };
    let tap = "vmstap0";
    let child = Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args([
            "net",
            "--vm=kernel,engine=bt,nic=rtl8139,cmdline=workloads=pong:3 ip=10.9.0.2 peer=10.9.0.1",
            &format!("--tap={tap}@{}", ns.0),
            "--timeout=60",
            "--stats",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting vmscope net");
    ns.configure(tap, "10.9.0.1/24");
    let capture = std::env::temp_dir().join(format!("vmscope-tap-{}.pcap", std::process::id()));
    let mut dump = ns
        .exec(&[tcpdump.to_str().unwrap(), "-i", tap, "-U", "-w"])
        .arg(&capture)
        .stderr(Stdio::null())
        .spawn()
        .expect("starting tcpdump");
    std::thread::sleep(Duration::from_millis(500)); // tcpdump opens the interface
    let ping = ns
        .exec(&["ping", "-c", "3", "-W", "5", "10.9.0.2"])
        .output()
        .expect("running ping");
    let ping_out = String::from_utf8_lossy(&ping.stdout).into_owned();
    let out = child.wait_with_output().unwrap();
    let _ = dump.kill();
    let _ = dump.wait();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        ping_out.contains("3 received"),
        "{ping_out}\n{stdout}{stderr}"
    );
    assert_eq!(out.status.code(), Some(OK), "{stdout}{stderr}");
    assert!(
        console(&stdout, "vm0").contains("pong: echo request from 10.9.0.1 seq=3"),
        "{stdout}"
    );
    let read = Command::new(&tcpdump)
        .args(["-nn", "-e", "-r"])
        .arg(&capture)
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&read.stdout);
    assert!(
        seen.contains("02:76:6d:00:00:01 > ")
            && seen.contains("10.9.0.2 > 10.9.0.1: ICMP echo reply"),
        "tcpdump on the host's side of the tap:\n{seen}"
    );
    let _ = std::fs::remove_file(&capture);
}

/// `compare --net` on the interpreter, where exit counts are deterministic: virtio-net takes at
/// least ten times fewer exits per packet than the RTL8139, both ways, and every cell's
/// datagrams arrived whole (the guest's and the station's checksums are the host's).
#[test]
fn compare_net_counts_ten_times_fewer_exits_per_packet_on_virtio() {
    let json =
        std::env::temp_dir().join(format!("vmscope-compare-net-{}.json", std::process::id()));
    let out = vmscope(&[
        "compare",
        "--net",
        "--engines",
        "interp",
        "--iterations",
        "200",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let cells = v["net"].as_array().unwrap();
    assert_eq!(cells.len(), 6, "3 NICs × 2 directions: {v}");
    let want = format!("{:#018x}", expected_udp_checksum(200));
    for c in cells {
        assert_eq!(c["checksum"], want.as_str(), "{c}");
        assert_eq!(c["packets"], 200);
    }
    let per_packet = |nic: &str, dir: &str| {
        cells
            .iter()
            .find(|c| c["nic"] == nic && c["direction"] == dir)
            .and_then(|c| c["exits_per_packet"].as_f64())
            .unwrap_or_else(|| panic!("no {nic} {dir} cell: {v}"))
    };
    for dir in ["send", "receive"] {
        let emulated = per_packet("rtl8139", dir);
        assert!(
            emulated >= 2.0,
            "an RTL8139 frame takes at least two register accesses: {emulated}"
        );
        for pv in ["virtio-net-pci", "virtio-net-mmio"] {
            let p = per_packet(pv, dir);
            assert!(
                emulated >= 10.0 * p,
                "{dir}: rtl8139 {emulated} vs {pv} {p}\n{stdout}"
            );
        }
    }
    assert!(stdout.contains("virtio-net-pci takes"), "{stdout}");
}

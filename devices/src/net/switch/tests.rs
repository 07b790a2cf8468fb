//! The switch's unit tests: learning, flooding, filtering, ageing, VLANs, bounds, capture.
//! Each builds a small switch, feeds it frames and looks at what every port would transmit.

use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use super::*;
use crate::net::frame::{ETHERTYPE_ARP, ETHERTYPE_IPV4};

fn mac(n: u16) -> MacAddr {
    MacAddr::vmscope(n)
}

/// A 60-byte IPv4 frame from `src` to `dst`; byte 14 carries `mark` to tell frames apart.
fn eth(dst: MacAddr, src: MacAddr, mark: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    f[14] = mark;
    f
}

fn port(sw: &mut Switch, name: &str, mode: PortMode) -> PortId {
    sw.add_port(PortConfig {
        name: name.into(),
        mode,
    })
}

fn access_switch(vids: &[u16]) -> (Switch, Vec<PortId>) {
    let mut sw = Switch::new();
    let ports = vids
        .iter()
        .enumerate()
        .map(|(i, &v)| port(&mut sw, &format!("p{i}"), PortMode::Access(v)))
        .collect();
    (sw, ports)
}

/// Takes every port's output: `out[i]` is what port i transmits.
fn drain(sw: &mut Switch) -> Vec<Vec<Vec<u8>>> {
    let ports: Vec<PortId> = sw.ports().collect();
    ports.into_iter().map(|p| sw.take_output(p)).collect()
}

/// How many frames each port transmits.
fn counts(sw: &mut Switch) -> Vec<usize> {
    drain(sw).iter().map(Vec::len).collect()
}

#[test]
fn unknown_destinations_flood_then_learned_ones_go_to_one_port() {
    let (mut sw, p) = access_switch(&[1, 1, 1]);
    let (a, b) = (mac(1), mac(2));
    // A → B: B unknown, flooded to the other two ports, never back to A's.
    sw.receive(p[0], &eth(b, a, 1), 0);
    let out = drain(&mut sw);
    assert_eq!(out[0].len(), 0, "no reflection");
    assert_eq!(out[1], [eth(b, a, 1)]);
    assert_eq!(out[2], [eth(b, a, 1)]);
    // B answers: A was learned on p0, so only p0 hears it.
    sw.receive(p[1], &eth(a, b, 2), 10);
    assert_eq!(counts(&mut sw), [1, 0, 0]);
    // And now B is known too.
    sw.receive(p[0], &eth(b, a, 3), 20);
    assert_eq!(counts(&mut sw), [0, 1, 0]);

    assert_eq!(
        sw.mac_table(30),
        [(a, 1, p[0], 10), (b, 1, p[1], 20)],
        "refreshed at 20 and learned at 10"
    );
    let s0 = sw.port_stats(p[0]);
    assert_eq!(
        (s0.rx_frames, s0.flooded, s0.learned, s0.tx_frames),
        (2, 1, 1, 1)
    );
    assert_eq!(s0.rx_bytes, 120);
    assert_eq!(sw.port_stats(p[1]).flooded, 0);
    assert_eq!(sw.port_stats(p[2]).tx_frames, 1);
}

#[test]
fn broadcast_and_multicast_always_flood() {
    let (mut sw, p) = access_switch(&[1, 1, 1]);
    let multicast = MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]);
    sw.receive(p[2], &eth(mac(1), mac(3), 0), 0); // learn 3 on p2
    drain(&mut sw);
    for dst in [MacAddr::BROADCAST, multicast] {
        sw.receive(p[0], &eth(dst, mac(1), 0), 1);
        assert_eq!(counts(&mut sw), [0, 1, 1], "{dst}");
    }
    assert_eq!(sw.port_stats(p[0]).flooded, 2);
}

#[test]
fn a_frame_for_a_station_on_the_incoming_port_is_filtered() {
    let (mut sw, p) = access_switch(&[1, 1]);
    let (a, c) = (mac(1), mac(3));
    // A and C share the segment behind p0 (a hub, or another switch).
    sw.receive(p[0], &eth(MacAddr::BROADCAST, c, 0), 0);
    drain(&mut sw);
    sw.receive(p[0], &eth(c, a, 0), 1);
    assert_eq!(counts(&mut sw), [0, 0]);
    assert_eq!(sw.port_stats(p[0]).filtered, 1);
}

#[test]
fn a_station_that_moves_is_followed() {
    let (mut sw, p) = access_switch(&[1, 1, 1]);
    let (a, b) = (mac(1), mac(2));
    sw.receive(p[0], &eth(MacAddr::BROADCAST, a, 0), 0);
    sw.receive(p[1], &eth(MacAddr::BROADCAST, a, 0), 1);
    drain(&mut sw);
    sw.receive(p[2], &eth(a, b, 0), 2);
    assert_eq!(counts(&mut sw), [0, 1, 0]);
    assert_eq!(sw.moves(), 1);
}

#[test]
fn stations_age_out() {
    let (mut sw, p) = access_switch(&[1, 1, 1]);
    let (a, b) = (mac(1), mac(2));
    assert_eq!(sw.ageing_ns(), DEFAULT_AGEING_NS);
    sw.set_ageing_ns(1_000);
    sw.receive(p[0], &eth(MacAddr::BROADCAST, a, 0), 0);
    drain(&mut sw);
    // Exactly the ageing time later A is still known...
    sw.receive(p[1], &eth(a, b, 0), 1_000);
    assert_eq!(counts(&mut sw), [1, 0, 0]);
    assert_eq!(sw.mac_table(1_000).len(), 2);
    // ...one nanosecond more and it is forgotten: flooded again.
    assert_eq!(sw.mac_table(1_001), [(b, 1, p[1], 1)]);
    sw.receive(p[1], &eth(a, b, 0), 1_001);
    assert_eq!(counts(&mut sw), [1, 0, 1]);
    // Heard from again, it is learned again.
    sw.receive(p[0], &eth(b, a, 0), 1_500);
    assert_eq!(sw.port_stats(p[0]).learned, 2);
    assert_eq!(sw.mac_table(1_600).len(), 2);
    sw.age_out(2_400);
    assert_eq!(sw.mac_table(2_400), [(a, 1, p[0], 900)]);
}

#[test]
fn two_access_vlans_never_see_each_other() {
    let (mut sw, p) = access_switch(&[10, 10, 20, 20]);
    sw.receive(p[0], &eth(MacAddr::BROADCAST, mac(1), 0), 0);
    assert_eq!(counts(&mut sw), [0, 1, 0, 0]);
    sw.receive(p[2], &eth(MacAddr::BROADCAST, mac(3), 0), 1);
    assert_eq!(counts(&mut sw), [0, 0, 0, 1]);
    // A unicast to a MAC learned in VLAN 20 is, in VLAN 10, just unknown: flooded in VLAN 10.
    sw.receive(p[1], &eth(mac(3), mac(2), 0), 2);
    assert_eq!(counts(&mut sw), [1, 0, 0, 0]);
    // The same MAC in both VLANs is two stations.
    sw.receive(p[3], &eth(MacAddr::BROADCAST, mac(1), 0), 3);
    drain(&mut sw);
    let table: Vec<(MacAddr, u16, PortId)> = sw
        .mac_table(3)
        .into_iter()
        .map(|(m, v, p, _)| (m, v, p))
        .collect();
    assert!(table.contains(&(mac(1), 10, p[0])) && table.contains(&(mac(1), 20, p[3])));
}

#[test]
fn trunks_tag_and_untag_with_a_native_vlan() {
    let mut sw = Switch::new();
    let a10 = port(&mut sw, "a10", PortMode::Access(10));
    let a20 = port(&mut sw, "a20", PortMode::Access(20));
    let trunk = PortMode::Trunk {
        native: Some(10),
        allowed: VlanSet::List(vec![20, 30]),
    };
    let t = port(&mut sw, "trunk", trunk);
    let bc = |src| eth(MacAddr::BROADCAST, mac(src), 0);

    // VLAN 10 is native on the trunk: leaves untagged. VLAN 20 leaves tagged.
    sw.receive(a10, &bc(1), 0);
    assert_eq!(drain(&mut sw)[t.index()], [bc(1)]);
    sw.receive(a20, &bc(2), 0);
    assert_eq!(drain(&mut sw)[t.index()], [frame::push_vlan(&bc(2), 20)]);
    // In from the trunk: a tag of 20 reaches the VLAN 20 access port without it...
    sw.receive(t, &frame::push_vlan(&bc(3), 20), 0);
    assert_eq!(drain(&mut sw), [vec![], vec![bc(3)], vec![]]);
    // ...an untagged frame is in the native VLAN 10...
    sw.receive(t, &bc(4), 0);
    assert_eq!(drain(&mut sw), [vec![bc(4)], vec![], vec![]]);
    // ...and so is a frame tagged with the native VLAN itself.
    sw.receive(t, &frame::push_vlan(&bc(5), 10), 0);
    assert_eq!(drain(&mut sw), [vec![bc(5)], vec![], vec![]]);
    // VLAN 30 is allowed but has no other member; 40 is not allowed; 0 and 4095 are no VLAN.
    for vid in [30, 40, 0, 4095] {
        sw.receive(t, &frame::push_vlan(&bc(6), vid), 0);
    }
    assert_eq!(counts(&mut sw), [0, 0, 0]);
    assert_eq!(sw.port_stats(t).dropped_vlan, 3);
    // A tagged frame on an access port is dropped.
    sw.receive(a10, &frame::push_vlan(&bc(7), 10), 0);
    assert_eq!(counts(&mut sw), [0, 0, 0]);
    assert_eq!(sw.port_stats(a10).dropped_vlan, 1);
    // Unicast learned through the trunk goes back tagged.
    sw.receive(a20, &eth(mac(3), mac(2), 9), 1);
    assert_eq!(
        drain(&mut sw)[t.index()],
        [frame::push_vlan(&eth(mac(3), mac(2), 9), 20)]
    );
}

#[test]
fn trunk_to_trunk_keeps_the_tag_and_a_trunk_without_native_drops_untagged() {
    let mut sw = Switch::new();
    let all = || PortMode::Trunk {
        native: None,
        allowed: VlanSet::All,
    };
    let t1 = port(&mut sw, "t1", all());
    let range = PortMode::Trunk {
        native: None,
        allowed: VlanSet::Range(100, 199),
    };
    let t2 = port(&mut sw, "t2", range);
    let tagged = frame::push_vlan(&eth(MacAddr::BROADCAST, mac(1), 0), 150);
    sw.receive(t1, &tagged, 0);
    assert_eq!(drain(&mut sw), [vec![], vec![tagged]]);
    sw.receive(
        t1,
        &frame::push_vlan(&eth(MacAddr::BROADCAST, mac(1), 0), 200),
        0,
    );
    sw.receive(t1, &eth(MacAddr::BROADCAST, mac(1), 0), 0);
    assert_eq!(counts(&mut sw), [0, 0]);
    assert_eq!(
        sw.port_stats(t1).dropped_vlan,
        1,
        "untagged without a native VLAN"
    );
    assert_eq!(sw.port_stats(t1).flooded, 2, "VLAN 200 has no other member");
    assert_eq!(sw.port_stats(t2).tx_frames, 1);
}

#[test]
fn runts_giants_and_cut_tags_are_dropped_and_counted() {
    let mut sw = Switch::new();
    let a = port(&mut sw, "a", PortMode::Access(1));
    let t = port(
        &mut sw,
        "t",
        PortMode::Trunk {
            native: None,
            allowed: VlanSet::All,
        },
    );
    let mut giant = eth(MacAddr::BROADCAST, mac(1), 0);
    giant.resize(MAX_FRAME + 1, 0);
    let mut cut_tag = eth(MacAddr::BROADCAST, mac(1), 0);
    cut_tag[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
    cut_tag.truncate(16);
    for f in [&[0u8; 13][..], &[], &giant, &cut_tag] {
        sw.receive(a, f, 0);
    }
    assert_eq!(counts(&mut sw), [0, 0]);
    let s = sw.port_stats(a);
    assert_eq!((s.rx_frames, s.dropped_size, s.learned), (4, 4, 0));
    // The largest untagged frame fits; tagged for the trunk it would be a giant.
    let mut biggest = eth(MacAddr::BROADCAST, mac(1), 0);
    biggest.resize(MAX_FRAME, 0);
    sw.receive(a, &biggest, 0);
    assert_eq!(counts(&mut sw), [0, 0]);
    assert_eq!(sw.port_stats(t).dropped_size, 1);
    // The shortest frame (a bare header) is fine.
    sw.receive(a, &eth(MacAddr::BROADCAST, mac(1), 0)[..MIN_FRAME], 0);
    assert_eq!(counts(&mut sw), [0, 1]);
}

#[test]
fn a_group_source_is_never_learned() {
    let (mut sw, p) = access_switch(&[1, 1]);
    let group = MacAddr([0x01, 0x00, 0x5e, 0, 0, 9]);
    sw.receive(p[0], &eth(MacAddr::BROADCAST, group, 0), 0);
    assert_eq!(counts(&mut sw), [0, 0]);
    assert_eq!(sw.port_stats(p[0]).dropped_source, 1);
    assert!(sw.mac_table(0).is_empty());
}

#[test]
fn a_port_that_never_drains_stays_bounded_and_blocks_no_one() {
    let (mut sw, p) = access_switch(&[1, 1, 1]);
    let frames = 1_000;
    let mut reached_p2 = 0;
    for i in 0..frames {
        sw.receive(p[0], &eth(MacAddr::BROADCAST, mac(1), i as u8), i);
        if i % 10 == 9 {
            reached_p2 += sw.take_output(p[2]).len();
        }
    }
    assert_eq!(reached_p2, frames as usize);
    assert_eq!(sw.queued(p[1]), LINK_QUEUE_LIMIT);
    let s1 = sw.port_stats(p[1]);
    assert_eq!(s1.tx_frames, LINK_QUEUE_LIMIT as u64);
    assert_eq!(s1.dropped_full, frames - LINK_QUEUE_LIMIT as u64);
    assert_eq!(sw.port_stats(p[2]).dropped_full, 0);
    // The oldest frames are the ones kept.
    assert_eq!(sw.take_output(p[1])[0][14], 0);
}

#[test]
fn a_mac_flood_fills_the_table_and_no_more() {
    let (mut sw, p) = access_switch(&[1, 1]);
    sw.set_ageing_ns(1_000_000);
    let flood = DEFAULT_MAC_TABLE_LIMIT as u64 + 1_000;
    for i in 0..flood {
        let src = MacAddr([0x02, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        sw.receive(p[0], &eth(MacAddr::BROADCAST, src, 0), i);
        if i % 200 == 0 {
            drain(&mut sw);
        }
    }
    assert_eq!(sw.mac_table(flood).len(), DEFAULT_MAC_TABLE_LIMIT);
    let s = sw.port_stats(p[0]);
    assert_eq!(s.learned, DEFAULT_MAC_TABLE_LIMIT as u64);
    assert_eq!(s.learn_refused, 1_000);
    // Frames from stations not learned still get through (flooded).
    assert_eq!(sw.port_stats(p[1]).tx_frames, flood);
    // Once the old entries age out, there is room again.
    sw.receive(p[1], &eth(MacAddr::BROADCAST, mac(7), 0), 2_000_000);
    assert_eq!(sw.mac_table(2_000_000), [(mac(7), 1, p[1], 0)]);
    // A smaller bound is honoured for new stations.
    sw.set_mac_table_limit(1);
    sw.receive(p[1], &eth(MacAddr::BROADCAST, mac(8), 0), 2_000_001);
    assert_eq!(sw.mac_table(2_000_001).len(), 1);
}

/// (timestamp, frame) as a sink was given them.
type Captured = Vec<(u64, Vec<u8>)>;

/// Records what it is given, for the tests.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Captured>>);

impl CaptureSink for Recorder {
    fn capture(&mut self, ts_ns: u64, frame: &[u8]) {
        self.0.lock().unwrap().push((ts_ns, frame.to_vec()));
    }
}

#[test]
fn captures_see_each_port_as_its_wire_carries_it() {
    let mut sw = Switch::new();
    let a = port(&mut sw, "a", PortMode::Access(20));
    let trunk = PortMode::Trunk {
        native: None,
        allowed: VlanSet::List(vec![20]),
    };
    let t = port(&mut sw, "t", trunk);
    let (on_a, on_t) = (Recorder::default(), Recorder::default());
    assert!(sw.set_capture(a, Some(Box::new(on_a.clone()))).is_none());
    sw.set_capture(t, Some(Box::new(on_t.clone())));
    let f = eth(MacAddr::BROADCAST, mac(1), 0);
    sw.receive(a, &f, 7);
    let runt = [0u8; 3];
    sw.receive(t, &runt, 8);
    assert_eq!(*on_a.0.lock().unwrap(), [(7, f.clone())]);
    assert_eq!(
        *on_t.0.lock().unwrap(),
        [(7, frame::push_vlan(&f, 20)), (8, runt.to_vec())]
    );
    // One pcap file for both ports: the shared writer.
    let pcap = Arc::new(Mutex::new(
        crate::net::pcap::PcapWriter::new(Vec::new()).unwrap(),
    ));
    sw.set_capture(a, Some(Box::new(pcap.clone())));
    sw.set_capture(t, Some(Box::new(pcap.clone())));
    sw.receive(a, &f, 9);
    assert_eq!(pcap.lock().unwrap().frames(), 2);
    assert!(sw.set_capture(a, None).is_some());
}

#[test]
fn the_report_lists_ports_and_stations() {
    let mut sw = Switch::new();
    let a = port(&mut sw, "guest0", PortMode::Access(1));
    let trunk = PortMode::Trunk {
        native: Some(1),
        allowed: VlanSet::Range(2, 9),
    };
    port(&mut sw, "uplink", trunk);
    let mut arp = eth(MacAddr::BROADCAST, mac(1), 0);
    arp[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    sw.receive(a, &arp, 0);
    let text = sw.report(1_500_000_000).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("port") && lines[0].contains("flooded"),
        "{text}"
    );
    assert!(
        lines[1].contains("guest0") && lines[1].contains("access 1"),
        "{text}"
    );
    assert!(
        lines[2].contains("uplink") && lines[2].contains("trunk 2-9 native 1"),
        "{text}"
    );
    assert!(
        lines[3].starts_with("MAC table: 1 of 4096 entries, ageing 300 s"),
        "{text}"
    );
    assert!(
        text.contains("02:76:6d:00:00:01    1  guest0") && text.contains("1.500 s"),
        "{text}"
    );
}

#[test]
fn bad_vlan_ids_are_refused() {
    assert!(PortMode::Access(0).validate().is_err());
    assert!(PortMode::Access(4095).validate().is_err());
    assert!(PortMode::Access(4094).validate().is_ok());
    let trunk = |native, allowed| PortMode::Trunk { native, allowed };
    assert!(trunk(Some(0), VlanSet::All).validate().is_err());
    assert!(trunk(None, VlanSet::Range(5, 4)).validate().is_err());
    assert!(trunk(None, VlanSet::List(vec![1, 4096]))
        .validate()
        .is_err());
    assert!(trunk(Some(1), VlanSet::Range(1, 4094)).validate().is_ok());
    let panicked = std::panic::catch_unwind(|| {
        Switch::new().add_port(PortConfig {
            name: "bad".into(),
            mode: PortMode::Access(5000),
        })
    });
    assert!(panicked.is_err());
}

fn any_mode() -> impl Strategy<Value = PortMode> {
    prop_oneof![
        (1u16..4).prop_map(PortMode::Access),
        (
            proptest::option::of(1u16..4),
            prop::collection::vec(1u16..5, 0..3)
        )
            .prop_map(|(native, list)| PortMode::Trunk {
                native,
                allowed: VlanSet::List(list)
            }),
        Just(PortMode::Trunk {
            native: None,
            allowed: VlanSet::All
        }),
    ]
}

/// A frame: a few MACs (so stations are learned and looked up), sometimes a tag of a few
/// VLANs, sometimes random bytes of any length, runts and giants included.
fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    let mac = (0u8..6).prop_map(|n| match n {
        0 => MacAddr::BROADCAST,
        1 => MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
        n => MacAddr::vmscope(u16::from(n)),
    });
    prop_oneof![
        (
            mac.clone(),
            mac,
            proptest::option::of(0u16..6),
            0usize..1600
        )
            .prop_map(|(dst, src, tag, len)| {
                let mut f = eth(dst, src, 0);
                f.resize(len.max(MIN_FRAME), 0);
                match tag {
                    Some(vid) => frame::push_vlan(&f, vid),
                    None => f,
                }
            }),
        prop::collection::vec(any::<u8>(), 0..1600),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_frames_never_panic_and_queues_stay_bounded(
        modes in prop::collection::vec(any_mode(), 1..5),
        steps in prop::collection::vec((0usize..5, any_frame(), any::<bool>(), 0u64..400), 1..600),
    ) {
        let mut sw = Switch::new();
        sw.set_ageing_ns(1_000);
        sw.set_mac_table_limit(3);
        let ports: Vec<PortId> = modes
            .into_iter()
            .enumerate()
            .map(|(i, mode)| port(&mut sw, &format!("p{i}"), mode))
            .collect();
        let mut now = 0;
        for (which, f, drain_it, dt) in steps {
            now += dt;
            let p = ports[which % ports.len()];
            sw.receive(p, &f, now);
            // Port 0 is never drained; the others sometimes.
            if drain_it && p.index() != 0 {
                for out in sw.take_output(p) {
                    prop_assert!((MIN_FRAME..=MAX_FRAME).contains(&out.len()));
                }
            }
            for &q in &ports {
                prop_assert!(sw.queued(q) <= LINK_QUEUE_LIMIT);
            }
            prop_assert!(sw.mac_table(now).len() <= 3);
        }
        let _ = sw.report(now).to_string();
    }
}

#[test]
fn a_switch_can_move_to_another_thread() {
    fn send<T: Send>(_: &T) {}
    send(&Switch::new());
}

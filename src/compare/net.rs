//! `vmscope compare --net`: the same UDP stream through the emulated RTL8139 and through
//! virtio-net (PCI and mmio), sent and received, on every engine: packets per second and
//! exits (NIC register accesses) per packet.
//! Teaches: the paravirtual NIC's whole point in one number — an emulated chip costs several
//! traps per frame, virtio one doorbell per batch — measured, not asserted.
//!
//! Each cell boots the teaching kernel twice with one NIC, once with no datagrams and once
//! with N, and divides the differences by N. The guest's peer is a host-side
//! [`Station`] on its cable: it answers ARP, sinks `udp-send`'s datagrams (checking their
//! fold against the host's `suite::expected_udp_checksum`) and feeds `udp-recv` its
//! datagrams, at most `net::FRAMES_PER_TURN` per 200 µs turn (the cable's speed). Time is
//! the guest TSC where it is host time (KVM), else the difference of the two wall times.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use devices::net::{MacAddr, NetLink};
use devices::placement::{attach_nic, NicModel, VirtioPlacement};
use emulator::{Exit, Machine, RunLimit};
use serde::Serialize;

use super::engines::{self, EngineId};
use super::suite;
use crate::net::station::Station;
use crate::net::{nic_accesses, FRAMES_PER_TURN, SLICE_NS};

pub const NICS: [NicModel; 3] = [NicModel::Rtl8139, NicModel::VirtioPci, NicModel::VirtioMmio];
const GUEST_IP: [u8; 4] = [10, 0, 0, 1];
const STATION_IP: [u8; 4] = [10, 0, 0, 2];

/// Which way the datagrams go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The guest sends (`udp-send`), the station sinks.
    Send,
    /// The station sends, the guest receives (`udp-recv`).
    Receive,
}

impl Direction {
    fn workload(self) -> &'static str {
        match self {
            Direction::Send => "udp-send",
            Direction::Receive => "udp-recv",
        }
    }
}

/// One cell of the table.
#[derive(Debug, Clone, Serialize)]
pub struct NetCell {
    pub engine: String,
    pub nic: &'static str,
    pub direction: Direction,
    pub packets: u64,
    pub packets_per_s: f64,
    pub exits_per_packet: f64,
    pub method: &'static str,
    pub checksum: String,
}

/// What one boot gave.
struct NetBoot {
    serial: String,
    wall: Duration,
    nic_accesses: u64,
    guest_tsc_hz: Option<f64>,
    station: Station,
}

/// Boots the kernel with `nic` and runs `direction`'s workload over `n` datagrams, the
/// station on the other end of the cable.
fn boot(engine: EngineId, nic: NicModel, direction: Direction, n: u64, hz: f64) -> Result<NetBoot> {
    let mut machine = Machine::new(engines::MEMORY).context("creating the machine")?;
    let link = NetLink::new();
    let guest_mac = MacAddr::vmscope(1);
    let (_, nic_id) = attach_nic(
        &mut machine.bus,
        &mut VirtioPlacement::default(),
        nic,
        guest_mac,
        link.clone(),
    )?;
    let cmdline = format!(
        "workloads={}:{n} ip=10.0.0.1 peer=10.0.0.2 nic={}",
        direction.workload(),
        if nic.is_virtio() { "virtio" } else { "rtl8139" }
    );
    emulator::machine::loader::load_image(
        &mut machine,
        "kernel.elf",
        guests::KERNEL_ELF,
        &cmdline,
    )?;
    let (mut engine_box, guest_tsc_hz) = engines::in_process_engine(engine, &machine, hz)?;
    let mut station = Station::new(MacAddr::vmscope(0x100), STATION_IP);
    let mut sent = 0u64;
    let mut serial = Vec::new();
    let start = Instant::now();
    let exit = loop {
        let exit = engine_box.run(&mut machine, RunLimit::time_ns(SLICE_NS))?;
        serial.extend(machine.bus.take_serial_output());
        let mut delivered = false;
        // The station takes everything (it is the host, not another guest's turn): what is
        // measured is the NIC, not the cable. A full cable's worth means the NIC may be
        // holding frames back: it is serviced below.
        let taken = link.take_transmitted();
        let sender_waits = taken.len() >= devices::net::LINK_QUEUE_LIMIT;
        for frame in taken {
            if let Some(reply) = station.receive(&frame) {
                delivered |= link.deliver(&reply);
            }
        }
        // Datagrams for udp-recv once the guest has asked for us (its NIC is up by then),
        // topped up to a turn's worth waiting.
        if direction == Direction::Receive && station.arp_answered > 0 {
            while sent < n && link.backlog_for_guest() < FRAMES_PER_TURN {
                delivered |= link.deliver(&station.datagram(guest_mac, GUEST_IP, sent));
                sent += 1;
            }
        }
        if delivered || sender_waits || link.has_for_guest() {
            machine.service_device(nic_id);
        }
        if exit != Exit::LimitReached {
            break exit;
        }
        if start.elapsed() > engines::BOOT_TIMEOUT {
            bail!("still running after {:?}; stopped", engines::BOOT_TIMEOUT);
        }
    };
    let wall = start.elapsed();
    // What the guest sent in its last turn is still on the cable.
    for frame in link.take_transmitted() {
        station.receive(&frame);
    }
    let serial = String::from_utf8_lossy(&serial).into_owned();
    engines::check_exit(
        &crate::runner::exit_summary(&exit),
        exit == engines::ok_exit(),
        &serial,
    )?;
    Ok(NetBoot {
        serial,
        wall,
        nic_accesses: nic_accesses(&machine, nic_id),
        guest_tsc_hz,
        station,
    })
}

/// Datagrams per cell unless --iterations says otherwise.
fn default_packets(engine: EngineId) -> u64 {
    match engine {
        EngineId::Interp => 2000,
        _ => 10_000,
    }
}

/// Measures every engine × NIC × direction.
pub fn run(
    engine_ids: &[EngineId],
    packets: Option<u64>,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<NetCell>> {
    let hz = engines::host_tsc_hz(Duration::from_millis(100));
    let mut cells = Vec::new();
    for &engine in engine_ids {
        if !engine.in_process() {
            bail!(
                "{}: compare --net runs on interp, bt and kvm",
                engine.name()
            );
        }
        engine
            .available()
            .map_err(|why| anyhow::anyhow!("{}: {why}", engine.name()))?;
        let n = packets.unwrap_or(default_packets(engine)).max(1);
        for nic in NICS {
            for direction in [Direction::Send, Direction::Receive] {
                let what = format!("{} {} {}", engine.name(), nic.name(), direction.workload());
                progress(format!("compare --net: {what} × {n} datagrams"));
                let base = boot(engine, nic, direction, 0, hz).with_context(|| what.clone())?;
                let full = boot(engine, nic, direction, n, hz).with_context(|| what.clone())?;
                let line = super::measure::single_result(
                    &full.serial,
                    direction.workload(),
                    n,
                    engine.name(),
                )?;
                let want = suite::expected_udp_checksum(n);
                if line.checksum != want {
                    bail!(
                        "{what}: checksum {:#x}, the host expects {want:#x}",
                        line.checksum
                    );
                }
                if direction == Direction::Send
                    && (full.station.udp_received != n || full.station.udp_checksum() != want)
                {
                    bail!(
                        "{what}: the station received {} datagrams folding to {:#x}, not {n} folding to {want:#x}",
                        full.station.udp_received,
                        full.station.udp_checksum()
                    );
                }
                let (secs, method) = match full.guest_tsc_hz {
                    Some(hz) => (line.guest_tsc as f64 / hz, "guest_tsc"),
                    None => (
                        full.wall.saturating_sub(base.wall).as_secs_f64(),
                        "wall_minus_baseline",
                    ),
                };
                let exits = full.nic_accesses.saturating_sub(base.nic_accesses);
                cells.push(NetCell {
                    engine: engine.name().to_string(),
                    nic: nic.name(),
                    direction,
                    packets: n,
                    packets_per_s: n as f64 / secs.max(1e-9),
                    exits_per_packet: exits as f64 / n as f64,
                    method,
                    checksum: format!("{:#018x}", line.checksum),
                });
            }
        }
    }
    Ok(cells)
}

/// The table, with each engine's RTL8139-against-virtio-pci ratios under it.
pub fn table(cells: &[NetCell]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<8} {:<16} {:<9} {:>8} {:>14} {:>17}",
        "engine", "nic", "direction", "packets", "packets/s", "exits/packet"
    );
    for c in cells {
        let _ = writeln!(
            s,
            "{:<8} {:<16} {:<9} {:>8} {:>14.0} {:>17.3}",
            c.engine,
            c.nic,
            c.direction.workload(),
            c.packets,
            c.packets_per_s,
            c.exits_per_packet
        );
    }
    let engines: Vec<&str> = cells.iter().fold(Vec::new(), |mut v, c| {
        if !v.contains(&c.engine.as_str()) {
            v.push(&c.engine);
        }
        v
    });
    for e in engines {
        for d in [Direction::Send, Direction::Receive] {
            let find = |nic: NicModel| {
                cells
                    .iter()
                    .find(|c| c.engine == e && c.nic == nic.name() && c.direction == d)
            };
            if let (Some(emu), Some(pv)) = (find(NicModel::Rtl8139), find(NicModel::VirtioPci)) {
                let _ = writeln!(
                    s,
                    "{e} {}: virtio-net-pci takes {:.1}× fewer exits per packet than rtl8139 and moves {:.1}× the packets/s",
                    d.workload(),
                    emu.exits_per_packet / pv.exits_per_packet.max(1e-9),
                    pv.packets_per_s / emu.packets_per_s.max(1e-9)
                );
            }
        }
    }
    s
}

//! `vmscope net`: several guests side by side, each its own machine and engine, their NICs
//! cabled to one learning switch — with VLANs, per-port pcap captures and tap devices.
//! Teaches: what a virtualization host's network is — VMs, virtual cables, a virtual switch —
//! and that none of it needs the guests to run on the same engine.
//!
//! The guests take turns in one thread: each runs a slice ([`SLICE_NS`] of its time), then
//! the frames its NIC sent cross the switch to the other ports' links, and every NIC that got
//! frames is serviced (`Machine::service_device`) so they are in guest RAM, with the
//! interrupt raised, before that guest runs again. With interpreter and translator guests
//! the whole network is deterministic: the same run gives the same frames in the same order.
//! Tap devices are switch ports too; what the host's Linux sends there is read between turns.

pub mod cable;
pub mod spec;
pub mod station;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use devices::bus::DeviceId;
use devices::net::pcap::{CaptureSink, PcapWriter};
use devices::net::switch::{PortConfig, PortId, PortMode, Switch};
use devices::net::{MacAddr, NetLink};
use devices::placement::{attach_nic, VirtioPlacement};
use emulator::{Engine, Exit, Machine, RunLimit};
use host_backends::tap::Tap;

pub use spec::VmSpec;

/// Each guest's turn: 200 µs of its time (virtual on interp/bt, host on kvm).
pub const SLICE_NS: u64 = 200_000;

/// Frames a guest's cable carries per turn: the links' speed (64 frames per 200 µs ≈ 320,000
/// frames/s, ~2.6 Gb/s of 1 KiB frames). A faster sender fills its link and its NIC holds
/// back; a receiver gets at most this much per sender and turn, so its queue does not
/// overflow unless it stops reading.
pub const FRAMES_PER_TURN: usize = 64;

/// `--tap NAME[@NETNS][,vlan=ID|,trunk=…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapSpec {
    pub name: String,
    pub netns: Option<String>,
    pub port: PortMode,
}

impl FromStr for TapSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // The port options are a VM spec's: reuse its parser on a dummy image.
        let (head, rest) = s.split_once(',').map_or((s, ""), |(h, r)| (h, r));
        let (name, netns) = match head.split_once('@') {
            Some((n, ns)) => (n, Some(ns.to_string())),
            None => (head, None),
        };
        if name.is_empty() || name.len() > 15 {
            return Err(format!(
                "--tap {s:?}: a tap device's name has 1 to 15 characters"
            ));
        }
        let port = if rest.is_empty() {
            PortMode::Access(1)
        } else {
            let spec: VmSpec = format!("tap,{rest}").parse()?;
            if spec.engine != crate::EngineChoice::Interp || spec.mac.is_some() {
                return Err(format!("--tap {s:?}: only vlan= or trunk= apply to a tap"));
            }
            spec.port
        };
        Ok(TapSpec {
            name: name.to_string(),
            netns,
            port,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct NetArgs {
    /// A guest on the switch (give it several times): IMAGE[,name=N][,engine=interp|bt|kvm]
    /// [,nic=virtio|virtio-mmio|rtl8139][,mac=MAC][,vlan=ID|,trunk=IDS[:native=ID]]
    /// [,memory=SIZE][,cmdline=TEXT]. `cmdline=` comes last and keeps its commas. Guests get
    /// MACs 02:76:6d:00:00:01, :02, … and an access port in VLAN 1 unless told otherwise.
    #[arg(long = "vm", required = true, value_name = "SPEC")]
    pub vms: Vec<VmSpec>,
    /// A Linux tap device as one more switch port, created by vmscope (in network namespace
    /// NETNS if given): NAME[@NETNS][,vlan=ID|,trunk=…]. The host's network stack is then a
    /// peer: give the tap an address (`ip addr add`) and ping the guests.
    #[arg(long, value_name = "NAME[@NETNS]")]
    pub tap: Vec<TapSpec>,
    /// Record every switch port as DIR/PORT.pcap (the frames as that port's wire carries
    /// them), for tcpdump -r or Wireshark.
    #[arg(long, value_name = "DIR")]
    pub pcap: Option<PathBuf>,
    /// Print each NIC's counters (frames, exits per packet) and the switch's ports and MAC
    /// table at the end.
    #[arg(long)]
    pub stats: bool,
    /// Give up after this many seconds of host time; guests still running end with status 4.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,
    /// End when the first --vm ends (a client), instead of when every guest has.
    #[arg(long)]
    pub until_first: bool,
}

/// One guest of the network.
struct Guest {
    name: String,
    spec: VmSpec,
    machine: Machine,
    engine: Box<dyn Engine>,
    link: NetLink,
    nic: DeviceId,
    mac: MacAddr,
    location: String,
    port: PortId,
    exit: Option<Exit>,
    /// Output not yet printed because its line has not ended.
    partial: Vec<u8>,
}

impl Guest {
    fn build(
        index: usize,
        name: String,
        port: PortId,
        spec: &VmSpec,
        notice: &mut dyn FnMut(String),
    ) -> Result<Guest> {
        let (image_name, bytes) = crate::image::read_image(Some(&spec.image))?;
        let opts = crate::RunOptions {
            engine: spec.engine,
            memory: spec.memory,
            cmdline: spec.cmdline.clone(),
            ..Default::default()
        };
        let (mut machine, _, _) = crate::runner::build_machine(&image_name, &bytes, &opts, notice)
            .with_context(|| format!("{name}: {}", spec.image))?;
        let mac = spec.mac.unwrap_or(MacAddr::vmscope(index as u16 + 1));
        let link = NetLink::new();
        let (location, nic) = attach_nic(
            &mut machine.bus,
            &mut VirtioPlacement::default(),
            spec.nic,
            mac,
            link.clone(),
        )
        .with_context(|| format!("{name}: attaching its NIC"))?;
        let engine = crate::make_engine(spec.engine, &machine, notice)
            .with_context(|| format!("{name}: engine"))?;
        Ok(Guest {
            name,
            spec: spec.clone(),
            machine,
            engine,
            link,
            nic,
            mac,
            location,
            port,
            exit: None,
            partial: Vec::new(),
        })
    }

    /// Port and MMIO accesses that reached the NIC: each one a VM exit on KVM, a trap on the
    /// emulated engines.
    fn nic_accesses(&self) -> u64 {
        nic_accesses(&self.machine, self.nic)
    }

    /// Prints whole lines of the guest's output with its name in front.
    fn print_output(&mut self, out: &mut dyn Write, flush_partial: bool) -> Result<()> {
        self.partial
            .extend_from_slice(&self.machine.bus.take_serial_output());
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            write!(out, "{} | ", self.name)?;
            out.write_all(&line)?;
        }
        if flush_partial && !self.partial.is_empty() {
            write!(out, "{} | ", self.name)?;
            out.write_all(&std::mem::take(&mut self.partial))?;
            writeln!(out)?;
        }
        Ok(())
    }
}

/// Port and MMIO accesses device `nic` answered so far (the bus counts them by device name).
pub fn nic_accesses(machine: &Machine, nic: DeviceId) -> u64 {
    let name = machine
        .bus
        .devices()
        .find(|(id, _)| *id == nic)
        .map_or("", |(_, d)| d.name());
    machine.bus.stats.by_device.get(name).copied().unwrap_or(0)
}

/// A tap device and its switch port.
struct TapPort {
    tap: Tap,
    port: PortId,
    buf: Vec<u8>,
}

fn open_capture(dir: &std::path::Path, port: &str) -> Result<Box<dyn CaptureSink + Send>> {
    let path = dir.join(format!("{port}.pcap"));
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let writer = PcapWriter::new(BufWriter::new(file))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Box::new(writer))
}

/// Runs `vmscope net`; returns the process exit status: the guests' when they all ended
/// with the same one, else 1.
pub fn run(args: NetArgs) -> Result<i32> {
    let mut notice = |s: String| eprintln!("{s}");
    let mut switch = Switch::new();
    let mut guests = Vec::new();
    for (i, spec) in args.vms.iter().enumerate() {
        let name = spec.name.clone().unwrap_or_else(|| format!("vm{i}"));
        if guests.iter().any(|o: &Guest| o.name == name) {
            bail!("two guests are called {name}: give one another name=");
        }
        let port = switch.add_port(PortConfig {
            name: name.clone(),
            mode: spec.port.clone(),
        });
        let g = Guest::build(i, name, port, spec, &mut notice)?;
        eprintln!(
            "{}: {} on {}, {} mac {} on port {} ({})",
            g.name,
            spec.image,
            g.engine.describe(),
            g.location,
            g.mac,
            g.port.index(),
            spec.port
        );
        guests.push(g);
    }
    let mut taps = Vec::new();
    for t in &args.tap {
        let tap = match &t.netns {
            Some(ns) => Tap::open_in_netns(&t.name, ns),
            None => Tap::open(&t.name),
        }
        .with_context(|| format!("--tap {}", t.name))?;
        let port = switch.add_port(PortConfig {
            name: t.name.clone(),
            mode: t.port.clone(),
        });
        eprintln!(
            "{}: tap device on port {} ({})",
            t.name,
            port.index(),
            t.port
        );
        taps.push(TapPort {
            tap,
            port,
            buf: vec![0; 65536],
        });
    }
    if let Some(dir) = &args.pcap {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for port in switch.ports().collect::<Vec<_>>() {
            let name = switch.port_name(port).to_string();
            let sink = open_capture(dir, &name)?;
            switch.set_capture(port, Some(sink));
        }
    }

    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.timeout);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut timed_out = false;
    let mut pacer = (!taps.is_empty()).then(|| cable::Pacer::new(SLICE_NS));
    loop {
        for g in guests.iter_mut().filter(|g| g.exit.is_none()) {
            let exit = g
                .engine
                .run(&mut g.machine, RunLimit::time_ns(SLICE_NS))
                .with_context(|| format!("{}: {}", g.name, g.engine.describe()))?;
            g.print_output(&mut out, exit != Exit::LimitReached)?;
            if exit != Exit::LimitReached {
                g.exit = Some(exit);
            }
        }
        out.flush()?;
        let now = start.elapsed().as_nanos() as u64;
        forward(&mut switch, &mut guests, &mut taps, now);
        let first_done = guests[0].exit.is_some();
        if guests.iter().all(|g| g.exit.is_some()) || (args.until_first && first_done) {
            break;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        if let Some(pacer) = pacer.as_mut() {
            // The host on a tap lives in real time: no guest's clock may run ahead of it.
            let slowest = guests
                .iter()
                .filter(|g| g.exit.is_none())
                .map(|g| g.machine.bus.now_ns())
                .min()
                .unwrap_or(0);
            pacer.pace(slowest);
        }
    }
    for g in &mut guests {
        g.print_output(&mut out, true)?;
    }
    out.flush()?;
    drop(out);
    // All guests ended the same way: that status; otherwise 1 (the lines above say who).
    let mut statuses = Vec::new();
    for g in &guests {
        let (summary, s) = match &g.exit {
            Some(e) => (
                crate::runner::exit_summary(e),
                crate::runner::exit_status(e),
            ),
            None if timed_out => (format!("still running after {} s", args.timeout), 4),
            None => ("stopped: the first guest ended".to_string(), 0),
        };
        eprintln!("{}: {summary} (status {s})", g.name);
        statuses.push(s);
    }
    let status = if statuses.windows(2).all(|w| w[0] == w[1]) {
        statuses[0]
    } else {
        1
    };
    if args.stats {
        eprint!("{}", stats_report(&switch, &guests, start.elapsed()));
    }
    for port in switch.ports().collect::<Vec<_>>() {
        if let Some(mut sink) = switch.set_capture(port, None) {
            sink.flush().context("writing a pcap file")?;
        }
    }
    Ok(status)
}

// ANCHOR: forward
/// One exchange: frames the NICs and taps sent go through the switch; what the switch sends
/// each port goes onto its link (and the NIC is serviced) or out of its tap.
fn forward(switch: &mut Switch, guests: &mut [Guest], taps: &mut [TapPort], now_ns: u64) {
    for g in guests.iter_mut() {
        let frames = g.link.take_transmitted_up_to(FRAMES_PER_TURN);
        for frame in &frames {
            switch.receive(g.port, frame, now_ns);
        }
        if frames.len() == FRAMES_PER_TURN {
            g.machine.service_device(g.nic); // its NIC may be holding frames back: room now
        }
    }
    for t in taps.iter_mut() {
        // A tap that fails to read is treated as quiet; its errors show as missing frames.
        while let Ok(Some(n)) = t.tap.read_frame(&mut t.buf) {
            switch.receive(t.port, &t.buf[..n], now_ns);
        }
    }
    for g in guests.iter_mut() {
        let frames = switch.take_output(g.port);
        for frame in &frames {
            g.link.deliver(frame);
        }
        if !frames.is_empty() || g.link.has_for_guest() {
            g.machine.service_device(g.nic);
        }
    }
    for t in taps.iter_mut() {
        for frame in switch.take_output(t.port) {
            let _ = t.tap.write_frame(&frame);
        }
    }
}
// ANCHOR_END: forward

/// `--stats`: each NIC's frames and exits per packet, then the switch.
fn stats_report(switch: &Switch, guests: &[Guest], elapsed: Duration) -> String {
    let mut s = format!("network after {:.2} s:\n", elapsed.as_secs_f64());
    for g in guests {
        let (tx, rx) = g.link.stats();
        let packets = tx.frames + rx.frames;
        let exits = g.nic_accesses();
        let per_packet = if packets > 0 {
            format!("{:.2}", exits as f64 / packets as f64)
        } else {
            "-".to_string()
        };
        s += &format!(
            "  {} ({}, {}): sent {} frames, received {}, dropped {}; {} NIC accesses, {} per packet\n",
            g.name,
            g.spec.engine,
            g.spec.nic.name(),
            tx.frames,
            rx.frames,
            tx.dropped_full + tx.dropped_size + rx.dropped_full + rx.dropped_size,
            exits,
            per_packet
        );
        let reasons: Vec<String> = g
            .machine
            .stats
            .exits
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        if !reasons.is_empty() {
            s += &format!("    exits by reason: {}\n", reasons.join(", "));
        }
    }
    s += &switch.report(elapsed.as_nanos() as u64).to_string();
    s
}

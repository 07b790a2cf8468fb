//! A learning Ethernet switch with 802.1Q VLANs, as a Linux bridge or Open vSwitch does it.
//! Teaches: a switch learns where each source MAC lives, sends a frame only where its
//! destination was seen, floods what it does not know, and keeps VLANs apart by tagging.
//!
//! One frame through [`Switch::receive`], step by step:
//!
//! 1. **Size.** Shorter than [`MIN_FRAME`] or longer than [`MAX_FRAME`] (a *runt* or a
//!    *giant*), or a VLAN tag cut short: dropped, counted on the port.
//! 2. **Ingress VLAN.** Which VLAN does the frame belong to? On an access port, the port's
//!    VLAN (a tagged frame there is dropped); on a trunk, the tag's VLAN if the trunk carries
//!    it, or the native VLAN for an untagged frame. The tag is taken off: inside the switch a
//!    frame is an untagged frame plus a VLAN number.
//! 3. **Learning.** The source MAC is remembered as "(MAC, VLAN) lives behind this port", with
//!    the time. A group (multicast) source is not a station: the frame is dropped, as 802.1D
//!    and Linux's bridge do. The table is bounded; when full, new stations are not learned
//!    (their frames are still flooded), so a flood of made-up MACs cannot grow memory.
//! 4. **Forwarding.** A unicast destination in the table (and not older than the ageing time)
//!    goes to that one port — unless that port is the one it came in on: then both stations
//!    are on the same segment, the frame has already reached its destination, and it is
//!    *filtered*. Anything else — unknown unicast, broadcast, multicast — is *flooded* to every
//!    other port that is a member of the VLAN. Never back out of the incoming port.
//! 5. **Egress.** Each outgoing copy is tagged or left untagged as that port's mode says, and
//!    queued on the port. Queues are bounded ([`LINK_QUEUE_LIMIT`] frames): a port whose peer
//!    never takes its frames drops (and counts) its own overflow and delays no other port.
//!
//! Every frame a port receives and every frame it transmits can go to a capture sink
//! ([`pcap::CaptureSink`]), as it is on that port's wire (tagged or not). The switch does no
//! I/O itself and has no clock: the caller says what time it is (`now_ns`).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use super::frame::{self, MacAddr, ETHERTYPE_VLAN, HEADER_LEN, VLAN_TAG_LEN};
use super::pcap::CaptureSink;
use super::{LINK_QUEUE_LIMIT, MAX_FRAME, MIN_FRAME};

/// How long a learned station is remembered without being heard from (Linux's default).
pub const DEFAULT_AGEING_NS: u64 = 300 * 1_000_000_000;
/// Stations the MAC table holds at most.
pub const DEFAULT_MAC_TABLE_LIMIT: usize = 4096;
/// VLAN IDs 1..=4094 name VLANs; 0 (priority tag only) and 4095 are reserved.
pub const VLAN_IDS: std::ops::RangeInclusive<u16> = 1..=4094;

/// A port of one switch: the number [`Switch::add_port`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(usize);

impl PortId {
    /// Ports are numbered from 0 in the order they were added.
    pub fn index(self) -> usize {
        self.0
    }
}

/// The VLANs a trunk carries tagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlanSet {
    /// Every VLAN ID, 1..=4094.
    All,
    /// `first..=last`.
    Range(u16, u16),
    List(Vec<u16>),
}

impl VlanSet {
    pub fn contains(&self, vid: u16) -> bool {
        VLAN_IDS.contains(&vid)
            && match self {
                VlanSet::All => true,
                VlanSet::Range(first, last) => (*first..=*last).contains(&vid),
                VlanSet::List(list) => list.contains(&vid),
            }
    }
}

/// What a port carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMode {
    /// A station's port: its frames are untagged and belong to this one VLAN.
    Access(u16),
    /// A port to another switch (or a VLAN-aware guest): frames of the `allowed` VLANs carry
    /// tags; untagged frames belong to the `native` VLAN, if there is one, and leave untagged.
    Trunk {
        native: Option<u16>,
        allowed: VlanSet,
    },
}

/// How a frame of some VLAN leaves a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Egress {
    Untagged,
    Tagged,
}

impl PortMode {
    /// Refuses VLAN IDs outside 1..=4094, so the CLI can reject a bad `--port` before
    /// [`Switch::add_port`] (which panics on one).
    pub fn validate(&self) -> Result<(), String> {
        let check = |vid: u16| {
            if VLAN_IDS.contains(&vid) {
                Ok(())
            } else {
                Err(format!("VLAN ID {vid} is not in 1..=4094"))
            }
        };
        match self {
            PortMode::Access(vid) => check(*vid),
            PortMode::Trunk { native, allowed } => {
                if let Some(vid) = native {
                    check(*vid)?;
                }
                match allowed {
                    VlanSet::All => Ok(()),
                    VlanSet::Range(a, b) if a > b => Err(format!("empty VLAN range {a}-{b}")),
                    VlanSet::Range(a, b) => check(*a).and(check(*b)),
                    VlanSet::List(list) => list.iter().try_for_each(|&v| check(v)),
                }
            }
        }
    }

    // ANCHOR: vlan_rules
    /// The VLAN an arriving frame belongs to (`tag`: its VLAN ID, if tagged); `None`: the
    /// port does not accept it.
    fn ingress_vlan(&self, tag: Option<u16>) -> Option<u16> {
        match (self, tag) {
            (PortMode::Access(vid), None) => Some(*vid),
            (PortMode::Access(_), Some(_)) => None,
            (PortMode::Trunk { native, .. }, None) => *native,
            (PortMode::Trunk { .. }, Some(vid)) => self.egress(vid).map(|_| vid),
        }
    }

    /// How a frame of VLAN `vid` leaves this port; `None`: the port is not in that VLAN.
    fn egress(&self, vid: u16) -> Option<Egress> {
        match self {
            PortMode::Access(v) => (*v == vid).then_some(Egress::Untagged),
            PortMode::Trunk { native, allowed } => {
                if *native == Some(vid) {
                    Some(Egress::Untagged)
                } else {
                    allowed.contains(vid).then_some(Egress::Tagged)
                }
            }
        }
    }
    // ANCHOR_END: vlan_rules
}

impl fmt::Display for PortMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortMode::Access(vid) => write!(f, "access {vid}"),
            PortMode::Trunk { native, allowed } => {
                write!(f, "trunk ")?;
                match allowed {
                    VlanSet::All => write!(f, "all")?,
                    VlanSet::Range(a, b) => write!(f, "{a}-{b}")?,
                    VlanSet::List(list) => {
                        let list: Vec<String> = list.iter().map(u16::to_string).collect();
                        write!(f, "{}", list.join(","))?
                    }
                }
                match native {
                    Some(vid) => write!(f, " native {vid}"),
                    None => Ok(()),
                }
            }
        }
    }
}

pub struct PortConfig {
    pub name: String,
    pub mode: PortMode,
}

/// What one port counted. `rx_*` counts every frame that arrived (even one then dropped),
/// `tx_*` every frame queued to leave; `flooded` and `filtered` describe frames that arrived.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortStats {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Arrived here and went to every other port of the VLAN (destination not known, or group).
    pub flooded: u64,
    /// Arrived here for a station learned on this same port: not sent anywhere.
    pub filtered: u64,
    /// Copies for this port dropped because its queue was full.
    pub dropped_full: u64,
    /// Runts and giants arriving (or a copy that would be a giant once tagged for this port).
    pub dropped_size: u64,
    /// Arrived in a VLAN this port does not carry (a tag on an access port, an untagged frame
    /// on a trunk without a native VLAN, a VLAN not allowed).
    pub dropped_vlan: u64,
    /// Arrived with a group (multicast) source MAC.
    pub dropped_source: u64,
    /// Stations learned on this port.
    pub learned: u64,
    /// Stations not learned because the MAC table was full.
    pub learn_refused: u64,
}

struct Port {
    name: String,
    mode: PortMode,
    queue: VecDeque<Vec<u8>>,
    stats: PortStats,
    capture: Option<Box<dyn CaptureSink + Send>>,
}

impl Port {
    fn capture(&mut self, now_ns: u64, frame: &[u8]) {
        if let Some(sink) = &mut self.capture {
            sink.capture(now_ns, frame);
        }
    }
}

/// One row of the MAC table: where a station was last heard from, and when.
#[derive(Debug, Clone, Copy)]
struct Station {
    port: PortId,
    last_seen_ns: u64,
}

/// The switch. Single-threaded: the caller feeds frames in and takes them out.
pub struct Switch {
    ports: Vec<Port>,
    /// Keyed by (MAC, VLAN): the same MAC may be a different station in another VLAN.
    table: BTreeMap<(MacAddr, u16), Station>,
    table_limit: usize,
    ageing_ns: u64,
    /// No entry expires before this time: a full table is swept again only from then on, so
    /// a MAC flood against a full table costs one lookup per frame, not a sweep per frame.
    next_expiry_ns: u64,
    /// Stations heard from on another port than the one they were learned on.
    moves: u64,
}

impl Default for Switch {
    fn default() -> Self {
        Self::new()
    }
}

impl Switch {
    pub fn new() -> Self {
        Switch {
            ports: Vec::new(),
            table: BTreeMap::new(),
            table_limit: DEFAULT_MAC_TABLE_LIMIT,
            ageing_ns: DEFAULT_AGEING_NS,
            next_expiry_ns: 0,
            moves: 0,
        }
    }

    /// Panics if the mode names a VLAN ID outside 1..=4094 (see [`PortMode::validate`]).
    pub fn add_port(&mut self, config: PortConfig) -> PortId {
        if let Err(e) = config.mode.validate() {
            panic!("switch port {}: {e}", config.name);
        }
        self.ports.push(Port {
            name: config.name,
            mode: config.mode,
            queue: VecDeque::new(),
            stats: PortStats::default(),
            capture: None,
        });
        PortId(self.ports.len() - 1)
    }

    /// Every port, in the order added.
    pub fn ports(&self) -> impl Iterator<Item = PortId> {
        (0..self.ports.len()).map(PortId)
    }

    pub fn port_name(&self, port: PortId) -> &str {
        &self.ports[port.0].name
    }

    pub fn port_mode(&self, port: PortId) -> &PortMode {
        &self.ports[port.0].mode
    }

    /// Sends every frame `port` receives or transmits, from now on, to `sink` (`None`: stop).
    /// Returns the previous sink, so the caller can flush it.
    pub fn set_capture(
        &mut self,
        port: PortId,
        sink: Option<Box<dyn CaptureSink + Send>>,
    ) -> Option<Box<dyn CaptureSink + Send>> {
        std::mem::replace(&mut self.ports[port.0].capture, sink)
    }

    pub fn set_ageing_ns(&mut self, ageing_ns: u64) {
        self.ageing_ns = ageing_ns;
        self.next_expiry_ns = 0;
    }

    pub fn ageing_ns(&self) -> u64 {
        self.ageing_ns
    }

    /// Shrinks or grows the MAC table's bound (entries over a smaller bound are kept until
    /// they age out; nothing new is learned meanwhile).
    pub fn set_mac_table_limit(&mut self, limit: usize) {
        self.table_limit = limit;
    }

    pub fn port_stats(&self, port: PortId) -> PortStats {
        self.ports[port.0].stats
    }

    /// Stations heard from on another port than the one they were learned on.
    pub fn moves(&self) -> u64 {
        self.moves
    }

    /// Frames waiting on `port`.
    pub fn queued(&self, port: PortId) -> usize {
        self.ports[port.0].queue.len()
    }

    /// Every frame waiting to leave `port`, oldest first, as it goes on that port's wire.
    pub fn take_output(&mut self, port: PortId) -> Vec<Vec<u8>> {
        self.ports[port.0].queue.drain(..).collect()
    }

    /// The live stations at `now_ns`: (MAC, VLAN, port, time since last heard), sorted by
    /// MAC, then VLAN.
    pub fn mac_table(&self, now_ns: u64) -> Vec<(MacAddr, u16, PortId, u64)> {
        self.table
            .iter()
            .filter(|(_, s)| !self.expired(s, now_ns))
            .map(|(&(mac, vid), s)| (mac, vid, s.port, now_ns.saturating_sub(s.last_seen_ns)))
            .collect()
    }

    fn expired(&self, station: &Station, now_ns: u64) -> bool {
        now_ns.saturating_sub(station.last_seen_ns) > self.ageing_ns
    }

    /// Forgets every station not heard from for longer than the ageing time.
    pub fn age_out(&mut self, now_ns: u64) {
        let ageing = self.ageing_ns;
        self.table
            .retain(|_, s| now_ns.saturating_sub(s.last_seen_ns) <= ageing);
        let oldest = self.table.values().map(|s| s.last_seen_ns).min();
        // An entry expires once *more* than `ageing` has passed: one nanosecond after this sum.
        self.next_expiry_ns =
            oldest.map_or(u64::MAX, |t| t.saturating_add(ageing).saturating_add(1));
    }

    // ANCHOR: switch_receive
    /// A frame arrived on `port` at `now_ns`: learn from it and queue it where it goes.
    pub fn receive(&mut self, port: PortId, frame: &[u8], now_ns: u64) {
        let ingress = &mut self.ports[port.0];
        ingress.stats.rx_frames += 1;
        ingress.stats.rx_bytes += frame.len() as u64;
        ingress.capture(now_ns, frame);

        // 1. Size (a tagged frame needs its whole tag).
        let tagged = frame::ethertype(frame) == Some(ETHERTYPE_VLAN);
        let min = if tagged {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            MIN_FRAME
        };
        if frame.len() < min || frame.len() > MAX_FRAME {
            ingress.stats.dropped_size += 1;
            return;
        }

        // 2. Ingress VLAN; from here on the frame is untagged plus `vid`.
        let Some(vid) = ingress.mode.ingress_vlan(frame::vlan_id(frame)) else {
            ingress.stats.dropped_vlan += 1;
            return;
        };
        let inner = if tagged {
            frame::pop_vlan(frame)
        } else {
            frame.to_vec()
        };
        let (Some(dst), Some(src)) = (frame::destination(&inner), frame::source(&inner)) else {
            unreachable!("a frame of at least {MIN_FRAME} bytes has both MACs");
        };

        // 3. Learning.
        if src.is_group() {
            ingress.stats.dropped_source += 1;
            return;
        }
        self.learn(src, vid, port, now_ns);

        // 4. Forwarding.
        if !dst.is_group() {
            if let Some(out) = self.lookup(dst, vid, now_ns) {
                if out == port {
                    self.ports[port.0].stats.filtered += 1;
                } else {
                    self.transmit(out, vid, &inner, now_ns);
                }
                return;
            }
        }
        self.ports[port.0].stats.flooded += 1;
        for out in 0..self.ports.len() {
            if out != port.0 {
                self.transmit(PortId(out), vid, &inner, now_ns);
            }
        }
    }
    // ANCHOR_END: switch_receive

    fn learn(&mut self, src: MacAddr, vid: u16, port: PortId, now_ns: u64) {
        let ageing = self.ageing_ns;
        if let Some(station) = self.table.get_mut(&(src, vid)) {
            let was_expired = now_ns.saturating_sub(station.last_seen_ns) > ageing;
            if was_expired {
                self.ports[port.0].stats.learned += 1;
            } else if station.port != port {
                self.moves += 1;
            }
            *station = Station {
                port,
                last_seen_ns: now_ns,
            };
            return;
        }
        if self.table.len() >= self.table_limit && now_ns >= self.next_expiry_ns {
            self.age_out(now_ns);
        }
        if self.table.len() >= self.table_limit {
            self.ports[port.0].stats.learn_refused += 1;
            return;
        }
        self.table.insert(
            (src, vid),
            Station {
                port,
                last_seen_ns: now_ns,
            },
        );
        let expiry = now_ns.saturating_add(ageing).saturating_add(1);
        self.next_expiry_ns = self.next_expiry_ns.min(expiry);
        self.ports[port.0].stats.learned += 1;
    }

    /// Where `dst` lives in VLAN `vid`, if it was heard from within the ageing time.
    fn lookup(&mut self, dst: MacAddr, vid: u16, now_ns: u64) -> Option<PortId> {
        let station = *self.table.get(&(dst, vid))?;
        if self.expired(&station, now_ns) {
            self.table.remove(&(dst, vid));
            return None;
        }
        Some(station.port)
    }

    /// Queues the untagged frame `inner` of VLAN `vid` on `out`, tagged as `out` carries it;
    /// nothing if `out` is not in the VLAN.
    fn transmit(&mut self, out: PortId, vid: u16, inner: &[u8], now_ns: u64) {
        let port = &mut self.ports[out.0];
        let wire = match port.mode.egress(vid) {
            None => return,
            Some(Egress::Untagged) => inner.to_vec(),
            Some(Egress::Tagged) => frame::push_vlan(inner, vid),
        };
        if wire.len() > MAX_FRAME {
            port.stats.dropped_size += 1;
            return;
        }
        if port.queue.len() >= LINK_QUEUE_LIMIT {
            port.stats.dropped_full += 1;
            return;
        }
        port.stats.tx_frames += 1;
        port.stats.tx_bytes += wire.len() as u64;
        port.capture(now_ns, &wire);
        port.queue.push_back(wire);
    }

    /// The `--stats` report at `now_ns`: a line per port, then the MAC table.
    pub fn report(&self, now_ns: u64) -> Report<'_> {
        Report {
            switch: self,
            now_ns,
        }
    }
}

/// [`Switch::report`]: printable.
pub struct Report<'a> {
    switch: &'a Switch,
    now_ns: u64,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sw = self.switch;
        writeln!(
            f,
            "{:<4} {:<12} {:<20} {:>8} {:>10} {:>8} {:>10} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7}",
            "port", "name", "mode", "rx", "rx_bytes", "tx", "tx_bytes", "flooded", "filtered",
            "drop_full", "drop_size", "drop_vlan", "drop_src", "learned", "refused"
        )?;
        for (i, p) in sw.ports.iter().enumerate() {
            let s = &p.stats;
            writeln!(
                f,
                "{:<4} {:<12} {:<20} {:>8} {:>10} {:>8} {:>10} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7}",
                i,
                p.name,
                p.mode.to_string(),
                s.rx_frames,
                s.rx_bytes,
                s.tx_frames,
                s.tx_bytes,
                s.flooded,
                s.filtered,
                s.dropped_full,
                s.dropped_size,
                s.dropped_vlan,
                s.dropped_source,
                s.learned,
                s.learn_refused
            )?;
        }
        let table = sw.mac_table(self.now_ns);
        writeln!(
            f,
            "MAC table: {} of {} entries, ageing {} s, {} moves",
            table.len(),
            sw.table_limit,
            sw.ageing_ns as f64 / 1e9,
            sw.moves
        )?;
        writeln!(
            f,
            "  {:<17} {:>4}  {:<12} {:>10}",
            "mac", "vlan", "port", "age"
        )?;
        for (mac, vid, port, age) in table {
            writeln!(
                f,
                "  {:<17} {:>4}  {:<12} {:>8.3} s",
                mac.to_string(),
                vid,
                sw.ports[port.0].name,
                age as f64 / 1e9
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

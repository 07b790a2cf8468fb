//! The events timeline: interrupts, exceptions, I/O, exits and MMU invalidations, by position.
//! Teaches: the counters every engine keeps (`Stats`) become a story when you watch them change.
//!
//! Engines do not call us back; after every step (or run slice) the log compares the machine's
//! counters with what it saw last and records the difference, attributed to the instruction
//! that just ran (or, for a run slice, to the slice's end).

use std::collections::{BTreeMap, VecDeque};

use emulator::cpu::CpuMode;
use emulator::Machine;

/// Events kept for the timeline (older ones only live on in the totals).
const KEEP: usize = 20_000;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    Interrupt,
    Exception,
    PortIo,
    Mmio,
    KvmExit,
    MmuInvalidation,
    ModeSwitch,
    EngineSwitch,
    SerialInput,
    /// The user pulsed the NMI line.
    NmiButton,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::Interrupt,
        EventKind::Exception,
        EventKind::PortIo,
        EventKind::Mmio,
        EventKind::KvmExit,
        EventKind::MmuInvalidation,
        EventKind::ModeSwitch,
        EventKind::EngineSwitch,
        EventKind::SerialInput,
        EventKind::NmiButton,
    ];

    pub fn label(self) -> &'static str {
        match self {
            EventKind::Interrupt => "interrupt",
            EventKind::Exception => "exception",
            EventKind::PortIo => "port I/O",
            EventKind::Mmio => "MMIO",
            EventKind::KvmExit => "KVM exit",
            EventKind::MmuInvalidation => "shadow-MMU invalidation",
            EventKind::ModeSwitch => "mode switch",
            EventKind::EngineSwitch => "engine switch",
            EventKind::SerialInput => "serial input",
            EventKind::NmiButton => "NMI button",
        }
    }
}

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Instructions retired when it was seen.
    pub position: u64,
    /// RIP of the instruction that caused it (for a run slice: where the slice ended).
    pub rip: u64,
    pub kind: EventKind,
    /// How many (a run slice may fold many into one entry).
    pub count: u64,
    pub detail: String,
}

/// Cheap sums of the counters, compared after every step; details are worked out only when a
/// sum moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Sums {
    interrupts: u64,
    exceptions: u64,
    exits: u64,
    port_io: u64,
    mmio: u64,
    invalidations: u64,
}

impl Sums {
    fn of(m: &Machine) -> Self {
        let mmu = &m.stats.mmu;
        Sums {
            interrupts: m.stats.interrupts,
            exceptions: m.stats.exceptions.values().sum(),
            exits: m.stats.exits.values().sum(),
            port_io: m.bus.stats.by_port.values().map(|(r, w)| r + w).sum(),
            mmio: m.bus.stats.mmio_reads + m.bus.stats.mmio_writes,
            invalidations: mmu.inval_cr3
                + mmu.inval_invlpg
                + mmu.inval_invpcid
                + mmu.inval_pt_write
                + mmu.inval_mode_change
                + mmu.inval_other,
        }
    }
}

/// The timeline and the totals by kind.
#[derive(Debug, Clone)]
pub struct EventLog {
    pub events: VecDeque<Event>,
    pub totals: BTreeMap<EventKind, u64>,
    sums: Sums,
    mode: CpuMode,
    exceptions: BTreeMap<&'static str, u64>,
    exits: BTreeMap<&'static str, u64>,
    ports: BTreeMap<u16, (u64, u64)>,
    mmu: emulator::machine::MmuStats,
}

impl EventLog {
    pub fn new(m: &Machine) -> Self {
        EventLog {
            events: VecDeque::new(),
            totals: BTreeMap::new(),
            sums: Sums::of(m),
            mode: m.cpu.mode(),
            exceptions: m.stats.exceptions.clone(),
            exits: m.stats.exits.clone(),
            ports: m.bus.stats.by_port.clone(),
            mmu: m.stats.mmu,
        }
    }

    /// Records an event at the machine's current position.
    pub fn push_now(&mut self, m: &Machine, kind: EventKind, count: u64, detail: String) {
        self.push(Event {
            position: m.stats.instructions,
            rip: m.cpu.rip,
            kind,
            count,
            detail,
        });
    }

    fn push(&mut self, e: Event) {
        *self.totals.entry(e.kind).or_default() += e.count;
        if self.events.len() == KEEP {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// Total of one kind since the guest booted.
    pub fn total(&self, kind: EventKind) -> u64 {
        self.totals.get(&kind).copied().unwrap_or(0)
    }

    /// Compares the counters with the last look and records what changed. `rip`: the
    /// instruction that ran; `on_kvm`: exits are KVM exits (else they are the interpreter's
    /// traps, shown as port I/O and MMIO). Returns the kinds seen, for "break on".
    pub fn observe(&mut self, m: &Machine, rip: u64, on_kvm: bool) -> Vec<EventKind> {
        let mut seen = Vec::new();
        let position = m.stats.instructions;
        let sums = Sums::of(m);
        let mut add = |log: &mut Self, kind, count, detail: String| {
            if count > 0 {
                seen.push(kind);
                log.push(Event {
                    position,
                    rip,
                    kind,
                    count,
                    detail,
                });
            }
        };
        if sums.interrupts != self.sums.interrupts {
            let n = sums.interrupts.saturating_sub(self.sums.interrupts);
            add(
                self,
                EventKind::Interrupt,
                n,
                "hardware interrupt delivered".into(),
            );
        }
        if sums.exceptions != self.sums.exceptions {
            for (name, n) in diff(&self.exceptions, &m.stats.exceptions) {
                add(self, EventKind::Exception, n, format!("{name} delivered"));
            }
            self.exceptions = m.stats.exceptions.clone();
        }
        if sums.port_io != self.sums.port_io {
            for (port, (r, w)) in &m.bus.stats.by_port {
                let (r0, w0) = self.ports.get(port).copied().unwrap_or((0, 0));
                let what = match (r.saturating_sub(r0), w.saturating_sub(w0)) {
                    (0, 0) => continue,
                    (_, 0) => format!("in from port {port:#x}"),
                    (0, _) => format!("out to port {port:#x}"),
                    (r, w) => format!("port {port:#x}: {r} in, {w} out"),
                };
                add(
                    self,
                    EventKind::PortIo,
                    r.saturating_sub(r0) + w.saturating_sub(w0),
                    what,
                );
            }
            self.ports = m.bus.stats.by_port.clone();
        }
        if sums.mmio != self.sums.mmio {
            let n = sums.mmio.saturating_sub(self.sums.mmio);
            add(self, EventKind::Mmio, n, "MMIO access".into());
        }
        if sums.exits != self.sums.exits {
            if on_kvm {
                for (reason, n) in diff(&self.exits, &m.stats.exits) {
                    // One "debug" exit per single-stepped instruction: that is stepping, not news.
                    if reason != "debug" {
                        add(self, EventKind::KvmExit, n, format!("exit: {reason}"));
                    }
                }
            }
            self.exits = m.stats.exits.clone();
        }
        if sums.invalidations != self.sums.invalidations {
            let (a, b) = (&self.mmu, &m.stats.mmu);
            let causes = [
                ("CR3 write", b.inval_cr3.saturating_sub(a.inval_cr3)),
                ("INVLPG", b.inval_invlpg.saturating_sub(a.inval_invlpg)),
                ("INVPCID", b.inval_invpcid.saturating_sub(a.inval_invpcid)),
                (
                    "page-table write",
                    b.inval_pt_write.saturating_sub(a.inval_pt_write),
                ),
                (
                    "mode change",
                    b.inval_mode_change.saturating_sub(a.inval_mode_change),
                ),
                ("other", b.inval_other.saturating_sub(a.inval_other)),
            ];
            let text: Vec<String> = causes
                .iter()
                .filter(|c| c.1 > 0)
                .map(|(c, n)| format!("{n} by {c}"))
                .collect();
            let n = sums.invalidations.saturating_sub(self.sums.invalidations);
            add(
                self,
                EventKind::MmuInvalidation,
                n,
                format!("shadow entries dropped: {}", text.join(", ")),
            );
        }
        self.mmu = m.stats.mmu;
        let mode = m.cpu.mode();
        if mode != self.mode {
            add(
                self,
                EventKind::ModeSwitch,
                1,
                format!("{} -> {}", self.mode, mode),
            );
            self.mode = mode;
        }
        self.sums = sums;
        seen
    }

    /// Forgets events after `position` (the guest was rewound there) and re-reads the counters.
    pub fn rewind(&mut self, m: &Machine, position: u64) {
        while self.events.back().is_some_and(|e| e.position > position) {
            if let Some(e) = self.events.pop_back() {
                if let Some(t) = self.totals.get_mut(&e.kind) {
                    *t = t.saturating_sub(e.count);
                }
            }
        }
        let (events, totals) = (
            std::mem::take(&mut self.events),
            std::mem::take(&mut self.totals),
        );
        *self = EventLog::new(m);
        self.events = events;
        self.totals = totals;
    }
}

fn diff<'a>(old: &BTreeMap<&'a str, u64>, new: &BTreeMap<&'a str, u64>) -> Vec<(&'a str, u64)> {
    new.iter()
        .filter_map(|(k, v)| {
            let d = v - old.get(k).copied().unwrap_or(0).min(*v);
            (d > 0).then_some((*k, d))
        })
        .collect()
}

//! Running one fuzz case on one engine and recording everything a comparison can look at.
//! Teaches: what "observable" means for a CPU — exit, registers, memory, counters, output — and how to collect it the same way from every engine.

use std::collections::BTreeMap;

use accel_kvm::KvmEngine;
use emulator::bt::BinaryTranslator;
use emulator::cpu::state::flags;
use emulator::interp::Interpreter;
use emulator::{CpuState, Engine, EngineError, Exit, Machine, RunLimit, Stats};
use iced_x86::{Decoder, DecoderOptions, Mnemonic};

use super::gen::Case;
use super::modes;

/// An engine a case runs on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Interp,
    Bt,
    Kvm,
    /// The interpreter with one planted bug (after NOT it flips CF): proves that a difference
    /// is found, shrunk and replayed. Not listed in `--help`.
    #[value(hide = true)]
    Flawed,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Interp => "interp",
            EngineKind::Bt => "bt",
            EngineKind::Kvm => "kvm",
            EngineKind::Flawed => "flawed",
        }
    }
}

/// What one engine left behind after a case.
#[derive(Debug, Clone)]
pub struct Observation {
    pub engine: EngineKind,
    /// How the run ended, or the engine's error.
    pub exit: Result<Exit, String>,
    pub cpu: CpuState,
    pub ram: Vec<u8>,
    pub stats: Stats,
    /// Port I/O by port (reads, writes) and MMIO (reads, writes), from the bus.
    pub io_by_port: BTreeMap<u16, (u64, u64)>,
    pub mmio: (u64, u64),
    /// UART output, then the debug console's (port 0xE9).
    pub serial: Vec<u8>,
    pub debugcon: Vec<u8>,
    /// The virtual clock at the end (emulated engines: instruction-driven).
    pub time_ns: u64,
}

impl Observation {
    /// FNV-1a over guest RAM, 8 bytes at a time (the RAM "hash" reports show).
    pub fn ram_hash(&self) -> u64 {
        let mut h = 0xCBF2_9CE4_8422_2325u64;
        for chunk in self.ram.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        h
    }
}

fn observe(engine: EngineKind, m: &mut Machine, exit: Result<Exit, EngineError>) -> Observation {
    let serial = m.bus.take_serial_output();
    let debugcon = m
        .bus
        .device_mut::<devices::debug::DebugCon>()
        .map(|d| std::mem::take(&mut d.output))
        .unwrap_or_default();
    Observation {
        engine,
        exit: exit.map_err(|e| e.to_string()),
        cpu: m.cpu.clone(),
        ram: m.ram.as_slice().to_vec(),
        stats: m.stats.clone(),
        io_by_port: m.bus.stats.by_port.clone(),
        mmio: (m.bus.stats.mmio_reads, m.bus.stats.mmio_writes),
        serial,
        debugcon,
        time_ns: m.bus.now_ns(),
    }
}

/// Runs cases on one engine; KVM keeps one VM (and machine) for the whole batch.
pub enum Runner {
    Fresh(EngineKind),
    Kvm(Box<(Machine, KvmEngine)>),
}

impl Runner {
    pub fn new(kind: EngineKind, mode: super::Mode) -> anyhow::Result<Runner> {
        Ok(match kind {
            EngineKind::Kvm => {
                let m = modes::new_machine(mode, &[]);
                let kvm = KvmEngine::new(&m)?;
                Runner::Kvm(Box::new((m, kvm)))
            }
            other => Runner::Fresh(other),
        })
    }

    pub fn kind(&self) -> EngineKind {
        match self {
            Runner::Fresh(k) => *k,
            Runner::Kvm(_) => EngineKind::Kvm,
        }
    }

    /// Runs `case` for at most `limit` instructions.
    pub fn run(&mut self, case: &Case, limit: u64) -> Observation {
        let code = case.code();
        let mut fresh = modes::new_machine(case.mode, &code);
        // I/O is bounded too: one REP INS/OUTS instruction may make 4,096 accesses per count.
        let lim = RunLimit {
            io_accesses: Some(limit),
            ..RunLimit::instructions(limit)
        };
        match self {
            Runner::Fresh(kind) => {
                let exit = match kind {
                    EngineKind::Interp => Interpreter::new().run(&mut fresh, lim),
                    EngineKind::Bt => BinaryTranslator::default().run(&mut fresh, lim),
                    _ => Flawed(Interpreter::new()).run(&mut fresh, lim),
                };
                observe(*kind, &mut fresh, exit)
            }
            Runner::Kvm(b) => {
                let (m, kvm) = &mut **b;
                m.ram.as_mut_slice().copy_from_slice(fresh.ram.as_slice());
                m.cpu = fresh.cpu.clone();
                m.stats = Stats::default();
                m.bus.stats = Default::default();
                m.bus.take_serial_output();
                // A case that loops without end stops at the limit; the time bound only guards
                // against a host that stops delivering single-step exits.
                let lim = RunLimit {
                    time_ns: Some(10_000_000_000),
                    ..lim
                };
                let exit = kvm.run(m, lim);
                observe(EngineKind::Kvm, m, exit)
            }
        }
    }
}

/// The instruction at the current RIP (RAM is identity-mapped below 2 MiB in every mode).
pub fn current_instruction(m: &Machine) -> Option<iced_x86::Instruction> {
    let at = m.cpu.linear_rip();
    let mut bytes = [0u8; 15];
    m.ram.read(at, &mut bytes).ok()?;
    let ip = m.cpu.rip;
    let mut d = Decoder::with_ip(m.cpu.code_bits(), &bytes, ip, DecoderOptions::NONE);
    let i = d.decode();
    (!i.is_invalid()).then_some(i)
}

/// The interpreter with a planted bug, for testing the fuzzer itself.
struct Flawed(Interpreter);

impl Engine for Flawed {
    fn name(&self) -> &'static str {
        "flawed"
    }

    fn run(&mut self, m: &mut Machine, limit: RunLimit) -> Result<Exit, EngineError> {
        let end = m.stats.instructions + limit.instructions.unwrap_or(u64::MAX);
        for _ in 0..limit.instructions.unwrap_or(u64::MAX).saturating_mul(2) {
            if m.stats.instructions >= end {
                break;
            }
            let not = current_instruction(m).is_some_and(|i| i.mnemonic() == Mnemonic::Not);
            let before = m.stats.instructions;
            let exit = self.0.run(m, RunLimit::instructions(1))?;
            if not && m.stats.instructions > before {
                m.cpu.rflags ^= flags::CF;
            }
            if exit != Exit::LimitReached {
                return Ok(exit);
            }
        }
        Ok(Exit::LimitReached)
    }
}

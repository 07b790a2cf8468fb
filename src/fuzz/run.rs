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
    /// `stats.instructions` counts every instruction (false for an unstepped KVM run).
    pub counted: bool,
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
        counted: true,
    }
}

/// Runs cases on one engine (every case on a fresh machine, and on KVM in a fresh VM: a vCPU
/// keeps state `CpuState` does not carry, such as a pending single-step trap).
pub struct Runner(pub EngineKind);

/// How long an unstepped KVM run may take: a case that loops without end is cut off.
const KVM_TIME_NS: u64 = 20_000_000;

impl Runner {
    pub fn new(kind: EngineKind, _mode: super::Mode) -> anyhow::Result<Runner> {
        if kind == EngineKind::Kvm {
            accel_kvm::kvm_available().map_err(|e| anyhow::anyhow!("KVM: {e}"))?;
        }
        Ok(Runner(kind))
    }

    pub fn kind(&self) -> EngineKind {
        self.0
    }

    /// Runs `case` for at most `limit` instructions (KVM: unstepped, bounded in time).
    pub fn run(&mut self, case: &Case, limit: u64) -> Observation {
        self.run_after(case, limit, None)
    }

    /// Runs `case` after `reference` ran it. KVM single-steps (and so counts instructions and
    /// stops at the same limit) only where the reference took no exception or interrupt and
    /// ended before the limit — a CPU that delivers an event during a step pushes the TF KVM
    /// set for stepping into the frame — and not on PVM, which turns the step of ring-3 code
    /// into a #DB for the guest. Elsewhere KVM runs free, bounded in time.
    pub fn run_after(
        &mut self,
        case: &Case,
        limit: u64,
        reference: Option<&Observation>,
    ) -> Observation {
        let code = case.code();
        let mut m = modes::new_machine(case.mode, &code);
        // I/O is bounded too: one REP INS/OUTS instruction may make 4,096 accesses per count.
        let lim = RunLimit {
            io_accesses: Some(limit),
            ..RunLimit::instructions(limit)
        };
        let kind = self.0;
        let (exit, counted) = match kind {
            EngineKind::Interp => (Interpreter::new().run(&mut m, lim), true),
            EngineKind::Bt => (BinaryTranslator::default().run(&mut m, lim), true),
            EngineKind::Flawed => (Flawed(Interpreter::new()).run(&mut m, lim), true),
            EngineKind::Kvm => {
                // Measured: PVM delivers the single-step trap of ring-3 code to the guest as
                // a #DB instead of exiting: there KVM cannot count ring-3 instructions.
                let pvm = accel_kvm::detect_flavour() == accel_kvm::KvmFlavour::Pvm;
                let stepped = !pvm
                    && reference.is_some_and(|r| {
                        r.stats.exceptions.is_empty()
                            && r.stats.interrupts == 0
                            && r.exit.as_ref().is_ok_and(|e| *e != Exit::LimitReached)
                    });
                let lim = if stepped {
                    RunLimit {
                        time_ns: Some(10 * KVM_TIME_NS),
                        ..lim
                    }
                } else {
                    RunLimit {
                        time_ns: Some(KVM_TIME_NS),
                        ..RunLimit::io_accesses(limit)
                    }
                };
                let exit = KvmEngine::new(&m)
                    .map_err(|e| EngineError::Host(e.to_string()))
                    .and_then(|mut kvm| kvm.run(&mut m, lim));
                (exit, stepped)
            }
        };
        let mut o = observe(kind, &mut m, exit);
        o.counted = counted;
        o
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

//! The engines a session can run the guest on (interp, bt, kvm), and moving the guest between them.
//! Teaches: an engine switch is just "the other engine continues from the same `CpuState` and RAM".
//!
//! A switch keeps no engine's private caches: the interpreter flushes its decoded instructions
//! and shadow MMU, and the binary translator is made afresh (empty translation cache), because
//! the engine that ran in between wrote guest memory — code and page tables — behind their backs.
//!
//! KVM exists only on Linux hosts (and never in a browser), so everything about it sits behind
//! `cfg(target_os = "linux")`; elsewhere the KVM choice is shown greyed out with the reason.

use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::{Engine, EngineError, Exit, Machine, RunLimit};

/// Which engine runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EngineKind {
    /// Our interpreter: every instruction in software; counts, records writes, can rewind.
    Interp,
    /// Our binary translator: guest blocks translated once and run from a cache; steps through
    /// the interpreter path, one instruction at a time.
    Bt,
    /// Linux KVM: the host CPU (or PVM's in-kernel interpreter) runs the guest.
    Kvm,
}

impl EngineKind {
    /// Every engine the GUI offers, in menu order. The menu, the toolbar and `--engine` are
    /// built from this list: a new engine is a variant, a row here, and its arm in `Engines`.
    pub const ALL: &'static [EngineKind] = &[EngineKind::Interp, EngineKind::Bt, EngineKind::Kvm];

    pub fn label(self) -> &'static str {
        match self {
            EngineKind::Interp => "interp",
            EngineKind::Bt => "bt",
            EngineKind::Kvm => "kvm",
        }
    }

    /// The engine called `label` (as `--engine` spells it).
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.label() == label)
    }

    /// One line on how the engine runs a guest (the menu's tooltip).
    pub fn about(self) -> &'static str {
        match self {
            EngineKind::Interp => "our interpreter: every instruction in software; can step back",
            EngineKind::Bt => {
                "our binary translator: runs translated blocks from a cache; a single step is one \
                 instruction through the interpreter path; can step back (same instructions, \
                 same virtual time as interp)"
            }
            EngineKind::Kvm => {
                "Linux KVM: the host CPU runs the guest; stepping uses KVM_GUESTDBG_SINGLESTEP"
            }
        }
    }

    /// Can this host run the engine? `Ok(name to show)`, e.g. "kvm (PVM, software)", or
    /// `Err(why not)`. Probes the host (opens /dev/kvm): call once and keep the answer.
    pub fn availability(self) -> Result<String, String> {
        match self {
            EngineKind::Interp | EngineKind::Bt => Ok(self.label().to_string()),
            EngineKind::Kvm => kvm_status().map(|flavour| format!("kvm ({flavour})")),
        }
    }
}

/// Can this host run KVM? `Ok(flavour)` ("VT-x", "PVM (software)", …) or `Err(why not)`.
pub fn kvm_status() -> Result<String, String> {
    #[cfg(target_os = "linux")]
    {
        accel_kvm::kvm_available().map_err(|e| e.to_string())?;
        Ok(accel_kvm::detect_flavour().to_string())
    }
    #[cfg(target_arch = "wasm32")]
    {
        Err(
            "a web page cannot use KVM: it needs /dev/kvm on a Linux host (run vmscope natively)"
                .to_string(),
        )
    }
    #[cfg(not(any(target_os = "linux", target_arch = "wasm32")))]
    {
        Err("KVM exists only on Linux hosts".to_string())
    }
}

/// The interpreter (always there), the translator (made afresh on every switch to it) and the
/// KVM engine (made on first use).
pub(super) struct Engines {
    #[cfg(target_os = "linux")]
    kvm: Option<accel_kvm::KvmEngine>,
    pub interp: Interpreter,
    bt: Option<Box<BinaryTranslator>>,
    pub active: EngineKind,
}

/// A translator that records its guest writes, so the memory view can highlight them.
fn recording_translator() -> BinaryTranslator {
    let mut bt = BinaryTranslator::default();
    bt.record_writes(true);
    bt
}

impl Engines {
    pub fn new() -> Self {
        let mut interp = Interpreter::new();
        interp.record_writes(true);
        Engines {
            #[cfg(target_os = "linux")]
            kvm: None,
            interp,
            bt: None,
            active: EngineKind::Interp,
        }
    }

    /// Replaces the interpreter (after a rewind built a new machine) and forgets the KVM VM,
    /// which mapped the old machine's RAM. A session on bt stays on bt, with a fresh translator
    /// (its translations belonged to the old machine); a rewind never happens after KVM ran.
    pub fn reset_with(&mut self, mut interp: Interpreter) {
        interp.record_writes(true);
        self.interp = interp;
        #[cfg(target_os = "linux")]
        {
            self.kvm = None;
        }
        if self.active == EngineKind::Bt {
            self.bt = Some(Box::new(recording_translator()));
        } else {
            self.bt = None;
            self.active = EngineKind::Interp;
        }
    }

    pub fn describe(&self) -> String {
        match self.active {
            EngineKind::Interp => self.interp.describe(),
            EngineKind::Bt => self
                .bt
                .as_ref()
                .map_or_else(|| "bt".to_string(), |b| b.describe()),
            #[cfg(target_os = "linux")]
            EngineKind::Kvm => self
                .kvm
                .as_ref()
                .map_or_else(|| "kvm".to_string(), |k| k.describe()),
            #[cfg(not(target_os = "linux"))]
            EngineKind::Kvm => "kvm (not available)".to_string(),
        }
    }

    pub fn switch(&mut self, kind: EngineKind, machine: &mut Machine) -> Result<(), String> {
        match kind {
            EngineKind::Interp => {
                // KVM wrote guest memory behind the interpreter's back: drop its caches.
                self.interp.flush_caches(machine);
            }
            EngineKind::Bt => {
                // Whatever ran before wrote memory the translator did not see: start empty.
                self.bt = Some(Box::new(recording_translator()));
            }
            EngineKind::Kvm => {
                #[cfg(target_os = "linux")]
                if self.kvm.is_none() {
                    let kvm = accel_kvm::KvmEngine::new(machine)
                        .map_err(|e| format!("KVM is not usable: {e}"))?;
                    self.kvm = Some(kvm);
                }
                #[cfg(not(target_os = "linux"))]
                return Err(kvm_status().unwrap_err());
            }
        }
        if kind != EngineKind::Bt {
            self.bt = None;
        }
        self.active = kind;
        Ok(())
    }

    /// The translator, while it is the active engine (its counters and cache for the Stats tab).
    pub fn translator(&self) -> Option<&BinaryTranslator> {
        self.bt.as_deref().filter(|_| self.active == EngineKind::Bt)
    }

    /// The active engine's extra counters (`Engine::report`), e.g. the translator's cache.
    pub fn report(&self) -> Option<String> {
        match self.active {
            EngineKind::Bt => self.bt.as_ref().and_then(|b| b.report()),
            _ => None,
        }
    }

    /// The active engine's software MMU, for page-walk explanations: the translator's while it
    /// runs (it holds the PAE PDPTE registers it loaded), else the interpreter's.
    pub fn mmu(&self) -> &emulator::mmu::Mmu {
        match self.translator() {
            Some(bt) => bt.mmu(),
            None => self.interp.mmu(),
        }
    }

    fn active_mut(&mut self) -> &mut dyn Engine {
        match self.active {
            #[cfg(target_os = "linux")]
            EngineKind::Kvm => match self.kvm.as_mut() {
                Some(k) => k,
                None => &mut self.interp,
            },
            EngineKind::Bt => match self.bt.as_deref_mut() {
                Some(b) => b,
                None => &mut self.interp,
            },
            _ => &mut self.interp,
        }
    }

    pub fn step(&mut self, machine: &mut Machine) -> Result<Exit, EngineError> {
        self.active_mut().step(machine)
    }

    pub fn run(&mut self, machine: &mut Machine, limit: RunLimit) -> Result<Exit, EngineError> {
        self.active_mut().run(machine, limit)
    }

    /// Guest-physical writes the interpreter and the translator made since the last call
    /// (KVM's are not seen: its guest writes RAM directly).
    pub fn take_writes(&mut self) -> Vec<(u64, u32)> {
        let mut writes = self.interp.take_recorded_writes();
        if let Some(bt) = self.bt.as_deref_mut() {
            writes.extend(bt.take_recorded_writes());
        }
        writes
    }
}

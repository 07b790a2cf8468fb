//! The engine factory: turns `--engine interp|kvm|auto` into a running `Engine`.
//! Teaches: hardware-assisted virtualization is optional; the machine stays the same without it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{bail, Result};
use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::{Engine, Machine};

/// An engine named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    /// Our interpreter: one instruction at a time, fully observable.
    Interp,
    /// Our binary translator: guest blocks translated once, then run from a cache.
    Bt,
    /// Linux KVM: the guest runs on the host CPU (or PVM's software mode).
    Kvm,
    /// KVM when /dev/kvm works, else the interpreter (with a one-line notice).
    Auto,
}

impl std::fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineChoice::Interp => "interp",
            EngineChoice::Bt => "bt",
            EngineChoice::Kvm => "kvm",
            EngineChoice::Auto => "auto",
        })
    }
}

static BT_CACHE_BYTES: AtomicUsize = AtomicUsize::new(emulator::bt::DEFAULT_CAPACITY);

/// Sets the translation-cache capacity of every `bt` engine made from now on (`--bt-cache`).
pub fn set_bt_cache_bytes(bytes: usize) {
    BT_CACHE_BYTES.store(bytes, Ordering::Relaxed);
}

static KVM_STRICT: AtomicBool = AtomicBool::new(false);

/// Makes every kvm engine made from now on stop where KVM cannot emulate an instruction
/// (`--kvm-strict`) instead of letting the interpreter run it.
pub fn set_kvm_strict(strict: bool) {
    KVM_STRICT.store(strict, Ordering::Relaxed);
}

/// The translation-cache capacity `bt` engines get.
pub fn bt_cache_bytes() -> usize {
    BT_CACHE_BYTES.load(Ordering::Relaxed)
}

/// Creates the engine for `choice` on `machine`. `notice` receives one-line messages for the user
/// (the auto fallback).
pub fn make_engine(
    choice: EngineChoice,
    machine: &Machine,
    notice: &mut dyn FnMut(String),
) -> Result<Box<dyn Engine>> {
    match choice {
        EngineChoice::Interp => Ok(Box::new(Interpreter::new())),
        EngineChoice::Bt => Ok(Box::new(BinaryTranslator::new(bt_cache_bytes()))),
        EngineChoice::Kvm => match accel_kvm::KvmEngine::new(machine) {
            Ok(kvm) => Ok(Box::new(
                kvm.with_strict_emulation(KVM_STRICT.load(Ordering::Relaxed)),
            )),
            Err(e) => bail!("--engine kvm: {e}"),
        },
        EngineChoice::Auto => match accel_kvm::KvmEngine::new(machine) {
            Ok(kvm) => Ok(Box::new(
                kvm.with_strict_emulation(KVM_STRICT.load(Ordering::Relaxed)),
            )),
            Err(e) => {
                notice(format!(
                    "note: KVM is not usable ({e}); falling back to the interpreter"
                ));
                Ok(Box::new(Interpreter::new()))
            }
        },
    }
}

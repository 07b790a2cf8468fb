//! `KvmEngine`: the machine's CPU run by Linux KVM, behind the same `Engine` door as the interpreter.
//! Teaches: what a hardware-assisted VMM does around the guest: create, map, load state, run, unload.
//!
//! The guest's instructions run on the host CPU (or, under PVM, partly in the host kernel's
//! interpreter); everything a device does still happens in our process, on the same `Bus` the
//! emulated engines use. The loop that connects the two is in `run_loop.rs`.

use emulator::cpu::state::flags;
use emulator::{Engine, EngineError, Exit, Machine, RunLimit};
use kvm_bindings::{
    kvm_guest_debug, kvm_userspace_memory_region, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP,
};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};

use crate::clock::{HostClock, Kicker};
use crate::flavour::{detect_flavour, kvm_available, KvmFlavour};
use crate::state::{self, StateCaps};
use crate::vm::{self, RamMapping, RomMapping, ROM_SLOT};
use crate::KvmError;

/// The KVM engine: one VM with one vCPU, sharing the machine's RAM.
///
/// Field order matters for `Drop`: the vCPU and VM close before the ROM pages they map go away.
pub struct KvmEngine {
    pub(crate) vcpu: VcpuFd,
    vm: VmFd,
    kvm: Kvm,
    rom: Option<RomMapping>,
    ram: RamMapping,
    flavour: KvmFlavour,
    caps: StateCaps,
    readonly_mem: bool,
    notes: Vec<String>,
    pub(crate) kicker: Kicker,
    /// The CPU executed HLT and we are (logically) waiting for an interrupt. Without an
    /// in-kernel interrupt controller KVM hands HLT to us, so this is ours to remember.
    pub(crate) halted: bool,
    /// `kvm_run`'s interrupt-readiness fields describe the current state only after a KVM_RUN.
    /// Right after we load a state they are stale, so this holds "can take an interrupt" as
    /// computed from the loaded state (IF set, no interrupt shadow) until the first KVM_RUN.
    pub(crate) ready_after_push: Option<bool>,
    /// The guest's TSC when we last read the state back: the next run starts no lower, so the
    /// guest never sees time stamps go backwards (see `push_state`).
    last_guest_tsc: u64,
    /// IA32_TSC_DEADLINE as the guest wrote it, in guest TSC ticks (the bus holds it in
    /// virtual ns; see `apic_msr.rs`).
    pub(crate) guest_tsc_deadline: u64,
    /// KVM walks guest page tables in hardware: HC_MMU_UPDATE may write them (see `pv_door`).
    pub(crate) hardware_paging: bool,
    /// Stop with an error when KVM's instruction emulator gives up (`--kvm-strict`), instead
    /// of running that one instruction on the interpreter (see `run_loop.rs`).
    pub(crate) strict_emulation: bool,
    /// The interpreter that runs what KVM could not; made on first use. KVM writes guest memory
    /// behind its back; the memory epoch each KVM_RUN moves makes it drop its caches.
    pub(crate) fallback: Option<Box<emulator::interp::Interpreter>>,
}

impl std::fmt::Debug for KvmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvmEngine")
            .field("flavour", &self.flavour)
            .field("ram", &self.ram)
            .field("rom_read_only", &self.rom.as_ref().map(|r| r.read_only))
            .field("notes", &self.notes)
            .finish()
    }
}

impl KvmEngine {
    /// Creates the VM and its vCPU for `machine`: RAM as slot 0 (shared, not copied), the ROM at
    /// the top of 4 GiB, the CPUID model, and no in-kernel interrupt controller.
    pub fn new(machine: &Machine) -> Result<Self, KvmError> {
        kvm_available()?;
        let flavour = detect_flavour();
        let kvm = Kvm::new().map_err(|e| KvmError::Open(e.into()))?;
        let version = kvm.get_api_version();
        if version != 12 {
            return Err(KvmError::ApiVersion(version));
        }
        let vm = kvm.create_vm().map_err(KvmError::ioctl("KVM_CREATE_VM"))?;
        if !matches!(flavour, KvmFlavour::Pvm) {
            vm::set_real_mode_helpers(&vm, &kvm, machine.rom.len())?;
        }
        let ram = vm::map_ram(&vm, machine)?;
        let readonly_mem = kvm.check_extension(Cap::ReadonlyMem);
        let rom = if machine.rom.is_empty() {
            None
        } else {
            Some(RomMapping::map(&vm, &machine.rom, ram.size, readonly_mem)?)
        };
        let vcpu = vm
            .create_vcpu(0)
            .map_err(KvmError::ioctl("KVM_CREATE_VCPU"))?;
        // The local APIC's MSRs must reach our bus (see apic_msr.rs); where KVM cannot route
        // them, CPUID does not offer x2APIC and TSC-deadline.
        let apic_msrs = crate::apic_msr::route_apic_msrs(&kvm, &vm);
        let hardware_paging =
            crate::flavour::hardware_paging(flavour, std::path::Path::new("/sys/module"));
        let mut notes =
            vm::install_cpuid_with(&kvm, &vcpu, apic_msrs.is_ok(), machine.pv, hardware_paging)?;
        if let Err(why) = apic_msrs {
            notes.push(format!("{why}: x2APIC and TSC-deadline not advertised"));
        }
        let host_msrs = vm::host_msr_list(&kvm)?;
        let (msrs, msr_notes) = vm::carried_msrs(&host_msrs);
        notes.extend(msr_notes);
        if !readonly_mem {
            notes.push("no KVM_CAP_READONLY_MEM: the ROM is mapped writable".into());
        }
        let caps = StateCaps::probe(&kvm, msrs, &host_msrs);
        // The machine's clock counts 1 GHz; let the guest TSC tick at that rate where KVM can
        // scale it. Elsewhere it ticks at the host's rate while the guest runs.
        let scaled = kvm.check_extension(Cap::TscControl) && vcpu.set_tsc_khz(1_000_000).is_ok();
        if !scaled {
            notes.push(format!(
                "no TSC scaling: the guest TSC ticks at the host's {} while KVM runs it, \
                 not at the virtual clock's 1 GHz",
                vcpu.get_tsc_khz().map_or("rate".to_string(), |khz| format!(
                    "{:.3} GHz",
                    khz as f64 / 1e6
                ))
            ));
        }
        Ok(KvmEngine {
            vcpu,
            vm,
            kvm,
            rom,
            ram,
            flavour,
            caps,
            readonly_mem,
            notes,
            kicker: Kicker::new().map_err(KvmError::KickThread)?,
            halted: false,
            ready_after_push: None,
            last_guest_tsc: 0,
            hardware_paging,
            guest_tsc_deadline: 0,
            strict_emulation: false,
            fallback: None,
        })
    }

    /// `true`: an instruction KVM cannot emulate stops the run with an error (the behaviour
    /// before the interpreter fallback); `false` (the default): the interpreter executes it.
    pub fn with_strict_emulation(mut self, strict: bool) -> Self {
        self.strict_emulation = strict;
        self
    }

    /// The KVM backend this engine runs on.
    pub fn flavour(&self) -> KvmFlavour {
        self.flavour
    }

    /// Adjustments made for this host: CPUID bits not advertised, MSRs not carried, …
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Is the ROM slot read-only (writes to it exit to us and are dropped)?
    pub fn rom_read_only(&self) -> Option<bool> {
        self.rom.as_ref().map(|r| r.read_only)
    }

    /// The Kvm system handle (for capability checks by tools).
    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    /// Makes sure KVM maps this machine's RAM and ROM (the engine may be handed a machine whose
    /// RAM was reallocated, or a ROM loaded after the engine was created).
    fn sync_memory(&mut self, machine: &Machine) -> Result<(), KvmError> {
        let want = RamMapping::wanted(machine);
        if want != self.ram {
            self.ram = vm::map_ram(&self.vm, machine)?;
        }
        let same_rom = match &self.rom {
            Some(r) => r.source == machine.rom,
            None => machine.rom.is_empty(),
        };
        if !same_rom {
            if self.rom.take().is_some() {
                let remove = kvm_userspace_memory_region {
                    slot: ROM_SLOT,
                    ..Default::default()
                };
                // SAFETY: a zero-sized region deletes the slot; no host memory is referenced.
                unsafe { self.vm.set_user_memory_region(remove) }
                    .map_err(KvmError::ioctl("KVM_SET_USER_MEMORY_REGION (remove ROM)"))?;
            }
            if !machine.rom.is_empty() {
                self.rom = Some(RomMapping::map(
                    &self.vm,
                    &machine.rom,
                    self.ram.size,
                    self.readonly_mem,
                )?);
            }
        }
        Ok(())
    }

    /// With the dirty-page log on, moves what KVM recorded (the pages the guest wrote during
    /// this run; KVM_GET_DIRTY_LOG also clears it) into `machine.ram`'s log.
    fn collect_dirty_log(&self, machine: &mut Machine) -> Result<(), KvmError> {
        if !self.ram.log_dirty {
            return Ok(());
        }
        let bitmap = self
            .vm
            .get_dirty_log(vm::RAM_SLOT, self.ram.size as usize)
            .map_err(KvmError::ioctl("KVM_GET_DIRTY_LOG"))?;
        machine.ram.mark_dirty_bitmap(&bitmap);
        Ok(())
    }

    /// Loads `machine.cpu` into the vCPU.
    pub(crate) fn push_state(&mut self, machine: &Machine) -> Result<(), EngineError> {
        state::push(
            &self.vcpu,
            &machine.cpu,
            &self.caps,
            Some(machine.bus.clock().tsc()),
        )
        .map_err(|e| self.state_error(machine, e))?;
        self.halted = machine.cpu.events.halted;
        self.ready_after_push =
            Some(interrupts_enabled(machine.cpu.rflags) && !machine.cpu.events.interrupt_shadow);
        Ok(())
    }

    /// Reads the vCPU back into `machine.cpu`.
    pub(crate) fn pull_state(&mut self, machine: &mut Machine) -> Result<(), EngineError> {
        if let Some(tsc) = state::pull(&self.vcpu, &mut machine.cpu, &self.caps)? {
            self.last_guest_tsc = tsc;
            self.record_kvmclock_floor(machine, tsc);
        }
        machine.cpu.events.halted = self.halted;
        Ok(())
    }

    /// A refused state names the mode and the flavour: e.g. a host that cannot run real mode.
    fn state_error(&self, machine: &Machine, e: KvmError) -> EngineError {
        match &e {
            KvmError::Ioctl { source, .. } if source.errno() == libc::EINVAL => {
                EngineError::Unsupported(format!(
                    "{} on KVM ({}): {e}",
                    machine.cpu.mode(),
                    self.flavour
                ))
            }
            _ => e.into(),
        }
    }

    /// Turns single-stepping (one KVM_EXIT_DEBUG per instruction) on or off.
    pub(crate) fn set_single_step(&self, on: bool) -> Result<(), KvmError> {
        let debug = kvm_guest_debug {
            control: if on {
                KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP
            } else {
                0
            },
            ..Default::default()
        };
        self.vcpu
            .set_guest_debug(&debug)
            .map_err(KvmError::ioctl("KVM_SET_GUEST_DEBUG"))
    }
}

impl KvmEngine {
    pub(crate) fn vm(&self) -> &VmFd {
        &self.vm
    }
}

impl Engine for KvmEngine {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn describe(&self) -> String {
        format!("kvm ({})", self.flavour)
    }

    fn counts_instructions(&self) -> bool {
        false
    }

    fn run(&mut self, machine: &mut Machine, limit: RunLimit) -> Result<Exit, EngineError> {
        self.sync_memory(machine)?;
        self.push_state(machine)?;
        self.adopt_kvmclock(machine)?;
        let stepping = limit.instructions.is_some();
        self.set_single_step(stepping)?;
        let clock = HostClock::start(&machine.bus);
        self.kicker.arm();
        let result = self.run_loop(machine, limit, &clock, stepping);
        self.kicker.disarm();
        // Read the state back even after a failure, so the user can see where the guest was;
        // the first error is the one reported.
        let unstep = if stepping {
            self.set_single_step(false).map_err(EngineError::from)
        } else {
            Ok(())
        };
        let pulled = self.pull_state(machine);
        clock.sync(&mut machine.bus, machine.ram.as_mut_slice());
        let logged = self.collect_dirty_log(machine);
        let exit = result?;
        logged?;
        unstep?;
        pulled?;
        Ok(exit)
    }
}

/// Is RFLAGS.IF set in this RFLAGS value?
pub(crate) fn interrupts_enabled(rflags: u64) -> bool {
    rflags & flags::IF != 0
}

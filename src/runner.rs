//! The run loop: load a guest, run it on an engine, switch engines mid-run, report how it ended.
//! Teaches: an engine returns at instruction boundaries with a reason; the VMM decides what next.

use std::io::Write;

use anyhow::{Context, Result};
use emulator::machine::loader::{BootMethod, LoadedImage};
use emulator::{Exit, Machine, RunLimit};

use crate::engines::{make_engine, EngineChoice};
use crate::image::ImageFormat;

/// What `--switch-after N` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SwitchUnit {
    /// Guest port and MMIO accesses (counted the same way by every engine).
    Io,
    /// Guest instructions (KVM counts them by single-stepping).
    Instructions,
}

/// Move the CPU to another engine after `after` units.
#[derive(Debug, Clone, Copy)]
pub struct SwitchPlan {
    pub after: u64,
    pub unit: SwitchUnit,
    pub to: EngineChoice,
}

/// Save the machine to a file once this many instructions have run (`--save-at N --save FILE`),
/// and on Ctrl-C (`--save FILE`, once `ctrl_c::catch` is on).
#[derive(Debug, Clone)]
pub struct SavePlan {
    pub at: Option<u64>,
    pub path: std::path::PathBuf,
}

/// How to run a guest.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub engine: EngineChoice,
    pub memory: u64,
    pub cmdline: String,
    pub max_instructions: Option<u64>,
    pub switch: Option<SwitchPlan>,
    /// How a Multiboot kernel starts: directly in protected mode, or at RESET through
    /// vmscope's firmware ROM (`guests::FIRMWARE_ROM`). Other images ignore it.
    pub boot: BootMethod,
    /// Offer paravirtualization (`--pv on`): CPUID's hypervisor leaves, hypercalls, kvmclock.
    pub pv: bool,
    /// Load the file as a flat real-mode binary at 0x7C00 whatever it looks like
    /// (`--format flat`), instead of detecting its format.
    pub flat: bool,
    /// Disk images (`--disk`), opened and attached before the guest starts.
    pub disks: Vec<crate::disk::DiskSpec>,
    /// A virtio-console and its transport (`--virtio-console`), placed after the disks.
    pub virtio_console: Option<crate::disk::VirtioTransport>,
    /// A virtio-rng, its transport and seed (`--virtio-rng`, `--virtio-rng-seed`), after the console.
    pub virtio_rng: Option<crate::attach::RngSpec>,
    /// QEMU's test devices (`--device`).
    pub test_devices: Vec<crate::attach::TestDevice>,
    /// A NIC (`--nic`, `--mac`, `--tap`), after the rng.
    pub nic: Option<crate::attach::NicSpec>,
    /// Print the device table before the guest starts (`--devices`).
    pub show_devices: bool,
    /// Save the machine to a snapshot file partway (`--save-at`, `--save`).
    pub save: Option<SavePlan>,
    /// Move the running guest to another vmscope (`--migrate-to`, `--migrate-after`).
    pub migrate: Option<crate::migrate::MigratePlan>,
    /// Multiboot boot modules (`--module`), in order.
    pub modules: Vec<emulator::machine::loader::BootModule>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            engine: EngineChoice::Interp,
            memory: 64 << 20,
            cmdline: String::new(),
            max_instructions: None,
            switch: None,
            boot: BootMethod::Direct,
            pv: false,
            flat: false,
            disks: Vec::new(),
            virtio_console: None,
            virtio_rng: None,
            test_devices: Vec::new(),
            nic: None,
            show_devices: false,
            save: None,
            migrate: None,
            modules: Vec::new(),
        }
    }
}

/// How a guest run ended.
#[derive(Debug)]
pub struct GuestOutcome {
    pub exit: Exit,
    /// The process exit status `vmscope run` uses: the debug-exit status (always odd), 0 on
    /// clean shutdown, 6 on a triple fault, 4 when the instruction limit stopped the guest.
    pub status: i32,
    /// Engines in the order they ran ("kvm (PVM, software)", …).
    pub engines: Vec<String>,
    /// Engine-specific counters of each engine that had any (the translator's cache).
    pub reports: Vec<String>,
    pub machine: Machine,
    /// What ran: the loaded image ("kernel.elf: Multiboot ELF32, entry …"), or the snapshot.
    pub image: String,
    /// The guest left for another vmscope (`--migrate-to`): how it went.
    pub migrated: Option<(crate::migrate::Endpoint, crate::migrate::source::Migrated)>,
    /// Ctrl-C stopped the guest, and it was saved to this file (`--save FILE`).
    pub saved_on_ctrl_c: Option<std::path::PathBuf>,
}

impl GuestOutcome {
    /// One line for the user about how the guest ended.
    pub fn summary(&self) -> String {
        if let Some(path) = &self.saved_on_ctrl_c {
            return format!(
                "Ctrl-C: saved the machine after {} instructions to {}; continue it with `vmscope restore {}`",
                self.machine.stats.instructions,
                path.display(),
                path.display()
            );
        }
        match &self.migrated {
            Some((to, m)) => m.describe(to).join("\nvmscope: "),
            None => exit_summary(&self.exit),
        }
    }
}

/// A likely explanation for how a run ended, where the host is the reason.
pub fn hint_for(outcome: &GuestOutcome) -> Option<String> {
    let engine = outcome.engines.last().map_or("", String::as_str);
    host_hint(engine, &outcome.exit, &outcome.machine.cpu)
}

/// [`hint_for`] from the parts: the engine that ran last (its `describe()`), how it stopped
/// and the CPU state it stopped in. `vmscope step` asks too.
pub fn host_hint(engine: &str, exit: &Exit, cpu: &emulator::cpu::CpuState) -> Option<String> {
    let on_pvm =
        engine.starts_with("kvm") && accel_kvm::detect_flavour() == accel_kvm::KvmFlavour::Pvm;
    if on_pvm && matches!(exit, Exit::TripleFault { .. }) && !cpu.long_mode_active() {
        return Some(
            "this host's KVM is PVM, which cannot run 32-bit or PAE paging (setting CR0.PG \
             outside long mode raises #GP); if the guest pages outside long mode, run it with \
             --engine interp or --engine bt"
                .into(),
        );
    }
    None
}

/// How a run ended, in words (`guest wrote 0x10 to isa-debug-exit: exit status 33`).
pub fn exit_summary(exit: &Exit) -> String {
    match exit {
        Exit::DebugExit { value, status } => {
            format!("guest wrote {value:#x} to isa-debug-exit: exit status {status}")
        }
        Exit::Shutdown => "guest halted with interrupts disabled: clean shutdown".into(),
        Exit::TripleFault { detail } => format!("triple fault: {detail}; machine stopped"),
        Exit::ResetRequested => "guest requested a reset; machine stopped".into(),
        Exit::PowerOff => "guest powered off (ACPI S5): clean shutdown".into(),
        Exit::LimitReached => "instruction limit reached; guest stopped".into(),
    }
}

pub fn exit_status(exit: &Exit) -> i32 {
    match exit {
        Exit::DebugExit { status, .. } => *status,
        Exit::Shutdown | Exit::ResetRequested | Exit::PowerOff => 0,
        // Even, so it never equals a debug-exit status ((v << 1) | 1 is always odd).
        Exit::TripleFault { .. } => 6,
        Exit::LimitReached => 4,
    }
}

/// Loads an image as `opts` says: detected (with the boot method), or as a flat binary.
pub fn load(
    machine: &mut Machine,
    name: &str,
    bytes: &[u8],
    opts: &RunOptions,
) -> Result<LoadedImage> {
    let format = if opts.flat {
        ImageFormat::Flat
    } else {
        ImageFormat::Auto
    };
    crate::image::load_with_modules(
        machine,
        name,
        bytes,
        &opts.cmdline,
        opts.boot,
        format,
        &opts.modules,
    )
}

/// How much guest time a KVM run slice lasts before the runner shows the output so far.
const SLICE_NS: u64 = 50_000_000;

/// The empty machine `opts` describes: RAM, paravirtualization and the attached devices, no
/// image yet (a snapshot restored into it brings its own RAM).
pub fn build_board(opts: &RunOptions) -> Result<(Machine, crate::attach::Attached)> {
    let mut machine = Machine::new(opts.memory)
        .with_context(|| format!("creating a machine with {} bytes of RAM", opts.memory))?;
    machine.pv = opts.pv;
    let attached = crate::attach::attach(
        &mut machine.bus,
        &opts.disks,
        opts.virtio_console,
        opts.virtio_rng,
        &opts.test_devices,
        opts.nic.as_ref(),
    )?;
    Ok((machine, attached))
}

/// Builds the machine `opts` describes (RAM, paravirtualization, the attached devices) and
/// loads `bytes` into it; `vmscope run` and its `--gdb` stub both start here.
pub fn build_machine(
    name: &str,
    bytes: &[u8],
    opts: &RunOptions,
    notice: &mut dyn FnMut(String),
) -> Result<(Machine, LoadedImage, crate::attach::Attached)> {
    let (mut machine, attached) = build_board(opts)?;
    if opts.show_devices {
        notice(crate::board_info::describe(&mut machine.bus, &attached));
    }
    let image = load(&mut machine, name, bytes, opts)?;
    Ok((machine, image, attached))
}

/// Builds a machine, loads `bytes`, runs it to the end. Serial output goes to `serial`
/// (as it arrives when `live` is set, which routes the UART straight to stdout).
pub fn run_guest(
    name: &str,
    bytes: &[u8],
    opts: &RunOptions,
    serial: &mut dyn Write,
    notice: &mut dyn FnMut(String),
) -> Result<GuestOutcome> {
    let (machine, image, attached) = build_machine(name, bytes, opts, notice)?;
    run_machine(machine, image.to_string(), &attached, opts, serial, notice)
}

/// Runs a machine that is ready (loaded, or restored from a snapshot file) to the end, as
/// `opts` says: slices, engine switches, the instruction limit, `--save-at`, a NIC's tap.
/// `image` describes what runs, for the summary.
pub fn run_machine(
    mut machine: Machine,
    image: String,
    attached: &crate::attach::Attached,
    opts: &RunOptions,
    serial: &mut dyn Write,
    notice: &mut dyn FnMut(String),
) -> Result<GuestOutcome> {
    let mut cable = crate::net::cable::TapCable::for_nic(attached.nic.as_ref())?;
    let mut engine = make_engine(opts.engine, &machine, notice)?;
    let mut save = opts.save.clone();
    let mut engines = vec![engine.describe()];
    let mut reports = Vec::new();
    let mut switch = opts.switch;
    let start_instructions = machine.stats.instructions;
    if opts.max_instructions.is_some() && !engine.counts_instructions() {
        notice(format!(
            "note: {} runs guest code natively; to count instructions for --max-instructions \
             it single-steps the guest (one exit per instruction: slow)",
            engine.describe()
        ));
    }
    let mut migration = Migration::new(opts.migrate.clone(), &machine);
    let exit = loop {
        // Emulated engines run in slices of instructions, KVM in slices of (host) time: either
        // way the loop gets control back often enough to show the guest's output as it comes.
        let mut limit = if engine.counts_instructions() {
            RunLimit::instructions(1_000_000)
        } else {
            RunLimit::time_ns(SLICE_NS)
        };
        migration.limit(&machine, &mut limit);
        if cable.is_some() {
            // A peer on the tap lives in real time: short slices, paced below.
            limit.time_ns = Some(crate::net::cable::PACED_SLICE_NS);
        }
        if let Some(max) = opts.max_instructions {
            let used = machine.stats.instructions - start_instructions;
            if used >= max {
                break Exit::LimitReached;
            }
            // KVM counts instructions by single-stepping whenever the limit names a count.
            limit.instructions = Some(limit.instructions.unwrap_or(u64::MAX).min(max - used));
        }
        if let Some(at) = save.as_ref().and_then(|p| p.at) {
            let done = machine.stats.instructions - start_instructions;
            limit.instructions = Some(
                limit
                    .instructions
                    .unwrap_or(u64::MAX)
                    .min(at.saturating_sub(done)),
            );
        }
        if let Some(plan) = switch {
            match plan.unit {
                SwitchUnit::Io => limit.io_accesses = Some(plan.after),
                SwitchUnit::Instructions => {
                    limit.instructions =
                        Some(limit.instructions.unwrap_or(u64::MAX).min(plan.after))
                }
            }
        }
        let before_io = machine.stats.io_accesses();
        let before_ins = machine.stats.instructions;
        let exit = engine.run(&mut machine, limit)?;
        if let Some(cable) = cable.as_mut() {
            cable.pump(&mut machine);
            cable.pace(&machine);
        }
        let output = machine.bus.take_serial_output();
        if !output.is_empty() {
            serial.write_all(&output)?;
            serial.flush()?;
        }
        if exit != Exit::LimitReached {
            break exit;
        }
        if let Some(done) = migration.after_slice(&mut machine, attached, opts, &image, notice)? {
            serial.flush()?;
            reports.extend(engine.report());
            return Ok(GuestOutcome {
                exit,
                status: 0,
                engines,
                reports,
                machine,
                image,
                migrated: Some(done),
                saved_on_ctrl_c: None,
            });
        }
        if let Some(plan) = opts.save.as_ref().filter(|_| crate::ctrl_c::pressed()) {
            crate::snapshot::save_file(&machine, attached, opts, &image, &plan.path)?;
            serial.flush()?;
            reports.extend(engine.report());
            return Ok(GuestOutcome {
                exit,
                status: CTRL_C_STATUS,
                engines,
                reports,
                machine,
                image,
                migrated: None,
                saved_on_ctrl_c: Some(plan.path.clone()),
            });
        }
        if let Some((at, plan)) = save.as_ref().and_then(|p| p.at.map(|at| (at, p))) {
            if machine.stats.instructions - start_instructions >= at {
                crate::snapshot::save_file(&machine, attached, opts, &image, &plan.path)?;
                notice(format!(
                    "vmscope: saved the machine after {at} instructions to {}",
                    plan.path.display()
                ));
                save = None;
            }
        }
        if let Some(plan) = switch.as_mut() {
            let done = match plan.unit {
                SwitchUnit::Io => machine.stats.io_accesses() - before_io,
                SwitchUnit::Instructions => machine.stats.instructions - before_ins,
            };
            plan.after = plan.after.saturating_sub(done);
            if plan.after == 0 {
                reports.extend(engine.report());
                engine = make_engine(plan.to, &machine, notice)?;
                machine.stats.engine_switches += 1;
                engines.push(engine.describe());
                switch = None;
            }
        }
    };
    serial.flush()?;
    if let (Some(_), Some(plan)) = (&migration.precopy, &migration.plan) {
        notice(format!(
            "vmscope: the guest ended before its migration to {} was done; the destination gets nothing",
            plan.to
        ));
    }
    reports.extend(engine.report());
    let status = exit_status(&exit);
    Ok(GuestOutcome {
        exit,
        status,
        engines,
        reports,
        machine,
        image,
        migrated: None,
        saved_on_ctrl_c: None,
    })
}

/// `vmscope run`'s exit status after Ctrl-C saved the machine: 128 + SIGINT, as a shell
/// reports a program Ctrl-C ended.
pub const CTRL_C_STATUS: i32 = 130;

/// `--migrate-to`'s part of the run loop: waiting for `--migrate-after`, then pre-copy between
/// slices, then the stop-and-copy. A failure is a notice: the guest runs on here.
struct Migration {
    plan: Option<crate::migrate::MigratePlan>,
    start_instructions: u64,
    start_ns: u64,
    precopy: Option<crate::migrate::source::Precopy>,
}

impl Migration {
    fn new(plan: Option<crate::migrate::MigratePlan>, machine: &Machine) -> Self {
        Migration {
            plan,
            start_instructions: machine.stats.instructions,
            start_ns: machine.bus.now_ns(),
            precopy: None,
        }
    }

    /// Shortens the next slice: to end where `--migrate-after` says, and, while pre-copy runs,
    /// to one slice of the link.
    fn limit(&self, machine: &Machine, limit: &mut RunLimit) {
        let Some(plan) = &self.plan else { return };
        if self.precopy.is_some() {
            let t = crate::migrate::source::SLICE_NS;
            limit.time_ns = Some(limit.time_ns.map_or(t, |l| l.min(t)));
            return;
        }
        match plan.after {
            crate::migrate::MigrateAfter::Instructions(n) => {
                let done = machine.stats.instructions - self.start_instructions;
                let left = n.saturating_sub(done);
                limit.instructions = Some(limit.instructions.map_or(left, |l| l.min(left)));
            }
            crate::migrate::MigrateAfter::GuestNs(ns) => {
                let left = ns
                    .saturating_sub(machine.bus.now_ns() - self.start_ns)
                    .max(1);
                limit.time_ns = Some(limit.time_ns.map_or(left, |l| l.min(left)));
            }
        }
    }

    fn due(&self, machine: &Machine) -> bool {
        match self.plan.as_ref().map(|p| p.after) {
            Some(crate::migrate::MigrateAfter::Instructions(n)) => {
                machine.stats.instructions - self.start_instructions >= n
            }
            Some(crate::migrate::MigrateAfter::GuestNs(ns)) => {
                machine.bus.now_ns() - self.start_ns >= ns
            }
            None => false,
        }
    }

    /// After a slice that ended at the limit: start, continue or finish the migration.
    /// `Some` once the destination has the guest.
    fn after_slice(
        &mut self,
        machine: &mut Machine,
        attached: &crate::attach::Attached,
        opts: &RunOptions,
        image: &str,
        notice: &mut dyn FnMut(String),
    ) -> Result<Option<(crate::migrate::Endpoint, crate::migrate::source::Migrated)>> {
        use crate::migrate::source::{Next, Precopy};
        let Some(plan) = self.plan.clone() else {
            return Ok(None);
        };
        if self.precopy.is_none() && !self.due(machine) {
            return Ok(None);
        }
        let step = match self.precopy.as_mut() {
            None => {
                let started = refuse_disks(opts)
                    .and_then(|()| crate::snapshot::meta_for(machine, attached, opts, image))
                    .and_then(|meta| Ok(serde_json::to_vec(&meta)?))
                    .and_then(|meta| Precopy::start(&plan, machine, &meta));
                match started {
                    Ok(p) => {
                        notice(format!(
                            "vmscope: migrating to {} after {:.1} ms of guest time: pre-copy at {} MiB/s of guest time",
                            plan.to,
                            (machine.bus.now_ns() - self.start_ns) as f64 / 1e6,
                            plan.bandwidth >> 20
                        ));
                        self.precopy = Some(p);
                        return Ok(None);
                    }
                    Err(e) => Err(e),
                }
            }
            Some(p) => p.after_slice(machine),
        };
        let result = match step {
            Ok(Next::Run) => return Ok(None),
            Ok(Next::Stop) => {
                let stopped = std::time::Instant::now();
                let precopy = self.precopy.take().expect("pre-copy in progress");
                machine
                    .snapshot_without_ram()
                    .map_err(|e| anyhow::anyhow!("taking the machine's state: {e}"))
                    .and_then(|snap| crate::snapshot::state_sections(&snap.to_parts()))
                    .map(|sections| crate::snapshot::file::encode(&sections))
                    .and_then(|state| precopy.stop_and_copy(machine, &state, stopped))
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(done) => Ok(Some((plan.to, done))),
            Err(e) => {
                machine.ram.stop_dirty_log();
                self.precopy = None;
                self.plan = None;
                notice(format!(
                    "vmscope: migration to {} failed: {e:#}; the guest keeps running here",
                    plan.to
                ));
                Ok(None)
            }
        }
    }
}

/// A migration carries RAM and device state, not disks: the guest could write a disk between
/// rounds, and the destination would need the file (a shared one, or a copy) — not done yet.
fn refuse_disks(opts: &RunOptions) -> Result<()> {
    if !opts.disks.is_empty() {
        anyhow::bail!("a machine with disks cannot be migrated yet (save it with --save instead)");
    }
    Ok(())
}

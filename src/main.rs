//! `vmscope`: run one x86 guest on our interpreter or on KVM and watch what happens.
//! Teaches: the user's side of a VMM — images in, guest output and exit statistics out.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use emulator::machine::loader::BootMethod;
use vmscope::image::{read_image, FormatArg, ImageFormat};
use vmscope::{EngineChoice, RunOptions, SwitchPlan, SwitchUnit};

#[derive(Parser)]
#[command(
    name = "vmscope",
    version,
    about = "Learn virtualization by doing it: one x86 guest, several engines"
)]
struct Cli {
    /// Host memory the binary translator's cache may use (`--engine bt`), e.g. 32M; when a new
    /// block does not fit, the whole cache is flushed.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_cache_size)]
    bt_cache: Option<u64>,
    /// On kvm, stop with an error when KVM's instruction emulator cannot execute an
    /// instruction (PVM: INT3, INT n, x87 in ring 0, …), instead of running that one
    /// instruction on the interpreter and going back to KVM (the default; `--stats` counts
    /// them as emulated-for-kvm exits).
    #[arg(long, global = true)]
    kvm_strict: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a guest image (Multiboot kernel, firmware ROM or flat binary); no IMAGE = the built-in demo.
    Run {
        /// Path to the image, or the name of a built-in guest (see `vmscope guests`).
        image: Option<String>,
        #[arg(long, value_enum, default_value_t = EngineChoice::Auto)]
        engine: EngineChoice,
        /// Guest RAM, e.g. 64M, 1G, 65536.
        #[arg(long, default_value = "64M", value_parser = vmscope::sizes::parse_memory_size)]
        memory: u64,
        /// Multiboot command line passed to the kernel (it may start with '-').
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        cmdline: String,
        /// A Multiboot boot module: "FILE" or "FILE ARGS" (the kernel reads the whole value as
        /// the module's string, as from GRUB or QEMU's -initrd). Repeat for more, in order;
        /// each is placed page-aligned after the kernel and the one before it.
        #[arg(long = "module", value_name = "FILE[ ARGS]")]
        modules: Vec<String>,
        /// Print exit/trap/I/O statistics when the guest stops.
        #[arg(long)]
        stats: bool,
        /// Stop after N guest instructions (emulated engines).
        #[arg(long)]
        max_instructions: Option<u64>,
        /// Switch engines after N units (see --switch-unit), keeping the guest running.
        #[arg(long, requires = "switch_to")]
        switch_after: Option<u64>,
        #[arg(long, value_enum, requires = "switch_after")]
        switch_to: Option<EngineChoice>,
        #[arg(long, value_enum, default_value_t = SwitchUnit::Io)]
        switch_unit: SwitchUnit,
        /// How a Multiboot kernel starts: `direct` (in 32-bit protected mode, as QEMU -kernel)
        /// or `firmware` (at the reset vector F000:FFF0; vmscope's boot ROM enters protected mode).
        #[arg(long, value_enum, default_value_t = Boot::Direct)]
        boot: Boot,
        /// Paravirtualization: `on` shows the guest a hypervisor (CPUID 0x40000000: KVM's
        /// interface with kvmclock, 0x40000100: vmscope's hypercalls); `off` looks like hardware.
        #[arg(long, value_enum, default_value_t = OnOff::Off)]
        pv: OnOff,
        #[command(flatten)]
        format: FormatArg,
        #[command(flatten)]
        board: vmscope::attach::DeviceArgs,
        /// Serve the GDB remote protocol on ADDR (loopback only, e.g. 127.0.0.1:1234) and wait
        /// for gdb before the first instruction, as QEMU's `-s -S` (`target remote ADDR`).
        #[arg(long, value_name = "ADDR")]
        gdb: Option<String>,
        /// Save the whole machine (CPU, RAM, every device) to the `--save` file after N guest
        /// instructions, then go on; `vmscope restore FILE` continues from there, on any engine.
        #[arg(long, value_name = "N", requires = "save")]
        save_at: Option<u64>,
        /// The snapshot file: written at `--save-at N`, and when you press Ctrl-C (the guest
        /// stops at an instruction boundary, is saved, and vmscope exits with status 130).
        #[arg(long, value_name = "FILE")]
        save: Option<PathBuf>,
        /// Live-migrate the running guest to `vmscope migrate-listen ADDR` (127.0.0.1:PORT,
        /// [::1]:PORT or unix:PATH), or to `thread:ENGINE`, a destination in this process:
        /// pre-copy rounds while it runs, then a short stop-and-copy.
        #[arg(long, value_name = "ADDR", requires = "migrate_after")]
        migrate_to: Option<String>,
        /// When the migration starts: after N guest instructions, or after Nms of guest time
        /// (e.g. 300ms; on kvm this needs no single-stepping).
        #[arg(long, value_name = "N|Nms", requires = "migrate_to")]
        migrate_after: Option<vmscope::migrate::MigrateAfter>,
        /// The migration link's speed, in bytes per second of guest time (e.g. 64M): what
        /// decides whether pre-copy outruns the guest's writes.
        #[arg(long, value_name = "BYTES", default_value = "256M", value_parser = vmscope::sizes::parse_memory_size)]
        migrate_bandwidth: u64,
    },
    /// Wait for a guest live-migrated with `vmscope run … --migrate-to ADDR`, and run it here.
    MigrateListen {
        /// 127.0.0.1:PORT, [::1]:PORT or unix:PATH.
        addr: String,
        #[arg(long, value_enum, default_value_t = EngineChoice::Auto)]
        engine: EngineChoice,
        /// Print exit/trap/I/O statistics when the guest stops.
        #[arg(long)]
        stats: bool,
        /// Stop after N more guest instructions.
        #[arg(long)]
        max_instructions: Option<u64>,
    },
    /// Continue a machine saved with `vmscope run --save-at N --save FILE`, on any engine.
    Restore {
        /// The snapshot file.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = EngineChoice::Auto)]
        engine: EngineChoice,
        /// Print exit/trap/I/O statistics when the guest stops.
        #[arg(long)]
        stats: bool,
        /// Stop after N more guest instructions.
        #[arg(long)]
        max_instructions: Option<u64>,
        /// A new file to receive the snapshot's next saved disk (in the order they were
        /// attached); it is kept. Disks without one run from a temporary copy.
        #[arg(long, value_name = "NEW_FILE")]
        disk: Vec<PathBuf>,
    },
    /// Execute N instructions one at a time, printing each with the registers it changed.
    Step {
        image: Option<String>,
        #[arg(short = 'n', long, default_value_t = 20)]
        count: u64,
        #[arg(long, value_enum, default_value_t = EngineChoice::Interp)]
        engine: EngineChoice,
        #[arg(long, default_value = "64M", value_parser = vmscope::sizes::parse_memory_size)]
        memory: u64,
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        cmdline: String,
        /// Skip this many instructions (run them silently) before printing.
        #[arg(long, default_value_t = 0)]
        skip: u64,
        /// How a Multiboot kernel starts (see `vmscope run --help`).
        #[arg(long, value_enum, default_value_t = Boot::Direct)]
        boot: Boot,
        /// Paravirtualization on or off (see `vmscope run --help`).
        #[arg(long, value_enum, default_value_t = OnOff::Off)]
        pv: OnOff,
        #[command(flatten)]
        format: FormatArg,
    },
    /// List the built-in guests; `--export DIR` writes their images there (e.g. for QEMU's -kernel).
    Guests {
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
    },
    /// Show which KVM this host has (VT-x, AMD-V, PVM) and whether vmscope can use it.
    KvmInfo,
    /// Explain a page walk of a guest step by step, or list the interpreter's shadow page tables.
    Mmu {
        #[command(subcommand)]
        command: vmscope::mmu_cmd::MmuCommand,
    },
    /// Run the teaching kernel's workloads on every engine (interp, bt, kvm, qemu-tcg, qemu-kvm, bochs) and compare.
    Compare(vmscope::compare::cli::CompareArgs),
    /// Boot Linux (Debian's kernel and a busybox initramfs, fetched by scripts/linux-assets.sh)
    Linux(vmscope::linux::LinuxArgs),
    /// Run several guests on one virtual switch (VLANs, pcap captures, tap devices)
    Net(vmscope::net::NetArgs),
    /// Open the stepping debugger window on a guest (runs `vmscope-gui`: `cargo build -p gui`).
    Gui {
        /// Path to the image, or the name of a built-in guest; default: the demo.
        image: Option<String>,
        /// More options for vmscope-gui, e.g. --break long_mode (see `vmscope-gui --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check the interpreter against hardware-captured tests (see `vmscope conformance sst --help`).
    Conformance {
        #[command(subcommand)]
        suite: vmscope::cli_isa::ConformanceSuite,
    },
    /// List, per iced-x86 mnemonic and CPU mode, whether the interpreter implements it.
    Isa(vmscope::cli_isa::IsaArgs),
    /// Look inside the binary translator (`vmscope bt show IMAGE --after N`).
    Bt {
        #[command(subcommand)]
        command: vmscope::bt_cmd::BtCommand,
    },
    /// Differential fuzzing: random code per mode on every engine, differences shrunk and written.
    Fuzz(vmscope::fuzz::FuzzArgs),
}

/// `--pv on|off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// `--boot`: how a Multiboot kernel is started.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Boot {
    /// The host sets up 32-bit protected mode and jumps to the kernel.
    Direct,
    /// The CPU starts at F000:FFF0 in real mode; vmscope's firmware ROM does the handoff.
    Firmware,
}

impl From<Boot> for BootMethod {
    fn from(b: Boot) -> Self {
        match b {
            Boot::Direct => BootMethod::Direct,
            Boot::Firmware => BootMethod::Firmware,
        }
    }
}

fn parse_cache_size(s: &str) -> Result<u64, String> {
    let n = vmscope::sizes::parse_any_size(s)?;
    if !(64 << 10..=4 << 30).contains(&n) {
        return Err(format!(
            "{s}: the translation cache must be between 64K and 4G"
        ));
    }
    Ok(n)
}

/// What `run` and `restore` print after the guest: what ran, on which engines, how it ended,
/// and the counters with `--stats`; returns the exit status.
fn finish(outcome: vmscope::GuestOutcome, stats: bool) -> i32 {
    eprintln!("vmscope: {}", outcome.image);
    eprintln!("vmscope: engine: {}", outcome.engines.join(" → "));
    eprintln!("vmscope: {}", outcome.summary());
    if let Some(hint) = vmscope::runner::hint_for(&outcome) {
        eprintln!("vmscope: note: {hint}");
    }
    if stats {
        let m = &outcome.machine;
        eprint!("{}", m.stats.report(&m.bus.stats));
        for report in &outcome.reports {
            eprintln!("{report}");
        }
    }
    outcome.status
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("vmscope: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<i32> {
    let cli = Cli::parse();
    if let Some(bytes) = cli.bt_cache {
        vmscope::engines::set_bt_cache_bytes(bytes as usize);
    }
    vmscope::engines::set_kvm_strict(cli.kvm_strict);
    match cli.command {
        Command::Run {
            image,
            engine,
            memory,
            cmdline,
            modules,
            stats,
            max_instructions,
            switch_after,
            switch_to,
            switch_unit,
            boot,
            pv,
            format,
            board,
            gdb,
            save_at,
            save,
            migrate_to,
            migrate_after,
            migrate_bandwidth,
        } => {
            let migrate = match migrate_to.zip(migrate_after) {
                Some((to, after)) => Some(vmscope::migrate::MigratePlan {
                    to: vmscope::migrate::Endpoint::parse(&to)?,
                    after,
                    bandwidth: migrate_bandwidth,
                }),
                None => None,
            };
            let (name, bytes) = read_image(image.as_deref())?;
            let opts = RunOptions {
                engine,
                memory,
                cmdline,
                max_instructions,
                switch: switch_after.zip(switch_to).map(|(after, to)| SwitchPlan {
                    after,
                    unit: switch_unit,
                    to,
                }),
                boot: boot.into(),
                pv: pv == OnOff::On,
                flat: format.format == ImageFormat::Flat,
                virtio_rng: board.rng(),
                nic: board.nic(),
                test_devices: board.test_devices.clone(),
                disks: board.disk,
                virtio_console: board.virtio_console,
                show_devices: board.devices,
                save: save.map(|path| vmscope::runner::SavePlan { at: save_at, path }),
                migrate,
                modules: vmscope::image::read_modules(&modules)?,
            };
            if opts.save.is_some() {
                vmscope::ctrl_c::catch().context("catching Ctrl-C for --save")?;
            }
            let mut stdout = std::io::stdout();
            let mut notice = |s: String| eprintln!("{s}");
            let outcome = match gdb {
                None => vmscope::run_guest(&name, &bytes, &opts, &mut stdout, &mut notice)?,
                Some(addr) => {
                    let serial = Box::new(std::io::stdout());
                    match vmscope::gdb::run_with_gdb(
                        &addr,
                        &name,
                        &bytes,
                        &opts,
                        serial,
                        &mut notice,
                    )? {
                        vmscope::gdb::GdbEnd::Ended(outcome) => outcome,
                        vmscope::gdb::GdbEnd::Killed(outcome) => {
                            eprintln!("vmscope: {}", outcome.image);
                            eprintln!("vmscope: engine: {}", outcome.engines.join(" → "));
                            return Ok(outcome.status);
                        }
                    }
                }
            };
            stdout.flush()?;
            let status = finish(outcome, stats);
            // `--migrate-to thread:E`: the destination's half, after the source's report.
            if let Some(destination) = vmscope::migrate::thread_dest::wait() {
                stdout.write_all(&destination.serial)?;
                stdout.flush()?;
                for n in &destination.notices {
                    eprintln!("{n}");
                }
                return Ok(destination.status.unwrap_or(status));
            }
            Ok(status)
        }
        Command::MigrateListen {
            addr,
            engine,
            stats,
            max_instructions,
        } => {
            let at = vmscope::migrate::Endpoint::parse(&addr)?;
            let mut stdout = std::io::stdout();
            let mut notice = |s: String| eprintln!("{s}");
            let outcome = vmscope::migrate::dest::listen_and_run(
                &at,
                engine,
                max_instructions,
                &mut stdout,
                &mut notice,
            )?;
            stdout.flush()?;
            Ok(finish(outcome, stats))
        }
        Command::Restore {
            file,
            engine,
            stats,
            max_instructions,
            disk,
        } => {
            let mut stdout = std::io::stdout();
            let mut notice = |s: String| eprintln!("{s}");
            let outcome = vmscope::snapshot::restore_and_run(
                &file,
                engine,
                max_instructions,
                &disk,
                &mut stdout,
                &mut notice,
            )?;
            stdout.flush()?;
            Ok(finish(outcome, stats))
        }
        Command::Step {
            image,
            count,
            engine,
            memory,
            cmdline,
            skip,
            boot,
            pv,
            format,
        } => {
            let opts = RunOptions {
                engine,
                memory,
                cmdline,
                boot: boot.into(),
                pv: pv == OnOff::On,
                flat: format.format == ImageFormat::Flat,
                ..RunOptions::default()
            };
            step(image.as_deref(), count, skip, &opts)
        }
        Command::Guests { export } => {
            for g in guests::all() {
                println!("{:<16} {}", g.name, g.description);
            }
            if let Some(dir) = export {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                for g in guests::all() {
                    let path = dir.join(g.file_name);
                    std::fs::write(&path, g.image)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                eprintln!(
                    "vmscope: wrote {} images to {}",
                    guests::all().len(),
                    dir.display()
                );
            }
            Ok(0)
        }
        Command::Conformance { suite } => vmscope::cli_isa::conformance(suite),
        Command::Bt { command } => vmscope::bt_cmd::run(command),
        Command::Fuzz(args) => vmscope::fuzz::cli::fuzz(args),
        Command::Isa(args) => vmscope::cli_isa::isa(args),
        Command::Gui { image, args } => gui(image, &args),
        Command::Linux(args) => vmscope::linux::run(args),
        Command::Net(args) => vmscope::net::run(args),
        Command::Compare(args) => vmscope::compare::cli::compare(args),
        Command::Mmu { command } => mmu(command),
        Command::KvmInfo => {
            let flavour = accel_kvm::detect_flavour();
            println!("host KVM: {flavour}");
            match accel_kvm::kvm_available() {
                Ok(()) => println!("/dev/kvm: usable"),
                Err(e) => println!("/dev/kvm: not usable: {e}"),
            }
            Ok(0)
        }
    }
}

/// Starts the GUI, a separate binary so that the CLI builds without a GUI toolkit.
fn gui(image: Option<String>, args: &[String]) -> Result<i32> {
    let beside_us = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("vmscope-gui")))
        .filter(|p| p.exists());
    let exe = beside_us.unwrap_or_else(|| PathBuf::from("vmscope-gui"));
    match std::process::Command::new(&exe)
        .args(image)
        .args(args)
        .status()
    {
        Ok(status) => Ok(status.code().unwrap_or(2)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "vmscope-gui is not built: run `cargo build -p gui` (or `cargo run -p gui -- [IMAGE]`)"
        ),
        Err(e) => Err(e).with_context(|| format!("starting {}", exe.display())),
    }
}

/// `vmscope mmu walk` and `vmscope mmu shadow`.
fn mmu(command: vmscope::mmu_cmd::MmuCommand) -> Result<i32> {
    use vmscope::mmu_cmd::{shadow_report, walk_report, MmuCommand};
    let text = match command {
        MmuCommand::Walk {
            image,
            va,
            after,
            access,
            user,
            engine,
            cmdline,
            format,
        } => {
            let (name, bytes) = read_image(Some(&image))?;
            let format = format.format;
            walk_report(
                &name, &bytes, &cmdline, format, engine, after, va, access, user,
            )?
        }
        MmuCommand::Shadow {
            image,
            after,
            limit,
            cmdline,
            format,
        } => {
            let (name, bytes) = read_image(Some(&image))?;
            shadow_report(&name, &bytes, &cmdline, format.format, after, limit)?
        }
    };
    print!("{text}");
    Ok(0)
}

fn step(image: Option<&str>, count: u64, skip: u64, opts: &RunOptions) -> Result<i32> {
    let (name, bytes) = read_image(image)?;
    let mut machine = emulator::Machine::new(opts.memory)?;
    machine.pv = opts.pv;
    let engine = opts.engine;
    let loaded = vmscope::runner::load(&mut machine, &name, &bytes, opts)?;
    eprintln!("vmscope: {loaded}");
    let mut notice = |s: String| eprintln!("{s}");
    let mut engine = vmscope::make_engine(engine, &machine, &mut notice)?;
    // What the host may have to do with how the guest stopped (PVM and 32-bit paging).
    let hint = |engine: &dyn emulator::Engine, exit, cpu| {
        vmscope::runner::host_hint(&engine.describe(), exit, cpu)
            .map(|h| format!("\nvmscope: note: {h}"))
            .unwrap_or_default()
    };
    if skip > 0 {
        let exit = engine.run(&mut machine, emulator::RunLimit::instructions(skip))?;
        if exit != emulator::Exit::LimitReached {
            bail!(
                "the guest stopped during --skip: {}{}",
                vmscope::runner::exit_summary(&exit),
                hint(engine.as_ref(), &exit, &machine.cpu)
            );
        }
    }
    let mut stdout = std::io::stdout();
    for _ in 0..count {
        let before = machine.cpu.clone();
        let (addr, ibytes, text) = vmscope::step::disassemble_current(&mut machine);
        let exit = engine.step(&mut machine)?;
        let changes = vmscope::step::changed_registers(&before, &machine.cpu);
        writeln!(
            stdout,
            "{}",
            vmscope::step::format_step(&addr, &ibytes, &text, &changes)
        )?;
        let out = machine.bus.take_serial_output();
        if !out.is_empty() {
            writeln!(stdout, "  serial: {:?}", String::from_utf8_lossy(&out))?;
        }
        if exit != emulator::Exit::LimitReached {
            writeln!(
                stdout,
                "guest stopped: {}",
                vmscope::runner::exit_summary(&exit)
            )?;
            stdout.flush()?;
            let note = hint(engine.as_ref(), &exit, &machine.cpu);
            if !note.is_empty() {
                eprintln!("{}", note.trim_start());
            }
            return Ok(vmscope::runner::exit_status(&exit));
        }
    }
    Ok(0)
}

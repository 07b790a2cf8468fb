//! The engines `compare` can run the kernel on: our own (in this process), QEMU and Bochs
//! (child processes), one boot at a time, with the output, the exit and the counters each reports.
//! Teaches: an in-process engine can be asked for its counters; an outside one (QEMU) only
//! tells us what the guest printed — so the guest measures itself with its TSC.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Machine, RunLimit};

/// Guest RAM for every run (the kernel's frame pool ends at 32 MiB).
pub const MEMORY: u64 = 64 << 20;
/// The QEMU binary the qemu-* engines use.
pub const QEMU: &str = "qemu-system-x86_64";
/// A boot that takes longer than this is stopped and reported as an error.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// An engine as `--engines` names it. Adding one: a variant here (in table order), its name,
/// its [`Timing`], when it is available, how [`boot`] runs it, and a column of default
/// iterations in `suite::SUITE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EngineId {
    Interp,
    Bt,
    Kvm,
    QemuTcg,
    QemuKvm,
    Bochs,
}

/// How `compare` turns an engine's boots into time per operation (see `measure.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Two boots per workload, N operations and 0: the difference of wall times (or the
    /// guest TSC where it is host time) and of the counters. In-process engines and Bochs.
    TwoBoots,
    /// The whole suite in one boot, each workload timed by the guest TSC (host time): QEMU,
    /// whose start-up alone takes seconds under PVM.
    OneBoot,
}

impl EngineId {
    /// Every engine, in table order.
    pub const ALL: [EngineId; 6] = [
        EngineId::Interp,
        EngineId::Bt,
        EngineId::Kvm,
        EngineId::QemuTcg,
        EngineId::QemuKvm,
        EngineId::Bochs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EngineId::Interp => "interp",
            EngineId::Bt => "bt",
            EngineId::Kvm => "kvm",
            EngineId::QemuTcg => "qemu-tcg",
            EngineId::QemuKvm => "qemu-kvm",
            EngineId::Bochs => "bochs",
        }
    }

    /// The column of this engine in `suite::Workload::iterations`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Does the table show this engine's `compute` as guest instructions per second although
    /// it does not count instructions? Bochs: an emulator, compared with the interpreter by
    /// the interpreter's count per round (`suite::instructions_per_op`).
    pub fn speed_from_reference_count(self) -> bool {
        self == EngineId::Bochs
    }

    pub fn timing(self) -> Timing {
        match self {
            EngineId::QemuTcg | EngineId::QemuKvm => Timing::OneBoot,
            _ => Timing::TwoBoots,
        }
    }

    pub fn parse(s: &str) -> Option<EngineId> {
        EngineId::ALL.into_iter().find(|e| e.name() == s)
    }

    /// Does this engine run inside vmscope (and report `Stats`)?
    pub fn in_process(self) -> bool {
        matches!(self, EngineId::Interp | EngineId::Bt | EngineId::Kvm)
    }

    /// The column header: the KVM flavour is part of the name, because under PVM "kvm"
    /// means something else than on a VT-x host.
    pub fn label(self) -> String {
        match self {
            EngineId::Kvm | EngineId::QemuKvm => {
                format!("{} ({})", self.name(), accel_kvm::detect_flavour())
            }
            EngineId::Bochs => format!("bochs ({})", super::bochs::CPU_MODEL),
            _ => self.name().to_string(),
        }
    }

    /// `Err(why)` when this engine cannot run on this host.
    pub fn available(self) -> Result<(), String> {
        let kvm = || accel_kvm::kvm_available().map_err(|e| format!("KVM is not usable: {e}"));
        let qemu = || {
            qemu_version()
                .map(|_| ())
                .ok_or_else(|| format!("{QEMU} is not installed (scripts/setup.sh installs it)"))
        };
        match self {
            EngineId::Interp | EngineId::Bt => Ok(()),
            EngineId::Kvm => kvm(),
            EngineId::QemuTcg => qemu(),
            EngineId::QemuKvm => qemu().and_then(|_| kvm()),
            EngineId::Bochs => super::bochs::available(),
        }
    }
}

/// The first line of `qemu-system-x86_64 --version`, if QEMU runs at all.
pub fn qemu_version() -> Option<String> {
    let out = Command::new(QEMU).arg("--version").output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    })
}

/// What one boot of the kernel produced.
#[derive(Debug, Clone, Default)]
pub struct Boot {
    /// Everything the guest printed on the serial port.
    pub serial: String,
    /// Host time from the first guest instruction to the exit (in-process engines; for QEMU,
    /// the whole process).
    pub wall: Duration,
    /// Guest instructions, where the engine counts them.
    pub instructions: Option<u64>,
    /// Exits/traps to the VMM, where the engine reports them, without the UART's (the
    /// kernel's printing).
    pub exits: Option<u64>,
    /// External interrupts the CPU took, where the engine counts them.
    pub interrupts: Option<u64>,
    /// Port-I/O and MMIO exits without the UART's: what a device costs.
    pub io_exits: Option<u64>,
    /// The UART's accesses (each a port-I/O exit): the kernel's printing, which `exits` and
    /// `io_exits` leave out — and what `compare --io`'s console rows measure.
    pub uart_exits: Option<u64>,
    /// The rate of the guest TSC in Hz where it is host time (KVM without TSC scaling: the
    /// host's rate; scaled: 1 GHz); `None` where it is virtual (the interpreter).
    pub guest_tsc_hz: Option<f64>,
}

/// Boots `image` with `cmdline` on `engine` and checks it ended with isa-debug-exit 0x10.
pub fn boot(
    engine: EngineId,
    name: &str,
    image: &[u8],
    cmdline: &str,
    host_tsc_hz: f64,
    mode: super::Mode,
) -> Result<Boot> {
    if mode == super::Mode::Pv && !engine.in_process() {
        bail!(
            "{}: paravirtual mode exists on vmscope's own engines only",
            engine.name()
        );
    }
    let boot = match engine {
        EngineId::Interp | EngineId::Bt | EngineId::Kvm => boot_in_process(
            engine,
            name,
            image,
            cmdline,
            host_tsc_hz,
            mode == super::Mode::Pv,
            &Devices::default(),
        ),
        EngineId::QemuTcg | EngineId::QemuKvm => boot_qemu(engine, image, cmdline, host_tsc_hz),
        EngineId::Bochs => super::bochs::boot(name, image, cmdline),
    }
    .with_context(|| format!("{} running {name} with {cmdline:?}", engine.label()))?;
    Ok(boot)
}

/// Boots on one of vmscope's own engines with disk images and a virtio-console attached
/// (`compare --io`).
pub fn boot_with_devices(
    engine: EngineId,
    name: &str,
    image: &[u8],
    cmdline: &str,
    host_tsc_hz: f64,
    devices: &Devices,
) -> Result<Boot> {
    if !engine.in_process() {
        bail!(
            "{}: devices are attached on vmscope's own engines only",
            engine.name()
        );
    }
    boot_in_process(engine, name, image, cmdline, host_tsc_hz, false, devices)
        .with_context(|| format!("{} running {name} with {cmdline:?}", engine.label()))
}

/// What [`boot_with_devices`] attaches.
#[derive(Debug, Clone, Default)]
pub struct Devices {
    pub disks: Vec<crate::disk::DiskSpec>,
    pub virtio_console: Option<crate::disk::VirtioTransport>,
    pub virtio_rng: Option<crate::attach::RngSpec>,
}

fn boot_in_process(
    id: EngineId,
    name: &str,
    image: &[u8],
    cmdline: &str,
    host_tsc_hz: f64,
    pv: bool,
    devices: &Devices,
) -> Result<Boot> {
    let mut machine = Machine::new(MEMORY).context("creating the machine")?;
    machine.pv = pv;
    crate::attach::attach(
        &mut machine.bus,
        &devices.disks,
        devices.virtio_console,
        devices.virtio_rng,
        &[],
        None,
    )?;
    emulator::machine::loader::load_image(&mut machine, name, image, cmdline)?;
    let (mut engine, guest_tsc_hz) = in_process_engine(id, &machine, host_tsc_hz)?;
    // KVM in time slices, so a guest that never ends is caught by the timeout below.
    let limit = if engine.counts_instructions() {
        RunLimit::instructions(10_000_000)
    } else {
        RunLimit::time_ns(100_000_000)
    };
    let mut serial = Vec::new();
    let start = Instant::now();
    let exit = loop {
        let exit = engine.run(&mut machine, limit)?;
        serial.extend(machine.bus.take_serial_output());
        if exit != Exit::LimitReached {
            break exit;
        }
        if start.elapsed() > BOOT_TIMEOUT {
            bail!("still running after {BOOT_TIMEOUT:?}; stopped");
        }
    };
    let wall = start.elapsed();
    let uart = machine
        .bus
        .stats
        .by_device
        .get("uart")
        .copied()
        .unwrap_or(0);
    let serial = String::from_utf8_lossy(&serial).into_owned();
    check_exit(
        &crate::runner::exit_summary(&exit),
        exit == ok_exit(),
        &serial,
    )?;
    Ok(Boot {
        serial,
        wall,
        instructions: engine
            .counts_instructions()
            .then_some(machine.stats.instructions),
        // The kernel's own printing (the UART) is not what a workload measures.
        exits: Some(machine.stats.total_exits().saturating_sub(uart)),
        interrupts: Some(machine.stats.interrupts),
        io_exits: Some(
            ["io", "mmio"]
                .iter()
                .filter_map(|r| machine.stats.exits.get(r))
                .sum::<u64>()
                .saturating_sub(uart),
        ),
        uart_exits: Some(uart),
        guest_tsc_hz,
    })
}

/// An in-process engine for `machine`, and the rate its guest TSC ticks at where that is
/// host time (KVM), `None` where it is virtual.
pub(crate) fn in_process_engine(
    id: EngineId,
    machine: &Machine,
    host_tsc_hz: f64,
) -> Result<(Box<dyn Engine>, Option<f64>)> {
    Ok(match id {
        EngineId::Interp => (Box::new(Interpreter::new()), None),
        EngineId::Bt => (
            Box::new(BinaryTranslator::new(crate::engines::bt_cache_bytes())),
            None,
        ),
        _ => {
            let kvm = accel_kvm::KvmEngine::new(machine)?;
            // KVM scales the guest TSC to the machine's 1 GHz where it can; the engine says
            // so in its notes when it cannot, and then the TSC ticks at the host's rate.
            let unscaled = kvm.notes().iter().any(|n| n.contains("no TSC scaling"));
            let hz = if unscaled { host_tsc_hz } else { 1e9 };
            (Box::new(kvm), Some(hz))
        }
    })
}

pub(crate) fn ok_exit() -> Exit {
    let value = guests::exit::OK;
    Exit::DebugExit {
        value,
        status: guests::qemu_exit_status(value) as i32,
    }
}

/// A run that did not end with the kernel's "done" exit is an error showing its last lines.
pub(crate) fn check_exit(how: &str, ok: bool, serial: &str) -> Result<()> {
    if ok {
        return Ok(());
    }
    let tail: Vec<&str> = serial.lines().rev().take(4).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    bail!(
        "the kernel did not finish cleanly ({how}); its last output:\n  {}",
        tail.join("\n  ")
    )
}

/// QEMU with the same devices our PC has where the kernel looks: a UART on stdout, the
/// isa-debug-exit port, 64 MiB; `-nodefaults` keeps the PCI bus empty, so the null port and
/// page stay unassigned (reads 0).
fn boot_qemu(id: EngineId, image: &[u8], cmdline: &str, host_tsc_hz: f64) -> Result<Boot> {
    let path = temp_image(image)?;
    let accel = if id == EngineId::QemuKvm {
        "kvm"
    } else {
        "tcg"
    };
    let mut cmd = Command::new(QEMU);
    cmd.args([
        "-accel",
        accel,
        "-nodefaults",
        "-m",
        "64",
        "-display",
        "none",
    ])
    .args(["-no-reboot", "-serial", "stdio", "-monitor", "none"])
    .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
    .arg("-kernel")
    .arg(&path)
    .arg("-append")
    .arg(cmdline)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {QEMU}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > BOOT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&path);
            bail!("QEMU still running after {BOOT_TIMEOUT:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = start.elapsed();
    let _ = std::fs::remove_file(&path);
    let serial = String::from_utf8_lossy(&reader.join().unwrap_or_default()).replace("\r\n", "\n");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let expected = guests::qemu_exit_status(guests::exit::OK) as i32;
    let how = format!(
        "QEMU exit status {:?}; stderr: {}",
        status.code(),
        stderr.trim()
    );
    check_exit(&how, status.code() == Some(expected), &serial)?;
    Ok(Boot {
        serial,
        wall,
        instructions: None,
        exits: None,
        interrupts: None,
        io_exits: None,
        uart_exits: None,
        // QEMU's guest TSC is the host's: TCG reads the host counter, KVM does not scale it.
        guest_tsc_hz: Some(host_tsc_hz),
    })
}

/// Writes the image where QEMU can read it (QEMU's -kernel takes a path).
fn temp_image(image: &[u8]) -> Result<PathBuf> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("vmscope-compare-{}-{n}.elf", std::process::id()));
    std::fs::write(&path, image).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The host's TSC rate in Hz, measured against the monotonic clock over `window`.
pub fn host_tsc_hz(window: Duration) -> f64 {
    let (t0, c0) = (Instant::now(), read_tsc());
    while t0.elapsed() < window {
        std::hint::spin_loop();
    }
    let (t1, c1) = (Instant::now(), read_tsc());
    c1.wrapping_sub(c0) as f64 / (t1 - t0).as_secs_f64()
}

#[cfg(target_arch = "x86_64")]
fn read_tsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter; every x86-64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn read_tsc() -> u64 {
    0
}

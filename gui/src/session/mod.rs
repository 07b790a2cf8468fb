//! The debugger's model of one guest: machine, engines, breakpoints, history — no drawing at all.
//! Teaches: a debugger is a loop around `Engine::step` that decides, after every instruction, whether to stop.
//!
//! The GUI (and the web demo, and the tests) drive a [`Session`] through a handful of verbs —
//! step into/over/out, run, pause, run to an address, step back, switch engine — and read its
//! public fields to draw. Keeping this free of egui is what makes it testable headless.

mod breakpoints;
mod control;
mod engines;
mod events;
pub mod expr;
mod rewind;
mod snapshot_file;

pub use breakpoints::{BreakOn, Breakpoint, MemAccess, Watchpoint};
pub use control::{describe_exit, Goal, RunState, StopReason};
pub use engines::{kvm_status, EngineKind};
pub use events::{Event, EventKind, EventLog};
pub use rewind::{GuestInput, History};
pub use snapshot_file::{is_snapshot_file, SavedStart, MAX_RESTORED_MEMORY, SNAPSHOT_EXTENSION};

use std::borrow::Cow;
use std::collections::VecDeque;

use emulator::cpu::CpuState;
use emulator::interp::Interpreter;
use emulator::machine::loader::{load_image_with_boot, BootMethod};
use emulator::mmu::{Access, Explanation};
use emulator::{Exit, Machine};

use crate::symbols::Symbols;
use engines::Engines;

/// Default guest RAM: what the built-in guests' expected outputs assume.
pub const DEFAULT_MEMORY: u64 = 64 << 20;

/// How many recent guest-physical writes the memory view can highlight.
const RECENT_WRITES: usize = 4096;
/// The serial console keeps this many bytes of output.
const SERIAL_KEEP: usize = 256 << 10;

/// What to boot: an image's bytes with its name (the loader looks at `.rom`), command line, RAM,
/// and how a Multiboot kernel starts.
#[derive(Clone, Debug)]
pub struct GuestImage {
    pub name: String,
    pub bytes: Cow<'static, [u8]>,
    pub cmdline: String,
    pub memory: u64,
    /// `Direct` (32-bit protected mode at the kernel's entry, the loader's default) or
    /// `Firmware` (RESET at F000:FFF0, vmscope's boot ROM does the handoff; the window's default).
    pub boot: BootMethod,
    /// Disks on the machine, in the order they are placed (as `vmscope run --disk` places them).
    pub disks: Vec<GuestDisk>,
    /// A snapshot file's machine to start from instead of loading `bytes`
    /// ([`GuestImage::from_snapshot`]).
    pub restore: Option<std::rc::Rc<SavedStart>>,
}

/// A disk on the guest's machine: where the board puts it, and the journaled backend that every
/// machine booted for this guest shares — so a rewind rolls the one disk back (`rewind.rs`).
#[derive(Clone, Debug)]
pub struct GuestDisk {
    /// What the user named ("data.img,if=ide"), for messages and the status line.
    pub label: String,
    /// `None`: the IDE primary master; else virtio-blk behind this transport.
    pub transport: Option<devices::placement::Transport>,
    pub backend: devices::disk_journal::JournaledDisk,
}

impl GuestDisk {
    /// Opens and locks a disk image as `vmscope run --disk` does:
    /// `FILE[,ro][,if=ide|virtio-mmio|virtio-pci]`, virtio-pci by default.
    #[cfg(target_os = "linux")]
    pub fn open(spec: &str) -> Result<GuestDisk, String> {
        let parsed: host_backends::disk::DiskSpec = spec.parse()?;
        let file = host_backends::disk::FileDisk::open(&parsed.path, parsed.read_only)
            .map_err(|e| format!("{e:#}"))?;
        Ok(GuestDisk {
            label: spec.to_string(),
            transport: parsed.interface.virtio_transport(),
            backend: devices::disk_journal::JournaledDisk::new(Box::new(file)),
        })
    }
}

impl GuestImage {
    /// A built-in guest by name (`demo`, `hello64`, …), with its default command line.
    pub fn builtin(name: &str) -> Option<Self> {
        let g = guests::by_name(name)?;
        Some(GuestImage {
            name: g.file_name.to_string(),
            bytes: Cow::Borrowed(g.image),
            cmdline: guests::DEFAULT_CMDLINE.to_string(),
            memory: DEFAULT_MEMORY,
            boot: BootMethod::Direct,
            disks: Vec::new(),
            restore: None,
        })
    }

    /// The same image, started the given way.
    pub fn with_boot(mut self, boot: BootMethod) -> Self {
        self.boot = boot;
        self
    }

    /// Is this a Multiboot kernel (the only kind the boot method changes)?
    pub fn is_multiboot(&self) -> bool {
        emulator::machine::loader::detect(&self.name, &self.bytes)
            == emulator::machine::loader::ImageKind::Multiboot
    }

    /// An image the user supplied (a file's bytes).
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Self {
        GuestImage {
            name: name.into(),
            bytes: Cow::Owned(bytes),
            cmdline: String::new(),
            memory: DEFAULT_MEMORY,
            boot: BootMethod::Direct,
            disks: Vec::new(),
            restore: None,
        }
    }

    /// The same image with these disks (a new guest opened in the window keeps the disks).
    pub fn with_disks(mut self, disks: Vec<GuestDisk>) -> Self {
        self.disks = disks;
        self
    }

    /// A fresh machine with this image loaded: power-on, where a rewind starts when no machine
    /// snapshot is old enough (and the machine a snapshot is restored into).
    fn boot(&self) -> Result<(Machine, String), String> {
        if let Some(start) = &self.restore {
            return self.boot_restored(start);
        }
        let mut machine = Machine::new(self.memory)
            .map_err(|e| format!("cannot create a machine with {} bytes: {e}", self.memory))?;
        let mut placement = devices::placement::VirtioPlacement::default();
        for disk in &self.disks {
            let backend = Box::new(disk.backend.clone());
            match disk.transport {
                None => devices::placement::attach_ide(&mut machine.bus, backend),
                Some(t) => placement.place(
                    &mut machine.bus,
                    Box::new(devices::virtio::blk::VirtioBlk::new(backend)),
                    t,
                ),
            }
            .map_err(|e| format!("{}: {e}", disk.label))?;
        }
        let loaded = load_image_with_boot(
            &mut machine,
            &self.name,
            &self.bytes,
            &self.cmdline,
            self.boot,
            guests::FIRMWARE_ROM,
        )
        .map_err(|e| e.to_string())?;
        Ok((machine, loaded.to_string()))
    }
}

/// Reads an image file the user named (desktop only), at most
/// [`emulator::machine::loader::MAX_IMAGE_BYTES`]: a device such as /dev/zero is refused, not
/// read until memory runs out.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_image_file(path: &str) -> Result<Vec<u8>, String> {
    use emulator::machine::loader::MAX_IMAGE_BYTES;
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("reading {path}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_IMAGE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading {path}: {e}"))?;
    if bytes.len() as u64 > MAX_IMAGE_BYTES {
        return Err(format!(
            "{path}: larger than {} MiB, which is more than any image vmscope loads",
            MAX_IMAGE_BYTES >> 20
        ));
    }
    Ok(bytes)
}

/// Guest-physical bytes written recently, newest last, for the memory view's highlight.
#[derive(Debug, Default, Clone)]
pub struct RecentWrites {
    /// (guest-physical address, size, position of the instruction that wrote it)
    pub writes: VecDeque<(u64, u32, u64)>,
}

impl RecentWrites {
    fn push(&mut self, phys: u64, size: u32, position: u64) {
        if self.writes.len() == RECENT_WRITES {
            self.writes.pop_front();
        }
        self.writes.push_back((phys, size, position));
    }

    /// The position of the newest write covering `phys`, if it is among the recent ones.
    pub fn last_write(&self, phys: u64) -> Option<u64> {
        self.writes
            .iter()
            .rev()
            .find(|(a, s, _)| phys >= *a && phys < a + *s as u64)
            .map(|w| w.2)
    }

    pub fn clear(&mut self) {
        self.writes.clear();
    }
}

/// One guest under the debugger.
///
/// Field order matters for `Drop`: the engines (a KVM VM maps the machine's RAM) go first.
pub struct Session {
    engines: Engines,
    pub machine: Machine,
    pub image: GuestImage,
    /// What the loader said ("demo.elf: Multiboot ELF32, entry 0x100000 …").
    pub loaded: String,
    pub symbols: Symbols,
    pub breakpoints: Vec<Breakpoint>,
    pub watchpoints: Vec<Watchpoint>,
    pub break_on: BreakOn,
    pub run_state: RunState,
    pub last_stop: Option<StopReason>,
    /// The CPU as it was when the last action (step, run) began: the GUI highlights differences.
    pub prev_cpu: CpuState,
    pub recent_writes: RecentWrites,
    /// Everything the guest printed on its serial port.
    pub serial: String,
    pub events: EventLog,
    pub history: History,
    /// Set once the guest has ended (debug exit, shutdown, triple fault, reset request).
    pub finished: Option<Exit>,
    /// A message for the user that is not a stop (a replay warning, an engine note).
    pub notice: Option<String>,
    first_step_of_run: bool,
}

impl Session {
    /// Boots `image` on the interpreter.
    pub fn new(image: GuestImage) -> Result<Self, String> {
        let (machine, loaded) = image.boot()?;
        let symbols = Symbols::parse(&image.bytes);
        let mut history = History::default();
        if !image.disks.is_empty() {
            // Power-on is a fresh boot, but a fresh boot sees the disk as it is now: keep
            // the disks' power-on checkpoint (and the rest of the machine) to rewind to.
            history.keep_power_on(&machine);
        }
        let prev_cpu = machine.cpu.clone();
        let events = EventLog::new(&machine);
        let last_stop = image.restore.as_ref().map(|r| StopReason::Restored {
            at: r.snapshot.instructions(),
        });
        Ok(Session {
            engines: Engines::new(),
            machine,
            image,
            loaded,
            symbols,
            breakpoints: Vec::new(),
            watchpoints: Vec::new(),
            break_on: BreakOn::default(),
            run_state: RunState::Paused,
            last_stop,
            prev_cpu,
            recent_writes: RecentWrites::default(),
            serial: String::new(),
            events,
            history,
            finished: None,
            notice: None,
            first_step_of_run: false,
        })
    }

    /// A built-in guest by name.
    pub fn builtin(name: &str) -> Result<Self, String> {
        let image =
            GuestImage::builtin(name).ok_or_else(|| format!("no built-in guest {name:?}"))?;
        Session::new(image)
    }

    /// Instructions retired so far (counted by the interpreter; KVM runs are not counted).
    pub fn position(&self) -> u64 {
        self.machine.stats.instructions
    }

    pub fn is_running(&self) -> bool {
        matches!(self.run_state, RunState::Running(_))
    }

    /// The engine that runs the guest now.
    pub fn engine_kind(&self) -> EngineKind {
        self.engines.active
    }

    /// "interp (software, one instruction at a time)", "kvm (PVM, software)", …
    pub fn engine_description(&self) -> String {
        self.engines.describe()
    }

    /// Moves the guest to another engine (only while paused). The `CpuState` and RAM carry over.
    pub fn switch_engine(&mut self, kind: EngineKind) -> Result<(), String> {
        if self.is_running() {
            return Err("pause the guest before switching engines".into());
        }
        if kind == self.engines.active {
            return Ok(());
        }
        self.engines.switch(kind, &mut self.machine)?;
        self.machine.stats.engine_switches += 1;
        self.events.push_now(
            &self.machine,
            EventKind::EngineSwitch,
            1,
            format!("now on {}", self.engines.describe()),
        );
        Ok(())
    }

    /// Sends typed bytes to the guest's UART, remembering when, so a replay can do the same.
    pub fn send_serial_input(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let input = GuestInput::Serial(bytes.to_vec());
        input.apply(&mut self.machine);
        self.history.record_input(self.position(), input);
        self.events.push_now(
            &self.machine,
            EventKind::SerialInput,
            bytes.len() as u64,
            format!("typed {:?}", String::from_utf8_lossy(bytes)),
        );
    }

    /// Pulses the board's NMI line (the local APIC's LINT1), remembering when, so a replay can
    /// do the same. The guest sees an NMI if it programmed LINT1 for one (the teaching kernel
    /// does once a driver or the `nmi` workload enabled its APIC).
    pub fn send_nmi(&mut self) {
        GuestInput::Nmi.apply(&mut self.machine);
        self.history.record_input(self.position(), GuestInput::Nmi);
        self.events.push_now(
            &self.machine,
            EventKind::NmiButton,
            1,
            "NMI line pulsed (LINT1)".to_string(),
        );
    }

    /// Explains how `linear` translates now, step by step (with the active software engine's
    /// PAE PDPTE registers when it has them).
    pub fn explain(&mut self, linear: u64, access: Access) -> Explanation {
        self.engines
            .mmu()
            .explain(&mut self.machine, linear, access)
    }

    /// The interpreter (its shadow MMU and decode cache can be inspected).
    pub fn interpreter(&self) -> &Interpreter {
        &self.engines.interp
    }

    /// The software MMU of the engine that runs (the translator's on bt, else the interpreter's).
    pub fn mmu(&self) -> &emulator::mmu::Mmu {
        self.engines.mmu()
    }

    /// The binary translator while it is the active engine (blocks, cache, chain links).
    pub fn translator(&self) -> Option<&emulator::bt::BinaryTranslator> {
        self.engines.translator()
    }

    /// The active engine's own counters (`Engine::report`: the translator's cache on bt).
    pub fn engine_report(&self) -> Option<String> {
        self.engines.report()
    }

    /// Is there a breakpoint at this linear address? (enabled or not)
    pub fn breakpoint_at(&self, linear: u64) -> Option<&Breakpoint> {
        self.breakpoints.iter().find(|b| b.linear == linear)
    }

    /// Adds a breakpoint at `linear`, or removes the one that is there.
    pub fn toggle_breakpoint(&mut self, linear: u64) {
        if let Some(i) = self.breakpoints.iter().position(|b| b.linear == linear) {
            self.breakpoints.remove(i);
        } else {
            self.breakpoints.push(Breakpoint::new(linear));
        }
    }

    /// Appends whatever the UART produced since the last call to `serial`.
    fn drain_serial(&mut self) {
        let out = self.machine.bus.take_serial_output();
        if out.is_empty() {
            return;
        }
        self.serial.push_str(&String::from_utf8_lossy(&out));
        if self.serial.len() > SERIAL_KEEP {
            let mut cut = self.serial.len() - SERIAL_KEEP;
            while !self.serial.is_char_boundary(cut) {
                cut += 1;
            }
            self.serial.drain(..cut);
        }
    }

    /// Moves the interpreter's write log into `recent_writes`, tagged with the current position.
    fn collect_writes(&mut self) {
        let pos = self.position();
        let writes = self.engines.take_writes();
        let skip = writes.len().saturating_sub(RECENT_WRITES);
        for &(phys, size) in &writes[skip..] {
            self.recent_writes.push(phys, size, pos);
        }
    }
}

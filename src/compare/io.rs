//! `vmscope compare --io`: the same disk workload through a fully emulated disk (ATA PIO) and a
//! paravirtual one (virtio-blk over virtio-mmio and virtio-pci), and the same text through the
//! UART and a virtio-console, on every engine.
//! Teaches: the classic result — an emulated device costs a trap per register access, a
//! paravirtual one a few exits per batch of requests — measured, not asserted.
//!
//! Each cell boots the teaching kernel twice with a fresh image made by the host
//! (`suite::disk_image`): once with no requests and once with N, and divides the differences
//! by the megabytes moved. Time is the guest TSC where it is host time (KVM), else the
//! difference of the two wall times; exits are port-I/O and MMIO exits (the kernel's own
//! printing left out); interrupts are the disk's, as the kernel counted them. The kernel's
//! checksum must equal the host's for the image (`suite::expected_disk_checksum`).
//!
//! The console rows do the same with console-write: two boots (0 and N lines) through the
//! UART (`console=uart`) and through a virtio-console (`--virtio-console`, `console=virtio`);
//! exits are all port-I/O and MMIO exits, the UART's included — here they are the point. The
//! host checks the checksum and that every line arrived on its side intact and in order.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::engines::{self, Boot, EngineId};
use super::suite;
use crate::disk::{DiskInterface, DiskSpec, VirtioTransport};

pub const INTERFACES: [DiskInterface; 3] = [
    DiskInterface::Ide,
    DiskInterface::VirtioMmio,
    DiskInterface::VirtioPci,
];

/// Image size: big enough that reads of the default count do not wrap often.
const IMAGE_BYTES: u64 = 8 << 20;

/// One cell of the table.
#[derive(Debug, Clone, Serialize)]
pub struct IoCell {
    pub engine: String,
    pub interface: &'static str,
    pub workload: &'static str,
    pub request_bytes: u64,
    pub requests: u64,
    pub mb: f64,
    pub mb_per_s: f64,
    pub exits_per_mb: f64,
    pub interrupts_per_mb: f64,
    /// How the time was taken: `guest_tsc` or `wall_minus_baseline`.
    pub method: &'static str,
    pub checksum: String,
    /// What the guest checked of the data it read: `words` (every word) or `sectors`.
    pub verify: &'static str,
}

/// What to measure.
pub struct IoOptions {
    pub engines: Vec<EngineId>,
    pub request: u64,
    /// Requests per cell (default: 16 MiB worth of `request`).
    pub requests: Option<u64>,
    /// What the guest folds of the data it reads (see guests/kernel/disk.S).
    pub verify: suite::DiskVerify,
}

fn temp_image(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("vmscope-compare-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{tag}.img"));
    suite::write_disk_image(&path, IMAGE_BYTES)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The disk's interrupts as the kernel counted them ("…, K interrupts" on its summary line).
fn guest_interrupts(serial: &str) -> u64 {
    serial
        .lines()
        .filter(|l| l.starts_with("disk: ") && l.contains(" requests in "))
        .filter_map(|l| {
            let head = l.split(" interrupts").next()?;
            head.rsplit(' ').next()?.parse::<u64>().ok()
        })
        .sum()
}

fn boot(
    engine: EngineId,
    image: &Path,
    iface: DiskInterface,
    n: u64,
    request: u64,
    verify: suite::DiskVerify,
    hz: f64,
) -> Result<Boot> {
    let spec = DiskSpec {
        path: image.to_path_buf(),
        read_only: false,
        interface: iface,
    };
    let cmdline = format!(
        "workloads=disk-read:{n} request={request} disk={} {}",
        iface.name(),
        verify.word()
    );
    let devices = engines::Devices {
        disks: vec![spec],
        ..Default::default()
    };
    engines::boot_with_devices(
        engine,
        "kernel.elf",
        guests::KERNEL_ELF,
        &cmdline,
        hz,
        &devices,
    )
}

/// Measures every engine × interface.
pub fn run(opts: &IoOptions, progress: &mut dyn FnMut(String)) -> Result<Vec<IoCell>> {
    if opts.request == 0 || !opts.request.is_multiple_of(512) || opts.request > IMAGE_BYTES {
        bail!(
            "--request {} must be a multiple of 512 bytes, at most {IMAGE_BYTES}",
            opts.request
        );
    }
    let n = opts.requests.unwrap_or((16 << 20) / opts.request).max(1);
    let hz = engines::host_tsc_hz(std::time::Duration::from_millis(100));
    let mut cells = Vec::new();
    for &engine in &opts.engines {
        if !engine.in_process() {
            bail!("{}: compare --io runs on interp, bt and kvm", engine.name());
        }
        engine
            .available()
            .map_err(|why| anyhow::anyhow!("{}: {why}", engine.name()))?;
        for iface in INTERFACES {
            progress(format!(
                "compare --io: {} {} × {n} requests of {} bytes",
                engine.name(),
                iface.name(),
                opts.request
            ));
            let image = temp_image(&format!("{}-{}", engine.name(), iface.name()))?;
            let base = boot(engine, &image, iface, 0, opts.request, opts.verify, hz)?;
            let full = boot(engine, &image, iface, n, opts.request, opts.verify, hz)?;
            let line = super::measure::single_result(&full.serial, "disk-read", n, engine.name())?;
            let disk = suite::disk_image(IMAGE_BYTES);
            let want = suite::expected_disk_checksum_with(
                "disk-read",
                n,
                opts.request,
                &disk,
                opts.verify,
            );
            if want != Some(line.checksum) {
                bail!(
                    "{} {}: disk-read checksum {:#x}, the host expects {want:x?}",
                    engine.name(),
                    iface.name(),
                    line.checksum
                );
            }
            let _ = std::fs::remove_file(&image);
            let mb = (n * opts.request) as f64 / (1 << 20) as f64;
            let (secs, method) = match full.guest_tsc_hz {
                Some(hz) => (line.guest_tsc as f64 / hz, "guest_tsc"),
                None => (
                    full.wall.saturating_sub(base.wall).as_secs_f64(),
                    "wall_minus_baseline",
                ),
            };
            // A cell shorter than the noise of a boot has no rate worth printing.
            if secs < 0.002 || (full.guest_tsc_hz.is_none() && full.wall < base.wall * 11 / 10) {
                bail!(
                    "{} {}: {n} requests took no measurable time beyond the boot; give more --iterations",
                    engine.name(),
                    iface.name()
                );
            }
            let exits = full
                .io_exits
                .unwrap_or(0)
                .saturating_sub(base.io_exits.unwrap_or(0));
            let irqs =
                guest_interrupts(&full.serial).saturating_sub(guest_interrupts(&base.serial));
            cells.push(IoCell {
                engine: engine.name().to_string(),
                interface: iface.name(),
                workload: "disk-read",
                request_bytes: opts.request,
                requests: n,
                mb,
                mb_per_s: mb / secs.max(1e-9),
                exits_per_mb: exits as f64 / mb,
                interrupts_per_mb: irqs as f64 / mb,
                method,
                checksum: format!("{:#018x}", line.checksum),
                verify: match opts.verify {
                    suite::DiskVerify::Words => "words",
                    suite::DiskVerify::Sectors => "sectors",
                },
            });
        }
    }
    Ok(cells)
}

/// The table, with each engine's virtio-pci-against-ATA ratios under it.
pub fn table(cells: &[IoCell]) -> String {
    let mut out = String::new();
    if let Some(c) = cells.first() {
        let _ = writeln!(
            out,
            "disk-read: {} requests of {} bytes ({:.0} MiB) per cell; the guest checks {}",
            c.requests,
            c.request_bytes,
            c.mb,
            match c.verify {
                "words" => "every word it reads",
                _ => "the first word of every sector (--verify words: every word)",
            }
        );
    }
    let _ = writeln!(
        out,
        "{:<8} {:<12} {:>10} {:>12} {:>12}",
        "engine", "interface", "MB/s", "exits/MB", "irqs/MB"
    );
    for c in cells {
        let _ = writeln!(
            out,
            "{:<8} {:<12} {:>10.1} {:>12.1} {:>12.2}",
            c.engine, c.interface, c.mb_per_s, c.exits_per_mb, c.interrupts_per_mb
        );
    }
    let engines: Vec<&str> = cells.iter().map(|c| c.engine.as_str()).collect();
    let mut seen = Vec::new();
    for e in engines {
        if seen.contains(&e) {
            continue;
        }
        seen.push(e);
        let find = |i: &str| cells.iter().find(|c| c.engine == e && c.interface == i);
        if let (Some(ide), Some(pci), Some(mmio)) =
            (find("ide"), find("virtio-pci"), find("virtio-mmio"))
        {
            let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
            let _ = writeln!(
                out,
                "{e}: virtio-pci {:.0}× fewer exits per MB and {:.1}× the MB/s of ATA PIO (virtio-mmio {:.0}×, {:.1}×)",
                ratio(ide.exits_per_mb, pci.exits_per_mb),
                ratio(pci.mb_per_s, ide.mb_per_s),
                ratio(ide.exits_per_mb, mmio.exits_per_mb),
                ratio(mmio.mb_per_s, ide.mb_per_s),
            );
        }
    }
    out
}

/// A bar chart of MB/s per engine and interface (log scale), exits per MB written beside.
pub fn svg(cells: &[IoCell]) -> String {
    let (w, row, left) = (760.0, 26.0, 190.0);
    let h = 40.0 + row * cells.len() as f64;
    let max = cells
        .iter()
        .map(|c| c.mb_per_s)
        .fold(1.0, f64::max)
        .log10()
        .ceil()
        .max(1.0);
    let min = cells
        .iter()
        .map(|c| c.mb_per_s)
        .fold(f64::INFINITY, f64::min)
        .log10()
        .floor()
        .min(0.0);
    let scale = |v: f64| (v.max(1e-3).log10() - min) / (max - min) * (w - left - 150.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">disk-read MB/s (log scale) and exits per MB</text>\n"
    );
    for (i, c) in cells.iter().enumerate() {
        let y = 32.0 + row * i as f64;
        let colour = match c.interface {
            "ide" => "#c0504d",
            "virtio-mmio" => "#4f81bd",
            _ => "#9bbb59",
        };
        let bar = scale(c.mb_per_s);
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"{:.0}\">{} {}</text><rect x=\"{left}\" y=\"{y:.0}\" width=\"{bar:.1}\" height=\"{:.0}\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.0}\">{:.1} MB/s, {:.1} exits/MB</text>",
            y + 14.0,
            c.engine,
            c.interface,
            row - 6.0,
            left + bar + 6.0,
            y + 14.0,
            c.mb_per_s,
            c.exits_per_mb
        );
    }
    s.push_str("</svg>\n");
    s
}

// ---- console-write: the UART against the virtio-console --------------------------------

/// The consoles compared: the UART, and a virtio-console over virtio-pci.
pub const CONSOLES: [(&str, Option<VirtioTransport>); 2] = [
    ("uart", None),
    ("virtio-console", Some(VirtioTransport::Pci)),
];

/// Lines per console cell when `--iterations` does not say: ≈0.3 s of the UART each on this
/// machine (KVM is PVM here: every UART exit costs ≈20 µs, and the kernel's ring-0 loop runs
/// through the host's instruction emulator).
fn default_console_lines(engine: EngineId) -> u64 {
    match engine {
        EngineId::Kvm => 500,
        _ => 5_000,
    }
}

/// One console cell.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleCell {
    pub engine: String,
    pub console: &'static str,
    pub workload: &'static str,
    pub lines: u64,
    pub kb: f64,
    /// `None` when the N lines took no measurable time beyond the boot (too few lines).
    pub bytes_per_s: Option<f64>,
    pub exits_per_kb: f64,
    /// How the time was taken: `guest_tsc` or `wall_minus_baseline`.
    pub method: &'static str,
    pub checksum: String,
}

fn console_boot(
    engine: EngineId,
    virtio: Option<VirtioTransport>,
    n: u64,
    hz: f64,
) -> Result<Boot> {
    let cmdline = format!(
        "workloads={}:{n} console={}",
        suite::CONSOLE_WORKLOAD,
        if virtio.is_some() { "virtio" } else { "uart" }
    );
    let devices = engines::Devices {
        virtio_console: virtio,
        ..Default::default()
    };
    engines::boot_with_devices(
        engine,
        "kernel.elf",
        guests::KERNEL_ELF,
        &cmdline,
        hz,
        &devices,
    )
}

/// Every port-I/O and MMIO exit of a boot, the UART's included.
fn all_io_exits(b: &Boot) -> u64 {
    b.io_exits.unwrap_or(0) + b.uart_exits.unwrap_or(0)
}

/// Measures console-write through each console on every engine; `lines` per cell (default:
/// per engine).
pub fn run_console(
    engines: &[EngineId],
    lines: Option<u64>,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<ConsoleCell>> {
    let hz = engines::host_tsc_hz(std::time::Duration::from_millis(100));
    let mut cells = Vec::new();
    for &engine in engines {
        if !engine.in_process() {
            bail!("{}: compare --io runs on interp, bt and kvm", engine.name());
        }
        let n = lines.unwrap_or(default_console_lines(engine)).max(1);
        for (name, virtio) in CONSOLES {
            progress(format!(
                "compare --io: {} {name} × {n} lines of {} bytes",
                engine.name(),
                suite::CONSOLE_LINE_BYTES
            ));
            let base = console_boot(engine, virtio, 0, hz)?;
            let full = console_boot(engine, virtio, n, hz)?;
            let label = format!("{} {name}", engine.name());
            if virtio.is_some() && !full.serial.contains("the kernel prints there from now on") {
                bail!(
                    "{label}: the kernel did not take the virtio-console:\n{}",
                    full.serial
                );
            }
            let line =
                super::measure::single_result(&full.serial, suite::CONSOLE_WORKLOAD, n, &label)?;
            let want = suite::expected_console_checksum(n);
            if line.checksum != want {
                bail!(
                    "{label}: console-write checksum {:#x}, the host expects {want:#x}",
                    line.checksum
                );
            }
            suite::check_console_lines(&full.serial, n).map_err(|e| {
                anyhow::anyhow!("{label}: the text that arrived is not what the kernel wrote: {e}")
            })?;
            let kb = (n * suite::CONSOLE_LINE_BYTES) as f64 / 1024.0;
            let (secs, method) = match full.guest_tsc_hz {
                Some(hz) => (line.guest_tsc as f64 / hz, "guest_tsc"),
                None => (
                    full.wall.saturating_sub(base.wall).as_secs_f64(),
                    "wall_minus_baseline",
                ),
            };
            let measurable =
                secs >= 0.002 && (full.guest_tsc_hz.is_some() || full.wall >= base.wall * 11 / 10);
            let exits = all_io_exits(&full).saturating_sub(all_io_exits(&base));
            cells.push(ConsoleCell {
                engine: engine.name().to_string(),
                console: name,
                workload: suite::CONSOLE_WORKLOAD,
                lines: n,
                kb,
                bytes_per_s: measurable.then(|| kb * 1024.0 / secs),
                exits_per_kb: exits as f64 / kb,
                method,
                checksum: format!("{:#018x}", line.checksum),
            });
        }
    }
    Ok(cells)
}

/// The console table, with each engine's virtio-console-against-UART ratios under it.
pub fn console_table(cells: &[ConsoleCell]) -> String {
    let mut out = String::new();
    let mut counts: Vec<String> = Vec::new();
    for c in cells {
        let count = format!("{} {}", c.engine, c.lines);
        if !counts.contains(&count) {
            counts.push(count);
        }
    }
    if !cells.is_empty() {
        let _ = writeln!(
            out,
            "console-write: lines of {} bytes per cell ({}); the host checks every line that arrived",
            suite::CONSOLE_LINE_BYTES,
            counts.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "{:<8} {:<15} {:>13} {:>10}",
        "engine", "console", "bytes/s", "exits/KB"
    );
    for c in cells {
        let rate = c
            .bytes_per_s
            .map_or("(too short)".to_string(), |r| format!("{r:.0}"));
        let _ = writeln!(
            out,
            "{:<8} {:<15} {:>13} {:>10.1}",
            c.engine, c.console, rate, c.exits_per_kb
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    for c in cells {
        if seen.contains(&c.engine.as_str()) {
            continue;
        }
        seen.push(&c.engine);
        let find = |n: &str| {
            cells
                .iter()
                .find(|x| x.engine == c.engine && x.console == n)
        };
        if let (Some(uart), Some(pv)) = (find("uart"), find("virtio-console")) {
            let exits = if pv.exits_per_kb > 0.0 {
                format!("{:.0}×", uart.exits_per_kb / pv.exits_per_kb)
            } else {
                "∞×".to_string()
            };
            let speed = match (uart.bytes_per_s, pv.bytes_per_s) {
                (Some(u), Some(p)) if u > 0.0 => format!(" and {:.1}× the bytes/s", p / u),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "{}: virtio-console {exits} fewer exits per KB{speed} of the UART",
                c.engine
            );
        }
    }
    out
}

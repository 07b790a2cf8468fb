//! Bochs 2.7 as a `compare` engine: the same kernel, booted by a PC BIOS from a disk image.
//! Teaches: how a classic interpreting emulator is driven from outside — a configuration file,
//! a disk, the serial port routed to a file — and what it takes to get a kernel into it.
//!
//! Bochs has no Multiboot loader, so each boot writes a disk image (`crate::bootdisk`: the
//! boot loader `guests/asm/bootdisk.S` plus the kernel's segments and command line) and a
//! bochsrc into a fresh temporary directory, then runs `bochs` there:
//!
//! - CPU model `ryzen` ([`CPU_MODEL`]): the kernel checks CPUID 0x80000001 for long mode, NX
//!   and SYSCALL in 32-bit code, and Bochs's Intel models, like Intel CPUs, report SYSCALL
//!   there only once in 64-bit mode; AMD models report it always.
//! - `clock: sync=none`: virtual time advances with instructions and nothing waits for the
//!   host, so nothing throttles Bochs. `ips` ([`IPS`]) = 100 M sets how much guest time an
//!   instruction is: the kernel's 100 Hz PIT fires every 1 M instructions (10 M on vmscope's
//!   1 GHz interpreter). Not 1 G: the Bochs BIOS waits 3 s of guest time for F12 (its boot
//!   menu) on every boot, which costs ≈1 s of host time at 1 G and ≈0.3 s at 100 M.
//! - COM1 goes to a file (the kernel's output), the display is `term` (curses; it needs no
//!   X server), `port_e9_hack` copies port 0xE9 to Bochs's standard output.
//! - The end: Bochs has no isa-debug-exit device, so the kernel's EXIT continues (pc.inc's
//!   `BOCHS_EXIT`) by writing `0x80 | value` to port 0xE9 and "Shutdown" to port 0x8900, which
//!   stops Bochs. The exit value is the last byte ≥ 0x80 on standard output.
//! - Debian builds Bochs with its internal debugger, which waits for a command at the first
//!   instruction: standard input says `c` (continue). Builds without it ignore the line.
//!
//! Bochs's TSC counts virtual time, so `compare` times it like the interpreter: host wall time
//! of a boot with N operations minus one with 0.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::engines::{Boot, BOOT_TIMEOUT};

/// The Bochs binary (Debian's is a wrapper script around `bochs-bin -q`).
pub const BOCHS: &str = "bochs";
/// The BIOS and VGA BIOS images, where Debian's `bochsbios` and `vgabios` put them.
pub const BIOS: &str = "/usr/share/bochs/BIOS-bochs-latest";
pub const VGA_BIOS: &str = "/usr/share/vgabios/vgabios.bin";
/// The CPU Bochs models (see the module docs for why an AMD one).
pub const CPU_MODEL: &str = "ryzen";
/// Emulated instructions per emulated second (with `sync=none`, not a speed limit).
pub const IPS: u64 = 100_000_000;
/// Guest RAM in MiB, as for every other engine.
pub const MEGS: u64 = super::engines::MEMORY >> 20;

/// `Err(why)` when Bochs or its BIOS images are missing.
pub fn available() -> Result<(), String> {
    version().ok_or_else(|| format!("{BOCHS} is not installed (scripts/setup.sh installs it)"))?;
    for (file, package) in [(BIOS, "bochsbios"), (VGA_BIOS, "vgabios")] {
        if !Path::new(file).exists() {
            return Err(format!(
                "{file} is missing (Debian package {package}; scripts/setup.sh installs it)"
            ));
        }
    }
    Ok(())
}

/// "Bochs x86 Emulator 2.7", if `bochs --help` runs at all.
pub fn version() -> Option<String> {
    let out = Command::new(BOCHS)
        .args(["-q", "--help"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.contains("Bochs x86 Emulator"))?;
    Some(line.trim().to_string())
}

/// The bochsrc for one boot: everything in `dir`, the disk with `cylinders` cylinders.
pub fn config(dir: &Path, cylinders: u64) -> String {
    let d = dir.display();
    format!(
        "# vmscope compare: the teaching kernel on Bochs (src/compare/bochs.rs)\n\
         megs: {MEGS}\n\
         romimage: file={BIOS}\n\
         vgaromimage: file={VGA_BIOS}\n\
         display_library: term\n\
         cpu: model={CPU_MODEL}, count=1, ips={IPS}, reset_on_triple_fault=0\n\
         clock: sync=none, time0=946684800\n\
         ata0-master: type=disk, path=\"{d}/disk.img\", mode=flat, cylinders={cylinders}, \
         heads={}, spt={}\n\
         boot: disk\n\
         com1: enabled=1, mode=file, dev=\"{d}/com1.txt\"\n\
         port_e9_hack: enabled=1\n\
         speaker: enabled=0\n\
         log: {d}/bochs.log\n\
         panic: action=fatal\n\
         error: action=report\n\
         info: action=report\n\
         debug: action=ignore\n",
        crate::bootdisk::HEADS,
        crate::bootdisk::SECTORS_PER_TRACK,
    )
}

/// Boots `image` with `cmdline` on Bochs and checks the kernel exited with 0x10.
pub fn boot(name: &str, image: &[u8], cmdline: &str) -> Result<Boot> {
    let disk = crate::bootdisk::build(name, image, cmdline)?;
    let dir = TempDir::new()?;
    let path = dir.0.clone();
    std::fs::write(path.join("disk.img"), &disk.bytes)
        .with_context(|| format!("writing {}", path.join("disk.img").display()))?;
    let rc = path.join("bochsrc");
    std::fs::write(&rc, config(&path, disk.cylinders))
        .with_context(|| format!("writing {}", rc.display()))?;

    let start = Instant::now();
    let mut child = Command::new(BOCHS)
        .arg("-q")
        .arg("-f")
        .arg(&rc)
        .current_dir(&path)
        // The term display needs a terminal type, not a terminal: without TERM (CI) it fails.
        .env("TERM", "vt100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {BOCHS}"))?;
    // The internal debugger's first command; without a debugger nobody reads it.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"c\n");
    }
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            out
        })
    };
    let reader = read_all(Box::new(child.stdout.take().expect("piped")));
    let errors = read_all(Box::new(child.stderr.take().expect("piped")));
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if start.elapsed() > BOOT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("Bochs still running after {BOOT_TIMEOUT:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall = start.elapsed();
    let stdout = reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&errors.join().unwrap_or_default()).into_owned();
    let serial = std::fs::read(path.join("com1.txt")).unwrap_or_default();
    let serial = String::from_utf8_lossy(&serial).into_owned();
    let log = std::fs::read_to_string(path.join("bochs.log")).unwrap_or_default();
    match exit_value(&stdout) {
        Some(v) if v == guests::exit::OK => {}
        value => {
            let how = match value {
                Some(v) => format!("the guest's exit value was {v:#x}"),
                None => "Bochs stopped without the guest's exit value on port 0xE9".into(),
            };
            let tail: Vec<&str> = serial.lines().rev().take(4).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            let mut problems = log_problems(&log);
            if problems.is_empty() {
                // Bochs stopped before its log was open (a bad bochsrc, no display): it says
                // why on standard error.
                problems = last_lines(&stderr, 6);
            }
            bail!(
                "the kernel did not finish cleanly on Bochs ({how}); its last output:\n  {}\n\
                 Bochs's panics and errors:\n  {}",
                tail.join("\n  "),
                problems.join("\n  ")
            );
        }
    }
    Ok(Boot {
        serial,
        wall,
        instructions: None,
        exits: None,
        interrupts: None,
        io_exits: None,
        uart_exits: None,
        guest_tsc_hz: None,
    })
}

/// The value the guest wrote to port 0xE9 as `0x80 | value` (pc.inc's `BOCHS_EXIT`): the last
/// byte ≥ 0x80 on Bochs's standard output, which is otherwise ASCII.
pub fn exit_value(stdout: &[u8]) -> Option<u32> {
    stdout
        .iter()
        .rev()
        .find(|&&b| b >= 0x80)
        .map(|&b| u32::from(b & 0x7F))
}

/// The log lines that say what went wrong: panics (`p[`) and errors (`e[`), at most 8.
fn log_problems(log: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("p[") || l.contains("e["))
        .collect();
    if lines.len() > 8 {
        lines.drain(..lines.len() - 8);
    }
    lines
}

fn last_lines(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// A directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("vmscope-bochs-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_value_is_the_last_high_byte_among_bochs_text() {
        let out = b"Bochs x86 Emulator 2.7\nNext at t=0\n\x90(0).[306920271] out dx, al ; ee\n";
        assert_eq!(exit_value(out), Some(0x10));
        assert_eq!(exit_value(b"\x91 then \x90 later"), Some(0x10));
        assert_eq!(exit_value(b"only ASCII\n"), None);
    }

    #[test]
    fn the_config_does_not_throttle_and_names_every_file_in_its_directory() {
        let rc = config(Path::new("/tmp/x"), 3);
        assert!(rc.contains("clock: sync=none"), "{rc}");
        assert!(rc.contains("ips=100000000,"), "{rc}");
        assert!(rc.contains("model=ryzen"), "{rc}");
        assert!(rc.contains("path=\"/tmp/x/disk.img\""), "{rc}");
        assert!(rc.contains("cylinders=3, heads=16, spt=63"), "{rc}");
        assert!(rc.contains("dev=\"/tmp/x/com1.txt\""), "{rc}");
        assert!(rc.contains("megs: 64"), "{rc}");
    }
}

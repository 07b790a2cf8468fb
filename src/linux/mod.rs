//! `vmscope linux`: Debian's distribution kernel with a busybox initramfs, on any engine.
//! Teaches: booting an operating system nobody wrote for vmscope — the boot protocol
//! (`bzimage.rs`), the initial file system (`initramfs.rs`), and then everything the kernel
//! probes on its way to a shell, measured: time to the first message and to init.
//!
//! The default kernel and busybox come from Debian's archive, fetched by
//! `scripts/linux-assets.sh` (which setup runs) into a cache outside the repository; `--kernel`
//! and `--initrd` take your own.

pub mod bzimage;
pub mod initramfs;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use emulator::{Exit, Machine, RunLimit};

use crate::engines::{make_engine, EngineChoice};

/// The Debian kernel `scripts/linux-assets.sh` fetches (its release, as in /lib/modules).
pub const DEBIAN_KERNEL: &str = "6.1.0-57-cloud-amd64";
/// Modules the initramfs carries and init loads (all `=m` in Debian's cloud kernel): the virtio
/// transports and devices vmscope offers. Init loads them in the order their own `depends=`
/// lines require ([`load_order`]), whatever the order here.
pub const MODULES: &[&str] = &[
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
    "kernel/drivers/virtio/virtio_mmio.ko",
    "kernel/drivers/block/virtio_blk.ko",
    "kernel/drivers/char/virtio_console.ko",
    "kernel/net/core/failover.ko",
    "kernel/drivers/net/net_failover.ko",
    "kernel/drivers/net/virtio_net.ko",
];
/// What the kernel is told unless `--append` says otherwise.
pub const DEFAULT_APPEND: &str =
    "console=ttyS0 earlyprintk=serial,ttyS0,115200 nokaslr panic=-1 rdinit=/init";

/// `vmscope linux` options.
#[derive(Debug, Clone, clap::Args)]
pub struct LinuxArgs {
    /// A bzImage; default: Debian's cloud kernel from the asset cache.
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// An initrd/initramfs to pass instead of the one vmscope builds from busybox.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    #[arg(long, default_value = DEFAULT_APPEND, allow_hyphen_values = true)]
    pub append: String,
    /// A shell command init runs (then it powers off) instead of starting a shell.
    #[arg(long, value_name = "COMMAND")]
    pub cmd: Option<String>,
    #[arg(long, value_enum, default_value_t = EngineChoice::Bt)]
    pub engine: EngineChoice,
    /// Guest RAM in MiB (the kernel decompresses itself to 16 MiB and needs ~50 MiB there).
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub memory: u64,
    /// Stop after this much host time, in seconds (the guest may still be booting).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Print the counters after the run, and the times to the first message and to init.
    #[arg(long)]
    pub stats: bool,
    /// Also write the initramfs vmscope built to FILE (e.g. for QEMU's -initrd).
    #[arg(long, value_name = "FILE")]
    pub save_initramfs: Option<PathBuf>,
    /// Disks and virtio devices, as for `vmscope run` (the initramfs loads the virtio modules,
    /// so a `--disk d.img` is the kernel's /dev/vda).
    #[command(flatten)]
    pub board: crate::attach::DeviceArgs,
}

/// Where `scripts/linux-assets.sh` leaves the extracted Debian packages.
pub fn asset_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VMSCOPE_LINUX_ASSETS") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home)
        .join(".cache/vmscope/linux")
        .join(DEBIAN_KERNEL)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "reading {what} {} (scripts/linux-assets.sh fetches Debian's kernel and busybox)",
            path.display()
        )
    })
}

/// The modules a kernel module needs loaded first: its `.modinfo` section's `depends=` entry
/// (comma-separated names without `.ko`; the string is NUL-terminated in the file).
pub fn module_depends(module: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\0depends=";
    let Some(at) = module.windows(KEY.len()).position(|w| w == KEY) else {
        return Vec::new();
    };
    let rest = &module[at + KEY.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| d.to_string())
        .collect()
}

/// Orders `(file name, contents)` so each module comes after the carried modules it depends
/// on (a dependency not carried is assumed built in). A cycle is an error naming the modules.
pub fn load_order(mut pending: Vec<(String, Vec<u8>)>) -> Result<Vec<(String, Vec<u8>)>> {
    let stem = |n: &str| n.trim_end_matches(".ko").replace('-', "_");
    let carried: Vec<String> = pending.iter().map(|(n, _)| stem(n)).collect();
    let mut ordered: Vec<(String, Vec<u8>)> = Vec::new();
    while !pending.is_empty() {
        let loaded: Vec<String> = ordered.iter().map(|(n, _)| stem(n)).collect();
        let ready = pending.iter().position(|(_, bytes)| {
            module_depends(bytes).iter().all(|d| {
                loaded.contains(&d.replace('-', "_")) || !carried.contains(&d.replace('-', "_"))
            })
        });
        match ready {
            Some(i) => ordered.push(pending.remove(i)),
            None => {
                let names: Vec<&str> = pending.iter().map(|(n, _)| n.as_str()).collect();
                bail!(
                    "kernel modules depend on each other in a cycle: {}",
                    names.join(", ")
                );
            }
        }
    }
    Ok(ordered)
}

/// The initramfs: busybox, `/init`, `/dev/console`, and the modules present in `assets`.
pub fn build_initramfs(assets: &Path, cmd: Option<&str>) -> Result<Vec<u8>> {
    let busybox = read(&assets.join("bin/busybox"), "busybox")?;
    let module_root = assets.join("lib/modules").join(DEBIAN_KERNEL);
    let mut modules = Vec::new();
    for m in MODULES {
        // Some are built in on other kernels; carry what this one has as a file.
        if let Ok(bytes) = std::fs::read(module_root.join(m)) {
            let name = Path::new(m)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            modules.push((name, bytes));
        }
    }
    let modules = load_order(modules)?;
    let names: Vec<String> = modules.iter().map(|(n, _)| n.clone()).collect();
    let init = initramfs::init_script(cmd, &names);
    use initramfs::Entry;
    let mut entries = vec![
        Entry::Dir("bin"),
        Entry::Dir("dev"),
        Entry::CharDevice {
            path: "dev/console",
            major: 5,
            minor: 1,
        },
        Entry::Dir("proc"),
        Entry::Dir("sys"),
        Entry::Dir("lib"),
        Entry::Dir("lib/modules"),
        Entry::File {
            path: "bin/busybox",
            mode: 0o755,
            data: &busybox,
        },
        Entry::Symlink {
            path: "bin/sh",
            target: "busybox",
        },
        Entry::File {
            path: "init",
            mode: 0o755,
            data: init.as_bytes(),
        },
    ];
    let paths: Vec<String> = modules
        .iter()
        .map(|(n, _)| format!("lib/modules/{n}"))
        .collect();
    for ((_, bytes), path) in modules.iter().zip(&paths) {
        entries.push(Entry::File {
            path,
            mode: 0o644,
            data: bytes,
        });
    }
    Ok(initramfs::newc(&entries))
}

/// Standard input, read on a thread of its own and handed over in chunks as it arrives (the
/// machine runs meanwhile); the channel closes at end of input.
fn console_input() -> std::sync::mpsc::Receiver<Vec<u8>> {
    use std::io::Read;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 256];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Boots Linux as `args` say; returns the process exit status.
pub fn run(args: LinuxArgs) -> Result<i32> {
    let assets = asset_dir();
    let kernel_path = args
        .kernel
        .clone()
        .unwrap_or_else(|| assets.join("boot").join(format!("vmlinuz-{DEBIAN_KERNEL}")));
    let kernel = read(&kernel_path, "the kernel")?;
    let initrd = match &args.initrd {
        Some(p) => read(p, "the initrd")?,
        None => build_initramfs(&assets, args.cmd.as_deref())?,
    };
    if let Some(path) = &args.save_initramfs {
        std::fs::write(path, &initrd)
            .with_context(|| format!("writing the initramfs to {}", path.display()))?;
    }
    if args.memory < 128 {
        bail!(
            "--memory {}: Debian's kernel needs at least 128 MiB",
            args.memory
        );
    }
    let mut machine = Machine::new(args.memory << 20)
        .with_context(|| format!("creating a machine with {} MiB", args.memory))?;
    let attached = crate::attach::attach(
        &mut machine.bus,
        &args.board.disk,
        args.board.virtio_console,
        args.board.rng(),
        &args.board.test_devices,
        args.board.nic().as_ref(),
    )?;
    let mut cable = crate::net::cable::TapCable::for_nic(attached.nic.as_ref())?;
    if args.board.devices {
        eprintln!(
            "{}",
            crate::board_info::describe(&mut machine.bus, &attached)
        );
    }
    let name = kernel_path.display().to_string();
    let loaded = bzimage::load(&mut machine, &name, &kernel, &args.append, Some(&initrd))?;
    eprintln!(
        "vmscope: {name}: Linux bzImage, boot protocol {}.{:02}, {} bytes of kernel at {:#x}; \
         initrd {} bytes at {:#x}",
        loaded.protocol >> 8,
        loaded.protocol & 0xFF,
        loaded.kernel_bytes,
        bzimage::KERNEL,
        initrd.len(),
        loaded.initrd.map_or(0, |(at, _)| at)
    );
    let mut notice = |n: String| eprintln!("vmscope: {n}");
    let mut engine = make_engine(args.engine, &machine, &mut notice)?;
    eprintln!("vmscope: engine: {}", engine.describe());

    // Without --cmd init starts a shell: what the user types goes to the UART.
    let typed = if args.cmd.is_none() {
        Some(console_input())
    } else {
        None
    };
    let paced_slice = match (&cable, &typed) {
        (Some(_), _) => Some(crate::net::cable::PACED_SLICE_NS),
        (None, Some(_)) => Some(20_000_000),
        (None, None) => None,
    };
    let mut pacer = paced_slice.map(crate::net::cable::Pacer::new);
    let started = Instant::now();
    let deadline = args.timeout.map(|s| started + Duration::from_secs_f64(s));
    let (mut first_output, mut init_up) = (None, None);
    let mut seen = Vec::new();
    let stdout = std::io::stdout();
    let exit = loop {
        let limit = if let Some(slice) = paced_slice {
            // Interactive or networked: short slices of virtual time, paced to the wall clock
            // below, so a person or a peer on the tap sees the guest's time go at theirs.
            RunLimit {
                instructions: Some(2_000_000),
                ..RunLimit::time_ns(slice)
            }
        } else if engine.counts_instructions() {
            RunLimit::instructions(2_000_000)
        } else {
            RunLimit::time_ns(50_000_000)
        };
        if let Some(rx) = &typed {
            while let Ok(bytes) = rx.try_recv() {
                machine.bus.send_serial_input(&bytes);
            }
        }
        let exit = engine.run(&mut machine, limit)?;
        if let Some(cable) = cable.as_mut() {
            cable.pump(&mut machine);
        }
        let out = machine.bus.take_serial_output();
        if !out.is_empty() {
            first_output.get_or_insert(started.elapsed());
            let mut lock = stdout.lock();
            lock.write_all(&out)?;
            lock.flush()?;
            if init_up.is_none() {
                seen.extend_from_slice(&out);
                if String::from_utf8_lossy(&seen).contains(initramfs::INIT_MARKER) {
                    init_up = Some(started.elapsed());
                }
                let keep = seen.len().saturating_sub(256);
                seen.drain(..keep);
            }
        }
        if exit != Exit::LimitReached {
            break Some(exit);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break None;
        }
        if let Some(pacer) = pacer.as_mut() {
            // A person at the console or a peer on the tap: an idle guest's virtual time
            // would otherwise race ahead of the wall clock (the engines skip halted time),
            // and keep a core busy — and a reply from the tap would arrive "seconds" late.
            pacer.pace(machine.bus.now_ns());
        }
    };
    let elapsed = started.elapsed();
    if args.stats {
        eprint!("{}", machine.stats.report(&machine.bus.stats));
        let t = |d: Option<Duration>| {
            d.map_or("never".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
        };
        eprintln!(
            "time to the first console byte: {}; to init ({}): {}; whole run: {:.2} s",
            t(first_output),
            initramfs::INIT_MARKER,
            t(init_up),
            elapsed.as_secs_f64()
        );
    }
    Ok(match exit {
        None => {
            eprintln!(
                "vmscope: stopped after {:.1} s (--timeout) at rip {:#x} ({})",
                elapsed.as_secs_f64(),
                machine.cpu.rip,
                machine.cpu.mode()
            );
            4
        }
        Some(exit) => {
            eprintln!("vmscope: {}", crate::runner::exit_summary(&exit));
            crate::runner::exit_status(&exit)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(depends: &str) -> Vec<u8> {
        format!("\x7fELF...\0license=GPL\0depends={depends}\0retpoline=Y\0").into_bytes()
    }

    #[test]
    fn modules_load_after_what_their_modinfo_says_they_need() {
        assert_eq!(
            module_depends(&module("virtio,virtio_ring")),
            ["virtio", "virtio_ring"]
        );
        assert!(module_depends(&module("")).is_empty());
        let order = load_order(vec![
            ("virtio_blk.ko".into(), module("virtio,virtio_ring")),
            ("virtio.ko".into(), module("virtio_ring")),
            ("virtio_ring.ko".into(), module("")),
            // A dependency the initramfs does not carry is taken as built in.
            ("virtio_console.ko".into(), module("virtio,not_carried")),
        ])
        .unwrap();
        let names: Vec<&str> = order.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "virtio_ring.ko",
                "virtio.ko",
                "virtio_blk.ko",
                "virtio_console.ko"
            ]
        );
        let cycle = load_order(vec![
            ("a.ko".into(), module("b")),
            ("b.ko".into(), module("a")),
        ]);
        assert!(cycle.unwrap_err().to_string().contains("a.ko, b.ko"));
    }
}

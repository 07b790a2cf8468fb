//! Linux as a guest: Debian's kernel and the initramfs vmscope builds, on QEMU and on vmscope (issue 19).
//! Teaches: an operating system nobody wrote for vmscope is the test of the machine — and QEMU,
//! booting the same files, is the test of the files.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// The extracted Debian packages, or why the test cannot run.
fn assets() -> Result<std::path::PathBuf, String> {
    let dir = vmscope::linux::asset_dir();
    let kernel = dir
        .join("boot")
        .join(format!("vmlinuz-{}", vmscope::linux::DEBIAN_KERNEL));
    if kernel.exists() {
        Ok(dir)
    } else {
        Err(format!(
            "{} is missing (scripts/linux-assets.sh fetches Debian's kernel)",
            kernel.display()
        ))
    }
}

#[test]
fn qemu_boots_debians_kernel_with_vmscopes_initramfs_to_the_command() {
    let dir = match assets() {
        Ok(d) => d,
        Err(why) => return eprintln!("skipped: {why}"),
    };
    let Some(qemu) = qemu_path() else {
        return eprintln!("skipped: qemu-system-x86_64 is not installed");
    };
    let tmp = std::env::temp_dir().join(format!("vmscope-linux-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let initrd = tmp.join("initrd.cpio");
    std::fs::write(
        &initrd,
        vmscope::linux::build_initramfs(&dir, Some("echo answer=$((6*7)); uname -r")).unwrap(),
    )
    .unwrap();
    let kernel = dir
        .join("boot")
        .join(format!("vmlinuz-{}", vmscope::linux::DEBIAN_KERNEL));
    let mut child = Command::new(qemu)
        .args([
            "-accel", "tcg", "-m", "256", "-display", "none", "-monitor", "none",
        ])
        .args(["-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", vmscope::linux::DEFAULT_APPEND])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("QEMU did not power off within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        out.contains(vmscope::linux::initramfs::INIT_MARKER),
        "{out}"
    );
    assert!(
        out.contains("answer=42"),
        "busybox's shell ran the command: {out}"
    );
    assert!(
        out.contains(vmscope::linux::DEBIAN_KERNEL),
        "uname -r: {out}"
    );
    assert!(out.contains("Power down"), "init powered off: {out}");
}

/// The same kernel and initramfs on vmscope's translator: init runs the command, the CPU it
/// reports has the x87 and SSE units, and `poweroff -f` ends the machine through ACPI S5.
#[test]
fn vmscope_boots_debians_kernel_on_bt_to_the_command_and_powers_off() {
    if let Err(why) = assets() {
        return eprintln!("skipped: {why}");
    }
    let out = vmscope(&[
        "linux",
        "--engine",
        "bt",
        "--cmd",
        "echo answer=$((6*7)); grep -o 'fpu .*sse2' /proc/cpuinfo",
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(vmscope::linux::initramfs::INIT_MARKER),
        "{stdout}"
    );
    assert!(
        stdout.contains("answer=42"),
        "busybox's shell ran: {stdout}"
    );
    let flags = stdout
        .lines()
        .find(|l| l.starts_with("fpu "))
        .unwrap_or_else(|| panic!("no CPU flags line: {stdout}"));
    for feature in ["fpu", "mmx", "fxsr", "sse", "sse2"] {
        assert!(flags.split(' ').any(|f| f == feature), "{feature}: {flags}");
    }
    assert!(stdout.contains("reboot: Power down"), "{stdout}");
    assert!(stderr.contains("powered off (ACPI S5)"), "{stderr}");
}

/// A `--disk` is Linux's /dev/vda through virtio-pci (the initramfs loads the modules): the
/// kernel reads what the host wrote, and what it writes with fsync is in the file afterwards;
/// a `--virtio-console` is its /dev/hvc0, printing into the same console stream.
#[test]
fn linux_reads_and_writes_a_virtio_disk_and_prints_through_virtio_console() {
    if let Err(why) = assets() {
        return eprintln!("skipped: {why}");
    }
    let image = std::env::temp_dir().join(format!("vmscope-linux-disk-{}.img", std::process::id()));
    let mut bytes = vec![0u8; 16 << 20];
    bytes[..24].copy_from_slice(b"hello-from-the-host-disk");
    std::fs::write(&image, &bytes).unwrap();
    let cmd = "head -c 24 /dev/vda; echo; \
               echo written-by-linux | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null; \
               echo via-hvc0 > /dev/hvc0";
    let out = vmscope(&[
        "linux",
        "--engine",
        "bt",
        "--disk",
        image.to_str().unwrap(),
        "--virtio-console",
        "--cmd",
        cmd,
    ]);
    let after = std::fs::read(&image).unwrap();
    let _ = std::fs::remove_file(&image);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("[vda] 32768 512-byte logical blocks"),
        "{stdout}"
    );
    assert!(stdout.contains("hello-from-the-host-disk"), "{stdout}");
    assert_eq!(&after[512..529], b"written-by-linux\n");
    assert!(stdout.contains("via-hvc0"), "{stdout}");
}

/// The interpreter boots the same kernel to the same command, and — virtual time being
/// deterministic — prints the translator's console output byte for byte, timestamps included.
#[test]
fn interp_and_bt_print_the_same_boot_byte_for_byte() {
    if let Err(why) = assets() {
        return eprintln!("skipped: {why}");
    }
    let cmd = "uname -a; cat /proc/cpuinfo | head; poweroff -f";
    let run = |engine: &str| {
        let out = vmscope(&["linux", "--engine", engine, "--cmd", cmd]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{engine}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let (interp, bt) = (run("interp"), run("bt"));
    let text = String::from_utf8_lossy(&interp);
    assert!(
        text.contains(vmscope::linux::DEBIAN_KERNEL),
        "uname -a: {text}"
    );
    assert!(
        text.contains("vmscope virtual CPU"),
        "our CPU model: {text}"
    );
    assert!(
        interp == bt,
        "the engines' consoles differ:\n{text}\n---\n{}",
        String::from_utf8_lossy(&bt)
    );
}

/// Without `--cmd` init starts busybox's shell on the serial console, and what is typed on
/// vmscope's standard input reaches it: a command, then `poweroff -f`.
#[test]
fn the_shell_on_the_serial_console_runs_what_is_typed() {
    use std::io::{Read, Write};
    if let Err(why) = assets() {
        return eprintln!("skipped: {why}");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(["linux", "--engine", "bt", "--timeout", "120"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let wait_for = |text: &str, seen: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !seen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("no {text:?} on the console: {seen}"),
            }
        }
    };
    // Type only once the shell prompts (ash first asks the terminal where the cursor is, and
    // would take typed-ahead bytes for the answer).
    wait_for("/ # ", &mut seen);
    std::thread::sleep(Duration::from_millis(500));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"echo typed=$((3*5))\n").unwrap();
    wait_for("typed=15", &mut seen);
    stdin.write_all(b"poweroff -f\n").unwrap();
    wait_for("reboot: Power down", &mut seen);
    assert_eq!(child.wait().unwrap().code(), Some(0), "{seen}");
}

#[test]
fn a_file_that_is_not_a_bzimage_is_refused_with_its_name() {
    let tmp = std::env::temp_dir().join(format!("vmscope-notlinux-{}", std::process::id()));
    std::fs::write(&tmp, guests::by_name("hello32").unwrap().image).unwrap();
    let out = vmscope(&[
        "linux",
        "--kernel",
        tmp.to_str().unwrap(),
        "--initrd",
        tmp.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&tmp);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not a Linux bzImage") && err.contains("vmscope-notlinux"),
        "{err}"
    );
}

/// Linux's own virtio_net driver on vmscope's virtio-net, cabled to a tap in a throwaway
/// network namespace: the guest pings the host, then the host's ping and tcpdump reach the
/// guest.
#[test]
fn linux_pings_the_host_through_virtio_net_and_a_tap_and_the_host_pings_back() {
    if let Err(why) = assets() {
        return eprintln!("skipped: {why}");
    }
    let ns = match support::netns::Netns::new("linux") {
        Ok(ns) => ns,
        Err(why) => return eprintln!("skipped: {why}"),
    };
    let tap = "vmsltap0";
    let cmd = "ip link set eth0 up; ip addr add 10.78.0.2/24 dev eth0; \
               ping -c 2 10.78.0.1; echo guest-pinged; sleep 6";
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(["linux", "--engine", "bt", "--nic", "virtio", "--tap"])
        .arg(format!("{tap}@{}", ns.0))
        .args(["--cmd", cmd, "--timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting vmscope linux");
    ns.configure(tap, "10.78.0.1/24");
    // The guest's console, line by line, so the host pings while the guest still runs.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut console = String::new();
    let until = Instant::now() + Duration::from_secs(120);
    while !console.contains("guest-pinged") {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => console += &(line + "\n"),
            Err(_) => assert!(Instant::now() < until, "no guest-pinged:\n{console}"),
        }
    }
    let ping = ns
        .exec(&["ping", "-c", "2", "-W", "3", "10.78.0.2"])
        .output()
        .expect("running ping");
    let host_ping = String::from_utf8_lossy(&ping.stdout).into_owned();
    let out = child.wait_with_output().unwrap();
    console.extend(rx.try_iter().map(|l| l + "\n"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{console}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        console.contains("2 packets transmitted, 2 packets received, 0% packet loss"),
        "the guest's ping:\n{console}"
    );
    assert!(
        host_ping.contains("2 received"),
        "the host's ping:\n{host_ping}"
    );
}

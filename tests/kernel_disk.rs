//! The teaching kernel's disk workloads on interp, bt and kvm, through each interface (ATA PIO,
//! virtio-blk over virtio-mmio and over virtio-pci): disk-read's checksum is the host's for
//! the image it made, disk-write's is the host's for the pattern, and afterwards the image
//! file holds exactly what disk-write wrote — same size, nothing else changed. A read-only
//! disk makes disk-write fail cleanly; a missing disk is a clear error; `workloads=all` never
//! includes the disk workloads.
//! Teaches: a virtual disk is checked end to end — guest driver, device model, host file.

mod support;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use emulator::Stats;
use support::*;
use vmscope::compare::suite;
use vmscope::disk::{DiskInterface, DiskSpec};
use vmscope::{EngineChoice, RunOptions};

/// The kernel's exit values (`guests/kernel/layout.inc`, `guests::exit`).
const EXIT_BAD_CMDLINE: u32 = guests::exit::KERNEL_BAD_CMDLINE;
const EXIT_NO_DISK: u32 = guests::exit::KERNEL_NO_DISK;
const EXIT_DISK_ERROR: u32 = guests::exit::KERNEL_DISK_ERROR;

fn status_of(value: u32) -> i32 {
    guests::qemu_exit_status(value) as i32
}

/// A disk image in this process's temporary directory, holding the host's pattern.
struct Image {
    path: PathBuf,
    before: Vec<u8>,
}

impl Image {
    fn new(name: &str, bytes: u64) -> Image {
        let dir = std::env::temp_dir().join(format!("vmscope-kernel-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.img"));
        suite::write_disk_image(&path, bytes).unwrap();
        let before = std::fs::read(&path).unwrap();
        Image { path, before }
    }

    fn spec(&self, interface: DiskInterface, read_only: bool) -> DiskSpec {
        DiskSpec {
            path: self.path.clone(),
            read_only,
            interface,
        }
    }

    fn now(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

struct Run {
    status: i32,
    serial: String,
    stats: Stats,
}

/// A broken guest can wait forever, and nothing bounds a KVM run but time.
const DEADLINE: Duration = Duration::from_secs(60);

fn run_kernel(engine: EngineChoice, disks: Vec<DiskSpec>, cmdline: &str) -> Run {
    let opts = RunOptions {
        engine,
        cmdline: cmdline.to_string(),
        disks,
        ..RunOptions::default()
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (outcome, serial) = run_builtin("kernel", opts);
        let (status, stats) = (outcome.status, outcome.machine.stats.clone());
        drop(outcome); // closes (and unlocks) the images before the next run opens them
        let _ = tx.send((status, serial, stats));
    });
    let (status, serial, stats) = rx
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|e| panic!("{engine:?}, {cmdline:?}: no end after {DEADLINE:?} ({e})"));
    Run {
        status,
        serial,
        stats,
    }
}

fn interface(name: &str) -> DiskInterface {
    match name {
        "ide" => DiskInterface::Ide,
        "virtio-mmio" => DiskInterface::VirtioMmio,
        "virtio-pci" => DiskInterface::VirtioPci,
        _ => panic!("no interface {name}"),
    }
}

/// One disk, one engine: read the image, write the pattern, check the checksums and the file.
fn read_and_write(engine: EngineChoice, name: &str, n: u64, request: u64, extra: &str) {
    let tag = format!("{engine:?}-{name}-{request}-{n}").to_lowercase();
    let image = Image::new(&tag, 1 << 20);
    let cmdline =
        format!("workloads=disk-read,disk-write iterations={n} request={request} {extra}");
    let run = run_kernel(engine, vec![image.spec(interface(name), false)], &cmdline);
    let what = format!("{engine:?} {name} {cmdline:?}");
    assert_eq!(
        run.status,
        status_of(guests::exit::OK),
        "{what}:\n{}",
        run.serial
    );
    assert!(
        run.serial.contains(&format!("disk: {name} ")),
        "{what}: the driver says which disk it found:\n{}",
        run.serial
    );
    let results = suite::parse_results(&run.serial).unwrap();
    assert_eq!(results.len(), 2, "{what}:\n{}", run.serial);
    for r in &results {
        assert_eq!(r.ops, n, "{what}");
        assert_eq!(
            Some(r.checksum),
            suite::expected_disk_checksum(&r.workload, n, request, &image.before),
            "{what}: {}",
            r.workload
        );
    }
    let after = image.now();
    assert_eq!(
        after.len(),
        image.before.len(),
        "{what}: the image never grows"
    );
    let expected = suite::disk_after_write(&image.before, request, n);
    if after != expected {
        let first = after.iter().zip(&expected).position(|(a, b)| a != b);
        panic!("{what}: the image differs from what disk-write wrote, first at byte {first:?}");
    }
    let report = run
        .serial
        .lines()
        .find(|l| l.starts_with(&format!("disk: {name}: ")))
        .unwrap_or_else(|| panic!("{what}: no disk report:\n{}", run.serial));
    assert!(
        report.starts_with(&format!("disk: {name}: {} requests", 3 * n)),
        "{what}: {report}"
    );
    eprintln!(
        "{what}: {report}; {} exits",
        run.stats.exits.values().sum::<u64>()
    );
}

#[test]
fn ata_reads_and_writes_on_every_engine() {
    for engine in support::engines_with_kvm() {
        // 300 × 4 KiB wraps around the 1 MiB image; 16 sectors per interrupt, 28-bit commands.
        read_and_write(engine, "ide", 300, 4096, "");
        // One sector per interrupt, 48-bit commands, 64 KiB per command.
        read_and_write(engine, "ide", 20, 65536, "multiple=0 lba48=1");
        // 512 sectors per request: more than a 28-bit command can count, so EXT commands.
        read_and_write(engine, "ide", 3, 262144, "multiple=8");
    }
}

#[test]
fn virtio_mmio_reads_and_writes_on_every_engine() {
    for engine in support::engines_with_kvm() {
        read_and_write(engine, "virtio-mmio", 20, 65536, "depth=8");
        read_and_write(engine, "virtio-mmio", 300, 4096, "");
    }
}

#[test]
fn virtio_pci_reads_and_writes_on_every_engine() {
    for engine in support::engines_with_kvm() {
        read_and_write(engine, "virtio-pci", 300, 4096, "");
        read_and_write(engine, "virtio-pci", 200, 512, "depth=128");
        read_and_write(engine, "virtio-pci", 5, 65536 * 4, "depth=3");
    }
}

/// Batching: a virtio batch is one notification and one interrupt, whatever its size.
#[test]
fn a_virtio_batch_costs_one_notification_and_one_interrupt() {
    let image = Image::new("batching", 1 << 20);
    let run = run_kernel(
        EngineChoice::Interp,
        vec![image.spec(DiskInterface::VirtioPci, false)],
        "workloads=disk-read iterations=128 depth=32",
    );
    assert_eq!(run.status, status_of(guests::exit::OK), "{}", run.serial);
    assert!(
        run.serial.contains(
            "disk: virtio-pci: 128 requests in 4 batches, 0 flushes, 4 notifications, 4 interrupts"
        ),
        "{}",
        run.serial
    );
}

#[test]
fn a_read_only_disk_makes_disk_write_fail_cleanly() {
    for engine in support::engines_with_kvm() {
        for name in ["ide", "virtio-mmio", "virtio-pci"] {
            let image = Image::new(&format!("ro-{engine:?}-{name}"), 1 << 20);
            let run = run_kernel(
                engine,
                vec![image.spec(interface(name), true)],
                "workloads=disk-read,disk-write iterations=4",
            );
            let what = format!("{engine:?} {name}");
            assert_eq!(
                run.status,
                status_of(EXIT_DISK_ERROR),
                "{what}:\n{}",
                run.serial
            );
            let results = suite::parse_results(&run.serial).unwrap();
            assert_eq!(results.len(), 1, "{what}: disk-read works:\n{}", run.serial);
            assert_eq!(
                Some(results[0].checksum),
                suite::expected_disk_checksum("disk-read", 4, 4096, &image.before)
            );
            let failure = run
                .serial
                .lines()
                .find(|l| l.contains("failed"))
                .unwrap_or_else(|| panic!("{what}: no failure line:\n{}", run.serial));
            let reason = if name == "ide" {
                "error 0x4 (ABRT)"
            } else {
                "write of sector 0 failed: status 1 (IOERR)"
            };
            assert!(failure.contains(reason), "{what}: {failure}");
            assert_eq!(image.now(), image.before, "{what}: the image is unchanged");
        }
    }
}

#[test]
fn the_first_disk_found_is_virtio_pci_then_virtio_mmio_then_ide_unless_disk_says() {
    let images = [
        Image::new("pick-ide", 1 << 20),
        Image::new("pick-mmio", 1 << 20),
        Image::new("pick-pci", 1 << 20),
    ];
    let interfaces = [
        DiskInterface::Ide,
        DiskInterface::VirtioMmio,
        DiskInterface::VirtioPci,
    ];
    let all: Vec<DiskSpec> = images
        .iter()
        .zip(interfaces)
        .map(|(img, i)| img.spec(i, false))
        .collect();
    let cases = [
        ("", 2usize),
        ("disk=virtio-pci", 2),
        ("disk=virtio-mmio", 1),
        ("disk=ide", 0),
    ];
    for (choice, used) in cases {
        for img in &images {
            suite::write_disk_image(&img.path, 1 << 20).unwrap();
        }
        let run = run_kernel(
            EngineChoice::Interp,
            all.clone(),
            &format!("workloads=disk-write iterations=3 {choice}"),
        );
        assert_eq!(
            run.status,
            status_of(guests::exit::OK),
            "{choice}:\n{}",
            run.serial
        );
        let name = interfaces[used].name();
        assert!(
            run.serial.contains(&format!("disk: {name}: ")),
            "{choice}: {name} expected:\n{}",
            run.serial
        );
        for (i, img) in images.iter().enumerate() {
            let expected = if i == used {
                suite::disk_after_write(&img.before, 4096, 3)
            } else {
                img.before.clone()
            };
            assert!(img.now() == expected, "{choice}: image {i}");
        }
    }
    // Alone, each is found without disk=.
    for (img, i) in images.iter().zip(interfaces) {
        let run = run_kernel(
            EngineChoice::Interp,
            vec![img.spec(i, true)],
            "workloads=disk-read iterations=1",
        );
        assert_eq!(run.status, status_of(guests::exit::OK), "{}", run.serial);
        assert!(
            run.serial.contains(&format!("disk: {}: ", i.name())),
            "{}",
            run.serial
        );
    }
}

#[test]
fn without_a_disk_the_disk_workloads_say_so_and_all_leaves_them_out() {
    let run = run_kernel(EngineChoice::Interp, vec![], "workloads=disk-read");
    assert_eq!(run.status, status_of(EXIT_NO_DISK), "{}", run.serial);
    assert!(run.serial.contains("disk: no disk found"), "{}", run.serial);

    let image = Image::new("only-mmio", 1 << 20);
    let spec = image.spec(DiskInterface::VirtioMmio, true);
    let run = run_kernel(
        EngineChoice::Interp,
        vec![spec.clone()],
        "workloads=disk-read disk=ide",
    );
    assert_eq!(run.status, status_of(EXIT_NO_DISK), "{}", run.serial);
    assert!(
        run.serial.contains("disk: no disk found on ide"),
        "{}",
        run.serial
    );

    let run = run_kernel(
        EngineChoice::Interp,
        vec![spec.clone()],
        "workloads=disk-read request=1000",
    );
    assert_eq!(run.status, status_of(EXIT_BAD_CMDLINE), "{}", run.serial);
    assert!(
        run.serial.contains("request= must be a multiple of 512"),
        "{}",
        run.serial
    );

    // With a disk attached, `all` is still the suite, and the usage text names the disk workloads.
    let run = run_kernel(
        EngineChoice::Interp,
        vec![spec.clone()],
        "workloads=all iterations=2",
    );
    assert_eq!(run.status, status_of(guests::exit::OK), "{}", run.serial);
    let results = suite::parse_results(&run.serial).unwrap();
    let names: Vec<&str> = results.iter().map(|r| r.workload.as_str()).collect();
    let suite_names: Vec<&str> = suite::SUITE.iter().map(|w| w.name).collect();
    assert_eq!(names, suite_names);
    assert!(!run.serial.contains("disk:"), "{}", run.serial);

    let run = run_kernel(EngineChoice::Interp, vec![spec], "");
    assert_eq!(run.status, status_of(guests::exit::OK), "{}", run.serial);
    assert!(
        run.serial
            .contains("disk workloads (a disk is attached): disk-read disk-write"),
        "{}",
        run.serial
    );
    assert_eq!(image.now(), image.before);
}

#[test]
fn verify_sectors_folds_the_first_word_of_each_sector_and_still_catches_a_wrong_sector() {
    for engine in [EngineChoice::Interp, EngineChoice::Bt] {
        let image = Image::new(
            &format!("verify-sectors-{engine:?}").to_lowercase(),
            1 << 20,
        );
        let cmdline = "workloads=disk-read iterations=5 request=4096 verify=sectors";
        let run = run_kernel(
            engine,
            vec![image.spec(DiskInterface::VirtioPci, false)],
            cmdline,
        );
        assert_eq!(run.status, status_of(guests::exit::OK), "{}", run.serial);
        let results = suite::parse_results(&run.serial).unwrap();
        let sampled = suite::expected_disk_checksum_with(
            "disk-read",
            5,
            4096,
            &image.before,
            suite::DiskVerify::Sectors,
        );
        assert_eq!(Some(results[0].checksum), sampled, "{engine:?}");
        // Not the every-word checksum: the guest really folded less.
        assert_ne!(
            Some(results[0].checksum),
            suite::expected_disk_checksum("disk-read", 5, 4096, &image.before)
        );
        // A disk whose sectors came back in another order gives another sampled checksum.
        let mut swapped = image.before.clone();
        let (a, b) = swapped.split_at_mut(512);
        a.swap_with_slice(&mut b[..512]);
        assert_ne!(
            sampled,
            suite::expected_disk_checksum_with(
                "disk-read",
                5,
                4096,
                &swapped,
                suite::DiskVerify::Sectors
            )
        );
    }
    let run = run_kernel(EngineChoice::Interp, vec![], "verify=bytes");
    assert!(
        run.serial.contains("verify= must be words or sectors"),
        "{}",
        run.serial
    );
}

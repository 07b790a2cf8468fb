//! virtio-rng end to end: `--virtio-rng[=TRANSPORT]` and `--virtio-rng-seed` on the board and
//! in `--devices`, the teaching kernel's rng-read on interp, bt and kvm over virtio-pci and
//! virtio-mmio with the checksum the host computes from the seed, across an engine switch,
//! and the kernel without one.
//! Teaches: an emulator's entropy is a seeded generator, so a run's "random" bytes are known.

mod support;

use support::*;
use vmscope::compare::suite;

const OK: i32 = 33; // isa-debug-exit 0x10
const N: u64 = 16;

fn engine_name(e: vmscope::EngineChoice) -> &'static str {
    match e {
        vmscope::EngineChoice::Interp => "interp",
        vmscope::EngineChoice::Bt => "bt",
        vmscope::EngineChoice::Kvm => "kvm",
        other => panic!("no CLI name for {other:?} here"),
    }
}

/// Runs the kernel with `args` added and `workloads=rng-read:N`; (status, serial, stderr).
fn kernel(engine: &str, args: &[&str], n: u64) -> (i32, String, String) {
    let cmdline = format!("workloads={}:{n}", suite::RNG_WORKLOAD);
    let mut all = vec!["run", "kernel", "--engine", engine, "--cmdline", &cmdline];
    all.extend_from_slice(args);
    let out = vmscope(&all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The one rng-read RESULT's checksum.
fn checksum(serial: &str) -> u64 {
    let results = suite::parse_results(serial).unwrap();
    assert_eq!(results.len(), 1, "{serial}");
    assert_eq!(results[0].workload, suite::RNG_WORKLOAD);
    assert_eq!(results[0].ops, N);
    results[0].checksum
}

#[test]
fn rng_read_gets_the_seeds_bytes_on_every_engine_and_transport() {
    for engine in engines_with_kvm() {
        let engine = engine_name(engine);
        for (transport, found) in [
            ("virtio-pci", "rng: virtio-rng, virtio-pci at 00:02.0"),
            (
                "virtio-mmio",
                "rng: virtio-rng, virtio-mmio at 0xd0000000 gsi 20",
            ),
        ] {
            let what = format!("{engine} {transport}");
            let rng = format!("--virtio-rng={transport}");
            let (status, serial, err) = kernel(engine, &[&rng, "--virtio-rng-seed", "7"], N);
            assert_eq!(status, OK, "{what}:\n{serial}{err}");
            assert!(serial.contains(found), "{what}:\n{serial}");
            assert_eq!(
                checksum(&serial),
                suite::expected_rng_checksum(7, N),
                "{what}:\n{serial}"
            );
        }
    }
}

#[test]
fn the_stream_goes_on_across_an_engine_switch() {
    // The device and its generator live on the bus, not in an engine: switching in the middle
    // of rng-read (≈7,500 instructions of boot, then ≈72 per request) changes nothing.
    let n = 300;
    let want = suite::expected_rng_checksum(3, n);
    for to in engines_with_kvm().into_iter().skip(1) {
        let to = engine_name(to);
        let (status, serial, err) = kernel(
            "interp",
            &[
                "--virtio-rng=virtio-mmio",
                "--virtio-rng-seed",
                "3",
                "--switch-after",
                "15000",
                "--switch-unit",
                "instructions",
                "--switch-to",
                to,
            ],
            n,
        );
        assert_eq!(status, OK, "{to}:\n{serial}{err}");
        assert!(err.contains(" → "), "{to}: the switch happened:\n{err}");
        let results = suite::parse_results(&serial).unwrap();
        assert_eq!(results.len(), 1, "{serial}");
        assert_eq!(results[0].checksum, want, "{to}:\n{serial}");
    }
}

#[test]
fn the_seed_decides_the_bytes() {
    // The default seed, 0; the same seed again; another one (also given in hex).
    let (status, serial, err) = kernel("interp", &["--virtio-rng"], N);
    assert_eq!(status, OK, "{serial}{err}");
    let default = checksum(&serial);
    assert_eq!(default, suite::expected_rng_checksum(0, N));
    assert_eq!(
        default,
        suite::expected_rng_checksum(vmscope::attach::DEFAULT_RNG_SEED, N)
    );
    let (_, serial, _) = kernel("bt", &["--virtio-rng", "--virtio-rng-seed", "0"], N);
    assert_eq!(checksum(&serial), default, "the same seed, the same bytes");
    let (status, serial, err) = kernel("interp", &["--virtio-rng", "--virtio-rng-seed=0x2a"], N);
    assert_eq!(status, OK, "{serial}{err}");
    let other = checksum(&serial);
    assert_ne!(other, default, "another seed, other bytes");
    assert_eq!(other, suite::expected_rng_checksum(42, N));
    // A seed without the device is a usage error, as is a seed that is no number.
    for bad in [
        vec!["run", "kernel", "--virtio-rng-seed", "1"],
        vec!["run", "kernel", "--virtio-rng", "--virtio-rng-seed", "ten"],
        vec!["run", "kernel", "--virtio-rng=serial"],
    ] {
        let out = vmscope(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn without_a_virtio_rng_the_kernel_says_so_and_exits() {
    let (status, serial, err) = kernel("interp", &[], N);
    assert_eq!(
        status,
        guests::qemu_exit_status(guests::exit::KERNEL_NO_RNG) as i32,
        "{serial}{err}"
    );
    assert!(
        serial.contains("rng: rng-read needs a virtio-rng and there is none"),
        "{serial}"
    );
    assert!(!serial.contains("RESULT"), "{serial}");
    // A disk is no rng: the kernel finds the device by its type, not by "some virtio device".
    let dir = std::env::temp_dir().join(format!("vmscope-rng-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join("d.img");
    std::fs::write(&disk, vec![0u8; 4096]).unwrap();
    let disk = disk.display().to_string();
    let (status, _, _) = kernel("interp", &["--disk", &disk, "--virtio-console"], 1);
    assert_eq!(
        status,
        guests::qemu_exit_status(guests::exit::KERNEL_NO_RNG) as i32
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn devices_lists_the_rng_after_the_console() {
    let out = vmscope(&[
        "run",
        "hello64",
        "--engine",
        "interp",
        "--devices",
        "--virtio-console",
        "--virtio-rng",
        "--virtio-rng-seed",
        "5",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(OK), "{stderr}");
    // (The class code is the device model's choice, not this test's.)
    for want in [
        "00:03.0 1af4:1044 class ",
        " virtio-rng INTA gsi 19 bar0 mem 0xe0004000+0x4000",
        "entropy:\n  virtio-rng: virtio-pci 00:03.0 bar0 0xe0004000 gsi 19; bytes from SplitMix64, seed 5",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in:\n{stderr}");
    }
    let out = vmscope(&[
        "run",
        "hello64",
        "--engine",
        "interp",
        "--devices",
        "--virtio-console=virtio-mmio",
        "--virtio-rng=virtio-mmio",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in [
        "mmio 0xd0001000-0xd00011ff  virtio-rng",
        "virtio-rng: virtio-mmio 0xd0001000 gsi 21",
        "seed 0",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in:\n{stderr}");
    }
    let help = String::from_utf8_lossy(&vmscope(&["run", "--help"]).stdout).into_owned();
    assert!(
        help.contains("--virtio-rng[=<TRANSPORT>]") && help.contains("--virtio-rng-seed <N>"),
        "{help}"
    );
}

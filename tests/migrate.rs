//! Live migration end to end: a guest that dirties memory at a known rate moves between
//! engines while it runs — interp → kvm, kvm → bt, bt → interp — and continues without a gap
//! or a repeat; a dropped connection leaves it running at the source; garbage is refused.
//! Teaches: pre-copy is correct when the destination ends with exactly the source's machine.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use vmscope::migrate::{Endpoint, MigrateAfter, MigratePlan};
use vmscope::{EngineChoice, RunOptions};

const TICKS: u64 = 100;

fn socket(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("vmscope-mig-{}-{name}.sock", std::process::id()))
}

fn kernel_opts(engine: EngineChoice, ticks: u64) -> RunOptions {
    RunOptions {
        engine,
        cmdline: format!("workloads=dirty:{ticks}"),
        ..RunOptions::default()
    }
}

/// `vmscope migrate-listen unix:PATH --engine E`, started and listening.
fn listen(path: &Path, engine: &str) -> Child {
    let _ = std::fs::remove_file(path);
    let child = Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(["migrate-listen", &format!("unix:{}", path.display())])
        .args(["--engine", engine])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting migrate-listen");
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "migrate-listen never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The tick numbers the guest printed, in order.
fn ticks(serial: &str) -> Vec<u64> {
    serial
        .lines()
        .filter_map(|l| l.strip_prefix("dirty: tick "))
        .map(|n| n.parse().expect("a tick number"))
        .collect()
}

fn result_checksum(serial: &str) -> Option<u64> {
    let line = serial
        .lines()
        .find(|l| l.starts_with("RESULT workload=dirty"))?;
    let hex = line.split("checksum=0x").nth(1)?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Migrates a `dirty:TICKS` guest from `src` to `dst` through the CLI after `after`; checks
/// the halves join up and the destination's memory is the guest's.
fn migrate_between(src: &str, dst: &str, after: &str) {
    let path = socket(&format!("{src}-{dst}"));
    let dest = listen(&path, dst);
    let addr = format!("unix:{}", path.display());
    let cmdline = format!("workloads=dirty:{TICKS}");
    let source = vmscope(&[
        "run",
        "kernel",
        "--engine",
        src,
        "--cmdline",
        &cmdline,
        "--migrate-to",
        &addr,
        "--migrate-after",
        after,
    ]);
    let dest = dest.wait_with_output().unwrap();
    let (src_err, dst_err) = (text(&source.stderr), text(&dest.stderr));
    assert_eq!(source.status.code(), Some(0), "source: {src_err}");
    assert!(src_err.contains("the guest runs there now"), "{src_err}");
    assert!(src_err.contains("migration round 0:"), "{src_err}");
    assert_eq!(dest.status.code(), Some(33), "destination: {dst_err}");
    let (before, after) = (text(&source.stdout), text(&dest.stdout));
    let (t_before, t_after) = (ticks(&before), ticks(&after));
    assert!(!t_before.is_empty(), "the source ran some ticks first");
    assert!(!t_after.is_empty(), "the destination ran the rest");
    let all: Vec<u64> = t_before.iter().chain(&t_after).copied().collect();
    assert_eq!(
        all,
        (0..TICKS).collect::<Vec<_>>(),
        "{src} → {dst}: every tick once, in order"
    );
    assert_eq!(
        result_checksum(&after),
        vmscope::compare::suite::expected_checksum("dirty", TICKS),
        "{src} → {dst}: the destination's memory is what the guest wrote"
    );
}

#[test]
fn interp_to_kvm() {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    migrate_between("interp", "kvm", "150ms");
}

#[test]
fn kvm_to_bt() {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    migrate_between("kvm", "bt", "600ms");
}

#[test]
fn bt_to_interp() {
    migrate_between("bt", "interp", "150ms");
}

/// What a run ends with that must not depend on where it ran: CPU, count, time, output.
#[derive(Debug, PartialEq)]
struct Ending {
    cpu: emulator::cpu::CpuState,
    instructions: u64,
    virtual_ns: u64,
    serial: String,
    status: i32,
}

/// In-process, on the emulated engines: a migrated run ends in exactly the uninterrupted
/// run's CPU state, instruction count, virtual time and output (the link is slow enough for
/// several rounds, and the figures are those of guest time, so they repeat).
#[test]
fn a_migrated_run_ends_bit_exact_like_an_uninterrupted_one() {
    let ticks = 120;
    let (full, serial) = run_builtin("kernel", kernel_opts(EngineChoice::Bt, ticks));
    let expected = Ending {
        cpu: full.machine.cpu.clone(),
        instructions: full.machine.stats.instructions,
        virtual_ns: full.machine.bus.now_ns(),
        serial,
        status: full.status,
    };
    let mut rounds = Vec::new();
    for (src, dst) in [
        (EngineChoice::Bt, EngineChoice::Interp),
        (EngineChoice::Interp, EngineChoice::Bt),
    ] {
        let path = socket(&format!("lib-{src:?}"));
        let _ = std::fs::remove_file(&path);
        let at = Endpoint::Unix(path.clone());
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let listener_at = at.clone();
        let destination = std::thread::spawn(move || {
            let mut serial = Vec::new();
            let outcome = vmscope::migrate::dest::listen_and_run(
                &listener_at,
                dst,
                None,
                &mut serial,
                &mut |n| {
                    if n.contains("waiting for a migration") {
                        ready_tx.send(()).unwrap();
                    }
                },
            )
            .expect("the destination runs the guest");
            Ending {
                cpu: outcome.machine.cpu.clone(),
                instructions: outcome.machine.stats.instructions,
                virtual_ns: outcome.machine.bus.now_ns(),
                serial: text(&serial),
                status: outcome.status,
            }
        });
        ready.recv_timeout(Duration::from_secs(20)).unwrap();
        let opts = RunOptions {
            migrate: Some(MigratePlan {
                to: at,
                after: MigrateAfter::GuestNs(300_000_000),
                bandwidth: 12 << 20,
            }),
            ..kernel_opts(src, ticks)
        };
        let (source, before) = run_builtin("kernel", opts);
        let (_, done) = source.migrated.expect("the source migrated its guest");
        assert!(done.rounds.len() >= 3, "a slow link takes rounds: {done:?}");
        let mut ending = destination.join().unwrap();
        ending.serial = before + &ending.serial;
        assert_eq!(ending, expected, "{src:?} → {dst:?}");
        let figures: Vec<_> = done.rounds.iter().map(|r| (r.sent, r.dirtied)).collect();
        rounds.push((figures, done.final_pages));
    }
    assert_eq!(
        rounds[0], rounds[1],
        "rounds count guest time, so bt and interp sources send the same pages"
    );
}

/// A destination that goes away mid-stream: the source says so and its guest runs to the end
/// as if nothing had happened.
#[test]
fn a_dropped_connection_leaves_the_guest_running_at_the_source() {
    let path = socket("drop");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let hang_up = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut first = vec![0u8; 64 << 10];
        std::io::Read::read_exact(&mut conn, &mut first).unwrap();
        // Gone after 64 KiB: the source's next writes fail.
    });
    let cmdline = format!("workloads=dirty:{TICKS}");
    let addr = format!("unix:{}", path.display());
    let out = vmscope(&[
        "run",
        "kernel",
        "--engine",
        "bt",
        "--cmdline",
        &cmdline,
        "--migrate-to",
        &addr,
        "--migrate-after",
        "100ms",
        "--migrate-bandwidth",
        "8M",
    ]);
    hang_up.join().unwrap();
    let err = text(&out.stderr);
    assert!(
        err.contains("failed") && err.contains("the guest keeps running here"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(33), "{err}");
    let serial = text(&out.stdout);
    assert_eq!(ticks(&serial), (0..TICKS).collect::<Vec<_>>());
    assert_eq!(
        result_checksum(&serial),
        vmscope::compare::suite::expected_checksum("dirty", TICKS)
    );
}

/// A destination fed garbage, or a stream cut short, exits with an error naming where.
#[test]
fn a_destination_refuses_garbage_and_cut_streams() {
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "garbage",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "not a vmscope migration stream",
        ),
        (
            "cut",
            b"VMSCMIGR\x01\x00META\x10\x00".to_vec(),
            "the stream ended at byte",
        ),
        (
            "damaged",
            {
                let mut s = b"VMSCMIGR\x01\x00".to_vec();
                vmscope::migrate::wire::write_message(&mut s, *b"META", b"{\"kind\":1}").unwrap();
                let last = s.len() - 1;
                s[last] ^= 0x20;
                s
            },
            "message 0 (META) at byte 10: the payload's checksum is wrong",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = socket(name);
        let dest = listen(&path, "interp");
        let mut conn = std::os::unix::net::UnixStream::connect(&path).unwrap();
        conn.write_all(&bytes).unwrap();
        drop(conn);
        let out = dest.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
    }
}

//! The teaching kernel as a paravirtual guest, on interp, bt and kvm: with `--pv on` it says
//! which hypervisor interfaces it found, with `--pv off` it says nothing; every workload's
//! checksum is the same both ways; and with PV on its page tables go through HC_MMU_UPDATE
//! and its clock reads through kvmclock, not the PIT.
//! Teaches: paravirtualization changes how the guest gets things done, never what it computes.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use emulator::pv::abi;
use emulator::Stats;
use support::*;
use vmscope::compare::suite;
use vmscope::{EngineChoice, RunOptions};

/// What the tests look at after a run (a `GuestOutcome` holds the machine, which stays on the
/// thread that ran it).
struct Run {
    serial: String,
    stats: Stats,
    /// Port accesses the PIT served.
    pit_io: u64,
}

/// A broken guest can loop forever, and nothing bounds a KVM run but time: give up after this.
const DEADLINE: Duration = Duration::from_secs(60);

fn run_kernel(engine: EngineChoice, pv: bool, cmdline: &str) -> Run {
    let opts = RunOptions {
        engine,
        pv,
        cmdline: cmdline.to_string(),
        ..RunOptions::default()
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (outcome, serial) = run_builtin("kernel", opts);
        let m = &outcome.machine;
        let pit_io = m.bus.stats.by_device.get("pit").copied().unwrap_or(0);
        let _ = tx.send((outcome.status, serial, m.stats.clone(), pit_io));
    });
    let (status, serial, stats, pit_io) = rx.recv_timeout(DEADLINE).unwrap_or_else(|e| {
        panic!("{engine:?}, pv {pv}, {cmdline:?}: no end after {DEADLINE:?} ({e})")
    });
    assert_eq!(
        status,
        guests::qemu_exit_status(guests::exit::OK) as i32,
        "{engine:?}, pv {pv}: the kernel must finish cleanly:\n{serial}"
    );
    Run {
        serial,
        stats,
        pit_io,
    }
}

fn pv_lines(serial: &str) -> Vec<&str> {
    serial.lines().filter(|l| l.starts_with("pv:")).collect()
}

/// The hexadecimal number after `key` in `line` ("features 0x7," → 7).
fn hex_after(line: &str, key: &str) -> u64 {
    let rest = line
        .split(key)
        .nth(1)
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"));
    let digits: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    u64::from_str_radix(&digits, 16).unwrap_or_else(|e| panic!("{key:?} in {line:?}: {e}"))
}

/// The vmscope feature bits the kernel printed, checked: everything on the emulated engines;
/// on KVM HC_MMU_UPDATE only where KVM walks the guest's tables in hardware (with its own
/// shadow paging, as on PVM, page-table writes from user space would go unseen).
fn offered_features(engine: EngineChoice, vmscope_line: &str) -> u32 {
    let features = hex_after(vmscope_line, "features 0x") as u32;
    let all = abi::F_HYPERCALL | abi::F_MMU_UPDATE | abi::F_CONSOLE;
    if engine == EngineChoice::Kvm {
        assert_eq!(features | abi::F_MMU_UPDATE, all, "{vmscope_line}");
    } else {
        assert_eq!(features, all, "{engine:?}: {vmscope_line}");
    }
    features
}

#[test]
fn the_kernel_reports_both_interfaces_with_pv_on_and_nothing_with_pv_off() {
    for engine in support::engines_with_kvm() {
        let off = run_kernel(engine, false, "").serial;
        assert_eq!(off, guests::KERNEL_TEXT, "{engine:?}, pv off");

        let on = run_kernel(engine, true, "").serial;
        let lines = pv_lines(&on);
        assert_eq!(lines.len(), 2, "{engine:?}: one line per interface:\n{on}");
        let (kvm, vmscope) = (lines[0], lines[1]);

        assert!(kvm.starts_with("pv: KVM interface, features 0x"), "{kvm}");
        assert!(kvm.ends_with(", kvmclock in use"), "{engine:?}: {kvm}");
        let kvm_features = hex_after(kvm, "features 0x") as u32;
        assert_ne!(kvm_features & abi::KVM_FEATURE_CLOCKSOURCE2, 0, "{kvm}");
        assert_eq!(
            kvm.len(),
            "pv: KVM interface, features 0x01000008, kvmclock in use".len(),
            "the features as 8 digits: {kvm}"
        );

        let features = offered_features(engine, vmscope);
        let expected = format!(
            "pv: vmscope interface v{}, features 0x{features:x}, hypercall port 0x{:x}, batches of up to {}",
            abi::ABI_VERSION,
            abi::HYPERCALL_PORT,
            abi::MMU_BATCH_MAX
        );
        assert_eq!(vmscope, expected, "{engine:?}");

        // Nothing else changes: the same text with the two lines after the banner.
        let (banner, rest) = guests::KERNEL_TEXT.split_once('\n').unwrap();
        assert_eq!(
            on,
            format!("{banner}\n{kvm}\n{vmscope}\n{rest}"),
            "{engine:?}"
        );
    }
}

/// Small counts for every workload; pagefault's 300 cover two releases of its 128-page window.
fn cmdline() -> String {
    let list: Vec<String> = suite::SUITE
        .iter()
        .map(|w| {
            let n = match w.name {
                "compute" => 2,
                "pagefault" => 300,
                _ => 40,
            };
            format!("{}:{n}", w.name)
        })
        .collect();
    format!("workloads={}", list.join(","))
}

#[test]
fn every_workload_computes_the_same_with_and_without_pv() {
    let cmdline = cmdline();
    for engine in support::engines_with_kvm() {
        let off = run_kernel(engine, false, &cmdline);
        let on = run_kernel(engine, true, &cmdline);
        let off_results = suite::parse_results(&off.serial).unwrap();
        let on_results = suite::parse_results(&on.serial).unwrap();
        assert_eq!(off_results.len(), suite::SUITE.len(), "{}", off.serial);
        assert_eq!(on_results.len(), suite::SUITE.len(), "{}", on.serial);
        for (a, b) in off_results.iter().zip(&on_results) {
            assert_eq!(a.workload, b.workload);
            assert_eq!(a.ops, b.ops);
            assert_eq!(
                a.checksum, b.checksum,
                "{engine:?} {}: pv off and pv on",
                a.workload
            );
            assert_eq!(
                Some(a.checksum),
                suite::expected_checksum(&a.workload, a.ops),
                "{engine:?} {}",
                a.workload
            );
        }

        // Without PV: no hypercall at all, page tables by trapped stores.
        let (off_stats, on_stats) = (&off.stats, &on.stats);
        assert!(
            off_stats.hypercalls.is_empty(),
            "{:?}",
            off_stats.hypercalls
        );
        assert_eq!(off_stats.mmu.pv_pte_writes, 0);

        // With PV: the version check, then page-table batches through the port door. Each
        // demand-zero fault and each ptemod op is one call; each release of pagefault's
        // window (2 here) is one call for 128 entries and 128 INVLPGs. Without
        // HC_MMU_UPDATE on offer (KVM with shadow paging) the page tables stay native.
        let vmscope_line = pv_lines(&on.serial)[1].to_string();
        if offered_features(engine, &vmscope_line) & abi::F_MMU_UPDATE == 0 {
            eprintln!("{engine:?}: {vmscope_line}: no HC_MMU_UPDATE, page tables native");
            assert!(on_stats.hypercalls.is_empty(), "{:?}", on_stats.hypercalls);
            assert_eq!(on_stats.mmu.pv_pte_writes, 0);
        } else {
            page_tables_went_through_hypercalls(on_stats);
        }
        assert!(off.pit_io >= 3 + 3 * 40, "{engine:?}: pit {}", off.pit_io);
        assert_eq!(on.pit_io, 3, "{engine:?}: kvmclock reads need no port");
    }
}

fn page_tables_went_through_hypercalls(on_stats: &Stats) {
    let calls = |name: &str| {
        on_stats
            .hypercalls
            .get(&(name, "port"))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(calls("version"), 1, "{:?}", on_stats.hypercalls);
    assert!(calls("mmu_update") > 300 + 40, "{:?}", on_stats.hypercalls);
    assert_eq!(on_stats.hypercall_errors, 0);
    assert!(
        on_stats.mmu.pv_pte_writes >= 300 + 2 * 128 + 40,
        "{:?}",
        on_stats.mmu
    );
    assert!(on_stats.mmu.pv_invlpg >= 2 * 128 + 40, "{:?}", on_stats.mmu);
}

/// Reads of the clock never go back in time, whichever clock the kernel uses: the PIT with
/// `--pv off`, kvmclock with `--pv on`. Long enough on KVM to span several of the runner's
/// 50 ms slices on PVM (each read is tens of µs there).
#[test]
fn the_clock_never_runs_backwards_in_either_mode() {
    for engine in support::engines_with_kvm() {
        let n = if engine == EngineChoice::Kvm {
            20_000
        } else {
            30_000
        };
        for pv in [false, true] {
            let run = run_kernel(engine, pv, &format!("workloads=clock:{n}"));
            let results = suite::parse_results(&run.serial).unwrap();
            assert_eq!(
                results.iter().map(|r| r.checksum).collect::<Vec<_>>(),
                vec![n],
                "{engine:?}, pv {pv}: reads not below the previous one, of {n}"
            );
        }
    }
}

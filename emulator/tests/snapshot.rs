//! Machine snapshots: take one mid-run, restore it, and the guest replays its future exactly.
//! Teaches: with every device's state saved, "run to N, snapshot, run to M, restore, run to M
//! again" is a way to check determinism — CPU, RAM and serial output must all come out equal.

use emulator::interp::Interpreter;
use emulator::machine::loader::{load_image_with_boot, BootMethod};
use emulator::{Engine, Exit, Machine, RunLimit};

fn boot(guest: &str, cmdline: &str, boot: BootMethod) -> Machine {
    let g = guests::by_name(guest).unwrap();
    let mut m = Machine::new(64 << 20).unwrap();
    load_image_with_boot(
        &mut m,
        g.file_name,
        g.image,
        cmdline,
        boot,
        guests::FIRMWARE_ROM,
    )
    .unwrap();
    m
}

/// Runs until `target` instructions retired or the guest ended; returns how it ended.
fn run_to(interp: &mut Interpreter, m: &mut Machine, target: u64, serial: &mut Vec<u8>) -> Exit {
    let exit = loop {
        let left = target.saturating_sub(m.stats.instructions);
        if left == 0 {
            break Exit::LimitReached;
        }
        let exit = interp.run(m, RunLimit::instructions(left)).unwrap();
        if exit != Exit::LimitReached {
            break exit;
        }
    };
    serial.extend(m.bus.take_serial_output());
    exit
}

/// Runs `guest` to `n`, snapshots, runs to `m` (or its end); then restores the snapshot into a
/// freshly booted machine and into the same machine, runs each to `m` again with a fresh
/// interpreter, and checks that CPU, RAM, serial output and the ending agree.
fn check(guest: &str, cmdline: &str, how: BootMethod, n: u64, m: u64) {
    let mut machine = boot(guest, cmdline, how);
    let mut interp = Interpreter::new();
    let mut before = Vec::new();
    assert_eq!(
        run_to(&mut interp, &mut machine, n, &mut before),
        Exit::LimitReached,
        "{guest} ended before {n}"
    );
    let snap = machine
        .snapshot()
        .expect("every PC device can be snapshotted");
    assert_eq!(snap.instructions(), n);
    let mut after = Vec::new();
    let exit = run_to(&mut interp, &mut machine, m, &mut after);
    assert!(
        !after.is_empty(),
        "{guest}: the guest should print between {n} and {m}"
    );
    let reference = (machine.cpu.clone(), machine.ram.as_slice().to_vec(), after);

    let mut fresh = boot(guest, cmdline, how);
    for target in [&mut fresh, &mut machine] {
        target.restore(&snap).unwrap();
        assert_eq!(target.cpu, snap.cpu);
        assert_eq!(target.stats.instructions, n);
        let mut replay = Vec::new();
        let again = run_to(&mut Interpreter::new(), target, m, &mut replay);
        assert_eq!(again, exit, "{guest}: the replay ended differently");
        assert_eq!(
            target.cpu, reference.0,
            "{guest}: CPU state after the replay"
        );
        assert!(
            target.ram.as_slice() == reference.1.as_slice(),
            "{guest}: RAM after the replay"
        );
        assert_eq!(
            String::from_utf8_lossy(&replay),
            String::from_utf8_lossy(&reference.2),
            "{guest}: serial output after the snapshot"
        );
    }
}

#[test]
fn demo_replays_timer_interrupts_and_ring_3_exactly_from_a_snapshot() {
    // At 3000 instructions the demo is building page tables; the timer ticks come later.
    check("demo", "", BootMethod::Direct, 3_000, u64::MAX);
}

#[test]
fn firmware_boot_snapshot_in_real_mode_replays_the_whole_boot() {
    check("demo", "", BootMethod::Firmware, 5, u64::MAX);
}

#[test]
fn platform_replays_apic_timers_ioapic_pm_timer_and_fw_cfg_exactly() {
    for n in [20_000, 150_000, 300_000] {
        check("platform", "", BootMethod::Direct, n, u64::MAX);
    }
}

#[test]
fn teaching_kernel_replays_page_faults_and_system_calls_from_the_middle() {
    let cmdline =
        "workloads=syscall:3000,pagefault:300,portio:2000,mmio:2000,cr3switch:1000,divzero:500";
    check("kernel", cmdline, BootMethod::Direct, 100_000, 200_000);
}

#[test]
fn snapshots_share_unchanged_ram_pages() {
    let mut m = boot("demo", "", BootMethod::Direct);
    let mut serial = Vec::new();
    let mut interp = Interpreter::new();
    run_to(&mut interp, &mut m, 3_000, &mut serial);
    let first = m.snapshot().unwrap();
    run_to(&mut interp, &mut m, 3_100, &mut serial);
    let second = m.snapshot_after(Some(&first)).unwrap();
    assert!(
        second.ram_pages() >= 5,
        "kernel, tables and stack are in RAM: {}",
        second.ram_pages()
    );
    assert!(
        second.unshared_pages() < 4,
        "100 instructions rewrite few pages: {} of {} unshared",
        second.unshared_pages(),
        second.ram_pages()
    );
}

#[test]
fn a_snapshot_does_not_fit_a_machine_of_another_size() {
    let m = boot("demo", "", BootMethod::Direct);
    let snap = m.snapshot().unwrap();
    let mut small = Machine::new(32 << 20).unwrap();
    assert!(small.restore(&snap).is_err());
}

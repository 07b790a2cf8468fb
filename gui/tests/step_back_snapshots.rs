//! Step back far from power-on: the session restores the nearest machine snapshot and replays.
//! Teaches: periodic snapshots bound the cost of going back — and the state they give back must
//! be exactly the one the guest had, CPU, RAM and serial console alike.

use gui::session::{Session, StopReason};

/// Runs the guest freely (no breakpoints) for exactly `n` more instructions.
fn advance(s: &mut Session, n: u64) {
    let target = s.position() + n;
    s.run();
    while s.position() < target && s.is_running() {
        s.tick(target - s.position());
    }
    s.pause();
    assert_eq!(s.position(), target);
}

/// The platform guest (≈330,000 instructions: APIC timers, IOAPIC, PM timer, fw_cfg) with a
/// snapshot every `every` instructions.
fn platform(every: u64, ring: usize) -> Session {
    let mut s = Session::builtin("platform").unwrap();
    s.history.snapshot_every = every;
    s.history.snapshot_ring = ring;
    s
}

#[test]
fn step_back_across_a_snapshot_boundary_gives_the_exact_earlier_state() {
    let mut reference = platform(50_000, 0); // no snapshots: the plain forward run
    advance(&mut reference, 199_998);
    let want_ram = reference.machine.ram.as_slice().to_vec();

    let mut s = platform(50_000, 64);
    advance(&mut s, 200_003);
    assert_eq!(
        s.history.snapshot_positions(),
        [50_000, 100_000, 150_000, 200_000]
    );
    assert!(s.serial.len() > reference.serial.len() / 2);

    s.step_back(5).unwrap();
    assert_eq!(s.last_stop, Some(StopReason::Rewound { to: 199_998 }));
    assert_eq!(
        s.history.last_replay_from,
        Some(150_000),
        "199,998 is before the snapshot at 200,000: the one at 150,000 is the nearest"
    );
    assert_eq!(s.position(), 199_998);
    assert_eq!(s.machine.cpu, reference.machine.cpu);
    assert!(
        s.machine.ram.as_slice() == want_ram.as_slice(),
        "RAM differs"
    );
    assert_eq!(s.serial, reference.serial);
    assert_eq!(s.machine.bus.now_ns(), reference.machine.bus.now_ns());
    assert_eq!(
        s.notice, None,
        "the recorded CPU states agree with the replay"
    );
    assert_eq!(s.history.snapshot_positions(), [50_000, 100_000, 150_000]);

    // The future replays the same way too: run both to the end.
    for x in [&mut s, &mut reference] {
        x.run();
        assert!(x.run_until_stopped(100_000, 100));
    }
    assert_eq!(s.serial, reference.serial);
    assert_eq!(
        s.serial,
        guests::by_name("platform").unwrap().expected_serial
    );
    assert_eq!(s.machine.cpu, reference.machine.cpu);
}

#[test]
fn targets_older_than_the_ring_replay_from_power_on() {
    let mut reference = platform(30_000, 0);
    advance(&mut reference, 40_000);
    let mut s = platform(30_000, 2);
    advance(&mut s, 125_000);
    assert_eq!(s.history.snapshot_positions(), [90_000, 120_000]);
    s.rewind_to(40_000).unwrap();
    assert_eq!(s.history.last_replay_from, Some(0));
    assert_eq!(s.machine.cpu, reference.machine.cpu);
    assert_eq!(s.serial, reference.serial);
    assert!(s.history.snapshot_positions().is_empty());
}

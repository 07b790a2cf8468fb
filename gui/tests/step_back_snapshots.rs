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

/// Real mode at 0x7C00: poll the UART's line status, store each received byte at 0x600 + BX.
const ECHO_TO_MEMORY: [u8; 19] = [
    0xBA, 0xFD, 0x03, // mov dx, 0x3FD (LSR)
    0xEC, // in al, dx
    0xA8, 0x01, // test al, 1 (data ready)
    0x74, 0xFB, // jz back to the IN
    0xBA, 0xF8, 0x03, // mov dx, 0x3F8 (RBR)
    0xEC, // in al, dx
    0x88, 0x87, 0x00, 0x06, // mov [bx + 0x600], al
    0x43, // inc bx
    0xEB, 0xED, // jmp to the start
];

#[test]
fn typed_input_is_replayed_from_the_snapshot_it_followed() {
    let mut s = Session::new(gui::session::GuestImage::from_bytes(
        "echo.img",
        ECHO_TO_MEMORY.to_vec(),
    ))
    .unwrap();
    s.history.snapshot_every = 500;
    advance(&mut s, 1_000); // a snapshot is taken at 1,000, then "ab" is typed there
    s.send_serial_input(b"ab");
    advance(&mut s, 1_000);
    s.send_serial_input(b"c");
    advance(&mut s, 1_000);
    assert_eq!(
        s.machine.phys_read(0x600, 4),
        u64::from(u32::from_le_bytes(*b"abc\0"))
    );
    let at_2500 = {
        let mut r = Session::new(gui::session::GuestImage::from_bytes(
            "echo.img",
            ECHO_TO_MEMORY.to_vec(),
        ))
        .unwrap();
        r.history.snapshot_ring = 0;
        advance(&mut r, 1_000);
        r.send_serial_input(b"ab");
        advance(&mut r, 1_000);
        r.send_serial_input(b"c");
        advance(&mut r, 500);
        r.machine.cpu.clone()
    };

    s.rewind_to(2_500).unwrap();
    assert_eq!(s.history.last_replay_from, Some(2_500));
    assert_eq!(s.machine.cpu, at_2500);
    assert_eq!(
        s.machine.phys_read(0x600, 4),
        u64::from(u32::from_le_bytes(*b"abc\0"))
    );

    s.rewind_to(1_050).unwrap();
    assert_eq!(s.history.last_replay_from, Some(1_000));
    assert_eq!(
        s.machine.phys_read(0x600, 4),
        u64::from(u32::from_le_bytes(*b"ab\0\0")),
        "input typed at the snapshot's position came after it and is replayed"
    );
    s.rewind_to(999).unwrap();
    assert_eq!(s.machine.phys_read(0x600, 4), 0, "nothing typed yet");
}

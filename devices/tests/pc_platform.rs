//! The whole standard PC bus driven the way a guest kernel and a run loop drive it.
//! Teaches: how timer, interrupt controller and CPU loop cooperate: program, advance time, acknowledge, EOI.

use devices::pit::PIT_FREQUENCY_HZ;
use devices::{Bus, MachineEvent, PcPlatformConfig};

const MS: u64 = 1_000_000;

fn pc() -> Bus {
    Bus::new_pc(PcPlatformConfig::default())
}

/// The PIC initialization of a protected-mode kernel: IRQ 0–7 at 0x20, IRQ 8–15 at 0x28,
/// then only the lines in `unmasked` enabled.
fn remap_pic(bus: &mut Bus, unmasked: u16) {
    for (port, value) in [
        (0x20, 0x11),
        (0xA0, 0x11),
        (0x21, 0x20),
        (0xA1, 0x28),
        (0x21, 0x04),
        (0xA1, 0x02),
        (0x21, 0x01),
        (0xA1, 0x01),
    ] {
        bus.io_out(port, 1, value);
    }
    let mask = !unmasked;
    bus.io_out(0x21, 1, (mask & 0xFF) as u32 & !(1 << 2));
    bus.io_out(0xA1, 1, (mask >> 8) as u32);
}

/// PIT counter 0 as a rate generator at `hz`.
fn program_timer(bus: &mut Bus, hz: u64) -> u16 {
    let divisor = (PIT_FREQUENCY_HZ / hz) as u16;
    bus.io_out(0x43, 1, 0x34);
    bus.io_out(0x40, 1, (divisor & 0xFF) as u32);
    bus.io_out(0x40, 1, (divisor >> 8) as u32);
    divisor
}

/// Exactly when the `k`-th tick of a counter loaded with `divisor` at time 0 happens.
fn tick_time(k: u64, divisor: u16) -> u64 {
    (k * divisor as u64 * 1_000_000_000).div_ceil(PIT_FREQUENCY_HZ)
}

/// A stand-in for an engine's run loop: time moves in `step_ns` slices; between slices, with
/// interrupts enabled, the CPU takes every pending interrupt. `handler` plays the guest's
/// interrupt handler and decides whether to send an EOI.
fn run_cpu(
    bus: &mut Bus,
    until_ns: u64,
    step_ns: u64,
    mut handler: impl FnMut(&mut Bus, u8) -> bool,
) -> Vec<(u64, u8)> {
    let mut taken = Vec::new();
    let mut now = bus.now_ns();
    while now < until_ns {
        now = (now + step_ns).min(until_ns);
        bus.advance_time(now);
        while bus.interrupt_pending() {
            let vector = bus.acknowledge_interrupt();
            taken.push((now, vector));
            if handler(bus, vector) {
                let irq_from_slave = (0x28..0x30).contains(&vector);
                if irq_from_slave {
                    bus.io_out(0xA0, 1, 0x20);
                }
                bus.io_out(0x20, 1, 0x20);
            } else {
                break; // no EOI: the line stays in service and blocks itself
            }
        }
    }
    taken
}

#[test]
fn a_1khz_timer_delivers_vector_0x20_once_per_millisecond() {
    let mut bus = pc();
    remap_pic(&mut bus, 1 << 0);
    let divisor = program_timer(&mut bus, 1000);
    let taken = run_cpu(&mut bus, 100 * MS, 10_000, |_, _| true);
    assert_eq!(taken.len(), 100);
    for (k, &(when, vector)) in taken.iter().enumerate() {
        assert_eq!(vector, 0x20);
        let due = tick_time(k as u64 + 1, divisor);
        assert!(
            when >= due && when < due + 10_000,
            "tick {k} due at {due} taken at {when}"
        );
    }
}

#[test]
fn an_engine_that_follows_next_deadline_takes_each_tick_on_time() {
    let mut bus = pc();
    remap_pic(&mut bus, 1 << 0);
    let divisor = program_timer(&mut bus, 250);
    let mut times = Vec::new();
    while let Some(deadline) = bus.next_deadline().filter(|&d| d <= 40 * MS) {
        bus.advance_time(deadline);
        assert!(bus.interrupt_pending());
        assert_eq!(bus.acknowledge_interrupt(), 0x20);
        bus.io_out(0x20, 1, 0x20);
        times.push(bus.now_ns());
    }
    let expected: Vec<u64> = (1..=10).map(|k| tick_time(k, divisor)).collect();
    assert_eq!(times, expected);
}

#[test]
fn without_eoi_the_timer_interrupt_is_taken_only_once() {
    let mut bus = pc();
    remap_pic(&mut bus, 1 << 0);
    program_timer(&mut bus, 1000);
    let taken = run_cpu(&mut bus, 20 * MS, 10_000, |_, _| false);
    assert_eq!(taken.len(), 1);
    // The guest finally sends its EOI: the request latched meanwhile is delivered.
    bus.io_out(0x20, 1, 0x20);
    assert!(bus.interrupt_pending());
}

#[test]
fn a_late_run_loop_gets_the_missed_ticks_afterwards() {
    let mut bus = pc();
    remap_pic(&mut bus, 1 << 0);
    program_timer(&mut bus, 1000);
    // The engine ran 10 ms past its deadline (a long time slice, a host pause).
    bus.advance_time(10 * MS + MS / 2);
    assert_eq!(bus.acknowledge_interrupt(), 0x20);
    bus.io_out(0x20, 1, 0x20);
    assert!(
        !bus.interrupt_pending(),
        "one interrupt at a time: the guest runs between them"
    );
    let rest = run_cpu(&mut bus, 30 * MS, 10_000, |_, _| true);
    assert_eq!(1 + rest.len(), 30, "every period delivered by 30 ms");
    assert!(
        rest[..9].iter().all(|&(when, _)| when < 11 * MS),
        "paid back quickly"
    );
}

#[test]
fn rtc_periodic_interrupt_arrives_through_the_slave() {
    let mut bus = pc();
    remap_pic(&mut bus, 1 << 8);
    // Rate 6 (1024 Hz) is the default in register A; enable the periodic interrupt in B.
    bus.io_out(0x70, 1, 0x0B);
    let b = bus.io_in(0x71, 1);
    bus.io_out(0x70, 1, 0x0B);
    bus.io_out(0x71, 1, b | 0x40);
    let taken = run_cpu(&mut bus, 100 * MS, 50_000, |bus, vector| {
        assert_eq!(vector, 0x28);
        // The RTC handler's duty: read register C, or no further interrupt comes.
        bus.io_out(0x70, 1, 0x0C);
        assert_ne!(bus.io_in(0x71, 1) & 0xC0, 0);
        true
    });
    // 102.4 periods in 100 ms; slices of 50 µs never merge two of them (976 µs apart).
    assert_eq!(taken.len(), 102);
}

#[test]
fn keyboard_controller_reset_request_reaches_the_machine() {
    let mut bus = pc();
    // A reboot routine: wait until the controller's input buffer is empty, then pulse reset.
    assert_eq!(bus.io_in(0x64, 1) & 0x02, 0);
    bus.io_out(0x64, 1, 0xFE);
    assert!(bus.has_events());
    assert_eq!(bus.take_events(), vec![MachineEvent::ResetRequested]);
    assert!(bus.take_events().is_empty());
    assert_eq!(MachineEvent::ResetRequested.exit_status(), None);
}

#[test]
fn debug_exit_reports_qemu_exit_statuses() {
    let mut bus = pc();
    bus.io_out(0xF4, 4, 0x31);
    bus.io_out(0xF4, 1, 0x01);
    let statuses: Vec<_> = bus
        .take_events()
        .into_iter()
        .map(|event| event.exit_status())
        .collect();
    assert_eq!(statuses, vec![Some(0x63), Some(3)]);
}

#[test]
fn the_cmos_reports_the_configured_memory() {
    let mut bus = Bus::new_pc(PcPlatformConfig {
        ram_bytes: 32 << 20,
    });
    let mut read = |index: u32| {
        bus.io_out(0x70, 1, index);
        bus.io_in(0x71, 1)
    };
    let extended_kib = read(0x17) | read(0x18) << 8;
    let above_16m = read(0x34) | read(0x35) << 8;
    assert_eq!(extended_kib, 31 * 1024);
    assert_eq!(above_16m, (32 - 16) * 16);
}

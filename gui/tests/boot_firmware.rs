//! The window's default boot: a Multiboot kernel reached from the reset vector through firmware.
//! Teaches: what a student sees stepping a PC's boot — real mode at F000:FFF0, CR0.PE, the far
//! jump into 32-bit code, the kernel, then CR0.PG with EFER.LME and the jump into 64-bit code.

use emulator::cpu::{CpuMode, Seg};
use emulator::machine::loader::BootMethod;
use gui::session::{EngineKind, GuestImage, Session, StopReason};

fn demo_through_firmware() -> Session {
    let image = GuestImage::builtin("demo")
        .unwrap()
        .with_boot(BootMethod::Firmware);
    Session::new(image).expect("the demo boots through the firmware")
}

/// Runs with break-on-mode-switch until 64-bit long mode; returns the modes stopped in, each
/// with the linear address of the next instruction (the one just after the switch).
fn modes_until_long_mode(s: &mut Session) -> Vec<(CpuMode, u64)> {
    s.break_on.mode_switch = true;
    let mut stops = Vec::new();
    while s.machine.cpu.mode() != CpuMode::Long64 {
        assert!(stops.len() < 8, "too many mode switches: {stops:?}");
        s.run();
        assert!(s.run_until_stopped(10_000, 1_000), "no mode switch came");
        assert!(
            matches!(&s.last_stop, Some(StopReason::ModeSwitch(_))),
            "{:?}",
            s.last_stop
        );
        stops.push((s.machine.cpu.mode(), s.machine.cpu.linear_rip()));
    }
    stops
}

const EXPECTED_MODES: [CpuMode; 4] = [
    CpuMode::Protected16, // MOV CR0 with PE: protected, but CS still holds its real-mode cache
    CpuMode::Protected32, // the firmware's LJMPL to selector 0x10
    CpuMode::Compatibility, // the kernel: CR0.PG with EFER.LME activates long mode
    CpuMode::Long64,      // its far jump to a 64-bit code segment
];

#[test]
fn the_first_instruction_is_the_reset_vector_in_real_mode() {
    let mut s = demo_through_firmware();
    let cpu = &s.machine.cpu;
    assert_eq!(cpu.mode(), CpuMode::Real);
    assert_eq!(
        (cpu.seg[Seg::Cs as usize].selector, cpu.rip),
        (0xF000, 0xFFF0)
    );
    assert_eq!(
        cpu.linear_rip(),
        0xFFFF_FFF0,
        "CS.base is 0xFFFF0000 after RESET"
    );
    assert!(s.loaded.contains("booted by the firmware"), "{}", s.loaded);
    s.step_into();
    let cpu = &s.machine.cpu;
    assert_eq!(cpu.mode(), CpuMode::Real);
    assert_eq!(
        cpu.seg[Seg::Cs as usize].base,
        0xF0000,
        "the far jump reloaded CS"
    );
}

#[test]
fn break_on_mode_switch_stops_from_real_mode_to_long_mode_on_the_interpreter() {
    let mut s = demo_through_firmware();
    let stops = modes_until_long_mode(&mut s);
    let modes: Vec<CpuMode> = stops.iter().map(|s| s.0).collect();
    assert_eq!(modes, EXPECTED_MODES);
    assert!(
        stops[..2]
            .iter()
            .all(|s| (0xF0000..0x100000).contains(&s.1)),
        "the switch to protected mode happens in the ROM: {stops:x?}"
    );
    assert!(
        stops[2].1 >= 0x100000,
        "long mode is the kernel's doing: {stops:x?}"
    );
    assert!(
        s.serial.starts_with("vmscope demo:") && s.serial.contains("[2]"),
        "{}",
        s.serial
    );
    // Step back across the whole boot to the reset vector.
    s.rewind_to(0).unwrap();
    assert_eq!(s.machine.cpu.mode(), CpuMode::Real);
    assert_eq!(s.machine.cpu.linear_rip(), 0xFFFF_FFF0);
}

#[test]
fn break_on_mode_switch_stops_the_same_way_under_kvm() {
    if let Err(why) = accel_kvm::kvm_for_tests() {
        eprintln!("skipped: KVM is not usable here: {why}");
        return;
    }
    let mut reference = demo_through_firmware();
    let expected = modes_until_long_mode(&mut reference);

    let mut s = demo_through_firmware();
    s.switch_engine(EngineKind::Kvm).unwrap();
    let stops = modes_until_long_mode(&mut s);
    assert_eq!(
        stops, expected,
        "KVM single-steps stop at the same switches"
    );
    assert_eq!(s.serial, reference.serial);
    // And a free run finishes with the demo's output.
    s.break_on.mode_switch = false;
    s.run();
    assert!(s.run_until_stopped(1_000_000, 2_000));
    assert_eq!(s.serial, guests::by_name("demo").unwrap().expected_serial);
}

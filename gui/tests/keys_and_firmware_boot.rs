//! The debugger's keys on the firmware boot: F11/F10/F5/F7 from the reset vector into long mode.
//! Teaches: the keyboard is the debugger's main interface, so each key is checked on the boot a
//! student steps through first — and the Guest menu switches between firmware and direct boot.

mod support;

use egui::Key;
use egui_kittest::kittest::Queryable;
use emulator::cpu::{CpuMode, Seg};
use emulator::machine::loader::BootMethod;
use gui::session::{GuestImage, Session, StopReason};
use gui::VmscopeApp;
use iced_x86::FlowControl;
use support::{harness, run_until_paused};

fn firmware_app() -> VmscopeApp {
    let image = GuestImage::builtin("demo")
        .unwrap()
        .with_boot(BootMethod::Firmware);
    let mut app = VmscopeApp::new(Session::new(image).unwrap());
    app.fixed_budget = true;
    app.budget = 20_000;
    app
}

#[test]
fn the_window_opens_at_f000_fff0_and_f5_stops_at_every_mode_switch() {
    let mut h = harness(firmware_app());
    h.run();
    let cpu = &h.state().session.machine.cpu;
    assert_eq!(
        (cpu.seg[Seg::Cs as usize].selector, cpu.rip),
        (0xF000, 0xFFF0)
    );
    assert!(h.query_all_by_label_contains("f000:0000fff0").count() > 0);
    assert!(h.query_all_by_label_contains("real mode").count() > 0);

    h.state_mut().session.break_on.mode_switch = true;
    let mut modes = Vec::new();
    for _ in 0..4 {
        h.key_press(Key::F5);
        h.step();
        run_until_paused(&mut h, 500);
        let s = &h.state().session;
        assert!(matches!(s.last_stop, Some(StopReason::ModeSwitch(_))));
        modes.push(s.machine.cpu.mode());
    }
    assert_eq!(
        modes,
        [
            CpuMode::Protected16,
            CpuMode::Protected32,
            CpuMode::Compatibility,
            CpuMode::Long64
        ]
    );
    h.run();
    assert!(h.query_all_by_label_contains("64-bit long mode").count() > 0);

    // F7 steps back over the far jump into 64-bit code: compatibility mode again.
    h.key_press(Key::F7);
    h.run();
    assert_eq!(h.state().session.machine.cpu.mode(), CpuMode::Compatibility);
}

#[test]
fn f10_steps_over_a_call_and_f5_pauses_a_run() {
    let mut h = harness(firmware_app());
    let s = &mut h.state_mut().session;
    while gui::disasm::decode_current(&mut s.machine)
        .is_none_or(|i| i.flow_control() != FlowControl::Call)
    {
        s.step_into();
    }
    let call = gui::disasm::decode_current(&mut s.machine).unwrap();
    let after = s.machine.cpu.rip + call.len() as u64;
    let before = s.position();
    h.key_press(Key::F10);
    h.step();
    run_until_paused(&mut h, 100);
    let s = &h.state().session;
    assert_eq!(s.machine.cpu.rip, after, "back after the CALL");
    assert!(s.position() > before + 2, "the callee ran too");

    // F5 runs (the demo waits for timer ticks), F5 again pauses.
    h.state_mut().budget = 50;
    h.key_press(Key::F5);
    h.step();
    assert!(h.state().session.is_running());
    h.key_press(Key::F5);
    h.step();
    assert!(!h.state().session.is_running());
    assert_eq!(h.state().session.last_stop, Some(StopReason::Paused));
}

#[test]
fn the_guest_menu_switches_between_firmware_and_direct_boot() {
    let mut h = harness(firmware_app());
    h.get_by_label("Guest").click();
    h.run();
    h.get_by_label("Boot through the firmware").click();
    h.run();
    let s = &h.state().session;
    assert_eq!(s.image.boot, BootMethod::Direct);
    assert_eq!(
        s.machine.cpu.mode(),
        CpuMode::Protected32,
        "the Multiboot entry"
    );
    assert_eq!(s.position(), 0);

    // Other guests opened from the menu start the same way as the current one.
    h.get_by_label("Guest").click();
    h.run();
    h.get_by_label("hello64").click();
    h.run();
    assert_eq!(h.state().session.image.boot, BootMethod::Direct);
    assert_eq!(h.state().session.machine.cpu.mode(), CpuMode::Protected32);
}

#[test]
fn the_guest_menu_pulses_the_nmi_line_and_the_timeline_shows_it() {
    let mut h = harness(firmware_app());
    h.get_by_label("Guest").click();
    h.run();
    h.get_by_label("Send NMI").click();
    h.run();
    let s = &h.state().session;
    assert_eq!(s.events.total(gui::session::EventKind::NmiButton), 1);
    assert!(
        matches!(
            s.history.inputs.last(),
            Some((0, gui::session::GuestInput::Nmi))
        ),
        "recorded for replay at instruction 0: {:?}",
        s.history.inputs
    );
}

//! Image snapshots of the main window, rendered on the CPU (see `support/soft_render.rs`).
//! Teaches: a picture test catches what state checks cannot — overlapping panels, missing
//! highlights, unreadable text. Update with `UPDATE_SNAPSHOTS=1 cargo test -p gui --test
//! snapshots`, then look at every changed PNG in `gui/tests/snapshots/` before committing.

mod support;

use egui::Key;
use egui_kittest::kittest::Queryable;
use egui_kittest::SnapshotOptions;
use support::{app, harness, run_until_paused};

/// Font edges may differ by a shade between CPUs' float rounding; layout changes differ by far more.
fn options() -> SnapshotOptions {
    SnapshotOptions::new().threshold(2.0).max_failed_pixels(200)
}

#[test]
fn main_window_in_long_mode() {
    let mut a = app("demo");
    let sym = a.session.symbols.find("long_mode").unwrap();
    a.session.toggle_breakpoint(sym);
    let mut h = harness(a);
    h.key_press(Key::F5);
    h.step();
    run_until_paused(&mut h, 500);
    h.key_press(Key::F11); // one step in 64-bit code: something is highlighted
    h.run();
    h.state_mut().walk_target = Some((0x20_0000, "memory view"));
    h.state_mut().settings.walk_user = true;
    h.run();
    h.snapshot_options("main_window_long_mode", &options());
}

#[test]
fn main_window_at_the_entry_with_help() {
    let mut h = harness(app("demo"));
    h.run();
    h.snapshot_options("main_window_entry", &options());
    h.key_press(Key::F1);
    h.run();
    h.snapshot_options("help_overlay", &options());
}

#[test]
fn events_and_stats_tabs_after_the_demo() {
    let mut h = harness(app("demo"));
    h.state_mut().budget = 1_000;
    h.key_press(Key::F5);
    h.step();
    run_until_paused(&mut h, 5_000);
    h.get_by_label("Events").click();
    h.run();
    h.snapshot_options("events_tab", &options());
    h.get_by_label("Stats").click();
    h.run();
    h.snapshot_options("stats_tab", &options());
}

#[test]
fn breakpoints_tab_with_every_kind_of_stop() {
    let mut a = app("demo");
    let at = a.session.symbols.find("long_mode").unwrap();
    let s = &mut a.session;
    s.breakpoints
        .push(gui::session::Breakpoint::with_condition(at, "rax == 0x10").unwrap());
    s.breakpoints.push(gui::session::Breakpoint::new(0x10_0020));
    s.watchpoints.push(gui::session::Watchpoint::new(
        0x10_2000,
        8,
        gui::session::MemAccess::Write,
    ));
    s.break_on.io_ports = vec![0x3F8];
    s.break_on.exception = true;
    let mut h = harness(a);
    h.get_by_label("Breakpoints").click();
    h.run();
    h.snapshot_options("breakpoints_tab", &options());
}

#[test]
fn main_window_at_the_reset_vector_through_the_firmware() {
    let image = gui::session::GuestImage::builtin("demo")
        .unwrap()
        .with_boot(emulator::machine::loader::BootMethod::Firmware);
    let mut a = gui::VmscopeApp::new(gui::session::Session::new(image).unwrap());
    a.fixed_budget = true;
    let mut h = harness(a);
    h.run();
    h.key_press(Key::F11); // the far jump from F000:FFF0 into the ROM's copy below 1 MiB
    h.run();
    h.snapshot_options("main_window_reset_vector", &options());
}

#[test]
fn stats_tab_after_the_demo_on_bt() {
    let mut h = harness(app("demo"));
    h.state_mut().budget = 1_000;
    h.get_by_label("bt").click();
    h.run();
    h.key_press(Key::F5);
    h.step();
    run_until_paused(&mut h, 5_000);
    h.get_by_label("Stats").click();
    h.run();
    h.snapshot_options("stats_tab_bt", &options());
}

//! The window driven like a student would: keys, toolbar buttons, gutter clicks, text fields.
//! Teaches: a GUI test feeds events to the app frame by frame and checks what it then shows.

mod support;

use egui::Key;
use egui_kittest::kittest::Queryable;
use emulator::cpu::{reg, CpuMode};
use gui::session::{EventKind, StopReason};
use support::{app, harness, run_until_paused};

#[test]
fn f11_steps_and_highlights_exactly_the_registers_that_changed() {
    let mut h = harness(app("demo"));
    let entry = h.state().session.machine.cpu.rip;
    // The Multiboot entry: cli; cld; mov ebp, eax; …
    h.key_press(Key::F11);
    h.run();
    assert_eq!(h.state().session.position(), 1);
    // CLI: interrupts were already off (Multiboot), so only EIP moved.
    assert_eq!(h.state().facts.highlighted_registers, vec!["eip"]);
    h.key_press(Key::F11);
    h.key_press(Key::F11);
    h.run();
    let s = &h.state().session;
    assert_eq!(s.position(), 3);
    assert_eq!(s.machine.cpu.gpr[reg::RBP], 0x2BAD_B002, "mov ebp, eax");
    assert_eq!(h.state().facts.highlighted_registers, vec!["ebp", "eip"]);
    assert!(h.state().facts.code_current.is_some_and(|ip| ip != entry));
    // The new value is on screen, in EBP and (where the loader put it) in EAX.
    assert_eq!(h.query_all_by_label("2badb002").count(), 2);
}

#[test]
fn the_memory_view_highlights_what_a_call_pushed() {
    let mut h = harness(app("demo"));
    // Run to the first CALL (32-bit code), then step into it: it pushes a 4-byte return address.
    let s = &mut h.state_mut().session;
    while gui::disasm::decode_current(&mut s.machine)
        .is_none_or(|i| i.flow_control() != iced_x86::FlowControl::Call)
    {
        s.step_into();
    }
    h.key_press(Key::F11);
    h.run();
    assert_eq!(
        h.state().settings.memory_follow,
        "rsp",
        "the view follows the stack"
    );
    assert_eq!(
        h.state().facts.memory_written_last,
        4,
        "the pushed return address"
    );
    h.key_press(Key::F11);
    h.run();
    assert_eq!(
        h.state().facts.memory_written_last,
        0,
        "the next instruction wrote nothing there"
    );
    assert!(
        h.state().facts.memory_highlighted >= 4,
        "older writes stay highlighted, fading"
    );
}

#[test]
fn toolbar_buttons_step_and_step_back() {
    let mut h = harness(app("demo"));
    h.get_by_label("Step into").click();
    h.run();
    h.get_by_label("Step into").click();
    h.run();
    let two = h.state().session.machine.cpu.clone();
    h.get_by_label("Step into").click();
    h.run();
    assert_ne!(h.state().session.machine.cpu, two);
    h.get_by_label("Step back").click();
    h.run();
    assert_eq!(
        h.state().session.machine.cpu,
        two,
        "back to the state after two steps"
    );
    assert_eq!(h.state().session.position(), 2);
    // F7 does the same from the keyboard.
    h.key_press(Key::F7);
    h.run();
    assert_eq!(h.state().session.position(), 1);
    assert!(
        h.state()
            .facts
            .highlighted_registers
            .contains(&"eip".to_string()),
        "going back changes EIP too, and it is highlighted"
    );
}

#[test]
fn a_gutter_breakpoint_stops_the_run_there() {
    let mut h = harness(app("demo"));
    // The fourth line after RIP in the code view (clear of the memory panel's resize edge).
    let target = h.state().facts.code_lines[0].0;
    let lines = h.state().facts.code_lines.clone();
    let current = lines
        .iter()
        .position(|(ip, _)| Some(*ip) == h.state().facts.code_current)
        .unwrap();
    let (ip, text) = lines[current + 4].clone();
    assert_ne!(ip, target);
    h.get_by_label(&format!("breakpoint {ip:x}")).click();
    h.run();
    assert_eq!(
        h.state().session.breakpoints.len(),
        1,
        "the gutter click set it"
    );
    h.key_press(Key::F5);
    h.step();
    run_until_paused(&mut h, 100);
    let s = &h.state().session;
    assert_eq!(s.machine.cpu.rip, ip, "stopped at {text}");
    assert_eq!(s.last_stop, Some(StopReason::Breakpoint { linear: ip }));
    assert_eq!(s.position(), 4, "straight-line code: four instructions");
}

/// Sets a breakpoint at a symbol through the Breakpoints tab and runs to it.
fn run_to_symbol(h: &mut egui_kittest::Harness<'static, gui::VmscopeApp>, symbol: &str) {
    h.get_by_label("Breakpoints").click();
    h.run();
    h.get_by_label("break at").focus();
    h.get_by_label("break at").type_text(symbol);
    h.run();
    h.get_by_label("Add breakpoint").click();
    h.run();
    assert!(
        h.state().forms.message.is_none(),
        "breakpoint form: {:?}",
        h.state().forms.message
    );
    h.key_press(Key::F5);
    h.step();
    run_until_paused(h, 500);
    let s = &h.state().session;
    let want = s.symbols.find(symbol).unwrap();
    assert_eq!(s.machine.cpu.linear_rip(), want);
}

#[test]
fn the_page_walk_panel_shows_the_entries_of_the_guests_tables() {
    let mut h = harness(app("demo"));
    run_to_symbol(&mut h, "long_mode");
    assert_eq!(h.state().session.machine.cpu.mode(), CpuMode::Long64);
    // Explain the kernel's first byte, as typed into the panel.
    h.get_by_label("explain:").focus();
    h.get_by_label("explain:").type_text("100000");
    h.get_by_label("Explain").click();
    h.run();
    let lines = h.state().facts.walk_lines.clone();
    let text = lines.join("\n");
    let m = &mut h.state_mut().session.machine;
    let cr3 = m.cpu.cr3;
    let pml4e = m.phys_read(cr3, 8);
    let pdpte = m.phys_read(pml4e & 0xF_FFFF_F000, 8);
    let pde = m.phys_read(pdpte & 0xF_FFFF_F000, 8);
    assert!(text.contains("mode: 4-level"), "{text}");
    assert!(text.contains("1. PML4E index   0"), "{text}");
    assert!(
        text.contains(&format!("= {pml4e:#018x}")),
        "PML4E value {pml4e:#x}: {text}"
    );
    assert!(
        text.contains(&format!("= {pdpte:#018x}")),
        "PDPTE value: {text}"
    );
    assert!(text.contains("3. PDE   index   0"), "{text}");
    assert!(
        text.contains(&format!("= {pde:#018x}")),
        "PDE value: {text}"
    );
    assert!(text.contains("→ 2 MiB page at 0x0"), "a large page: {text}");
    assert!(text.contains("result: physical address 0x100000"), "{text}");

    // A user access to the supervisor-only kernel page fails the U/S rule.
    h.get_by_label("as user (CPL 3)").click();
    h.run();
    let text = h.state().facts.walk_lines.join("\n");
    assert!(
        text.contains("[FAIL] user-mode access needs U/S=1"),
        "{text}"
    );
    assert!(text.contains("#PF"), "{text}");

    // Above the mapped 4 MiB the page directory entry is empty.
    h.state_mut().forms.walk_addr = "1000000".into();
    h.get_by_label("Explain").click();
    h.run();
    let text = h.state().facts.walk_lines.join("\n");
    assert!(text.contains("3. PDE   index   8"), "{text}");
    assert!(text.contains("PDE not present"), "{text}");
}

#[test]
fn the_events_tab_counts_mode_switches_and_serial_output() {
    let mut h = harness(app("demo"));
    run_to_symbol(&mut h, "long_mode");
    h.get_by_label("Events").click();
    h.run();
    let log = &h.state().session.events;
    assert!(
        log.total(EventKind::ModeSwitch) >= 2,
        "PE → compatibility → 64-bit"
    );
    assert!(log
        .events
        .iter()
        .any(|e| e.kind == EventKind::ModeSwitch && e.detail.contains("64-bit long mode")));
    assert!(
        log.total(EventKind::PortIo) > 100,
        "the narration goes out through the UART"
    );
    h.get_by_label_contains("compatibility mode -> 64-bit long mode");
    assert!(
        h.query_all_by_label("mode switch").count() >= 1,
        "the totals list names the kinds"
    );
}

#[test]
fn the_serial_console_shows_the_whole_demo_and_accepts_typing() {
    let mut h = harness(app("demo"));
    h.state_mut().budget = 200_000;
    h.key_press(Key::F5);
    h.step();
    run_until_paused(&mut h, 2_000);
    let s = &h.state().session;
    assert!(matches!(s.last_stop, Some(StopReason::GuestEnded(_))));
    assert_eq!(s.serial, guests::by_name("demo").unwrap().expected_serial);
    h.get_by_label_contains("Hello from ring 3!");

    h.get_by_label("type:").focus();
    h.get_by_label("type:").type_text("hi");
    h.get_by_label("Send").click();
    h.run();
    let s = &h.state().session;
    assert_eq!(
        s.history.inputs.last().map(|i| i.1.clone()),
        Some(gui::session::GuestInput::Serial(b"hi\n".to_vec()))
    );
    assert_eq!(s.events.total(EventKind::SerialInput), 3);
}

#[test]
fn step_out_and_run_to_cursor_from_the_keyboard() {
    let mut h = harness(app("demo"));
    // Click a line ahead of RIP to put the cursor there, then Ctrl+F10.
    let lines = h.state().facts.code_lines.clone();
    let current = lines
        .iter()
        .position(|(ip, _)| Some(*ip) == h.state().facts.code_current)
        .unwrap();
    let (ip, text) = lines[current + 4].clone();
    h.get_by_label_contains(&text).click();
    h.run();
    assert_eq!(h.state().cursor, Some(ip));
    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::F10);
    h.step();
    run_until_paused(&mut h, 100);
    assert_eq!(h.state().session.machine.cpu.rip, ip);
    assert_eq!(h.state().session.last_stop, Some(StopReason::ReachedCursor));

    // Shift+F11 inside a function returns to its caller.
    let s = &mut h.state_mut().session;
    while gui::disasm::decode_current(&mut s.machine)
        .is_none_or(|i| i.flow_control() != iced_x86::FlowControl::Call)
    {
        s.step_into();
    }
    let ret = s.machine.cpu.rip + gui::disasm::decode_current(&mut s.machine).unwrap().len() as u64;
    let rsp = s.machine.cpu.gpr[reg::RSP];
    s.step_into();
    assert!(s.machine.cpu.gpr[reg::RSP] < rsp);
    h.key_press_modifiers(egui::Modifiers::SHIFT, Key::F11);
    h.step();
    run_until_paused(&mut h, 100);
    assert_eq!(h.state().session.machine.cpu.rip, ret);
}

#[test]
fn f1_opens_the_help_and_escape_closes_it() {
    let mut h = harness(app("demo"));
    assert!(h.query_by_label("Stepping under KVM").is_none());
    h.key_press(Key::F1);
    h.run();
    assert!(h.state().help_open);
    h.get_by_label("Stepping under KVM");
    h.get_by_label_contains("KVM_GUESTDBG_SINGLESTEP");
    h.key_press(Key::Escape);
    h.run();
    assert!(!h.state().help_open);
}

#[test]
fn switching_engines_keeps_the_guest_running_the_same_way() {
    if let Err(why) = accel_kvm::kvm_for_tests() {
        println!("skipping the KVM half of this test: {why}");
        return;
    }
    let mut h = harness(app("demo"));
    while !gui::disasm::decode_current(&mut h.state_mut().session.machine)
        .unwrap()
        .has_rep_prefix()
    {
        h.key_press(Key::F11);
        h.run();
    }
    // The next instruction is REP STOSB: how many iterations one "step" covers is up to the
    // engine (REP is interruptible), so compare where both agree — after it.
    let rep = gui::disasm::decode_current(&mut h.state_mut().session.machine).unwrap();
    assert!(rep.has_rep_prefix(), "{rep}");
    let after_rep = h.state().session.machine.cpu.rip + rep.len() as u64;
    let mut reference = gui::session::Session::builtin("demo").unwrap();
    reference.run_to(after_rep);
    assert!(reference.run_until_stopped(100_000, 100));

    h.get_by_label_contains("kvm (").click();
    h.run();
    assert_eq!(h.state().error, None);
    assert_eq!(
        h.state().session.engine_kind(),
        gui::session::EngineKind::Kvm
    );
    for _ in 0..10_000 {
        if h.state().session.machine.cpu.rip == after_rep {
            break;
        }
        h.key_press(Key::F11);
        h.step();
    }
    assert_eq!(
        h.state().session.machine.cpu.rip,
        after_rep,
        "KVM single-stepped through REP"
    );
    assert_eq!(h.state().session.machine.cpu.gpr, reference.machine.cpu.gpr);
    // Single steps under KVM execute the very instructions the interpreter would: a far jump
    // and segment loads among them.
    for _ in 0..6 {
        h.key_press(Key::F11);
        h.run();
        reference.step_into();
        let cpu = &h.state().session.machine.cpu;
        assert_eq!(cpu.rip, reference.machine.cpu.rip);
        assert_eq!(cpu.gpr, reference.machine.cpu.gpr);
        assert_eq!(cpu.seg, reference.machine.cpu.seg);
    }
    assert!(
        h.state()
            .session
            .step_back_blocker()
            .unwrap()
            .contains("KVM ran"),
        "KVM's past is not replayable"
    );
    h.get_by_label("interp").click();
    h.run();
    for _ in 0..20 {
        h.key_press(Key::F11);
        h.run();
        reference.step_into();
    }
    let cpu = &h.state().session.machine.cpu;
    assert_eq!(cpu.rip, reference.machine.cpu.rip);
    assert_eq!(cpu.gpr, reference.machine.cpu.gpr);
    assert_eq!(h.state().session.machine.stats.engine_switches, 2);
}

#[test]
fn every_built_in_guest_runs_to_its_end_with_every_panel_drawn() {
    for g in guests::all() {
        let mut h = harness(app(g.name));
        h.state_mut().budget = 100_000;
        for tab in ["Events", "Stats", "Breakpoints", "Serial console"] {
            h.get_by_label(tab).click();
            h.run();
        }
        // Step a little in every guest's first mode (real mode for the ROM), then run.
        for _ in 0..20 {
            h.key_press(Key::F11);
        }
        h.run();
        h.key_press(Key::F5);
        h.step();
        run_until_paused(&mut h, 3_000);
        let s = &h.state().session;
        assert!(
            matches!(s.last_stop, Some(StopReason::GuestEnded(_))),
            "{}: {:?}",
            g.name,
            s.last_stop
        );
        assert_eq!(s.serial, g.expected_serial, "{}", g.name);
        // Back one instruction from the very end, then through the tabs again.
        h.key_press(Key::F7);
        h.run();
        assert!(h.state().session.finished.is_none(), "{}", g.name);
        h.get_by_label("Events").click();
        h.run();
    }
}

/// eframe's storage, in memory (on the desktop it is a RON file, in a browser local storage).
#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn the_layout_and_view_settings_survive_a_restart() {
    let mut h = harness(app("demo"));
    h.get_by_label("Stats").click();
    h.get_by_label("physical").click();
    h.run();
    h.state_mut().settings.show_inspector = false;
    h.state_mut().settings.memory_follow = "rdi".into();
    let mut storage = MemoryStorage::default();
    eframe::App::save(h.state_mut(), &mut storage);
    let saved = h.state().settings.clone();
    assert_eq!(saved.bottom_tab, gui::app::BottomTab::Stats);
    assert_eq!(saved.memory_space, gui::app::Space::Physical);

    let session = gui::session::Session::builtin("demo").unwrap();
    let restored = gui::VmscopeApp::with_storage(session, Some(&storage));
    assert_eq!(restored.settings, saved);
    let h = harness(restored);
    assert!(
        h.query_by_label("Page walk").is_none(),
        "the inspector stays hidden"
    );
    h.get_by_label_contains("instructions (counted)");

    // A stored layout from an older version with missing fields still loads (serde defaults).
    let mut old = MemoryStorage::default();
    eframe::Storage::set_string(&mut old, eframe::APP_KEY, "(show_memory: false)".into());
    let session = gui::session::Session::builtin("demo").unwrap();
    let app = gui::VmscopeApp::with_storage(session, Some(&old));
    assert!(!app.settings.show_memory);
    assert!(app.settings.show_registers);
}

/// bt from the toolbar: F11 steps one instruction (through the interpreter path), F5 runs
/// translated blocks to the end, the Stats tab shows the translator, F7 steps back on bt, and
/// the interp button moves the guest back — all without KVM.
#[test]
fn bt_runs_steps_steps_back_and_switches_from_the_toolbar() {
    use gui::session::EngineKind;
    let mut h = harness(app("demo"));
    h.get_by_label("bt").click();
    h.run();
    assert_eq!(h.state().error, None);
    assert_eq!(h.state().session.engine_kind(), EngineKind::Bt);
    h.get_by_label_contains("bt (software, translated blocks)");

    h.key_press(Key::F11);
    h.run();
    assert_eq!(h.state().session.position(), 1);
    assert_eq!(h.state().facts.highlighted_registers, vec!["eip"], "CLI");

    h.key_press(Key::F5);
    h.step();
    run_until_paused(&mut h, 500);
    let s = &h.state().session;
    assert!(s.finished.is_some(), "{:?}", s.last_stop);
    assert_eq!(s.serial, guests::by_name("demo").unwrap().expected_serial);
    assert!(s.translator().unwrap().stats().blocks_executed > 0);
    let end = s.position();

    h.get_by_label("Stats").click();
    h.run();
    h.get_by_label_contains("translation cache:");

    h.key_press(Key::F7);
    h.run();
    let s = &h.state().session;
    assert_eq!(s.position(), end - 1, "{:?}", s.notice);
    assert_eq!(s.engine_kind(), EngineKind::Bt);
    assert!(s.finished.is_none(), "stepped back before the end");

    h.get_by_label("interp").click();
    h.run();
    assert_eq!(h.state().session.engine_kind(), EngineKind::Interp);
    h.key_press(Key::F5);
    h.step();
    run_until_paused(&mut h, 100);
    let s = &h.state().session;
    assert_eq!(s.position(), end);
    assert!(s.finished.is_some(), "the guest ends again, on interp");
    assert_eq!(s.serial, guests::by_name("demo").unwrap().expected_serial);
    // The rewound machine's counters are the replay's; the switch to interp after it counts.
    assert_eq!(s.machine.stats.engine_switches, 1);
}

#[test]
fn the_help_explains_bt_stepping() {
    let mut h = harness(app("demo"));
    h.key_press(Key::F1);
    h.run();
    h.get_by_label_contains("A single step (F11) on bt");
}

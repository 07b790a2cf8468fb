//! The debugger model without a screen: breakpoints, watchpoints, stepping verbs, step back.
//! Teaches: each debugger promise ("stop when…", "go back exactly") checked against a real guest.

mod support;

use emulator::cpu::{reg, CpuMode, CpuState};
use gui::session::{Breakpoint, EventKind, GuestImage, MemAccess, Session, StopReason, Watchpoint};
use iced_x86::FlowControl;

#[test]
fn conditional_breakpoint_stops_only_when_the_expression_holds() {
    // Real mode at 0x7C00: loop: inc cx; jmp loop
    let mut s = support::flat(&[0x41, 0xEB, 0xFD]);
    s.breakpoints
        .push(Breakpoint::with_condition(0x7C00, "cx == 5").unwrap());
    s.run();
    assert!(s.run_until_stopped(1_000, 100));
    assert_eq!(s.last_stop, Some(StopReason::Breakpoint { linear: 0x7C00 }));
    assert_eq!(s.machine.cpu.gpr[reg::RCX] & 0xFFFF, 5);
    assert_eq!(s.breakpoints[0].hits, 1);

    s.breakpoints[0]
        .set_condition("cx >= 9 && zf == 0")
        .unwrap();
    s.run();
    assert!(s.run_until_stopped(1_000, 100));
    assert_eq!(s.machine.cpu.gpr[reg::RCX] & 0xFFFF, 9);

    s.breakpoints[0].enabled = false;
    s.run();
    assert!(
        !s.run_until_stopped(1_000, 5),
        "a disabled breakpoint never stops the run"
    );
    s.pause();
    assert_eq!(s.last_stop, Some(StopReason::Paused));
}

/// inc ax; mov [0x600], ax; mov bx, [0x700]; jmp back
const MEMORY_LOOP: [u8; 10] = [0x40, 0xA3, 0x00, 0x06, 0x8B, 0x1E, 0x00, 0x07, 0xEB, 0xF6];

#[test]
fn watchpoints_stop_after_the_access_they_watch() {
    let mut s = support::flat(&MEMORY_LOOP);
    s.watchpoints
        .push(Watchpoint::new(0x601, 1, MemAccess::Write));
    s.run();
    assert!(s.run_until_stopped(1_000, 10));
    assert_eq!(
        s.last_stop,
        Some(StopReason::Watchpoint {
            linear: 0x600,
            size: 2,
            write: true,
            by_rip: 0x7C01
        })
    );
    assert_eq!(s.machine.cpu.rip, 0x7C04, "stopped after the store");
    assert_eq!(s.machine.phys_read(0x600, 2), 1);

    s.watchpoints.clear();
    s.watchpoints
        .push(Watchpoint::new(0x700, 2, MemAccess::Read));
    s.run();
    assert!(s.run_until_stopped(1_000, 10));
    assert_eq!(s.machine.cpu.rip, 0x7C08, "stopped after the load");

    s.watchpoints.clear();
    s.watchpoints
        .push(Watchpoint::new(0x600, 2, MemAccess::Read));
    s.run();
    assert!(
        !s.run_until_stopped(1_000, 5),
        "nothing reads 0x600, so a read watch there never fires"
    );
    s.pause();
}

#[test]
fn break_on_io_port_and_mode_switch() {
    let mut s = Session::builtin("demo").unwrap();
    s.break_on.io_ports = vec![0x3F8];
    s.run();
    assert!(s.run_until_stopped(10_000, 100));
    assert_eq!(s.last_stop, Some(StopReason::IoPort(0x3F8)));
    assert!(s.machine.bus.stats.by_port.contains_key(&0x3F8));

    s.break_on.io_ports.clear();
    s.break_on.mode_switch = true;
    s.run();
    assert!(s.run_until_stopped(10_000, 100));
    assert_eq!(
        s.machine.cpu.mode(),
        CpuMode::Compatibility,
        "CR0.PG with EFER.LME"
    );
    assert!(matches!(&s.last_stop, Some(StopReason::ModeSwitch(m)) if m.contains("compatibility")));
    s.run();
    assert!(s.run_until_stopped(10_000, 100));
    assert_eq!(
        s.machine.cpu.mode(),
        CpuMode::Long64,
        "the far jump to a 64-bit CS"
    );
    assert!(s.events.total(EventKind::ModeSwitch) >= 2);
    assert!(s.events.total(EventKind::PortIo) > 0);
}

/// Steps until the next instruction is a CALL; returns (its address, its length).
fn step_to_next_call(s: &mut Session) -> (u64, u64) {
    for _ in 0..20_000 {
        let ins = gui::disasm::decode_current(&mut s.machine).expect("decodable code");
        if ins.flow_control() == FlowControl::Call {
            return (s.machine.cpu.rip, ins.len() as u64);
        }
        s.step_into();
    }
    panic!("no CALL within 20000 instructions");
}

#[test]
fn step_over_runs_a_whole_call_and_step_out_returns_to_the_caller() {
    let mut s = Session::builtin("demo").unwrap();
    let (at, len) = step_to_next_call(&mut s);
    let before = s.position();
    s.step_over();
    assert!(s.run_until_stopped(10_000, 100));
    assert_eq!(s.last_stop, Some(StopReason::SteppedOver));
    assert_eq!(s.machine.cpu.rip, at + len);
    assert!(s.position() > before + 1, "the callee ran too");

    let (at, len) = step_to_next_call(&mut s);
    s.step_into();
    assert_ne!(s.machine.cpu.rip, at + len, "inside the callee");
    s.step_out();
    assert!(s.run_until_stopped(10_000, 100));
    assert_eq!(s.last_stop, Some(StopReason::SteppedOut));
    assert_eq!(s.machine.cpu.rip, at + len, "back after the CALL");
}

/// Everything a rewind must restore: CPU, every byte of RAM, the console.
#[derive(Debug, PartialEq)]
struct Fingerprint {
    position: u64,
    cpu: CpuState,
    ram: u64,
    serial: String,
}

fn fingerprint(s: &Session) -> Fingerprint {
    let mut buf = vec![0u8; s.machine.ram.size() as usize];
    s.machine.ram.read(0, &mut buf).unwrap();
    let ram = buf.chunks_exact(8).fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
        (h ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(0x0100_0000_01b3)
    });
    Fingerprint {
        position: s.position(),
        cpu: s.machine.cpu.clone(),
        ram,
        serial: s.serial.clone(),
    }
}

/// Advances a running-capable session by exactly `n` instructions.
fn advance(s: &mut Session, n: u64) {
    let target = s.position() + n;
    s.run();
    while s.position() < target && s.is_running() {
        s.tick(target - s.position());
    }
    s.pause();
    assert_eq!(s.position(), target);
}

#[test]
fn step_back_restores_the_previous_state_exactly() {
    let mut image = GuestImage::builtin("demo").unwrap();
    image.memory = 16 << 20;
    let mut s = Session::new(image).unwrap();
    // Positions across the whole demo: 32-bit setup, serial output, long mode, timer
    // interrupts (device state!) and ring 3.
    let mut marks = vec![fingerprint(&s)];
    for n in [1, 2, 40, 700, 2_000, 5_000, 9_000, 12_500] {
        let pos = s.position();
        advance(&mut s, n - pos);
        marks.push(fingerprint(&s));
    }
    assert!(
        s.events.total(EventKind::Interrupt) > 0,
        "timer interrupts happened, so the replay reproduced the PIT and PIC too"
    );
    // One more single step, then back.
    let last = fingerprint(&s);
    s.step_into();
    assert_ne!(fingerprint(&s), last);
    s.step_back(1).unwrap();
    assert_eq!(fingerprint(&s), last, "one step back");
    assert_eq!(s.last_stop, Some(StopReason::Rewound { to: last.position }));
    assert!(
        s.notice.is_none(),
        "the replay matched the recorded CPU: {:?}",
        s.notice
    );

    // Rewind to every mark, out of order.
    for i in [3, 0, 8, 5, 1, 7, 2, 6, 4] {
        s.rewind_to(marks[i].position).unwrap();
        assert_eq!(fingerprint(&s), marks[i], "rewound to mark {i}");
    }
    assert!(marks.last().unwrap().serial.len() > marks[4].serial.len());
}

#[test]
fn typed_input_is_replayed_at_the_instruction_it_was_typed_at() {
    let mut s = Session::builtin("demo").unwrap();
    advance(&mut s, 500);
    s.send_serial_input(b"x");
    advance(&mut s, 500);
    let after = fingerprint(&s);
    s.step_back(300).unwrap();
    assert_eq!(
        s.history.inputs.len(),
        1,
        "the input at 500 is still in the past"
    );
    s.rewind_to(1_000).unwrap();
    assert_eq!(fingerprint(&s), after);
    s.rewind_to(100).unwrap();
    assert!(
        s.history.inputs.is_empty(),
        "rewinding before the input forgets it"
    );
}

#[test]
fn an_nmi_from_the_gui_reaches_the_guest_and_step_back_replays_it() {
    // nmi:1 installs the kernel's NMI handler and programs LINT1 for NMIs; dirty:40 then
    // waits on the timer for 40 ticks, long enough to press the button.
    let mut image = GuestImage::builtin("kernel").unwrap();
    image.cmdline = "workloads=nmi:1,dirty:40".into();
    let mut s = Session::new(image).unwrap();
    while !s.serial.contains("dirty: tick 1") {
        advance(&mut s, 5_000);
    }
    let nmis = |s: &Session| s.machine.stats.exceptions.get("NMI").copied().unwrap_or(0);
    let before = nmis(&s);
    let pressed_at = s.position();
    s.send_nmi();
    advance(&mut s, 2_000);
    assert_eq!(nmis(&s), before + 1, "the guest took the NMI");
    let after = fingerprint(&s);
    s.step_back(1_500).unwrap();
    assert_eq!(s.history.inputs.len(), 1, "the NMI is still in the past");
    s.rewind_to(after.position).unwrap();
    assert_eq!(
        fingerprint(&s),
        after,
        "the replay pulsed the NMI line again"
    );
    s.rewind_to(pressed_at - 1).unwrap();
    assert!(
        s.history.inputs.is_empty(),
        "rewinding before the press forgets it"
    );
}

#[test]
fn the_guest_ending_is_a_stop_and_step_back_undoes_it() {
    let mut s = Session::builtin("hello32").unwrap();
    s.run();
    assert!(s.run_until_stopped(100_000, 1_000));
    assert!(matches!(s.last_stop, Some(StopReason::GuestEnded(_))));
    assert!(s.finished.is_some());
    assert_eq!(
        s.serial,
        guests::by_name("hello32").unwrap().expected_serial
    );
    let end = s.position();
    s.step_into();
    assert_eq!(s.position(), end, "an ended guest does not step");
    assert!(s.notice.as_deref().unwrap_or("").contains("ended"));
    s.step_back(1).unwrap();
    assert!(s.finished.is_none());
    s.step_into();
    assert!(s.finished.is_some(), "the last instruction ends it again");
    assert_eq!(s.position(), end);
}

#[test]
fn a_breakpoint_on_an_interrupt_handler_stops_when_the_interrupt_arrives() {
    let mut s = Session::builtin("demo").unwrap();
    let handler = s.symbols.find("timer_handler").unwrap();
    s.toggle_breakpoint(handler);
    s.run();
    assert!(s.run_until_stopped(10_000, 1_000));
    assert_eq!(
        s.last_stop,
        Some(StopReason::BreakpointAtHandlerEntry { linear: handler })
    );
    // timer_handler starts with PUSH RAX (one byte), which ran with the delivery.
    assert_eq!(s.machine.cpu.linear_rip(), handler + 1);
    assert_eq!(
        s.events.total(EventKind::Interrupt),
        1,
        "the first timer tick"
    );
    s.run();
    assert!(s.run_until_stopped(10_000, 1_000));
    assert_eq!(
        s.events.total(EventKind::Interrupt),
        2,
        "and again at the next one"
    );
}

#[test]
fn step_over_steps_over_a_hardware_interrupt_handler() {
    let mut s = Session::builtin("demo").unwrap();
    let wait = s.symbols.find("wait_for_ticks").unwrap();
    let handler = s.symbols.find("timer_handler").unwrap();
    s.run_to(wait);
    assert!(s.run_until_stopped(10_000, 100));
    let mut saw_interrupt = false;
    for _ in 0..50 {
        let before = s.events.total(EventKind::Interrupt);
        s.step_over();
        assert!(s.run_until_stopped(10_000, 100));
        let rip = s.machine.cpu.linear_rip();
        assert!(
            !(handler..handler + 0x40).contains(&rip),
            "F10 never stops inside the timer handler (at {rip:#x})"
        );
        if s.events.total(EventKind::Interrupt) > before {
            saw_interrupt = true;
            assert_eq!(s.last_stop, Some(StopReason::SteppedOver));
            break;
        }
    }
    assert!(
        saw_interrupt,
        "a timer interrupt arrived while stepping the wait loop"
    );
}

#[test]
fn under_kvm_the_demo_runs_freely_and_break_on_kvm_exit_stops_at_io() {
    if let Err(why) = accel_kvm::kvm_for_tests() {
        println!("skipping: KVM is not usable here: {why}");
        return;
    }
    let mut s = Session::builtin("demo").unwrap();
    s.switch_engine(gui::session::EngineKind::Kvm).unwrap();
    s.break_on.kvm_exit = true;
    s.run();
    assert!(s.run_until_stopped(1_000, 100));
    assert!(
        matches!(&s.last_stop, Some(StopReason::KvmExit(e)) if e.contains("io")),
        "{:?}",
        s.last_stop
    );
    assert!(s.events.total(EventKind::KvmExit) >= 1);
    let ins = s
        .machine
        .bus
        .stats
        .by_port
        .values()
        .map(|(r, w)| r + w)
        .sum::<u64>();
    assert!(ins >= 1, "the exit was a port access");

    // Without conditions KVM runs in slices to the end, and prints what the interpreter prints.
    s.break_on.kvm_exit = false;
    s.run();
    assert!(s.run_until_stopped(1_000, 10_000));
    assert!(
        matches!(s.last_stop, Some(StopReason::GuestEnded(_))),
        "{:?}",
        s.last_stop
    );
    assert_eq!(s.serial, guests::by_name("demo").unwrap().expected_serial);
    assert!(s.step_back_blocker().is_some());
}

/// The same guest run to its end on `bt` from the first instruction, and on the interpreter.
fn demo_to_the_end(engine: gui::session::EngineKind) -> Session {
    let mut s = Session::builtin("demo").unwrap();
    s.switch_engine(engine).unwrap();
    s.run();
    assert!(s.run_until_stopped(20_000, 10_000));
    assert!(
        matches!(s.last_stop, Some(StopReason::GuestEnded(_))),
        "{:?}",
        s.last_stop
    );
    s
}

/// bt runs translated blocks in the free run, and ends exactly where the interpreter ends:
/// same output, same instruction count, same CPU — so the debugger's step back (a replay on
/// the interpreter) works after bt ran, and the session stays on bt.
#[test]
fn bt_runs_the_demo_like_the_interpreter_and_steps_back() {
    use gui::session::EngineKind;
    let reference = demo_to_the_end(EngineKind::Interp);
    let mut s = demo_to_the_end(EngineKind::Bt);
    assert_eq!(s.engine_kind(), EngineKind::Bt);
    assert!(s.engine_description().starts_with("bt"));
    assert_eq!(s.serial, guests::by_name("demo").unwrap().expected_serial);
    assert_eq!(s.position(), reference.position());
    assert_eq!(s.machine.cpu, reference.machine.cpu);
    let t = s.translator().expect("bt is active");
    assert!(
        t.stats().blocks_executed > 100,
        "the run went through translated blocks: {:?}",
        t.stats()
    );
    assert!(s.engine_report().unwrap().contains("translation cache"));
    assert!(s.step_back_blocker().is_none(), "bt's past is replayable");

    let end = s.position();
    s.step_back(1_000).unwrap();
    assert_eq!(s.position(), end - 1_000);
    assert_eq!(s.engine_kind(), EngineKind::Bt, "a rewind keeps the engine");
    assert!(s.notice.is_none(), "{:?}", s.notice);
    let mut replay = Session::builtin("demo").unwrap();
    advance(&mut replay, end - 1_000);
    assert_eq!(s.machine.cpu, replay.machine.cpu);
    assert_eq!(s.serial, replay.serial);
    // …and runs on to the same end on a fresh translator.
    s.run();
    assert!(s.run_until_stopped(20_000, 10_000));
    assert_eq!(s.machine.cpu, reference.machine.cpu);
    assert_eq!(s.serial, reference.serial);
}

/// F11 on bt is one instruction through the interpreter path: the same states, one by one,
/// as on interp — including where bt would otherwise run a whole block.
#[test]
fn bt_single_steps_exactly_like_the_interpreter() {
    use gui::session::EngineKind;
    let mut s = Session::builtin("demo").unwrap();
    let mut reference = Session::builtin("demo").unwrap();
    advance(&mut s, 5_000);
    advance(&mut reference, 5_000);
    s.switch_engine(EngineKind::Bt).unwrap();
    for i in 0..300 {
        s.step_into();
        reference.step_into();
        assert_eq!(s.position(), reference.position(), "step {i}");
        assert_eq!(s.machine.cpu, reference.machine.cpu, "step {i}");
    }
    // The memory view highlights the same writes: bt records its writes too.
    let rsp = s.machine.cpu.gpr[4];
    let mut highlighted = 0;
    for p in rsp.saturating_sub(512)..rsp + 512 {
        let (a, b) = (
            s.recent_writes.last_write(p),
            reference.recent_writes.last_write(p),
        );
        assert_eq!(a, b, "last write to {p:#x}");
        highlighted += a.is_some() as u32;
    }
    assert!(
        highlighted > 0,
        "no stack write highlighted around {rsp:#x}"
    );
    // A breakpoint on bt stops where it stops on interp (checked between single steps).
    let at = s.symbols.find("long_mode").unwrap();
    let mut fresh = Session::builtin("demo").unwrap();
    fresh.switch_engine(EngineKind::Bt).unwrap();
    fresh.toggle_breakpoint(at);
    fresh.run();
    assert!(fresh.run_until_stopped(10_000, 100));
    assert_eq!(fresh.last_stop, Some(StopReason::Breakpoint { linear: at }));
    assert_eq!(fresh.machine.cpu.linear_rip(), at);
}

/// interp → bt → interp → bt in the middle of the demo: the guest does not notice, and every
/// switch to bt starts an empty translation cache.
#[test]
fn switching_between_interp_and_bt_mid_run_keeps_the_guest_state() {
    use gui::session::EngineKind;
    let reference = demo_to_the_end(EngineKind::Interp);
    let mut s = Session::builtin("demo").unwrap();
    for (i, engine) in [EngineKind::Bt, EngineKind::Interp, EngineKind::Bt]
        .into_iter()
        .enumerate()
    {
        advance(&mut s, 3_000);
        s.switch_engine(engine).unwrap();
        assert_eq!(s.engine_kind(), engine);
        if engine == EngineKind::Bt {
            assert_eq!(
                s.translator().unwrap().stats().blocks_translated,
                0,
                "switch {i}: a fresh translator"
            );
        } else {
            assert!(s.translator().is_none());
        }
    }
    s.run();
    assert!(s.run_until_stopped(20_000, 10_000));
    assert_eq!(s.machine.stats.engine_switches, 3);
    assert_eq!(s.serial, reference.serial);
    assert_eq!(s.position(), reference.position());
    assert_eq!(s.machine.cpu, reference.machine.cpu);
}

/// Memory changed while bt was not running (by a debugger here; by KVM or the interpreter in
/// a real switch) must not leave stale translations behind: the switch back to bt starts
/// afresh, so the new code runs.
#[test]
fn a_switch_to_bt_forgets_translations_of_code_changed_meanwhile() {
    use gui::session::EngineKind;
    // Real mode at 0x7C00: loop: inc ax; jmp loop
    let mut s = support::flat(&[0x40, 0xEB, 0xFD]);
    s.switch_engine(EngineKind::Bt).unwrap();
    advance(&mut s, 1_000);
    assert_eq!(s.machine.cpu.gpr[reg::RAX] & 0xFFFF, 500);
    s.switch_engine(EngineKind::Interp).unwrap();
    s.machine.phys_write(0x7C00, 1, 0x43); // inc bx
    s.switch_engine(EngineKind::Bt).unwrap();
    advance(&mut s, 1_000);
    assert_eq!(
        s.machine.cpu.gpr[reg::RAX] & 0xFFFF,
        500,
        "ax no longer counts"
    );
    assert_eq!(
        s.machine.cpu.gpr[reg::RBX] & 0xFFFF,
        500,
        "the new inc bx ran"
    );
    assert!(s.translator().unwrap().stats().blocks_executed > 0);
}

/// The page-walk panel explains with the running engine's MMU; on bt that is the translator's.
#[test]
fn page_walks_on_bt_read_the_same_tables() {
    use emulator::mmu::Access;
    use gui::session::EngineKind;
    let mut s = Session::builtin("demo").unwrap();
    let mut reference = Session::builtin("demo").unwrap();
    s.switch_engine(EngineKind::Bt).unwrap();
    advance(&mut s, 5_000);
    advance(&mut reference, 5_000);
    let a = s.explain(0x20_0010, Access::write(true));
    let b = reference.explain(0x20_0010, Access::write(true));
    assert_eq!(a.to_string(), b.to_string());
    assert!(
        !s.mmu().spaces().is_empty(),
        "the translator's shadow MMU is in use"
    );
}

/// bt → kvm → bt: KVM continues from the translator's state, and the translator made for the
/// way back starts empty (KVM wrote RAM it never saw). The guest prints what it always prints.
#[test]
fn bt_to_kvm_and_back_keeps_the_guest_running() {
    use gui::session::EngineKind;
    if let Err(why) = accel_kvm::kvm_for_tests() {
        println!("skipping: KVM is not usable here: {why}");
        return;
    }
    let mut s = Session::builtin("demo").unwrap();
    s.switch_engine(EngineKind::Bt).unwrap();
    advance(&mut s, 5_000);
    s.switch_engine(EngineKind::Kvm).unwrap();
    assert!(s.translator().is_none());
    for _ in 0..50 {
        s.step_into();
    }
    assert!(
        s.last_stop.is_some() && s.finished.is_none(),
        "{:?}",
        s.last_stop
    );
    s.switch_engine(EngineKind::Bt).unwrap();
    assert_eq!(s.translator().unwrap().stats().blocks_translated, 0);
    s.run();
    assert!(s.run_until_stopped(20_000, 10_000));
    assert!(
        matches!(s.last_stop, Some(StopReason::GuestEnded(_))),
        "{:?}",
        s.last_stop
    );
    assert_eq!(s.serial, guests::by_name("demo").unwrap().expected_serial);
    assert!(s.translator().unwrap().stats().blocks_executed > 0);
    assert!(
        s.step_back_blocker().unwrap().contains("KVM ran"),
        "KVM's past is not replayable, even back on bt"
    );
    assert_eq!(s.machine.stats.engine_switches, 3);
}

/// `vmscope-gui … --engine kvm --steps N` (and `--break`) goes there on KVM: the steps used to
/// run on the interpreter, with KVM switched in afterwards.
#[test]
fn a_start_on_kvm_takes_its_steps_and_runs_to_its_breakpoint_on_kvm() {
    use emulator::machine::loader::BootMethod;
    use gui::session::EngineKind;
    use gui::start::StartOptions;
    if let Err(why) = accel_kvm::kvm_for_tests() {
        println!("skipping: KVM is not usable here: {why}");
        return;
    }
    let start = |engine, steps, break_at: Option<&str>| {
        let o = StartOptions {
            guest: Some("hello64".into()),
            engine,
            boot: BootMethod::Direct,
            steps,
            break_at: break_at.map(str::to_string),
            ..StartOptions::default()
        };
        o.session(o.builtin_image().unwrap()).unwrap()
    };
    let kvm = start(EngineKind::Kvm, 200, None);
    assert_eq!(kvm.engine_kind(), EngineKind::Kvm);
    assert!(kvm.history.kvm_ran, "the steps ran on KVM");
    assert_eq!(kvm.position(), 200);
    // The same 200 single steps on KVM by hand. (The interpreter would be elsewhere: hello64's
    // `rep stosb` counts once per 4,096 bytes there and once on KVM.)
    let mut by_hand = Session::new(
        GuestImage::builtin("hello64")
            .unwrap()
            .with_boot(BootMethod::Direct),
    )
    .unwrap();
    by_hand.switch_engine(EngineKind::Kvm).unwrap();
    for _ in 0..200 {
        by_hand.step_into();
    }
    assert_eq!(kvm.machine.cpu.rip, by_hand.machine.cpu.rip);
    assert_eq!(kvm.machine.cpu.gpr, by_hand.machine.cpu.gpr);

    let kvm = start(EngineKind::Kvm, 0, Some("long_mode"));
    let target = kvm.symbols.find("long_mode").unwrap();
    assert!(kvm.history.kvm_ran, "the run to the breakpoint was KVM's");
    assert_eq!(kvm.machine.cpu.linear_rip(), target);
    assert_eq!(
        kvm.last_stop,
        Some(StopReason::Breakpoint { linear: target })
    );
}

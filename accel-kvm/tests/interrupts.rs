//! Interrupts under KVM: the machine's own PIT and PIC, injected from user space.
//! Teaches: with no in-kernel irqchip, the VMM decides when to inject (interrupt window, HLT wakeups, kicks).

mod common;

use common::*;
use emulator::cpu::state::reg;
use emulator::{Engine, Exit, RunLimit};

/// A guest that remaps the PIC to 0x20, starts PIT channel 0 at ~1 kHz, and counts timer
/// interrupts in EBX; each one prints '*'. After three it exits with value EBX.
/// `idle` is the code of the waiting loop body: HLT, or nothing (a pure spin, no exits at all).
///
/// The handler drops its interrupt frame by hand and jumps back to the loop instead of using
/// IRETD: PVM interprets guest ring-0 code with KVM's instruction emulator, which cannot
/// execute a protected-mode IRET (see `probes.rs`).
fn timer_guest(idle: &[u8]) -> Asm {
    let mut a = Asm::new(CODE);
    a.label("handler")
        .b(&[0x83, 0xC4, 0x0C]) // add esp, 12: discard EIP, CS, EFLAGS
        .mov_al(b'*')
        .out_al(0xE9)
        .b(&[0x43]) // inc ebx
        .mov_al(0x20)
        .out_al(0x20) // EOI to the master PIC
        .b(&[0xFB]) // sti
        .j8(0xEB, "wait")
        .label("unexpected")
        .mov_al(0xEE)
        .out_al(0xF4)
        .label("start")
        .b(&[0x31, 0xDB]) // xor ebx, ebx
        // ICW1..ICW4: edge, cascade, vectors 0x20 / 0x28, 8086 mode; mask all but IRQ 0.
        .mov_al(0x11)
        .out_al(0x20)
        .mov_al(0x20)
        .out_al(0x21)
        .mov_al(0x04)
        .out_al(0x21)
        .mov_al(0x01)
        .out_al(0x21)
        .mov_al(0xFE)
        .out_al(0x21)
        // PIT channel 0, lobyte/hibyte, mode 2, divisor 1193 (≈ 1 ms).
        .mov_al(0x34)
        .out_al(0x43)
        .mov_al((1193 & 0xFF) as u8)
        .out_al(0x40)
        .mov_al((1193 >> 8) as u8)
        .out_al(0x40)
        .b(&[0xFB]) // sti
        .label("wait")
        .b(&[0x83, 0xFB, 0x03]) // cmp ebx, 3
        .j8(0x73, "done") // jae done
        .b(idle)
        .j8(0xEB, "wait")
        .label("done")
        .b(&[0xFA]) // cli
        .b(&[0x88, 0xD8]) // mov al, bl
        .out_al(0xF4);
    a
}

fn run_timer_guest(idle: &[u8]) -> emulator::Machine {
    let mut a = timer_guest(idle);
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, a.addr("start"));
    write_idt32(&mut m, a.addr("unexpected"), &[(0x20, a.addr("handler"))]);
    let mut kvm = engine(&m);
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 3,
            status: 7
        },
        "console: {:?}",
        String::from_utf8_lossy(&m.bus.take_console_output())
    );
    assert_eq!(m.bus.take_console_output(), b"***");
    assert!(
        m.stats.interrupts >= 3,
        "interrupts: {}",
        m.stats.interrupts
    );
    assert!(
        m.bus.now_ns() >= 2_000_000,
        "three 1 ms ticks take at least 2 ms of virtual time"
    );
    m
}

#[test]
fn pit_interrupts_wake_a_halted_guest() {
    if !kvm_or_skip("pit_interrupts_wake_a_halted_guest") {
        return;
    }
    let m = run_timer_guest(&[0xF4]); // hlt
    eprintln!(
        "hlt: exits {:?}, interrupts {}, KVM_RUNs {}, virtual ns {}",
        m.stats.exits,
        m.stats.interrupts,
        m.stats.uncounted_runs,
        m.bus.now_ns()
    );
    assert!(m.stats.exits["hlt"] >= 3, "exits: {:?}", m.stats.exits);
}

#[test]
fn kicks_deliver_timer_interrupts_to_a_spinning_guest() {
    if !kvm_or_skip("kicks_deliver_timer_interrupts_to_a_spinning_guest") {
        return;
    }
    let m = run_timer_guest(&[0x90]); // nop: the loop never exits to the VMM on its own
    eprintln!(
        "spin: exits {:?}, interrupts {}, KVM_RUNs {}, virtual ns {}",
        m.stats.exits,
        m.stats.interrupts,
        m.stats.uncounted_runs,
        m.bus.now_ns()
    );
    assert!(!m.stats.exits.contains_key("hlt"));
    assert!(
        m.stats.exits.get("intr").copied().unwrap_or(0)
            + m.stats.exits.get("irq-window").copied().unwrap_or(0)
            >= 1,
        "a kick or interrupt window was needed: {:?}",
        m.stats.exits
    );
}

#[test]
fn an_irq_raised_on_the_bus_reaches_the_guest() {
    if !kvm_or_skip("an_irq_raised_on_the_bus_reaches_the_guest") {
        return;
    }
    // The guest only unmasks IRQ 1 (vector 0x09 with the BIOS's PIC setup is taken by the
    // CPU's exception range in protected mode, so it remaps first), then halts with IF = 1.
    let mut a = Asm::new(CODE);
    a.label("handler")
        .mov_al(b'K')
        .out_al(0xE9)
        .mov_al(0x20)
        .out_al(0x20)
        .mov_al(0x42)
        .out_al(0xF4)
        .label("unexpected")
        .mov_al(0xEE)
        .out_al(0xF4)
        .label("start")
        .mov_al(0x11)
        .out_al(0x20)
        .mov_al(0x20)
        .out_al(0x21)
        .mov_al(0x04)
        .out_al(0x21)
        .mov_al(0x01)
        .out_al(0x21)
        .mov_al(0xFD)
        .out_al(0x21)
        .b(&[0xFB]) // sti
        .label("halt")
        .b(&[0xF4]) // hlt
        .j8(0xEB, "halt");
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, a.addr("start"));
    write_idt32(&mut m, a.addr("unexpected"), &[(0x21, a.addr("handler"))]);
    let mut kvm = engine(&m);
    // Nothing can wake the CPU yet: no interrupt pending, no device deadline.
    let first = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    assert_eq!(first, Exit::Shutdown);
    assert!(m.cpu.events.halted);
    assert_eq!(m.cpu.rip, a.addr("halt") + 1);
    // The "keyboard" fires; the halted CPU must take vector 0x21 on the next run.
    m.bus.pic.raise_irq(1);
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x42,
            status: 0x85
        }
    );
    assert_eq!(m.bus.take_console_output(), b"K");
    assert_eq!(m.stats.interrupts, 1);
    assert!(!m.cpu.events.halted);
    // The handler's frame is on the stack: EIP of the instruction after HLT.
    assert_eq!(
        m.ram.read_le(m.cpu.gpr[reg::RSP], 4).unwrap(),
        a.addr("halt") + 1
    );
}

/// As after an engine switch: the PIC and PIT were programmed before KVM took over, and the guest
/// spins from its first instruction without a single exit. Only the kick can deliver the tick.
#[test]
fn a_timer_armed_before_the_run_interrupts_a_guest_that_never_exits() {
    if !kvm_or_skip("a_timer_armed_before_the_run_interrupts_a_guest_that_never_exits") {
        return;
    }
    let mut a = Asm::new(CODE);
    a.label("handler")
        .mov_al(0x21)
        .out_al(0xF4)
        .label("unexpected")
        .mov_al(0xEE)
        .out_al(0xF4)
        .label("start")
        .b(&[0xFB]) // sti
        .imm32(&[0xB9], 2_000_000) // mov ecx, 2000000
        .label("spin")
        .b(&[0x49]) // dec ecx
        .j8(0x75, "spin") // jnz spin
        .mov_al(0x0F) // the timer never came
        .out_al(0xF4);
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, a.addr("start"));
    write_idt32(&mut m, a.addr("unexpected"), &[(0x20, a.addr("handler"))]);
    for (port, value) in [
        (0x20, 0x11),
        (0x21, 0x20),
        (0x21, 0x04),
        (0x21, 0x01),
        (0x21, 0xFE),
    ] {
        m.bus.io_out(port, 1, value); // PIC: vectors 0x20.., only IRQ 0 unmasked
    }
    for (port, value) in [(0x43, 0x34), (0x40, 100), (0x40, 0)] {
        m.bus.io_out(port, 1, value); // PIT channel 0, mode 2, ≈ 84 µs period
    }
    assert!(m.bus.next_deadline().is_some());
    let mut kvm = engine(&m);
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x21,
            status: 0x43
        },
        "exits: {:?}",
        m.stats.exits
    );
    assert_eq!(m.stats.interrupts, 1);
}

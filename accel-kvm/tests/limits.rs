//! Run limits under KVM: stop after N port accesses, or after N instructions by single-stepping.
//! Teaches: an I/O exit leaves its instruction unfinished; the engine completes it before returning.

mod common;

use common::*;
use emulator::cpu::state::reg;
use emulator::{Engine, Exit, RunLimit};

/// Five port accesses: OUT 'a', OUT 'b', IN from an unassigned port, OUT 'c', OUT 'd', then exit.
fn io_guest() -> Asm {
    let mut a = Asm::new(CODE);
    a.b(&[0x31, 0xC0]) // xor eax, eax
        .mov_al(b'a')
        .out_al(0xE9)
        .label("after1")
        .mov_al(b'b')
        .out_al(0xE9)
        .label("after2")
        .b(&[0xE4, 0x99]) // in al, 0x99 (nothing there: reads 0xFF)
        .label("after3")
        .mov_al(b'c')
        .out_al(0xE9)
        .label("after4")
        .mov_al(b'd')
        .out_al(0xE9)
        .mov_al(0)
        .out_al(0xF4)
        .b(&[0xF4]);
    a
}

#[test]
fn io_limit_stops_after_exactly_n_accesses_past_the_instruction() {
    if !kvm_or_skip("io_limit_stops_after_exactly_n_accesses_past_the_instruction") {
        return;
    }
    let mut a = io_guest();
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    let mut kvm = engine(&m);

    let exit = kvm.run(&mut m, RunLimit::io_accesses(2)).unwrap();
    assert_eq!(exit, Exit::LimitReached);
    assert_eq!(m.bus.take_console_output(), b"ab");
    assert_eq!(m.cpu.rip, a.addr("after2"));

    // The third access is an IN: its value must be in AL when we get the state back.
    let exit = kvm.run(&mut m, RunLimit::io_accesses(1)).unwrap();
    assert_eq!(exit, Exit::LimitReached);
    assert_eq!(m.cpu.rip, a.addr("after3"));
    assert_eq!(
        m.cpu.gpr[reg::RAX] & 0xFF,
        0xFF,
        "IN completed before returning"
    );

    // Change AL behind KVM's back: the next run must use our state, not a stale copy.
    m.cpu.gpr[reg::RAX] = 0;
    let exit = kvm.run(&mut m, RunLimit::io_accesses(1)).unwrap();
    assert_eq!(exit, Exit::LimitReached);
    assert_eq!(m.cpu.rip, a.addr("after4"));

    let exit = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0,
            status: 1
        }
    );
    assert_eq!(m.bus.take_console_output(), b"cd");
}

#[test]
fn single_step_counts_instructions() {
    if !kvm_or_skip("single_step_counts_instructions") {
        return;
    }
    let mut a = Asm::new(CODE);
    a.b(&[0x90]) // nop
        .b(&[0x40]) // inc eax
        .b(&[0x40]) // inc eax
        .label("out")
        .mov_al(b's')
        .out_al(0xE9)
        .label("after_out")
        .b(&[0xB9, 0x05, 0, 0, 0]) // mov ecx, 5
        .label("loop")
        .b(&[0x41]) // inc ecx
        .j8(0xEB, "loop");
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    m.cpu.gpr[reg::RAX] = 0;
    let mut kvm = engine(&m);

    assert_eq!(kvm.step(&mut m).unwrap(), Exit::LimitReached);
    assert_eq!(m.cpu.rip, CODE + 1, "one NOP");
    assert_eq!(
        kvm.run(&mut m, RunLimit::instructions(2)).unwrap(),
        Exit::LimitReached
    );
    assert_eq!(m.cpu.rip, a.addr("out"));
    assert_eq!(m.cpu.gpr[reg::RAX], 2);

    // MOV AL then OUT: two instructions, even though the OUT also causes an I/O exit.
    assert_eq!(
        kvm.run(&mut m, RunLimit::instructions(2)).unwrap(),
        Exit::LimitReached
    );
    assert_eq!(m.cpu.rip, a.addr("after_out"));
    assert_eq!(m.bus.take_console_output(), b"s");

    // mov ecx, 5 and then 2 × (inc ecx; jmp): 5 instructions end back at the loop with ECX = 7.
    assert_eq!(
        kvm.run(&mut m, RunLimit::instructions(5)).unwrap(),
        Exit::LimitReached
    );
    assert_eq!(m.cpu.rip, a.addr("loop"));
    assert_eq!(m.cpu.gpr[reg::RCX], 7);
    // Ten instructions: nine single-step traps, and the OUT, which retired through its I/O exit.
    assert_eq!(m.stats.exits["debug"], 9);
    assert_eq!(m.stats.exits["io"], 1);
    // Stepping leaves no trace in the guest's flags.
    assert_eq!(m.cpu.rflags & emulator::cpu::state::flags::TF, 0);
}

#[test]
fn stepping_over_hlt_counts_it_and_leaves_the_cpu_halted() {
    if !kvm_or_skip("stepping_over_hlt_counts_it_and_leaves_the_cpu_halted") {
        return;
    }
    let code = [0xFB, 0x90, 0xF4, 0x90]; // sti; nop; hlt; nop
    let mut m = protected_machine(&code, CODE, CODE);
    let mut kvm = engine(&m);
    assert_eq!(
        kvm.run(&mut m, RunLimit::instructions(3)).unwrap(),
        Exit::LimitReached
    );
    assert_eq!(m.cpu.rip, CODE + 3);
    assert!(m.cpu.events.halted);
    // Halted with IF = 1 but no device deadline and nothing pending: nothing can wake it.
    assert_eq!(kvm.step(&mut m).unwrap(), Exit::Shutdown);
}

#[test]
fn stepping_over_hlt_in_long_mode_with_paging() {
    if !kvm_or_skip("stepping_over_hlt_in_long_mode_with_paging") {
        return;
    }
    let code = [0xFA, 0xF4, 0x90]; // cli; hlt; nop
    let mut m = long_mode_machine(&code, CODE, CODE);
    let mut kvm = engine(&m);
    assert_eq!(kvm.step(&mut m).unwrap(), Exit::LimitReached);
    // HLT with IF = 0: the step ends in a shutdown, halted, RIP after the HLT.
    assert_eq!(kvm.step(&mut m).unwrap(), Exit::Shutdown);
    assert_eq!(m.cpu.rip, CODE + 2);
    assert!(m.cpu.events.halted);
}

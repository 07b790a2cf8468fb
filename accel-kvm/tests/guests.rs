//! Small guests run to completion under KVM: protected mode, long mode, HLT and a triple fault.
//! Teaches: the same machine contract (console bytes, isa-debug-exit status) holds under KVM.

mod common;

use common::*;
use emulator::cpu::state::CpuMode;
use emulator::{Engine, Exit, RunLimit};

/// Prints the NUL-terminated string at `msg` to port 0xE9, then writes 0x21 to isa-debug-exit.
fn hello_guest(origin: u64) -> (Vec<u8>, u64) {
    let mut a = Asm::new(origin);
    a.abs32(&[0xBE], "msg") // mov esi, msg
        .label("next")
        .b(&[0xAC]) // lodsb
        .b(&[0x84, 0xC0]) // test al, al
        .j8(0x74, "done") // jz done
        .out_al(0xE9)
        .j8(0xEB, "next")
        .label("done")
        .mov_al(0x21)
        .out_al(0xF4)
        .label("after_exit")
        .b(&[0xF4]) // hlt (not reached)
        .label("msg")
        .b(b"hi\0");
    let code = a.finish();
    (code, a.addr("after_exit"))
}

#[test]
fn protected_mode_guest_prints_and_exits() {
    if !kvm_or_skip("protected_mode_guest_prints_and_exits") {
        return;
    }
    let (code, after) = hello_guest(CODE);
    let mut m = protected_machine(&code, CODE, CODE);
    let mut kvm = engine(&m);
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x21,
            status: 0x43
        }
    );
    assert_eq!(m.bus.take_console_output(), b"hi");
    assert_eq!(m.cpu.rip, after, "state must be after the OUT to 0xF4");
    assert_eq!(m.cpu.mode(), CpuMode::Protected32);
    assert_eq!(m.stats.exits["io"], 3);
    assert!(m.stats.uncounted_runs >= 3);
}

#[test]
fn long_mode_guest_with_page_tables_prints_and_exits() {
    if !kvm_or_skip("long_mode_guest_with_page_tables_prints_and_exits") {
        return;
    }
    let (code, after) = hello_guest(CODE);
    let mut m = long_mode_machine(&code, CODE, CODE);
    let mut kvm = engine(&m);
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x21,
            status: 0x43
        }
    );
    assert_eq!(m.bus.take_console_output(), b"hi");
    assert_eq!(m.cpu.rip, after);
    assert_eq!(m.cpu.mode(), CpuMode::Long64);
    // The CPU set the accessed bit in the page tables we wrote: they really were walked.
    assert_ne!(
        m.ram.read_le(PML4, 8).unwrap() & 0x20,
        0,
        "PML4E.A set by the walk"
    );
}

#[test]
fn hlt_with_interrupts_disabled_is_a_shutdown() {
    if !kvm_or_skip("hlt_with_interrupts_disabled_is_a_shutdown") {
        return;
    }
    let code = [0xFA, 0xF4, 0x90]; // cli; hlt; nop
    let mut m = protected_machine(&code, CODE, CODE);
    let mut kvm = engine(&m);
    assert_eq!(
        kvm.run(&mut m, RunLimit::UNLIMITED).unwrap(),
        Exit::Shutdown
    );
    assert_eq!(m.cpu.rip, CODE + 2, "RIP is after the HLT");
    assert!(m.cpu.events.halted);
    assert_eq!(m.stats.exits["hlt"], 1);
    // Running a halted CPU that cannot be woken stops at once, without entering the guest.
    let runs = m.stats.uncounted_runs;
    assert_eq!(
        kvm.run(&mut m, RunLimit::UNLIMITED).unwrap(),
        Exit::Shutdown
    );
    assert_eq!(m.stats.uncounted_runs, runs);
}

#[test]
fn exception_without_idt_is_a_triple_fault() {
    if !kvm_or_skip("exception_without_idt_is_a_triple_fault") {
        return;
    }
    let code = [0x0F, 0x0B]; // ud2 with IDTR.limit = 0: #UD → #DF → shutdown
    let mut m = protected_machine(&code, CODE, CODE);
    assert_eq!(m.cpu.idtr.limit, 0);
    let mut kvm = engine(&m);
    match kvm.run(&mut m, RunLimit::UNLIMITED).unwrap() {
        Exit::TripleFault { detail } => {
            eprintln!("{detail}");
            assert!(detail.contains("triple fault"), "{detail}")
        }
        other => panic!("expected a triple fault, got {other:?}"),
    }
}

#[test]
fn describe_names_the_flavour() {
    if !kvm_or_skip("describe_names_the_flavour") {
        return;
    }
    let m = protected_machine(&[0xF4], CODE, CODE);
    let kvm = engine(&m);
    assert_eq!(kvm.name(), "kvm");
    assert_eq!(
        kvm.describe(),
        format!("kvm ({})", accel_kvm::detect_flavour())
    );
    assert!(!kvm.counts_instructions());
    for note in kvm.notes() {
        eprintln!("engine note: {note}");
    }
}

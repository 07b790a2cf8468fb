//! CPU modes under KVM: real mode, the reset vector in ROM, a guest that enables long mode itself,
//! and what a PVM host refuses (32-bit paging, protected-mode IRET) — reported, never a hang.
//! Teaches: which mode switches a hypervisor must support for a Multiboot kernel to boot.

mod common;

use accel_kvm::{detect_flavour, KvmFlavour};
use common::*;
use emulator::cpu::state::{reg, CpuMode, CpuState, Seg, Segment};
use emulator::{Engine, EngineError, Exit, Machine, RunLimit};

fn real_mode_machine(code: &[u8], at: u64) -> Machine {
    let mut m = Machine::new(RAM).unwrap();
    m.ram.write(at, code).unwrap();
    m.cpu.seg[Seg::Cs as usize] = Segment::real_mode(0, true);
    m.cpu.rip = at;
    m.cpu.gpr[reg::RSP] = 0x7000;
    m
}

#[test]
fn real_mode_guest_with_a_software_interrupt() {
    if !kvm_or_skip("real_mode_guest_with_a_software_interrupt") {
        return;
    }
    let mut a = Asm::new(0x7C00);
    a.b(&[0xCD, 0x30]) // int 0x30 through the IVT
        .mov_al(0x11)
        .out_al(0xF4)
        .label("handler")
        .mov_al(b'r')
        .out_al(0xE9)
        .b(&[0xCF]); // iret
    let code = a.finish();
    let mut m = real_mode_machine(&code, 0x7C00);
    m.ram.write_le(0x30 * 4, 4, a.addr("handler")).unwrap();
    let mut kvm = engine(&m);
    match kvm.run(&mut m, RunLimit::UNLIMITED) {
        Ok(exit) => {
            assert_eq!(
                exit,
                Exit::DebugExit {
                    value: 0x11,
                    status: 0x23
                }
            );
            assert_eq!(m.bus.take_console_output(), b"r");
            assert_eq!(m.cpu.mode(), CpuMode::Real);
        }
        // A host that cannot run real mode must say so by name, not hang or crash.
        Err(EngineError::Unsupported(why)) => assert!(why.contains("real mode"), "{why}"),
        Err(e) => panic!("real mode failed without naming it: {e}"),
    }
}

#[test]
fn reset_vector_runs_from_the_rom_alias_below_4_gib() {
    if !kvm_or_skip("reset_vector_runs_from_the_rom_alias_below_4_gib") {
        return;
    }
    let mut m = Machine::new(RAM).unwrap();
    let mut rom = vec![0xF4u8; 8 << 10];
    let at = rom.len() - 16;
    // F000:FFF0: mov al, 'B'; out 0xE9, al; mov al, 2; out 0xF4, al
    rom[at..at + 8].copy_from_slice(&[0xB0, b'B', 0xE6, 0xE9, 0xB0, 0x02, 0xE6, 0xF4]);
    m.rom = rom;
    assert_eq!(m.cpu, CpuState::reset());
    let mut kvm = engine(&m);
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 2,
            status: 5
        }
    );
    assert_eq!(m.bus.take_console_output(), b"B");
    assert_eq!(m.cpu.rip, 0xFFF8);
}

/// What the project's hello64 guest does: enter 32-bit with paging off (Multiboot), then set
/// CR3, CR4.PAE, EFER.LME and CR0.PG itself and far-jump into a 64-bit code segment.
#[test]
fn multiboot_guest_switches_itself_to_long_mode() {
    if !kvm_or_skip("multiboot_guest_switches_itself_to_long_mode") {
        return;
    }
    let mut a = Asm::new(CODE);
    a.imm32(&[0xB8], PML4 as u32) // mov eax, PML4
        .b(&[0x0F, 0x22, 0xD8]) // mov cr3, eax
        .b(&[0x0F, 0x20, 0xE0]) // mov eax, cr4
        .imm32(&[0x0D], 0x20) // or eax, CR4.PAE
        .b(&[0x0F, 0x22, 0xE0]) // mov cr4, eax
        .imm32(&[0xB9], 0xC000_0080) // mov ecx, IA32_EFER
        .b(&[0x0F, 0x32]) // rdmsr
        .imm32(&[0x0D], 0x100) // or eax, EFER.LME
        .b(&[0x0F, 0x30]) // wrmsr
        .b(&[0x0F, 0x20, 0xC0]) // mov eax, cr0
        .imm32(&[0x0D], 0x8000_0000) // or eax, CR0.PG
        .b(&[0x0F, 0x22, 0xC0]) // mov cr0, eax
        .abs32(&[0xEA], "long64") // jmp far 0x20:long64
        .b(&SEL_CODE64.to_le_bytes())
        .label("long64")
        .b(&[0x48, 0xB8]) // mov rax, imm64: only possible in 64-bit mode
        .b(&0x1122_3344_5566_7788u64.to_le_bytes())
        .mov_al(0x40)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    write_page_tables(&mut m);
    let mut kvm = engine(&m);
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x40,
            status: 0x81
        }
    );
    assert_eq!(m.cpu.mode(), CpuMode::Long64);
    assert_eq!(m.cpu.gpr[reg::RAX], 0x1122_3344_5566_7740);
    assert!(m.cpu.long_mode_active() && m.cpu.paging_enabled());
}

/// 32-bit paging: works with hardware virtualization; PVM raises #GP on the CR0.PG write, which
/// with no IDT ends in a triple fault — reported as such, with the RIP of the MOV to CR0.
#[test]
fn thirty_two_bit_paging_works_or_pvm_reports_a_triple_fault() {
    if !kvm_or_skip("thirty_two_bit_paging_works_or_pvm_reports_a_triple_fault") {
        return;
    }
    let pd = 0x3_0000u32;
    let mut a = Asm::new(CODE);
    a.imm32(&[0xB8], pd) // mov eax, pd
        .b(&[0x0F, 0x22, 0xD8]) // mov cr3, eax
        .b(&[0x0F, 0x20, 0xE0]) // mov eax, cr4
        .imm32(&[0x0D], 0x10) // or eax, CR4.PSE
        .b(&[0x0F, 0x22, 0xE0]) // mov cr4, eax
        .b(&[0x0F, 0x20, 0xC0]) // mov eax, cr0
        .imm32(&[0x0D], 0x8000_0000) // or eax, CR0.PG
        .label("set_pg")
        .b(&[0x0F, 0x22, 0xC0]) // mov cr0, eax
        .mov_al(0x32)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    m.ram.write_le(pd as u64, 4, 0x83).unwrap(); // one 4 MiB page at 0
    let mut kvm = engine(&m);
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    if detect_flavour() == KvmFlavour::Pvm {
        match exit {
            Exit::TripleFault { detail } => {
                assert!(
                    detail.contains(&format!("{:#x}", a.addr("set_pg"))),
                    "{detail}"
                )
            }
            other => panic!("PVM was measured to refuse 32-bit paging; got {other:?}"),
        }
    } else {
        assert_eq!(
            exit,
            Exit::DebugExit {
                value: 0x32,
                status: 0x65
            }
        );
        assert!(m.cpu.paging_enabled() && !m.cpu.long_mode_active());
    }
}

/// A protected-mode IRETD: fine on hardware; PVM's ring-0 interpreter cannot execute it, and the
/// engine says so as `Unsupported` with the instruction bytes, the mode and the flavour.
#[test]
fn protected_mode_iret_runs_or_is_reported_unsupported() {
    if !kvm_or_skip("protected_mode_iret_runs_or_is_reported_unsupported") {
        return;
    }
    let mut a = Asm::new(CODE);
    a.b(&[0x9C]) // pushfd
        .b(&[0x0E]) // push cs
        .abs32(&[0x68], "back") // push back
        .b(&[0xCF]) // iretd
        .label("back")
        .mov_al(0x0D)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    let mut kvm = engine(&m);
    match kvm.run(&mut m, RunLimit::UNLIMITED) {
        Ok(exit) => assert_eq!(
            exit,
            Exit::DebugExit {
                value: 0x0D,
                status: 0x1B
            }
        ),
        Err(EngineError::Unsupported(why)) => {
            assert_eq!(detect_flavour(), KvmFlavour::Pvm, "{why}");
            assert!(why.contains("[cf"), "names the instruction: {why}");
            assert!(
                why.contains("32-bit protected mode") && why.contains("PVM"),
                "{why}"
            );
            // The state handed back is where the guest stopped, at the IRETD.
            assert_eq!(m.cpu.rip, a.addr("back") - 1);
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// Ring 3 in long mode, entered with IRETQ and left with an OUT (IOPL 3): the path benchmark
/// guests use, because ring-3 code runs natively even on PVM.
#[test]
fn long_mode_guest_enters_ring_3() {
    if !kvm_or_skip("long_mode_guest_enters_ring_3") {
        return;
    }
    let mut a = Asm::new(CODE);
    a.b(&[0x6A, SEL_USER_DATA as u8]) // push ss
        .imm32(&[0x68], 0x6000) // push rsp
        .imm32(&[0x68], 0x3002) // push rflags: IOPL 3
        .b(&[0x6A, SEL_USER_CODE64 as u8]) // push cs
        .abs32(&[0x68], "user") // push rip
        .b(&[0x48, 0xCF]) // iretq
        .label("user")
        .imm32(&[0xB9], 100_000) // mov ecx, 100000
        .label("spin")
        .b(&[0xFF, 0xC9]) // dec ecx
        .j8(0x75, "spin") // jnz spin
        .mov_al(0x33)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = long_mode_machine(&code, CODE, CODE);
    let mut kvm = engine(&m);
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x33,
            status: 0x67
        }
    );
    assert_eq!(m.cpu.cpl(), 3);
    assert_eq!(m.cpu.cs().selector, SEL_USER_CODE64);
    assert_eq!(m.cpu.gpr[reg::RCX], 0);
}

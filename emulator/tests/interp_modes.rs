//! Interpreter tests: small guests in each CPU mode, checked by their output and final state.
//! Teaches: how to test an emulator — run real code, compare what the guest can observe.

mod support;

use emulator::cpu::{ctl, flags, reg, CpuState, Seg, Segment};
use emulator::{Exit, Machine};
use support::{assemble, protected_mode, real_mode, run};

#[test]
fn real_mode_arithmetic_ivt_interrupt_and_debug_exit() {
    let code = assemble(
        16,
        0x7C00,
        r#"
        mov word ptr [0x80*4], offset handler   # IVT entry 0x80 → 0000:handler
        mov word ptr [0x80*4+2], 0
        mov ax, 0x1234
        add ax, 0x0111
        int 0x80
        mov al, 'k'
        out 0xE9, al
        mov ax, 0x10
        out 0xF4, ax
    handler:
        mov bx, ax                              # bx = 0x1345 proves the add ran first
        mov al, 'o'
        out 0xE9, al
        iret
        "#,
    );
    let mut m = real_mode(&code);
    let exit = run(&mut m);
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x10,
            status: 0x21
        }
    );
    assert_eq!(m.bus.take_console_output(), b"ok");
    assert_eq!(m.cpu.gpr[reg::RBX] & 0xFFFF, 0x1345);
    assert_eq!(m.stats.exceptions.get("int n (software)"), Some(&1));
}

#[test]
fn flags_from_arithmetic_match_the_architecture() {
    let code = assemble(
        16,
        0x7C00,
        r#"
        mov al, 0x7F
        add al, 1          # OF SF AF set, CF ZF clear
        pushf
        pop bx
        mov cx, 0
        sub cx, 1          # CF SF PF AF set
        pushf
        pop dx
        hlt
        "#,
    );
    let mut m = real_mode(&code);
    m.cpu.rflags = flags::FIXED1; // IF=0: HLT ends the run
    assert_eq!(run(&mut m), Exit::Shutdown);
    let f1 = m.cpu.gpr[reg::RBX] & 0x8D5;
    assert_eq!(f1, 0x800 | 0x80 | 0x10, "add 0x7F+1 flags");
    let f2 = m.cpu.gpr[reg::RDX] & 0x8D5;
    assert_eq!(f2, 0x80 | 0x10 | 0x04 | 0x01, "sub 0-1 flags");
}

#[test]
fn unimplemented_instruction_raises_ud_in_the_guest_and_is_counted() {
    let code = assemble(
        32,
        0x10000,
        r#"
        # IDT at 0x2000 with one interrupt gate for vector 6 (#UD).
        mov eax, offset ud_handler
        mov word ptr [0x2000 + 6*8], ax
        mov word ptr [0x2000 + 6*8 + 2], 0x08
        mov word ptr [0x2000 + 6*8 + 4], 0x8E00
        shr eax, 16
        mov word ptr [0x2000 + 6*8 + 6], ax
        lidt [idtr]
    faulting:
        aesenc xmm0, xmm1         # AES-NI is not implemented (nor in CPUID): #UD
        mov al, 'X'
        out 0xE9, al
    ud_handler:
        pop eax                   # the saved EIP
        cmp eax, offset faulting
        jne bad
        mov al, 'U'
        out 0xE9, al
        mov eax, 0x10
        out 0xF4, eax
    bad:
        mov eax, 0x11
        out 0xF4, eax
    idtr:
        .word 256*8-1
        .long 0x2000
        "#,
    );
    let mut m = protected_mode(&code);
    let exit = run(&mut m);
    assert_eq!(m.bus.take_console_output(), b"U");
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x10,
            status: 0x21
        }
    );
    assert_eq!(m.stats.unimplemented.get("aesenc"), Some(&1));
    assert_eq!(m.stats.exceptions.get("#UD"), Some(&1));
}

#[test]
fn empty_idt_turns_an_exception_into_a_triple_fault() {
    let code = assemble(32, 0x10000, "lidt [idtr]\n int3\nidtr: .word 0\n .long 0\n");
    let mut m = protected_mode(&code);
    match run(&mut m) {
        Exit::TripleFault { detail } => assert!(detail.contains("#DF"), "{detail}"),
        other => panic!("expected a triple fault, got {other:?}"),
    }
}

#[test]
fn long_mode_paging_syscall_and_sysret_round_trip() {
    // Identity-map 2 MiB with one large page (user-accessible), enter 64-bit mode via CpuState,
    // drop to ring 3 with SYSRET, come back with SYSCALL.
    let code = assemble(
        64,
        0x10000,
        r#"
        mov ecx, 0xC0000081       # STAR: kernel CS 0x08, user base 0x10 (CS=0x23, SS=0x1B)
        xor eax, eax
        mov edx, 0x00100008
        wrmsr
        mov ecx, 0xC0000082       # LSTAR
        lea rax, [rip + kernel_entry]
        xor edx, edx
        wrmsr
        lea rcx, [rip + user]
        mov r11, 0x2
        sysretq
    user:
        mov rbx, 0x5555
        syscall
    kernel_entry:
        mov al, 'S'
        out 0xE9, al
        mov eax, 0x10
        out 0xF4, eax
        "#,
    );
    let mut m = Machine::new(4 << 20).unwrap();
    m.ram.write(0x10000, &code).unwrap();
    m.ram.write_le(0x1000, 8, 0x2000 | 7).unwrap(); // PML4 → PDPT
    m.ram.write_le(0x2000, 8, 0x3000 | 7).unwrap(); // PDPT → PD
    m.ram.write_le(0x3000, 8, 0x87).unwrap(); // 2 MiB page at 0, user, writable
    let mut s = CpuState::multiboot_entry(0x10000, 0);
    s.cr0 |= ctl::CR0_PG;
    s.cr4 = ctl::CR4_PAE;
    s.cr3 = 0x1000;
    s.efer = ctl::EFER_LME | ctl::EFER_LMA | ctl::EFER_SCE;
    s.seg[Seg::Cs as usize] = Segment {
        l: true,
        db: false,
        ..Segment::flat32(0x08, true)
    };
    s.gpr[reg::RSP] = 0x9000;
    m.cpu = s;
    let exit = run(&mut m);
    assert_eq!(m.bus.take_console_output(), b"S");
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x10,
            status: 0x21
        }
    );
    assert_eq!(m.cpu.gpr[reg::RBX], 0x5555, "user code ran");
    assert_eq!(m.cpu.cpl(), 0);
    assert_eq!(
        m.cpu.gpr[11] & flags::FIXED1,
        flags::FIXED1,
        "R11 holds user RFLAGS"
    );
    assert!(m.stats.mmu.tlb_hits > 0);
}

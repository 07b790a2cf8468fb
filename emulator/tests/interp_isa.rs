//! Interpreter tests for instruction-set pieces: self-modifying code through the decode cache,
//! single-step and breakpoint #DB, LAR/LSL/VERR/VERW/ARPL, POPCNT/LZCNT/TZCNT, RDTSCP/RDPID.
//! Teaches: each test is a tiny guest whose final registers prove one rule of the architecture.

mod support;

use emulator::cpu::{cpuid, flags, reg, CpuState, DescriptorTable, Seg, Segment};
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Machine, RunLimit};
use support::{assemble, protected_mode, real_mode, run};

#[test]
fn code_rewritten_by_the_guest_runs_in_its_new_form() {
    // The loop body `mov eax, imm32` is executed (and cached), then its immediate is rewritten
    // by a store; the second pass must see the new immediate, not the cached decode.
    let code = assemble(
        32,
        0x10000,
        r#"
        xor ecx, ecx
    again:
    patched:
        mov eax, 0x11111111
        add ebx, eax
        inc ecx
        mov dword ptr [patched + 1], 0x22222222
        cmp ecx, 2
        jb again
        hlt
        "#,
    );
    let mut m = protected_mode(&code);
    m.cpu.gpr[reg::RBX] = 0;
    let mut interp = Interpreter::new();
    assert_eq!(
        interp.run(&mut m, RunLimit::instructions(1000)).unwrap(),
        Exit::Shutdown
    );
    assert_eq!(m.cpu.gpr[reg::RAX], 0x2222_2222);
    assert_eq!(m.cpu.gpr[reg::RBX], 0x3333_3333);
    let stats = interp.decode_cache_stats();
    assert!(stats.invalidations >= 1, "{stats:?}");
    assert!(stats.hits > 0, "the loop ran from the cache: {stats:?}");
}

#[test]
fn trap_flag_raises_a_debug_trap_after_each_instruction() {
    let code = assemble(
        16,
        0x7C00,
        r#"
        mov word ptr [1*4], offset handler
        mov word ptr [1*4+2], 0
        xor bx, bx
        pushf
        pop ax
        or ax, 0x100
        push ax
        popf            # sets TF: no trap after POPF itself (TF was clear when it started)
        nop             # 1
        nop             # 2
        pushf           # 3
        pop ax          # 4
        and ax, 0xFEFF  # 5
        push ax         # 6
        popf            # 7: TF was set when it started, so it traps; TF is clear afterwards
        nop
        hlt
    handler:
        inc bx          # the handler runs with TF cleared by the delivery
        iret
        "#,
    );
    let mut m = real_mode(&code);
    assert_eq!(run(&mut m), Exit::Shutdown);
    assert_eq!(m.cpu.gpr[reg::RBX] & 0xFFFF, 7);
    assert_ne!(m.cpu.dr[6] & (1 << 14), 0, "DR6.BS");
    assert_eq!(m.stats.exceptions.get("#DB"), Some(&7));
}

#[test]
fn execute_breakpoint_faults_before_the_instruction() {
    let code = assemble(
        16,
        0x7C00,
        r#"
        mov word ptr [1*4], offset handler
        mov word ptr [1*4+2], 0
        xor bx, bx
        xor cx, cx
        mov eax, offset target
        mov dr0, eax
        mov eax, 1              # L0, R/W0 = 00 (execute), LEN0 = 00
        mov dr7, eax
        nop
    target:
        inc cx                  # runs once, after the handler disarmed the breakpoint
        hlt
    handler:
        inc bx
        mov dx, cx              # the fault comes before `inc cx`: DX = 0
        xor eax, eax
        mov dr7, eax
        iret
        "#,
    );
    let mut m = real_mode(&code);
    assert_eq!(run(&mut m), Exit::Shutdown);
    assert_eq!(m.cpu.gpr[reg::RBX] & 0xFFFF, 1);
    assert_eq!(m.cpu.gpr[reg::RCX] & 0xFFFF, 1);
    assert_eq!(m.cpu.gpr[reg::RDX] & 0xFFFF, 0);
    assert_eq!(m.cpu.dr[6] & 0xF, 1, "DR6.B0");
}

#[test]
fn descriptor_queries_answer_in_zf_without_faulting() {
    // ESI collects ZF of each query (bit i = query i), EDI/EBP/EDX hold results.
    let code = assemble(
        32,
        0x10000,
        r#"
        xor esi, esi
        mov ecx, 0x18
        lsl edi, ecx            # 0: DPL-3 data, limit 0xFFF
        setz al
        or esi, eax
        lar ebp, ecx            # 1: access rights
        setz al
        shl eax, 1
        or esi, eax
        verr cx                 # 2: readable: yes
        setz al
        movzx eax, al
        shl eax, 2
        or esi, eax
        verw cx                 # 3: read-only: ZF = 0
        setz al
        movzx eax, al
        shl eax, 3
        or esi, eax
        mov edx, 0x5555
        mov ecx, 0x40
        lsl edx, ecx            # 4: beyond the GDT limit: ZF = 0, EDX unchanged
        setz al
        movzx eax, al
        shl eax, 4
        or esi, eax
        mov ax, 0x10
        mov cx, 3
        arpl ax, cx             # 5: RPL raised to 3, ZF = 1
        mov ebx, eax
        setz al
        movzx eax, al
        shl eax, 5
        or esi, eax
        hlt
        "#,
    );
    let mut m = protected_mode(&code);
    assert_eq!(run(&mut m), Exit::Shutdown);
    let g = |r: usize| m.cpu.gpr[r];
    assert_eq!(g(reg::RSI) & 0x3F, 0b10_0111, "ZF per query");
    assert_eq!(g(reg::RDI), 0xFFF, "LSL");
    assert_eq!(g(reg::RBP), 0x0000_F000, "LAR: type 0 data, DPL 3, present");
    assert_eq!(g(reg::RDX), 0x5555, "failed LSL leaves the destination");
    assert_eq!(g(reg::RBX) & 0xFFFF, 0x13, "ARPL");
}

#[test]
fn bit_counting_and_tsc_aux_instructions_match_cpuid() {
    let [_, _, ecx1, _] = cpuid::cpuid(1, 0);
    assert_ne!(ecx1 & cpuid::ecx1::POPCNT, 0);
    assert_ne!(cpuid::cpuid(0x8000_0001, 0)[2] & cpuid::ecx81::LZCNT, 0);
    assert_ne!(cpuid::cpuid(0x8000_0001, 0)[3] & cpuid::edx81::RDTSCP, 0);
    assert_ne!(cpuid::cpuid(7, 0)[2] & cpuid::ecx7::RDPID, 0);
    let code = assemble(
        32,
        0x10000,
        r#"
        mov ecx, 0xF0F0
        popcnt eax, ecx         # 8
        mov ecx, 0x00010000
        lzcnt ebx, ecx          # 15
        mov ecx, 0x100
        tzcnt edx, ecx          # no BMI1: executes as BSF = 8
        mov edi, 0x77
        xor ecx, ecx
        tzcnt edi, ecx          # as BSF of 0: EDI unchanged, ZF = 1
        setz ch
        mov esi, ecx
        mov ecx, 0xC0000103     # IA32_TSC_AUX = 7
        mov eax, 7
        push edx
        xor edx, edx
        wrmsr
        pop edx
        push eax
        rdtscp                  # ECX = 7
        mov ebp, ecx
        pop eax
        rdpid ecx               # ECX = 7 again (via the register form)
        hlt
        "#,
    );
    let mut m = protected_mode(&code);
    assert_eq!(run(&mut m), Exit::Shutdown);
    let g = |r: usize| m.cpu.gpr[r];
    assert_eq!(g(reg::RBX), 15);
    assert_eq!(g(reg::RDI), 0x77);
    assert_eq!(g(reg::RSI) >> 8, 1, "ZF after TZCNT-as-BSF of 0");
    assert_eq!(g(reg::RBP), 7);
    assert_eq!(g(reg::RCX), 7);
    assert_eq!(
        m.stats.unimplemented.len(),
        0,
        "{:?}",
        m.stats.unimplemented
    );
}

#[test]
fn lock_on_a_register_destination_is_ud() {
    let code = assemble(
        32,
        0x10000,
        r#"
        mov eax, offset ud_handler
        mov word ptr [0x2000 + 6*8], ax
        mov word ptr [0x2000 + 6*8 + 2], 0x08
        mov word ptr [0x2000 + 6*8 + 4], 0x8E00
        shr eax, 16
        mov word ptr [0x2000 + 6*8 + 6], ax
        lidt [idtr]
        xor ebx, ebx
        .byte 0xF0, 0x01, 0xD8  # lock add eax, ebx
        hlt
    ud_handler:
        mov ebx, 0x600D
        hlt
    idtr:
        .word 0x7FF
        .long 0x2000
        "#,
    );
    let mut m = protected_mode(&code);
    assert_eq!(run(&mut m), Exit::Shutdown);
    assert_eq!(m.cpu.gpr[reg::RBX], 0x600D);
    assert!(
        m.stats.unimplemented.is_empty(),
        "LOCK misuse is not 'unimplemented'"
    );
}

#[test]
fn ring3_calls_ring0_through_a_call_gate_with_a_parameter() {
    let code = assemble(
        32,
        0x10000,
        r#"
        # Call gate 0x30 (DPL 3, 32-bit, 1 parameter) -> 0x08:ring0.
        mov eax, offset ring0
        mov word ptr [0x1030], ax
        mov word ptr [0x1032], 0x08
        mov word ptr [0x1034], 0xEC01
        shr eax, 16
        mov word ptr [0x1036], ax
        mov dword ptr [0x3004], 0x8000   # TSS.ESP0
        mov dword ptr [0x3008], 0x10     # TSS.SS0
        mov ax, 0x28
        ltr ax
        push 0x23                        # to ring 3: SS, ESP, EFLAGS, CS, EIP
        push 0x7000
        pushfd
        push 0x1B
        push offset user
        iretd
    user:
        push 0x1234
        call 0x33:0                      # through the gate; returns EAX = param + 1
        mov edi, eax
        mov esi, esp                     # RETF 4 released the parameter: 0x7000
        push 0
        call 0x33:0                      # parameter 0: ring 0 halts there
    ring0:
        mov eax, [esp + 8]               # EIP, CS, parameter, ESP, SS
        mov ebx, [esp + 4]
        mov ecx, ss
        mov edx, [esp + 16]
        test eax, eax
        jz finish
        inc eax
        retf 4
    finish:
        hlt
        "#,
    );
    let mut m = Machine::new(4 << 20).unwrap();
    m.ram.write(0x10000, &code).unwrap();
    let gdt: [u64; 6] = [
        0,
        0x00CF_9A00_0000_FFFF, // 0x08 ring-0 code
        0x00CF_9200_0000_FFFF, // 0x10 ring-0 data
        0x00CF_FA00_0000_FFFF, // 0x18 ring-3 code
        0x00CF_F200_0000_FFFF, // 0x20 ring-3 data
        0x0000_8900_3000_0067, // 0x28 32-bit TSS at 0x3000
    ];
    for (i, d) in gdt.iter().enumerate() {
        m.ram.write_le(0x1000 + 8 * i as u64, 8, *d).unwrap();
    }
    m.cpu = CpuState::multiboot_entry(0x10000, 0);
    m.cpu.seg = [Segment::flat32(0x10, false); 6];
    m.cpu.seg[Seg::Cs as usize] = Segment::flat32(0x08, true);
    m.cpu.gdtr = DescriptorTable {
        base: 0x1000,
        limit: 0x3F,
    };
    m.cpu.gpr[reg::RSP] = 0x9000;
    assert_eq!(run(&mut m), Exit::Shutdown, "{:?}", m.stats.exceptions);
    let g = |r: usize| m.cpu.gpr[r];
    assert_eq!(
        g(reg::RDI),
        0x1235,
        "the first call returned param + 1 to ring 3"
    );
    assert_eq!(
        g(reg::RSI),
        0x7000,
        "RETF 4 dropped the parameter on the ring-3 stack"
    );
    assert_eq!(g(reg::RBX), 0x1B, "the caller's CS, RPL 3");
    assert_eq!(g(reg::RCX), 0x10, "ring 0 runs on the TSS's SS0");
    assert_eq!(
        g(reg::RDX),
        0x23,
        "the caller's SS was pushed on the inner stack"
    );
    assert_eq!(g(reg::RSP), 0x8000 - 20, "SS, ESP, 1 parameter, CS, EIP");
    assert_eq!(m.cpu.cpl(), 0);
    assert!(m.stats.exceptions.is_empty(), "{:?}", m.stats.exceptions);
}

#[test]
fn sysexit_to_ring3_and_sysenter_back() {
    let code = assemble(
        32,
        0x10000,
        r#"
        xor edx, edx
        mov ecx, 0x174              # IA32_SYSENTER_CS
        mov eax, 0x08
        wrmsr
        mov ecx, 0x175              # IA32_SYSENTER_ESP
        mov eax, 0x8000
        wrmsr
        mov ecx, 0x176              # IA32_SYSENTER_EIP
        mov eax, offset kernel_entry
        wrmsr
        mov edx, offset user        # SYSEXIT: EIP = EDX, ESP = ECX
        mov ecx, 0x7000
        sysexit
    user:
        mov esi, esp
        mov edi, cs
        sysenter
    kernel_entry:
        mov ebp, ss
        hlt
        "#,
    );
    let mut m = Machine::new(4 << 20).unwrap();
    m.ram.write(0x10000, &code).unwrap();
    let gdt: [u64; 5] = [
        0,
        0x00CF_9A00_0000_FFFF,
        0x00CF_9200_0000_FFFF,
        0x00CF_FA00_0000_FFFF,
        0x00CF_F200_0000_FFFF,
    ];
    for (i, d) in gdt.iter().enumerate() {
        m.ram.write_le(0x1000 + 8 * i as u64, 8, *d).unwrap();
    }
    m.cpu = CpuState::multiboot_entry(0x10000, 0);
    m.cpu.seg = [Segment::flat32(0x10, false); 6];
    m.cpu.seg[Seg::Cs as usize] = Segment::flat32(0x08, true);
    m.cpu.gdtr = DescriptorTable {
        base: 0x1000,
        limit: 0x27,
    };
    assert_eq!(run(&mut m), Exit::Shutdown, "{:?}", m.stats.exceptions);
    let g = |r: usize| m.cpu.gpr[r];
    assert_eq!(g(reg::RSI), 0x7000, "ring-3 stack from ECX");
    assert_eq!(g(reg::RDI), 0x1B, "SYSEXIT: CS = SYSENTER_CS + 16, RPL 3");
    assert_eq!(g(reg::RBP), 0x10, "SYSENTER: SS = SYSENTER_CS + 8");
    assert_eq!(g(reg::RSP), 0x8000);
    assert_eq!(m.cpu.cpl(), 0);
    assert_ne!(cpuid::cpuid(1, 0)[3] & cpuid::edx1::SEP, 0, "advertised");
}

#[test]
fn data_write_breakpoint_traps_after_the_writing_instruction() {
    let code = assemble(
        32,
        0x10000,
        r#"
        mov eax, offset db_handler
        mov word ptr [0x2000 + 1*8], ax
        mov word ptr [0x2000 + 1*8 + 2], 0x08
        mov word ptr [0x2000 + 1*8 + 4], 0x8E00
        shr eax, 16
        mov word ptr [0x2000 + 1*8 + 6], ax
        lidt [idtr]
        xor ebx, ebx
        mov eax, 0x5000
        mov dr0, eax
        mov eax, 0x000D0001             # L0, R/W0 = 01 (writes), LEN0 = 11 (4 bytes)
        mov dr7, eax
        mov ecx, [0x5000]               # a read: no trap
        mov word ptr [0x5002], 7        # overlaps the watched dword: trap after it
    after_write:
        mov dword ptr [0x5004], 1       # just past the range: no trap
        hlt
    db_handler:
        inc ebx
        mov esi, [esp]                  # the saved EIP: the instruction after the write
        mov edi, dr6
        iretd
    idtr:
        .word 0x7FF
        .long 0x2000
        "#,
    );
    let mut m = protected_mode(&code);
    assert_eq!(run(&mut m), Exit::Shutdown);
    let g = |r: usize| m.cpu.gpr[r];
    assert_eq!(g(reg::RBX), 1, "exactly one #DB");
    let after_write = g(reg::RSI);
    assert!(after_write > 0x10000 && after_write < 0x10000 + code.len() as u64);
    assert_eq!(
        m.ram.read_le(after_write, 2).unwrap(),
        0x05C7,
        "EIP is at `mov dword ptr [0x5004], 1`"
    );
    assert_eq!(g(reg::RDI) & 0xF, 1, "DR6.B0");
}

#[test]
fn call_and_task_gate_switch_tasks_and_iret_returns_through_the_back_link() {
    let code = assemble(
        32,
        0x10000,
        r#"
        mov dword ptr [0x3100 + 0x20], offset task_b   # TSS B: EIP
        mov dword ptr [0x3100 + 0x24], 2                # EFLAGS
        mov dword ptr [0x3100 + 0x38], 0x6000           # ESP
        mov word ptr [0x3100 + 0x48], 0x10              # ES
        mov word ptr [0x3100 + 0x4C], 0x08              # CS
        mov word ptr [0x3100 + 0x50], 0x10              # SS
        mov word ptr [0x3100 + 0x54], 0x10              # DS
        mov word ptr [0x3100 + 0x58], 0x10              # FS
        mov word ptr [0x3100 + 0x5C], 0x10              # GS
        mov dword ptr [0x2000 + 0x40*8], 0x00200000     # IDT 0x40: task gate -> TSS B
        mov dword ptr [0x2000 + 0x40*8 + 4], 0x8500
        lidt [idtr]
        mov ax, 0x18
        ltr ax
        mov eax, 0x1111
        call 0x20:0                 # task switch to B (nested: NT, back link)
        mov esi, [0x5000]
        mov edi, eax                # restored from TSS A: 0x1111
        int 0x40                    # through the task gate: B resumes after its IRETD
        mov ebp, [0x5004]
        hlt
    task_b:
        mov ebx, [0x3100]           # back link
        pushfd
        pop ecx
        mov dword ptr [0x5000], 0x42
        mov dword ptr [0x5008], ebx
        mov dword ptr [0x500C], ecx
        mov eax, 0x9999             # lost when A's registers come back
        iretd
        mov dword ptr [0x5004], 0x43
        iretd
    idtr:
        .word 0x7FF
        .long 0x2000
        "#,
    );
    let mut m = two_task_machine(&code);
    assert_eq!(run(&mut m), Exit::Shutdown, "{:?}", m.stats.exceptions);
    let g = |r: usize| m.cpu.gpr[r];
    assert_eq!(g(reg::RSI), 0x42, "task B ran");
    assert_eq!(
        g(reg::RDI),
        0x1111,
        "task A's registers came back from its TSS"
    );
    assert_eq!(g(reg::RBP), 0x43, "the task gate resumed B after its IRETD");
    assert_eq!(m.ram.read_le(0x5008, 2).unwrap(), 0x18, "back link = TSS A");
    assert_ne!(
        m.ram.read_le(0x500C, 4).unwrap() & flags::NT,
        0,
        "B ran nested"
    );
    assert_eq!(m.cpu.tr.selector, 0x18);
    assert_ne!(
        m.cpu.cr0 & emulator::cpu::ctl::CR0_TS,
        0,
        "a task switch sets CR0.TS"
    );
    assert_eq!(m.ram.read_le(0x1018 + 5, 1).unwrap(), 0x8B, "A busy");
    assert_eq!(m.ram.read_le(0x1020 + 5, 1).unwrap(), 0x89, "B free again");
    assert_eq!(m.cpu.rflags & flags::NT, 0);
}

#[test]
fn single_step_waits_out_the_mov_ss_shadow() {
    let code = assemble(
        16,
        0x7C00,
        r#"
        mov word ptr [1*4], offset handler
        mov word ptr [1*4+2], 0
        xor bx, bx
        xor dx, dx
        pushf
        pop ax
        or ax, 0x100
        push ax
        popf
        mov ax, ss      # trap 1 (BX = 1)
        mov ss, ax      # held by the shadow ...
        mov sp, 0x7000  # ... until after this one: trap 2 sees SP already set
        hlt
    handler:
        inc bx
        cmp bx, 2
        jne 1f
        mov dx, sp      # the stack the trap frame went to: 0x7000 - 6
        mov bp, sp
        and word ptr [bp + 4], 0xFEFF   # stop stepping: clear TF in the saved FLAGS
    1:  iret
        "#,
    );
    let mut m = real_mode(&code);
    m.cpu.gpr[reg::RSP] = 0x6000;
    assert_eq!(run(&mut m), Exit::Shutdown);
    assert_eq!(
        m.cpu.gpr[reg::RBX] & 0xFFFF,
        2,
        "traps after `mov ax, ss` and `mov sp`, none between `mov ss` and `mov sp`"
    );
    assert_eq!(m.cpu.gpr[reg::RDX] & 0xFFFF, 0x7000 - 6);
}

/// Protected mode where task A (TSS 0x18) jumps to task B (TSS 0x20 at 0x3100, T flag = `t`);
/// the #DB handler counts in EBX, keeps DR6 in ESI and the saved EIP in EDI.
fn task_switch_with_t_flag(t: bool) -> Machine {
    let code = assemble(
        32,
        0x10000,
        &format!(
            r#"
        mov dword ptr [0x3100 + 0x20], offset task_b   # TSS B: EIP
        mov dword ptr [0x3100 + 0x24], 2                # EFLAGS
        mov dword ptr [0x3100 + 0x38], 0x6000           # ESP
        mov word ptr [0x3100 + 0x48], 0x10              # ES
        mov word ptr [0x3100 + 0x4C], 0x08              # CS
        mov word ptr [0x3100 + 0x50], 0x10              # SS
        mov word ptr [0x3100 + 0x54], 0x10              # DS
        mov word ptr [0x3100 + 0x58], 0x10              # FS
        mov word ptr [0x3100 + 0x5C], 0x10              # GS
        mov word ptr [0x3100 + 0x64], {t}               # T: trap on entry
        mov eax, offset db_handler                      # IDT 1: interrupt gate
        mov word ptr [0x2000 + 8], ax
        mov word ptr [0x2000 + 10], 0x08
        mov word ptr [0x2000 + 12], 0x8E00
        shr eax, 16
        mov word ptr [0x2000 + 14], ax
        lidt [idtr]
        mov ax, 0x18
        ltr ax
        xor ebx, ebx
        jmp 0x20:0
    task_b:
        mov ebp, 0x77
        hlt
    db_handler:
        inc ebx
        mov esi, dr6
        mov edi, [esp]
        iretd
    idtr:
        .word 0x7FF
        .long 0x2000
        "#,
            t = t as u8
        ),
    );
    two_task_machine(&code)
}

/// Flat 32-bit protected mode running `code` at 0x10000, with a GDT at 0x1000 holding ring-0
/// code 0x08 and data 0x10, and the 32-bit TSSs of task A (0x18, at 0x3000) and B (0x20, 0x3100).
fn two_task_machine(code: &[u8]) -> Machine {
    let mut m = Machine::new(4 << 20).unwrap();
    m.ram.write(0x10000, code).unwrap();
    let gdt: [u64; 5] = [
        0,
        0x00CF_9A00_0000_FFFF,
        0x00CF_9200_0000_FFFF,
        0x0000_8900_3000_0067, // 0x18 TSS A (the running task after LTR)
        0x0000_8900_3100_0067, // 0x20 TSS B
    ];
    for (i, d) in gdt.iter().enumerate() {
        m.ram.write_le(0x1000 + 8 * i as u64, 8, *d).unwrap();
    }
    m.cpu = CpuState::multiboot_entry(0x10000, 0);
    m.cpu.seg = [Segment::flat32(0x10, false); 6];
    m.cpu.seg[Seg::Cs as usize] = Segment::flat32(0x08, true);
    m.cpu.gdtr = DescriptorTable {
        base: 0x1000,
        limit: 0x27,
    };
    m.cpu.gpr[reg::RSP] = 0x9000;
    m
}

#[test]
fn a_task_with_its_t_flag_set_traps_before_its_first_instruction() {
    let mut m = task_switch_with_t_flag(true);
    assert_eq!(run(&mut m), Exit::Shutdown, "{:?}", m.stats.exceptions);
    let g = |r: usize| m.cpu.gpr[r];
    assert_eq!(g(reg::RBX), 1, "one #DB");
    assert_ne!(g(reg::RSI) & 1 << 15, 0, "DR6.BT");
    assert_eq!(g(reg::RSI) & 1 << 14, 0, "not a single-step");
    assert_eq!(g(reg::RBP), 0x77, "task B ran after the handler's IRETD");
    let task_b = m.ram.read_le(0x3100 + 0x20, 4).unwrap();
    assert_eq!(
        g(reg::RDI),
        task_b,
        "the frame's EIP is task B's first instruction"
    );

    let mut m = task_switch_with_t_flag(false);
    assert_eq!(run(&mut m), Exit::Shutdown);
    assert_eq!(m.cpu.gpr[reg::RBX], 0, "no T flag, no #DB");
    assert_eq!(m.cpu.gpr[reg::RBP], 0x77);
}

//! System pieces of the interpreter checked against the SDM's rules: 64-bit call gates, I/O
//! breakpoints, 16-bit TSS task switches, and UMIP (not advertised, so refused).
//! Teaches: each rule here is one line of an SDM pseudocode listing, and a test that could fail.

mod support;

use emulator::cpu::{ctl, flags, reg, CpuState, DescriptorTable, Seg, Segment};
use emulator::{Exit, Machine};
use support::{assemble, run};

// ---- 64-bit call gates --------------------------------------------------------------------

const GDT: u64 = 0x1000;
const IDT: u64 = 0x3000;
const TSS: u64 = 0x4000;
const PML4: u64 = 0x5000;
const CODE: u64 = 0x10000;
const RSP0: u64 = 0x9000;
const USER_RSP: u64 = 0x20000;

/// A 64-bit call gate (16 bytes) to `cs:offset` with `dpl`; `present` and the upper half's type.
fn gate64(cs: u16, offset: u64, dpl: u64, present: bool, upper_type: u64) -> [u64; 2] {
    let low = (offset & 0xFFFF)
        | (cs as u64) << 16
        | (0xC | dpl << 5 | (present as u64) << 7) << 40
        | ((offset >> 16) & 0xFFFF) << 48;
    [low, (offset >> 32) | upper_type << 40]
}

/// Long mode with `code` (assembled at CODE) entered at `entry` in ring `cpl` (64-bit CS, or the
/// 32-bit compatibility CS 0x2B with `compat`). GDT: 0x08 kernel code64, 0x10 kernel data,
/// 0x18 user code64, 0x20 user data, 0x28 user code32, 0x30 TSS (16 bytes), 0x40 kernel code32;
/// call gates 0x48 (DPL 3 → 0x08:kernel_entry), 0x58 (DPL 0), 0x68 (not present), 0x78 (→ 32-bit
/// code), 0x88 (upper type ≠ 0), 0x98 (a legacy 16-bit gate, type 4), 0xA8 (non-canonical
/// target). IDT: #TS #NP #SS(IST1) #GP stubs at CODE+0x100.. that put the vector in R12, the
/// error code in R13 and halt.
fn gate_machine(code: &[u8], entry: u64, cpl: u8, compat: bool) -> Machine {
    let mut m = Machine::new(4 << 20).unwrap();
    m.ram.write(CODE, code).unwrap();
    let kernel_entry = CODE + 0x200;
    let mut gdt: Vec<u64> = vec![
        0,
        0x00AF_9A00_0000_FFFF,
        0x00CF_9200_0000_FFFF,
        0x00AF_FA00_0000_FFFF,
        0x00CF_F200_0000_FFFF,
        0x00CF_FA00_0000_FFFF,
        0x0000_8900_0000_0067 | (TSS << 16),
        0,
        0x00CF_9A00_0000_FFFF,
    ];
    gdt.extend(gate64(0x08, kernel_entry, 3, true, 0));
    gdt.extend(gate64(0x08, kernel_entry, 0, true, 0));
    gdt.extend(gate64(0x08, kernel_entry, 3, false, 0));
    gdt.extend(gate64(0x40, kernel_entry, 3, true, 0));
    gdt.extend(gate64(0x08, kernel_entry, 3, true, 0xC));
    let legacy = gate64(0x08, kernel_entry, 3, true, 0)[0] & !(0xF << 40) | 0x4 << 40;
    gdt.extend([legacy, 0]);
    gdt.extend(gate64(0x08, kernel_entry | 1 << 47, 3, true, 0)); // 0xA8: non-canonical target
    for (i, e) in gdt.iter().enumerate() {
        m.ram.write_le(GDT + 8 * i as u64, 8, *e).unwrap();
    }
    for (v, at) in [(10u64, 0x100u64), (11, 0x120), (12, 0x140), (13, 0x160)] {
        let h = CODE + at;
        // #SS runs on IST1, so a bad RSP0 can still be reported.
        let ist = if v == 12 { 1u64 << 32 } else { 0 };
        let low = (h & 0xFFFF) | 0x08 << 16 | ist | 0x8E << 40 | ((h >> 16) & 0xFFFF) << 48;
        m.ram.write_le(IDT + 16 * v, 8, low).unwrap();
    }
    m.ram.write_le(TSS + 4, 8, RSP0).unwrap();
    m.ram.write_le(TSS + 0x24, 8, RSP0 - 0x400).unwrap(); // IST1
    m.ram.write_le(PML4, 8, (PML4 + 0x1000) | 7).unwrap();
    m.ram
        .write_le(PML4 + 0x1000, 8, (PML4 + 0x2000) | 7)
        .unwrap();
    m.ram.write_le(PML4 + 0x2000, 8, 0x87).unwrap();
    let mut s = CpuState::multiboot_entry(entry as u32, 0);
    s.cr0 |= ctl::CR0_PG;
    s.cr4 = ctl::CR4_PAE;
    s.cr3 = PML4;
    s.efer = ctl::EFER_LME | ctl::EFER_LMA;
    s.gdtr = DescriptorTable {
        base: GDT,
        limit: (gdt.len() * 8 - 1) as u16,
    };
    s.idtr = DescriptorTable {
        base: IDT,
        limit: 16 * 32 - 1,
    };
    s.tr = Segment {
        selector: 0x30,
        base: TSS,
        limit: 0x67,
        type_: 0xB,
        present: true,
        ..Default::default()
    };
    let (cs, ss) = if cpl == 3 {
        (if compat { 0x2B } else { 0x1B }, 0x23)
    } else {
        (0x08, 0x10)
    };
    s.seg = [Segment {
        dpl: cpl,
        ..Segment::flat32(ss, false)
    }; 6];
    s.seg[Seg::Cs as usize] = Segment {
        dpl: cpl,
        l: !compat,
        db: compat,
        ..Segment::flat32(cs, true)
    };
    s.gpr[reg::RSP] = USER_RSP;
    s.rflags = flags::FIXED1 | flags::IOPL; // IOPL 3: ring 3 may OUT to isa-debug-exit
    m.cpu = s;
    m
}

/// The kernel side: fault stubs at +0x100.., the gate target at +0x200 that records its stack
/// frame (R8 = RSP, R9 = return RIP, R10 = return CS, R11 = old RSP, RBX = old SS, CX = SS,
/// DX = CS) and returns with RETFQ.
const KERNEL: &str = r#"
    .org 0x100
    mov r12, 10
    pop r13
    hlt
    .org 0x120
    mov r12, 11
    pop r13
    hlt
    .org 0x140
    mov r12, 12
    pop r13
    hlt
    .org 0x160
    mov r12, 13
    pop r13
    hlt
    .org 0x200
    mov r8, rsp
    mov r9, [rsp]
    mov r10, [rsp + 8]
    mov r11, [rsp + 16]
    mov rbx, [rsp + 24]
    mov cx, ss
    mov dx, cs
    .byte 0x48, 0xCB          # retfq
"#;

/// User code that far-calls (or jumps, `how` = "jmp") through `selector`, then exits with 0x42.
fn through_gate(how: &str, selector: u16) -> Vec<u8> {
    assemble(
        64,
        CODE,
        &format!(
            r#"
    lea rsi, [rip + back]
    {how} fword ptr [rip + ptr]
back:
    mov eax, 0x42
    out 0xF4, eax
ptr:
    .long 0
    .word {selector:#x}
{KERNEL}"#
        ),
    )
}

/// (vector, error code) of the fault a gate machine halted in.
fn fault_of(m: &Machine, exit: &Exit) -> (u64, u64) {
    assert_eq!(*exit, Exit::Shutdown, "expected a fault stub's HLT");
    (m.cpu.gpr[12], m.cpu.gpr[13])
}

#[test]
fn a_64_bit_call_gate_from_ring_3_switches_to_the_tss_stack_with_a_null_ss() {
    let mut m = gate_machine(&through_gate("call", 0x4B), CODE, 3, false);
    let exit = run(&mut m);
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x42,
            status: 0x85
        }
    );
    let g = m.cpu.gpr;
    assert_eq!(g[8], RSP0 - 32, "four 8-byte pushes on RSP0");
    assert_eq!(g[9], g[reg::RSI], "return RIP");
    assert_eq!(g[10], 0x1B, "return CS");
    assert_eq!(g[11], USER_RSP, "old RSP");
    assert_eq!(g[reg::RBX], 0x23, "old SS");
    assert_eq!(
        g[reg::RCX] & 0xFFFF,
        0,
        "SS is a null selector with RPL = new CPL (0)"
    );
    assert_eq!(g[reg::RDX] & 0xFFFF, 0x08, "the gate's CS at CPL 0");
    // RETFQ brought it back to ring 3 on the user stack.
    assert_eq!((m.cpu.cpl(), m.cpu.gpr[reg::RSP]), (3, USER_RSP));
}

#[test]
fn a_call_gate_from_compatibility_mode_lands_in_64_bit_code() {
    // 32-bit code at CODE+0x800: call far [ptr] (FF 1D m16:32), then out 0xF4, eax.
    let mut code = through_gate("call", 0x4B);
    code.resize(0x900, 0);
    let ptr = (CODE + 0x880) as u32;
    let mut user32 = vec![0xB8, 0x42, 0, 0, 0, 0xFF, 0x1D];
    user32.extend_from_slice(&ptr.to_le_bytes());
    user32.extend_from_slice(&[0xE7, 0xF4]);
    code[0x800..0x800 + user32.len()].copy_from_slice(&user32);
    code[0x880..0x886].copy_from_slice(&[0, 0, 0, 0, 0x4B, 0]);
    let mut m = gate_machine(&code, CODE + 0x800, 3, true);
    let exit = run(&mut m);
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x42,
            status: 0x85
        }
    );
    let g = m.cpu.gpr;
    assert_eq!(g[9], CODE + 0x800 + 11, "return EIP, zero-extended");
    assert_eq!(g[10], 0x2B, "return CS: the 32-bit code segment");
    assert_eq!(g[reg::RDX] & 0xFFFF, 0x08);
    assert!(m.cpu.cs().db && !m.cpu.cs().l, "back in compatibility mode");
}

#[test]
fn a_call_gate_at_the_same_privilege_pushes_only_cs_and_rip() {
    let mut m = gate_machine(&through_gate("call", 0x48), CODE, 0, false);
    let exit = run(&mut m);
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x42,
            status: 0x85
        }
    );
    assert_eq!(m.cpu.gpr[8], USER_RSP - 16);
    assert_eq!(m.cpu.gpr[10], 0x08);
    assert_eq!(m.cpu.gpr[reg::RCX] & 0xFFFF, 0x10, "SS unchanged");
}

#[test]
fn call_gate_checks_raise_the_sdm_exceptions() {
    let cases: [(&str, u16, (u64, u64), &str); 6] = [
        ("call", 0x5B, (13, 0x58), "gate DPL 0 < CPL 3: #GP(gate)"),
        ("call", 0x6B, (11, 0x68), "gate not present: #NP(gate)"),
        (
            "call",
            0x7B,
            (13, 0x40),
            "target is 32-bit code: #GP(target CS)",
        ),
        (
            "call",
            0x8B,
            (13, 0x88),
            "upper half's type field not 0: #GP(gate)",
        ),
        (
            "call",
            0x9B,
            (13, 0x98),
            "a 16-bit call gate in long mode: #GP(selector)",
        ),
        (
            "jmp",
            0x4B,
            (13, 0x08),
            "JMP through a gate never raises privilege: #GP(target CS)",
        ),
    ];
    for (how, sel, want, why) in cases {
        let mut m = gate_machine(&through_gate(how, sel), CODE, 3, false);
        let exit = run(&mut m);
        assert_eq!(fault_of(&m, &exit), want, "{why}");
    }
}

#[test]
fn a_call_gate_checks_its_target_and_the_new_stack_for_canonical_addresses() {
    // A non-canonical entry point: #GP(0), nothing pushed.
    let mut m = gate_machine(&through_gate("call", 0xAB), CODE, 3, false);
    let exit = run(&mut m);
    assert_eq!(fault_of(&m, &exit), (13, 0), "non-canonical target");
    // An RSP0 whose 32 bytes of pushes are non-canonical: #SS(0) (the null new SS's
    // selector), reported on IST1; RSP, CS and SS as before the CALL.
    let mut m = gate_machine(&through_gate("call", 0x4B), CODE, 3, false);
    m.ram.write_le(TSS + 4, 8, (1 << 47) + 64).unwrap();
    let exit = run(&mut m);
    assert_eq!(fault_of(&m, &exit), (12, 0), "non-canonical RSP0");
    let frame = RSP0 - 0x400 - 48; // error code, RIP, CS, RFLAGS, RSP, SS on IST1
    assert_eq!(m.ram.read_le(frame + 16, 8).unwrap(), 0x1B);
    assert_eq!(m.ram.read_le(frame + 32, 8).unwrap(), USER_RSP);
}

#[test]
fn a_call_gate_with_rsp0_too_close_to_the_tss_limit_is_a_ts() {
    // TSS limit 0x0B: RSP0 (bytes 4..11) reaches 4 + 8 = 12 > limit → #TS(TSS selector).
    let mut m = gate_machine(&through_gate("call", 0x4B), CODE, 3, false);
    m.cpu.tr.limit = 0x0B;
    let exit = run(&mut m);
    // The #TS handler itself needs RSP0 from that TSS: the SDM's double-fault path. What must
    // not happen is a successful call.
    assert_ne!(
        exit,
        Exit::DebugExit {
            value: 0x42,
            status: 0x85
        }
    );
    let mut m = gate_machine(&through_gate("call", 0x4B), CODE, 3, false);
    m.cpu.tr.limit = 0x0C;
    assert_eq!(
        run(&mut m),
        Exit::DebugExit {
            value: 0x42,
            status: 0x85
        }
    );
}

// ---- I/O breakpoints ------------------------------------------------------------------------

/// Protected mode at 0x10000 with an IDT whose #DB gate records DR6 in EBX and the saved EIP in
/// EBP, then exits with 0xDB.
fn io_breakpoint_machine(dr7: u64, dr0: u64, de: bool, body: &str) -> Machine {
    let code = assemble(
        32,
        0x10000,
        &format!(
            r#"
    {body}
    mov eax, 0x11
    out 0xF4, eax
    .org 0x100
    mov ebx, dr6
    mov ebp, [esp]
    mov eax, 0xDB
    out 0xF4, eax
"#
        ),
    );
    let mut m = support::protected_mode(&code);
    let h = 0x10100u64;
    let gate = (h & 0xFFFF) | 0x08 << 16 | 0x8E << 40 | ((h >> 16) & 0xFFFF) << 48;
    m.ram.write_le(0x2000 + 8, 8, gate).unwrap();
    m.cpu.idtr = DescriptorTable {
        base: 0x2000,
        limit: 0xFF,
    };
    m.cpu.dr[7] = dr7;
    m.cpu.dr[0] = dr0;
    if de {
        m.cpu.cr4 |= ctl::CR4_DE;
    }
    m
}

/// DR7 with breakpoint 0 enabled locally, R/W = 10 (I/O), LEN field `len`.
fn dr7_io(len: u64) -> u64 {
    1 | 2 << 16 | len << 18
}

fn db_exit(m: &mut Machine) -> bool {
    match run(m) {
        Exit::DebugExit { value: 0xDB, .. } => true,
        Exit::DebugExit { value: 0x11, .. } => false,
        other => panic!("unexpected exit {other:?}"),
    }
}

#[test]
fn an_io_breakpoint_traps_after_out_in_ins_and_outs_to_its_port() {
    for body in [
        "out 0x80, al",
        "in al, 0x80",
        "mov dx, 0x80\n out dx, eax",
        "mov dx, 0x80\n mov esi, 0x30000\n outsb",
        "mov dx, 0x80\n mov edi, 0x30000\n insb",
    ] {
        let mut m = io_breakpoint_machine(dr7_io(0), 0x80, true, body);
        assert!(db_exit(&mut m), "{body}: no #DB");
        assert_eq!(m.cpu.gpr[reg::RBX] & 0xF, 1, "{body}: DR6.B0");
        // A trap: the saved EIP is after the I/O instruction (the code's last before the exit).
        let after = 0x10000 + assemble(32, 0x10000, body).len() as u64;
        assert_eq!(m.cpu.gpr[reg::RBP], after, "{body}");
    }
}

#[test]
fn an_io_breakpoint_needs_cr4_de_its_port_range_and_r_w_10() {
    // Without CR4.DE, R/W = 10 is undefined: no trap here.
    let mut m = io_breakpoint_machine(dr7_io(0), 0x80, false, "out 0x80, al");
    assert!(!db_exit(&mut m));
    // LEN 1 at 0x80 does not cover 0x81; LEN 2 does (the range is aligned to LEN).
    let mut m = io_breakpoint_machine(dr7_io(0), 0x80, true, "out 0x81, al");
    assert!(!db_exit(&mut m));
    let mut m = io_breakpoint_machine(dr7_io(1), 0x80, true, "out 0x81, al");
    assert!(db_exit(&mut m));
    // A 4-byte OUT at 0x7E overlaps a 1-byte breakpoint at 0x80.
    let mut m = io_breakpoint_machine(dr7_io(0), 0x80, true, "out 0x7E, eax");
    assert!(db_exit(&mut m));
    // A memory access at the same address is not an I/O access.
    let mut m = io_breakpoint_machine(dr7_io(0), 0x80, true, "mov al, [0x80]");
    assert!(!db_exit(&mut m));
}

#[test]
fn single_step_traps_after_into_without_overflow_and_after_each_rep_iteration() {
    // INTO with OF = 0 raises nothing: the step trap follows it (RIP after INTO, DR6.BS).
    let mut m = io_breakpoint_machine(0, 0, false, "into");
    m.cpu.rflags |= flags::TF;
    assert!(db_exit(&mut m));
    assert_eq!(m.cpu.gpr[reg::RBP], 0x10001);
    assert_ne!(m.cpu.gpr[reg::RBX] & 1 << 14, 0, "DR6.BS");
    // REP MOVSB with ECX = 3: the trap comes after the first iteration, at the instruction,
    // with ECX = 2 (SDM Vol. 3 17.3.1.4).
    let mut m = io_breakpoint_machine(0, 0, false, "rep movsb");
    m.cpu.rflags |= flags::TF;
    m.cpu.gpr[reg::RCX] = 3;
    m.cpu.gpr[reg::RSI] = 0x30000;
    m.cpu.gpr[reg::RDI] = 0x31000;
    assert!(db_exit(&mut m));
    assert_eq!(m.cpu.gpr[reg::RBP], 0x10000);
    assert_eq!((m.cpu.gpr[reg::RCX], m.cpu.gpr[reg::RDI]), (2, 0x31001));
}

// ---- 16-bit TSS task switches ---------------------------------------------------------------

/// Protected mode with task A (the current task, busy 16-bit TSS at 0x3000, selector 0x20)
/// running `a` at 0x8000, and task B (available 16-bit TSS at 0x3100 with limit `b_limit`,
/// selector 0x28) whose TSS starts `b` at 0x7000 with AX..DI = 0x1111..0x8888 (SP 0xE000).
/// IDT: a #TS handler (32-bit gate, vector 10) that pops the error code into EBX and exits 0x77.
fn tss16_machine(a: &[u8], b: &[u8], b_limit: u64) -> Machine {
    let mut m = support::protected_mode(&[]);
    m.ram.write(0x8000, a).unwrap();
    m.ram.write(0x7000, b).unwrap();
    // 16-bit TSS descriptors: type 3 (busy, the current task) and type 1 (available).
    m.ram.write_le(0x1020, 8, 0x0000_8300_3000_002B).unwrap();
    m.ram
        .write_le(0x1028, 8, 0x0000_8100_3100_0000 | b_limit)
        .unwrap();
    m.cpu.gdtr.limit = 0x2F;
    m.cpu.tr = Segment {
        selector: 0x20,
        base: 0x3000,
        limit: 0x2B,
        type_: 0x3,
        present: true,
        ..Default::default()
    };
    // Task B's TSS: IP, FLAGS, AX..DI, ES CS SS DS, LDT.
    let tss_b: [(u64, u16); 14] = [
        (0x0E, 0x7000),
        (0x10, 0x0002),
        (0x12, 0x1111),
        (0x14, 0x2222),
        (0x16, 0x3333),
        (0x18, 0x4444),
        (0x1A, 0xE000),
        (0x1C, 0x6666),
        (0x20, 0x8888),
        (0x22, 0x10),
        (0x24, 0x08),
        (0x26, 0x10),
        (0x28, 0x10),
        (0x2A, 0),
    ];
    for (off, v) in tss_b {
        m.ram.write_le(0x3100 + off, 2, v as u64).unwrap();
    }
    let ts = assemble(32, 0x9800, "pop ebx\n mov eax, 0x77\n out 0xF4, eax");
    m.ram.write(0x9800, &ts).unwrap();
    let gate = 0x9800 | 0x08 << 16 | 0x8E << 40;
    m.ram.write_le(0x2000 + 8 * 10, 8, gate).unwrap();
    m.cpu.idtr = DescriptorTable {
        base: 0x2000,
        limit: 0xFF,
    };
    m.cpu.rip = 0x8000;
    m.cpu.gpr[reg::RSP] = 0xF000;
    m
}

#[test]
fn a_call_to_a_16_bit_tss_switches_tasks_and_iret_returns() {
    // Task A (the current one, 16-bit TSS at 0x3000, selector 0x20) runs at 0x8000 and calls
    // task B (16-bit TSS at 0x3100, selector 0x28), whose code at 0x7000 marks registers and
    // returns with IRET (NT = 1 → back link).
    let a = assemble(
        32,
        0x8000,
        r#"
    mov eax, 0x12345678
    mov esi, 0xAAAA5555
    .byte 0x9A                # call 0x28:0 (ptr16:32)
    .long 0
    .word 0x28
    mov edi, 0x77
    mov eax, 0x11
    out 0xF4, eax
"#,
    );
    let b = assemble(
        32,
        0x7000,
        r#"
    pushfd
    pop ebp
    mov dx, ss
    add bx, 1
    iretd
"#,
    );
    let mut m = tss16_machine(&a, &b, 0x2B);
    let exit = run(&mut m);
    assert_eq!(
        exit,
        Exit::DebugExit {
            value: 0x11,
            status: 0x23
        }
    );
    let g = m.cpu.gpr;
    // Task B saw its TSS's registers (BX + 1) and NT set in its FLAGS; on IRET its state went
    // back into its TSS.
    let b_word = |off: u64| m.ram.read_le(0x3100 + off, 2).unwrap();
    assert_eq!(b_word(0x18), 0x4445, "task B's BX saved in its 16-bit TSS");
    assert_eq!(b_word(0x00), 0x20, "back link = task A's TSS selector");
    let b_flags = m.ram.read_le(0x3100 + 0x1C, 2).unwrap(); // BP held PUSHFD's FLAGS
    assert_ne!(b_flags & flags::NT, 0, "task B ran nested (NT = 1)");
    // Task A resumed after the CALL with its registers from its TSS: the low 16 bits are kept
    // (the upper halves are lost in a 16-bit TSS).
    assert_eq!(g[reg::RDI], 0x77);
    assert_eq!(g[reg::RSI] & 0xFFFF, 0x5555);
    assert_eq!(g[reg::RAX] & 0xFFFF, 0x11);
    assert_eq!(m.cpu.tr.selector, 0x20);
    // Busy bits: A busy again (type 3), B available after IRET (type 1); CR0.TS set.
    assert_eq!(m.ram.read_le(0x1025, 1).unwrap() & 0xF, 0x3);
    assert_eq!(m.ram.read_le(0x102D, 1).unwrap() & 0xF, 0x1);
    assert_ne!(m.cpu.cr0 & ctl::CR0_TS, 0);
    // Task A's 16-bit TSS got the IP after the CALL.
    let call_end = 0x8000 + 5 + 5 + 7;
    assert_eq!(m.ram.read_le(0x3000 + 0x0E, 2).unwrap(), call_end);
}

// ---- UMIP -----------------------------------------------------------------------------------

#[test]
fn umip_is_not_advertised_and_cr4_umip_cannot_be_set() {
    // CPUID.(EAX=7,ECX=0):ECX bit 2 is UMIP.
    let code = assemble(
        32,
        0x10000,
        r#"
    mov eax, 7
    xor ecx, ecx
    cpuid
    mov ebx, ecx
    mov eax, cr4
    or eax, 0x800
    mov cr4, eax
    mov eax, 0x11
    out 0xF4, eax
"#,
    );
    let mut m = support::protected_mode(&code);
    let exit = run(&mut m);
    assert_eq!(m.cpu.gpr[reg::RBX] & 4, 0, "UMIP advertised");
    // MOV to CR4 with a bit the CPU does not support is #GP(0); with no IDT, a triple fault.
    assert!(matches!(exit, Exit::TripleFault { .. }), "{exit:?}");
}

#[test]
fn a_jmp_to_a_16_bit_tss_frees_the_old_task_and_loads_the_16_bit_registers() {
    let a = assemble(
        32,
        0x8000,
        r#"
    mov ebx, 0xFFFF1234
    .byte 0xEA                # jmp 0x28:0 (ptr16:32)
    .long 0
    .word 0x28
"#,
    );
    let b = assemble(32, 0x7000, "mov eax, 0x11\n out 0xF4, eax");
    let mut m = tss16_machine(&a, &b, 0x2B);
    assert_eq!(
        run(&mut m),
        Exit::DebugExit {
            value: 0x11,
            status: 0x23
        }
    );
    // JMP: A becomes available (type 1), B busy (type 3), no back link, NT clear.
    assert_eq!(m.ram.read_le(0x1025, 1).unwrap() & 0xF, 0x1);
    assert_eq!(m.ram.read_le(0x102D, 1).unwrap() & 0xF, 0x3);
    assert_eq!(m.ram.read_le(0x3100, 2).unwrap(), 0);
    assert_eq!(m.cpu.rflags & flags::NT, 0);
    assert_eq!(m.cpu.tr.selector, 0x28);
    // B's registers are the TSS's 16-bit values; A's BX went into A's TSS as 16 bits.
    assert_eq!(m.cpu.gpr[reg::RBX] & 0xFFFF, 0x4444);
    assert_eq!(m.cpu.gpr[reg::RSP] & 0xFFFF, 0xE000);
    assert_eq!(
        m.ram.read_le(0x3000 + 0x18, 4).unwrap(),
        0xF000_1234,
        "BX, then SP"
    );
    assert_eq!(m.ram.read_le(0x3000 + 0x0E, 2).unwrap(), 0x8000 + 5 + 7);
}

#[test]
fn a_16_bit_tss_below_its_minimum_limit_is_a_ts() {
    // The smallest 16-bit TSS is 44 bytes (limit 0x2B): limit 0x2A → #TS(0x28), no switch.
    let a = assemble(32, 0x8000, ".byte 0xEA\n .long 0\n .word 0x28");
    let b = assemble(32, 0x7000, "mov eax, 0x11\n out 0xF4, eax");
    let mut m = tss16_machine(&a, &b, 0x2A);
    assert_eq!(
        run(&mut m),
        Exit::DebugExit {
            value: 0x77,
            status: 0xEF
        }
    );
    assert_eq!(m.cpu.gpr[reg::RBX], 0x28);
    assert_eq!(m.cpu.tr.selector, 0x20);
}

// ---- the debug registers themselves -----------------------------------------------------------

#[test]
fn dr4_and_dr5_are_dr6_and_dr7_without_cr4_de_and_keep_their_fixed_bits() {
    let body = "
    mov eax, 0x0F
    mov dr4, eax
    mov ecx, dr6
    mov edx, dr4
    mov eax, 0xD900
    mov dr5, eax
    mov esi, dr7
    mov eax, 0
    mov dr6, eax
    mov edi, dr6";
    let mut m = io_breakpoint_machine(0, 0, false, body);
    assert!(!db_exit(&mut m));
    let r = |i: usize| m.cpu.gpr[i] & 0xFFFF_FFFF;
    assert_eq!(
        r(reg::RCX),
        0xFFFF_0FFF,
        "B0-B3 written through DR4, read as DR6"
    );
    assert_eq!(r(reg::RDX), 0xFFFF_0FFF, "DR4 reads DR6");
    assert_eq!(
        r(reg::RSI),
        0x500,
        "DR7: LE kept, bits 11/12/14/15 read 0, bit 10 reads 1"
    );
    assert_eq!(
        r(reg::RDI),
        0xFFFF_0FF0,
        "DR6's reserved bits read 1 whatever is written"
    );
}

#[test]
fn dr4_is_undefined_opcode_with_cr4_de() {
    let mut m = io_breakpoint_machine(0, 0, true, "mov eax, dr4");
    // No #UD gate in this IDT: #UD → #GP → #DF → triple fault proves the #UD was raised.
    assert!(matches!(run(&mut m), Exit::TripleFault { .. }));
    let mut m = io_breakpoint_machine(0, 0, true, "mov eax, dr6");
    assert!(!db_exit(&mut m), "DR6 itself is fine with CR4.DE");
}

#[test]
fn general_detect_faults_on_any_mov_dr_and_clears_itself_for_the_handler() {
    for body in ["mov eax, dr0", "mov dr3, eax", "nop\n mov eax, dr7"] {
        let mut m = io_breakpoint_machine(1 << 13, 0, false, body);
        assert!(db_exit(&mut m), "{body}: #DB");
        assert_ne!(m.cpu.gpr[reg::RBX] & 1 << 13, 0, "{body}: DR6.BD");
        // A fault: the saved EIP is the MOV itself (after the NOP in the last case).
        let at = 0x10000 + if body.starts_with("nop") { 1 } else { 0 };
        assert_eq!(m.cpu.gpr[reg::RBP], at, "{body}");
        assert_eq!(m.cpu.dr[7] & 1 << 13, 0, "{body}: GD clear in the handler");
    }
}

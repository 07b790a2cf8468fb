//! Ring 3 → ring 0 by SYSCALL and by INT 0x80 through a DPL-3 gate, and back by SYSRETQ.
//! Teaches: how a system call crosses privilege levels, and how PVM's paravirtual model breaks it.
//!
//! On VT-x/AMD-V both paths are architectural. On PVM (no VT-x: the guest kernel runs at
//! hardware CPL 3 and PVM keeps "supervisor mode" in software) a guest enters its kernel from
//! user mode only the PVM way: through a PVM vCPU struct and event entry point that the guest
//! registers with PVM's own MSRs. This host exposes none of them to the VMM, so an ordinary
//! kernel gets, measured here: SYSCALL sets RCX, R11 and RIP = LSTAR but stays at CPL 3 (the
//! fetch at LSTAR, a supervisor page, is a user-mode #PF), and INT 0x80 raises #UD at the INT.
//! These tests pin down both behaviours, because `guests/asm/hello64.S` relies on them.

mod common;

use accel_kvm::{detect_flavour, KvmFlavour};
use common::*;
use emulator::cpu::state::{ctl, reg, DescriptorTable, Segment};
use emulator::{Engine, Exit, Machine, RunLimit};

const TSS: u64 = 0x3000;
const SEL_TSS: u16 = 0x40;
const USER_CODE: u64 = 0x20_0000;
const USER_STACK_TOP: u64 = 0x20_8000;
const USER_RFLAGS: u64 = 0x202; // IF and the always-one bit 1
/// Our `ring3_machine` makes the first 2 MiB (kernel) supervisor-only; 2-4 MiB is the user's.
const PD: u64 = PML4 + 0x2000;

/// What a run ended with: the console text and the registers the handlers filled in.
struct Outcome {
    console: String,
    exit_value: u32,
    /// Error code (#PF), frame RIP, frame CS — as the handler left them in RBX, RSI, RDX.
    error_code: u64,
    frame_rip: u64,
    frame_cs: u64,
    rcx: u64,
    r11: u64,
    /// Where the kernel's SYSCALL entry is (MSR LSTAR).
    lstar: u64,
}

/// A 64-bit interrupt gate in the IDT: handler at `target`, kernel CS, privilege `dpl`.
fn write_gate(m: &mut Machine, vector: u8, target: u64, dpl: u8) {
    let low = (target & 0xFFFF)
        | (SEL_CODE64 as u64) << 16
        | (0x8E | u64::from(dpl) << 5) << 40
        | (target >> 16 & 0xFFFF) << 48;
    let at = IDT + 16 * u64::from(vector);
    m.ram.write_le(at, 8, low).unwrap();
    m.ram.write_le(at + 8, 8, target >> 32).unwrap();
}

/// Runs `user` (machine code) in ring 3 at 2 MiB, entered with IRETQ from a kernel whose
/// handlers report on the console (port 0xE9) and exit via port 0xF4: SYSCALL entry 'S'
/// (returns with SYSRETQ), INT 0x80 'I' (exit 0x10), #PF 'P' (0x11), #UD 'U' (0x12), any
/// other vector 'X' (0x13).
fn run_in_ring3(user: &[u8]) -> Outcome {
    let frame_to_regs: &[u8] = &[
        0x48, 0x8B, 0x34, 0x24, // mov rsi, [rsp]      frame RIP
        0x48, 0x8B, 0x54, 0x24, 0x08, // mov rdx, [rsp+8]    frame CS
    ];
    let mut a = Asm::new(CODE);
    a.b(&[0x6A, SEL_USER_DATA as u8]) // push ss
        .imm32(&[0x68], USER_STACK_TOP as u32) // push rsp
        .imm32(&[0x68], USER_RFLAGS as u32) // push rflags
        .b(&[0x6A, SEL_USER_CODE64 as u8]) // push cs
        .imm32(&[0x68], USER_CODE as u32) // push rip
        .b(&[0x48, 0xCF]) // iretq
        .label("syscall")
        .mov_al(b'S')
        .out_al(0xE9)
        .b(&[0x48, 0x0F, 0x07]) // sysretq
        .label("int80")
        .b(frame_to_regs)
        .mov_al(b'I')
        .out_al(0xE9)
        .mov_al(0x10)
        .out_al(0xF4)
        .label("pf")
        .b(&[0x5B]) // pop rbx: the error code
        .b(frame_to_regs)
        .mov_al(b'P')
        .out_al(0xE9)
        .mov_al(0x11)
        .out_al(0xF4)
        .label("ud")
        .b(frame_to_regs)
        .mov_al(b'U')
        .out_al(0xE9)
        .mov_al(0x12)
        .out_al(0xF4)
        .label("other")
        .mov_al(b'X')
        .out_al(0xE9)
        .mov_al(0x13)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = long_mode_machine(&code, CODE, CODE);
    m.ram.write(USER_CODE, user).unwrap();
    m.ram.write_le(PD, 8, 0x83).unwrap(); // 0-2 MiB: present, writable, 2 MiB, supervisor only

    for v in 0..=255u8 {
        write_gate(&mut m, v, a.addr("other"), 0);
    }
    write_gate(&mut m, 6, a.addr("ud"), 0);
    write_gate(&mut m, 14, a.addr("pf"), 0);
    write_gate(&mut m, 0x80, a.addr("int80"), 3); // ring 3 may INT 0x80
    m.cpu.idtr = DescriptorTable {
        base: IDT,
        limit: 256 * 16 - 1,
    };

    // A TSS whose RSP0 is the kernel stack: where ring 3 → ring 0 interrupts push their frame.
    m.ram.write_le(TSS + 4, 8, STACK_TOP).unwrap();
    let tss_low = 103 | (TSS & 0xFF_FFFF) << 16 | 0x8B << 40 | (TSS >> 24 & 0xFF) << 56;
    m.ram.write_le(GDT + SEL_TSS as u64, 8, tss_low).unwrap();
    m.ram.write_le(GDT + SEL_TSS as u64 + 8, 8, 0).unwrap();
    m.cpu.gdtr.limit = SEL_TSS + 15;
    m.cpu.tr = Segment {
        selector: SEL_TSS,
        base: TSS,
        limit: 103,
        type_: 0xB, // busy 64-bit TSS
        present: true,
        ..Default::default()
    };

    // SYSCALL: CS = STAR[47:32], SS = that + 8. SYSRETQ: CS = STAR[63:48] + 16, SS = + 8.
    m.cpu.efer |= ctl::EFER_SCE;
    m.cpu.msrs.star = ((SEL_USER_CODE64 as u64 - 16) | 3) << 48 | (SEL_CODE64 as u64) << 32;
    m.cpu.msrs.lstar = a.addr("syscall");
    m.cpu.msrs.fmask = 0x700; // TF, IF, DF

    let mut kvm = engine(&m);
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    let exit_value = match exit {
        Exit::DebugExit { value, .. } => value,
        other => panic!("the guest ended with {other:?} at rip {:#x}", m.cpu.rip),
    };
    Outcome {
        console: String::from_utf8_lossy(&m.bus.take_console_output()).into_owned(),
        exit_value,
        error_code: m.cpu.gpr[reg::RBX],
        frame_rip: m.cpu.gpr[reg::RSI],
        frame_cs: m.cpu.gpr[reg::RDX],
        rcx: m.cpu.gpr[reg::RCX],
        r11: m.cpu.gpr[11],
        lstar: a.addr("syscall"),
    }
}

#[test]
fn syscall_from_ring_3_reaches_ring_0_and_sysretq_returns() {
    if !kvm_or_skip("syscall_from_ring_3_reaches_ring_0_and_sysretq_returns") {
        return;
    }
    let user = [
        0xB8, 7, 0, 0, 0, // mov eax, 7
        0x0F, 0x05, // syscall
        0xCD, 0x80, // int 0x80
        0xEB, 0xFE, // jmp $
    ];
    let o = run_in_ring3(&user);
    if o.console == "SI" {
        // Architectural: the kernel ran the SYSCALL entry at ring 0, SYSRETQ went back to the
        // instruction after SYSCALL in ring 3, and that INT 0x80 came in through its gate.
        assert_eq!(o.exit_value, 0x10);
        assert_eq!(o.frame_rip, USER_CODE + 9, "INT 0x80 returns after itself");
        assert_eq!(o.frame_cs, u64::from(SEL_USER_CODE64));
        assert_eq!(o.rcx, USER_CODE + 7, "SYSCALL put the return RIP in RCX");
        assert_eq!(o.r11, USER_RFLAGS, "SYSCALL put the user's RFLAGS in R11");
        return;
    }
    assert_eq!(detect_flavour(), KvmFlavour::Pvm, "console {:?}", o.console);
    // PVM: RIP = LSTAR, RCX and R11 as SYSCALL sets them, but still CPL 3, so fetching the
    // kernel's entry is a user-mode #PF on a present page (P | U/S; the I/D bit would be set
    // too with EFER.NXE on, as in hello64), reported at RIP = LSTAR.
    assert_eq!(o.console, "P");
    assert_eq!(o.exit_value, 0x11);
    assert_eq!(o.error_code, 0x05);
    assert_eq!(o.frame_rip, o.lstar);
    assert_eq!(o.frame_cs, u64::from(SEL_USER_CODE64));
    assert_eq!(o.rcx, USER_CODE + 7);
    assert_eq!(o.r11, USER_RFLAGS);
}

#[test]
fn int_0x80_from_ring_3_enters_through_a_dpl_3_gate() {
    if !kvm_or_skip("int_0x80_from_ring_3_enters_through_a_dpl_3_gate") {
        return;
    }
    let user = [
        0xCD, 0x80, // int 0x80
        0xEB, 0xFE, // jmp $
    ];
    let o = run_in_ring3(&user);
    assert_eq!(o.frame_cs, u64::from(SEL_USER_CODE64), "{}", o.console);
    if o.console == "I" {
        assert_eq!(o.exit_value, 0x10);
        assert_eq!(o.frame_rip, USER_CODE + 2, "INT 0x80 returns after itself");
        return;
    }
    assert_eq!(detect_flavour(), KvmFlavour::Pvm, "console {:?}", o.console);
    // PVM: #UD, reported at the INT instruction itself.
    assert_eq!(o.console, "U");
    assert_eq!(o.exit_value, 0x12);
    assert_eq!(o.frame_rip, USER_CODE);
}

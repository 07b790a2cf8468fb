//! The SIMD unit in progress (issue 19): SSE/SSE2/MMX/FXSAVE programs on the interpreter and bt.
//! Teaches: what a C library's string and float code asks of the CPU — and that the unit is off
//! by default: it is offered only with `VMSCOPE_EXPERIMENTAL_SIMD=1` until it is complete.
//!
//! One test function: the switch is read once per process, so it is set before anything asks
//! CPUID, and no other test in this binary may run first.

mod support;

use emulator::cpu::cpuid;
use emulator::Exit;
use support::{assemble, long_mode, run};

const DONE: Exit = Exit::DebugExit {
    value: 0x11,
    status: 0x23,
};

fn run64(source: &str) -> (Exit, emulator::Machine) {
    let code = assemble(64, 0x10000, source);
    let mut m = long_mode(&code);
    let exit = run(&mut m);
    (exit, m)
}

const ENABLE_SSE: &str = "mov rax, cr4\nor rax, 0x600\nmov cr4, rax\n";

#[test]
fn sse_programs_compute_what_the_host_computes_on_interp_and_bt() {
    // This binary's only test sets the switch before anything reads CPUID.
    std::env::set_var("VMSCOPE_EXPERIMENTAL_SIMD", "1");
    assert!(cpuid::experimental_simd());
    let edx = cpuid::cpuid(1, 0)[3];
    let all = cpuid::edx1::MMX | cpuid::edx1::FXSR | cpuid::edx1::SSE | cpuid::edx1::SSE2;
    assert_eq!(edx & all, all, "CPUID offers the unit with the switch");

    // Floating point: 1/3 in double, truncated and rounded conversions, a square root.
    let (exit, m) = run64(&format!(
        "{ENABLE_SSE}\
         mov rax, 0x3ff0000000000000\nmovq xmm0, rax\n\
         mov eax, 3\ncvtsi2sd xmm1, eax\ndivsd xmm0, xmm1\n\
         mov eax, 2\ncvtsi2sd xmm2, eax\nsqrtsd xmm2, xmm2\n\
         mov rax, 0x4004000000000000\nmovq xmm3, rax\n\
         cvttsd2si rbx, xmm3\ncvtsd2si rcx, xmm3\n\
         mov eax, 0x11\nout 0xF4, eax\n"
    ));
    assert_eq!(exit, DONE);
    assert_eq!(m.cpu.fpu.xmm(0) as u64, (1.0f64 / 3.0).to_bits());
    assert_eq!(m.cpu.fpu.xmm(2) as u64, 2f64.sqrt().to_bits());
    assert_eq!(
        m.cpu.gpr[emulator::cpu::reg::RBX],
        2,
        "CVTTSD2SI 2.5 truncates"
    );
    assert_eq!(
        m.cpu.gpr[emulator::cpu::reg::RCX],
        2,
        "CVTSD2SI 2.5 rounds to even"
    );
    assert_ne!(m.cpu.fpu.mxcsr() & 0x20, 0, "PE is sticky");

    // glibc's strlen pattern: compare 16 bytes with zero, a byte mask, the first set bit.
    let (exit, m) = run64(&format!(
        "{ENABLE_SSE}\
         lea rsi, [rip + text]\npxor xmm2, xmm2\nmovdqu xmm3, [rsi]\n\
         pcmpeqb xmm3, xmm2\npmovmskb ecx, xmm3\nbsf ecx, ecx\n\
         mov eax, 0x11\nout 0xF4, eax\n\
         text: .ascii \"hello, world\\0...\"\n"
    ));
    assert_eq!(exit, DONE);
    assert_eq!(m.cpu.gpr[emulator::cpu::reg::RCX], 12);

    // FXSAVE/FXRSTOR round trip, MMX arithmetic aliasing the x87 registers, EMMS.
    let (exit, m) = run64(&format!(
        "{ENABLE_SSE}\
         mov rax, 0x1234\nmovq xmm5, rax\nfxsave [0x20000]\n\
         pxor xmm5, xmm5\nfxrstor [0x20000]\n\
         mov rax, 0x0102030405060708\nmovq mm1, rax\npaddb mm1, mm1\nmovq rdx, mm1\nemms\n\
         mov eax, 0x11\nout 0xF4, eax\n"
    ));
    assert_eq!(exit, DONE);
    assert_eq!(m.cpu.fpu.xmm(5), 0x1234, "FXRSTOR brought XMM5 back");
    assert_eq!(m.cpu.gpr[emulator::cpu::reg::RDX], 0x020406080A0C0E10);
    assert_eq!(m.cpu.fpu.tags(), 0, "EMMS empties the x87 tags");
    let mut image = [0u8; 32];
    m.ram.read(0x20000, &mut image).unwrap();
    assert_eq!(
        u16::from_le_bytes([image[0], image[1]]),
        0x37F,
        "FCW in the image"
    );
    assert_eq!(
        u32::from_le_bytes(image[24..28].try_into().unwrap()) & 0xFFC0,
        0x1F80
    );
    assert_eq!(
        u32::from_le_bytes(image[28..32].try_into().unwrap()),
        0xFFFF,
        "MXCSR_MASK"
    );

    // MASKMOVDQU stores the bytes whose mask byte has its top bit set, at [RDI].
    let (exit, m) = run64(&format!(
        "{ENABLE_SSE}\
         mov rax, 0x1122334455667788\nmovq xmm0, rax\n\
         mov rax, 0x0000800000008080\nmovq xmm1, rax\n\
         mov rdi, 0x20100\nmov qword ptr [rdi], -1\nmaskmovdqu xmm0, xmm1\n\
         mov eax, 0x11\nout 0xF4, eax\n"
    ));
    assert_eq!(exit, DONE);
    let mut stored = [0u8; 8];
    m.ram.read(0x20100, &mut stored).unwrap();
    assert_eq!(u64::from_le_bytes(stored), 0xFFFF_33FF_FFFF_7788);

    // Without CR4.OSFXSR an SSE instruction is #UD (no IDT here: a triple fault), and a
    // misaligned MOVDQA is #GP.
    let (exit, _) = run64("pxor xmm0, xmm0\nmov eax, 0x11\nout 0xF4, eax\n");
    assert!(matches!(exit, Exit::TripleFault { .. }), "{exit:?}");
    let (exit, _) = run64(&format!(
        "{ENABLE_SSE}movdqa xmm0, [0x20008]\nmov eax, 0x11\nout 0xF4, eax\n"
    ));
    assert!(matches!(exit, Exit::TripleFault { .. }), "{exit:?}");
}

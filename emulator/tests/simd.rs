//! The x87 and SIMD units (issue 19): x87, SSE/SSE2/MMX/FXSAVE programs on the interpreter and bt.
//! Teaches: what a C library's float and string code asks of the CPU, with answers known
//! independently of the emulator (the host's own arithmetic, digits of 1/3 and √2).

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
    let edx = cpuid::cpuid(1, 0)[3];
    let all = cpuid::edx1::FPU
        | cpuid::edx1::MMX
        | cpuid::edx1::FXSR
        | cpuid::edx1::SSE
        | cpuid::edx1::SSE2;
    assert_eq!(edx & all, all, "CPUID offers the units");

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

/// The 80-bit register of ST(i) as (sign and exponent, significand).
fn st(m: &emulator::Machine, i: u32) -> (u16, u64) {
    let v = m.cpu.fpu.st(i);
    ((v >> 64) as u16, v as u64)
}

/// x87 programs whose answers are known independently of the soft float: 1/3 and √2 to 64
/// bits, precision and rounding control, integer and BCD stores, compares, FPREM, a stack
/// overflow, FNSTENV, and an unmasked exception that waits for the next instruction.
#[test]
fn x87_programs() {
    let end = "mov eax, 0x11\nout 0xF4, eax\n";
    // 1/3 and √2 rounded to nearest at 64 bits; 1/3 at 53 bits (double's significand) and
    // truncated at 64 bits.
    let (exit, m) = run64(&format!(
        "fninit\nfld1\nmov dword ptr [0x20000], 3\nfidiv dword ptr [0x20000]\n\
         fld1\nfadd st, st(0)\nfsqrt\n\
         mov word ptr [0x20010], 0x27F\nfldcw [0x20010]\nfld1\nfidiv dword ptr [0x20000]\n\
         mov word ptr [0x20010], 0xF7F\nfldcw [0x20010]\nfld1\nfidiv dword ptr [0x20000]\n{end}"
    ));
    assert_eq!(exit, DONE);
    assert_eq!(st(&m, 3), (0x3FFD, 0xAAAA_AAAA_AAAA_AAAB), "1/3, nearest");
    assert_eq!(st(&m, 2), (0x3FFF, 0xB504_F333_F9DE_6484), "√2");
    assert_eq!(
        st(&m, 1),
        (0x3FFD, 0xAAAA_AAAA_AAAA_A800),
        "1/3 at PC = 53 bits"
    );
    assert_eq!(
        st(&m, 0),
        (0x3FFD, 0xAAAA_AAAA_AAAA_AAAA),
        "1/3 rounded to zero"
    );
    assert_eq!(m.cpu.fpu.top(), 4);
    assert_eq!(m.cpu.fpu.tags(), 0xF0, "physical registers 4-7 hold values");

    // FISTP 2.5 rounds to even, or up under RC = up; FBSTP −1234567; FPREM 10 mod 3 = 1 with
    // the quotient's low bits (3 = 011) in C0, C3, C1.
    let (exit, m) = run64(&format!(
        "fninit\nmov rax, 0x4004000000000000\nmov [0x20000], rax\n\
         fld qword ptr [0x20000]\nfistp dword ptr [0x20010]\n\
         mov word ptr [0x20008], 0xB7F\nfldcw [0x20008]\n\
         fld qword ptr [0x20000]\nfistp dword ptr [0x20014]\nfldcw [0x20008]\n\
         mov dword ptr [0x20018], -1234567\nfild dword ptr [0x20018]\nfbstp [0x20020]\n\
         mov dword ptr [0x20018], 3\nfild dword ptr [0x20018]\n\
         mov dword ptr [0x20018], 10\nfild dword ptr [0x20018]\nfprem\nfnstsw ax\nmov bx, ax\n{end}"
    ));
    assert_eq!(exit, DONE);
    let mut out = [0u8; 0x30];
    m.ram.read(0x20000, &mut out).unwrap();
    assert_eq!(u32::from_le_bytes(out[0x10..0x14].try_into().unwrap()), 2);
    assert_eq!(u32::from_le_bytes(out[0x14..0x18].try_into().unwrap()), 3);
    assert_eq!(
        &out[0x20..0x2A],
        &[0x67, 0x45, 0x23, 0x01, 0, 0, 0, 0, 0, 0x80]
    );
    assert_eq!(st(&m, 0), (0x3FFF, 1 << 63), "10 mod 3 = 1");
    let fsw = m.cpu.gpr[emulator::cpu::reg::RBX] as u16;
    assert_eq!(fsw & 0x4700, 0x4200, "C3 = 1, C1 = 1, C2 = C0 = 0");

    // FCOMI sets ZF/PF/CF; FXAM of an empty register says "empty"; the ninth push overflows
    // (IE + SF, C1 = 1) and, masked, leaves the indefinite NaN.
    let (exit, m) = run64(&format!(
        "fninit\nfxam\nfnstsw ax\nmov bx, ax\nfldpi\nfld1\nfcomi st, st(1)\nsetb cl\n\
         fld1\nfld1\nfld1\nfld1\nfld1\nfld1\nfld1\n{end}"
    ));
    assert_eq!(exit, DONE);
    let reg = |r| m.cpu.gpr[r];
    use emulator::cpu::reg as r;
    assert_eq!(reg(r::RBX) & 0x4500, 0x4100, "FXAM: empty is C3 + C0");
    assert_eq!(reg(r::RCX) & 0xFF, 1, "1 < π: CF");
    assert_eq!(
        m.cpu.fpu.fsw() & 0x0241,
        0x0241,
        "stack overflow: IE, SF, C1"
    );
    assert_eq!(
        st(&m, 0),
        (0xFFFF, 0xC000_0000_0000_0000),
        "the indefinite NaN"
    );

    // An unmasked divide by zero sets ES and waits: FNSTSW still runs, the next waiting x87
    // instruction is #MF with CR0.NE (no IDT here: a triple fault), and runs on without it.
    let unmasked = "fninit\nmov word ptr [0x20000], 0x37B\nfldcw [0x20000]\nfld1\nfldz\n\
                    fdivp st(1), st\nfnstsw ax\nmov bx, ax\n";
    let (exit, m) = run64(&format!("{unmasked}fld1\n{end}"));
    assert_eq!(
        exit, DONE,
        "CR0.NE clear: the PC's FERR# path, not modelled, no #MF"
    );
    assert_eq!(reg_of(&m, r::RBX) & 0x84, 0x84, "ZE and ES");
    let (exit, _) = run64(&format!(
        "mov rax, cr0\nor rax, 0x20\nmov cr0, rax\n{unmasked}fld1\n{end}"
    ));
    assert!(matches!(exit, Exit::TripleFault { .. }), "#MF: {exit:?}");

    // FNSTENV writes the 28-byte environment (FCW, FSW, full tag word) and masks everything.
    let (exit, m) = run64(&format!("fninit\nfldz\nfld1\nfnstenv [0x20000]\n{end}"));
    assert_eq!(exit, DONE);
    let mut env = [0u8; 28];
    m.ram.read(0x20000, &mut env).unwrap();
    assert_eq!(u16::from_le_bytes([env[0], env[1]]), 0x37F);
    assert_eq!(u16::from_le_bytes([env[4], env[5]]), 0x3000, "TOP = 6");
    assert_eq!(
        u16::from_le_bytes([env[8], env[9]]),
        0x4FFF,
        "tags: physical 7 zero (01), 6 valid (00), the rest empty (11)"
    );
}

/// The transcendental instructions against values computed independently (correctly rounded
/// to 64 bits): sin 1, cos 1, tan ½, atan(1/2) by FPATAN, 2^½ − 1, log₂ 3, log₂ 1.25.
#[test]
fn x87_transcendentals() {
    let end = "mov eax, 0x11\nout 0xF4, eax\n";
    let (exit, m) = run64(&format!(
        "fninit\nmov dword ptr [0x20000], 0x3F000000\nmov dword ptr [0x20004], 2\n\
         mov dword ptr [0x20008], 3\nmov dword ptr [0x2000C], 0x3E800000\n\
         fld1\nfsin\nfld1\nfcos\nfld dword ptr [0x20000]\nfptan\nfstp st(0)\n\
         fld1\nfild dword ptr [0x20004]\nfpatan\nfld dword ptr [0x20000]\nf2xm1\n\
         fld1\nfild dword ptr [0x20008]\nfyl2x\nfld1\nfld dword ptr [0x2000C]\nfyl2xp1\n{end}"
    ));
    assert_eq!(exit, DONE);
    let expected = [
        ((0x3FFD, 0xA4D3_C25E_68DC_57F2), "log2 1.25"),
        ((0x3FFF, 0xCAE0_0D1C_FDEB_43D0), "log2 3"),
        ((0x3FFD, 0xD413_CCCF_E779_9211), "2^0.5 - 1"),
        ((0x3FFD, 0xED63_382B_0DDA_7B45), "atan(1/2)"),
        ((0x3FFE, 0x8BDA_7ADF_9A3A_5219), "tan 0.5"),
        ((0x3FFE, 0x8A51_407D_A834_5C92), "cos 1"),
        ((0x3FFE, 0xD76A_A478_4867_7021), "sin 1"),
    ];
    for (i, (value, what)) in expected.iter().enumerate() {
        assert_eq!(st(&m, i as u32), *value, "{what}");
    }
    assert_ne!(m.cpu.fpu.fsw() & 0x20, 0, "inexact");
    // Out of range: |x| ≥ 2^63 leaves ST(0) alone and sets C2.
    let (exit, m) = run64(&format!(
        "fninit\nmov rax, 0x43E0000000000000\nmov [0x20000], rax\nfld qword ptr [0x20000]\n\
         fsin\nfnstsw ax\nmov bx, ax\n{end}"
    ));
    assert_eq!(exit, DONE);
    assert_ne!(reg_of(&m, emulator::cpu::reg::RBX) & 0x400, 0, "C2");
    assert_eq!(st(&m, 0), (0x403E, 1 << 63), "2^63 unchanged");
}

fn reg_of(m: &emulator::Machine, r: usize) -> u64 {
    m.cpu.gpr[r]
}

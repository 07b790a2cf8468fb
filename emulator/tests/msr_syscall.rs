//! Issue 12 items 4 and 5: SYSCALL and single-step, and MSRs/CR4 that are only what CPUID says.
//! Teaches: an honest CPU refuses what it does not advertise — a reserved MSR value, a CR4 bit
//! for a missing feature, SYSCALL outside 64-bit mode on an Intel part — with #GP or #UD, so a
//! kernel's probe learns the truth. Every test runs on the interpreter and on bt (`support::run`).

mod support;

use emulator::cpu::{cpuid, reg, DescriptorTable, Seg};
use emulator::{Exit, Machine};
use support::{assemble, long_mode, run};

const DONE: Exit = Exit::DebugExit {
    value: 0x11,
    status: 0x23,
};

/// 64-bit ring-0 code at 0x10000 (identity-mapped, no IDT) run on both engines.
fn run64(source: &str) -> (Exit, Machine) {
    let code = assemble(64, 0x10000, source);
    let mut m = long_mode(&code);
    let exit = run(&mut m);
    (exit, m)
}

/// `wrmsr` of EDX:EAX to `index`, then the debug exit: DONE if it was accepted, a triple fault
/// (no IDT) if it raised #GP.
fn wrmsr(index: u32, value: u64) -> Exit {
    let source = format!(
        "mov ecx, {index:#x}\nmov eax, {:#x}\nmov edx, {:#x}\nwrmsr\nmov eax, 0x11\nout 0xF4, eax\n",
        value as u32,
        value >> 32
    );
    run64(&source).0
}

fn is_gp(exit: &Exit) -> bool {
    matches!(exit, Exit::TripleFault { .. })
}

#[test]
fn pat_entries_with_a_reserved_memory_type_are_a_gp() {
    const IA32_PAT: u32 = 0x277;
    assert_eq!(wrmsr(IA32_PAT, 0x0007_0406_0007_0406), DONE, "power-on PAT");
    assert_eq!(
        wrmsr(IA32_PAT, 0x0105_0400_0706_0504),
        DONE,
        "types 0,1,4,5,6,7"
    );
    for bad in [2u64, 3, 8, 0xFF] {
        for entry in [0, 3, 7] {
            let v = 0x0007_0406_0007_0406 & !(0xFF << (8 * entry)) | bad << (8 * entry);
            assert!(is_gp(&wrmsr(IA32_PAT, v)), "PAT{entry} = {bad:#x} accepted");
        }
    }
}

#[test]
fn bios_sign_id_answers_the_microcode_handshake_with_revision_zero() {
    // Linux's early_init_intel: write 0, CPUID leaf 1, read the revision in bits 63:32.
    let (exit, m) = run64(
        "mov ecx, 0x8B\nxor eax, eax\nxor edx, edx\nwrmsr\nmov eax, 1\ncpuid\n\
         mov ecx, 0x8B\nmov edx, 0x55\nrdmsr\nmov ebx, edx\nmov eax, 0x11\nout 0xF4, eax\n",
    );
    assert_eq!(exit, DONE);
    assert_eq!(m.cpu.gpr[emulator::cpu::reg::RBX], 0, "no microcode loaded");
}

#[test]
fn tsc_aux_bits_63_32_are_reserved() {
    const IA32_TSC_AUX: u32 = 0xC000_0103;
    assert_eq!(wrmsr(IA32_TSC_AUX, 0xFFFF_FFFF), DONE);
    assert!(is_gp(&wrmsr(IA32_TSC_AUX, 1 << 32)));
}

#[test]
fn cr4_bits_for_features_cpuid_does_not_advertise_are_reserved() {
    let edx1 = cpuid::cpuid(1, 0)[3];
    // (CR4 bit, CPUID.1:EDX bit of its feature): VME, PVI → VME; MCE. None is advertised,
    // so each CR4 bit is reserved.
    for (cr4_bit, feature) in [(0, 1), (1, 1), (6, 7)] {
        assert_eq!(
            edx1 & 1 << feature,
            0,
            "CPUID.1:EDX bit {feature} is advertised"
        );
        let source = format!(
            "mov rax, cr4\nbts rax, {cr4_bit}\nmov cr4, rax\nmov eax, 0x11\nout 0xF4, eax\n"
        );
        assert!(is_gp(&run64(&source).0), "CR4 bit {cr4_bit} accepted");
    }
    // CR4.DE is implemented (DR4/DR5 #UD, I/O breakpoints), and OSFXSR/OSXMMEXCPT (FXSR, SSE):
    // CPUID says so and the bits can be set.
    for (cr4_bit, feature) in [
        (3, cpuid::edx1::DE),
        (9, cpuid::edx1::FXSR),
        (10, cpuid::edx1::SSE),
    ] {
        assert_ne!(
            edx1 & feature,
            0,
            "CPUID.1:EDX feature of CR4 bit {cr4_bit}"
        );
        let source = format!(
            "mov rax, cr4\nbts rax, {cr4_bit}\nmov cr4, rax\nmov eax, 0x11\nout 0xF4, eax\n"
        );
        let (exit, m) = run64(&source);
        assert_eq!(exit, DONE);
        assert_ne!(m.cpu.cr4 & (1 << cr4_bit), 0);
    }
}

#[test]
fn syscall_is_ud_outside_64_bit_mode_on_this_intel_cpu() {
    // EFER.SCE on, STAR/CSTAR set; the same bytes run from a compatibility-mode CS.
    let code = assemble(
        32,
        0x10000,
        "mov ecx, 0xC0000080\nrdmsr\nor eax, 1\nwrmsr\nmov ecx, 0xC0000083\nmov eax, 0x10100\nxor edx, edx\nwrmsr\nsyscall\nmov eax, 0x11\nout 0xF4, eax\n",
    );
    let mut m = long_mode(&code);
    let cs = &mut m.cpu.seg[Seg::Cs as usize];
    cs.l = false;
    cs.db = true;
    let exit = run(&mut m);
    assert!(
        is_gp(&exit) && m.cpu.rip < 0x10100,
        "{exit:?} at {:#x}",
        m.cpu.rip
    );
}

#[test]
fn syscall_with_tf_set_traps_at_the_first_instruction_of_the_handler() {
    // FMASK clears TF (and IF); the #DB for SYSCALL itself still arrives, as a trap after it,
    // with the saved RIP = LSTAR in ring 0 and DR6.BS; R11 keeps the caller's TF.
    let code = assemble(
        64,
        0x10000,
        r#"
        mov ecx, 0xC0000080
        rdmsr
        or eax, 1
        wrmsr
        mov ecx, 0xC0000081          # STAR: SYSCALL CS 0x08, SS 0x10
        xor eax, eax
        mov edx, 0x00000008
        wrmsr
        mov ecx, 0xC0000082          # LSTAR
        lea rax, [rip + entry]
        xor edx, edx
        wrmsr
        mov ecx, 0xC0000084          # FMASK: TF | IF | DF
        mov eax, 0x700
        wrmsr
        pushfq
        or qword ptr [rsp], 0x100
        popfq
        syscall
        hlt
    entry:
        mov rdi, 0xE                 # the handler's first instruction; must not have run
        mov eax, 0x11
        out 0xF4, eax
    .org 0x200
    db_handler:
        mov rbx, [rsp]               # saved RIP
        mov rdx, [rsp + 8]           # saved CS
        mov rsi, [rsp + 16]          # saved RFLAGS
        mov rbp, dr6
        mov eax, 0x11
        out 0xF4, eax
        "#,
    );
    let mut m = long_mode(&code);
    // GDT: null, 64-bit ring-0 code 0x08, data 0x10. IDT vector 1 → db_handler.
    let (gdt, idt) = (0x7000u64, 0x6000u64);
    m.ram.write_le(gdt + 8, 8, 0x00AF_9A00_0000_FFFF).unwrap();
    m.ram.write_le(gdt + 16, 8, 0x00CF_9200_0000_FFFF).unwrap();
    let handler = 0x10200u64;
    let gate_lo = (handler & 0xFFFF) | 0x08 << 16 | 0x8E00 << 32 | (handler >> 16 & 0xFFFF) << 48;
    m.ram.write_le(idt + 16, 8, gate_lo).unwrap();
    m.ram.write_le(idt + 24, 8, handler >> 32).unwrap();
    m.cpu.gdtr = DescriptorTable {
        base: gdt,
        limit: 23,
    };
    m.cpu.idtr = DescriptorTable {
        base: idt,
        limit: 0xFFF,
    };
    let exit = run(&mut m);
    assert_eq!(exit, DONE);
    let g = |r: usize| m.cpu.gpr[r];
    assert_ne!(
        g(reg::RDI),
        0xE,
        "the handler's first instruction ran before the #DB"
    );
    assert_eq!(g(reg::RBX), m.cpu.msrs.lstar, "#DB saved RIP = LSTAR");
    assert_eq!(
        g(reg::RDX),
        0x08,
        "#DB taken in the SYSCALL handler's ring 0"
    );
    assert_eq!(g(reg::RSI) & 0x700, 0, "FMASK cleared TF, IF and DF");
    assert_ne!(g(reg::RBP) & 1 << 14, 0, "DR6.BS");
    assert_ne!(g(11) & 0x100, 0, "R11 holds the caller's TF");
    assert_eq!(g(11) & 1 << 16, 0, "R11.RF is clear");
}

#[test]
fn instructions_the_interpreter_implements_are_advertised_cmpxchg16b_and_64_bit_lahf() {
    // A kernel or libc that sees no CX16 / LAHF-SAHF bit avoids (or emulates) instructions this
    // CPU runs; KVM's CPU has them natively, so both engines must say so.
    assert_ne!(
        cpuid::cpuid(1, 0)[2] & cpuid::ecx1::CX16,
        0,
        "CPUID.1:ECX.CX16"
    );
    assert_ne!(
        cpuid::cpuid(0x8000_0001, 0)[2] & cpuid::ecx81::LAHF_LM,
        0,
        "LAHF-SAHF"
    );
    let (exit, m) = run64(
        r#"
        mov qword ptr [0x8000], 1
        mov qword ptr [0x8008], 2
        mov eax, 1
        mov edx, 2
        mov ebx, 3
        mov ecx, 4
        cmpxchg16b [0x8000]
        mov rsi, [0x8008]
        stc
        lahf
        movzx edi, ah
        mov eax, 0x11
        out 0xF4, eax
        "#,
    );
    assert_eq!(exit, DONE);
    assert_eq!(m.cpu.gpr[reg::RSI], 4, "CMPXCHG16B stored RCX:RBX");
    assert_eq!(m.cpu.gpr[reg::RDI] & 1, 1, "LAHF read CF");
}

// ---- SYSRET, SYSENTER and SYSEXIT checks -----------------------------------------------------

/// A 64-bit machine whose pages are user-accessible, with a GDT (0x08 ring-0 code, 0x10 data)
/// and an IDT sending #GP (13) to 0x10200.
fn machine64(source: &str) -> Machine {
    let code = assemble(64, 0x10000, source);
    let mut m = long_mode(&code);
    for (table, next) in [(0x1000u64, 0x2000u64), (0x2000, 0x3000), (0x3000, 0x4000)] {
        m.ram.write_le(table, 8, next | 7).unwrap();
    }
    for page in 0..512u64 {
        m.ram
            .write_le(0x4000 + page * 8, 8, page << 12 | 7)
            .unwrap();
    }
    let (gdt, idt, handler) = (0x7000u64, 0x6000u64, 0x10200u64);
    m.ram.write_le(gdt + 8, 8, 0x00AF_9A00_0000_FFFF).unwrap();
    m.ram.write_le(gdt + 16, 8, 0x00CF_9200_0000_FFFF).unwrap();
    let gate_lo = (handler & 0xFFFF) | 0x08 << 16 | 0x8E00 << 32 | (handler >> 16 & 0xFFFF) << 48;
    m.ram.write_le(idt + 13 * 16, 8, gate_lo).unwrap();
    m.ram.write_le(idt + 13 * 16 + 8, 8, handler >> 32).unwrap();
    m.cpu.gdtr = DescriptorTable {
        base: gdt,
        limit: 23,
    };
    m.cpu.idtr = DescriptorTable {
        base: idt,
        limit: 0xFFF,
    };
    m
}

const SCE_AND_STAR: &str = r#"
        mov ecx, 0xC0000080
        rdmsr
        or eax, 1
        wrmsr
        mov ecx, 0xC0000081          # STAR: SYSCALL CS 0x08; SYSRET base 0x10 (CS 0x23, SS 0x1B)
        xor eax, eax
        mov edx, 0x00100008
        wrmsr
"#;

/// The #GP handler at 0x10200: RBX = saved RIP, RDX = saved CS, R14 = the error code.
const GP_HANDLER: &str = r#"
    .org 0x200
        mov r14, [rsp]
        mov rbx, [rsp + 8]
        mov rdx, [rsp + 16]
        mov eax, 0x11
        out 0xF4, eax
"#;

#[test]
fn sysret_to_a_non_canonical_rcx_is_a_gp_in_ring_0() {
    let mut m = machine64(&format!(
        "{SCE_AND_STAR}
        lea rdi, [rip + at]
        mov rcx, 0x0000800000000000
        mov r11, 2
    at: sysretq
        hlt
    {GP_HANDLER}"
    ));
    assert_eq!(run(&mut m), DONE);
    let g = |r: usize| m.cpu.gpr[r];
    assert_eq!(g(reg::RBX), g(reg::RDI), "#GP at the SYSRET");
    assert_eq!(g(reg::RDX), 0x08, "#GP(0) delivered in ring 0, not ring 3");
    assert_eq!(g(14), 0, "error code 0");
}

#[test]
fn sysret_takes_cs_ss_from_star_and_rflags_from_r11_with_rf_and_vm_clear() {
    let mut m = machine64(&format!(
        "{SCE_AND_STAR}
        mov ecx, 0xC0000082          # LSTAR
        lea rax, [rip + back]
        xor edx, edx
        wrmsr
        lea rcx, [rip + user]
        mov r11, -1                  # every flag, RF and VM included, but TF
        btr r11, 8
        sysretq
    user:
        pushfq
        pop rsi
        mov rdi, cs
        mov rbp, ss
        syscall
    back:
        mov eax, 0x11
        out 0xF4, eax
    {GP_HANDLER}"
    ));
    assert_eq!(run(&mut m), DONE);
    let g = |r: usize| m.cpu.gpr[r];
    assert_eq!(
        g(reg::RSI),
        0x3C_7ED7,
        "RFLAGS = R11 & 3C7FD7h | 2, RF and VM clear"
    );
    assert_eq!(g(reg::RDI), 0x23, "CS = STAR[63:48] + 16, RPL 3");
    assert_eq!(g(reg::RBP), 0x1B, "SS = STAR[63:48] + 8, RPL 3");
    assert_eq!(m.cpu.cpl(), 0);
}

#[test]
fn sysexitq_returns_to_64_bit_ring_3_and_checks_rdx_for_canonical() {
    let body = |rdx: &str| {
        format!(
            "mov ecx, 0x174
        mov eax, 0x08
        xor edx, edx
        wrmsr
        lea rdi, [rip + at]
        {rdx}
        mov rcx, 0x8800
    at: sysexitq
        hlt
    user:
        mov rsi, cs
        mov rbp, ss
        mov r13, rsp
        mov eax, 0x11
        out 0xF4, eax
    {GP_HANDLER}"
        )
    };
    let mut m = machine64(&body("lea rdx, [rip + user]"));
    assert_eq!(run(&mut m), DONE);
    let g = |r: usize| m.cpu.gpr[r];
    assert_eq!(g(reg::RSI), 0x2B, "CS = SYSENTER_CS + 32, RPL 3");
    assert_eq!(g(reg::RBP), 0x33, "SS = SYSENTER_CS + 40, RPL 3");
    assert_eq!(g(reg::R13), 0x8800, "RSP = RCX");
    let mut m = machine64(&body("mov rdx, 0x0000800000000000"));
    assert_eq!(run(&mut m), DONE);
    assert_eq!(m.cpu.gpr[reg::RBX], m.cpu.gpr[reg::RDI], "#GP at SYSEXITQ");
    assert_eq!(m.cpu.gpr[reg::RDX], 0x08);
}

#[test]
fn sysenter_and_sysexit_are_gp_without_sysenter_cs_in_real_mode_and_outside_ring_0() {
    // SYSENTER_CS = 0: #GP(0), in ring 0.
    let mut m = machine64(&format!(
        "lea rdi, [rip + at]
    at: sysenter
        hlt
    {GP_HANDLER}"
    ));
    assert_eq!(run(&mut m), DONE);
    assert_eq!(m.cpu.gpr[reg::RBX], m.cpu.gpr[reg::RDI], "#GP at SYSENTER");
    // SYSEXIT from ring 3 (after a good SYSEXITQ): #GP.
    let mut m = machine64(&format!(
        "mov ecx, 0x174
        mov eax, 0x08
        xor edx, edx
        wrmsr
        lea rdx, [rip + user]
        mov rcx, 0x8800
        sysexitq
    user:
        lea rdi, [rip + at]
    at: sysexitq
        hlt
    {GP_HANDLER}"
    ));
    // No TSS here, so the ring-3 #GP cannot reach its handler: the triple fault says where.
    let exit = run(&mut m);
    let at = format!("{:04x}:{:#x}", 0x2B, m.cpu.gpr[reg::RDI]);
    assert!(
        matches!(&exit, Exit::TripleFault { detail } if detail.contains(&at)),
        "{exit:?}, expected the #GP at {at}"
    );
    assert_eq!(
        m.stats.exceptions.get("#GP"),
        Some(&1),
        "{:?}",
        m.stats.exceptions
    );
    // Real mode: #GP even with SYSENTER_CS set.
    let code = assemble(
        16,
        0x7C00,
        "mov ecx, 0x174\nmov eax, 8\nxor edx, edx\nwrmsr\nsysenter\nhlt\n.org 0x200\nmov eax, 0x11\nout 0xF4, eax\n",
    );
    let mut m = support::real_mode(&code);
    m.ram.write_le(13 * 4, 4, 0x7E00).unwrap(); // IVT: #GP → 0000:7E00
    assert_eq!(run(&mut m), DONE);
    assert_eq!(
        m.stats.exceptions.get("#GP"),
        Some(&1),
        "{:?}",
        m.stats.exceptions
    );
    assert_eq!(m.stats.exceptions.get("sysenter"), None);
}

#[test]
fn misc_enable_reads_fast_strings_on_and_only_its_own_value_can_be_written_back() {
    let (exit, m) = run64(
        "mov ecx, 0x1A0\nrdmsr\nmov esi, eax\nmov edi, edx\nwrmsr\nmov eax, 0x11\nout 0xF4, eax\n",
    );
    assert_eq!(exit, DONE);
    assert_eq!(m.cpu.gpr[reg::RSI] & 1, 1, "FAST_STRING_ENABLE");
    assert_eq!(m.cpu.gpr[reg::RSI] & 1 << 22, 0, "LIMIT_CPUID off");
    assert_eq!(
        m.cpu.gpr[reg::RDI] & 1 << 2,
        0,
        "XD_DISABLE off (NX is advertised)"
    );
    assert!(is_gp(&wrmsr(0x1A0, 1 << 22)), "a bit that cannot change");
}

#[test]
fn msrs_this_cpu_does_not_have_are_a_gp() {
    // MTRRs (CPUID.1:EDX.MTRR is clear), IA32_TSC_ADJUST (CPUID.7:EBX bit 1 clear) and an index
    // nobody uses: RDMSR raises #GP(0).
    assert_eq!(cpuid::cpuid(1, 0)[3] & 1 << 12, 0);
    assert_eq!(cpuid::cpuid(7, 0)[1] & 1 << 1, 0);
    for index in [0xFEu32, 0x2FF, 0x200, 0x250, 0x3B, 0x1234_5678] {
        let source = format!("mov ecx, {index:#x}\nrdmsr\nmov eax, 0x11\nout 0xF4, eax\n");
        assert!(is_gp(&run64(&source).0), "RDMSR {index:#x} did not fault");
    }
}

#[test]
fn address_msrs_refuse_non_canonical_values_and_efer_its_reserved_bits() {
    const NON_CANONICAL: u64 = 0x0000_8000_0000_0000;
    const HIGH_CANONICAL: u64 = 0xFFFF_8000_0000_0000;
    // FS_BASE, GS_BASE, KERNEL_GS_BASE, LSTAR, CSTAR, SYSENTER_ESP, SYSENTER_EIP.
    for index in [
        0xC000_0100u32,
        0xC000_0101,
        0xC000_0102,
        0xC000_0082,
        0xC000_0083,
        0x175,
        0x176,
    ] {
        assert_eq!(wrmsr(index, HIGH_CANONICAL), DONE, "{index:#x}");
        assert!(
            is_gp(&wrmsr(index, NON_CANONICAL)),
            "{index:#x} took a non-canonical address"
        );
    }
    // STAR and FMASK take any address-free value.
    assert_eq!(wrmsr(0xC000_0081, 0x0023_0010_0000_0000), DONE);
    assert_eq!(wrmsr(0xC000_0084, 0x4_7700), DONE);
    // EFER (paging on, long mode active): SCE and NXE may change, LME may not, bit 1 is reserved.
    assert_eq!(wrmsr(0xC000_0080, 0x0D01), DONE, "SCE | LME | LMA | NXE");
    assert!(is_gp(&wrmsr(0xC000_0080, 0x0D03)), "reserved bit 1");
    assert!(
        is_gp(&wrmsr(0xC000_0080, 0x0C01)),
        "LME cleared while paging is on"
    );
    assert!(
        is_gp(&wrmsr(0xC000_0080, 1 << 32 | 0x0D01)),
        "reserved bit 32"
    );
}

#[test]
fn apic_base_refuses_reserved_bits_and_x2apic_without_enable() {
    const IA32_APIC_BASE: u32 = 0x1B;
    assert_eq!(
        wrmsr(IA32_APIC_BASE, 0xFEE0_0900),
        DONE,
        "xAPIC enabled, BSP"
    );
    assert_eq!(wrmsr(IA32_APIC_BASE, 0xFEE0_0D00), DONE, "xAPIC → x2APIC");
    assert!(is_gp(&wrmsr(IA32_APIC_BASE, 0xFEE0_0B00)), "reserved bit 9");
    assert!(
        is_gp(&wrmsr(IA32_APIC_BASE, 1 << 40 | 0xFEE0_0900)),
        "above MAXPHYADDR (40)"
    );
    assert!(
        is_gp(&wrmsr(IA32_APIC_BASE, 0xFEE0_0500)),
        "x2APIC without enable"
    );
}

#[test]
fn writing_the_tsc_sets_it_and_it_counts_on_from_there() {
    // TSC ← 2^40 + 5; then RDTSC twice and RDMSR: all just above it, in order.
    let (exit, m) = run64(
        "mov ecx, 0x10\nmov eax, 5\nmov edx, 0x100\nwrmsr\n\
         rdtsc\nshl rdx, 32\nor rax, rdx\nmov r8, rax\n\
         rdtsc\nshl rdx, 32\nor rax, rdx\nmov r9, rax\n\
         rdmsr\nshl rdx, 32\nor rax, rdx\nmov r10, rax\n\
         mov eax, 0x11\nout 0xF4, eax\n",
    );
    assert_eq!(exit, DONE);
    let (a, b, c) = (m.cpu.gpr[8], m.cpu.gpr[9], m.cpu.gpr[10]);
    let set = (1u64 << 40) + 5;
    assert!(a > set && a < set + 20, "first read {a:#x}");
    assert!(a < b && b < c && c < set + 40, "{a:#x} {b:#x} {c:#x}");
    // Three instructions (3 ns of virtual time) ran before the WRMSR.
    assert_eq!(m.cpu.msrs.tsc_offset, set - 3);
}

//! The rules for comparing an emulated engine with KVM: what the CPU (or PVM's kernel) shows, and what it may do differently.
//! Teaches: a hardware oracle answers only what the architecture defines; undefined flags, host state and a hypervisor's own emulator are not the CPU's answer.
//!
//! Compared: the exit (kind and debug-exit value), the GPRs (in compatibility mode the low 32
//! bits of the first eight), RIP, RFLAGS without the status flags the architecture left undefined
//! at the end, the six segment selectors, CR2, every byte of RAM, port I/O by port, UART output,
//! and the instruction count where KVM single-stepped the case (no exception or interrupt on
//! the interpreter, an end before the limit: see `Runner::run_after`).
//! Not compared: `Stats` exceptions and exits (KVM delivers exceptions inside the guest without
//! an exit), hidden segment parts and system registers KVM reports its own way, the x87
//! pointers (FOP, FIP, FDP), time. The x87/SSE registers, FCW, FSW, tags and MXCSR are compared.
//!
//! A difference is set aside as not comparable when a [`KVM_RULES`] entry explains it; to know,
//! the case is run once more on the interpreter one instruction at a time ([`trace`]).

use std::collections::BTreeSet;

use emulator::cpu::state::{flags, CpuMode};
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, RunLimit};
use iced_x86::{Decoder, DecoderOptions, InstructionInfoFactory, Mnemonic, OpKind, RflagsBits};

use super::compare::{exit_text, ram_diff, Verdict};
use super::gen::Case;
use super::modes;
use super::run::{current_instruction, EngineKind, Observation};

/// Why a kvm difference is not a bug: (name, reason). `vmscope fuzz --rules` prints them.
pub const KVM_RULES: &[(&str, &str)] = &[
    (
        PVM_TSD,
        "the ring-3 machine sets CR4.TSD, so RDTSC must #GP(0) in ring 3 (the interpreter's answer, and VT-x's); PVM does not carry the guest's TSD into native ring-3 execution, and RDTSC returns the host's TSC (measured: `vmscope fuzz --mode ring3 --seed 20261207`, cases 1657, 2443, 3151, 3213)",
    ),
    (
        UNDEFINED,
        "the case read a status flag the architecture leaves undefined (after MUL, a shift, BSF, …), directly or by pushing RFLAGS in an exception frame, or ran an instruction whose result is undefined (a 16-bit SHLD/SHRD by more than 16): CPU models differ, the interpreter's choice is one of them",
    ),
    (
        HOST_STATE_RULE,
        "the case ran an instruction whose result is the host's, not the guest's: RDRAND, RDSEED, RDPID, RDTSCP, RDPMC, XGETBV, CPUID leaves KVM fills from the host, FXSAVE (the image holds the host's MXCSR_MASK), TZCNT (the host's BMI1: the model has none and runs F3 0F BC as BSF), SGDT SIDT SLDT STR SMSW in ring 3 (the host has UMIP: PVM answers for them), a segment selector read in ring 3 on PVM (CS reads the host's 0x33), VMCALL/VMMCALL (KVM's hypercall: from ring 3 it returns -KVM_EPERM in RAX, where the model without paravirtualization raises #UD: `vmscope fuzz --mode ring3 --seed 777` case 1870)",
    ),
    (
        TRANSCENDENTAL,
        "the case ran an x87 transcendental (FSIN FCOS FSINCOS FPTAN FPATAN F2XM1 FYL2X FYL2XP1): the SDM bounds their error (under 1 ulp), not their last bit or C1, and leaves F2XM1 outside [−1, 1] undefined; the interpreter's are correctly rounded (measured: an AMD host's FPTAN(1) is 1 ulp above the true value, an Intel host's exact; `fld1; fptan` as a replay)",
    ),
    (
        MMX_FAULT,
        "an exception came during an MMX instruction: the SDM does not say whether the x87 state had turned MMX-shaped (TOP 0, all tags valid); the interpreter leaves it as it was, as for any fault; an AMD host turns it for some faulting stores and not others (`movq [r14-0Ch],mm3` does, `movntq [rcx-1Ah],mm1` does not: `vmscope fuzz --mode ring3 --seed 23` case 364, `--seed 31` case 935)",
    ),
    (
        NOT_IMPLEMENTED,
        "the interpreter does not implement an instruction the case ran (the guest got #UD, counted in Stats::unimplemented)",
    ),
    (
        COMPAT,
        "PVM runs 32-bit ring-3 code in KVM's instruction emulator (see conformance native --rules)",
    ),
    (
        NO_END,
        "the interpreter stopped at the instruction limit (a loop); KVM runs such a case unstepped (single-stepping pushes KVM's TF into the frame of every exception the CPU delivers during a step, and PVM turns the step of ring-3 code into a #DB for the guest) and stops elsewhere",
    ),
    (
        VENDOR,
        "this host is AMD, the CPU model Intel: the case ran an instruction the two decode differently (an operand-size prefix on a near branch in 64-bit mode: Intel ignores it, AMD truncates RIP to 16 bits), or FXSAVE/FXRSTOR at an address not 16-byte aligned (Intel: #GP(0); this host performs it: `vmscope fuzz --mode ring3 --seed 21`, case 2883), or FCOMI/FUCOMI(P) (the SDM clears FSW.C1, this host leaves it: `conformance native --forms Fcomi`)",
    ),
    (
        INTEL_CALL,
        "this host is Intel: a near CALL that faults (#GP on a non-canonical target) has already stored its return address below RSP; the model stores nothing (RSP is unchanged on both; `vmscope fuzz --mode ring3 --seed 20261208` case 1070)",
    ),
    (
        PVM_SEGMENT_LOAD,
        "PVM runs ring-3 segment loads (MOV/POP Sreg, far CALL/JMP/RET, IRET) against the host's descriptors: the guest's descriptor-table accessed bits stay as they were and the selector read back is the host's (`vmscope fuzz --mode ring3 --seed 20261208` cases 1858, 2695)",
    ),
    (
        PVM_EMULATED_FAULT,
        "PVM hands a ring-3 instruction that faults (#GP, #UD) to KVM's instruction emulator, which answers #UD for instructions it does not know, computes memory operands the CPU never touches (#PF instead of #UD), and turns INT n into #UD",
    ),
];

/// Fields masked rather than cases set aside: (what, why).
pub const KVM_MASKS: &[(&str, &str)] = &[
    (
        "RFLAGS.AC in ring 0 on PVM",
        "after an exception from ring 3 PVM's ring-0 handler runs with AC clear (the frame holds the guest's AC, and is compared); AC is compared where the case ended in ring 3",
    ),
    (
        "CR2 of a multi-part access",
        "an instruction that reads or writes several places (IRET, far RET, PUSH of memory, string moves, FXSAVE's 512 bytes) may touch them in any order: when it faults, CR2 is compared to the page",
    ),
];

const UNDEFINED: &str = "undefined flags";
const HOST_STATE_RULE: &str = "host state";
const NOT_IMPLEMENTED: &str = "not implemented";
const TRANSCENDENTAL: &str = "x87 transcendental";
const MMX_FAULT: &str = "faulting MMX instruction";
const COMPAT: &str = "compatibility mode on PVM";
const NO_END: &str = "no end to compare";
const PVM_EMULATED_FAULT: &str = "faults PVM emulates";
const PVM_TSD: &str = "RDTSC under CR4.TSD on PVM";
use crate::conformance::native_vendor::HostVendor;

const VENDOR: &str = "Intel model, AMD host";
const INTEL_CALL: &str = "a faulting near CALL on an Intel host";
const PVM_SEGMENT_LOAD: &str = "segment loads in ring 3 on PVM";

/// What the interpreter ran, step by step: for deciding whether a rule applies.
#[derive(Debug, Default)]
pub struct Trace {
    pub mnemonics: BTreeSet<Mnemonic>,
    /// Ran 32-bit (compatibility-mode) code.
    pub compat: bool,
    /// An instruction read a status flag left undefined by an earlier one.
    pub undefined_read: bool,
    /// RFLAGS bits (x86 layout) undefined when the case ended.
    pub undefined_at_end: u64,
    /// Ran an instruction Intel and AMD decode differently.
    pub vendor_specific: bool,
    /// Read a segment selector into a register or memory.
    pub reads_selector: bool,
    /// The instruction during which the last exception came makes more than one memory access.
    pub last_multi_access: bool,
    /// An exception came during an MMX instruction.
    pub fault_in_mmx: bool,
    /// An exception came during a near CALL.
    pub fault_in_near_call: bool,
    /// Loaded a segment register (MOV/POP Sreg, a far transfer, IRET).
    pub loads_segment: bool,
}

fn x86_flags(b: u32) -> u64 {
    let mut f = 0;
    for (iced, x86) in [
        (RflagsBits::OF, flags::OF),
        (RflagsBits::SF, flags::SF),
        (RflagsBits::ZF, flags::ZF),
        (RflagsBits::AF, flags::AF),
        (RflagsBits::CF, flags::CF),
        (RflagsBits::PF, flags::PF),
    ] {
        if b & iced != 0 {
            f |= x86;
        }
    }
    f
}

/// Runs `case` on the interpreter one instruction at a time and records what ran.
pub fn trace(case: &Case, limit: u64) -> Trace {
    let mut m = modes::new_machine(case.mode, &case.code());
    let mut interp = Interpreter::new();
    let mut info = InstructionInfoFactory::new();
    let mut t = Trace::default();
    let mut undefined = 0u32;
    let events =
        |m: &emulator::Machine| m.stats.exceptions.values().sum::<u64>() + m.stats.interrupts;
    for _ in 0..limit.saturating_mul(2) + 8 {
        if m.stats.instructions >= limit {
            break;
        }
        let ins = current_instruction(&m);
        if let Some(i) = &ins {
            t.mnemonics.insert(i.mnemonic());
            t.compat |= m.cpu.mode() == CpuMode::Compatibility;
            t.vendor_specific |= vendor_specific(&m, i);
            t.reads_selector |= reads_selector(i);
            t.loads_segment |= loads_segment(i);
            t.undefined_read |= undefined_result(&m, i);
            if i.rflags_read() & undefined != 0 {
                t.undefined_read = true;
            }
        }
        let (before, delivered) = (undefined, events(&m));
        let stop = !matches!(
            interp.run(&mut m, RunLimit::instructions(1)),
            Ok(Exit::LimitReached)
        );
        if let Some(i) = &ins {
            undefined = (undefined & !i.rflags_modified()) | i.rflags_undefined();
        }
        // An exception or interrupt frame holds RFLAGS: undefined flags are read into memory
        // (a fault's as they were before the instruction, a trap's after it).
        if events(&m) != delivered {
            // A wide operand (an m80, the x87 environment, FXSAVE's 512 bytes) is several
            // accesses too.
            t.last_multi_access = ins.as_ref().is_some_and(|i| {
                let size = i.memory_size().size();
                info.info(i).used_memory().len() > 1 || (size > 8 && size != 16)
            });
            t.fault_in_near_call |= ins.as_ref().is_some_and(|i| {
                i.mnemonic() == Mnemonic::Call && !i.is_call_far() && !i.is_call_far_indirect()
            });
            t.fault_in_mmx |= ins.as_ref().is_some_and(|i| {
                (0..i.op_count())
                    .any(|k| i.op_kind(k) == OpKind::Register && i.op_register(k).is_mm())
            });
            if (before | undefined) & STATUS != 0 {
                t.undefined_read = true;
            }
            undefined = before;
        }
        if stop {
            break;
        }
    }
    t.undefined_at_end = x86_flags(undefined);
    t
}

/// Does an AMD CPU decode this instruction otherwise (the operand-size prefix on near
/// branches in 64-bit mode, …)? The CPU model is Intel's; iced-x86 knows both.
fn vendor_specific(m: &emulator::Machine, i: &iced_x86::Instruction) -> bool {
    if misaligned_state_save(m, i) {
        return true;
    }
    // C1 after FCOMI and its kin: cleared per the SDM (the interpreter), left by AMD CPUs.
    if matches!(
        i.mnemonic(),
        Mnemonic::Fcomi | Mnemonic::Fcomip | Mnemonic::Fucomi | Mnemonic::Fucomip
    ) {
        return true;
    }
    let mut bytes = [0u8; 15];
    if m.ram.read(m.cpu.linear_rip(), &mut bytes).is_err() {
        return false;
    }
    let amd = Decoder::with_ip(m.cpu.code_bits(), &bytes, i.ip(), DecoderOptions::AMD).decode();
    amd.code() != i.code() || amd.len() != i.len()
}

/// FXSAVE/FXRSTOR at an address not 16-byte aligned: #GP(0) on Intel, performed by this AMD host.
fn misaligned_state_save(m: &emulator::Machine, i: &iced_x86::Instruction) -> bool {
    use iced_x86::Register as Reg;
    if !matches!(
        i.mnemonic(),
        Mnemonic::Fxsave | Mnemonic::Fxsave64 | Mnemonic::Fxrstor | Mnemonic::Fxrstor64
    ) {
        return false;
    }
    let value = |r: Reg, _: usize, _: usize| -> Option<u64> {
        if r.is_gpr() {
            let full = r.full_register();
            let v = m.cpu.gpr[full as usize - Reg::RAX as usize];
            Some(v & (u64::MAX >> (64 - 8 * r.size())))
        } else {
            match r {
                Reg::ES | Reg::CS | Reg::SS | Reg::DS => Some(0),
                Reg::FS | Reg::GS => Some(m.cpu.seg[if r == Reg::FS { 4 } else { 5 }].base),
                _ => None,
            }
        }
    };
    i.virtual_address(0, 0, value).is_some_and(|a| a & 15 != 0)
}

/// Does the architecture leave this instruction's result undefined here? A 16-bit SHLD/SHRD
/// by more than 16.
fn undefined_result(m: &emulator::Machine, i: &iced_x86::Instruction) -> bool {
    if !matches!(i.mnemonic(), Mnemonic::Shld | Mnemonic::Shrd) || i.op_count() < 3 {
        return false;
    }
    let count = match i.op2_kind() {
        OpKind::Register => m.cpu.gpr[emulator::cpu::reg::RCX] as u8,
        _ => i.immediate8(),
    };
    let wide = i.op1_register().size() > 2;
    !wide && count & 31 > 16
}

/// Does it load a segment register (MOV Sreg, r/m; POP Sreg; LDS and kin; a far transfer; IRET)?
fn loads_segment(i: &iced_x86::Instruction) -> bool {
    use Mnemonic as M;
    let to_sreg = i.op_count() > 0
        && i.op0_kind() == OpKind::Register
        && i.op0_register().is_segment_register();
    (matches!(i.mnemonic(), M::Mov | M::Pop) && to_sreg)
        || matches!(
            i.mnemonic(),
            M::Lds | M::Les | M::Lfs | M::Lgs | M::Lss | M::Retf | M::Iret | M::Iretd | M::Iretq
        )
        || i.is_call_far()
        || i.is_call_far_indirect()
        || i.is_jmp_far()
        || i.is_jmp_far_indirect()
}

/// Does it read a segment register's selector (MOV r/m, Sreg; PUSH Sreg)?
fn reads_selector(i: &iced_x86::Instruction) -> bool {
    let seg = |n: u32| {
        i.op_count() > n
            && i.op_kind(n) == OpKind::Register
            && i.op_register(n).is_segment_register()
    };
    matches!(i.mnemonic(), Mnemonic::Mov) && seg(1) || i.mnemonic() == Mnemonic::Push && seg(0)
}

/// Is the host an AMD CPU? (One probe for the whole crate: `conformance::native_vendor`.)
fn host_is_amd() -> bool {
    crate::conformance::native_vendor::host_vendor() == HostVendor::Amd
}

const STATUS: u32 = RflagsBits::OF
    | RflagsBits::SF
    | RflagsBits::ZF
    | RflagsBits::AF
    | RflagsBits::CF
    | RflagsBits::PF;

const HOST_STATE: [Mnemonic; 17] = [
    // F3 0F BC: TZCNT on a host with BMI1, BSF on this CPU model (no BMI1 in CPUID).
    Mnemonic::Tzcnt,
    // FXSAVE stores the host's MXCSR_MASK (AMD: 0x2FFFF, with its misaligned-SSE bit).
    Mnemonic::Fxsave,
    Mnemonic::Fxsave64,
    Mnemonic::Sgdt,
    Mnemonic::Sidt,
    Mnemonic::Sldt,
    Mnemonic::Str,
    Mnemonic::Smsw,
    Mnemonic::Rdrand,
    Mnemonic::Rdseed,
    Mnemonic::Rdpid,
    Mnemonic::Rdtscp,
    Mnemonic::Rdpmc,
    Mnemonic::Xgetbv,
    Mnemonic::Cpuid,
    // A hypercall: KVM answers it (from ring 3: RAX = -KVM_EPERM); bare hardware, and the
    // model without paravirtualization, raise #UD.
    Mnemonic::Vmcall,
    Mnemonic::Vmmcall,
];

/// The differences between an emulated engine's `a` and KVM's `b`, or why there are none to
/// count.
pub fn compare(case: &Case, limit: u64, a: &Observation, b: &Observation) -> Verdict {
    let (a, b) = if a.engine == EngineKind::Kvm {
        (b, a)
    } else {
        (a, b)
    };
    if !b.counted && a.exit == Ok(Exit::LimitReached) {
        return Verdict::NotComparable(NO_END);
    }
    let first = differences(a, b, 0, false);
    if first.is_empty() {
        return Verdict::Same;
    }
    let t = trace(case, limit);
    if let Some(rule) = rule_for(&t, a, b) {
        return Verdict::NotComparable(rule);
    }
    // Flags left undefined at the end are not compared.
    let d = differences(a, b, t.undefined_at_end, t.last_multi_access);
    if d.is_empty() {
        return Verdict::Same;
    }
    Verdict::Differ(d)
}

fn rule_for(t: &Trace, a: &Observation, b: &Observation) -> Option<&'static str> {
    if t.undefined_read {
        return Some(UNDEFINED);
    }
    if HOST_STATE.iter().any(|m| t.mnemonics.contains(m)) {
        return Some(HOST_STATE_RULE);
    }
    if !a.stats.unimplemented.is_empty() {
        return Some(NOT_IMPLEMENTED);
    }
    if emulator::interp::X87_TRANSCENDENTALS
        .iter()
        .any(|m| t.mnemonics.contains(m))
    {
        return Some(TRANSCENDENTAL);
    }
    if t.fault_in_mmx {
        return Some(MMX_FAULT);
    }
    if t.vendor_specific && host_is_amd() {
        return Some(VENDOR);
    }
    if t.fault_in_near_call && crate::conformance::native_vendor::host_vendor() == HostVendor::Intel
    {
        return Some(INTEL_CALL);
    }
    if !pvm() {
        return None;
    }
    if t.compat {
        return Some(COMPAT);
    }
    if t.mnemonics.contains(&Mnemonic::Rdtsc) {
        return Some(PVM_TSD);
    }
    if t.reads_selector {
        return Some(HOST_STATE_RULE);
    }
    if t.loads_segment {
        return Some(PVM_SEGMENT_LOAD);
    }
    let (va, vb) = (stub_vector(a), stub_vector(b));
    if matches!(va, Some(6 | 13)) && vb != va {
        return Some(PVM_EMULATED_FAULT);
    }
    None
}

fn pvm() -> bool {
    static PVM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PVM.get_or_init(|| accel_kvm::detect_flavour() == accel_kvm::KvmFlavour::Pvm)
}

/// The vector whose stub (of the ring-3 machine) RIP stopped in.
fn stub_vector(o: &Observation) -> Option<u64> {
    let d = o
        .cpu
        .rip
        .checked_sub(crate::conformance::native_machine::STUBS)?;
    (d < 32 * 16).then_some(d / 16)
}

fn differences(
    a: &Observation,
    b: &Observation,
    undefined: u64,
    multi_access: bool,
) -> Vec<String> {
    let mut d = Vec::new();
    let kind = |e: &Result<Exit, String>| match e {
        Ok(Exit::DebugExit { value, .. }) => format!("debug exit {value:#x}"),
        Ok(Exit::TripleFault { .. }) => "triple fault".into(),
        other => exit_text(other),
    };
    if kind(&a.exit) != kind(&b.exit) {
        d.push(format!(
            "exit: {} vs {}",
            exit_text(&a.exit),
            exit_text(&b.exit)
        ));
    }
    let compat = a.cpu.mode() == CpuMode::Compatibility;
    let (n, mask) = if compat {
        (8, 0xFFFF_FFFF)
    } else {
        (16, u64::MAX)
    };
    for i in 0..n {
        if (a.cpu.gpr[i] ^ b.cpu.gpr[i]) & mask != 0 {
            d.push(format!(
                "gpr{i}: {:#x} vs {:#x}",
                a.cpu.gpr[i], b.cpu.gpr[i]
            ));
        }
    }
    if a.cpu.rip != b.cpu.rip {
        d.push(format!("rip: {:#x} vs {:#x}", a.cpu.rip, b.cpu.rip));
    }
    let mut fl =
        (flags::STATUS | flags::DF | flags::IF | flags::TF | flags::AC | flags::NT) & !undefined;
    if pvm() && b.cpu.seg[emulator::cpu::Seg::Cs as usize].selector & 3 == 0 {
        fl &= !flags::AC; // KVM_MASKS
    }
    if (a.cpu.rflags ^ b.cpu.rflags) & fl != 0 {
        d.push(format!(
            "rflags: {:#x} vs {:#x} (compared {fl:#x})",
            a.cpu.rflags, b.cpu.rflags
        ));
    }
    for s in emulator::cpu::Seg::ALL {
        let (x, y) = (
            a.cpu.seg[s as usize].selector,
            b.cpu.seg[s as usize].selector,
        );
        if x != y {
            d.push(format!("{}: {x:#x} vs {y:#x}", s.name()));
        }
    }
    d.extend(vector_state_diff(&a.cpu.fpu, &b.cpu.fpu));
    let page = if multi_access { !0xFFF } else { u64::MAX };
    if (a.cpu.cr2 ^ b.cpu.cr2) & page != 0 {
        d.push(format!("cr2: {:#x} vs {:#x}", a.cpu.cr2, b.cpu.cr2));
    }
    d.extend(ram_diff(&a.ram, &b.ram));
    if a.io_by_port != b.io_by_port {
        d.push(format!(
            "port I/O: {:?} vs {:?}",
            a.io_by_port, b.io_by_port
        ));
    }
    if a.serial != b.serial {
        d.push("serial output differs".into());
    }
    if b.counted && a.stats.instructions != b.stats.instructions {
        d.push(format!(
            "instructions: {} vs {}",
            a.stats.instructions, b.stats.instructions
        ));
    }
    d
}

/// The x87/SSE state both sides must agree on (`FpuState::differences`), on one line.
fn vector_state_diff(a: &emulator::cpu::FpuState, b: &emulator::cpu::FpuState) -> Option<String> {
    let differing = a.differences(b);
    (!differing.is_empty()).then(|| format!("x87/SSE state: {}", differing.join(", ")))
}

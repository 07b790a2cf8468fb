//! Where the real CPUs themselves disagree: the corners Intel and AMD fill differently.
//! Teaches: an oracle is one CPU, not the architecture — what the SDM leaves open, each vendor's microcode decides.
//!
//! The harness compares the interpreter with whatever CPU the host has. Some results are not
//! architectural (the SDM does not define them, or defines them for Intel only) and measurably
//! differ between an Intel and an AMD host. [`VENDOR_DIFFERENCES`] lists them; for such a case
//! [`align`] replaces exactly those bits of the native outcome with the model's, so the rest of
//! the case is still compared, and says which difference it set aside. The model is Intel's
//! where Intel documents or shows a behaviour (vmscope's CPUID says `GenuineIntel`).

use super::native::{CodeMode, Outcome, CODE, STACK};
use super::native_forms::Case;
use emulator::cpu::state::{flags, reg};
use iced_x86::Mnemonic;

/// The host CPU's vendor, from /proc/cpuinfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostVendor {
    Intel,
    Amd,
    Other,
}

/// The vendor of the CPU this process runs on (read once).
pub fn host_vendor() -> HostVendor {
    static VENDOR: std::sync::OnceLock<HostVendor> = std::sync::OnceLock::new();
    *VENDOR.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        if info.contains("GenuineIntel") {
            HostVendor::Intel
        } else if info.contains("AuthenticAMD") {
            HostVendor::Amd
        } else {
            HostVendor::Other
        }
    })
}

/// The differences between CPUs the comparison allows for: what, and what each one does.
pub const VENDOR_DIFFERENCES: &[(&str, &str)] = &[
    (
        "RF after a REP string suspended part-way",
        "a single-step #DB between iterations: Intel pushes RF = 1 (so the restart skips its instruction breakpoint), as the model does; on other hosts RF is taken from the model",
    ),
    (
        "status flags of a REPE/REPNE CMPS/SCAS stopped part-way",
        "by a fault or a single-step #DB between iterations: Intel shows the flags from before the instruction, as the model does (the SDM says so for faults); on other hosts they are taken from the model",
    ),
    (
        "a 32-bit-address REP string that did not write a register",
        "in 64-bit mode, with ECX = 0 or faulting before its first iteration, Intel still writes ECX (and ESI/EDI after a fault) back as 32-bit registers, clearing bits 63:32; the model leaves them as they were",
    ),
    (
        "near CALL to a non-canonical target",
        "#GP with RSP unchanged; Intel has already stored the return address below RSP, the model stores nothing",
    ),
];

/// Cases a vendor difference makes not comparable at all (the CPUs take different paths).
pub const VENDOR_PATHS: &[(&str, &str)] = &[
    (
        "an x87 store with an unmasked exception to a bad address",
        "Intel signals the numeric exception first (FSW.ES set, nothing stored, the address never faults); the model (and AMD) fault on the address",
    ),
    (
        "an unaligned-capable SSE access with RFLAGS.AC in ring 3",
        "MOVUPS, MOVDQU and the like: Intel does not check their alignment, the model (and AMD) raise #AC",
    ),
    (
        "CMPS with both operands bad",
        "Intel faults on ES:RDI first, the model (and AMD) on DS:RSI, the operand read first",
    ),
];

/// Why `native` and `interp` took different paths through this case in a documented vendor
/// way (see [`VENDOR_PATHS`]): the case is then not comparable.
pub fn different_path(case: &Case, interp: &Outcome, native: &Outcome) -> Option<&'static str> {
    use Mnemonic as M;
    let decoded = decode(case);
    let m = decoded.mnemonic();
    let memory_fault = |v: u8| matches!(v, 12 | 13 | 14 | 17);
    let native_vector = native.fault.as_ref().map(|f| f.vector);
    if interp.fault.as_ref().is_some_and(|f| f.vector == 17)
        && native_vector != Some(17)
        && has_xmm(&decoded)
    {
        // Past the alignment check the access goes on: done, a #DB trap, or a #PF.
        return Some(VENDOR_PATHS[1].0);
    }
    // (On the CPU the store is skipped: done, or a #DB trap after it.)
    let stored_nothing = native_vector.is_none() || native_vector == Some(1);
    match (&interp.fault, &native.fault) {
        (Some(fi), _) if memory_fault(fi.vector) && stored_nothing => {
            let x87_store = matches!(
                m,
                M::Fst | M::Fstp | M::Fist | M::Fistp | M::Fisttp | M::Fbstp
            );
            (x87_store && native.fpu.fsw() & 0x80 != 0).then_some(VENDOR_PATHS[0].0)
        }
        (Some(fi), Some(fnat)) if matches!(m, M::Cmpsb | M::Cmpsw | M::Cmpsd | M::Cmpsq) => {
            let both_bad = memory_fault(fi.vector) && memory_fault(fnat.vector);
            (both_bad && (fi.vector, fi.cr2) != (fnat.vector, fnat.cr2))
                .then_some(VENDOR_PATHS[2].0)
        }
        _ => None,
    }
}

/// Makes `native` read as the model's in the [`VENDOR_DIFFERENCES`] that apply to this case on
/// `vendor`, and says which applied (`None`: the case is compared as it is).
pub fn align(
    case: &Case,
    interp: &Outcome,
    native: &mut Outcome,
    vendor: HostVendor,
) -> Option<&'static str> {
    let decoded = decode(case);
    let string = decoded.is_string_instruction();
    if string && has_a32_prefix(case) && case.mode == CodeMode::Long64 {
        // Only registers the model left untouched, whose low half the CPU kept.
        let mut changed = false;
        for r in [reg::RCX, reg::RSI, reg::RDI] {
            let model = interp.gpr[r];
            let untouched = model == case.gpr[r] && model >> 32 != 0;
            if untouched && native.gpr[r] == model & 0xFFFF_FFFF {
                native.gpr[r] = model;
                changed = true;
            }
        }
        if changed {
            return Some(VENDOR_DIFFERENCES[2].0);
        }
    }
    let (Some(fi), Some(fnat)) = (&interp.fault, &native.fault) else {
        return None;
    };
    if fi.vector != fnat.vector {
        return None;
    }
    let rep = decoded.has_rep_prefix() || decoded.has_repne_prefix();
    let stopped_part_way = string && rep && interp.rip == CODE && native.rip == CODE;
    if stopped_part_way && vendor != HostVendor::Intel {
        let mut which = None;
        if fi.vector == 1 && (interp.rflags ^ native.rflags) & flags::RF != 0 {
            native.rflags = (native.rflags & !flags::RF) | (interp.rflags & flags::RF);
            which = Some(VENDOR_DIFFERENCES[0].0);
        }
        if compares(decoded.mnemonic()) && (interp.rflags ^ native.rflags) & flags::STATUS != 0 {
            native.rflags = (native.rflags & !flags::STATUS) | (interp.rflags & flags::STATUS);
            which = Some(VENDOR_DIFFERENCES[1].0);
        }
        return which;
    }
    if decoded.mnemonic() == Mnemonic::Call && fi.vector == 13 {
        // The 8 bytes below the case's RSP, if they lie in the stack page.
        let rsp = case.gpr[reg::RSP];
        if (STACK + 8..=STACK + 4096).contains(&rsp) {
            let at = (rsp - 8 - STACK) as usize;
            if native.stack[at..at + 8] != interp.stack[at..at + 8] {
                native.stack[at..at + 8].copy_from_slice(&interp.stack[at..at + 8]);
                return Some(VENDOR_DIFFERENCES[3].0);
            }
        }
    }
    None
}

fn has_xmm(i: &iced_x86::Instruction) -> bool {
    (0..i.op_count())
        .any(|n| i.op_kind(n) == iced_x86::OpKind::Register && i.op_register(n).is_xmm())
}

fn compares(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Cmpsb | M::Cmpsw | M::Cmpsd | M::Cmpsq | M::Scasb | M::Scasw | M::Scasd | M::Scasq
    )
}

fn decode(case: &Case) -> iced_x86::Instruction {
    let bits = match case.mode {
        CodeMode::Long64 => 64,
        CodeMode::Compat32 => 32,
    };
    iced_x86::Decoder::with_ip(bits, &case.code, CODE, iced_x86::DecoderOptions::NONE).decode()
}

/// Does the instruction carry an address-size prefix (0x67) among its legacy prefixes?
fn has_a32_prefix(case: &Case) -> bool {
    case.code
        .iter()
        .take_while(|b| {
            matches!(
                b,
                0x26 | 0x2E | 0x36 | 0x3E | 0x64..=0x67 | 0xF0 | 0xF2 | 0xF3
            )
        })
        .any(|&b| b == 0x67)
}

//! MMX, SSE and SSE2: the packed registers, who may use them, and how their operands are read.
//! Teaches: the availability checks an OS relies on (CR0.EM/TS, CR4.OSFXSR) and lane-wise SIMD semantics.
//!
//! Every instruction here first passes [`check_available`]: with CR0.EM set or CR4.OSFXSR clear
//! an SSE instruction is #UD (the OS has not said it saves XMM state), with CR0.TS set it is #NM
//! (the OS's lazy context switch: "the FPU/SSE state belongs to another task"). MMX instructions
//! alias the x87 registers and switch the x87 unit into MMX shape (`FpuState::enter_mmx`).
//! Then `moves` (data movement and state management), `integer` (packed integer arithmetic),
//! `float` (packed and scalar IEEE arithmetic under MXCSR) and `convert` do the work, all on
//! the FXSAVE image in `CpuState::fpu`.

mod convert;
mod float;
mod integer;
mod moves;

use iced_x86::{CpuidFeature, Instruction, Mnemonic, OpKind, Register};

use super::access::seg_of;
use super::{exception, gp, ud, vec, Cpu, R};
use crate::cpu::ctl;

pub(crate) fn handles(m: Mnemonic) -> bool {
    moves::handles(m) || integer::handles(m) || float::handles(m) || convert::handles(m)
}

/// Does this CPU offer the SIMD unit at all (CPUID.1:EDX MMX, FXSR, SSE and SSE2)? Until it
/// does, its mnemonics dispatch as unimplemented: #UD, counted in `--stats`, listed by
/// `vmscope isa` as missing.
pub(crate) fn offered() -> bool {
    use crate::cpu::cpuid::{cpuid, edx1};
    let all = edx1::MMX | edx1::FXSR | edx1::SSE | edx1::SSE2;
    cpuid(1, 0)[3] & all == all
}

pub(crate) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    let m = ins.mnemonic();
    let mmx = check_available(cpu, ins)?;
    let result = if moves::handles(m) {
        moves::execute(cpu, ins)
    } else if integer::handles(m) {
        integer::execute(cpu, ins)
    } else if float::handles(m) {
        float::execute(cpu, ins)
    } else if convert::handles(m) {
        convert::execute(cpu, ins)
    } else {
        Err(ud())
    };
    // An SSE exception (#XM) comes after the operands were read, and the x87 unit has turned
    // MMX-shaped by then (checked against the CPU: CVTTPS2PI with an unmasked invalid).
    if mmx
        && matches!(
            result,
            Err(crate::interp::Fault::Exception { vector: 19, .. })
        )
    {
        cpu.st().fpu.enter_mmx();
    }
    result?;
    // The x87 unit turns MMX-shaped only when the instruction completes: a fault changes no
    // architectural state. (The SDM does not say; an AMD host turns it for some faulting
    // stores, MOVQ m64, and not for others, MOVNTQ: the fuzzer sets such cases aside.)
    if mmx {
        cpu.st().fpu.enter_mmx();
    }
    Ok(())
}

/// Which register file an instruction uses, for the availability checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// XMM registers or MXCSR: SSE's checks.
    Sse,
    /// MM registers only: MMX's checks.
    Mmx,
    /// MM and XMM registers (MOVQ2DQ, CVTPI2PS, …): SSE's checks, then the MMX transition.
    SseWithMmx,
    /// FXSAVE/FXRSTOR: #NM on CR0.TS or CR0.EM.
    StateSave,
    /// MOVNTI and the like: general registers only, no state checks.
    Plain,
}

fn class(ins: &Instruction) -> Class {
    use Mnemonic as M;
    match ins.mnemonic() {
        M::Fxsave | M::Fxsave64 | M::Fxrstor | M::Fxrstor64 => return Class::StateSave,
        M::Ldmxcsr | M::Stmxcsr => return Class::Sse,
        M::Movnti => return Class::Plain,
        M::Emms => return Class::Mmx,
        _ => {}
    }
    let (mut xmm, mut mmx) = (false, false);
    for i in 0..ins.op_count() {
        if ins.op_kind(i) == OpKind::Register {
            let r = ins.op_register(i);
            xmm |= r.is_xmm();
            mmx |= r.is_mm();
        }
    }
    match (xmm, mmx) {
        (true, true) => Class::SseWithMmx,
        (false, true) => Class::Mmx,
        // MASKMOVQ's and MOVNTQ's memory forms have an MM register; every other form left names
        // an XMM register.
        _ => Class::Sse,
    }
}

/// The SDM's checks before an MMX/SSE instruction executes (vol. 3A, 13.1 and 13.4), in their
/// order: #UD before #NM before #MF. `Ok(true)`: the instruction makes the x87 state MMX-shaped.
fn check_available(cpu: &mut Cpu, ins: &Instruction) -> R<bool> {
    // An instruction whose CPUID feature this CPU does not advertise is #UD, as on a CPU
    // without it (`cpu::cpuid` lists what is implemented, and grows with this module).
    // A form of a later extension (SSE4.1's PEXTRW m16, …) counts as not implemented.
    if !ins.cpuid_features().iter().all(|&f| advertised(f)) {
        cpu.m.stats.count_unimplemented(ins.mnemonic());
        return Err(ud());
    }
    let cr0 = cpu.s().cr0;
    let cr4 = cpu.s().cr4;
    let nm = || exception(vec::NM, None);
    let class = class(ins);
    match class {
        Class::Plain => Ok(false),
        Class::StateSave => {
            if cr0 & (ctl::CR0_TS | ctl::CR0_EM) != 0 {
                return Err(nm());
            }
            Ok(false)
        }
        Class::Sse | Class::SseWithMmx => {
            if cr0 & ctl::CR0_EM != 0 || cr4 & ctl::CR4_OSFXSR == 0 {
                return Err(ud());
            }
            if cr0 & ctl::CR0_TS != 0 {
                return Err(nm());
            }
            if class == Class::SseWithMmx {
                check_x87_pending(cpu)?;
                return Ok(true);
            }
            Ok(false)
        }
        Class::Mmx => {
            if cr0 & ctl::CR0_EM != 0 {
                return Err(ud());
            }
            if cr0 & ctl::CR0_TS != 0 {
                return Err(nm());
            }
            check_x87_pending(cpu)?;
            Ok(ins.mnemonic() != Mnemonic::Emms)
        }
    }
}

/// Is this instruction-set feature part of the unit? Only asked once the unit is offered
/// ([`offered`]: MMX, FXSR, SSE and SSE2 all in CPUID), so no CPUID read is needed here.
fn advertised(feature: CpuidFeature) -> bool {
    use CpuidFeature as F;
    matches!(
        feature,
        F::FXSR | F::MMX | F::SSE | F::SSE2 | F::X64 | F::INTEL386 | F::INTEL486
    )
}

/// An unmasked x87 exception still pending (FSW.ES) is reported before an MMX instruction
/// touches the registers: #MF with CR0.NE, otherwise (the PC's FERR# wiring) it is ignored.
fn check_x87_pending(cpu: &Cpu) -> R<()> {
    use crate::cpu::fpu::fsw;
    if cpu.s().fpu.fsw() & fsw::ES != 0 && cpu.s().cr0 & ctl::CR0_NE != 0 {
        return Err(exception(vec::MF, None));
    }
    Ok(())
}

// ---- operands ----

/// Mnemonics whose 16-byte memory operand may be misaligned (every other legacy-SSE m128 is
/// #GP(0) when not 16-byte aligned).
fn unaligned_ok(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Movups | M::Movupd | M::Movdqu | M::Lddqu | M::Maskmovdqu
    )
}

/// Reads operand `i` as up to 128 bits: an XMM register whole, an MM register or a general
/// register zero-extended, memory at the instruction's operand size, an immediate.
pub(super) fn read(cpu: &mut Cpu, ins: &Instruction, i: u32) -> R<u128> {
    match ins.op_kind(i) {
        OpKind::Register => Ok(read_reg(cpu, ins.op_register(i))),
        OpKind::Memory => {
            let size = ins.memory_size().size();
            let mut bytes = [0u8; 16];
            let (seg, ea) = memory_operand(cpu, ins, size)?;
            cpu.read_mem_bytes(seg, ea, &mut bytes[..size])?;
            Ok(u128::from_le_bytes(bytes))
        }
        _ => Ok(ins.immediate(i) as u128),
    }
}

/// Writes operand `i`: an XMM register whole (128 bits), an MM register, a general register
/// (32-bit writes zero-extend), or memory at the operand size.
pub(super) fn write(cpu: &mut Cpu, ins: &Instruction, i: u32, value: u128) -> R<()> {
    match ins.op_kind(i) {
        OpKind::Register => {
            write_reg(cpu, ins.op_register(i), value);
            Ok(())
        }
        OpKind::Memory => {
            let size = ins.memory_size().size();
            let (seg, ea) = memory_operand(cpu, ins, size)?;
            cpu.write_mem_bytes(seg, ea, &value.to_le_bytes()[..size])
        }
        _ => Err(ud()),
    }
}

pub(super) fn read_reg(cpu: &Cpu, r: Register) -> u128 {
    if r.is_xmm() {
        cpu.s().fpu.xmm(xmm_index(r))
    } else if r.is_mm() {
        cpu.s().fpu.mm(r as u32 - Register::MM0 as u32) as u128
    } else {
        cpu.reg(r) as u128
    }
}

pub(super) fn write_reg(cpu: &mut Cpu, r: Register, value: u128) {
    if r.is_xmm() {
        cpu.st().fpu.set_xmm(xmm_index(r), value);
    } else if r.is_mm() {
        cpu.st()
            .fpu
            .set_mm(r as u32 - Register::MM0 as u32, value as u64);
    } else {
        cpu.set_reg(r, value as u64);
    }
}

pub(super) fn xmm_index(r: Register) -> u32 {
    r as u32 - Register::XMM0 as u32
}

/// The memory operand's segment and offset, after the 16-byte alignment rule.
fn memory_operand(cpu: &Cpu, ins: &Instruction, size: usize) -> R<(crate::cpu::Seg, u64)> {
    let ea = cpu.effective_address(ins);
    let seg = seg_of(ins.memory_segment());
    if size == 16 && !unaligned_ok(ins.mnemonic()) && cpu.linear(seg, ea, 16, false)? & 15 != 0 {
        return Err(gp(0));
    }
    Ok((seg, ea))
}

/// Operand width in bytes of a packed operation: 8 on MM registers, 16 on XMM registers.
pub(super) fn width(ins: &Instruction) -> usize {
    if ins.op_count() > 0 && ins.op_kind(0) == OpKind::Register && ins.op_register(0).is_mm() {
        8
    } else {
        16
    }
}

/// Applies `f` to each `lane`-byte lane of `a` and `b` over the low `width` bytes.
pub(super) fn lanes(
    a: u128,
    b: u128,
    width: usize,
    lane: usize,
    f: impl Fn(u64, u64) -> u64,
) -> u128 {
    let bits = lane * 8;
    let lane_mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut out = 0u128;
    for k in 0..width / lane {
        let x = (a >> (k * bits)) as u64 & lane_mask;
        let y = (b >> (k * bits)) as u64 & lane_mask;
        out |= ((f(x, y) & lane_mask) as u128) << (k * bits);
    }
    out
}

/// Lane `k` of `lane` bytes.
pub(super) fn lane(v: u128, lane: usize, k: usize) -> u64 {
    let bits = lane * 8;
    let m = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    (v >> (k * bits)) as u64 & m
}

/// Sign-extends a `lane`-byte value to i64.
pub(super) fn signed(v: u64, lane: usize) -> i64 {
    let shift = 64 - lane * 8;
    ((v << shift) as i64) >> shift
}

//! The x87 FPU: a stack of eight 80-bit registers, its control and status words, and who may use it.
//! Teaches: the register stack (TOP, tags, stack faults), masked vs deferred exceptions (#MF at the next waiting instruction), CR0.EM/TS/NE.
//!
//! The state lives in the FXSAVE image (`CpuState::fpu`, see `cpu::fpu`) every engine exchanges.
//! Every x87 instruction first passes [`check_available`] (CR0.EM or CR0.TS: #NM); a "waiting"
//! one then reports an exception left pending by an earlier instruction (FSW.ES with CR0.NE:
//! #MF). An exception an instruction raises itself is recorded in FSW ([`record`]): masked, the
//! FPU answers with a default (∞, the indefinite NaN, …) and goes on; unmasked, ES is set and
//! the *next* waiting x87 instruction faults. The work is in `arith` (arithmetic, compares,
//! FXAM), `transfer` (loads, stores, constants, FXCH, FCMOVcc), `environment` (FNINIT,
//! control word, FNSTENV/FNSAVE, tags) and `transcend` (FSIN, FPATAN, F2XM1, FYL2X, … computed
//! in the 128-bit `wide` format); the rounding is in `ext80`.

mod arith;
mod environment;
pub mod ext80;
mod transcend;
pub use transcend::TRANSCENDENTALS;
mod transfer;
mod wide;

use iced_x86::{CpuidFeature, Instruction, Mnemonic, OpKind, Register};

pub(super) use super::access::seg_of;
use super::{exception, ud, vec, Cpu, R};
use crate::cpu::ctl;
use crate::cpu::fpu::fsw;
use ext80::{flag, Class, Ext, Format, Rounding};

pub(crate) fn handles(m: Mnemonic) -> bool {
    arith::handles(m) || transfer::handles(m) || environment::handles(m) || transcend::handles(m)
}

/// Does this CPU offer an x87 (CPUID.1:EDX.FPU)? Until it does, x87 opcodes are #UD.
pub(crate) fn offered() -> bool {
    use crate::cpu::cpuid::{cpuid, edx1};
    cpuid(1, 0)[3] & edx1::FPU != 0
}

pub(crate) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    check_available(cpu, ins)?;
    let m = ins.mnemonic();
    if environment::handles(m) {
        return environment::execute(cpu, ins);
    }
    note_instruction(cpu, ins);
    if transfer::handles(m) {
        transfer::execute(cpu, ins)
    } else if arith::handles(m) {
        arith::execute(cpu, ins)
    } else if transcend::handles(m) {
        transcend::execute(cpu, ins)
    } else {
        Err(ud())
    }
}

/// The control instructions that do not wait: they run even with an unmasked exception pending
/// (an exception handler uses them to look at and clear the state).
fn non_waiting(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Fninit
            | M::Fnclex
            | M::Fnstsw
            | M::Fnstcw
            | M::Fnstenv
            | M::Fnsave
            | M::Fneni
            | M::Fndisi
            | M::Fnsetpm
    )
}

// ANCHOR: check_available
/// The SDM's checks before an x87 instruction (vol. 3A, 2.5 and 9.2): a feature this CPU does
/// not list is #UD; CR0.EM (no FPU: emulate it) or CR0.TS (the state belongs to another task)
/// is #NM; a waiting instruction with an unmasked exception pending is #MF (CR0.NE set).
fn check_available(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use crate::cpu::cpuid::{cpuid, edx1};
    let listed = |f: CpuidFeature| match f {
        CpuidFeature::FPU | CpuidFeature::FPU287 | CpuidFeature::FPU387 => true,
        CpuidFeature::INTEL8086 | CpuidFeature::INTEL386 | CpuidFeature::X64 => true,
        // FCMOVcc and FCOMI arrived with the P6's CMOV.
        CpuidFeature::CMOV => cpuid(1, 0)[3] & edx1::CMOV != 0,
        _ => false,
    };
    if !ins.cpuid_features().iter().all(|&f| listed(f)) {
        cpu.m.stats.count_unimplemented(ins.mnemonic());
        return Err(ud());
    }
    if cpu.s().cr0 & (ctl::CR0_EM | ctl::CR0_TS) != 0 {
        return Err(exception(vec::NM, None));
    }
    if !non_waiting(ins.mnemonic()) {
        check_pending(cpu)?;
    }
    Ok(())
}
// ANCHOR_END: check_available

/// An unmasked exception left pending (FSW.ES) is delivered now: #MF with CR0.NE; without it
/// the PC wires FERR# to an interrupt controller vmscope does not model, and the instruction runs.
pub(crate) fn check_pending(cpu: &Cpu) -> R<()> {
    if cpu.s().fpu.fsw() & fsw::ES != 0 && cpu.s().cr0 & ctl::CR0_NE != 0 {
        return Err(exception(vec::MF, None));
    }
    Ok(())
}

// ---- the register stack ----

/// ST(i), or `None` when its tag says empty.
pub(super) fn st(cpu: &Cpu, i: u32) -> Option<Ext> {
    let f = &cpu.s().fpu;
    (!f.st_empty(i)).then(|| Ext::from_bits(f.st(i)))
}

/// Writes ST(i) and marks it valid.
pub(super) fn set_st(cpu: &mut Cpu, i: u32, v: Ext) {
    let f = &mut cpu.st().fpu;
    f.set_st(i, v.to_bits());
    f.set_st_tag(i, true);
}

/// Pops the stack: ST(0) becomes empty and TOP moves up.
pub(super) fn pop(cpu: &mut Cpu) {
    let f = &mut cpu.st().fpu;
    f.set_st_tag(0, false);
    f.rotate_stack(1);
}

// ANCHOR: push
/// Pushes `v`. A full stack (ST(7) valid) is a stack overflow: masked, the indefinite NaN is
/// pushed instead; unmasked, nothing changes.
pub(super) fn push(cpu: &mut Cpu, v: Ext) {
    if !cpu.s().fpu.st_empty(7) {
        if !record_stack_fault(cpu, true) {
            return;
        }
        cpu.st().fpu.rotate_stack(-1);
        set_st(cpu, 0, Ext::INDEFINITE);
        return;
    }
    cpu.st().fpu.rotate_stack(-1);
    set_st(cpu, 0, v);
}
// ANCHOR_END: push

/// After a stack *underflow* has been recorded: pushes `v` without checking for overflow (the
/// CPU reports the empty source, not the full stack: checked against it).
pub(super) fn push_after_underflow(cpu: &mut Cpu, v: Ext) {
    cpu.st().fpu.rotate_stack(-1);
    set_st(cpu, 0, v);
}

/// Records a stack fault (IE + SF; C1 = 1 for overflow, 0 for underflow). `true`: masked, the
/// caller goes on with the indefinite NaN.
pub(super) fn record_stack_fault(cpu: &mut Cpu, overflow: bool) -> bool {
    set_c1(cpu, overflow);
    record(cpu, flag::IE | fsw::SF)
}

/// Ors exception flags into FSW. An unmasked one sets ES (and B) so the next waiting
/// instruction faults. Returns `true` when the caller may write its result: no unmasked
/// invalid-operation, denormal or divide-by-zero exception (those leave the destination as it was).
pub(super) fn record(cpu: &mut Cpu, raised: u16) -> bool {
    let may_write = may_write(cpu, raised);
    // An unmasked pre-computation exception stops the operation: no result, so no overflow,
    // underflow or precision flags either (checked against the CPU).
    let raised = if may_write {
        raised
    } else {
        // Nor a "rounded up" C1 (a stack fault's C1 says overflow or underflow and stays).
        if raised & fsw::SF == 0 {
            set_c1(cpu, false);
        }
        raised & !(flag::OE | flag::UE | flag::PE)
    };
    let masks = cpu.s().fpu.fcw() & 0x3F;
    let mut status = cpu.s().fpu.fsw() | raised;
    let unmasked = raised & 0x3F & !masks;
    if unmasked != 0 {
        status |= fsw::ES | fsw::B;
    }
    cpu.st().fpu.set_fsw(status);
    may_write
}

/// Would [`record`] let the result be written? (For stores to memory, which must write, and
/// possibly fault, before FSW changes.)
pub(super) fn may_write(cpu: &Cpu, raised: u16) -> bool {
    raised & (flag::IE | flag::DE | flag::ZE) & !masks(cpu) == 0
}

pub(super) fn set_c1(cpu: &mut Cpu, on: bool) {
    set_condition(cpu, fsw::C1, on);
}

/// Sets or clears condition bits of FSW.
pub(super) fn set_condition(cpu: &mut Cpu, bits: u16, on: bool) {
    let v = cpu.s().fpu.fsw();
    cpu.st().fpu.set_fsw(if on { v | bits } else { v & !bits });
}

/// The exception masks of FCW (IM..PM).
pub(super) fn masks(cpu: &Cpu) -> u16 {
    cpu.s().fpu.fcw() & 0x3F
}

pub(super) fn rounding(cpu: &Cpu) -> Rounding {
    Rounding::from_field(cpu.s().fpu.fcw() >> 10)
}

/// The register format under FCW.PC, for the instructions precision control applies to.
pub(super) fn precision(cpu: &Cpu) -> Format {
    ext80::register_format(cpu.s().fpu.fcw() >> 8)
}

/// Remembers the last non-control instruction for an exception handler: FIP and FDP (FOP, the
/// opcode bits, is not tracked and reads 0; CPUs differ on when they store it).
fn note_instruction(cpu: &mut Cpu, ins: &Instruction) {
    let data = if (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory) {
        cpu.effective_address(ins)
    } else {
        cpu.s().fpu.fdp()
    };
    let f = &mut cpu.st().fpu;
    f.set_fip(ins.ip());
    f.set_fdp(data);
}

/// The index of an ST(i) operand.
pub(super) fn st_index(r: Register) -> u32 {
    r as u32 - Register::ST0 as u32
}

// ---- memory operands ----

/// Reads the instruction's memory operand (`size` bytes, at most 10).
pub(super) fn read_memory(cpu: &mut Cpu, ins: &Instruction, size: usize) -> R<u128> {
    let ea = cpu.effective_address(ins);
    let mut b = [0u8; 16];
    cpu.read_mem_bytes(seg_of(ins.memory_segment()), ea, &mut b[..size])?;
    Ok(u128::from_le_bytes(b))
}

/// Checks that the instruction's memory destination can be written (segment, alignment, paging)
/// before anything is computed: a store faults on its address before it reports an x87
/// exception (checked against the CPU: an #AC before an unmasked underflow).
pub(super) fn probe_destination(cpu: &mut Cpu, ins: &Instruction, size: usize) -> R<()> {
    let ea = cpu.effective_address(ins);
    cpu.probe_write(seg_of(ins.memory_segment()), ea, size as u32)
}

pub(super) fn write_memory(cpu: &mut Cpu, ins: &Instruction, size: usize, v: u128) -> R<()> {
    let ea = cpu.effective_address(ins);
    cpu.write_mem_bytes(seg_of(ins.memory_segment()), ea, &v.to_le_bytes()[..size])
}

/// A source operand converted to the register format, with the exceptions the conversion
/// itself raises (#D for a single/double denormal; a signaling NaN stays one, for the operation
/// to report).
#[derive(Debug, Clone, Copy)]
pub(super) struct Source {
    pub value: Ext,
    pub denormal: bool,
}

impl Source {
    pub fn of(value: Ext) -> Source {
        Source {
            value,
            denormal: value.class() == Class::Denormal,
        }
    }
}

/// Reads a memory operand of a float or integer type as a register value.
pub(super) fn read_source(cpu: &mut Cpu, ins: &Instruction) -> R<Source> {
    use iced_x86::MemorySize as S;
    let v = match ins.memory_size() {
        S::Float32 => {
            let (value, denormal) = ext80::from_ieee(read_memory(cpu, ins, 4)? as u64, false);
            return Ok(Source { value, denormal });
        }
        S::Float64 => {
            let (value, denormal) = ext80::from_ieee(read_memory(cpu, ins, 8)? as u64, true);
            return Ok(Source { value, denormal });
        }
        S::Float80 => Ext::from_bits(read_memory(cpu, ins, 10)?),
        S::Int16 => integer(read_memory(cpu, ins, 2)? as u16 as i16 as i64),
        S::Int32 => integer(read_memory(cpu, ins, 4)? as u32 as i32 as i64),
        S::Int64 => integer(read_memory(cpu, ins, 8)? as u64 as i64),
        _ => return Err(ud()),
    };
    Ok(Source::of(v))
}

fn integer(v: i64) -> Ext {
    ext80::from_integer(v < 0, v.unsigned_abs())
}

/// The NaN an operation on NaN operands returns (x87 rules, SDM vol. 1 table 4-7): a quiet NaN
/// wins over a signaling one; of two of the same kind, the larger significand (quieted); of
/// equal significands, the positive one.
pub(super) fn propagate_nan(a: Ext, b: Option<Ext>) -> Ext {
    let Some(b) = b.filter(|b| b.is_nan()) else {
        return a.quieted();
    };
    if !a.is_nan() {
        return b.quieted();
    }
    let quiet = |x: Ext| x.class() == Class::QNan;
    let pick = match (quiet(a), quiet(b)) {
        (true, false) => a,
        (false, true) => b,
        _ if a.sig > b.sig => a,
        _ if b.sig > a.sig => b,
        _ if !a.sign => a,
        _ => b,
    };
    pick.quieted()
}

/// Is any operand a signaling NaN or an unsupported encoding (both #IA)?
pub(super) fn invalid_operand(values: &[Ext]) -> bool {
    values
        .iter()
        .any(|v| matches!(v.class(), Class::SNan | Class::Unsupported))
}

//! Debug exceptions: RFLAGS.TF single-stepping and DR0–DR3 instruction breakpoints (DR6, DR7).
//! Teaches: how a debugger stops a CPU — a trap after each instruction, or a fault before one.
//!
//! - Single-step: if TF was set when an instruction started, #DB is raised as a *trap* after it
//!   completes (DR6.BS = 1, the saved RIP is the next instruction); inside a REP string
//!   instruction, after every iteration. INT n/INT3/INT1 (and INTO when OF = 1) clear TF on the
//!   way into their handler, so they are not followed by a step trap. After MOV SS or
//!   POP SS the trap waits one more instruction (the same shadow that holds interrupts), so a
//!   debugger never stops between loading SS and loading SP.
//! - Instruction breakpoints: DR7 enables DRi (L/G bits) with R/W = 00 (execute); when RIP's
//!   linear address equals DRi and RFLAGS.RF = 0, #DB is raised as a *fault* before the
//!   instruction runs (DR6.Bi = 1). A handler returns with RF = 1 in the saved flags to run the
//!   instruction once without re-triggering; RF clears after every completed instruction.
//! - Data breakpoints: R/W = 01 (writes) or 11 (reads and writes) with LEN = 1, 2, 4 or 8 bytes
//!   (the range is aligned down to LEN, as the hardware compares). An access that overlaps the
//!   range raises #DB as a *trap* after the instruction (DR6.Bi = 1).
//! - I/O breakpoints: with CR4.DE = 1, R/W = 10 watches I/O ports (DRi holds the port): an IN,
//!   OUT, INS or OUTS whose port range overlaps DRi..DRi+LEN raises the same #DB trap after the
//!   instruction (a REP INS/OUTS after the iteration that hit). Without CR4.DE, R/W = 10 is undefined
//!   by the SDM and never matches here.
//! - The registers themselves ([`read_dr`], [`write_dr`]): DR4/DR5 are other names for DR6/DR7
//!   while CR4.DE = 0 and #UD while it is 1; DR6 and DR7 keep their fixed bits whatever is
//!   written (DR6 reads 0xFFFF0FF0 with no event recorded, DR7 0x400); with DR7.GD set, any MOV
//!   to or from a debug register is a #DB *fault* with DR6.BD = 1 (general detect: a debugger
//!   owns the registers), and GD clears on the way into the handler so it can use them.
//! - Task switches (`task.rs`): a 32-bit TSS with its T flag set raises a #DB trap (DR6.BT) once
//!   the switch to it is complete, before the new task's first instruction.

use iced_x86::{Instruction, Mnemonic};

use super::{exception, exceptions, vec, Cpu, R};

/// DR6.BS: the #DB came from a single-step trap.
pub(crate) const DR6_BS: u64 = 1 << 14;

/// DR6.BD: the #DB came from general detect (a MOV DR while DR7.GD = 1).
pub(crate) const DR6_BD: u64 = 1 << 13;
/// DR7.GD: general detect enable.
pub(crate) const DR7_GD: u64 = 1 << 13;
/// DR6 bits that read as 1 (no RTM: bit 16 too) and the ones software can change (B0–B3, BD, BS, BT).
const DR6_FIXED1: u64 = 0xFFFF_0FF0;
const DR6_WRITABLE: u64 = 0xE00F;
/// DR7 bit 10 reads as 1; bits 11 (RTM), 12, 14 and 15 as 0.
const DR7_FIXED1: u64 = 0x400;
const DR7_WRITABLE: u64 = 0xFFFF_23FF;

/// Sets DR6, and DR4, its other name (KVM reports both; every engine's state must agree).
pub(crate) fn set_dr6(cpu: &mut Cpu, value: u64) {
    let st = cpu.st();
    st.dr[6] = value;
    st.dr[4] = value;
}

/// Which register `MOV DRn` names: DR4/DR5 alias DR6/DR7 unless CR4.DE makes them #UD; and
/// #DB (general detect) while DR7.GD is set.
fn dr_register(cpu: &mut Cpu, n: usize) -> R<usize> {
    let de = cpu.s().cr4 & crate::cpu::ctl::CR4_DE != 0;
    let index = match n {
        0..=3 | 6 | 7 => n,
        4 | 5 if !de => n + 2,
        _ => return Err(super::ud()),
    };
    if cpu.s().dr[7] & DR7_GD != 0 {
        set_dr6(cpu, cpu.s().dr[6] | DR6_BD);
        return Err(exception(vec::DB, None));
    }
    Ok(index)
}

/// MOV from DRn.
pub(crate) fn read_dr(cpu: &mut Cpu, n: usize) -> R<u64> {
    let i = dr_register(cpu, n)?;
    Ok(cpu.s().dr[i])
}

/// MOV to DRn (`value` already checked for the operand size's #GP rules).
pub(crate) fn write_dr(cpu: &mut Cpu, n: usize, value: u64) -> R<()> {
    let i = dr_register(cpu, n)?;
    // DR4/DR5 hold copies of DR6/DR7, as KVM reports them, so every engine's state agrees.
    match i {
        6 => set_dr6(cpu, DR6_FIXED1 | value & DR6_WRITABLE),
        7 => {
            let st = cpu.st();
            st.dr[7] = DR7_FIXED1 | value & DR7_WRITABLE;
            st.dr[5] = st.dr[7];
        }
        _ => cpu.st().dr[i] = value,
    }
    Ok(())
}

/// Checks the enabled execute breakpoints against the instruction at CS:RIP.
pub(crate) fn instruction_breakpoint(cpu: &mut Cpu) -> R<()> {
    let s = cpu.s();
    if s.rflags & crate::cpu::flags::RF != 0 {
        return Ok(());
    }
    let dr7 = s.dr[7];
    let linear = s.linear_rip();
    let mut hits = 0;
    for i in 0..4 {
        let enabled = dr7 & (3 << (2 * i)) != 0;
        let rw = (dr7 >> (16 + 4 * i)) & 3;
        if enabled && rw == 0 && s.dr[i] == linear {
            hits |= 1 << i;
        }
    }
    if hits == 0 {
        return Ok(());
    }
    set_dr6(cpu, (cpu.s().dr[6] & !0xF) | hits);
    Err(exception(vec::DB, None))
}

/// Notes which enabled data breakpoints an access of `size` bytes at `linear` hits.
pub(crate) fn watch_data(cpu: &mut Cpu, linear: u64, size: u32, write: bool) {
    let dr = cpu.s().dr;
    let dr7 = dr[7];
    for (i, &address) in dr[..4].iter().enumerate() {
        let enabled = dr7 & (3 << (2 * i)) != 0;
        let rw = (dr7 >> (16 + 4 * i)) & 3;
        let len = match (dr7 >> (18 + 4 * i)) & 3 {
            0 => 1,
            1 => 2,
            2 => 8,
            _ => 4,
        };
        let watched = rw == 3 || rw == 1 && write;
        let start = address & !(len - 1);
        if enabled && watched && linear < start + len && start < linear + size as u64 {
            cpu.data_hits |= 1 << i;
        }
    }
}

/// Notes which enabled I/O breakpoints (R/W = 10, CR4.DE = 1) an access of `size` bytes at
/// `port` hits.
pub(crate) fn watch_io(cpu: &mut Cpu, port: u16, size: u32) {
    let s = cpu.s();
    if s.cr4 & crate::cpu::ctl::CR4_DE == 0 {
        return;
    }
    let (dr, dr7) = (s.dr, s.dr[7]);
    for (i, &address) in dr[..4].iter().enumerate() {
        let enabled = dr7 & (3 << (2 * i)) != 0;
        let rw = (dr7 >> (16 + 4 * i)) & 3;
        let len = match (dr7 >> (18 + 4 * i)) & 3 {
            0 => 1,
            1 => 2,
            2 => 8,
            _ => 4,
        };
        let start = address & !(len - 1);
        let port = port as u64;
        if enabled && rw == 2 && port < start + len && start < port + size as u64 {
            cpu.data_hits |= 1 << i;
        }
    }
}

/// After an instruction that started with TF = 1, or that hit a data breakpoint: one #DB trap
/// reporting both causes in DR6.
pub(crate) fn debug_trap(cpu: &mut Cpu, ins: &Instruction, single_step: bool) -> R<()> {
    use Mnemonic as M;
    // INTO with OF = 0 raises nothing, so it is stepped like any other instruction.
    let delivered = match ins.mnemonic() {
        M::Int | M::Int3 | M::Int1 => true,
        M::Into => cpu.flag(crate::cpu::flags::OF),
        _ => false,
    };
    let stepped = single_step && !delivered;
    let hits = cpu.data_hits;
    cpu.data_hits = 0;
    if !stepped && hits == 0 {
        return Ok(());
    }
    let mut dr6 = cpu.s().dr[6];
    if hits != 0 {
        dr6 = (dr6 & !0xF) | hits;
    }
    if stepped {
        dr6 |= DR6_BS;
    }
    set_dr6(cpu, dr6);
    exceptions::deliver_exception(cpu, vec::DB, None, None)
}

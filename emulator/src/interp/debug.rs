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

use iced_x86::{Instruction, Mnemonic};

use super::{exception, exceptions, vec, Cpu, R};

/// DR6.BS: the #DB came from a single-step trap.
pub(crate) const DR6_BS: u64 = 1 << 14;

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
    let st = cpu.st();
    st.dr[6] = (st.dr[6] & !0xF) | hits;
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
    let st = cpu.st();
    if hits != 0 {
        st.dr[6] = (st.dr[6] & !0xF) | hits;
    }
    if stepped {
        st.dr[6] |= DR6_BS;
    }
    exceptions::deliver_exception(cpu, vec::DB, None, None)
}

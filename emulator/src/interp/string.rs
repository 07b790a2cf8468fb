//! String instructions (MOVS, STOS, LODS, CMPS, SCAS, INS, OUTS) and their REP prefixes.
//! Teaches: implicit operands (DS:SI, ES:DI), the direction flag, and why REP is interruptible.

use iced_x86::{Instruction, Mnemonic, OpKind};

use super::access::mask;
use super::{Cpu, R};
use crate::cpu::flags::*;
use crate::cpu::{reg, Seg};

/// Iterations of a REP instruction done per step; the rest continue after pending interrupts.
const REP_CHUNK: u64 = 4096;

pub(crate) fn handles(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Movsb
            | M::Movsw
            | M::Movsd
            | M::Movsq
            | M::Stosb
            | M::Stosw
            | M::Stosd
            | M::Stosq
            | M::Lodsb
            | M::Lodsw
            | M::Lodsd
            | M::Lodsq
            | M::Cmpsb
            | M::Cmpsw
            | M::Cmpsd
            | M::Cmpsq
            | M::Scasb
            | M::Scasw
            | M::Scasd
            | M::Scasq
            | M::Insb
            | M::Insw
            | M::Insd
            | M::Outsb
            | M::Outsw
            | M::Outsd
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Movs,
    Stos,
    Lods,
    Cmps,
    Scas,
    Ins,
    Outs,
}

fn address_size(ins: &Instruction) -> Option<u32> {
    (0..ins.op_count()).find_map(|i| match ins.op_kind(i) {
        OpKind::MemorySegSI | OpKind::MemoryESDI => Some(2),
        OpKind::MemorySegESI | OpKind::MemoryESEDI => Some(4),
        OpKind::MemorySegRSI | OpKind::MemoryESRDI => Some(8),
        _ => None,
    })
}

pub(crate) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let repeated_compare = (ins.has_rep_prefix() || ins.has_repne_prefix())
        && ins.is_string_instruction()
        && matches!(
            ins.mnemonic(),
            M::Cmpsb | M::Cmpsw | M::Cmpsd | M::Cmpsq | M::Scasb | M::Scasw | M::Scasd | M::Scasq
        );
    if !repeated_compare {
        return run_iterations(cpu, ins);
    }
    // A REPE/REPNE CMPS or SCAS that faults part-way, or is suspended between iterations, shows
    // the status flags it started with (SDM Vol. 2B, REP: "the EFLAGS value is restored to the
    // state prior to the execution of the instruction"; an Intel CPU does the same when it stops
    // between iterations for an interrupt or single-step). The restart recomputes them.
    let entry_status = cpu.s().rflags & STATUS;
    let result = run_iterations(cpu, ins);
    if result.is_err() || cpu.s().rip == cpu.start_rip {
        cpu.set_status(entry_status);
    }
    result
}

/// The string instruction's iterations: all of them, or up to `REP_CHUNK` of a REP (then RIP is
/// put back on the instruction), or until a fault.
fn run_iterations(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let m = ins.mnemonic();
    let Some(asize) = address_size(ins) else {
        // MOVSD/CMPSD with XMM operands are SSE2 instructions, not string moves.
        if !super::simd::offered() {
            cpu.m.stats.count_unimplemented(m);
            return Err(super::ud());
        }
        return super::simd::execute(cpu, ins);
    };
    let (kind, size) = match m {
        M::Movsb => (Kind::Movs, 1),
        M::Movsw => (Kind::Movs, 2),
        M::Movsd => (Kind::Movs, 4),
        M::Movsq => (Kind::Movs, 8),
        M::Stosb => (Kind::Stos, 1),
        M::Stosw => (Kind::Stos, 2),
        M::Stosd => (Kind::Stos, 4),
        M::Stosq => (Kind::Stos, 8),
        M::Lodsb => (Kind::Lods, 1),
        M::Lodsw => (Kind::Lods, 2),
        M::Lodsd => (Kind::Lods, 4),
        M::Lodsq => (Kind::Lods, 8),
        M::Cmpsb => (Kind::Cmps, 1),
        M::Cmpsw => (Kind::Cmps, 2),
        M::Cmpsd => (Kind::Cmps, 4),
        M::Cmpsq => (Kind::Cmps, 8),
        M::Scasb => (Kind::Scas, 1),
        M::Scasw => (Kind::Scas, 2),
        M::Scasd => (Kind::Scas, 4),
        M::Scasq => (Kind::Scas, 8),
        M::Insb => (Kind::Ins, 1),
        M::Insw => (Kind::Ins, 2),
        M::Insd => (Kind::Ins, 4),
        M::Outsb => (Kind::Outs, 1),
        M::Outsw => (Kind::Outs, 2),
        _ => (Kind::Outs, 4),
    };
    let src_seg = super::access::seg_of(ins.memory_segment());
    let rep = ins.has_rep_prefix() || ins.has_repne_prefix();
    let step = if cpu.flag(DF) {
        (size as u64).wrapping_neg()
    } else {
        size as u64
    };
    if matches!(kind, Kind::Ins | Kind::Outs) {
        let port = cpu.gpr(reg::RDX, 2) as u16;
        super::system::check_io_permission(cpu, port, size)?;
    }
    // Single-stepping and debug registers see every iteration: TF traps after each one (SDM
    // Vol. 3 17.3.1.4), and a data or I/O breakpoint after the iteration that hit it.
    let chunk = if cpu.flag(TF) || cpu.s().dr[7] & 0xFF != 0 {
        1
    } else {
        REP_CHUNK
    };
    let am = mask(asize);
    let mut done = 0;
    loop {
        if rep {
            if cpu.gpr(reg::RCX, asize) == 0 {
                return Ok(());
            }
            if done == chunk {
                // Let interrupts in: restart this instruction with the remaining count.
                cpu.st().rip = cpu.start_rip;
                return Ok(());
            }
        }
        let si = cpu.gpr(reg::RSI, asize);
        let di = cpu.gpr(reg::RDI, asize);
        match kind {
            Kind::Movs => {
                let v = cpu.read_mem(src_seg, si, size)?;
                cpu.write_mem(Seg::Es, di, size, v)?;
                cpu.set_gpr(reg::RSI, asize, si.wrapping_add(step) & am);
                cpu.set_gpr(reg::RDI, asize, di.wrapping_add(step) & am);
            }
            Kind::Stos => {
                let v = cpu.gpr(reg::RAX, size);
                cpu.write_mem(Seg::Es, di, size, v)?;
                cpu.set_gpr(reg::RDI, asize, di.wrapping_add(step) & am);
            }
            Kind::Lods => {
                let v = cpu.read_mem(src_seg, si, size)?;
                cpu.set_gpr(reg::RAX, size, v);
                cpu.set_gpr(reg::RSI, asize, si.wrapping_add(step) & am);
            }
            Kind::Cmps | Kind::Scas => {
                let a = if kind == Kind::Cmps {
                    cpu.read_mem(src_seg, si, size)?
                } else {
                    cpu.gpr(reg::RAX, size)
                };
                let b = cpu.read_mem(Seg::Es, di, size)?;
                let (_, f) = super::flags::sub(a, b, 0, size);
                cpu.set_status(f);
                if kind == Kind::Cmps {
                    cpu.set_gpr(reg::RSI, asize, si.wrapping_add(step) & am);
                }
                cpu.set_gpr(reg::RDI, asize, di.wrapping_add(step) & am);
            }
            Kind::Ins => {
                let port = cpu.gpr(reg::RDX, 2) as u16;
                // Check the destination before the port is read (reads can have side effects).
                let lin = cpu.linear(Seg::Es, di, size, true)?;
                let user = cpu.s().cpl() == 3;
                cpu.translate(lin, crate::mmu::Access::write(user))?;
                let v = super::system::port_in(cpu, port, size)?;
                cpu.write_mem(Seg::Es, di, size, v)?;
                cpu.set_gpr(reg::RDI, asize, di.wrapping_add(step) & am);
            }
            Kind::Outs => {
                let port = cpu.gpr(reg::RDX, 2) as u16;
                let v = cpu.read_mem(src_seg, si, size)?;
                cpu.set_gpr(reg::RSI, asize, si.wrapping_add(step) & am);
                if rep {
                    let c = cpu.gpr(reg::RCX, asize).wrapping_sub(1);
                    cpu.set_gpr(reg::RCX, asize, c);
                }
                super::system::port_out(cpu, port, size, v)?;
                if rep {
                    done += 1;
                    continue;
                }
                return Ok(());
            }
        }
        if !rep {
            return Ok(());
        }
        let count = cpu.gpr(reg::RCX, asize).wrapping_sub(1) & am;
        cpu.set_gpr(reg::RCX, asize, count);
        done += 1;
        if matches!(kind, Kind::Cmps | Kind::Scas) {
            let zf = cpu.flag(ZF);
            // REPE stops on a mismatch, REPNE on a match.
            if ins.has_repe_prefix() && !zf || ins.has_repne_prefix() && zf {
                return Ok(());
            }
        }
    }
}

//! Control flow: jumps, calls, returns, loops, software interrupts and IRET.
//! Teaches: near vs far transfers, how a return to an outer privilege level restores SS:RSP.

use iced_x86::{Code, Instruction, Mnemonic, OpKind};

use super::access::{mask, seg_of};
use super::flags::condition;
use super::segments::{check_far_target, load_code_segment, load_data_segment};
use super::{exceptions, gp, ud, vec, Cpu, R};
use crate::cpu::flags::*;
use crate::cpu::{reg, CpuMode, Seg, Segment};

pub(crate) fn handles(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Jmp
            | M::Call
            | M::Ret
            | M::Retf
            | M::Loop
            | M::Loope
            | M::Loopne
            | M::Jcxz
            | M::Jecxz
            | M::Jrcxz
            | M::Int
            | M::Int3
            | M::Int1
            | M::Into
            | M::Iret
            | M::Iretd
            | M::Iretq
            | M::Enter
            | M::Leave
            | M::Ja
            | M::Jae
            | M::Jb
            | M::Jbe
            | M::Je
            | M::Jne
            | M::Jg
            | M::Jge
            | M::Jl
            | M::Jle
            | M::Jo
            | M::Jno
            | M::Jp
            | M::Jnp
            | M::Js
            | M::Jns
    )
}

fn counter_size(code: Code) -> u32 {
    use Code as C;
    match code {
        C::Loop_rel8_16_CX | C::Loop_rel8_32_CX | C::Loope_rel8_16_CX | C::Loope_rel8_32_CX => 2,
        C::Loopne_rel8_16_CX | C::Loopne_rel8_32_CX => 2,
        C::Loop_rel8_16_RCX | C::Loop_rel8_64_RCX | C::Loope_rel8_16_RCX => 8,
        C::Loope_rel8_64_RCX | C::Loopne_rel8_16_RCX | C::Loopne_rel8_64_RCX => 8,
        _ => 4,
    }
}

/// Jumps to a near target, checking the CS limit (outside 64-bit mode) or canonical form.
fn near_jump(cpu: &mut Cpu, target: u64) -> R<()> {
    if cpu.s().mode() == CpuMode::Long64 {
        if !super::access::is_canonical(target) {
            return Err(gp(0));
        }
    } else if target > cpu.s().cs().limit as u64 {
        return Err(gp(0));
    }
    cpu.st().rip = target;
    Ok(())
}

/// The operand size of a near/far branch from how much it moves the stack (CALL/RET).
fn branch_size(ins: &Instruction, items: u32) -> u32 {
    let imm = if ins.op_count() > 0 && ins.op0_kind() == OpKind::Immediate16 {
        ins.immediate16() as i32
    } else {
        0
    };
    ((ins.stack_pointer_increment().abs() - imm) as u32 / items).max(2)
}

pub(crate) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    match ins.mnemonic() {
        M::Jmp => match ins.op0_kind() {
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                near_jump(cpu, ins.near_branch_target())
            }
            OpKind::FarBranch16 | OpKind::FarBranch32 => {
                let off = if ins.op0_kind() == OpKind::FarBranch16 {
                    ins.far_branch16() as u64
                } else {
                    ins.far_branch32() as u64
                };
                far_jump(cpu, ins.far_branch_selector(), off)
            }
            _ if is_far_pointer(ins) => {
                let (sel, off) = read_far_pointer(cpu, ins)?;
                far_jump(cpu, sel, off)
            }
            _ => {
                let t = cpu.read_op(ins, 0)?;
                near_jump(cpu, t)
            }
        },
        M::Call => {
            match ins.op0_kind() {
                OpKind::FarBranch16 | OpKind::FarBranch32 => {
                    let size = if ins.op0_kind() == OpKind::FarBranch16 {
                        2
                    } else {
                        4
                    };
                    let off = if size == 2 {
                        ins.far_branch16() as u64
                    } else {
                        ins.far_branch32() as u64
                    };
                    return far_call(cpu, ins.far_branch_selector(), off, size);
                }
                _ if is_far_pointer(ins) => {
                    let size = (ins.memory_size().size() - 2) as u32;
                    let (sel, off) = read_far_pointer(cpu, ins)?;
                    return far_call(cpu, sel, off, size);
                }
                _ => {}
            }
            let size = branch_size(ins, 1);
            let target = match ins.op0_kind() {
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                    ins.near_branch_target()
                }
                _ => cpu.read_op(ins, 0)?,
            };
            let ret = cpu.s().rip;
            // Check the target before pushing so a fault leaves the stack untouched.
            let saved_rip = cpu.s().rip;
            near_jump(cpu, target & mask(size))?;
            cpu.st().rip = saved_rip;
            cpu.push(size, ret)?;
            cpu.st().rip = target & mask(size);
            Ok(())
        }
        M::Ret => {
            let size = branch_size(ins, 1);
            let target = cpu.peek(0, size)?;
            near_jump(cpu, target)?;
            cpu.pop(size)?;
            if ins.op_count() > 0 {
                release_stack(cpu, ins.immediate16() as u64);
            }
            Ok(())
        }
        M::Retf => far_return(cpu, ins),
        M::Loop | M::Loope | M::Loopne => {
            let csize = counter_size(ins.code());
            let count = cpu.gpr(reg::RCX, csize).wrapping_sub(1) & mask(csize);
            cpu.set_gpr(reg::RCX, csize, count);
            let zf = cpu.flag(ZF);
            let taken = count != 0
                && match ins.mnemonic() {
                    M::Loope => zf,
                    M::Loopne => !zf,
                    _ => true,
                };
            if taken {
                near_jump(cpu, ins.near_branch_target())?;
            }
            Ok(())
        }
        M::Jcxz | M::Jecxz | M::Jrcxz => {
            let csize = match ins.mnemonic() {
                M::Jcxz => 2,
                M::Jecxz => 4,
                _ => 8,
            };
            if cpu.gpr(reg::RCX, csize) == 0 {
                near_jump(cpu, ins.near_branch_target())?;
            }
            Ok(())
        }
        M::Int => exceptions::software_interrupt(cpu, ins.immediate8(), true),
        M::Int3 => exceptions::software_interrupt(cpu, vec::BP, true),
        M::Int1 => exceptions::software_interrupt(cpu, vec::DB, false),
        M::Into => {
            if cpu.s().mode() == CpuMode::Long64 {
                return Err(ud());
            }
            if cpu.flag(OF) {
                exceptions::software_interrupt(cpu, vec::OF, true)?;
            }
            Ok(())
        }
        M::Iret | M::Iretd | M::Iretq => {
            let size = match ins.mnemonic() {
                M::Iret => 2,
                M::Iretd => 4,
                _ => 8,
            };
            iret(cpu, size)
        }
        M::Enter => enter(cpu, ins),
        M::Leave => {
            let size = cpu.op_size_of_leave(ins);
            let ss = cpu.stack_size();
            let bp = cpu.gpr(reg::RBP, ss);
            let v = cpu.read_mem(Seg::Ss, bp, size)?;
            cpu.set_gpr(reg::RSP, ss, bp.wrapping_add(size as u64));
            cpu.set_gpr(reg::RBP, size, v);
            Ok(())
        }
        _ => {
            if condition(ins.condition_code(), cpu.s().rflags) {
                near_jump(cpu, ins.near_branch_target())?;
            }
            Ok(())
        }
    }
}

impl Cpu<'_> {
    fn op_size_of_leave(&self, ins: &Instruction) -> u32 {
        match ins.code() {
            Code::Leavew => 2,
            Code::Leaved => 4,
            _ => 8,
        }
    }
}

fn release_stack(cpu: &mut Cpu, bytes: u64) {
    let ss = cpu.stack_size();
    let sp = cpu.gpr(reg::RSP, ss).wrapping_add(bytes);
    cpu.set_gpr(reg::RSP, ss, sp);
}

fn is_far_pointer(ins: &Instruction) -> bool {
    ins.op0_kind() == OpKind::Memory
        && matches!(
            ins.memory_size(),
            iced_x86::MemorySize::SegPtr16
                | iced_x86::MemorySize::SegPtr32
                | iced_x86::MemorySize::SegPtr64
        )
}

/// Reads an m16:16/m16:32/m16:64 far pointer: the offset first, then the selector.
pub(crate) fn read_far_pointer(cpu: &mut Cpu, ins: &Instruction) -> R<(u16, u64)> {
    let osize = (ins.memory_size().size() - 2) as u32;
    let seg = seg_of(ins.memory_segment());
    let ea = cpu.effective_address(ins);
    let off = cpu.read_mem(seg, ea, osize)?;
    let sel = cpu.read_mem(seg, ea.wrapping_add(osize as u64), 2)? as u16;
    Ok((sel, off))
}

fn far_jump(cpu: &mut Cpu, selector: u16, offset: u64) -> R<()> {
    if let Some(gate) = super::gates::call_gate(cpu, selector)? {
        return super::gates::through_call_gate(cpu, selector, gate, false);
    }
    if let Some(raw) = super::task::task_descriptor(cpu, selector)? {
        return super::task::switch_to(cpu, selector, raw, super::task::Reason::Jmp);
    }
    check_far_target(cpu, selector)?;
    let cpl = cpu.s().cpl();
    load_code_segment(cpu, selector, offset, cpl)
}

fn far_call(cpu: &mut Cpu, selector: u16, offset: u64, size: u32) -> R<()> {
    if let Some(gate) = super::gates::call_gate(cpu, selector)? {
        return super::gates::through_call_gate(cpu, selector, gate, true);
    }
    if let Some(raw) = super::task::task_descriptor(cpu, selector)? {
        return super::task::switch_to(cpu, selector, raw, super::task::Reason::Call);
    }
    check_far_target(cpu, selector)?;
    let (old_cs, old_ip) = (cpu.s().cs().selector, cpu.s().rip);
    let saved = (cpu.s().seg[Seg::Cs as usize], cpu.s().gpr[reg::RSP]);
    cpu.push(size, old_cs as u64)?;
    if let Err(e) = cpu.push(size, old_ip) {
        cpu.st().gpr[reg::RSP] = saved.1;
        return Err(e);
    }
    let cpl = cpu.s().cpl();
    if let Err(e) = load_code_segment(cpu, selector, offset, cpl) {
        cpu.st().seg[Seg::Cs as usize] = saved.0;
        cpu.st().gpr[reg::RSP] = saved.1;
        return Err(e);
    }
    Ok(())
}

/// RETF [imm16]: same-privilege or outer-privilege return.
fn far_return(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    let size = branch_size(ins, 2);
    let imm = if ins.op_count() > 0 {
        ins.immediate16() as u64
    } else {
        0
    };
    let off = cpu.peek(0, size)?;
    let sel = cpu.peek(size as u64, size)? as u16;
    if matches!(cpu.s().mode(), CpuMode::Real | CpuMode::Virtual8086) {
        load_code_segment(cpu, sel, off, 0)?;
        release_stack(cpu, 2 * size as u64 + imm);
        return Ok(());
    }
    let cpl = cpu.s().cpl();
    let rpl = (sel & 3) as u8;
    if rpl < cpl {
        return Err(gp(sel as u32 & !3));
    }
    if rpl == cpl {
        load_code_segment(cpu, sel, off, cpl)?;
        release_stack(cpu, 2 * size as u64 + imm);
        return Ok(());
    }
    // Return to an outer level: SS:RSP follow the return address on the stack.
    let sp_off = 2 * size as u64 + imm;
    let new_sp = cpu.peek(sp_off, size)?;
    let new_ss = cpu.peek(sp_off + size as u64, size)? as u16;
    load_code_segment(cpu, sel, off, rpl)?;
    load_data_segment(cpu, Seg::Ss, new_ss)?;
    let ss = cpu.stack_size();
    cpu.set_gpr(reg::RSP, ss, new_sp.wrapping_add(imm));
    super::segments::null_inaccessible_data_segments(cpu);
    Ok(())
}

/// IRET/IRETD/IRETQ in every mode we support.
fn iret(cpu: &mut Cpu, size: u32) -> R<()> {
    // IRET ends NMI blocking, even one that faults (which is why VT-x reports "NMI unblocking
    // due to IRET" on such a fault).
    cpu.st().events.nmi_blocked = false;
    let mode = cpu.s().mode();
    let ip = cpu.peek(0, size)?;
    let cs = cpu.peek(size as u64, size)? as u16;
    let flags = cpu.peek(2 * size as u64, size)?;
    if mode == CpuMode::Real {
        load_code_segment(cpu, cs, ip, 0)?;
        release_stack(cpu, 3 * size as u64);
        let keep = if size == 2 { !0xFFFF } else { VM | VIF | VIP };
        let f = (cpu.s().rflags & keep) | (flags & !keep) | FIXED1;
        set_rflags_checked(
            cpu,
            f & !(VM | VIF | VIP) | (cpu.s().rflags & (VM | VIF | VIP)),
        );
        return Ok(());
    }
    if mode == CpuMode::Virtual8086 {
        return Err(gp(0));
    }
    if cpu.s().rflags & NT != 0 && !cpu.s().long_mode_active() {
        // Nested task: return to the task in the back link (a hardware task switch).
        return super::task::iret_to_previous(cpu);
    }
    let cpl = cpu.s().cpl();
    let rpl = (cs & 3) as u8;
    if rpl < cpl {
        return Err(gp(cs as u32 & !3));
    }
    let long = cpu.s().long_mode_active();
    let outer = rpl > cpl || (long && mode == CpuMode::Long64);
    let (new_sp, new_ss) = if outer {
        (
            cpu.peek(3 * size as u64, size)?,
            cpu.peek(4 * size as u64, size)? as u16,
        )
    } else {
        (0, 0)
    };
    let old_cpl = cpl;
    let iopl = (cpu.s().rflags & IOPL) >> 12;
    load_code_segment(cpu, cs, ip, rpl)?;
    // Which flags IRET may change depends on the privilege it runs at.
    let mut changeable = CF | PF | AF | ZF | SF | TF | DF | OF | NT | RF | AC | ID;
    if old_cpl == 0 {
        changeable |= IOPL | VIF | VIP;
    }
    if old_cpl as u64 <= iopl {
        changeable |= IF;
    }
    let size_mask = mask(size);
    let f = (cpu.s().rflags & !(changeable & size_mask)) | (flags & changeable & size_mask);
    set_rflags_checked(cpu, f);
    if outer {
        if long && new_ss & !3 == 0 && rpl != 3 {
            // 64-bit mode allows a null SS when returning to CPL 0–2.
            cpu.st().seg[Seg::Ss as usize] = Segment {
                selector: new_ss,
                dpl: rpl,
                db: true,
                unusable: true,
                ..Default::default()
            };
        } else {
            load_data_segment(cpu, Seg::Ss, new_ss)?;
        }
        let ss = cpu.stack_size().max(if size == 8 { 8 } else { 0 });
        cpu.set_gpr(reg::RSP, ss, new_sp);
        if rpl > old_cpl {
            super::segments::null_inaccessible_data_segments(cpu);
        }
    } else {
        release_stack(cpu, 3 * size as u64);
    }
    Ok(())
}

/// Writes RFLAGS keeping the reserved bits as the architecture fixes them.
pub(crate) fn set_rflags_checked(cpu: &mut Cpu, f: u64) {
    cpu.st().rflags = (f & 0x3F_7FD5) | FIXED1;
}

/// ENTER imm16, imm8: builds a stack frame with `level` display pointers.
fn enter(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    let size = match ins.code() {
        Code::Enterw_imm16_imm8 => 2,
        Code::Enterd_imm16_imm8 => 4,
        _ => 8,
    };
    let alloc = ins.immediate16() as u64;
    let level = ins.immediate8_2nd() as u64 % 32;
    let ss = cpu.stack_size();
    // After its pushes the CPU checks a write at the final stack pointer (SDM ENTER: #SS/#PF
    // "if a write using the final value of the stack pointer" would fault; with alignment
    // checking, #AC). A fault leaves RSP and RBP as they were (the pushed bytes stay, as
    // measured on the CPU).
    let rsp = cpu.s().gpr[reg::RSP];
    let rbp = cpu.s().gpr[reg::RBP];
    let result = (|| {
        let bp = cpu.gpr(reg::RBP, size);
        cpu.push(size, bp)?;
        let frame = cpu.gpr(reg::RSP, ss);
        if level > 0 {
            let mut cur_bp = cpu.gpr(reg::RBP, ss);
            for _ in 1..level {
                cur_bp = cur_bp.wrapping_sub(size as u64) & mask(ss);
                let v = cpu.read_mem(Seg::Ss, cur_bp, size)?;
                cpu.push(size, v)?;
            }
            cpu.push(size, frame)?;
        }
        let sp = cpu.gpr(reg::RSP, ss).wrapping_sub(alloc) & mask(ss);
        cpu.probe_write(Seg::Ss, sp, size)?;
        cpu.set_gpr(reg::RBP, size, frame);
        cpu.set_gpr(reg::RSP, ss, sp);
        Ok(())
    })();
    if result.is_err() {
        cpu.st().gpr[reg::RSP] = rsp;
        cpu.st().gpr[reg::RBP] = rbp;
    }
    result
}

//! SIMD data movement and state management: MOVxx, masks, MXCSR, FXSAVE/FXRSTOR, EMMS.
//! Teaches: which moves merge into a register and which zero the rest, and what an OS saves on a task switch.

use iced_x86::{Instruction, Mnemonic, OpKind};

use super::{read, read_reg, write, write_reg, Cpu, R};
use crate::cpu::fpu::MXCSR_MASK;
use crate::cpu::CpuMode;
use crate::interp::access::seg_of;
use crate::interp::gp;

pub(super) fn handles(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Movaps
            | M::Movups
            | M::Movapd
            | M::Movupd
            | M::Movdqa
            | M::Movdqu
            | M::Movntps
            | M::Movntpd
            | M::Movntdq
            | M::Movntq
            | M::Movnti
            | M::Movd
            | M::Movq
            | M::Movss
            | M::Movsd
            | M::Movlps
            | M::Movhps
            | M::Movlpd
            | M::Movhpd
            | M::Movhlps
            | M::Movlhps
            | M::Movmskps
            | M::Movmskpd
            | M::Pmovmskb
            | M::Movq2dq
            | M::Movdq2q
            | M::Maskmovdqu
            | M::Maskmovq
            | M::Emms
            | M::Ldmxcsr
            | M::Stmxcsr
            | M::Fxsave
            | M::Fxsave64
            | M::Fxrstor
            | M::Fxrstor64
    )
}

const LOW64: u128 = u64::MAX as u128;
const LOW32: u128 = u32::MAX as u128;

pub(super) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let dst_is_reg = ins.op_kind(0) == OpKind::Register;
    let src_is_reg = ins.op_count() > 1 && ins.op_kind(1) == OpKind::Register;
    match ins.mnemonic() {
        // Whole-register moves; MOVD/MOVQ to a register zero-extend, to memory or a general
        // register store the low part (the operand size does it).
        M::Movaps
        | M::Movups
        | M::Movapd
        | M::Movupd
        | M::Movdqa
        | M::Movdqu
        | M::Movntps
        | M::Movntpd
        | M::Movntdq
        | M::Movntq
        | M::Movnti
        | M::Movd
        | M::Movq2dq
        | M::Movdq2q => {
            let v = read(cpu, ins, 1)?;
            write(cpu, ins, 0, v)
        }
        M::Movq => {
            // MOVQ xmm, xmm/m64 zero-extends; MOVQ r/m64, xmm and the MMX forms move 64 bits.
            let v = read(cpu, ins, 1)? & LOW64;
            write(cpu, ins, 0, v)
        }
        // Scalar moves: from memory they zero the rest of the register, between registers
        // they merge into the low lane.
        M::Movss | M::Movsd => {
            let low = if ins.mnemonic() == M::Movss {
                LOW32
            } else {
                LOW64
            };
            let v = read(cpu, ins, 1)? & low;
            if dst_is_reg && src_is_reg {
                let old = read_reg(cpu, ins.op_register(0));
                write_reg(cpu, ins.op_register(0), (old & !low) | v);
                Ok(())
            } else {
                write(cpu, ins, 0, v)
            }
        }
        // Half moves: the other half of the register is kept.
        M::Movlps | M::Movlpd | M::Movhps | M::Movhpd | M::Movhlps | M::Movlhps => {
            half_move(cpu, ins)
        }
        M::Movmskps | M::Movmskpd | M::Pmovmskb => {
            let lane = match ins.mnemonic() {
                M::Movmskps => 4,
                M::Movmskpd => 8,
                _ => 1,
            };
            let width = if ins.op_register(1).is_mm() { 8 } else { 16 };
            let v = read(cpu, ins, 1)?;
            let mut bits = 0u64;
            for k in 0..width / lane {
                bits |= ((v >> ((k + 1) * lane * 8 - 1)) as u64 & 1) << k;
            }
            write(cpu, ins, 0, bits as u128)
        }
        M::Maskmovdqu | M::Maskmovq => masked_store(cpu, ins),
        M::Emms => {
            // All tags empty, and TOP back to 0 over the registers as they are (checked
            // against the CPU: an AMD host; Bochs models the same).
            cpu.st().fpu.set_top(0);
            cpu.st().fpu.set_tags(0);
            Ok(())
        }
        M::Ldmxcsr => {
            let v = read(cpu, ins, 0)? as u32;
            if v & !MXCSR_MASK != 0 {
                return Err(gp(0));
            }
            cpu.st().fpu.set_mxcsr(v);
            Ok(())
        }
        M::Stmxcsr => {
            let v = cpu.s().fpu.mxcsr();
            write(cpu, ins, 0, v as u128)
        }
        M::Fxsave | M::Fxsave64 => fxsave(cpu, ins),
        _ => fxrstor(cpu, ins),
    }
}

/// MOVLPS/MOVHPS/MOVLPD/MOVHPD between a register and memory, and MOVHLPS/MOVLHPS between
/// registers: 64 bits move, the other 64 bits of the destination register stay.
fn half_move(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let high_half = matches!(ins.mnemonic(), M::Movhps | M::Movhpd | M::Movlhps);
    if ins.op_kind(0) == OpKind::Memory {
        // Store: MOVLPx stores the low half, MOVHPx the high half.
        let v = read(cpu, ins, 1)?;
        return write(cpu, ins, 0, if high_half { v >> 64 } else { v } & LOW64);
    }
    let src = read(cpu, ins, 1)?;
    let part = match ins.mnemonic() {
        M::Movhlps => src >> 64,
        _ => src & LOW64,
    };
    let r = ins.op_register(0);
    let old = read_reg(cpu, r);
    let new = if high_half {
        (old & LOW64) | (part << 64)
    } else {
        (old & !LOW64) | part
    };
    write_reg(cpu, r, new);
    Ok(())
}

/// MASKMOVDQU/MASKMOVQ: store the bytes of the first operand whose mask byte (second operand)
/// has its top bit set, at DS:rDI. Each selected byte is a separate store here; unselected
/// bytes are not touched (and cannot fault).
fn masked_store(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    // iced-x86 names the implicit destination as operand 0 ([rDI] with its address size).
    let data = read_reg(cpu, ins.op_register(1));
    let mask = read_reg(cpu, ins.op_register(2));
    let width = if ins.op_register(1).is_mm() { 8 } else { 16 };
    let asize = match ins.op_kind(0) {
        OpKind::MemorySegDI => 2,
        OpKind::MemorySegEDI => 4,
        _ => 8,
    };
    let base = cpu.gpr(crate::cpu::reg::RDI, asize);
    let seg = seg_of(ins.memory_segment());
    for k in 0..width {
        if (mask >> (8 * k + 7)) & 1 != 0 {
            let off = base.wrapping_add(k as u64) & crate::interp::mask(asize);
            cpu.write_mem(seg, off, 1, (data >> (8 * k)) as u64 & 0xFF)?;
        }
    }
    Ok(())
}

/// FXSAVE: the 512-byte image, from the first byte at a 16-byte aligned address. Without
/// REX.W (and outside 64-bit mode) FIP/FDP are stored as 32-bit offsets with FCS/FDS
/// selectors beside them; FXSAVE64 stores 64-bit pointers. Only the defined bytes are written:
/// up to XMM15 in 64-bit mode, up to XMM7 elsewhere (the rest is reserved or software's).
fn fxsave(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    let (seg, ea) = image_address(cpu, ins)?;
    let mut image = cpu.s().fpu.fxsave;
    image[28..32].copy_from_slice(&MXCSR_MASK.to_le_bytes());
    if !is64(cpu, ins) {
        // FIP/FDP as offset + selector (the selectors are not tracked: zero).
        image[12..16].fill(0);
        image[20..24].fill(0);
    }
    cpu.write_mem_bytes(seg, ea, &image[..image_end(cpu)])
}

/// FXRSTOR: #GP(0) for reserved MXCSR bits, before anything changes.
fn fxrstor(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    let (seg, ea) = image_address(cpu, ins)?;
    let mut image = cpu.s().fpu.fxsave;
    let end = image_end(cpu);
    cpu.read_mem_bytes(seg, ea, &mut image[..end])?;
    let mxcsr = u32::from_le_bytes(image[24..28].try_into().unwrap());
    if mxcsr & !MXCSR_MASK != 0 {
        return Err(gp(0));
    }
    if !is64(cpu, ins) {
        image[12..16].fill(0);
        image[20..24].fill(0);
    }
    image[28..32].fill(0);
    // Only the FXSAVE-defined bytes: the 80-bit registers' padding reads as zero afterwards.
    for st in 0..8 {
        image[32 + 16 * st + 10..48 + 16 * st].fill(0);
    }
    image[7] &= 0x07; // FOP is 11 bits
    cpu.st().fpu.fxsave = image;
    Ok(())
}

/// Where the part of the image FXSAVE writes and FXRSTOR reads ends.
fn image_end(cpu: &Cpu) -> usize {
    if cpu.s().mode() == CpuMode::Long64 {
        160 + 16 * 16
    } else {
        160 + 16 * 8
    }
}

fn is64(cpu: &Cpu, ins: &Instruction) -> bool {
    cpu.s().mode() == CpuMode::Long64
        && matches!(ins.mnemonic(), Mnemonic::Fxsave64 | Mnemonic::Fxrstor64)
}

fn image_address(cpu: &mut Cpu, ins: &Instruction) -> R<(crate::cpu::Seg, u64)> {
    let ea = cpu.effective_address(ins);
    let seg = seg_of(ins.memory_segment());
    let lin = cpu.linear(seg, ea, 512, false)?;
    if lin & 15 != 0 {
        return Err(gp(0));
    }
    Ok((seg, ea))
}

//! x87 control: FNINIT, the control and status words, tags, FNSTENV/FLDENV and FNSAVE/FRSTOR.
//! Teaches: what an OS or exception handler saves of the FPU (the "environment" and the registers) and its four layouts (real/protected, 16/32-bit).

use iced_x86::{Instruction, MemorySize, Mnemonic, OpKind};

use super::ext80::{Class, Ext};
use super::{read_memory, set_c1, st_index, write_memory, Cpu, R};
use crate::cpu::fpu::{fsw, FpuState};
use crate::cpu::CpuMode;

pub(super) fn handles(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Fninit
            | M::Finit
            | M::Fnclex
            | M::Fclex
            | M::Fldcw
            | M::Fnstcw
            | M::Fstcw
            | M::Fnstsw
            | M::Fstsw
            | M::Fnstenv
            | M::Fstenv
            | M::Fldenv
            | M::Fnsave
            | M::Fsave
            | M::Frstor
            | M::Ffree
            | M::Ffreep
            | M::Fincstp
            | M::Fdecstp
            | M::Fnop
            | M::Fneni
            | M::Feni
            | M::Fndisi
            | M::Fdisi
            | M::Fnsetpm
            | M::Fsetpm
    )
}

pub(super) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    match ins.mnemonic() {
        M::Fninit | M::Finit => cpu.st().fpu.finit(),
        M::Fnclex | M::Fclex => {
            let v = cpu.s().fpu.fsw() & !(0x00FF | fsw::B);
            cpu.st().fpu.set_fsw(v);
        }
        M::Fldcw => {
            let v = read_memory(cpu, ins, 2)? as u16;
            set_control_word(&mut cpu.st().fpu, v);
        }
        M::Fnstcw | M::Fstcw => {
            let v = cpu.s().fpu.fcw();
            write_memory(cpu, ins, 2, v as u128)?;
        }
        M::Fnstsw | M::Fstsw => {
            let v = cpu.s().fpu.fsw();
            if ins.op_kind(0) == OpKind::Register {
                cpu.set_reg(ins.op_register(0), v as u64);
            } else {
                write_memory(cpu, ins, 2, v as u128)?;
            }
        }
        M::Fnstenv | M::Fstenv => {
            let env = environment_image(cpu, ins);
            write_image(cpu, ins, &env)?;
            let fcw = cpu.s().fpu.fcw() | 0x3F;
            cpu.st().fpu.set_fcw(fcw);
        }
        M::Fldenv => load_environment(cpu, ins, false)?,
        M::Fnsave | M::Fsave => {
            let mut image = environment_image(cpu, ins);
            for i in 0..8 {
                image.extend_from_slice(&cpu.s().fpu.st(i).to_le_bytes()[..10]);
            }
            write_image(cpu, ins, &image)?;
            cpu.st().fpu.finit();
        }
        M::Frstor => load_environment(cpu, ins, true)?,
        M::Ffree | M::Ffreep => {
            // C0–C3 are undefined after FFREE; C1 reads 0 as on the CPU it was checked on.
            let i = st_index(ins.op_register(0));
            set_c1(cpu, false);
            cpu.st().fpu.set_st_tag(i, false);
            if ins.mnemonic() == M::Ffreep {
                super::pop(cpu); // FFREE ST(i), then a pop (ST(0) empty too)
            }
        }
        M::Fincstp | M::Fdecstp => {
            let delta = if ins.mnemonic() == M::Fincstp { 1 } else { -1 };
            cpu.st().fpu.rotate_stack(delta);
            set_c1(cpu, false);
        }
        // FNOP, and the 8087/287 controls the 387 and later ignore.
        _ => {}
    }
    Ok(())
}

/// FLDCW's rule: bits 6–7 and 13–15 are reserved (bit 6 reads 1); an exception flagged in
/// FSW that the new word unmasks becomes pending (ES), one it masks stops being so.
fn set_control_word(f: &mut FpuState, v: u16) {
    f.set_fcw((v & 0x1F3F) | 0x40);
    summarize(f);
}

/// Recomputes FSW.ES and B from the exception flags and masks.
fn summarize(f: &mut FpuState) {
    let pending = f.fsw() & 0x3F & !f.fcw() != 0;
    let v = if pending {
        f.fsw() | fsw::ES | fsw::B
    } else {
        f.fsw() & !(fsw::ES | fsw::B)
    };
    f.set_fsw(v);
}

/// The full tag word (2 bits per physical register): 00 valid, 01 zero, 10 special (NaN, ∞,
/// denormal, unsupported), 11 empty. FXSAVE keeps only "empty or not"; this recomputes the rest.
pub(crate) fn full_tag_word(f: &FpuState) -> u16 {
    let mut tw = 0u16;
    for p in 0..8u32 {
        let i = (p + 8 - f.top()) & 7;
        let tag = if f.st_empty(i) {
            3
        } else {
            match Ext::from_bits(f.st(i)).class() {
                Class::Normal => 0,
                Class::Zero => 1,
                _ => 2,
            }
        };
        tw |= tag << (2 * p);
    }
    tw
}

/// Is the environment the 16-bit (14-byte) layout, and real-mode shaped?
fn layout(cpu: &Cpu, ins: &Instruction) -> (bool, bool) {
    let short = matches!(
        ins.memory_size(),
        MemorySize::FpuEnv14 | MemorySize::FpuState94
    );
    let real = matches!(cpu.s().mode(), CpuMode::Real | CpuMode::Virtual8086);
    (short, real)
}

/// The environment (FCW, FSW, tags, FIP, FOP, FDP) in the instruction's layout. Selector
/// fields (FCS, FDS) read 0: this CPU does not keep them.
fn environment_image(cpu: &Cpu, ins: &Instruction) -> Vec<u8> {
    let (short, real) = layout(cpu, ins);
    let f = &cpu.s().fpu;
    let (fcw, fsw, ftw) = (f.fcw() as u32, f.fsw() as u32, full_tag_word(f) as u32);
    let (fip, fdp, fop) = (f.fip() as u32, f.fdp() as u32, f.fop() as u32);
    let words: Vec<u32> = match (short, real) {
        (false, false) => vec![
            0xFFFF_0000 | fcw,
            0xFFFF_0000 | fsw,
            0xFFFF_0000 | ftw,
            fip,
            fop << 16,
            fdp,
            0xFFFF_0000,
        ],
        (false, true) => vec![
            0xFFFF_0000 | fcw,
            0xFFFF_0000 | fsw,
            0xFFFF_0000 | ftw,
            0xFFFF_0000 | (fip & 0xFFFF),
            ((fip >> 16) << 12) | fop,
            0xFFFF_0000 | (fdp & 0xFFFF),
            (fdp >> 16) << 12,
        ],
        (true, false) => vec![fcw, fsw, ftw, fip & 0xFFFF, 0, fdp & 0xFFFF, 0],
        (true, true) => vec![
            fcw,
            fsw,
            ftw,
            fip & 0xFFFF,
            (((fip >> 16) & 0xF) << 12) | fop,
            fdp & 0xFFFF,
            ((fdp >> 16) & 0xF) << 12,
        ],
    };
    let mut bytes = Vec::with_capacity(28);
    for w in words {
        if short {
            bytes.extend_from_slice(&(w as u16).to_le_bytes());
        } else {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
    }
    bytes
}

/// Writes a saved image in one access (every page is checked before the first byte moves).
fn write_image(cpu: &mut Cpu, ins: &Instruction, image: &[u8]) -> R<()> {
    let ea = cpu.effective_address(ins);
    cpu.write_mem_bytes(super::seg_of(ins.memory_segment()), ea, image)
}

/// FLDENV, and FRSTOR (`registers`: the 80 bytes of ST(0)–ST(7) follow the environment).
/// Everything is read before anything changes, so a fault leaves the FPU as it was.
fn load_environment(cpu: &mut Cpu, ins: &Instruction, registers: bool) -> R<()> {
    let (short, real) = layout(cpu, ins);
    let size = if short { 14 } else { 28 };
    let ea = cpu.effective_address(ins);
    let seg = super::seg_of(ins.memory_segment());
    let mut image = [0u8; 108];
    let total = size + if registers { 80 } else { 0 };
    cpu.read_mem_bytes(seg, ea, &mut image[..total])?;
    let word = |i: usize| -> u32 {
        if short {
            u16::from_le_bytes([image[2 * i], image[2 * i + 1]]) as u32
        } else {
            u32::from_le_bytes(image[4 * i..4 * i + 4].try_into().unwrap())
        }
    };
    let (fcw, fsw_v, ftw) = (word(0) as u16, word(1) as u16, word(2) as u16);
    let (fip, fop, fdp) = match (short, real) {
        (_, false) => (word(3) as u64, (word(4) >> 16) & 0x7FF, word(5) as u64),
        (false, true) => (
            ((word(4) as u64 >> 12) << 16) | (word(3) as u64 & 0xFFFF),
            word(4) & 0x7FF,
            ((word(6) as u64 >> 12) << 16) | (word(5) as u64 & 0xFFFF),
        ),
        (true, true) => (
            (((word(4) as u64 >> 12) & 0xF) << 16) | word(3) as u64,
            word(4) & 0x7FF,
            (((word(6) as u64 >> 12) & 0xF) << 16) | word(5) as u64,
        ),
    };
    let f = &mut cpu.st().fpu;
    if !registers {
        // FLDENV moves TOP over the registers as they are; FRSTOR's image is in the new order.
        f.set_top(((fsw_v & fsw::TOP_MASK) >> fsw::TOP_SHIFT) as u32);
    }
    f.set_fsw(fsw_v);
    f.set_fcw((fcw & 0x1F3F) | 0x40);
    // Tag 11 is empty; any other tag says "holds a value" (the CPU reclassifies it).
    let mut tags = 0u8;
    for p in 0..8 {
        if (ftw >> (2 * p)) & 3 != 3 {
            tags |= 1 << p;
        }
    }
    f.set_tags(tags);
    f.set_fip(fip);
    f.set_fop(fop as u16);
    f.set_fdp(fdp);
    if registers {
        for i in 0..8 {
            let at = size + 10 * i;
            let mut b = [0u8; 16];
            b[..10].copy_from_slice(&image[at..at + 10]);
            f.set_st(i as u32, u128::from_le_bytes(b));
        }
    }
    summarize(f);
    Ok(())
}

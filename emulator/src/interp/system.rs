//! System instructions: I/O ports, descriptor tables, control registers, MSRs, SYSCALL/SYSRET.
//! Teaches: the "sensitive" instructions a hypervisor must control, and the checks the CPU makes.

use iced_x86::{Instruction, Mnemonic, OpKind, Register};

use super::access::{mask, seg_of};
use super::control::set_rflags_checked;
use super::{exception, gp, ud, vec, Cpu, R};
use crate::cpu::flags::*;
use crate::cpu::{ctl, msr, reg, CpuMode, Seg, Segment};
use crate::mmu::{ControlRegs, InvpcidKind};

pub(crate) fn handles(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::In
            | M::Out
            | M::Hlt
            | M::Cli
            | M::Sti
            | M::Pushf
            | M::Pushfd
            | M::Pushfq
            | M::Popf
            | M::Popfd
            | M::Popfq
            | M::Lgdt
            | M::Lidt
            | M::Sgdt
            | M::Sidt
            | M::Lldt
            | M::Sldt
            | M::Ltr
            | M::Str
            | M::Clts
            | M::Invd
            | M::Wbinvd
            | M::Lmsw
            | M::Smsw
            | M::Invlpg
            | M::Invpcid
            | M::Stac
            | M::Clac
            | M::Cpuid
            | M::Vmcall
            | M::Rdtsc
            | M::Rdtscp
            | M::Rdpid
            | M::Rdmsr
            | M::Wrmsr
            | M::Syscall
            | M::Sysenter
            | M::Sysexit
            | M::Sysexitq
            | M::Sysret
            | M::Sysretq
            | M::Swapgs
            | M::Lds
            | M::Les
            | M::Lfs
            | M::Lgs
            | M::Lss
            | M::Ud2
            | M::Ud0
            | M::Ud1
    )
}

fn require_cpl0(cpu: &Cpu) -> R<()> {
    if cpu.s().cpl() != 0 {
        return Err(gp(0));
    }
    Ok(())
}

fn protected(cpu: &Cpu) -> bool {
    cpu.s().cr0 & ctl::CR0_PE != 0
}

/// IN/OUT/INS/OUTS permission: CPL ≤ IOPL, else every byte's bit in the TSS I/O bitmap must be 0.
pub(crate) fn check_io_permission(cpu: &mut Cpu, port: u16, size: u32) -> R<()> {
    let s = cpu.s();
    if !protected(cpu) || (s.cpl() as u64) <= (s.rflags & IOPL) >> 12 && s.rflags & VM == 0 {
        return Ok(());
    }
    let tr = s.tr;
    if tr.unusable || tr.type_ & 7 != 3 && tr.type_ & 7 != 1 || tr.type_ & 8 == 0 || tr.limit < 0x67
    {
        return Err(gp(0));
    }
    let map_base = cpu.read_system(tr.base + 0x66, 2)?;
    let byte = map_base + port as u64 / 8;
    if byte + 1 > tr.limit as u64 {
        return Err(gp(0));
    }
    let bits = cpu.read_system(tr.base + byte, 2)?;
    let wanted = ((1u64 << size) - 1) << (port % 8);
    if bits & wanted != 0 {
        return Err(gp(0));
    }
    Ok(())
}

pub(crate) fn port_in(cpu: &mut Cpu, port: u16, size: u32) -> R<u64> {
    if cpu.s().dr[7] & 0xFF != 0 {
        super::debug::watch_io(cpu, port, size);
    }
    cpu.sync_clock();
    cpu.m.stats.count_exit("io");
    let v = cpu
        .m
        .bus
        .io_in_with(port, size as u8, cpu.m.ram.as_mut_slice()) as u64;
    cpu.absorb_device_writes();
    cpu.check_device_events()?;
    Ok(v)
}

pub(crate) fn port_out(cpu: &mut Cpu, port: u16, size: u32, value: u64) -> R<()> {
    if cpu.s().dr[7] & 0xFF != 0 {
        super::debug::watch_io(cpu, port, size);
    }
    cpu.sync_clock();
    cpu.m.stats.count_exit("io");
    cpu.m
        .bus
        .io_out_with(port, size as u8, value as u32, cpu.m.ram.as_mut_slice());
    cpu.absorb_device_writes();
    cpu.check_device_events()
}

pub(crate) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    let long64 = cpu.s().mode() == CpuMode::Long64;
    match ins.mnemonic() {
        M::In => {
            let size = cpu.op_size(ins, 0);
            let port = cpu.read_op(ins, 1)? as u16;
            check_io_permission(cpu, port, size)?;
            if super::pv_door::is_hypercall_port(cpu, port, size) {
                return super::pv_door::hypercall(cpu, crate::pv::Door::Port);
            }
            let v = port_in(cpu, port, size)?;
            cpu.set_gpr(reg::RAX, size, v);
            Ok(())
        }
        M::Out => {
            let size = cpu.op_size(ins, 1);
            let port = cpu.read_op(ins, 0)? as u16;
            check_io_permission(cpu, port, size)?;
            let v = cpu.gpr(reg::RAX, size);
            port_out(cpu, port, size, v)
        }
        M::Hlt => {
            require_cpl0(cpu)?;
            cpu.st().events.halted = true;
            Ok(())
        }
        M::Cli | M::Sti => {
            let s = cpu.s();
            if protected(cpu) && (s.cpl() as u64) > (s.rflags & IOPL) >> 12 {
                return Err(gp(0));
            }
            if ins.mnemonic() == M::Sti {
                if !cpu.flag(IF) {
                    cpu.st().events.interrupt_shadow = true;
                }
                cpu.st().rflags |= IF;
            } else {
                cpu.st().rflags &= !IF;
            }
            Ok(())
        }
        M::Pushf | M::Pushfd | M::Pushfq => {
            let size = ins.stack_pointer_increment().unsigned_abs();
            if cpu.s().rflags & VM != 0 && (cpu.s().rflags & IOPL) >> 12 < 3 {
                return Err(gp(0));
            }
            let f = cpu.s().rflags & !(VM | RF);
            cpu.push(size, f)
        }
        // ANCHOR: popf
        M::Popf | M::Popfd | M::Popfq => {
            let size = ins.stack_pointer_increment().unsigned_abs();
            let v = cpu.pop(size)?;
            let s = cpu.s();
            let cpl = s.cpl() as u64;
            let iopl = (s.rflags & IOPL) >> 12;
            let mut changeable = CF | PF | AF | ZF | SF | TF | DF | OF | NT | AC | ID;
            if !protected(cpu) || cpl == 0 {
                changeable |= IOPL;
            }
            if !protected(cpu) || cpl <= iopl {
                changeable |= IF;
            }
            let changeable = changeable & mask(size);
            let f = (s.rflags & !changeable) | (v & changeable);
            set_rflags_checked(cpu, f);
            Ok(())
        }
        // ANCHOR_END: popf
        M::Lgdt | M::Lidt => {
            require_cpl0(cpu)?;
            let seg = seg_of(ins.memory_segment());
            let ea = cpu.effective_address(ins);
            let limit = cpu.read_mem(seg, ea, 2)? as u16;
            let base_size = if long64 { 8 } else { 4 };
            let mut base = cpu.read_mem(seg, ea.wrapping_add(2), base_size)?;
            if !long64 && cpu.op_size_is_16(ins) {
                base &= 0xFF_FFFF;
            }
            let t = if ins.mnemonic() == M::Lgdt {
                &mut cpu.st().gdtr
            } else {
                &mut cpu.st().idtr
            };
            t.base = base;
            t.limit = limit;
            Ok(())
        }
        // ANCHOR: sgdt
        M::Sgdt | M::Sidt => {
            let t = if ins.mnemonic() == M::Sgdt {
                cpu.s().gdtr
            } else {
                cpu.s().idtr
            };
            let seg = seg_of(ins.memory_segment());
            let ea = cpu.effective_address(ins);
            cpu.write_mem(seg, ea, 2, t.limit as u64)?;
            let base_size = if long64 { 8 } else { 4 };
            cpu.write_mem(seg, ea.wrapping_add(2), base_size, t.base)
        }
        // ANCHOR_END: sgdt
        M::Sldt | M::Str => {
            if !protected(cpu) || cpu.s().rflags & VM != 0 {
                return Err(ud());
            }
            let v = if ins.mnemonic() == M::Sldt {
                cpu.s().ldtr.selector
            } else {
                cpu.s().tr.selector
            };
            cpu.write_op(ins, 0, v as u64)
        }
        M::Lldt | M::Ltr => load_system_segment(cpu, ins),
        // No caches to write back or drop; privileged all the same (#GP(0) at CPL > 0).
        M::Invd | M::Wbinvd => require_cpl0(cpu),
        M::Clts => {
            require_cpl0(cpu)?;
            cpu.st().cr0 &= !ctl::CR0_TS;
            Ok(())
        }
        M::Smsw => {
            let v = cpu.s().cr0;
            cpu.write_op(ins, 0, v)
        }
        M::Lmsw => {
            require_cpl0(cpu)?;
            let v = cpu.read_op(ins, 0)? & 0xF;
            // LMSW can set PE but never clear it.
            let cr0 = (cpu.s().cr0 & !0xE) | v | (cpu.s().cr0 & ctl::CR0_PE);
            write_cr0(cpu, cr0)
        }
        M::Invlpg => {
            require_cpl0(cpu)?;
            let ea = cpu.effective_address(ins);
            let lin = cpu.linear(seg_of(ins.memory_segment()), ea, 1, false)?;
            cpu.mmu.invlpg(&mut cpu.m.stats, lin);
            Ok(())
        }
        M::Invpcid => invpcid(cpu, ins),
        M::Stac | M::Clac => {
            // SMAP's override switch: RFLAGS.AC; CPL 0 only (#UD otherwise, as the SDM says).
            if cpu.s().cpl() != 0 || cpu.s().rflags & VM != 0 {
                return Err(ud());
            }
            if ins.mnemonic() == M::Stac {
                cpu.st().rflags |= AC;
            } else {
                cpu.st().rflags &= !AC;
            }
            Ok(())
        }
        // VMCALL: the second hypercall door, which only an emulating VMM sees (no VMX here:
        // without paravirtualization it is #UD, as on a CPU without VT-x).
        M::Vmcall if cpu.m.pv && cpu.s().cpl() == 0 => {
            super::pv_door::hypercall(cpu, crate::pv::Door::Vmcall)
        }
        M::Vmcall => Err(super::ud()),
        M::Cpuid => {
            let leaf = cpu.gpr(reg::RAX, 4) as u32;
            let sub = cpu.gpr(reg::RCX, 4) as u32;
            let [a, b, c, d] = crate::cpu::cpuid::cpuid_with(cpu.m.pv, leaf, sub);
            cpu.set_gpr(reg::RAX, 4, a as u64);
            cpu.set_gpr(reg::RBX, 4, b as u64);
            cpu.set_gpr(reg::RCX, 4, c as u64);
            cpu.set_gpr(reg::RDX, 4, d as u64);
            Ok(())
        }
        M::Rdtsc | M::Rdtscp => {
            if cpu.s().cr4 & ctl::CR4_TSD != 0 && cpu.s().cpl() != 0 && protected(cpu) {
                return Err(gp(0));
            }
            let tsc = cpu.tsc();
            cpu.set_gpr(reg::RAX, 4, tsc & 0xFFFF_FFFF);
            cpu.set_gpr(reg::RDX, 4, tsc >> 32);
            if ins.mnemonic() == M::Rdtscp {
                // RDTSCP also names the CPU: ECX = IA32_TSC_AUX (the OS stores the CPU number).
                let aux = cpu.s().msrs.tsc_aux;
                cpu.set_gpr(reg::RCX, 4, aux);
            }
            Ok(())
        }
        M::Rdpid => {
            // RDPID r32/r64: IA32_TSC_AUX, zero-extended, at any privilege level.
            let aux = cpu.s().msrs.tsc_aux;
            cpu.write_op(ins, 0, aux)
        }
        M::Rdmsr => {
            require_cpl0(cpu)?;
            let v = read_msr(cpu, cpu.gpr(reg::RCX, 4) as u32)?;
            cpu.set_gpr(reg::RAX, 4, v & 0xFFFF_FFFF);
            cpu.set_gpr(reg::RDX, 4, v >> 32);
            Ok(())
        }
        M::Wrmsr => {
            require_cpl0(cpu)?;
            let v = (cpu.gpr(reg::RDX, 4) << 32) | cpu.gpr(reg::RAX, 4);
            write_msr(cpu, cpu.gpr(reg::RCX, 4) as u32, v)
        }
        M::Syscall => syscall(cpu),
        M::Sysenter => super::sysenter::sysenter(cpu),
        M::Sysexit | M::Sysexitq => super::sysenter::sysexit(cpu, ins.mnemonic() == M::Sysexitq),
        M::Sysret | M::Sysretq => sysret(cpu, ins.mnemonic() == M::Sysretq),
        M::Swapgs => {
            if !long64 {
                return Err(ud());
            }
            require_cpl0(cpu)?;
            let s = cpu.st();
            std::mem::swap(
                &mut s.seg[Seg::Gs as usize].base,
                &mut s.msrs.kernel_gs_base,
            );
            Ok(())
        }
        M::Lds | M::Les | M::Lfs | M::Lgs | M::Lss => {
            if ins.op1_kind() != OpKind::Memory {
                return Err(ud());
            }
            let (sel, off) = super::control::read_far_pointer(cpu, ins)?;
            let seg = match ins.mnemonic() {
                M::Lds => Register::DS,
                M::Les => Register::ES,
                M::Lfs => Register::FS,
                M::Lgs => Register::GS,
                _ => Register::SS,
            };
            super::segments::mov_to_segment(cpu, seg, sel)?;
            cpu.write_op(ins, 0, off)
        }
        // UD2/UD0/UD1 are defined to raise #UD; they are implemented, not counted as missing.
        _ => Err(ud()),
    }
}

impl Cpu<'_> {
    fn op_size_is_16(&self, ins: &Instruction) -> bool {
        matches!(
            ins.code(),
            iced_x86::Code::Lgdt_m1632_16 | iced_x86::Code::Lidt_m1632_16
        )
    }
}

/// INVPCID: invalidate by PCID and/or linear address. The 16-byte descriptor holds the PCID
/// (bits 11:0, the rest must be 0) and a linear address; the register selects the type (0-3).
fn invpcid(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    if !protected(cpu) || cpu.s().rflags & VM != 0 {
        return Err(ud());
    }
    require_cpl0(cpu)?;
    let kind = cpu.reg(ins.op0_register());
    let seg = seg_of(ins.memory_segment());
    let ea = cpu.effective_address(ins);
    let pcid = cpu.read_mem(seg, ea, 8)?;
    let linear = cpu.read_mem(seg, ea.wrapping_add(8), 8)?;
    let kind = match kind {
        0 => InvpcidKind::Address,
        1 => InvpcidKind::SingleContext,
        2 => InvpcidKind::AllIncludingGlobal,
        3 => InvpcidKind::AllExceptGlobal,
        _ => return Err(gp(0)),
    };
    let pcide = cpu.s().cr4 & ctl::CR4_PCIDE != 0;
    if pcid > 0xFFF
        || kind == InvpcidKind::Address && !super::access::is_canonical(linear)
        || matches!(kind, InvpcidKind::Address | InvpcidKind::SingleContext) && !pcide && pcid != 0
    {
        return Err(gp(0));
    }
    cpu.mmu.invpcid(&mut cpu.m.stats, kind, pcid as u16, linear);
    Ok(())
}

/// LLDT/LTR: load a system segment from the GDT.
fn load_system_segment(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    if !protected(cpu) || cpu.s().rflags & VM != 0 {
        return Err(ud());
    }
    require_cpl0(cpu)?;
    let sel = cpu.read_op(ins, 0)? as u16;
    let is_ldt = ins.mnemonic() == Mnemonic::Lldt;
    if sel & !3 == 0 {
        if is_ldt {
            cpu.st().ldtr = super::segments::null_segment(sel);
            return Ok(());
        }
        return Err(gp(0));
    }
    if sel & 4 != 0 {
        return Err(gp(sel as u32 & !3));
    }
    let seg = cpu.read_system_descriptor(sel)?;
    let ok_type = if is_ldt {
        seg.type_ == 2
    } else {
        seg.type_ == 9 || (!cpu.s().long_mode_active() && seg.type_ == 1)
    };
    if seg.s || !ok_type {
        return Err(gp(sel as u32 & !3));
    }
    if !seg.present {
        return Err(exception(vec::NP, Some(sel as u32 & !3)));
    }
    if is_ldt {
        cpu.st().ldtr = seg;
    } else {
        // LTR marks the TSS busy in the GDT.
        let addr = cpu.descriptor_address(sel)?;
        let b5 = cpu.read_system(addr + 5, 1)?;
        cpu.write_system(addr + 5, 1, b5 | 2)?;
        cpu.st().tr = Segment {
            type_: seg.type_ | 2,
            ..seg
        };
    }
    Ok(())
}

/// MOV to/from CR0–CR4, CR8 and DR0–DR7.
pub(crate) fn mov_control(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    require_cpl0(cpu)?;
    let to_reg = ins.op1_kind() == OpKind::Register
        && (ins.op1_register().is_cr() || ins.op1_register().is_dr());
    let long64 = cpu.s().mode() == CpuMode::Long64;
    let gsize = if long64 { 8 } else { 4 };
    if to_reg {
        let r = ins.op1_register();
        let v = if r.is_cr() {
            match r {
                Register::CR0 => cpu.s().cr0,
                Register::CR2 => cpu.s().cr2,
                Register::CR3 => cpu.s().cr3,
                Register::CR4 => cpu.s().cr4,
                // CR8 is the local APIC's task priority, bits 7:4 (SDM 10.8.6.1).
                Register::CR8 => (cpu.m.bus.lapic.tpr() >> 4) as u64,
                _ => return Err(ud()),
            }
        } else {
            super::debug::read_dr(cpu, r as usize - Register::DR0 as usize)?
        };
        let dst = ins.op0_register();
        cpu.set_gpr(
            dst.full_register() as usize - Register::RAX as usize,
            gsize,
            v,
        );
        return Ok(());
    }
    let r = ins.op0_register();
    let src = ins.op1_register();
    let v = cpu.gpr(src.full_register() as usize - Register::RAX as usize, gsize);
    if r.is_dr() {
        let i = r as usize - Register::DR0 as usize;
        if i >= 4 && v >> 32 != 0 {
            return Err(gp(0)); // DR6/DR7 (and their DR4/DR5 names) are 32-bit registers
        }
        return super::debug::write_dr(cpu, i, v);
    }
    match r {
        Register::CR0 => write_cr0(cpu, v),
        Register::CR2 => {
            cpu.st().cr2 = v;
            Ok(())
        }
        // The MMU checks reserved bits, loads PAE PDPTEs and switches the shadow.
        Register::CR3 => cpu.mmu.write_cr3(cpu.m, v).map_err(|_| gp(0)),
        Register::CR4 => {
            // Only bits whose feature CPUID advertises (cpu/cpuid.rs): VME/PVI and MCE name
            // features this CPU does not have, so they are reserved (#GP). OSFXSR (the OS
            // saves XMM state with FXSAVE) and OSXMMEXCPT (it handles #XM) enable SSE.
            let supported: u64 = ctl::CR4_OSFXSR
                | ctl::CR4_OSXMMEXCPT
                | ctl::CR4_TSD
                | ctl::CR4_DE
                | ctl::CR4_PSE
                | ctl::CR4_PAE
                | ctl::CR4_PGE
                | ctl::CR4_PCE
                | ctl::CR4_PCIDE
                | ctl::CR4_SMEP
                | ctl::CR4_SMAP;
            if v & !supported != 0 || cpu.s().long_mode_active() && v & ctl::CR4_PAE == 0 {
                return Err(gp(0));
            }
            let old = ControlRegs::of(cpu.s());
            cpu.st().cr4 = v;
            cpu.mmu.control_changed(cpu.m, old).map_err(|_| gp(0))
        }
        Register::CR8 => {
            if v > 15 {
                return Err(gp(0));
            }
            cpu.st().cr8 = v;
            cpu.m.bus.lapic.set_tpr((v as u8) << 4);
            Ok(())
        }
        _ => Err(ud()),
    }
}

/// CR0 write with the mode checks that make long mode activate (EFER.LMA) when paging turns on.
fn write_cr0(cpu: &mut Cpu, v: u64) -> R<()> {
    if v >> 32 != 0 || v & ctl::CR0_PG != 0 && v & ctl::CR0_PE == 0 {
        return Err(gp(0));
    }
    if v & ctl::CR0_NW != 0 && v & ctl::CR0_CD == 0 {
        return Err(gp(0));
    }
    let old = cpu.s().cr0;
    let before = ControlRegs::of(cpu.s());
    let s = cpu.st();
    let turning_on_paging = v & ctl::CR0_PG != 0 && old & ctl::CR0_PG == 0;
    let turning_off_paging = v & ctl::CR0_PG == 0 && old & ctl::CR0_PG != 0;
    if turning_on_paging && s.efer & ctl::EFER_LME != 0 {
        if s.cr4 & ctl::CR4_PAE == 0 || s.seg[Seg::Cs as usize].l {
            return Err(gp(0));
        }
        s.efer |= ctl::EFER_LMA;
    }
    if turning_off_paging && s.efer & ctl::EFER_LMA != 0 {
        if s.seg[Seg::Cs as usize].l {
            return Err(gp(0));
        }
        s.efer &= !ctl::EFER_LMA;
    }
    s.cr0 = v | ctl::CR0_ET;
    // Paging rules (PCIDE, PAE PDPTE loads) and invalidations live in the MMU.
    cpu.mmu.control_changed(cpu.m, before).map_err(|_| gp(0))
}

/// IA32_MISC_ENABLE (architectural on Intel family 6, read by Linux without a fault handler):
/// fast strings on (bit 0), branch-trace storage and PEBS unavailable (bits 11, 12); no
/// thermal control, no MONITOR, CPUID not limited, XD not disabled.
const IA32_MISC_ENABLE: u32 = 0x1A0;
const MISC_ENABLE: u64 = 1 | 1 << 11 | 1 << 12;
/// IA32_BIOS_SIGN_ID: software writes 0, executes CPUID leaf 1, and reads the loaded
/// microcode's revision in bits 63:32. This model has no microcode: it reads 0 (Linux then says
/// "no microcode"), and a write is accepted and changes nothing.
const IA32_BIOS_SIGN_ID: u32 = 0x8B;

fn read_msr(cpu: &mut Cpu, index: u32) -> R<u64> {
    // Platform MSRs (IA32_APIC_BASE, IA32_TSC_DEADLINE, x2APIC 0x800-0x8FF) belong to the
    // local APIC on the bus, so every engine sees the same APIC.
    cpu.sync_clock();
    if let Some(result) = cpu.m.bus.msr_read(index) {
        return result.map_err(|_| gp(0));
    }
    if let Some(value) = super::pv_door::read_msr(cpu, index) {
        return Ok(value);
    }
    let s = cpu.s();
    Ok(match index {
        msr::IA32_TSC => cpu.tsc(),
        msr::IA32_APIC_BASE => s.msrs.apic_base,
        msr::IA32_SYSENTER_CS => s.msrs.sysenter_cs,
        msr::IA32_SYSENTER_ESP => s.msrs.sysenter_esp,
        msr::IA32_SYSENTER_EIP => s.msrs.sysenter_eip,
        msr::IA32_PAT => s.msrs.pat,
        msr::IA32_EFER => s.efer,
        msr::IA32_STAR => s.msrs.star,
        msr::IA32_LSTAR => s.msrs.lstar,
        msr::IA32_CSTAR => s.msrs.cstar,
        msr::IA32_FMASK => s.msrs.fmask,
        msr::IA32_FS_BASE => s.seg[Seg::Fs as usize].base,
        msr::IA32_GS_BASE => s.seg[Seg::Gs as usize].base,
        msr::IA32_KERNEL_GS_BASE => s.msrs.kernel_gs_base,
        msr::IA32_TSC_AUX => s.msrs.tsc_aux,
        IA32_MISC_ENABLE => MISC_ENABLE,
        IA32_BIOS_SIGN_ID => 0,
        _ => return Err(gp(0)),
    })
}

fn write_msr(cpu: &mut Cpu, index: u32, v: u64) -> R<()> {
    cpu.sync_clock();
    if let Some(result) = cpu.m.bus.msr_write(index, v) {
        result.map_err(|_| gp(0))?;
        // CpuState keeps a copy of IA32_APIC_BASE for engines that load it (KVM's sregs).
        cpu.st().msrs.apic_base = cpu.m.bus.lapic.apic_base();
        return Ok(());
    }
    if super::pv_door::write_msr(cpu, index, v) {
        return Ok(());
    }
    let canonical = super::access::is_canonical(v);
    let now = cpu.now_ns;
    let s = cpu.st();
    match index {
        msr::IA32_EFER => {
            let allowed = ctl::EFER_SCE | ctl::EFER_LME | ctl::EFER_NXE | ctl::EFER_LMA;
            if v & !allowed != 0 {
                return Err(gp(0));
            }
            // LME may not change while paging is on; LMA is read-only.
            if s.cr0 & ctl::CR0_PG != 0 && (v ^ s.efer) & ctl::EFER_LME != 0 {
                return Err(gp(0));
            }
            let before = ControlRegs::of(s);
            s.efer = (v & !ctl::EFER_LMA) | (s.efer & ctl::EFER_LMA);
            cpu.mmu.control_changed(cpu.m, before).map_err(|_| gp(0))?;
        }
        // Writing the TSC sets it: later reads count on from the value written.
        msr::IA32_TSC => s.msrs.tsc_offset = v.wrapping_sub(now),
        msr::IA32_APIC_BASE => s.msrs.apic_base = v,
        msr::IA32_SYSENTER_CS => s.msrs.sysenter_cs = v & 0xFFFF,
        msr::IA32_SYSENTER_ESP | msr::IA32_SYSENTER_EIP if !canonical => return Err(gp(0)),
        msr::IA32_SYSENTER_ESP => s.msrs.sysenter_esp = v,
        msr::IA32_SYSENTER_EIP => s.msrs.sysenter_eip = v,
        // Each of the eight PAT entries must name a memory type: 0, 1, 4, 5, 6 or 7.
        msr::IA32_PAT if (0..8).any(|i| matches!((v >> (8 * i)) & 0xFF, 2 | 3 | 8..)) => {
            return Err(gp(0))
        }
        msr::IA32_PAT => s.msrs.pat = v,
        msr::IA32_STAR => s.msrs.star = v,
        msr::IA32_LSTAR | msr::IA32_CSTAR | msr::IA32_KERNEL_GS_BASE if !canonical => {
            return Err(gp(0))
        }
        msr::IA32_FS_BASE | msr::IA32_GS_BASE if !canonical => return Err(gp(0)),
        msr::IA32_LSTAR => s.msrs.lstar = v,
        msr::IA32_CSTAR => s.msrs.cstar = v,
        msr::IA32_FMASK => s.msrs.fmask = v & 0xFFFF_FFFF,
        msr::IA32_FS_BASE => s.seg[Seg::Fs as usize].base = v,
        msr::IA32_GS_BASE => s.seg[Seg::Gs as usize].base = v,
        msr::IA32_KERNEL_GS_BASE => s.msrs.kernel_gs_base = v,
        // IA32_TSC_AUX bits 63:32 are reserved.
        msr::IA32_TSC_AUX if v >> 32 != 0 => return Err(gp(0)),
        msr::IA32_TSC_AUX => s.msrs.tsc_aux = v,
        // Nothing in it can change here: writing back what it reads is allowed, the rest #GP.
        IA32_MISC_ENABLE if v == MISC_ENABLE => {}
        IA32_BIOS_SIGN_ID => {}
        _ => return Err(gp(0)),
    }
    Ok(())
}

/// A flat code or stack segment as SYSCALL/SYSRET load them (they do not read the GDT).
pub(crate) fn flat_segment(selector: u16, code: bool, long: bool, dpl: u8) -> Segment {
    Segment {
        selector,
        base: 0,
        limit: 0xFFFF_FFFF,
        type_: if code { 0xB } else { 0x3 },
        s: true,
        dpl,
        present: true,
        l: long,
        db: !long,
        g: true,
        ..Default::default()
    }
}

/// SYSCALL: the fast system call of long mode. RCX ← RIP, R11 ← RFLAGS, CS/SS from STAR.
/// This CPU is an Intel one (CPUID vendor): SYSCALL is #UD outside 64-bit mode, compatibility
/// mode included, so IA32_CSTAR (AMD's compatibility-mode target) is stored but never used.
fn syscall(cpu: &mut Cpu) -> R<()> {
    let s = cpu.s();
    if s.efer & ctl::EFER_SCE == 0 || s.mode() != CpuMode::Long64 {
        return Err(ud());
    }
    let star_cs = ((s.msrs.star >> 32) & 0xFFFC) as u16;
    let target = s.msrs.lstar;
    let (rip, rflags, fmask) = (s.rip, s.rflags, s.msrs.fmask);
    let st = cpu.st();
    st.gpr[reg::RCX] = rip;
    st.gpr[11] = rflags & !RF;
    st.rflags = (rflags & !fmask & !RF) | FIXED1;
    st.seg[Seg::Cs as usize] = flat_segment(star_cs, true, true, 0);
    st.seg[Seg::Ss as usize] = flat_segment(star_cs + 8, false, false, 0);
    st.rip = target;
    cpu.m.stats.count_exception("syscall");
    Ok(())
}

/// SYSRET: back to CPL 3 with CS/SS from STAR[63:48]; 64-bit with REX.W, else compatibility mode.
fn sysret(cpu: &mut Cpu, to_64: bool) -> R<()> {
    let s = cpu.s();
    if s.efer & ctl::EFER_SCE == 0 || s.mode() != CpuMode::Long64 {
        return Err(ud());
    }
    require_cpl0(cpu)?;
    let base = ((cpu.s().msrs.star >> 48) & 0xFFFC) as u16;
    let rcx = cpu.s().gpr[reg::RCX];
    if to_64 && !super::access::is_canonical(rcx) {
        return Err(gp(0));
    }
    let r11 = cpu.s().gpr[11];
    let st = cpu.st();
    if to_64 {
        st.seg[Seg::Cs as usize] = flat_segment((base + 16) | 3, true, true, 3);
        st.rip = rcx;
    } else {
        st.seg[Seg::Cs as usize] = flat_segment(base | 3, true, false, 3);
        st.rip = rcx & 0xFFFF_FFFF;
    }
    let mut ss = flat_segment((base + 8) | 3, false, false, 3);
    ss.selector = (base + 8) | 3;
    st.seg[Seg::Ss as usize] = ss;
    st.rflags = (r11 & 0x3C_7FD7) | FIXED1;
    Ok(())
}

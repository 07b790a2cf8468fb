//! SYSENTER/SYSEXIT: Intel's fast system call pair (the 32-bit kernels' SYSCALL).
//! Teaches: a system call needs no descriptor-table reads at all — the MSRs say where to go and
//! the CPU loads fixed flat segments, which is why it is fast (and why the GDT must match).
//!
//! IA32_SYSENTER_CS names the ring-0 code selector; SS is that + 8. SYSEXIT returns to ring 3
//! with CS = SYSENTER_CS + 16 (+ 32 for a 64-bit return, SYSEXITQ), SS = CS + 8, RIP = RDX and
//! RSP = RCX. Neither saves anything: the user-side stub passes its return address itself.

use super::system::flat_segment;
use super::{gp, Cpu, R};
use crate::cpu::flags::{IF, RF, VM};
use crate::cpu::{ctl, reg, Seg};

fn sysenter_cs(cpu: &Cpu) -> R<u16> {
    let cs = (cpu.s().msrs.sysenter_cs & 0xFFFC) as u16;
    if cpu.s().cr0 & ctl::CR0_PE == 0 || cs == 0 {
        return Err(gp(0));
    }
    Ok(cs)
}

pub(crate) fn sysenter(cpu: &mut Cpu) -> R<()> {
    let cs = sysenter_cs(cpu)?;
    let long = cpu.s().long_mode_active();
    let (esp, eip) = (cpu.s().msrs.sysenter_esp, cpu.s().msrs.sysenter_eip);
    let st = cpu.st();
    st.rflags &= !(VM | IF | RF);
    st.seg[Seg::Cs as usize] = flat_segment(cs, true, long, 0);
    st.seg[Seg::Ss as usize] = flat_segment(cs + 8, false, false, 0);
    let width = if long { u64::MAX } else { 0xFFFF_FFFF };
    st.gpr[reg::RSP] = esp & width;
    st.rip = eip & width;
    cpu.m.stats.count_exception("sysenter");
    Ok(())
}

pub(crate) fn sysexit(cpu: &mut Cpu, to_64: bool) -> R<()> {
    let base = sysenter_cs(cpu)?;
    if cpu.s().cpl() != 0 {
        return Err(gp(0));
    }
    let (rcx, rdx) = (cpu.s().gpr[reg::RCX], cpu.s().gpr[reg::RDX]);
    let cs = if to_64 { base + 32 } else { base + 16 } | 3;
    if to_64 && !(super::access::is_canonical(rcx) && super::access::is_canonical(rdx)) {
        return Err(gp(0));
    }
    let st = cpu.st();
    st.seg[Seg::Cs as usize] = flat_segment(cs, true, to_64, 3);
    st.seg[Seg::Ss as usize] = flat_segment(cs + 8, false, false, 3);
    let width = if to_64 { u64::MAX } else { 0xFFFF_FFFF };
    st.gpr[reg::RSP] = rcx & width;
    st.rip = rdx & width;
    Ok(())
}

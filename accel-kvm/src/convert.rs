//! `CpuState` ⇄ KVM's register structures (`kvm_regs`, `kvm_sregs`, `kvm_fpu`, MSRs, debug registers).
//! Teaches: the architectural state is the same whoever runs the CPU; only its packaging differs.
//!
//! Every function here is pure: no file descriptors, no ioctls. `state.rs` moves the results in
//! and out of a real vCPU. Where KVM's view has less than ours (the FXSAVE image's MXCSR_MASK and
//! reserved bytes, for instance), the `apply_*` functions update only what KVM knows.

use emulator::cpu::state::{msr, DescriptorTable, FpuState, PendingEvents, Seg, Segment};
use emulator::CpuState;
use kvm_bindings::{
    kvm_debugregs, kvm_dtable, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs,
    kvm_vcpu_events, kvm_xsave, KVM_VCPUEVENT_VALID_NMI_PENDING, KVM_VCPUEVENT_VALID_SHADOW,
    KVM_X86_SHADOW_INT_MOV_SS, KVM_X86_SHADOW_INT_STI,
};

// ---- segments and descriptor tables -------------------------------------------------------

/// A segment register in KVM's form. Both sides keep the limit byte-granular (already scaled by
/// G), so the fields map one to one; `unusable` is KVM's name for "a null selector was loaded".
pub fn segment_to_kvm(s: &Segment) -> kvm_segment {
    kvm_segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_ & 0xF,
        present: s.present as u8,
        dpl: s.dpl & 3,
        db: s.db as u8,
        s: s.s as u8,
        l: s.l as u8,
        g: s.g as u8,
        avl: s.avl as u8,
        unusable: s.unusable as u8,
        padding: 0,
    }
}

/// The inverse of [`segment_to_kvm`].
pub fn segment_from_kvm(k: &kvm_segment) -> Segment {
    Segment {
        selector: k.selector,
        base: k.base,
        limit: k.limit,
        type_: k.type_ & 0xF,
        s: k.s != 0,
        dpl: k.dpl & 3,
        present: k.present != 0,
        avl: k.avl != 0,
        l: k.l != 0,
        db: k.db != 0,
        g: k.g != 0,
        unusable: k.unusable != 0,
    }
}

fn dtable_to_kvm(t: &DescriptorTable) -> kvm_dtable {
    kvm_dtable {
        base: t.base,
        limit: t.limit,
        padding: [0; 3],
    }
}

fn dtable_from_kvm(k: &kvm_dtable) -> DescriptorTable {
    DescriptorTable {
        base: k.base,
        limit: k.limit,
    }
}

// ---- general registers -----------------------------------------------------------------

/// General registers, RIP and RFLAGS. Note KVM's field order (rax, rbx, rcx, rdx, rsi, rdi, rsp,
/// rbp) is not the encoding order `CpuState::gpr` uses (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi).
pub fn regs_to_kvm(cpu: &CpuState) -> kvm_regs {
    let g = &cpu.gpr;
    kvm_regs {
        rax: g[0],
        rcx: g[1],
        rdx: g[2],
        rbx: g[3],
        rsp: g[4],
        rbp: g[5],
        rsi: g[6],
        rdi: g[7],
        r8: g[8],
        r9: g[9],
        r10: g[10],
        r11: g[11],
        r12: g[12],
        r13: g[13],
        r14: g[14],
        r15: g[15],
        rip: cpu.rip,
        rflags: cpu.rflags,
    }
}

/// Copies KVM's general registers, RIP and RFLAGS into `cpu`.
pub fn apply_regs(cpu: &mut CpuState, k: &kvm_regs) {
    cpu.gpr = [
        k.rax, k.rcx, k.rdx, k.rbx, k.rsp, k.rbp, k.rsi, k.rdi, k.r8, k.r9, k.r10, k.r11, k.r12,
        k.r13, k.r14, k.r15,
    ];
    cpu.rip = k.rip;
    cpu.rflags = k.rflags;
}

// ---- system registers -------------------------------------------------------------------

/// Segment caches, descriptor tables, control registers, EFER and the APIC base.
/// `interrupt_bitmap` stays empty: we never leave an interrupt half-delivered inside KVM.
pub fn sregs_to_kvm(cpu: &CpuState) -> kvm_sregs {
    let seg = |s: Seg| segment_to_kvm(&cpu.seg[s as usize]);
    kvm_sregs {
        cs: seg(Seg::Cs),
        ds: seg(Seg::Ds),
        es: seg(Seg::Es),
        fs: seg(Seg::Fs),
        gs: seg(Seg::Gs),
        ss: seg(Seg::Ss),
        tr: segment_to_kvm(&cpu.tr),
        ldt: segment_to_kvm(&cpu.ldtr),
        gdt: dtable_to_kvm(&cpu.gdtr),
        idt: dtable_to_kvm(&cpu.idtr),
        cr0: cpu.cr0,
        cr2: cpu.cr2,
        cr3: cpu.cr3,
        cr4: cpu.cr4,
        cr8: cpu.cr8,
        efer: cpu.efer,
        apic_base: cpu.msrs.apic_base,
        interrupt_bitmap: [0; 4],
    }
}

/// Copies KVM's system registers into `cpu`.
pub fn apply_sregs(cpu: &mut CpuState, k: &kvm_sregs) {
    for (s, ks) in [
        (Seg::Es, &k.es),
        (Seg::Cs, &k.cs),
        (Seg::Ss, &k.ss),
        (Seg::Ds, &k.ds),
        (Seg::Fs, &k.fs),
        (Seg::Gs, &k.gs),
    ] {
        cpu.seg[s as usize] = segment_from_kvm(ks);
    }
    cpu.tr = segment_from_kvm(&k.tr);
    cpu.ldtr = segment_from_kvm(&k.ldt);
    cpu.gdtr = dtable_from_kvm(&k.gdt);
    cpu.idtr = dtable_from_kvm(&k.idt);
    cpu.cr0 = k.cr0;
    cpu.cr2 = k.cr2;
    cpu.cr3 = k.cr3;
    cpu.cr4 = k.cr4;
    cpu.cr8 = k.cr8;
    cpu.efer = k.efer;
    cpu.msrs.apic_base = k.apic_base;
}

// ---- x87 / SSE --------------------------------------------------------------------------

/// Byte offsets in the 512-byte FXSAVE image (64-bit layout: FIP and FDP are 8 bytes each).
mod fx {
    pub const FCW: usize = 0;
    pub const FSW: usize = 2;
    pub const FTW: usize = 4;
    pub const FOP: usize = 6;
    pub const FIP: usize = 8;
    pub const FDP: usize = 16;
    pub const MXCSR: usize = 24;
    pub const ST0: usize = 32;
    pub const XMM0: usize = 160;
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// The FXSAVE image in KVM's `kvm_fpu` form: the same fields, unpacked.
pub fn fpu_to_kvm(f: &FpuState) -> kvm_fpu {
    let b = &f.fxsave;
    let mut k = kvm_fpu {
        fcw: le16(b, fx::FCW),
        fsw: le16(b, fx::FSW),
        ftwx: b[fx::FTW],
        last_opcode: le16(b, fx::FOP),
        last_ip: le64(b, fx::FIP),
        last_dp: le64(b, fx::FDP),
        mxcsr: le32(b, fx::MXCSR),
        ..Default::default()
    };
    for (i, st) in k.fpr.iter_mut().enumerate() {
        st.copy_from_slice(&b[fx::ST0 + 16 * i..fx::ST0 + 16 * (i + 1)]);
    }
    for (i, x) in k.xmm.iter_mut().enumerate() {
        x.copy_from_slice(&b[fx::XMM0 + 16 * i..fx::XMM0 + 16 * (i + 1)]);
    }
    k
}

/// Writes KVM's x87/SSE fields into the FXSAVE image; bytes KVM does not carry are kept.
pub fn apply_fpu(f: &mut FpuState, k: &kvm_fpu) {
    let b = &mut f.fxsave;
    b[fx::FCW..fx::FCW + 2].copy_from_slice(&k.fcw.to_le_bytes());
    b[fx::FSW..fx::FSW + 2].copy_from_slice(&k.fsw.to_le_bytes());
    b[fx::FTW] = k.ftwx;
    b[fx::FOP..fx::FOP + 2].copy_from_slice(&k.last_opcode.to_le_bytes());
    b[fx::FIP..fx::FIP + 8].copy_from_slice(&k.last_ip.to_le_bytes());
    b[fx::FDP..fx::FDP + 8].copy_from_slice(&k.last_dp.to_le_bytes());
    b[fx::MXCSR..fx::MXCSR + 4].copy_from_slice(&k.mxcsr.to_le_bytes());
    for (i, st) in k.fpr.iter().enumerate() {
        b[fx::ST0 + 16 * i..fx::ST0 + 16 * (i + 1)].copy_from_slice(st);
    }
    for (i, x) in k.xmm.iter().enumerate() {
        b[fx::XMM0 + 16 * i..fx::XMM0 + 16 * (i + 1)].copy_from_slice(x);
    }
}

/// XSAVE's first 512 bytes are the FXSAVE image, byte for byte; the XSTATE_BV word at byte 512
/// says which components hold live state (bit 0 x87, bit 1 SSE). Unlike KVM_SET_FPU, which
/// ignores MXCSR, KVM_SET_XSAVE carries everything, so the engine prefers it. Writes our image
/// into `x` (fetched from the vCPU, so components we do not model, like AVX, keep their values).
pub fn fpu_into_xsave(f: &FpuState, x: &mut kvm_xsave) {
    for (word, bytes) in x.region[..128].iter_mut().zip(f.fxsave.chunks_exact(4)) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    x.region[XSTATE_BV_WORD] |= 0b11;
}

/// Copies the FXSAVE image out of an XSAVE area. (The kernel fills the legacy area with the
/// initial values of components that are not live, so all 512 bytes are meaningful.)
pub fn apply_xsave(f: &mut FpuState, x: &kvm_xsave) {
    for (bytes, word) in f.fxsave.chunks_exact_mut(4).zip(&x.region[..128]) {
        bytes.copy_from_slice(&word.to_le_bytes());
    }
}

/// Index of the low half of XSTATE_BV (byte 512) in `kvm_xsave::region`.
const XSTATE_BV_WORD: usize = 512 / 4;

// ---- MSRs -------------------------------------------------------------------------------

/// The MSRs `CpuState::msrs` carries, other than the APIC base (which travels in `kvm_sregs`)
/// and EFER (also in `kvm_sregs`). FS/GS bases travel in the segment caches.
pub const CARRIED_MSRS: [u32; 12] = [
    msr::IA32_STAR,
    msr::IA32_LSTAR,
    msr::IA32_CSTAR,
    msr::IA32_FMASK,
    msr::IA32_KERNEL_GS_BASE,
    msr::IA32_SYSENTER_CS,
    msr::IA32_SYSENTER_ESP,
    msr::IA32_SYSENTER_EIP,
    msr::IA32_PAT,
    msr::IA32_TSC_AUX,
    // kvmclock: KVM's kernel keeps the time info once it knows its address.
    emulator::pv::kvmclock::MSR_SYSTEM_TIME,
    emulator::pv::kvmclock::MSR_WALL_CLOCK,
];

/// The value of one carried MSR in `cpu`, or `None` for an MSR `CpuState` does not hold.
pub fn msr_value(cpu: &CpuState, index: u32) -> Option<u64> {
    let m = &cpu.msrs;
    Some(match index {
        msr::IA32_STAR => m.star,
        msr::IA32_LSTAR => m.lstar,
        msr::IA32_CSTAR => m.cstar,
        msr::IA32_FMASK => m.fmask,
        msr::IA32_KERNEL_GS_BASE => m.kernel_gs_base,
        msr::IA32_SYSENTER_CS => m.sysenter_cs,
        msr::IA32_SYSENTER_ESP => m.sysenter_esp,
        msr::IA32_SYSENTER_EIP => m.sysenter_eip,
        msr::IA32_PAT => m.pat,
        msr::IA32_TSC_AUX => m.tsc_aux,
        emulator::pv::kvmclock::MSR_SYSTEM_TIME => m.kvm_system_time,
        emulator::pv::kvmclock::MSR_WALL_CLOCK => m.kvm_wall_clock,
        msr::IA32_APIC_BASE => m.apic_base,
        msr::IA32_EFER => cpu.efer,
        _ => return None,
    })
}

/// Stores one MSR value into `cpu`; returns false for an MSR `CpuState` does not hold.
pub fn set_msr_value(cpu: &mut CpuState, index: u32, value: u64) -> bool {
    let m = &mut cpu.msrs;
    match index {
        msr::IA32_STAR => m.star = value,
        msr::IA32_LSTAR => m.lstar = value,
        msr::IA32_CSTAR => m.cstar = value,
        msr::IA32_FMASK => m.fmask = value,
        msr::IA32_KERNEL_GS_BASE => m.kernel_gs_base = value,
        msr::IA32_SYSENTER_CS => m.sysenter_cs = value,
        msr::IA32_SYSENTER_ESP => m.sysenter_esp = value,
        msr::IA32_SYSENTER_EIP => m.sysenter_eip = value,
        msr::IA32_PAT => m.pat = value,
        msr::IA32_TSC_AUX => m.tsc_aux = value,
        emulator::pv::kvmclock::MSR_SYSTEM_TIME => m.kvm_system_time = value,
        emulator::pv::kvmclock::MSR_WALL_CLOCK => m.kvm_wall_clock = value,
        msr::IA32_APIC_BASE => m.apic_base = value,
        msr::IA32_EFER => cpu.efer = value,
        _ => return false,
    }
    true
}

/// `kvm_msr_entry` records for the given MSR numbers, filled from `cpu`.
pub fn msrs_to_kvm(cpu: &CpuState, indices: &[u32]) -> Vec<kvm_msr_entry> {
    indices
        .iter()
        .filter_map(|&index| {
            msr_value(cpu, index).map(|data| kvm_msr_entry {
                index,
                data,
                ..Default::default()
            })
        })
        .collect()
}

/// Stores every entry KVM returned into `cpu`.
pub fn apply_msrs(cpu: &mut CpuState, entries: &[kvm_msr_entry]) {
    for e in entries {
        set_msr_value(cpu, e.index, e.data);
    }
}

// ---- debug registers and pending events ---------------------------------------------------

/// DR0–DR3, DR6 and DR7 (DR4/DR5 are aliases of DR6/DR7 and are kept equal to them).
pub fn debugregs_to_kvm(cpu: &CpuState) -> kvm_debugregs {
    kvm_debugregs {
        db: [cpu.dr[0], cpu.dr[1], cpu.dr[2], cpu.dr[3]],
        dr6: cpu.dr[6],
        dr7: cpu.dr[7],
        ..Default::default()
    }
}

/// Copies KVM's debug registers into `cpu`.
pub fn apply_debugregs(cpu: &mut CpuState, k: &kvm_debugregs) {
    cpu.dr[..4].copy_from_slice(&k.db);
    cpu.dr[4] = k.dr6;
    cpu.dr[5] = k.dr7;
    cpu.dr[6] = k.dr6;
    cpu.dr[7] = k.dr7;
}

/// The interrupt shadow, a pending NMI and NMI blocking in KVM's event form. KVM distinguishes a shadow from
/// STI and from MOV SS; `CpuState` does not, so a shadow goes in as "after STI" (the one that
/// blocks maskable interrupts, which is all our machine can raise).
pub fn events_to_kvm(e: &PendingEvents) -> kvm_vcpu_events {
    let mut k = kvm_vcpu_events {
        flags: KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_NMI_PENDING,
        ..Default::default()
    };
    k.interrupt.shadow = if e.interrupt_shadow {
        KVM_X86_SHADOW_INT_STI as u8
    } else {
        0
    };
    k.nmi.pending = e.nmi_pending as u8;
    k.nmi.masked = e.nmi_blocked as u8;
    k
}

/// Copies the interrupt shadow and NMI-pending state from KVM. `halted` is not KVM's to report:
/// without an in-kernel interrupt controller, HLT exits to us and the engine tracks it.
pub fn apply_events(e: &mut PendingEvents, k: &kvm_vcpu_events) {
    e.interrupt_shadow =
        k.interrupt.shadow & (KVM_X86_SHADOW_INT_STI | KVM_X86_SHADOW_INT_MOV_SS) as u8 != 0;
    e.nmi_pending = k.nmi.pending != 0;
    e.nmi_blocked = k.nmi.masked != 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use emulator::cpu::state::{ctl, Msrs};

    /// A state with something unusual in every field, so a swapped or dropped field shows.
    pub(crate) fn busy_state() -> CpuState {
        let mut cpu = CpuState::multiboot_entry(0x10_0000, 0x9000);
        for (i, r) in cpu.gpr.iter_mut().enumerate() {
            *r = 0x1111_0000_0000_0000 * (i as u64 % 15 + 1) + i as u64;
        }
        cpu.rip = 0x12_3456;
        cpu.rflags = 0x202 | 0x8D5;
        cpu.seg[Seg::Fs as usize].base = 0xdead_b000;
        cpu.seg[Seg::Gs as usize] = Segment {
            unusable: true,
            present: false,
            ..Segment::flat32(0, false)
        };
        cpu.seg[Seg::Es as usize].limit = 0x000F_FFFF;
        cpu.seg[Seg::Es as usize].g = false;
        cpu.gdtr = DescriptorTable {
            base: 0x8000,
            limit: 0x2F,
        };
        cpu.idtr = DescriptorTable {
            base: 0x8800,
            limit: 0x7FF,
        };
        cpu.cr2 = 0xCAFE_0000;
        cpu.cr4 = ctl::CR4_PSE | ctl::CR4_OSFXSR;
        cpu.cr8 = 3;
        cpu.efer = ctl::EFER_SCE | ctl::EFER_NXE;
        cpu.dr[..4].copy_from_slice(&[0x1000, 0x2000, 0x3000, 0x4000]);
        cpu.dr[4] = 0xFFFF_0FF0;
        cpu.dr[5] = 0x400;
        cpu.msrs = Msrs {
            star: 0x0023_0010_0000_0000,
            lstar: 0xFFFF_8000_0010_0000,
            cstar: 0xFFFF_8000_0020_0000,
            fmask: 0x4700,
            kernel_gs_base: 0xFFFF_8800_0000_0000,
            sysenter_cs: 0x10,
            sysenter_esp: 0x9_F000,
            sysenter_eip: 0x10_2000,
            pat: 0x0007_0406_0007_0406,
            tsc_aux: 7,
            apic_base: 0xFEE0_0900,
            ..Msrs::default()
        };
        cpu.fpu.fxsave[0..2].copy_from_slice(&0x027Fu16.to_le_bytes());
        cpu.fpu.fxsave[2..4].copy_from_slice(&0x3800u16.to_le_bytes());
        cpu.fpu.fxsave[4] = 0x80;
        cpu.fpu.fxsave[24..28].copy_from_slice(&0x1FA0u32.to_le_bytes());
        for i in 0..10 {
            cpu.fpu.fxsave[32 + 16 * 7 + i] = 0x40 + i as u8; // ST7
        }
        for i in 0..16 {
            cpu.fpu.fxsave[160 + 16 * 3 + i] = i as u8 * 17; // XMM3
            cpu.fpu.fxsave[160 + 16 * 15 + i] = 0xF0 | i as u8; // XMM15
        }
        cpu.events.interrupt_shadow = true;
        cpu.events.nmi_blocked = true;
        cpu
    }

    #[test]
    fn segments_map_field_by_field_both_ways() {
        let s = Segment {
            selector: 0x2B,
            base: 0xFFFF_8000_1234_0000,
            limit: 0xFFFFF,
            type_: 0x9,
            s: false,
            dpl: 3,
            present: true,
            avl: true,
            l: true,
            db: false,
            g: true,
            unusable: false,
        };
        let k = segment_to_kvm(&s);
        assert_eq!(
            (k.selector, k.type_, k.dpl, k.l, k.g, k.s),
            (0x2B, 9, 3, 1, 1, 0)
        );
        assert_eq!(k.limit, 0xFFFFF, "limits are byte-granular on both sides");
        assert_eq!(segment_from_kvm(&k), s);
    }

    #[test]
    fn whole_state_round_trips_without_a_vcpu() {
        let cpu = busy_state();
        let mut back = CpuState::reset();
        apply_regs(&mut back, &regs_to_kvm(&cpu));
        apply_sregs(&mut back, &sregs_to_kvm(&cpu));
        apply_fpu(&mut back.fpu, &fpu_to_kvm(&cpu.fpu));
        apply_msrs(&mut back, &msrs_to_kvm(&cpu, &CARRIED_MSRS));
        apply_debugregs(&mut back, &debugregs_to_kvm(&cpu));
        apply_events(&mut back.events, &events_to_kvm(&cpu.events));
        assert_eq!(back, cpu);
    }

    #[test]
    fn register_order_differs_between_kvm_and_encoding() {
        let mut cpu = CpuState::reset();
        cpu.gpr[emulator::cpu::state::reg::RBX] = 0xB;
        cpu.gpr[emulator::cpu::state::reg::RSP] = 0x5;
        let k = regs_to_kvm(&cpu);
        assert_eq!((k.rbx, k.rsp, k.rcx), (0xB, 0x5, 0));
    }

    #[test]
    fn fxsave_fields_land_in_kvm_fpu() {
        let cpu = busy_state();
        let k = fpu_to_kvm(&cpu.fpu);
        assert_eq!(
            (k.fcw, k.fsw, k.ftwx, k.mxcsr),
            (0x027F, 0x3800, 0x80, 0x1FA0)
        );
        assert_eq!(k.fpr[7][0], 0x40);
        assert_eq!(k.xmm[3][2], 34);
        assert_eq!(k.xmm[15][15], 0xFF);
    }

    #[test]
    fn apply_fpu_keeps_bytes_kvm_does_not_carry() {
        let mut f = FpuState::default();
        f.fxsave[28..32].copy_from_slice(&0xFFFFu32.to_le_bytes()); // MXCSR_MASK
        f.fxsave[500] = 0x5A;
        apply_fpu(&mut f, &kvm_fpu::default());
        assert_eq!(le32(&f.fxsave, 28), 0xFFFF);
        assert_eq!(f.fxsave[500], 0x5A);
        assert_eq!(f.fcw(), 0);
    }

    #[test]
    fn the_xsave_legacy_area_is_the_fxsave_image() {
        let cpu = busy_state();
        let mut x = kvm_xsave::default();
        x.region[XSTATE_BV_WORD] = 0b100; // AVX live: must stay set
        fpu_into_xsave(&cpu.fpu, &mut x);
        assert_eq!(x.region[6], 0x1FA0, "MXCSR at byte 24");
        assert_eq!(x.region[XSTATE_BV_WORD], 0b111);
        let mut back = FpuState::default();
        apply_xsave(&mut back, &x);
        assert_eq!(back, cpu.fpu);
    }

    #[test]
    fn unknown_msrs_are_skipped() {
        let cpu = busy_state();
        let entries = msrs_to_kvm(&cpu, &[msr::IA32_LSTAR, 0x1234, msr::IA32_PAT]);
        let idx: Vec<u32> = entries.iter().map(|e| e.index).collect();
        assert_eq!(idx, vec![msr::IA32_LSTAR, msr::IA32_PAT]);
        assert_eq!(entries[0].data, 0xFFFF_8000_0010_0000);
        let mut other = CpuState::reset();
        assert!(!set_msr_value(&mut other, 0x1234, 1));
    }
}

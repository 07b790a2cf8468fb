//! CPUID: the machine's description of itself, identical under every engine.
//! Teaches: guests discover features through CPUID, so it must list exactly what the engines implement.
//!
//! The KVM engine installs these same leaves with `KVM_SET_CPUID2`, so a guest sees one CPU model
//! whichever engine runs it.

/// Vendor string: we implement the Intel SDM's semantics (e.g. SYSRET, far-branch widths).
pub const VENDOR: &[u8; 12] = b"GenuineIntel";

/// Highest basic and extended leaves.
pub const MAX_BASIC_LEAF: u32 = 0x7;
pub const MAX_EXTENDED_LEAF: u32 = 0x8000_0008;

/// CPUID.1:EDX feature bits we implement.
pub mod edx1 {
    /// An x87 FPU on the chip (interpreter: `interp/x87`).
    pub const FPU: u32 = 1 << 0;
    /// Debugging extensions: CR4.DE, I/O breakpoints, DR4/DR5 #UD (interpreter: `interp/debug.rs`).
    pub const DE: u32 = 1 << 2;
    pub const PSE: u32 = 1 << 3;
    pub const TSC: u32 = 1 << 4;
    pub const MSR: u32 = 1 << 5;
    pub const PAE: u32 = 1 << 6;
    pub const CX8: u32 = 1 << 8;
    /// An on-chip local APIC (devices::lapic: xAPIC MMIO at IA32_APIC_BASE).
    pub const APIC: u32 = 1 << 9;
    /// SYSENTER/SYSEXIT (interpreter: `interp/sysenter.rs`).
    pub const SEP: u32 = 1 << 11;
    pub const PGE: u32 = 1 << 13;
    pub const CMOV: u32 = 1 << 15;
    /// 4 MiB pages reach 40-bit physical addresses (PDE bits 20:13).
    pub const PSE36: u32 = 1 << 17;
    /// MMX, FXSAVE/FXRSTOR, SSE and SSE2 (interpreter: `interp/simd`).
    pub const MMX: u32 = 1 << 23;
    pub const FXSR: u32 = 1 << 24;
    pub const SSE: u32 = 1 << 25;
    pub const SSE2: u32 = 1 << 26;
}

/// CPUID.1:ECX feature bits we implement.
pub mod ecx1 {
    /// CMPXCHG16B (interpreter: `alu_muldiv::cmpxchg_wide`, #GP on a misaligned operand).
    pub const CX16: u32 = 1 << 13;
    /// Process-context identifiers (CR4.PCIDE).
    pub const PCID: u32 = 1 << 17;
    /// POPCNT (interpreter: `alu_shift::bits`).
    pub const POPCNT: u32 = 1 << 23;
    /// x2APIC mode: the local APIC as MSRs 0x800-0x8FF (IA32_APIC_BASE bit 10).
    pub const X2APIC: u32 = 1 << 21;
    /// The APIC timer's TSC-deadline mode (IA32_TSC_DEADLINE, MSR 0x6E0).
    pub const TSC_DEADLINE: u32 = 1 << 24;
}

/// CPUID.7.0:EBX feature bits we implement.
pub mod ebx7 {
    pub const SMEP: u32 = 1 << 7;
    pub const INVPCID: u32 = 1 << 10;
    pub const SMAP: u32 = 1 << 20;
}

/// CPUID.80000001h:EDX feature bits we implement.
/// CPUID.7.0:ECX feature bits we implement.
pub mod ecx7 {
    /// RDPID (reads IA32_TSC_AUX).
    pub const RDPID: u32 = 1 << 22;
}

/// CPUID.80000001h:ECX feature bits we implement.
pub mod ecx81 {
    /// LAHF/SAHF in 64-bit mode (interpreter: `alu.rs`; they work in every mode).
    pub const LAHF_LM: u32 = 1 << 0;
    /// LZCNT ("ABM" on AMD). TZCNT is BMI1, which we do not advertise: without it the F3 0F BC
    /// encoding executes as BSF, as on real CPUs without BMI1.
    pub const LZCNT: u32 = 1 << 5;
}

pub mod edx81 {
    pub const SYSCALL: u32 = 1 << 11;
    pub const NX: u32 = 1 << 20;
    /// 1 GiB pages (PS in a 4-level PDPTE).
    pub const PAGE1GB: u32 = 1 << 26;
    /// RDTSCP (EDX:EAX = TSC, ECX = IA32_TSC_AUX).
    pub const RDTSCP: u32 = 1 << 27;
    pub const LM: u32 = 1 << 29;
}

/// The brand string shown by guests (48 bytes, leaves 0x80000002–4).
pub const BRAND: &[u8; 48] = b"vmscope virtual CPU (teaching model)\0\0\0\0\0\0\0\0\0\0\0\0";

/// CPUID as this machine answers it: with paravirtualization on (`pv`), leaf 1 says "hypervisor
/// present" (ECX bit 31) and the hypervisor leaves from 0x40000000 describe KVM's and vmscope's
/// interfaces (`crate::pv::abi`); off, the CPU looks like bare hardware.
pub fn cpuid_with(pv: bool, leaf: u32, subleaf: u32) -> [u32; 4] {
    if pv {
        if let Some(values) = crate::pv::abi::cpuid_leaf(leaf) {
            return values;
        }
        if leaf == 1 {
            let mut values = cpuid(1, subleaf);
            values[2] |= crate::pv::abi::CPUID_HYPERVISOR_BIT;
            return values;
        }
    }
    cpuid(leaf, subleaf)
}

/// Returns (EAX, EBX, ECX, EDX) for a CPUID leaf/subleaf of the bare CPU (no hypervisor leaves).
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    match leaf {
        0 => [
            MAX_BASIC_LEAF,
            word(&VENDOR[0..4]),
            word(&VENDOR[8..12]),
            word(&VENDOR[4..8]),
        ],
        // Family 6, model 0x0F ("Core 2"-era), stepping 1; one logical CPU, APIC ID 0.
        1 => [
            0x0000_06F1,
            0x0001_0800,
            ecx1::CX16 | ecx1::PCID | ecx1::POPCNT | ecx1::X2APIC | ecx1::TSC_DEADLINE,
            edx1::DE
                | edx1::PSE
                | edx1::TSC
                | edx1::MSR
                | edx1::PAE
                | edx1::CX8
                | edx1::APIC
                | edx1::SEP
                | edx1::PGE
                | edx1::CMOV
                | edx1::PSE36
                | edx1::FPU
                | edx1::MMX
                | edx1::FXSR
                | edx1::SSE
                | edx1::SSE2,
        ],
        // Leaves 2-6 (caches, MONITOR, power) describe nothing here.
        2..=6 => [0, 0, 0, 0],
        // Structured extended features, subleaf 0 (the only one): the paging protections.
        7 if subleaf == 0 => [0, ebx7::SMEP | ebx7::INVPCID | ebx7::SMAP, ecx7::RDPID, 0],
        7 => [0, 0, 0, 0],
        0x8000_0000 => [MAX_EXTENDED_LEAF, 0, 0, 0],
        0x8000_0001 => [
            0,
            0,
            ecx81::LAHF_LM | ecx81::LZCNT,
            edx81::SYSCALL | edx81::NX | edx81::PAGE1GB | edx81::RDTSCP | edx81::LM,
        ],
        0x8000_0002..=0x8000_0004 => {
            let i = (leaf - 0x8000_0002) as usize * 16;
            let b = &BRAND[i..i + 16];
            [word(&b[0..]), word(&b[4..]), word(&b[8..]), word(&b[12..])]
        }
        // 40-bit physical, 48-bit linear addresses.
        0x8000_0008 => [0x0000_3028, 0, 0, 0],
        // Out-of-range leaves: Intel CPUs return the highest basic leaf's values.
        l if l > MAX_BASIC_LEAF && l < 0x8000_0000 => cpuid(MAX_BASIC_LEAF, 0),
        _ => [0, 0, 0, 0],
    }
}

/// Every leaf we define, for engines that install a CPUID table (KVM).
pub fn all_leaves(pv: bool) -> Vec<(u32, [u32; 4])> {
    let hypervisor = [
        crate::pv::abi::CPUID_KVM,
        crate::pv::abi::CPUID_KVM_FEATURES,
        crate::pv::abi::CPUID_VMSCOPE,
        crate::pv::abi::CPUID_VMSCOPE_INFO,
    ];
    (0..=MAX_BASIC_LEAF)
        .chain(0x8000_0000..=MAX_EXTENDED_LEAF)
        .chain(hypervisor.into_iter().filter(|_| pv))
        .map(|l| (l, cpuid_with(pv, l, 0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_string_reads_in_ebx_edx_ecx_order() {
        let [_, b, c, d] = cpuid(0, 0);
        let mut s = Vec::new();
        for r in [b, d, c] {
            s.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&s, VENDOR);
    }

    #[test]
    fn paging_protections_are_in_leaf_7_subleaf_0_only() {
        assert!(cpuid(0, 0)[0] >= 7);
        let ebx = cpuid(7, 0)[1];
        assert_eq!(ebx & (ebx7::SMEP | ebx7::SMAP), ebx7::SMEP | ebx7::SMAP);
        assert_eq!(cpuid(7, 1), [0; 4]);
    }

    #[test]
    fn long_mode_is_advertised() {
        assert_ne!(cpuid(0x8000_0001, 0)[3] & edx81::LM, 0);
    }
}

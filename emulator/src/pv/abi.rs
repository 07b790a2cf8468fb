//! The paravirtual ABI's numbers: CPUID leaves, hypercall numbers, batch requests, errors.
//! Teaches: an interface between guest and hypervisor is a table of agreed numbers, nothing more.
//!
//! `guests/kernel/pv_abi.inc` is the guest's copy; a test reads it and checks both agree.

/// The I/O port of the hypercall door (also reported in CPUID 0x40000101 EBX).
pub const HYPERCALL_PORT: u16 = 0x5650;
/// The ABI version HC_VERSION returns (CPUID 0x40000101 ECX).
pub const ABI_VERSION: u32 = 1;
/// The most requests one HC_MMU_UPDATE may carry (CPUID 0x40000101 EDX).
pub const MMU_BATCH_MAX: u64 = 512;
/// The longest string one HC_CONSOLE_WRITE may carry.
pub const CONSOLE_MAX: u64 = 4096;

/// CPUID leaves.
pub const CPUID_KVM: u32 = 0x4000_0000;
pub const CPUID_KVM_FEATURES: u32 = 0x4000_0001;
pub const CPUID_VMSCOPE: u32 = 0x4000_0100;
pub const CPUID_VMSCOPE_INFO: u32 = 0x4000_0101;
/// CPUID.1:ECX bit 31: "running under a hypervisor".
pub const CPUID_HYPERVISOR_BIT: u32 = 1 << 31;
pub const KVM_SIGNATURE: &[u8; 12] = b"KVMKVMKVM\0\0\0";
pub const VMSCOPE_SIGNATURE: &[u8; 12] = b"vmscope PV  ";
/// KVM feature bits (CPUID 0x40000001 EAX): the kvmclock MSRs at 0x4b564d00/01, and that the
/// stable bit in its flags may be trusted.
pub const KVM_FEATURE_CLOCKSOURCE2: u32 = 1 << 3;
pub const KVM_FEATURE_CLOCKSOURCE_STABLE_BIT: u32 = 1 << 24;

/// vmscope feature bits (CPUID 0x40000101 EAX).
pub const F_HYPERCALL: u32 = 1 << 0;
pub const F_MMU_UPDATE: u32 = 1 << 1;
pub const F_CONSOLE: u32 = 1 << 2;

/// Hypercall numbers (RAX).
pub const HC_VERSION: u64 = 0;
pub const HC_MMU_UPDATE: u64 = 1;
pub const HC_CONSOLE_WRITE: u64 = 2;

/// HC_MMU_UPDATE request ops (the low 3 bits of a request's target).
pub const MMU_OP_WRITE_PTE: u64 = 0;
pub const MMU_OP_INVLPG: u64 = 1;
pub const MMU_OP_FLUSH: u64 = 2;
pub const MMU_REQUEST_SIZE: u64 = 16;

/// Errors, returned negated in EAX (the Linux errno values, so they are easy to recognise).
pub const E2BIG: i32 = 7;
pub const EFAULT: i32 = 14;
pub const EINVAL: i32 = 22;
pub const ENOSYS: i32 = 38;

/// The hypervisor leaves CPUID shows with PV on (`None`: a leaf outside both ranges).
pub fn cpuid_leaf(leaf: u32) -> Option<[u32; 4]> {
    let sig = |s: &[u8; 12]| {
        let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
        (w(0), w(4), w(8))
    };
    Some(match leaf {
        CPUID_KVM => {
            let (b, c, d) = sig(KVM_SIGNATURE);
            [CPUID_KVM_FEATURES, b, c, d]
        }
        CPUID_KVM_FEATURES => [
            KVM_FEATURE_CLOCKSOURCE2 | KVM_FEATURE_CLOCKSOURCE_STABLE_BIT,
            0,
            0,
            0,
        ],
        CPUID_VMSCOPE => {
            let (b, c, d) = sig(VMSCOPE_SIGNATURE);
            [CPUID_VMSCOPE_INFO, b, c, d]
        }
        CPUID_VMSCOPE_INFO => [
            F_HYPERCALL | F_MMU_UPDATE | F_CONSOLE,
            HYPERCALL_PORT as u32,
            ABI_VERSION,
            MMU_BATCH_MAX as u32,
        ],
        l if (0x4000_0000..=0x4000_01FF).contains(&l) => [0, 0, 0, 0],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guest's copy of the contract must say what this file says.
    #[test]
    fn the_guest_header_agrees_with_these_numbers() {
        let inc = include_str!("../../../guests/kernel/pv_abi.inc");
        let value = |name: &str| -> i64 {
            let line = inc
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(&format!("{name},")))
                .unwrap_or_else(|| panic!("{name} missing from pv_abi.inc"));
            let v = line
                .split(',')
                .nth(1)
                .unwrap()
                .split('#')
                .next()
                .unwrap()
                .trim();
            if let Some(shift) = v.strip_prefix("1 << ") {
                1i64 << shift.trim().parse::<u32>().unwrap()
            } else if let Some(hex) = v.strip_prefix("0x") {
                i64::from_str_radix(hex, 16).unwrap()
            } else {
                v.parse().unwrap()
            }
        };
        let word = |s: &[u8; 12], i: usize| {
            u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]) as i64
        };
        let expect: &[(&str, i64)] = &[
            ("PV_CPUID_KVM", CPUID_KVM as i64),
            ("PV_CPUID_KVM_FEATURES", CPUID_KVM_FEATURES as i64),
            ("PV_CPUID_VMSCOPE", CPUID_VMSCOPE as i64),
            ("PV_CPUID_VMSCOPE_INFO", CPUID_VMSCOPE_INFO as i64),
            ("PV_KVM_SIG_EBX", word(KVM_SIGNATURE, 0)),
            ("PV_KVM_SIG_ECX", word(KVM_SIGNATURE, 4)),
            ("PV_KVM_SIG_EDX", word(KVM_SIGNATURE, 8)),
            ("PV_VMSCOPE_SIG_EBX", word(VMSCOPE_SIGNATURE, 0)),
            ("PV_VMSCOPE_SIG_ECX", word(VMSCOPE_SIGNATURE, 4)),
            ("PV_VMSCOPE_SIG_EDX", word(VMSCOPE_SIGNATURE, 8)),
            (
                "PV_KVM_FEATURE_CLOCKSOURCE2",
                KVM_FEATURE_CLOCKSOURCE2 as i64,
            ),
            (
                "PV_KVM_FEATURE_STABLE_BIT",
                KVM_FEATURE_CLOCKSOURCE_STABLE_BIT as i64,
            ),
            ("PV_F_HYPERCALL", F_HYPERCALL as i64),
            ("PV_F_MMU_UPDATE", F_MMU_UPDATE as i64),
            ("PV_F_CONSOLE", F_CONSOLE as i64),
            ("HC_VERSION", HC_VERSION as i64),
            ("HC_MMU_UPDATE", HC_MMU_UPDATE as i64),
            ("HC_CONSOLE_WRITE", HC_CONSOLE_WRITE as i64),
            ("MMU_OP_WRITE_PTE", MMU_OP_WRITE_PTE as i64),
            ("MMU_OP_INVLPG", MMU_OP_INVLPG as i64),
            ("MMU_OP_FLUSH", MMU_OP_FLUSH as i64),
            ("MMU_REQUEST_SIZE", MMU_REQUEST_SIZE as i64),
            ("MMU_BATCH_MAX", MMU_BATCH_MAX as i64),
            ("PV_E2BIG", -(E2BIG as i64)),
            ("PV_EFAULT", -(EFAULT as i64)),
            ("PV_EINVAL", -(EINVAL as i64)),
            ("PV_ENOSYS", -(ENOSYS as i64)),
            (
                "MSR_KVM_WALL_CLOCK_NEW",
                super::super::kvmclock::MSR_WALL_CLOCK as i64,
            ),
            (
                "MSR_KVM_SYSTEM_TIME_NEW",
                super::super::kvmclock::MSR_SYSTEM_TIME as i64,
            ),
        ];
        for (name, v) in expect {
            assert_eq!(value(name), *v, "{name}");
        }
    }

    #[test]
    fn hypervisor_leaves_outside_the_two_interfaces_are_zero() {
        assert_eq!(cpuid_leaf(0x4000_0002), Some([0; 4]));
        assert_eq!(cpuid_leaf(0x4000_0102), Some([0; 4]));
        assert_eq!(cpuid_leaf(0x3FFF_FFFF), None);
        assert_eq!(cpuid_leaf(CPUID_VMSCOPE_INFO).unwrap()[1], 0x5650);
    }
}

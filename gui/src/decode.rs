//! Control registers, flags and segment descriptor caches spelled out bit by bit.
//! Teaches: CR0, CR4, EFER and RFLAGS are bundles of switches; the hidden part of a segment
//! register (base, limit, attributes) is what the CPU actually uses.

use emulator::cpu::{ctl, flags, Segment};

/// One named bit of a register: (name, mask, what it does).
pub type Bit = (&'static str, u64, &'static str);

pub const CR0_BITS: &[Bit] = &[
    ("PE", ctl::CR0_PE, "protection enable: protected mode"),
    ("MP", ctl::CR0_MP, "monitor coprocessor (WAIT and TS)"),
    ("EM", ctl::CR0_EM, "emulate x87: FPU instructions raise #NM"),
    ("TS", ctl::CR0_TS, "task switched: next FPU use raises #NM"),
    ("ET", ctl::CR0_ET, "extension type (always 1)"),
    ("NE", ctl::CR0_NE, "native FPU error reporting (#MF)"),
    (
        "WP",
        ctl::CR0_WP,
        "write protect: ring 0 honours read-only pages",
    ),
    ("AM", ctl::CR0_AM, "alignment mask (with RFLAGS.AC)"),
    ("NW", ctl::CR0_NW, "not write-through"),
    ("CD", ctl::CR0_CD, "cache disable"),
    ("PG", ctl::CR0_PG, "paging enable"),
];

pub const CR4_BITS: &[Bit] = &[
    ("VME", ctl::CR4_VME, "virtual-8086 mode extensions"),
    ("PVI", ctl::CR4_PVI, "protected-mode virtual interrupts"),
    ("TSD", ctl::CR4_TSD, "RDTSC only in ring 0"),
    ("DE", ctl::CR4_DE, "debugging extensions"),
    ("PSE", ctl::CR4_PSE, "4 MiB pages in 32-bit paging"),
    (
        "PAE",
        ctl::CR4_PAE,
        "physical address extension (64-bit entries)",
    ),
    ("MCE", ctl::CR4_MCE, "machine-check exceptions"),
    ("PGE", ctl::CR4_PGE, "global pages survive CR3 writes"),
    ("PCE", ctl::CR4_PCE, "RDPMC in any ring"),
    ("OSFXSR", ctl::CR4_OSFXSR, "OS supports FXSAVE and SSE"),
    (
        "OSXMMEXCPT",
        ctl::CR4_OSXMMEXCPT,
        "OS handles SIMD exceptions (#XM)",
    ),
    (
        "PCIDE",
        ctl::CR4_PCIDE,
        "process-context identifiers in CR3",
    ),
    ("SMEP", ctl::CR4_SMEP, "ring 0 may not execute user pages"),
    (
        "SMAP",
        ctl::CR4_SMAP,
        "ring 0 may not touch user pages (unless AC)",
    ),
];

pub const EFER_BITS: &[Bit] = &[
    ("SCE", ctl::EFER_SCE, "SYSCALL/SYSRET enabled"),
    (
        "LME",
        ctl::EFER_LME,
        "long mode enable (takes effect with CR0.PG)",
    ),
    ("LMA", ctl::EFER_LMA, "long mode active"),
    ("NXE", ctl::EFER_NXE, "no-execute bit in page tables"),
];

pub const RFLAGS_BITS: &[Bit] = &[
    ("CF", flags::CF, "carry"),
    ("PF", flags::PF, "parity of the low byte"),
    ("AF", flags::AF, "adjust (BCD carry from bit 3)"),
    ("ZF", flags::ZF, "zero"),
    ("SF", flags::SF, "sign"),
    ("TF", flags::TF, "trap: single-step"),
    ("IF", flags::IF, "interrupts enabled"),
    ("DF", flags::DF, "direction: string ops go down"),
    ("OF", flags::OF, "signed overflow"),
    ("NT", flags::NT, "nested task"),
    (
        "RF",
        flags::RF,
        "resume: suppress one instruction breakpoint",
    ),
    ("VM", flags::VM, "virtual-8086 mode"),
    ("AC", flags::AC, "alignment check / SMAP override"),
    ("VIF", flags::VIF, "virtual interrupt flag"),
    ("VIP", flags::VIP, "virtual interrupt pending"),
    ("ID", flags::ID, "CPUID available"),
];

/// The names of the bits set in `value`, e.g. "PE ET PG".
pub fn set_bits(value: u64, bits: &[Bit]) -> String {
    let names: Vec<&str> = bits
        .iter()
        .filter(|b| value & b.1 != 0)
        .map(|b| b.0)
        .collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(" ")
    }
}

/// A descriptor cache in words: "code, execute/read, DPL 0, 64-bit".
pub fn describe_segment(s: &Segment) -> String {
    if !s.present {
        return "not present".into();
    }
    if s.unusable {
        return "unusable (null selector)".into();
    }
    let mut parts = Vec::new();
    if s.s {
        if s.is_code() {
            parts.push(if s.type_ & 2 != 0 {
                "code, execute/read"
            } else {
                "code, execute-only"
            });
            if s.type_ & 4 != 0 {
                parts.push("conforming");
            }
        } else {
            parts.push(if s.type_ & 2 != 0 {
                "data, read/write"
            } else {
                "data, read-only"
            });
            if s.type_ & 4 != 0 {
                parts.push("expand-down");
            }
        }
    } else {
        parts.push(match s.type_ {
            2 => "LDT",
            1 | 3 => "16-bit TSS",
            9 => "TSS (available)",
            11 => "TSS (busy)",
            _ => "system",
        });
    }
    let mut out = parts.join(", ");
    out.push_str(&format!(", DPL {}", s.dpl));
    if s.is_code() {
        out.push_str(if s.l {
            ", 64-bit"
        } else if s.db {
            ", 32-bit"
        } else {
            ", 16-bit"
        });
    } else if s.s && s.db {
        out.push_str(", big");
    }
    if s.g {
        out.push_str(", 4K granular");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cr0_of_a_multiboot_entry_names_protection_and_no_paging() {
        let cpu = emulator::cpu::CpuState::multiboot_entry(0x100000, 0x9000);
        assert_eq!(set_bits(cpu.cr0, CR0_BITS), "PE ET");
        assert_eq!(
            describe_segment(cpu.cs()),
            "code, execute/read, DPL 0, 32-bit, 4K granular"
        );
        assert_eq!(set_bits(0, EFER_BITS), "-");
        let long = ctl::EFER_LME | ctl::EFER_LMA | ctl::EFER_SCE;
        assert_eq!(set_bits(long, EFER_BITS), "SCE LME LMA");
    }
}

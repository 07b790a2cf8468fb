//! The structured generator's system pieces: interrupts and faults, port I/O and MMIO, ring-0 instructions, x87.
//! Teaches: the instructions that leave the CPU core — to the interrupt table, the devices, the control registers.

use super::gen_ops::Gen;
use super::modes::sel;
use crate::conformance::native_forms::interesting;

/// Ports a ring-0 case pokes: POST, the UART (output!), debugcon, the null device, CMOS,
/// the PIT and speaker, the PICs, the keyboard controller, PCI configuration, fw_cfg, the ACPI
/// PM timer, isa-debug-exit, the ATA channel.
const PORTS: [u16; 24] = [
    0x80, 0x3F8, 0x3F9, 0x3FB, 0x3FD, 0xE9, 0x700, 0x70, 0x71, 0x40, 0x43, 0x61, 0x20, 0x21, 0xA1,
    0x64, 0x60, 0xCF8, 0xCFC, 0x510, 0x608, 0xF4, 0x1F7, 0x1F0,
];

/// MMIO a ring-0 case touches in 32- and 64-bit code: local APIC (ID, version, TPR, SVR, timer
/// LVT, initial count), the IOAPIC window, the null device's page.
const MMIO: [u64; 8] = [
    0xFEE0_0020,
    0xFEE0_0030,
    0xFEE0_0080,
    0xFEE0_00F0,
    0xFEE0_0320,
    0xFEE0_0380,
    0xFEC0_0000,
    0xC000_0000,
];

const MSRS: [u32; 14] = [
    0x10,
    0x1B,
    0x174,
    0x175,
    0x176,
    0x277,
    0xC000_0080,
    0xC000_0081,
    0xC000_0082,
    0xC000_0084,
    0xC000_0100,
    0xC000_0101,
    0xC000_0103,
    0x3A,
];

impl Gen<'_> {
    /// INT n (software interrupts return; 0–31 end the case), INT3, INTO, INT1, UD2, #DE,
    /// a segment load that may fault, TF (a single-step trap), HLT.
    pub(super) fn interrupt_or_fault(&mut self) {
        let b = match self.rng.below(10) {
            0 | 1 => {
                let n = if self.rng.below(4) == 0 {
                    self.rng.below(32)
                } else {
                    32 + self.rng.below(224)
                };
                vec![0xCD, n as u8]
            }
            2 => vec![self.pick(&[0xCC, 0xCE, 0xF1])],
            3 => vec![0x0F, 0x0B],
            4 => vec![0x31, 0xC9, 0xF7, 0xF1], // xor cx, cx; div cx
            5 => {
                let s = if self.env.ring3() {
                    self.rng.below(0x40)
                } else {
                    self.pick(&sel::ALL) as u64 | self.rng.below(4)
                };
                let sreg = self.pick(&[0xD8u8, 0xC0, 0xE0, 0xE8, 0xD0]);
                [self.mov_imm(0, s), vec![0x8E, sreg]].concat()
            }
            6 => {
                // pushf; or word [sp], 0x100 through AX; popf: TF traps after the next instruction.
                let or = if self.env.bits() == 16 {
                    vec![0x0D, 0x00, 0x01]
                } else {
                    vec![0x66, 0x0D, 0x00, 0x01]
                };
                [vec![0x9C, 0x58], or, vec![0x50, 0x9D]].concat()
            }
            7 if self.env.bits() == 64 => {
                // A non-canonical address: #GP(0).
                vec![0x48, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x8A, 0x00]
            }
            8 if self.env.ring3() => {
                // Alignment checking: RFLAGS.AC with CR0.AM, then a misaligned load (#AC).
                vec![0x9C, 0x81, 0x0C, 0x24, 0, 0, 4, 0, 0x9D, 0x8B, 0x43, 0x01]
            }
            _ => vec![0xF4],
        };
        self.push(b);
    }

    /// Port I/O (and in ring 0, MMIO to the APIC, IOAPIC and null device).
    pub(super) fn io(&mut self) {
        if self.env.ring3() {
            let b = self.pick(&[[0xE6, 0x80], [0xE4, 0x80], [0xE6, 0x70], [0xE5, 0x80]]);
            self.push(b.to_vec());
            return;
        }
        if self.env.bits() > 16 && self.rng.below(3) == 0 {
            let at = self.pick(&MMIO);
            let mut b = vec![0xB9];
            b.extend_from_slice(&(at as u32).to_le_bytes());
            if self.rng.below(2) == 0 {
                b.extend_from_slice(&[0x8B, 0x01]); // mov eax, [ecx]
            } else {
                b.extend_from_slice(&[0x89, 0x01]); // mov [ecx], eax
            }
            self.push(b);
            return;
        }
        let port = self.pick(&PORTS);
        let value = self.rng.next_u64() as u8;
        let mut b = self.mov_imm(2, port as u64);
        b.extend_from_slice(&[0xB0, value]);
        b.extend_from_slice(&self.pick(&[
            [0xEE, 0x90],
            [0xEC, 0x90],
            [0xED, 0x90],
            [0xEF, 0x90],
            [0x66, 0xEF],
            [0xF3, 0x6E],
        ]));
        self.push(b);
    }

    /// Ring-0 instructions of the mode: control registers, descriptor tables, MSRs, CPUID,
    /// the TSC, caches and TLB, interrupt flag (in ring 3 most of them are a #GP).
    pub(super) fn system(&mut self) {
        let long = self.env.bits() == 64;
        let b = match self.rng.below(9) {
            0 | 1 => {
                // Flip one bit of CR0 (MP EM TS NE WP AM CD) or CR4 (TSD DE PSE PGE PCE OSFXSR
                // OSXMMEXCPT UMIP FSGSBASE SMEP): mov eax, crN; xor eax, bit; mov crN, eax.
                let (cr, bits): (u8, &[u32]) = if self.rng.below(2) == 0 {
                    (
                        0xC0,
                        &[0x2, 0x4, 0x8, 0x20, 0x1_0000, 0x4_0000, 0x4000_0000],
                    )
                } else {
                    (
                        0xE0,
                        &[
                            0x4, 0x8, 0x10, 0x80, 0x100, 0x200, 0x400, 0x800, 0x1_0000, 0x10_0000,
                        ],
                    )
                };
                let bit = self.pick(bits);
                let mut b = vec![0x0F, 0x20, cr];
                if self.env.bits() == 16 {
                    b.push(0x66);
                }
                b.push(0x35);
                b.extend_from_slice(&bit.to_le_bytes());
                b.extend_from_slice(&[0x0F, 0x22, cr]);
                b
            }
            2 => vec![0x0F, 0x20, 0xD8, 0x0F, 0x22, 0xD8], // reload CR3
            3 => {
                let msr = self.pick(&MSRS);
                let mut b = self.mov_imm32(1, msr);
                if self.rng.below(2) == 0 {
                    b.extend_from_slice(&[0x0F, 0x32]);
                } else {
                    let v = interesting(self.rng) as u32 & 0xFFFF_F000;
                    b.extend_from_slice(&self.mov_imm32(0, v));
                    b.extend_from_slice(&[0x31, 0xD2, 0x0F, 0x30]);
                }
                b
            }
            4 => {
                let leaf = self.pick(&[
                    0u32,
                    1,
                    2,
                    4,
                    6,
                    7,
                    0xB,
                    0xD,
                    0x8000_0000,
                    0x8000_0001,
                    0x8000_0008,
                    0x4000_0000,
                    0x1234,
                ]);
                [self.mov_imm32(0, leaf), vec![0x31, 0xC9, 0x0F, 0xA2]].concat()
            }
            5 => self.pick(&[
                vec![0x0F, 0x31],
                vec![0x0F, 0x01, 0xF9],
                vec![0x0F, 0x09],
                vec![0x0F, 0x06],
                vec![0xFA],
                vec![0xFB, 0x90],
                vec![0x0F, 0x01, 0xD0],
                vec![0x0F, 0x05],
                vec![0x0F, 0x34],
                vec![0x0F, 0x07],
                vec![0x0F, 0x35],
            ]),
            6 => {
                // invlpg / sgdt / sidt / lgdt [a pseudo-descriptor of the machine] / smsw / str.
                let mut b = Vec::new();
                let ptr = self.pick(&[
                    super::modes::PTR_GDT,
                    super::modes::PTR_IDT32,
                    super::modes::PTR_IDT64,
                ]);
                let reg = self.pick(&[0x38u8, 0x00, 0x08, 0x10, 0x18]);
                if self.env.bits() == 16 {
                    b.extend_from_slice(&[0x36, 0x0F, 0x01, reg | 6, ptr as u8, (ptr >> 8) as u8]);
                } else if long {
                    b.extend_from_slice(&[0x0F, 0x01, reg | 4, 0x25]);
                    b.extend_from_slice(&(ptr as u32).to_le_bytes());
                } else {
                    b.extend_from_slice(&[0x0F, 0x01, reg | 5]);
                    b.extend_from_slice(&(ptr as u32).to_le_bytes());
                }
                b
            }
            7 => self.pick(&[
                vec![0x0F, 0x01, 0xE0],
                vec![0x0F, 0x00, 0xC8],
                vec![0x0F, 0x00, 0xC0],
                vec![0x0F, 0x01, 0xF8],
                vec![0x0F, 0x00, 0xD0],
            ]),
            _ => vec![0x0F, 0x20, 0xD0], // mov eax, cr2
        };
        self.push(b);
    }

    /// x87 work (the FPU state travels in `CpuState::fpu`): an interesting value loaded from
    /// memory, a register-form x87 instruction (any of D8–DF with a register ModRM), or one of
    /// a few fixed sequences.
    pub(super) fn x87(&mut self) {
        match self.rng.below(3) {
            0 => {
                if let Some(b) = super::gen_forms::x87_load(self.rng, &self.env) {
                    self.push(b);
                }
                return;
            }
            1 => {
                let b = vec![
                    0xD8 + self.rng.below(8) as u8,
                    0xC0 + self.rng.below(64) as u8,
                ];
                self.push(b);
                return;
            }
            _ => {}
        }
        let b = self.pick(&[
            vec![0xDB, 0xE3, 0xD9, 0xE8, 0xD9, 0xEE, 0xDE, 0xC1, 0xDF, 0xE0],
            vec![0xD9, 0xEB, 0xD9, 0xE8, 0xDE, 0xF9, 0xD9, 0xFA],
            vec![0xD9, 0xE8, 0xD9, 0xE0, 0xD9, 0xE1, 0xDD, 0xD8],
            vec![0x9B, 0xDB, 0xE2, 0xD9, 0xC9],
        ]);
        self.push(b);
    }
}

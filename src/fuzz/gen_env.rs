//! Where generated code is running — real, 16-bit, 32-bit, 64-bit, compatibility mode, ring 3 — and the code that moves between them.
//! Teaches: a mode switch is a few instructions (CR0.PE, EFER.LME, CR0.PG, a far jump) plus the segments and tables the new mode reads.
//!
//! The generator keeps an [`Env`] while it emits pieces: after a mode-switch sequence the pieces
//! that follow are made for the new mode (its bitness, segment bases, which selector is code).

use super::gen::{Item, RefForm};
use super::modes::{self, sel, CODE, DATA, NOT_PRESENT, NO_EXEC, READ_ONLY, STACK_TOP};
use super::Mode;
use crate::conformance::native_machine as native;
use iced_x86::Register;

/// The mode the next generated piece runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Env {
    Real,
    Pm16,
    Pm32,
    Long64,
    /// Compatibility mode of the ring-0 long-mode machine.
    Compat32,
    /// Ring 3, 64-bit and compatibility mode (the native machine).
    User64,
    User32,
}

impl Env {
    pub fn initial(mode: Mode) -> Env {
        match mode {
            Mode::Real => Env::Real,
            Mode::Pm16 => Env::Pm16,
            Mode::Pm32 => Env::Pm32,
            Mode::Long => Env::Long64,
            Mode::Ring3 => Env::User64,
        }
    }

    pub fn bits(&self) -> u32 {
        match self {
            Env::Real | Env::Pm16 => 16,
            Env::Pm32 | Env::Compat32 | Env::User32 => 32,
            Env::Long64 | Env::User64 => 64,
        }
    }

    fn sixteen(&self) -> bool {
        self.bits() == 16
    }

    pub fn ring3(&self) -> bool {
        matches!(self, Env::User64 | Env::User32)
    }

    /// CS's base: where offset 0 of the code segment is.
    pub fn cs_base(&self) -> u64 {
        if self.sixteen() {
            CODE
        } else {
            0
        }
    }

    /// The base of DS (and FS, GS) the mode's set-up loads.
    pub fn ds_base(&self) -> u64 {
        if self.sixteen() {
            DATA
        } else {
            0
        }
    }

    pub fn ss_base(&self) -> u64 {
        0
    }

    /// The linear address of the data area.
    pub fn data(&self) -> u64 {
        if self.ring3() {
            native::DATA
        } else {
            DATA
        }
    }

    pub fn code_start(&self) -> u64 {
        if self.ring3() {
            native::CODE
        } else {
            CODE
        }
    }

    pub fn stack_top(&self) -> u64 {
        if self.ring3() {
            native::STACK_TOP
        } else {
            STACK_TOP
        }
    }

    /// How code bytes are reached for writing: the linear start and the segment override
    /// (ES, the writable alias of the code, in 16-bit modes).
    pub fn code_alias(&self) -> (u64, Register) {
        if self.sixteen() {
            (CODE, Register::ES)
        } else {
            (self.code_start(), Register::None)
        }
    }

    pub fn code_alias_base(&self) -> u64 {
        if self.sixteen() {
            CODE
        } else {
            0
        }
    }

    /// Pages whose accesses fault.
    pub fn fault_pages(&self) -> &'static [u64] {
        match self {
            Env::Long64 | Env::Compat32 => &[NOT_PRESENT, READ_ONLY, NO_EXEC],
            Env::User64 | Env::User32 => &[native::UNMAPPED, native::READONLY, 0x1000],
            _ => &[],
        }
    }

    /// The selector (or real-mode segment) of this mode's code and its base, for far transfers
    /// that stay in the mode.
    pub fn code_selector(&self) -> (u16, u64) {
        match self {
            Env::Real => ((CODE >> 4) as u16, CODE),
            Env::Pm16 => (sel::CODE16, CODE),
            Env::Pm32 | Env::Compat32 => (sel::CODE32, 0),
            Env::Long64 => (sel::CODE64, 0),
            Env::User64 => (native::USER_CS64, 0),
            Env::User32 => (native::USER_CS32, 0),
        }
    }

    /// A far jump (or call) to piece `to` through `selector` into a segment based at `base`.
    pub fn far_to(
        &self,
        to: usize,
        call: bool,
        selector: u16,
        base: u64,
        target_bits: u32,
    ) -> Item {
        let form = if self.bits() == 64 {
            // No direct far JMP in 64-bit mode: FF /5 (FF /3) with an m16:32 operand at
            // [rip+0], the pointer right behind the instruction.
            let op = if call { 0x1D } else { 0x2D };
            RefForm::Far {
                head: vec![0xFF, op, 0, 0, 0, 0],
                width: 4,
                base,
                selector,
            }
        } else {
            let op = if call { 0x9A } else { 0xEA };
            // The offset is as wide as the operand size; 0x66 picks the other one.
            let width = if target_bits == 16 { 2 } else { 4 };
            let default = if self.bits() == 16 { 2 } else { 4 };
            let mut head = Vec::new();
            if width != default {
                head.push(0x66);
            }
            head.push(op);
            RefForm::Far {
                head,
                width,
                base,
                selector,
            }
        };
        Item::Ref { to, delta: 0, form }
    }

    /// The mode-switch sequences that start in this mode: (pieces before the far jump, the
    /// far jump's selector, target base and target mode, pieces after it in the new mode).
    pub fn switches(&self) -> Vec<Switch> {
        let lidt16 = |ptr: u64| vec![0x36, 0x0F, 0x01, 0x1E, ptr as u8, (ptr >> 8) as u8];
        let pe_on = vec![0x0F, 0x20, 0xC0, 0x0C, 0x01, 0x0F, 0x22, 0xC0];
        let flat32 = vec![
            0x66, 0xB8, 0x10, 0x00, 0x8E, 0xD8, 0x8E, 0xC0, 0x8E, 0xD0, 0x8E, 0xE0, 0x8E, 0xE8,
            0xBC, 0x00, 0xA0, 0x00, 0x00,
        ];
        let seg16 = vec![
            0xB8, 0x38, 0x00, 0x8E, 0xD8, 0xB8, 0x40, 0x00, 0x8E, 0xC0, 0xB8, 0x20, 0x00, 0x8E,
            0xD0,
        ];
        let sw = |before: Vec<Vec<u8>>, selector, base, to: Env, after: Vec<Vec<u8>>| Switch {
            before,
            selector,
            base,
            to,
            after,
        };
        let abs32 = |v: u64| (v as u32).to_le_bytes();
        match self {
            Env::Real => vec![
                sw(
                    vec![lidt16(modes::PTR_IDT32), pe_on.clone()],
                    sel::CODE32,
                    0,
                    Env::Pm32,
                    vec![flat32],
                ),
                sw(
                    vec![lidt16(modes::PTR_IDT16), pe_on],
                    sel::CODE16,
                    CODE,
                    Env::Pm16,
                    vec![seg16],
                ),
            ],
            Env::Pm16 => vec![
                sw(vec![], sel::CODE32, 0, Env::Pm32, vec![flat32]),
                sw(
                    vec![
                        lidt16(modes::PTR_IVT),
                        vec![0x0F, 0x20, 0xC0, 0x24, 0xFE, 0x0F, 0x22, 0xC0],
                    ],
                    (CODE >> 4) as u16,
                    CODE,
                    Env::Real,
                    vec![vec![
                        0xB8, 0x00, 0x20, 0x8E, 0xD8, 0xB8, 0x00, 0x10, 0x8E, 0xC0, 0x31, 0xC0,
                        0x8E, 0xD0,
                    ]],
                ),
            ],
            Env::Pm32 => {
                let mut to_long =
                    vec![[&[0x0F, 0x01, 0x1D][..], &abs32(modes::PTR_IDT64)].concat()];
                to_long.push(vec![
                    0x0F, 0x20, 0xE0, 0x0D, 0x20, 0, 0, 0, 0x0F, 0x22, 0xE0,
                ]);
                to_long.push([&[0xB8][..], &abs32(modes::PML4), &[0x0F, 0x22, 0xD8]].concat());
                to_long.push(vec![
                    0xB9, 0x80, 0, 0, 0xC0, 0x0F, 0x32, 0x0D, 0, 0x09, 0, 0, 0x0F, 0x30,
                ]);
                to_long.push(vec![
                    0x0F, 0x20, 0xC0, 0x0D, 0, 0, 0x01, 0x80, 0x0F, 0x22, 0xC0,
                ]);
                vec![
                    sw(vec![], sel::CODE16, CODE, Env::Pm16, vec![seg16]),
                    sw(to_long, sel::CODE64, 0, Env::Long64, vec![]),
                ]
            }
            Env::Long64 => vec![sw(vec![], sel::CODE32, 0, Env::Compat32, vec![])],
            Env::Compat32 => {
                // Leave long mode: paging off (LMA clears), then EFER.LME off, the 32-bit IDT.
                let leave = vec![
                    vec![
                        0x0F, 0x20, 0xC0, 0x25, 0xFF, 0xFF, 0xFF, 0x7F, 0x0F, 0x22, 0xC0,
                    ],
                    vec![
                        0xB9, 0x80, 0, 0, 0xC0, 0x0F, 0x32, 0x80, 0xE4, 0xFE, 0x0F, 0x30,
                    ],
                    [&[0x0F, 0x01, 0x1D][..], &abs32(modes::PTR_IDT32)].concat(),
                ];
                vec![
                    sw(vec![], sel::CODE64, 0, Env::Long64, vec![]),
                    sw(leave, sel::CODE32, 0, Env::Pm32, vec![]),
                ]
            }
            Env::User64 => vec![sw(vec![], native::USER_CS32, 0, Env::User32, vec![])],
            Env::User32 => vec![sw(vec![], native::USER_CS64, 0, Env::User64, vec![])],
        }
    }
}

/// One way out of a mode.
pub struct Switch {
    pub before: Vec<Vec<u8>>,
    pub selector: u16,
    pub base: u64,
    pub to: Env,
    pub after: Vec<Vec<u8>>,
}

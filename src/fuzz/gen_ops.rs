//! The structured generator: pieces of valid code — branches, loops, stores into the code, far transfers, mode switches, interrupts, faults, I/O.
//! Teaches: which kinds of code stress an emulator's seams (block ends, code invalidation, mode and privilege changes, exception delivery).
//!
//! Each method appends one or a few [`Item`]s to the case. Most raw encodings are written out
//! by hand (they are short and need an address field the layout fills in); single ordinary
//! instructions come from iced-x86's form table ([`super::gen_forms`]).

use super::gen::{Item, RefForm};
pub use super::gen_env::Env;
use super::gen_forms;
use crate::conformance::native::Rng;
use crate::conformance::native_forms::interesting;

pub struct Gen<'a> {
    pub rng: &'a mut Rng,
    pub items: Vec<Item>,
    pub env: Env,
}

impl<'a> Gen<'a> {
    pub fn new(rng: &'a mut Rng, env: Env) -> Self {
        Gen {
            rng,
            items: Vec::new(),
            env,
        }
    }

    pub(super) fn push(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.items.push(Item::Bytes(bytes));
        }
    }

    pub(super) fn code_len(&self) -> u64 {
        self.items.iter().map(|i| i.len() as u64).sum::<u64>() + 64
    }

    pub(super) fn pick<T: Clone>(&mut self, list: &[T]) -> T {
        list[self.rng.below(list.len() as u64) as usize].clone()
    }

    /// `mov` of `v` into register `r` (0–7) at the mode's natural width.
    pub(super) fn mov_imm(&self, r: u8, v: u64) -> Vec<u8> {
        match self.env.bits() {
            16 => [&[0xB8 + r][..], &(v as u16).to_le_bytes()].concat(),
            32 => [&[0xB8 + r][..], &(v as u32).to_le_bytes()].concat(),
            _ => [&[0x48, 0xB8 + r][..], &v.to_le_bytes()].concat(),
        }
    }

    /// `mov` of a 32-bit `v` into register `r` (0–7), also in 16-bit code.
    pub(super) fn mov_imm32(&self, r: u8, v: u32) -> Vec<u8> {
        let mut b = if self.env.bits() == 16 {
            vec![0x66]
        } else {
            vec![]
        };
        b.push(0xB8 + r);
        b.extend_from_slice(&v.to_le_bytes());
        b
    }

    /// 1–12 random bytes, sometimes led by prefixes and escape bytes.
    pub fn random_bytes(&mut self) {
        const LEAD: [u8; 12] = [
            0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x0F, 0x26, 0x2E, 0x64, 0x65, 0x48, 0xD9,
        ];
        let n = 1 + self.rng.below(12) as usize;
        let mut b: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
        if self.rng.below(3) == 0 {
            b[0] = self.pick(&LEAD);
        }
        self.push(b);
    }

    /// One structured piece, its kind drawn with fixed weights.
    pub fn structured(&mut self) {
        match self.rng.below(100) {
            0..=39 => {
                let len = self.code_len();
                if let Some(b) = gen_forms::instruction(self.rng, &self.env, len) {
                    self.push(b);
                }
            }
            40..=44 => {
                let (r, v) = (self.rng.below(8) as u8, interesting(self.rng));
                if r != 4 {
                    let b = self.mov_imm(r, v);
                    self.push(b);
                }
            }
            45..=51 => self.forward_branch(),
            52..=55 => self.counted_loop(),
            56..=62 => self.code_store(),
            63..=65 => self.string_op(),
            66..=69 => self.interrupt_or_fault(),
            70..=72 => self.io(),
            73..=75 => self.far_transfer(),
            76..=79 => self.mode_switch(),
            80..=84 => self.system(),
            85..=87 => self.stack(),
            88 | 89 => self.x87(),
            _ => self.backward_branch(),
        }
    }

    pub(super) fn rel_width(&self) -> u8 {
        if self.env.bits() == 16 {
            2
        } else {
            4
        }
    }

    /// JMP, Jcc, CALL, JCXZ or LOOP over the next few pieces.
    fn forward_branch(&mut self) {
        let to = self.items.len() + 1 + self.rng.below(4) as usize;
        let w = self.rel_width();
        let cc = self.rng.below(16) as u8;
        let form = match self.rng.below(6) {
            0 => RefForm::Rel {
                head: vec![0xE9],
                width: w,
            },
            1 => RefForm::Rel {
                head: vec![0xE8],
                width: w,
            },
            2 => RefForm::Rel {
                head: vec![0xE3],
                width: 1,
            },
            3 => RefForm::Rel {
                head: vec![0x70 + cc],
                width: 1,
            },
            _ => RefForm::Rel {
                head: vec![0x0F, 0x80 + cc],
                width: w,
            },
        };
        self.items.push(Item::Ref { to, delta: 0, form });
    }

    /// A Jcc back to an earlier piece: a loop that may run until the instruction limit.
    fn backward_branch(&mut self) {
        if self.items.is_empty() {
            return;
        }
        let to = self.rng.below(self.items.len() as u64) as usize;
        let cc = self.rng.below(16) as u8;
        let w = self.rel_width();
        self.items.push(Item::Ref {
            to,
            delta: 0,
            form: RefForm::Rel {
                head: vec![0x0F, 0x80 + cc],
                width: w,
            },
        });
    }

    /// `mov cx, n; body; loop body` (or `dec cx; jnz body`).
    fn counted_loop(&mut self) {
        let n = 1 + self.rng.below(6);
        let b = self.mov_imm(1, n);
        self.push(b);
        let body = self.items.len();
        for _ in 0..1 + self.rng.below(3) {
            let len = self.code_len();
            if let Some(b) = gen_forms::instruction(self.rng, &self.env, len) {
                self.push(b);
            }
        }
        let form = if self.rng.below(2) == 0 {
            RefForm::Rel {
                head: vec![0xE2],
                width: 1,
            }
        } else {
            let dec = match self.env.bits() {
                16 => vec![0x49, 0x0F, 0x85],
                32 => vec![0x49, 0x0F, 0x85],
                _ => vec![0x48, 0xFF, 0xC9, 0x0F, 0x85],
            };
            RefForm::Rel {
                head: dec,
                width: self.rel_width(),
            }
        };
        self.items.push(Item::Ref {
            to: body,
            delta: 0,
            form,
        });
    }

    /// A store into the case's own code: mostly into one of the next pieces (the CPU must run
    /// the new bytes), sometimes into one already run.
    fn code_store(&mut self) {
        let here = self.items.len();
        let to = if self.rng.below(4) == 0 && here > 0 {
            self.rng.below(here as u64) as usize
        } else {
            here + 1 + self.rng.below(3) as usize
        };
        let imm8 = vec![self.rng.next_u64() as u8];
        let (op, tail): (Vec<u8>, Vec<u8>) = match self.rng.below(6) {
            0 => (vec![0xC6, 0x05], imm8),   // mov byte
            1 => (vec![0xFE, 0x05], vec![]), // inc byte
            2 => (vec![0xF6, 0x15], vec![]), // not byte
            3 => (vec![0x80, 0x35], imm8),   // xor byte, imm8
            4 => (vec![0x88, 0x05], vec![]), // mov byte, al
            _ => (
                vec![0xC7, 0x05],
                (interesting(self.rng) as u32).to_le_bytes()[..self.rel_width() as usize].to_vec(),
            ),
        };
        let (head, width, base, rip_relative) = if self.env.bits() == 16 {
            // ES is the writable alias of the code; mod 00 r/m 110 = [disp16].
            let mut h = vec![0x26, op[0], op[1] + 1];
            if op[0] == 0xC7 && tail.len() == 4 {
                h.insert(0, 0x66);
            }
            (h, 2, self.env.code_alias_base(), false)
        } else {
            (op, 4, 0, self.env.bits() == 64)
        };
        let delta = self.rng.below(8) as u16;
        self.items.push(Item::Ref {
            to,
            delta,
            form: RefForm::Abs {
                head,
                width,
                base,
                rip_relative,
                tail,
            },
        });
    }

    /// MOVS/STOS/LODS/CMPS/SCAS, with or without REP, a small count, either direction.
    fn string_op(&mut self) {
        let n = self.rng.below(24);
        let b = self.mov_imm(1, n);
        self.push(b);
        let mut b = Vec::new();
        if self.rng.below(4) == 0 {
            b.push(0xFD); // std
        }
        match self.rng.below(3) {
            0 => b.push(0xF3),
            1 => b.push(0xF2),
            _ => {}
        }
        if self.rng.below(3) == 0 {
            b.push(0x66);
        }
        if self.env.bits() == 64 && self.rng.below(3) == 0 {
            b.push(0x48);
        }
        b.push(self.pick(&[0xA4, 0xA5, 0xAA, 0xAB, 0xAC, 0xAD, 0xA6, 0xA7, 0xAE, 0xAF]));
        b.push(0xFC); // cld
        self.push(b);
    }

    /// A far JMP or CALL to the next piece that stays in the mode, or RETF/IRET to it.
    fn far_transfer(&mut self) {
        let (selector, base) = self.env.code_selector();
        let bits = self.env.bits();
        let here = self.items.len();
        match self.rng.below(3) {
            0 | 1 => {
                let call = self.rng.below(2) == 0;
                let item = self.env.far_to(here + 1, call, selector, base, bits);
                self.items.push(item);
            }
            _ => {
                // push cs (or the selector); push offset; retf — or pushf first and iret.
                let iret = bits != 64 && self.rng.below(2) == 0;
                let mut lead = Vec::new();
                if iret {
                    lead.push(0x9C);
                }
                lead.extend_from_slice(&[0x68, selector as u8, (selector >> 8) as u8]);
                if bits != 16 {
                    lead.extend_from_slice(&[0, 0]);
                }
                self.push(lead);
                let to = self.items.len() + 2;
                let width = if bits == 16 { 2 } else { 4 };
                self.items.push(Item::Ref {
                    to,
                    delta: 0,
                    form: RefForm::Abs {
                        head: vec![0x68],
                        width,
                        base,
                        rip_relative: false,
                        tail: vec![],
                    },
                });
                let ret = match (bits, iret) {
                    (64, _) => vec![0x48, 0xCB],
                    (_, true) => vec![0xCF],
                    _ => vec![0xCB],
                };
                self.push(ret);
            }
        }
    }

    /// A switch to another mode; the pieces after it are generated for the new mode.
    fn mode_switch(&mut self) {
        let mut options = self.env.switches();
        if options.is_empty() {
            return;
        }
        let s = options.swap_remove(self.rng.below(options.len() as u64) as usize);
        for b in s.before {
            self.push(b);
        }
        let here = self.items.len();
        let item = self
            .env
            .far_to(here + 1, false, s.selector, s.base, s.to.bits());
        self.items.push(item);
        self.env = s.to;
        for b in s.after {
            self.push(b);
        }
    }

    /// PUSH/POP of immediates, registers and memory, PUSHA/POPA, ENTER/LEAVE, CALL next; POP.
    fn stack(&mut self) {
        let b = match self.rng.below(6) {
            0 => vec![
                0x6A,
                self.rng.next_u64() as u8,
                0x58 + self.rng.below(8) as u8,
            ],
            1 if self.env.bits() != 64 => vec![0x60, 0x61],
            2 => vec![
                0xC8,
                self.rng.below(32) as u8,
                0,
                self.rng.below(4) as u8,
                0xC9,
            ],
            3 => {
                let w = self.rel_width() as usize;
                [vec![0xE8], vec![0; w], vec![0x58 + self.rng.below(8) as u8]].concat()
            }
            4 => vec![
                self.pick(&[0x06, 0x0E, 0x16, 0x1E]),
                self.pick(&[0x58, 0x07, 0x17, 0x1F]),
            ],
            _ => vec![0x9C, 0x9D],
        };
        if self.env.bits() == 64 && b[0] & 0xE7 == 0x06 {
            return; // push/pop of ES CS SS DS: #UD in 64-bit mode, drawn elsewhere
        }
        self.push(b);
    }
}

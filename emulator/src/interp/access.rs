//! Operand access: registers by width, memory through segmentation and paging, the stack.
//! Teaches: how an x86 address is formed (segment base + effective address → linear → physical).

use iced_x86::{Instruction, OpKind, Register};

use super::{exception, gp, vec, Cpu, Fault, R};
use crate::cpu::{CpuMode, Seg};
use crate::mmu::Access;

/// Mask for an operand of `size` bytes.
pub(crate) fn mask(size: u32) -> u64 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

/// Sign-extends the low `size` bytes of `v` to 64 bits.
pub(crate) fn sext(v: u64, size: u32) -> u64 {
    match size {
        1 => v as u8 as i8 as i64 as u64,
        2 => v as u16 as i16 as i64 as u64,
        4 => v as u32 as i32 as i64 as u64,
        _ => v,
    }
}

pub(crate) fn seg_of(r: Register) -> Seg {
    match r {
        Register::ES => Seg::Es,
        Register::CS => Seg::Cs,
        Register::SS => Seg::Ss,
        Register::FS => Seg::Fs,
        Register::GS => Seg::Gs,
        _ => Seg::Ds,
    }
}

impl Cpu<'_> {
    // ---- general registers ----

    pub fn reg(&self, r: Register) -> u64 {
        let full = r.full_register();
        if full == Register::RIP {
            return self.s().rip;
        }
        if r.is_segment_register() {
            return self.s().seg[seg_of(r) as usize].selector as u64;
        }
        let i = full as usize - Register::RAX as usize;
        let v = self.s().gpr[i & 15];
        match r {
            Register::AH | Register::CH | Register::DH | Register::BH => (v >> 8) & 0xFF,
            _ => v & mask(r.size() as u32),
        }
    }

    /// Writes a general register with x86-64 rules: 32-bit writes zero the upper half,
    /// 8/16-bit writes merge.
    pub fn set_reg(&mut self, r: Register, value: u64) {
        let i = (r.full_register() as usize - Register::RAX as usize) & 15;
        let old = self.s().gpr[i];
        let new = match r {
            Register::AH | Register::CH | Register::DH | Register::BH => {
                (old & !0xFF00) | ((value & 0xFF) << 8)
            }
            _ => match r.size() {
                1 => (old & !0xFF) | (value & 0xFF),
                2 => (old & !0xFFFF) | (value & 0xFFFF),
                4 => value & 0xFFFF_FFFF,
                _ => value,
            },
        };
        self.st().gpr[i] = new;
    }

    /// Reads general register number `i` (0–15) at `size` bytes.
    pub fn gpr(&self, i: usize, size: u32) -> u64 {
        self.s().gpr[i] & mask(size)
    }

    pub fn set_gpr(&mut self, i: usize, size: u32, value: u64) {
        let old = self.s().gpr[i];
        self.st().gpr[i] = match size {
            1 => (old & !0xFF) | (value & 0xFF),
            2 => (old & !0xFFFF) | (value & 0xFFFF),
            4 => value & 0xFFFF_FFFF,
            _ => value,
        };
    }

    // ---- addresses ----

    /// Address size in bytes of the instruction's memory operand.
    pub fn address_size(&self, ins: &Instruction) -> u32 {
        let base = ins.memory_base();
        let index = ins.memory_index();
        if base != Register::None && base != Register::RIP && base != Register::EIP {
            base.size() as u32
        } else if index != Register::None {
            index.size() as u32
        } else if base == Register::RIP {
            8
        } else if base == Register::EIP {
            4
        } else {
            match ins.memory_displ_size() {
                2 => 2,
                4 => 4,
                8 => 8,
                _ => self.s().code_bits() / 8,
            }
        }
    }

    /// The effective address (offset within the segment) of the memory operand.
    pub fn effective_address(&self, ins: &Instruction) -> u64 {
        let mut ea = ins.memory_displacement64();
        let base = ins.memory_base();
        if base != Register::None && base != Register::RIP && base != Register::EIP {
            ea = ea.wrapping_add(self.reg(base));
        }
        let index = ins.memory_index();
        if index != Register::None {
            ea = ea.wrapping_add(
                self.reg(index)
                    .wrapping_mul(ins.memory_index_scale() as u64),
            );
        }
        ea & mask(self.address_size(ins))
    }

    /// Segment + offset → linear address, with the limit and type checks of the current mode.
    pub fn linear(&self, seg: Seg, offset: u64, size: u32, write: bool) -> R<u64> {
        let s = self.s();
        let sr = &s.seg[seg as usize];
        if s.mode() == CpuMode::Long64 {
            let base = if matches!(seg, Seg::Fs | Seg::Gs) {
                sr.base
            } else {
                0
            };
            let lin = base.wrapping_add(offset);
            if !is_canonical(lin) || !is_canonical(lin.wrapping_add(size as u64 - 1)) {
                return Err(stack_or_gp(seg, 0));
            }
            return Ok(lin);
        }
        if s.cr0 & crate::cpu::ctl::CR0_PE != 0 && s.rflags & crate::cpu::flags::VM == 0 {
            if sr.unusable {
                return Err(stack_or_gp(seg, 0));
            }
            if write && (sr.type_ & 8 != 0 || sr.type_ & 2 == 0) {
                return Err(stack_or_gp(seg, 0));
            }
        }
        // Limit check (expand-down data segments have the valid range above the limit).
        let last = offset.wrapping_add(size as u64 - 1);
        let expand_down = sr.s && sr.type_ & 0xC == 0x4;
        let ok = if expand_down {
            let upper = if sr.db { 0xFFFF_FFFF } else { 0xFFFF };
            offset > sr.limit as u64 && last <= upper && last >= offset
        } else {
            last <= sr.limit as u64 && last >= offset
        };
        if !ok {
            return Err(stack_or_gp(seg, 0));
        }
        Ok(sr.base.wrapping_add(offset) & 0xFFFF_FFFF)
    }

    pub fn translate(&mut self, linear: u64, access: Access) -> R<u64> {
        let result = self
            .mmu
            .translate(self.m, linear, access)
            .map_err(|f| Fault::Exception {
                vector: vec::PF,
                error_code: Some(f.error_code),
                cr2: Some(f.linear),
            });
        if !self.mmu.entry_writes.is_empty() {
            self.note_entry_writes();
        }
        // A store into a page table a translation was built from: translated code must not
        // run on past it (the next fetch may fault or find another frame), as after a store
        // into translated code.
        if access.write && self.mmu.page_table_written() {
            self.end_block = true;
        }
        result
    }

    /// The page walker set accessed/dirty bits: if those bytes were cached as code, the
    /// decoded instructions (and translated blocks) holding them are stale now.
    #[cold]
    fn note_entry_writes(&mut self) {
        for (phys, size) in std::mem::take(&mut self.mmu.entry_writes) {
            if self.code.note_write(phys, size) {
                self.end_block = true;
            }
        }
    }

    fn user_access(&self) -> bool {
        self.s().cpl() == 3
    }

    // ---- memory by linear address ----

    /// Reads `size` bytes at a linear address (split at page boundaries).
    pub fn read_linear(&mut self, linear: u64, size: u32, user: bool) -> R<u64> {
        self.read_linear_as(linear, size, Access::read(user))
    }

    /// `read_linear` for a given kind of access (implicit supervisor reads matter to SMAP).
    pub fn read_linear_as(&mut self, linear: u64, size: u32, access: Access) -> R<u64> {
        if self.s().dr[7] & 0xFF != 0 {
            super::debug::watch_data(self, linear, size, false);
        }
        if (linear & 0xFFF) + size as u64 <= 0x1000 {
            let phys = self.translate(linear, access)?;
            return Ok(self.phys_read(phys, size));
        }
        let mut v = 0u64;
        for i in 0..size as u64 {
            let phys = self.translate(linear.wrapping_add(i), access)?;
            v |= self.phys_read(phys, 1) << (8 * i);
        }
        Ok(v)
    }

    /// Writes `size` bytes at a linear address. Both pages are checked before any byte is written.
    pub fn write_linear(&mut self, linear: u64, size: u32, value: u64, user: bool) -> R<()> {
        self.write_linear_as(linear, size, value, Access::write(user))
    }

    /// `write_linear` for a given kind of access.
    pub fn write_linear_as(&mut self, linear: u64, size: u32, value: u64, access: Access) -> R<()> {
        if self.s().dr[7] & 0xFF != 0 {
            super::debug::watch_data(self, linear, size, true);
        }
        if (linear & 0xFFF) + size as u64 <= 0x1000 {
            let phys = self.translate(linear, access)?;
            self.phys_write(phys, size, value);
            return Ok(());
        }
        // A page-split write: both pages are checked first; a fault on the second reports its
        // first byte in CR2, as the hardware does.
        let second = linear.wrapping_add(size as u64 - 1) & !0xFFF;
        self.translate(linear, access)?;
        self.translate(second, access)?;
        for i in 0..size as u64 {
            let phys = self.translate(linear.wrapping_add(i), access)?;
            self.phys_write(phys, 1, value >> (8 * i));
        }
        Ok(())
    }

    /// Supervisor-mode ("implicit") read, as for descriptor tables and the TSS.
    pub fn read_system(&mut self, linear: u64, size: u32) -> R<u64> {
        self.read_linear_as(linear, size, Access::implicit(false))
    }

    pub fn write_system(&mut self, linear: u64, size: u32, value: u64) -> R<()> {
        self.write_linear_as(linear, size, value, Access::implicit(true))
    }

    // ---- memory by segment:offset ----

    pub fn read_mem(&mut self, seg: Seg, offset: u64, size: u32) -> R<u64> {
        let lin = self.linear(seg, offset, size, false)?;
        let user = self.user_access();
        self.check_alignment(lin, size, user)?;
        self.read_linear(lin, size, user)
    }

    /// The read of a read-modify-write destination: checked as a write (segment type, page
    /// R/W), so a fault reports W = 1 in the #PF error code as on hardware, before anything
    /// is written.
    pub fn read_mem_for_write(&mut self, seg: Seg, offset: u64, size: u32) -> R<u64> {
        let lin = self.linear(seg, offset, size, true)?;
        let user = self.user_access();
        self.check_alignment(lin, size, user)?;
        self.read_linear_as(lin, size, Access::write(user))
    }

    /// Checks that a write of `size` bytes at `seg:offset` would succeed (segment, alignment,
    /// paging) without writing: ENTER's probe of its final stack pointer.
    pub fn probe_write(&mut self, seg: Seg, offset: u64, size: u32) -> R<()> {
        let lin = self.linear(seg, offset, size, true)?;
        let user = self.user_access();
        self.check_alignment(lin, size, user)?;
        let access = Access::write(user);
        self.translate(lin, access)?;
        self.translate(lin.wrapping_add(size as u64 - 1) & !0xFFF, access)?;
        Ok(())
    }

    pub fn write_mem(&mut self, seg: Seg, offset: u64, size: u32, value: u64) -> R<()> {
        let lin = self.linear(seg, offset, size, true)?;
        let user = self.user_access();
        self.check_alignment(lin, size, user)?;
        self.write_linear(lin, size, value, user)
    }

    /// Alignment check: with CR0.AM and RFLAGS.AC set, a misaligned data access at CPL 3 is an
    /// #AC(0), raised after the segment checks and before the page walk (SDM Vol. 3, 6.15).
    fn check_alignment(&self, linear: u64, size: u32, user: bool) -> R<()> {
        let s = self.s();
        if !user
            || size < 2
            || s.cr0 & crate::cpu::ctl::CR0_AM == 0
            || s.rflags & crate::cpu::flags::AC == 0
        {
            return Ok(());
        }
        // Natural alignment up to 8 bytes; far pointers and 10-byte operands as their parts;
        // the x87 environment and FSAVE images (14/94 bytes: 16-bit, 28/108: 32-bit) by their
        // word size (SDM vol. 3A, table 6-7).
        let align = match size {
            2 | 4 | 8 | 16 => size as u64,
            6 | 28 | 108 => 4,
            14 | 94 => 2,
            10 => 8,
            _ => 1,
        };
        if linear & (align - 1) != 0 {
            return Err(super::exception(AC_VECTOR, Some(0)));
        }
        Ok(())
    }

    /// Reads `out.len()` bytes at `seg:offset` (an m80, an m128, an FXSAVE image). A read that
    /// faults part way has changed nothing, so the pages are not walked ahead.
    pub fn read_mem_bytes(&mut self, seg: Seg, offset: u64, out: &mut [u8]) -> R<()> {
        let lin = self.bytes_range(seg, offset, out.len(), false)?;
        let user = self.user_access();
        for (i, chunk) in out.chunks_mut(8).enumerate() {
            let v = self.read_linear(
                self.wrap_linear(lin + 8 * i as u64),
                chunk.len() as u32,
                user,
            )?;
            chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }

    /// Writes `bytes` at `seg:offset`; nothing is written unless the whole range is writable.
    pub fn write_mem_bytes(&mut self, seg: Seg, offset: u64, bytes: &[u8]) -> R<()> {
        let lin = self.bytes_range(seg, offset, bytes.len(), true)?;
        let user = self.user_access();
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut v = [0u8; 8];
            v[..chunk.len()].copy_from_slice(chunk);
            let at = self.wrap_linear(lin + 8 * i as u64);
            self.write_linear(at, chunk.len() as u32, u64::from_le_bytes(v), user)?;
        }
        Ok(())
    }

    /// The linear address of a multi-byte range after the segment and alignment checks; for a
    /// write, every page of it is translated first (so a fault comes before any byte moves).
    fn bytes_range(&mut self, seg: Seg, offset: u64, len: usize, write: bool) -> R<u64> {
        let lin = self.linear(seg, offset, len as u32, write)?;
        let user = self.user_access();
        // #AC for the operand sizes that have a natural alignment (an m80 as its m64 part).
        let natural = if matches!(len, 2 | 4 | 8 | 10 | 16 | 14 | 28 | 94 | 108) {
            len
        } else {
            1
        };
        self.check_alignment(lin, natural as u32, user)?;
        if !write {
            return Ok(lin);
        }
        let access = Access::write(user);
        let mut page = lin & !0xFFF;
        let last = lin + len as u64 - 1;
        while page <= last {
            self.translate(self.wrap_linear(page.max(lin)), access)?;
            page += 0x1000;
        }
        Ok(lin)
    }

    /// Linear addresses wrap at 4 GiB outside long mode.
    fn wrap_linear(&self, lin: u64) -> u64 {
        if self.s().mode() == CpuMode::Long64 {
            lin
        } else {
            lin & 0xFFFF_FFFF
        }
    }

    // ---- operands ----

    /// Size in bytes of operand `i`.
    pub fn op_size(&self, ins: &Instruction, i: u32) -> u32 {
        match ins.op_kind(i) {
            OpKind::Register => ins.op_register(i).size() as u32,
            OpKind::Memory => ins.memory_size().size() as u32,
            OpKind::Immediate8 | OpKind::Immediate8_2nd => 1,
            OpKind::Immediate16 => 2,
            OpKind::Immediate32 => 4,
            _ => 8,
        }
    }

    pub fn read_op(&mut self, ins: &Instruction, i: u32) -> R<u64> {
        match ins.op_kind(i) {
            OpKind::Register => Ok(self.reg(ins.op_register(i))),
            OpKind::Memory => {
                let size = ins.memory_size().size() as u32;
                let ea = self.effective_address(ins);
                if i == 0 && writes_destination(ins.mnemonic()) {
                    self.read_mem_for_write(seg_of(ins.memory_segment()), ea, size)
                } else {
                    self.read_mem(seg_of(ins.memory_segment()), ea, size)
                }
            }
            _ => Ok(ins.immediate(i)),
        }
    }

    pub fn write_op(&mut self, ins: &Instruction, i: u32, value: u64) -> R<()> {
        match ins.op_kind(i) {
            OpKind::Register => {
                self.set_reg(ins.op_register(i), value);
                Ok(())
            }
            OpKind::Memory => {
                let size = ins.memory_size().size() as u32;
                let ea = self.effective_address(ins);
                self.write_mem(seg_of(ins.memory_segment()), ea, size, value)
            }
            _ => Err(super::ud()),
        }
    }

    // ---- the stack ----

    /// Stack pointer width in bytes: 8 in 64-bit mode, else SS.B selects 4 or 2.
    pub fn stack_size(&self) -> u32 {
        let s = self.s();
        if s.mode() == CpuMode::Long64 {
            8
        } else if s.ss().db {
            4
        } else {
            2
        }
    }

    pub fn push(&mut self, size: u32, value: u64) -> R<()> {
        let ss = self.stack_size();
        let sp = self.gpr(4, ss).wrapping_sub(size as u64) & mask(ss);
        self.write_mem(Seg::Ss, sp, size, value)?;
        self.set_gpr(4, ss, sp);
        Ok(())
    }

    pub fn pop(&mut self, size: u32) -> R<u64> {
        let ss = self.stack_size();
        let sp = self.gpr(4, ss);
        let v = self.read_mem(Seg::Ss, sp, size)?;
        self.set_gpr(4, ss, sp.wrapping_add(size as u64));
        Ok(v)
    }

    /// Reads the stack `offset` bytes above the stack pointer without popping.
    pub fn peek(&mut self, offset: u64, size: u32) -> R<u64> {
        let ss = self.stack_size();
        let sp = self.gpr(4, ss).wrapping_add(offset) & mask(ss);
        self.read_mem(Seg::Ss, sp, size)
    }
}

/// #AC, the alignment-check exception.
const AC_VECTOR: u8 = 17;

/// Instructions whose first operand is read, then written (read-modify-write): their read is
/// already a write access for the segment and paging checks.
fn writes_destination(m: iced_x86::Mnemonic) -> bool {
    use iced_x86::Mnemonic as M;
    matches!(
        m,
        M::Add
            | M::Or
            | M::Adc
            | M::Sbb
            | M::And
            | M::Sub
            | M::Xor
            | M::Inc
            | M::Dec
            | M::Neg
            | M::Not
            | M::Shl
            | M::Sal
            | M::Shr
            | M::Sar
            | M::Rol
            | M::Ror
            | M::Rcl
            | M::Rcr
            | M::Shld
            | M::Shrd
            | M::Bts
            | M::Btr
            | M::Btc
            | M::Xchg
            | M::Xadd
            | M::Cmpxchg
            | M::Arpl
    )
}

pub(crate) fn is_canonical(a: u64) -> bool {
    let top = a >> 47;
    top == 0 || top == 0x1_FFFF
}

/// Limit violations on SS are #SS; on other segments #GP.
pub(crate) fn stack_or_gp(seg: Seg, code: u32) -> Fault {
    if seg == Seg::Ss {
        exception(vec::SS, Some(code))
    } else {
        gp(code)
    }
}

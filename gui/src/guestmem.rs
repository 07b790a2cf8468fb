//! Reading guest memory the way a debugger must: without side effects.
//! Teaches: a debugger's read is not the guest's read — no accessed bits, no MMIO, no TLB fills.
//!
//! `Machine::phys_read` would reach MMIO devices (whose registers change when read) and
//! count the access; these helpers read only RAM and the ROM, and translate linear addresses
//! with the MMU's side-effect-free `peek_walk`.

use emulator::mmu::{peek_walk, Access};
use emulator::{machine::FOUR_GIB, Machine};

use crate::session::expr::MemoryReader;

/// One byte of RAM or ROM at a guest-physical address; `None` for MMIO and holes.
pub fn phys_byte(m: &Machine, phys: u64) -> Option<u8> {
    if m.ram.contains(phys, 1) {
        return m.ram.read_le(phys, 1).ok().map(|v| v as u8);
    }
    let base = m.rom_base()?;
    (base..FOUR_GIB)
        .contains(&phys)
        .then(|| m.rom[(phys - base) as usize])
}

/// The guest-physical address of a linear address under the current paging state.
pub fn translate(m: &mut Machine, linear: u64) -> Option<u64> {
    if !m.cpu.paging_enabled() {
        return Some(linear & 0xFFFF_FFFF);
    }
    peek_walk(m, linear, Access::read(false))
        .ok()
        .map(|w| w.phys)
}

/// Fills `out` from linear memory; returns how many bytes could be read before the first
/// unmapped (or non-RAM) byte.
pub fn read_linear(m: &mut Machine, linear: u64, out: &mut [u8]) -> usize {
    let mut page = u64::MAX;
    let mut frame = None;
    for (i, b) in out.iter_mut().enumerate() {
        let lin = linear.wrapping_add(i as u64);
        if lin >> 12 != page {
            page = lin >> 12;
            frame = translate(m, lin & !0xFFF);
        }
        match frame.and_then(|f| phys_byte(m, f | (lin & 0xFFF))) {
            Some(v) => *b = v,
            None => return i,
        }
    }
    out.len()
}

/// A little-endian value of `size` bytes at a linear address.
pub fn read_linear_le(m: &mut Machine, linear: u64, size: usize) -> Option<u64> {
    let mut buf = [0u8; 8];
    let size = size.min(8);
    (read_linear(m, linear, &mut buf[..size]) == size).then(|| u64::from_le_bytes(buf))
}

/// Lets breakpoint conditions read guest memory.
pub struct MachineReader<'a>(pub &'a mut Machine);

impl MemoryReader for MachineReader<'_> {
    fn read_linear(&mut self, linear: u64, size: usize) -> Option<u64> {
        read_linear_le(self.0, linear, size)
    }
}

//! Looking at a guest the way a debugger must: without side effects.
//! Teaches: a debugger's read is not the guest's — no accessed/dirty bits, no MMIO, no TLB fills.
//!
//! `Machine::phys_read` would reach MMIO devices (whose registers change when read) and count
//! the access; these helpers read only RAM and the firmware ROM, and translate linear addresses
//! with the MMU's side-effect-free `peek_walk`, ignoring permissions (a kernel debugger may
//! read a user page under SMAP). An unmapped page, MMIO or a hole is "cannot read", never a
//! panic. Used by the GUI (memory, stack and code views, breakpoint conditions, watchpoints)
//! and by the gdb stub.

use crate::cpu::{CpuMode, CpuState, Seg};
use crate::machine::FOUR_GIB;
use crate::mmu::{peek_walk, Access};
use crate::Machine;
use iced_x86::Register;
use iced_x86::{CodeSize, Decoder, DecoderOptions, Instruction, InstructionInfoFactory, OpAccess};

/// The guest-physical address of a linear address under the current paging state, ignoring
/// permissions (a supervisor read, else a user read: one of them passes for any present page).
pub fn translate(m: &mut Machine, linear: u64) -> Option<u64> {
    if !m.cpu.paging_enabled() {
        return Some(linear & 0xFFFF_FFFF);
    }
    [Access::read(false), Access::read(true)]
        .into_iter()
        .find_map(|access| peek_walk(m, linear, access).ok())
        .map(|w| w.phys)
}

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

/// A little-endian value of `size` bytes (at most 8) at a linear address.
pub fn read_linear_le(m: &mut Machine, linear: u64, size: usize) -> Option<u64> {
    let mut buf = [0u8; 8];
    let size = size.min(8);
    (read_linear(m, linear, &mut buf[..size]) == size).then(|| u64::from_le_bytes(buf))
}

/// Writes `data` at a linear address, all or nothing: every byte must be mapped to RAM (not
/// ROM, not MMIO). Bumps the machine's memory epoch, so every engine drops its decoded
/// instructions, translated blocks and shadow page tables before it runs again.
pub fn write_linear(m: &mut Machine, linear: u64, data: &[u8]) -> Result<(), u64> {
    let mut phys = Vec::with_capacity(data.len());
    for i in 0..data.len() as u64 {
        let lin = linear.wrapping_add(i);
        match translate(m, lin).filter(|&p| m.ram.contains(p, 1)) {
            Some(p) => phys.push(p),
            None => return Err(lin),
        }
    }
    for (p, b) in phys.into_iter().zip(data) {
        m.ram.write_le(p, 1, *b as u64).map_err(|_| p)?;
    }
    // No engine saw these writes: their decoded and translated copies must go.
    m.memory_changed_behind_engines();
    Ok(())
}

/// The instruction at CS:RIP, decoded from side-effect-free reads; `None` if unreadable.
pub fn current_instruction(m: &mut Machine) -> Option<Instruction> {
    let linear = m.cpu.linear_rip();
    let mut bytes = [0u8; 15];
    let n = read_linear(m, linear, &mut bytes);
    let ins = Decoder::with_ip(
        m.cpu.code_bits(),
        &bytes[..n],
        m.cpu.rip,
        DecoderOptions::NONE,
    )
    .decode();
    (!ins.is_invalid()).then_some(ins)
}

/// One memory operand of an instruction about to execute (linear address, bytes, direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    pub linear: u64,
    pub size: u64,
    pub read: bool,
    pub write: bool,
}

/// The memory an instruction will touch, from its operands and the registers (iced-x86's
/// instruction info: what the GUI's watchpoints and the gdb stub's check). A REP string instruction covers
/// RCX elements, its whole run.
pub fn memory_uses(ins: &Instruction, cpu: &CpuState) -> Vec<MemoryUse> {
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(ins);
    let long = cpu.mode() == CpuMode::Long64;
    let mut out = Vec::new();
    for m in info.used_memory() {
        let (read, write) = match m.access() {
            OpAccess::Read | OpAccess::CondRead => (true, false),
            OpAccess::Write | OpAccess::CondWrite => (false, true),
            OpAccess::ReadWrite | OpAccess::ReadCondWrite => (true, true),
            _ => continue,
        };
        let Some(addr) = m.virtual_address(0, |reg, _, _| Some(register_value(cpu, reg, long)))
        else {
            continue;
        };
        let mut size = m.memory_size().size().max(1) as u64;
        if ins.is_string_instruction() && (ins.has_rep_prefix() || ins.has_repne_prefix()) {
            let count = match m.address_size() {
                CodeSize::Code16 => cpu.gpr[1] & 0xFFFF,
                CodeSize::Code32 => cpu.gpr[1] & 0xFFFF_FFFF,
                _ => cpu.gpr[1],
            };
            size = size.saturating_mul(count.max(1));
        }
        out.push(MemoryUse {
            linear: if long { addr } else { addr & 0xFFFF_FFFF },
            size,
            read,
            write,
        });
    }
    out
}

/// A register's value as iced-x86 asks for it (segment registers answer with their base).
fn register_value(cpu: &CpuState, reg: Register, long: bool) -> u64 {
    let seg_base = |s: Seg| cpu.seg[s as usize].base;
    match reg {
        Register::ES | Register::CS | Register::SS | Register::DS if long => 0,
        Register::ES => seg_base(Seg::Es),
        Register::CS => seg_base(Seg::Cs),
        Register::SS => seg_base(Seg::Ss),
        Register::DS => seg_base(Seg::Ds),
        Register::FS => seg_base(Seg::Fs),
        Register::GS => seg_base(Seg::Gs),
        Register::RIP => cpu.rip,
        Register::EIP => cpu.rip & 0xFFFF_FFFF,
        r if r.is_gpr() => {
            let full = cpu.gpr[r.full_register().number() - Register::RAX.number()];
            match r.size() {
                8 => full,
                4 => full & 0xFFFF_FFFF,
                2 => full & 0xFFFF,
                _ if matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) => {
                    (full >> 8) & 0xFF
                }
                _ => full & 0xFF,
            }
        }
        _ => 0,
    }
}

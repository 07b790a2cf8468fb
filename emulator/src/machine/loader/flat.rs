//! Flat binaries: raw bytes copied to one address and entered in real mode.
//! Teaches: the simplest boot there is — no headers, just an address and a segment:offset pair.
//!
//! A real-mode CPU reaches only the first 1 MiB, through 16-bit segment:offset pairs. We pick
//! the pair so that the entry sits in the 64 KiB-aligned segment that contains it:
//! `CS = (entry / 64 KiB) * 0x1000`, `IP = entry % 64 KiB`. For the boot-sector address 0x7C00
//! that gives the familiar 0000:7C00; for 0x12345 it gives 1000:2345. DS, ES, FS, GS and SS are
//! set equal to CS (the "tiny" model of DOS .COM programs: code, data and stack share one
//! segment), SP = 0xFFFE at the top of that segment, and DL = 0x80, the boot-drive number a BIOS
//! passes to a boot sector. Everything else is the reset state: interrupts off, no paging.

use super::{ImageKind, LoadError, LoadedImage, Machine, Placement};
use crate::cpu::{reg, CpuState, Seg, Segment};

/// Where [`super::detect`] places flat binaries: the address a BIOS loads a boot sector to.
pub const FLAT_DEFAULT_LOAD_ADDR: u64 = 0x7C00;

/// The first address real mode cannot reach (ignoring the A20 wrap-around above it).
const REAL_MODE_LIMIT: u64 = 1 << 20;

/// The real-mode CPU state that starts executing at guest-physical `entry` (< 1 MiB), following
/// the segment rule in this module's documentation.
pub fn real_mode_entry(entry: u64) -> CpuState {
    let selector = ((entry >> 16) as u16) << 12;
    let mut cpu = CpuState::reset();
    for seg in Seg::ALL {
        cpu.seg[seg as usize] = Segment::real_mode(selector, seg == Seg::Cs);
    }
    cpu.rip = entry & 0xFFFF;
    cpu.gpr[reg::RSP] = 0xFFFE;
    cpu.gpr[reg::RDX] = 0x80;
    cpu
}

/// Copies `bytes` into guest RAM at `load_addr`. With `entry = Some(addr)` the CPU is set to
/// [`real_mode_entry`]`(addr)`; with `None` the CPU is left exactly as it was, for callers that
/// load data or code that something else (firmware, a test) will enter.
pub fn load_flat(
    machine: &mut Machine,
    name: &str,
    bytes: &[u8],
    load_addr: u64,
    entry: Option<u64>,
) -> Result<LoadedImage, LoadError> {
    let ram = machine.ram.size();
    let size = bytes.len() as u64;
    if size > ram {
        return Err(LoadError::ImageTooLarge {
            name: name.to_string(),
            size,
            ram,
        });
    }
    let placement = Placement {
        paddr: load_addr,
        data: bytes,
        mem_len: size,
    };
    placement.check_in_ram(name, ram)?;
    if let Some(e) = entry {
        if e >= REAL_MODE_LIMIT {
            return Err(LoadError::EntryNotRealMode {
                name: name.to_string(),
                entry: e,
            });
        }
    }

    let segments = super::write_placements(machine, name, &[placement])?;
    if let Some(e) = entry {
        machine.cpu = real_mode_entry(e);
    }
    Ok(LoadedImage {
        name: name.to_string(),
        kind: ImageKind::Flat { load_addr, entry },
        format: "flat binary",
        entry: machine.cpu.linear_rip(),
        segments,
        info_addr: None,
    })
}

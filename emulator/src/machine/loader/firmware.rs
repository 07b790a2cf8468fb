//! Firmware ROMs: a BIOS image mapped where the CPU looks after RESET.
//! Teaches: why a PC starts at F000:FFF0 yet runs code from the top of 4 GiB — the ROM has two homes.
//!
//! After RESET the CPU fetches from CS.base + IP = 0xFFFF0000 + 0xFFF0 = 0xFFFFFFF0, sixteen
//! bytes below 4 GiB. The chipset answers those addresses from the firmware ROM, so the whole
//! ROM is mapped read-only at `[4 GiB - len, 4 GiB)` (the machine serves it from `machine.rom`).
//! Old real-mode code, though, expects the BIOS just below 1 MiB, so the chipset also shows the
//! ROM's last bytes there. Like QEMU's `isa-bios` alias we copy the last `min(len, 128 KiB)` of
//! the ROM into RAM ending at 1 MiB: 0xF0000–0xFFFFF for a 64 KiB ROM, 0xE0000–0xFFFFF for
//! anything larger (a 128 KiB SeaBIOS keeps code in both halves). The first far jump a BIOS
//! makes (to F000:xxxx, base 0xF0000) lands in that low copy. It is plain RAM here, writable —
//! real chipsets can "shadow" the BIOS into RAM the same way.
//!
//! Accepted sizes: a multiple of 64 KiB from 64 KiB to 256 KiB (64, 128, 192 or 256 KiB), which
//! covers hand-written teaching BIOSes, Bochs' BIOS-bochs-latest and SeaBIOS builds.

use super::{ImageKind, LoadError, LoadedImage, Machine};
use crate::cpu::CpuState;
use crate::machine::FOUR_GIB;

/// The smallest accepted ROM, and the granule of ROM sizes.
pub const ROM_MIN: u64 = 64 << 10;
/// The largest accepted ROM.
pub const ROM_MAX: u64 = 256 << 10;
/// How much of the ROM's end is copied below 1 MiB.
pub const ROM_LOW_ALIAS_MAX: u64 = 128 << 10;

const ONE_MIB: u64 = 1 << 20;

pub(crate) fn valid_rom_size(size: u64) -> bool {
    (ROM_MIN..=ROM_MAX).contains(&size) && size.is_multiple_of(ROM_MIN)
}

/// Installs `rom` as the machine's firmware and puts the CPU in its RESET state, so the first
/// instruction comes from 0xFFFFFFF0. Needs at least 1 MiB of RAM for the low copy.
pub fn load_firmware(
    machine: &mut Machine,
    name: &str,
    rom: &[u8],
) -> Result<LoadedImage, LoadError> {
    let size = rom.len() as u64;
    if !valid_rom_size(size) {
        return Err(LoadError::RomSize {
            name: name.to_string(),
            size,
        });
    }
    let ram = machine.ram.size();
    if ram < ONE_MIB {
        return Err(LoadError::RamTooSmall {
            name: name.to_string(),
            need: ONE_MIB,
            ram,
        });
    }

    let low_len = size.min(ROM_LOW_ALIAS_MAX);
    let low_base = ONE_MIB - low_len;
    // `size` is at most 256 KiB, so these conversions and the subtraction cannot fail.
    let low_bytes = &rom[(size - low_len) as usize..];
    machine
        .ram
        .write(low_base, low_bytes)
        .map_err(|source| LoadError::Memory {
            name: name.to_string(),
            source,
        })?;
    machine.rom = rom.to_vec();
    machine.cpu = CpuState::reset();

    Ok(LoadedImage {
        name: name.to_string(),
        kind: ImageKind::FirmwareRom,
        format: "firmware ROM",
        entry: machine.cpu.linear_rip(),
        segments: vec![(FOUR_GIB - size, size), (low_base, low_len)],
        info_addr: None,
    })
}

//! Booting a Multiboot kernel through firmware: the host places the kernel, a ROM starts the CPU.
//! Teaches: the work a real boot loader does between RESET and a kernel — real mode, a GDT, CR0.PE,
//! flat segments, then EAX/EBX — as guest code a student can single-step instead of a host shortcut.
//!
//! A *direct* boot ([`super::load_multiboot`]) writes the kernel and the Multiboot information into
//! RAM and sets `CpuState` to the Multiboot entry state in one go. A *firmware* boot does the same
//! placement, then installs vmscope's boot firmware (`guests/asm/firmware.S`, built into
//! `guests::FIRMWARE_ROM`) and leaves the CPU at RESET (F000:FFF0, real mode). The firmware
//! enters protected mode itself and jumps to the kernel with the same registers a direct boot
//! gives, so a kernel prints exactly the same either way.
//!
//! **How the host tells the firmware where the kernel is: a parameter block patched into the
//! ROM image.** [`PARAMS_FROM_END`] bytes before the end of the ROM (offset 0xFFE0 of a 64 KiB
//! ROM, so physical 0xFFFE0 in the low copy and 0xFFFFFFE0 in the high one) the firmware
//! reserves 16 bytes:
//!
//! | offset | size | contents |
//! |--------|------|----------|
//! | 0 | 8 | `"VMSCBOOT"` ([`PARAMS_MAGIC`]), checked before patching |
//! | 8 | 4 | the kernel's entry point (0 in the built ROM: "no kernel") |
//! | 12 | 4 | the physical address of the Multiboot information structure |
//!
//! Why not fw_cfg (QEMU's `multiboot.bin` option ROM reads the entry point from fw_cfg)? A
//! patched block costs no port I/O — each `in` would be a KVM exit — keeps `devices::FwCfg`
//! unchanged, and the values are visible in the memory view at a fixed address. The price is
//! that the ROM bytes depend on the kernel; they are rebuilt on every load.

use super::multiboot::load_multiboot_avoiding;
use super::{firmware, load_firmware, LoadError, LoadedImage, Machine};

/// The magic at the start of the parameter block.
pub const PARAMS_MAGIC: &[u8; 8] = b"VMSCBOOT";
/// Distance of the parameter block from the end of the ROM.
pub const PARAMS_FROM_END: usize = 0x20;

const ONE_MIB: u64 = 1 << 20;
/// The page below the firmware's real-mode stack top (`mov $0x7000, %sp` in `firmware.S`).
const FIRMWARE_STACK: (u64, u64) = (0x6000, 0x7000);

/// How a Multiboot kernel is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BootMethod {
    /// The host sets the CPU to the Multiboot entry state (32-bit protected mode) directly.
    #[default]
    Direct,
    /// The CPU starts at RESET in real mode and vmscope's firmware ROM does the handoff.
    Firmware,
}

impl BootMethod {
    /// "direct" or "firmware", as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            BootMethod::Direct => "direct",
            BootMethod::Firmware => "firmware",
        }
    }
}

/// Loads a Multiboot kernel as [`load_multiboot`] does, then installs `firmware` with the
/// kernel's entry point and information address patched into its parameter block, and leaves
/// the CPU at RESET. `firmware` must carry the parameter block (`guests::FIRMWARE_ROM` does).
/// Nothing is written unless the firmware is acceptable and the kernel loads.
pub fn load_multiboot_via_firmware(
    machine: &mut Machine,
    name: &str,
    kernel: &[u8],
    cmdline: &str,
    firmware: &[u8],
) -> Result<LoadedImage, LoadError> {
    load_multiboot_via_firmware_with_modules(machine, name, kernel, cmdline, firmware, &[])
}

/// [`load_multiboot_via_firmware`] with Multiboot boot modules.
pub(crate) fn load_multiboot_via_firmware_with_modules(
    machine: &mut Machine,
    name: &str,
    kernel: &[u8],
    cmdline: &str,
    firmware: &[u8],
    modules: &[super::BootModule],
) -> Result<LoadedImage, LoadError> {
    let fw_name = "boot firmware";
    if !firmware::valid_rom_size(firmware.len() as u64) {
        return Err(LoadError::RomSize {
            name: fw_name.to_string(),
            size: firmware.len() as u64,
        });
    }
    let at = firmware.len() - PARAMS_FROM_END; // the size is at least 64 KiB
    if &firmware[at..at + PARAMS_MAGIC.len()] != PARAMS_MAGIC {
        return Err(LoadError::NoParameterBlock {
            name: fw_name.to_string(),
            from_end: PARAMS_FROM_END as u64,
        });
    }
    // The ROM's low copy (written after the kernel) is what the CPU runs after its first far
    // jump, and the firmware's real-mode stack sits below 0x7000: neither the kernel nor the
    // Multiboot information may be there.
    let low_len = (firmware.len() as u64).min(firmware::ROM_LOW_ALIAS_MAX);
    let in_use = [
        (
            ONE_MIB - low_len,
            ONE_MIB,
            "the boot firmware's copy below 1 MiB (run at reset)",
        ),
        (
            FIRMWARE_STACK.0,
            FIRMWARE_STACK.1,
            "the boot firmware's stack",
        ),
    ];
    let mut loaded = load_multiboot_avoiding(machine, name, kernel, cmdline, &in_use, modules)?;
    // A Multiboot entry and information address are 32-bit by construction (the loader checks).
    let entry = u32::try_from(loaded.entry).unwrap_or(0);
    let info = loaded
        .info_addr
        .and_then(|a| u32::try_from(a).ok())
        .unwrap_or(0);
    let mut rom = firmware.to_vec();
    rom[at + 8..at + 12].copy_from_slice(&entry.to_le_bytes());
    rom[at + 12..at + 16].copy_from_slice(&info.to_le_bytes());
    let fw = load_firmware(machine, fw_name, &rom)?;
    loaded.format = match loaded.format {
        "Multiboot a.out kludge" => "Multiboot a.out kludge, booted by the firmware from F000:FFF0",
        _ => "Multiboot ELF32, booted by the firmware from F000:FFF0",
    };
    loaded.segments.extend(fw.segments);
    Ok(loaded)
}

//! Loading a Linux bzImage by the x86 boot protocol (Documentation/arch/x86/boot.rst), 32-bit entry.
//! Teaches: what a boot loader hands Linux — the protected-mode kernel at 1 MiB, a "zero page"
//! of boot parameters (the setup header, an e820 memory map, pointers to the command line and
//! the initrd), flat 32-bit segments and ESI pointing at it all.
//!
//! A bzImage is two programs in one file: the real-mode *setup* (its first `setup_sects + 1`
//! sectors, which a BIOS loader runs to query the firmware) and the compressed protected-mode
//! kernel after it. A loader that already knows the machine — QEMU's, Firecracker's, ours —
//! skips the setup code: it copies the setup *header* (offset 0x1F1) into the zero page, fills
//! in what the setup code would have found, and jumps to the kernel's 32-bit entry at
//! `code32_start` with
//!
//! ```text
//!   CS = __BOOT_CS (0x10), DS = ES = SS = __BOOT_DS (0x18): flat 4 GiB, base 0
//!   CR0.PE = 1, paging off, interrupts off, ESI = the zero page, EBP = EDI = EBX = 0
//! ```
//!
//! The kernel's own `startup_32` then builds page tables, enters long mode, decompresses itself
//! (to its preferred address, 16 MiB, for the relocatable kernels distributions ship) and starts.

use anyhow::{bail, Context, Result};
use emulator::cpu::state::{reg, CpuState, DescriptorTable};
use emulator::Machine;

/// Boot protocol 2.06 (2.6.20): the oldest with what this loader relies on (cmdline_size,
/// a 32-bit entry that needs no real-mode setup).
pub const MIN_PROTOCOL: u16 = 0x0206;

// Offsets in the zero page (`struct boot_params`) and in the setup header inside it.
const E820_ENTRIES: usize = 0x1E8;
const SETUP_HEADER: usize = 0x1F1;
const SETUP_SECTS: usize = 0x1F1;
const VID_MODE: usize = 0x1FA;
const BOOT_FLAG: usize = 0x1FE;
const JUMP: usize = 0x200;
const HEADER_MAGIC: usize = 0x202;
const VERSION: usize = 0x206;
const TYPE_OF_LOADER: usize = 0x210;
const LOADFLAGS: usize = 0x211;
const CODE32_START: usize = 0x214;
const RAMDISK_IMAGE: usize = 0x218;
const RAMDISK_SIZE: usize = 0x21C;
const CMD_LINE_PTR: usize = 0x228;
const INITRD_ADDR_MAX: usize = 0x22C;
const CMDLINE_SIZE: usize = 0x238;
const E820_TABLE: usize = 0x2D0;

/// loadflags bit 0: the protected-mode kernel is loaded at 0x100000.
const LOADED_HIGH: u8 = 1;

/// Where the pieces go in guest-physical memory (below the kernel, above the IVT and BDA).
pub const ZERO_PAGE: u64 = 0x7000;
pub const CMDLINE: u64 = 0x20000;
const GDT: u64 = 0x6000;
/// The protected-mode kernel, as every loader has it since boot protocol 2.00.
pub const KERNEL: u64 = 0x10_0000;

/// e820 memory types.
const E820_RAM: u32 = 1;
const E820_RESERVED: u32 = 2;

/// What the setup header says about a bzImage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupHeader {
    pub protocol: u16,
    /// Bytes of real-mode setup before the protected-mode kernel.
    pub setup_bytes: usize,
    pub cmdline_max: u32,
    pub initrd_addr_max: u32,
    /// The header's own bytes, 0x1F1 up to its end, copied into the zero page.
    raw: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads and checks the setup header; `name` is the file for error messages.
pub fn parse(name: &str, image: &[u8]) -> Result<SetupHeader> {
    if image.len() < 0x264 {
        bail!(
            "{name}: {} bytes is too short for a Linux bzImage (its setup header ends at 0x264)",
            image.len()
        );
    }
    if u16_at(image, BOOT_FLAG) != 0xAA55 || &image[HEADER_MAGIC..HEADER_MAGIC + 4] != b"HdrS" {
        bail!("{name}: not a Linux bzImage (no boot flag 0xAA55 at 0x1FE and \"HdrS\" at 0x202)");
    }
    let protocol = u16_at(image, VERSION);
    if protocol < MIN_PROTOCOL {
        bail!(
            "{name}: boot protocol {}.{:02} is older than {}.{:02}, which this loader needs",
            protocol >> 8,
            protocol & 0xFF,
            MIN_PROTOCOL >> 8,
            MIN_PROTOCOL & 0xFF
        );
    }
    if image[LOADFLAGS] & LOADED_HIGH == 0 {
        bail!("{name}: a zImage (loaded low, below 1 MiB), not a bzImage");
    }
    let sects = match image[SETUP_SECTS] {
        0 => 4,
        n => n as usize,
    };
    let setup_bytes = (sects + 1) * 512;
    // The header runs from 0x1F1 to the jump's target: 0x202 + the jump's 8-bit offset.
    let header_end = 0x202 + image[JUMP + 1] as usize;
    if setup_bytes >= image.len() || header_end > image.len() || header_end <= HEADER_MAGIC {
        bail!("{name}: setup_sects {sects} or the header's length do not fit the file");
    }
    Ok(SetupHeader {
        protocol,
        setup_bytes,
        cmdline_max: u32_at(image, CMDLINE_SIZE),
        initrd_addr_max: u32_at(image, INITRD_ADDR_MAX),
        raw: image[SETUP_HEADER..header_end].to_vec(),
    })
}

/// The e820 map of a vmscope PC with `ram` bytes: conventional memory below the EBDA, the
/// legacy video/BIOS area (ACPI tables at 0xE0000 included) reserved, then RAM from 1 MiB.
pub fn e820_map(ram: u64) -> Vec<(u64, u64, u32)> {
    vec![
        (0, 0x9_FC00, E820_RAM),
        (0x9_FC00, 0x400, E820_RESERVED),
        (0xE_0000, 0x2_0000, E820_RESERVED),
        (KERNEL, ram - KERNEL, E820_RAM),
    ]
}

/// Where the loader put things, for `--devices`-style messages.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub protocol: u16,
    pub kernel_bytes: usize,
    pub initrd: Option<(u64, u64)>,
}

/// Loads `image` with `cmdline` and `initrd` into `m` and leaves the CPU at the 32-bit entry.
pub fn load(
    m: &mut Machine,
    name: &str,
    image: &[u8],
    cmdline: &str,
    initrd: Option<&[u8]>,
) -> Result<Loaded> {
    let hdr = parse(name, image)?;
    let ram = m.ram.size();
    let kernel = &image[hdr.setup_bytes..];
    if KERNEL + kernel.len() as u64 > ram {
        bail!(
            "{name}: the kernel ({} bytes) does not fit in {ram} bytes of RAM",
            kernel.len()
        );
    }
    if cmdline.len() as u64 >= u64::from(hdr.cmdline_max).min(0x10000) {
        bail!(
            "the command line is {} bytes; this kernel takes at most {}",
            cmdline.len(),
            hdr.cmdline_max
        );
    }
    m.ram
        .write(KERNEL, kernel)
        .with_context(|| format!("writing the kernel of {name}"))?;

    let mut zero = vec![0u8; 4096];
    zero[SETUP_HEADER..SETUP_HEADER + hdr.raw.len()].copy_from_slice(&hdr.raw);
    zero[VID_MODE..VID_MODE + 2].copy_from_slice(&0xFFFFu16.to_le_bytes()); // "normal"
    zero[TYPE_OF_LOADER] = 0xFF; // a loader with no assigned ID
    zero[CODE32_START..CODE32_START + 4].copy_from_slice(&(KERNEL as u32).to_le_bytes());
    zero[CMD_LINE_PTR..CMD_LINE_PTR + 4].copy_from_slice(&(CMDLINE as u32).to_le_bytes());
    let mut line = cmdline.as_bytes().to_vec();
    line.push(0);
    m.ram
        .write(CMDLINE, &line)
        .context("writing the command line")?;

    let initrd_at = match initrd {
        None => None,
        Some(bytes) => {
            // As high as allowed, page-aligned, below the kernel's limit and RAM's end.
            let top = (u64::from(hdr.initrd_addr_max) + 1).min(ram);
            let at = top.saturating_sub(bytes.len() as u64) & !0xFFF;
            let kernel_end = KERNEL + kernel.len() as u64;
            if at < kernel_end.max(0x400_0000) {
                bail!(
                    "the initrd ({} bytes) does not fit above the kernel in {} MiB of RAM; give more --memory",
                    bytes.len(),
                    ram >> 20
                );
            }
            m.ram.write(at, bytes).context("writing the initrd")?;
            zero[RAMDISK_IMAGE..RAMDISK_IMAGE + 4].copy_from_slice(&(at as u32).to_le_bytes());
            zero[RAMDISK_SIZE..RAMDISK_SIZE + 4]
                .copy_from_slice(&(bytes.len() as u32).to_le_bytes());
            Some((at, bytes.len() as u64))
        }
    };

    let map = e820_map(ram);
    zero[E820_ENTRIES] = map.len() as u8;
    for (i, (addr, size, kind)) in map.iter().enumerate() {
        let at = E820_TABLE + 20 * i;
        zero[at..at + 8].copy_from_slice(&addr.to_le_bytes());
        zero[at + 8..at + 16].copy_from_slice(&size.to_le_bytes());
        zero[at + 16..at + 20].copy_from_slice(&kind.to_le_bytes());
    }
    m.ram
        .write(ZERO_PAGE, &zero)
        .context("writing the zero page")?;

    // GDT: null, null, __BOOT_CS (0x10) flat code, __BOOT_DS (0x18) flat data.
    let gdt: [u64; 4] = [0, 0, 0x00CF_9A00_0000_FFFF, 0x00CF_9200_0000_FFFF];
    let bytes: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
    m.ram.write(GDT, &bytes).context("writing the boot GDT")?;
    m.cpu = entry_state();
    Ok(Loaded {
        protocol: hdr.protocol,
        kernel_bytes: kernel.len(),
        initrd: initrd_at,
    })
}

/// The CPU as the 32-bit boot protocol wants it at `code32_start`: the state a Multiboot
/// loader leaves (flat CS 0x10 and DS 0x18, protected mode, paging and interrupts off), with
/// our GDT, all general registers 0 and ESI at the zero page.
fn entry_state() -> CpuState {
    let mut cpu = CpuState::multiboot_entry(KERNEL as u32, 0);
    cpu.gdtr = DescriptorTable {
        base: GDT,
        limit: 4 * 8 - 1,
    };
    cpu.gpr = [0; 16];
    cpu.gpr[reg::RSI] = ZERO_PAGE;
    cpu
}

#[cfg(test)]
mod tests {
    use super::*;
    use emulator::cpu::state::{ctl, Seg};

    /// A minimal bzImage: a setup header of protocol `version` and `kernel` after one sector
    /// of setup.
    fn image(version: u16, kernel: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 2 * 512];
        b[SETUP_SECTS] = 1;
        b[BOOT_FLAG..BOOT_FLAG + 2].copy_from_slice(&0xAA55u16.to_le_bytes());
        b[JUMP] = 0xEB;
        b[JUMP + 1] = 0x66; // header up to 0x268
        b[HEADER_MAGIC..HEADER_MAGIC + 4].copy_from_slice(b"HdrS");
        b[VERSION..VERSION + 2].copy_from_slice(&version.to_le_bytes());
        b[LOADFLAGS] = LOADED_HIGH;
        b[INITRD_ADDR_MAX..INITRD_ADDR_MAX + 4].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        b[CMDLINE_SIZE..CMDLINE_SIZE + 4].copy_from_slice(&2047u32.to_le_bytes());
        b.extend_from_slice(kernel);
        b
    }

    #[test]
    fn files_that_are_not_a_usable_bzimage_are_named_and_refused() {
        let e = parse("x.elf", &[0x7F, b'E', b'L', b'F'])
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.elf") && e.contains("too short"), "{e}");
        let e = parse("zeros", &vec![0; 4096]).unwrap_err().to_string();
        assert!(e.contains("not a Linux bzImage"), "{e}");
        let e = parse("old", &image(0x0204, b"k")).unwrap_err().to_string();
        assert!(e.contains("2.04") && e.contains("2.06"), "{e}");
        let mut low = image(0x020F, b"k");
        low[LOADFLAGS] = 0;
        assert!(parse("low", &low)
            .unwrap_err()
            .to_string()
            .contains("zImage"));
    }

    #[test]
    fn the_zero_page_carries_header_cmdline_initrd_and_memory_map() {
        let mut m = Machine::new(256 << 20).unwrap();
        let kernel = [0x90u8; 100];
        let initrd = vec![0xAB; 5000];
        let loaded = load(
            &mut m,
            "k",
            &image(0x020F, &kernel),
            "console=ttyS0",
            Some(&initrd),
        )
        .unwrap();
        let mut zero = vec![0u8; 4096];
        m.ram.read(ZERO_PAGE, &mut zero).unwrap();
        assert_eq!(&zero[HEADER_MAGIC..HEADER_MAGIC + 4], b"HdrS");
        assert_eq!(zero[TYPE_OF_LOADER], 0xFF);
        assert_eq!(u32_at(&zero, CMD_LINE_PTR) as u64, CMDLINE);
        let (at, len) = loaded.initrd.unwrap();
        assert_eq!(
            (
                u32_at(&zero, RAMDISK_IMAGE) as u64,
                u32_at(&zero, RAMDISK_SIZE) as u64
            ),
            (at, len)
        );
        assert!(at % 4096 == 0 && at + len <= 256 << 20 && at >= 64 << 20);
        let mut back = vec![0u8; 5000];
        m.ram.read(at, &mut back).unwrap();
        assert_eq!(back, initrd);
        let mut line = [0u8; 14];
        m.ram.read(CMDLINE, &mut line).unwrap();
        assert_eq!(&line, b"console=ttyS0\0");
        // e820: four entries, RAM from 1 MiB to the end of RAM.
        assert_eq!(zero[E820_ENTRIES], 4);
        let last = E820_TABLE + 3 * 20;
        assert_eq!(
            u64::from_le_bytes(zero[last..last + 8].try_into().unwrap()),
            KERNEL
        );
        assert_eq!(
            u64::from_le_bytes(zero[last + 8..last + 16].try_into().unwrap()),
            (256 << 20) - KERNEL
        );
        let mut k = [0u8; 100];
        m.ram.read(KERNEL, &mut k).unwrap();
        assert_eq!(k, kernel);
        assert_eq!(m.cpu.rip, KERNEL);
        assert_eq!(m.cpu.gpr[reg::RSI], ZERO_PAGE);
        assert_eq!(m.cpu.seg[Seg::Cs as usize].selector, 0x10);
        assert!(m.cpu.cr0 & ctl::CR0_PE != 0 && m.cpu.cr0 & ctl::CR0_PG == 0);
    }

    #[test]
    fn a_command_line_too_long_for_the_kernel_is_refused() {
        let mut m = Machine::new(64 << 20).unwrap();
        let long = "x".repeat(3000);
        let e = load(&mut m, "k", &image(0x020F, b"k"), &long, None).unwrap_err();
        assert!(e.to_string().contains("at most 2047"), "{e}");
    }
}

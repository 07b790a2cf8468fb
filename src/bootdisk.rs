//! A Multiboot kernel as a BIOS-bootable hard-disk image, for PCs without a Multiboot loader.
//! Teaches: what a boot loader must be told — where each piece of the kernel lies on the disk,
//! where it goes in memory, where to jump — and how a disk's geometry rounds its size.
//!
//! The image is `guests::BOOTDISK_BIN` (the loader, `guests/asm/bootdisk.S`) with its parameter
//! block filled in, followed by the kernel's ELF32 `PT_LOAD` segments, each from a sector
//! boundary. Only the segments' file bytes are on the disk; the loader zero-fills the rest of
//! each segment (its `.bss`). The parameter block, in the loader's second sector (offset 512):
//!
//! | offset | size | contents |
//! |--------|------|----------|
//! | 0 | 8 | `"VMSCDISK"` ([`PARAMS_MAGIC`]), checked before writing |
//! | 8 | 4 | the kernel's entry point (physical) |
//! | 12 | 4 | the number of segments (at most [`MAX_SEGMENTS`]) |
//! | 16 | 16 × 8 | per segment: first LBA, physical address, bytes in the file, bytes in memory |
//! | 144 | 256 | the command line, zero-terminated |
//!
//! ```
//! let disk = vmscope::bootdisk::build("kernel.elf", guests::KERNEL_ELF, "workloads=compute:1").unwrap();
//! assert_eq!(&disk.bytes[510..512], &[0x55, 0xAA]);
//! assert_eq!(disk.bytes.len() as u64, disk.cylinders * 16 * 63 * 512);
//! ```

use anyhow::{bail, ensure, Context, Result};

/// Bytes per disk sector.
pub const SECTOR: usize = 512;
/// Where the parameter block starts in the loader (its second sector, 0x7E00 in memory).
pub const PARAMS_OFFSET: usize = 512;
/// The magic at the start of the parameter block.
pub const PARAMS_MAGIC: &[u8; 8] = b"VMSCDISK";
/// Room for segments in the parameter block (`MAX_SEGMENTS` in bootdisk.S).
pub const MAX_SEGMENTS: usize = 8;
/// Room for the command line, with its terminating zero (`CMDLINE_BYTES` in bootdisk.S).
pub const CMDLINE_BYTES: usize = 256;
/// The geometry the disk is rounded to: 16 heads, 63 sectors per track (a cylinder is
/// 504 KiB). Bochs needs a flat image's cylinders/heads/sectors in its configuration.
pub const HEADS: u64 = 16;
pub const SECTORS_PER_TRACK: u64 = 63;

/// A bootable disk image and its geometry.
#[derive(Debug, Clone)]
pub struct BootDisk {
    pub bytes: Vec<u8>,
    pub cylinders: u64,
}

/// One `PT_LOAD` segment of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub file_offset: u32,
    pub paddr: u32,
    pub file_size: u32,
    pub mem_size: u32,
}

/// Builds the disk for `kernel` (a Multiboot ELF32 file) started with `cmdline`.
pub fn build(name: &str, kernel: &[u8], cmdline: &str) -> Result<BootDisk> {
    build_with_loader(guests::BOOTDISK_BIN, name, kernel, cmdline)
}

/// [`build`] with another loader binary (tests use a damaged one).
pub fn build_with_loader(
    loader: &[u8],
    name: &str,
    kernel: &[u8],
    cmdline: &str,
) -> Result<BootDisk> {
    let params = PARAMS_OFFSET..PARAMS_OFFSET + 144 + CMDLINE_BYTES;
    ensure!(
        loader.len() >= params.end && loader.len().is_multiple_of(SECTOR),
        "the boot loader is {} bytes: too short or not whole sectors",
        loader.len()
    );
    ensure!(
        loader[PARAMS_OFFSET..PARAMS_OFFSET + 8] == PARAMS_MAGIC[..],
        "the boot loader has no \"VMSCDISK\" parameter block at offset {PARAMS_OFFSET} \
         (guests/link/bootdisk.ld places it there)"
    );
    ensure!(
        cmdline.len() < CMDLINE_BYTES && !cmdline.contains('\0'),
        "the command line is {} bytes; the boot loader holds at most {}",
        cmdline.len(),
        CMDLINE_BYTES - 1
    );
    let (entry, segments) = elf32_segments(name, kernel)?;
    ensure!(
        !segments.is_empty() && segments.len() <= MAX_SEGMENTS,
        "{name}: {} loadable segments; the boot loader takes 1 to {MAX_SEGMENTS}",
        segments.len()
    );
    let mut disk = loader.to_vec();
    for (i, seg) in segments.iter().enumerate() {
        let lba = (disk.len() / SECTOR) as u32;
        let start = seg.file_offset as usize;
        disk.extend_from_slice(&kernel[start..start + seg.file_size as usize]);
        disk.resize(disk.len().next_multiple_of(SECTOR), 0);
        let at = PARAMS_OFFSET + 16 + 16 * i;
        for (k, v) in [lba, seg.paddr, seg.file_size, seg.mem_size]
            .into_iter()
            .enumerate()
        {
            disk[at + 4 * k..at + 4 * k + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    disk[PARAMS_OFFSET + 8..PARAMS_OFFSET + 12].copy_from_slice(&entry.to_le_bytes());
    disk[PARAMS_OFFSET + 12..PARAMS_OFFSET + 16]
        .copy_from_slice(&(segments.len() as u32).to_le_bytes());
    let cmd = PARAMS_OFFSET + 144;
    disk[cmd..cmd + CMDLINE_BYTES].fill(0);
    disk[cmd..cmd + cmdline.len()].copy_from_slice(cmdline.as_bytes());
    let cylinder = (HEADS * SECTORS_PER_TRACK) as usize * SECTOR;
    let cylinders = disk.len().div_ceil(cylinder);
    disk.resize(cylinders * cylinder, 0);
    Ok(BootDisk {
        bytes: disk,
        cylinders: cylinders as u64,
    })
}

/// The entry point and the `PT_LOAD` segments (with a non-zero memory size) of an ELF32
/// i386 executable, every offset checked against the file. Segments must lie between 1 MiB
/// and 4 GiB (below 1 MiB sit the loader, the BIOS and its data) and hold their entry.
pub fn elf32_segments(name: &str, elf: &[u8]) -> Result<(u32, Vec<Segment>)> {
    let u16_at = |off: usize| -> Result<u16> {
        let b = elf.get(off..off + 2).context("truncated")?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |off: usize| -> Result<u32> {
        let b = elf.get(off..off + 4).context("truncated")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let header = || -> Result<(u32, usize, usize, usize)> {
        ensure!(elf.starts_with(b"\x7FELF"), "no ELF magic");
        ensure!(elf.get(4) == Some(&1), "not ELFCLASS32");
        ensure!(u16_at(18)? == 3, "e_machine is not EM_386");
        Ok((
            u32_at(24)?,
            u32_at(28)? as usize,
            u16_at(42)? as usize,
            u16_at(44)? as usize,
        ))
    };
    let (entry, phoff, phentsize, phnum) = header()
        .with_context(|| format!("{name}: the bochs engine boots Multiboot ELF32 kernels only"))?;
    let mut segments = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let field =
            |k: usize| u32_at(ph + 4 * k).with_context(|| format!("{name}: program header {i}"));
        if field(0)? != 1 || field(5)? == 0 {
            continue; // not PT_LOAD, or nothing to place
        }
        let seg = Segment {
            file_offset: field(1)?,
            paddr: field(3)?,
            file_size: field(4)?,
            mem_size: field(5)?,
        };
        let file_end = seg.file_offset as u64 + seg.file_size as u64;
        let mem_end = seg.paddr as u64 + seg.mem_size as u64;
        if seg.file_size > seg.mem_size || file_end > elf.len() as u64 {
            bail!("{name}: segment {i} is larger than its memory or runs past the file");
        }
        if seg.paddr < 0x10_0000 || mem_end > 1 << 32 {
            bail!(
                "{name}: segment {i} at {:#x}..{mem_end:#x}: the boot loader places segments \
                 between 1 MiB and 4 GiB",
                seg.paddr
            );
        }
        segments.push(seg);
    }
    let inside = |s: &Segment| (s.paddr..s.paddr.saturating_add(s.mem_size)).contains(&entry);
    ensure!(
        segments.iter().any(inside),
        "{name}: the entry point {entry:#x} is in no loadable segment"
    );
    Ok((entry, segments))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn the_kernel_segments_land_on_sector_boundaries_named_in_the_parameter_block() {
        let disk = build("kernel.elf", guests::KERNEL_ELF, "workloads=compute:7").unwrap();
        let b = &disk.bytes;
        let (entry, segments) = elf32_segments("kernel.elf", guests::KERNEL_ELF).unwrap();
        assert_eq!(u32_at(b, PARAMS_OFFSET + 8), entry);
        assert_eq!(u32_at(b, PARAMS_OFFSET + 12) as usize, segments.len());
        for (i, seg) in segments.iter().enumerate() {
            let at = PARAMS_OFFSET + 16 + 16 * i;
            let lba = u32_at(b, at) as usize;
            assert!(
                lba * SECTOR >= guests::BOOTDISK_BIN.len(),
                "after the loader"
            );
            assert_eq!(u32_at(b, at + 4), seg.paddr);
            assert_eq!(u32_at(b, at + 8), seg.file_size);
            assert_eq!(u32_at(b, at + 12), seg.mem_size);
            let file = &guests::KERNEL_ELF[seg.file_offset as usize..][..seg.file_size as usize];
            assert_eq!(&b[lba * SECTOR..][..file.len()], file, "segment {i}");
        }
        let cmd = &b[PARAMS_OFFSET + 144..][..20];
        assert_eq!(&cmd[..19], b"workloads=compute:7");
        assert_eq!(cmd[19], 0);
        assert_eq!(disk.cylinders, 1);
        assert_eq!(b.len(), 16 * 63 * 512);
    }

    #[test]
    fn what_the_loader_cannot_take_is_refused_with_a_reason() {
        let long = "x".repeat(CMDLINE_BYTES);
        let err = build("kernel.elf", guests::KERNEL_ELF, &long).unwrap_err();
        assert!(err.to_string().contains("at most 255"), "{err}");
        let err = build("hello-aout.bin", guests::HELLO_AOUT_BIN, "").unwrap_err();
        assert!(format!("{err:#}").contains("ELF32 kernels only"), "{err:#}");
        let mut broken = guests::BOOTDISK_BIN.to_vec();
        broken[PARAMS_OFFSET] = b'X';
        let err = build_with_loader(&broken, "kernel.elf", guests::KERNEL_ELF, "").unwrap_err();
        assert!(err.to_string().contains("VMSCDISK"), "{err}");
        // A segment below 1 MiB would overwrite the loader and the BIOS's data.
        let mut low = guests::KERNEL_ELF.to_vec();
        let phoff = u32_at(&low, 28) as usize;
        low[phoff + 12..phoff + 16].copy_from_slice(&0x8000u32.to_le_bytes());
        let err = build("low.elf", &low, "").unwrap_err();
        assert!(err.to_string().contains("between 1 MiB and 4 GiB"), "{err}");
    }
}

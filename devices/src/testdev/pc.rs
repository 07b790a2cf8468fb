//! pc-testdev, QEMU's ISA test device: a scratch register, interrupt lines a guest can pull by
//! port writes, and 64 KiB of device memory — what kvm-unit-tests' x86 tests poke at.
//! Teaches: a test harness inside the machine — a guest checks the emulator's I/O decoding
//! (widths, offsets, byte splitting), its interrupt routing and its MMIO path from the inside.
//!
//! The layout, as QEMU's `-device pc-testdev` has it:
//!
//! | where                | what                                                              |
//! |----------------------|-------------------------------------------------------------------|
//! | ports 0xE0–0xE3      | a 32-bit scratch register; a byte, word or dword access reads or writes its bytes from the port's offset up |
//! | port 0xE4 (4 bytes)  | "flush page": a dword write names a guest page; KVM's tests use it to make the host drop its mappings. vmscope has no host mappings to drop: it is a no-op |
//! | ports 0xE8–0xEB      | the same register reached byte by byte: a wider access is split into byte accesses at consecutive ports |
//! | ports 0x2000–0x2017  | a byte write to 0x2000 + n drives interrupt line n: high for a non-zero value, low for zero (lines 0–15 are the ISA IRQs, 16–23 the IOAPIC's PCI inputs) |
//! | MMIO 0xFF000000, 64 KiB | plain memory behind the MMIO path (reads return what was written) |
//!
//! **Access rules** are QEMU's memory core's, which is what a guest of QEMU sees: an access must
//! be naturally aligned within its window (a word at 0xE1 is not) and at most 4 bytes wide;
//! one that is not reads 0 and its write is dropped. (Checked against QEMU with the `testdev`
//! guest: `tests/testdev.rs`.)
//!
//! Port 0xE9 is vmscope's debug console on the standard board; a machine with pc-testdev has
//! no debug console (QEMU gives them the same port as well, and only one can own it).

use std::any::Any;

use crate::bus::{BusDevice, DeviceCtx, IrqLine};

/// The scratch register, reached at any width.
pub const SCRATCH_PORTS: (u16, u16) = (0xE0, 0xE3);
/// The flush-page port (dword writes only).
pub const FLUSH_PORTS: (u16, u16) = (0xE4, 0xE7);
/// The scratch register, reached a byte at a time.
pub const SCRATCH_BYTE_PORTS: (u16, u16) = (0xE8, 0xEB);
/// One port per interrupt line.
pub const IRQ_PORTS: (u16, u16) = (0x2000, 0x2017);
/// The device memory window.
pub const IOMEM_BASE: u64 = 0xFF00_0000;
pub const IOMEM_LEN: u64 = 0x1_0000;

/// The device's state: plain data.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct PcTestDev {
    scratch: u32,
    iomem: Vec<u8>,
    /// Line n is driven high (bit n).
    lines_high: u32,
    /// Flush-page requests seen (each a no-op here).
    pub flushes: u64,
}

impl Default for PcTestDev {
    fn default() -> Self {
        PcTestDev {
            scratch: 0,
            iomem: vec![0; IOMEM_LEN as usize],
            lines_high: 0,
            flushes: 0,
        }
    }
}

impl PcTestDev {
    /// The scratch register's value.
    pub fn scratch(&self) -> u32 {
        self.scratch
    }

    /// `size` bytes of the register from byte `offset` up (bytes past byte 3 read 0).
    fn scratch_read(&self, offset: u16, size: u8) -> u32 {
        let shift = 8 * u32::from(offset & 3);
        let value = u64::from(self.scratch) >> shift;
        (value & size_mask(size)) as u32
    }

    fn scratch_write(&mut self, offset: u16, size: u8, value: u32) {
        let shift = 8 * u32::from(offset & 3);
        let mask = ((size_mask(size) << shift) & 0xFFFF_FFFF) as u32;
        let bits = ((u64::from(value) << shift) & 0xFFFF_FFFF) as u32;
        self.scratch = (self.scratch & !mask) | (bits & mask);
    }

    fn set_line(&mut self, n: u16, high: bool, ctx: &mut DeviceCtx) {
        let Some(line) = IrqLine::new(n as u8) else {
            return;
        };
        if high {
            self.lines_high |= 1 << n;
        } else {
            self.lines_high &= !(1 << n);
        }
        ctx.set_irq_level(line, high);
    }
}

/// Naturally aligned and at most 4 bytes: what QEMU lets through to the device.
pub(crate) fn valid_access(offset: u64, size: u8) -> bool {
    matches!(size, 1 | 2 | 4) && offset.is_multiple_of(u64::from(size))
}

fn size_mask(size: u8) -> u64 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => 0xFFFF_FFFF,
    }
}

impl BusDevice for PcTestDev {
    fn name(&self) -> &'static str {
        "pc-testdev"
    }

    fn pio_read(&mut self, port: u16, size: u8, _ctx: &mut DeviceCtx) -> u32 {
        if !valid_access(u64::from(port), size) {
            return 0;
        }
        match port {
            p if (SCRATCH_PORTS.0..=SCRATCH_PORTS.1).contains(&p) => {
                self.scratch_read(p - SCRATCH_PORTS.0, size)
            }
            // One byte access per byte (an aligned access stays inside the window).
            p if (SCRATCH_BYTE_PORTS.0..=SCRATCH_BYTE_PORTS.1).contains(&p) => (0..size)
                .map(|i| self.scratch_read(p + u16::from(i) - SCRATCH_BYTE_PORTS.0, 1) << (8 * i))
                .fold(0, |acc, b| acc | b),
            // The flush and IRQ ports are write-only.
            _ => 0,
        }
    }

    fn pio_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut DeviceCtx) {
        if !valid_access(u64::from(port), size) {
            return;
        }
        match port {
            p if (SCRATCH_PORTS.0..=SCRATCH_PORTS.1).contains(&p) => {
                self.scratch_write(p - SCRATCH_PORTS.0, size, value)
            }
            p if (SCRATCH_BYTE_PORTS.0..=SCRATCH_BYTE_PORTS.1).contains(&p) => {
                for i in 0..size {
                    let byte = (value >> (8 * i)) & 0xFF;
                    self.scratch_write(p + u16::from(i) - SCRATCH_BYTE_PORTS.0, 1, byte);
                }
            }
            p if p == FLUSH_PORTS.0 && size == 4 => self.flushes += 1,
            p if (IRQ_PORTS.0..=IRQ_PORTS.1).contains(&p) && size == 1 => {
                self.set_line(p - IRQ_PORTS.0, value & 0xFF != 0, ctx)
            }
            _ => {}
        }
    }

    fn mmio_read(&mut self, offset: u64, size: u8, _ctx: &mut DeviceCtx) -> u64 {
        if !valid_access(offset, size) {
            return 0;
        }
        let mut bytes = [0u8; 8];
        for (i, b) in bytes.iter_mut().enumerate().take(size as usize) {
            *b = self
                .iomem
                .get((offset + i as u64) as usize)
                .copied()
                .unwrap_or(0);
        }
        u64::from_le_bytes(bytes)
    }

    fn mmio_write(&mut self, offset: u64, size: u8, value: u64, _ctx: &mut DeviceCtx) {
        for (i, b) in value
            .to_le_bytes()
            .iter()
            .enumerate()
            .take(size.min(8) as usize)
        {
            if let Some(slot) = self.iomem.get_mut((offset + i as u64) as usize) {
                *slot = *b;
            }
        }
    }

    crate::snapshot::plain_data_snapshot!();

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

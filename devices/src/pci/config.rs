//! One PCI function's configuration space: IDs, command/status, BARs, interrupt pin, capabilities.
//! Teaches: how an OS discovers and places devices it knows nothing about — it reads IDs,
//! sizes each BAR by writing all ones, assigns addresses, and walks the capability list.

use crate::bus::MsiMessage;

/// Offsets in the type-0 header (PCI Local Bus Specification 3.0, 6.1).
pub mod reg {
    pub const VENDOR_ID: usize = 0x00;
    pub const DEVICE_ID: usize = 0x02;
    pub const COMMAND: usize = 0x04;
    pub const STATUS: usize = 0x06;
    pub const REVISION: usize = 0x08;
    pub const CLASS: usize = 0x09; // prog-if, subclass, class: 3 bytes
    pub const HEADER_TYPE: usize = 0x0E;
    pub const BAR0: usize = 0x10;
    pub const SUBSYSTEM_VENDOR_ID: usize = 0x2C;
    pub const SUBSYSTEM_ID: usize = 0x2E;
    pub const CAPABILITIES: usize = 0x34;
    pub const INTERRUPT_LINE: usize = 0x3C;
    pub const INTERRUPT_PIN: usize = 0x3D;
}

/// Command register bits.
pub mod command {
    pub const IO: u16 = 1 << 0;
    pub const MEMORY: u16 = 1 << 1;
    pub const BUS_MASTER: u16 = 1 << 2;
    pub const INTX_DISABLE: u16 = 1 << 10;
}

/// Status register bits.
pub mod status {
    pub const INTERRUPT: u16 = 1 << 3;
    pub const CAPABILITIES_LIST: u16 = 1 << 4;
}

/// Capability IDs.
pub const CAP_MSI: u8 = 0x05;
pub const CAP_VENDOR: u8 = 0x09;

/// What a BAR decodes. Sizes are powers of two (at least 16 bytes for memory, 4 for I/O).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    Io {
        size: u32,
    },
    Mem32 {
        size: u32,
        prefetchable: bool,
    },
    /// Takes two BAR slots (the next one holds the upper 32 bits).
    Mem64 {
        size: u64,
        prefetchable: bool,
    },
}

impl BarKind {
    pub fn size(&self) -> u64 {
        match *self {
            BarKind::Io { size } | BarKind::Mem32 { size, .. } => size as u64,
            BarKind::Mem64 { size, .. } => size,
        }
    }
    pub fn is_io(&self) -> bool {
        matches!(self, BarKind::Io { .. })
    }
}

/// A BAR the command register enables and the guest has placed: where it decodes now.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarMapping {
    pub bar: u8,
    pub base: u64,
    pub size: u64,
    pub io: bool,
}

/// 256 bytes of configuration space with per-bit write masks.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct PciConfig {
    #[serde(with = "crate::snapshot::byte_array")]
    bytes: [u8; 256],
    /// Bits the guest may change (1 = writable).
    #[serde(with = "crate::snapshot::byte_array")]
    writable: [u8; 256],
    /// Bits a write of 1 clears (status error bits).
    #[serde(with = "crate::snapshot::byte_array")]
    write_one_clears: [u8; 256],
    bars: [Option<BarKind>; 6],
    /// The last capability in the list (0: none yet), to chain the next one.
    last_cap: u8,
    next_cap_offset: usize,
    msi_offset: Option<usize>,
}

impl PciConfig {
    /// A type-0 function with these IDs and class code (`class << 16 | subclass << 8 | prog_if`).
    pub fn new(vendor: u16, device: u16, class_code: u32, revision: u8) -> Self {
        let mut c = PciConfig {
            bytes: [0; 256],
            writable: [0; 256],
            write_one_clears: [0; 256],
            bars: [None; 6],
            last_cap: 0,
            next_cap_offset: 0x40,
            msi_offset: None,
        };
        c.put(reg::VENDOR_ID, 2, vendor as u32);
        c.put(reg::DEVICE_ID, 2, device as u32);
        c.bytes[reg::REVISION] = revision;
        c.put(reg::CLASS, 3, class_code);
        let cmd = command::IO | command::MEMORY | command::BUS_MASTER | command::INTX_DISABLE;
        c.writable[reg::COMMAND..reg::COMMAND + 2].copy_from_slice(&cmd.to_le_bytes());
        c.writable[reg::INTERRUPT_LINE] = 0xFF;
        c
    }

    fn put(&mut self, offset: usize, len: usize, value: u32) {
        self.bytes[offset..offset + len].copy_from_slice(&value.to_le_bytes()[..len]);
    }

    fn get(&self, offset: usize, len: usize) -> u32 {
        let mut b = [0u8; 4];
        b[..len].copy_from_slice(&self.bytes[offset..offset + len]);
        u32::from_le_bytes(b)
    }

    pub fn set_subsystem(&mut self, vendor: u16, id: u16) {
        self.put(reg::SUBSYSTEM_VENDOR_ID, 2, vendor as u32);
        self.put(reg::SUBSYSTEM_ID, 2, id as u32);
    }

    // ANCHOR: bar_sizing
    /// Declares BAR `index` (a 64-bit one also occupies `index + 1`).
    pub fn set_bar(&mut self, index: usize, kind: BarKind) {
        assert!(
            index < 6 && kind.size().is_power_of_two(),
            "BAR {index}: {kind:?}"
        );
        let off = reg::BAR0 + 4 * index;
        let (low_bits, mask): (u32, u64) = match kind {
            BarKind::Io { size } => (1, !(size as u64 - 1) & 0xFFFF_FFFC),
            BarKind::Mem32 { size, prefetchable } => {
                ((prefetchable as u32) << 3, !(size as u64 - 1) & 0xFFFF_FFF0)
            }
            BarKind::Mem64 { size, prefetchable } => {
                assert!(index < 5, "a 64-bit BAR needs two slots");
                (0b100 | (prefetchable as u32) << 3, !(size - 1) & !0xF)
            }
        };
        self.put(off, 4, low_bits);
        self.writable[off..off + 4].copy_from_slice(&(mask as u32).to_le_bytes());
        if matches!(kind, BarKind::Mem64 { .. }) {
            self.writable[off + 4..off + 8].copy_from_slice(&((mask >> 32) as u32).to_le_bytes());
        }
        self.bars[index] = Some(kind);
    }
    // ANCHOR_END: bar_sizing

    /// Interrupt pin (1 = INTA#) and the line firmware would have written.
    pub fn set_interrupt(&mut self, pin: u8, line: u8) {
        self.bytes[reg::INTERRUPT_PIN] = pin;
        self.bytes[reg::INTERRUPT_LINE] = line;
    }

    /// Appends a capability: `body` is everything after the ID and next-pointer bytes;
    /// `writable` has the same length and marks the bits the guest may change. Returns the
    /// capability's offset.
    pub fn add_capability(&mut self, id: u8, body: &[u8], writable: &[u8]) -> usize {
        assert_eq!(body.len(), writable.len());
        let at = self.next_cap_offset;
        let len = 2 + body.len();
        assert!(at + len <= 256, "capabilities overflow config space");
        self.bytes[at] = id;
        self.bytes[at + 1] = 0;
        self.bytes[at + 2..at + len].copy_from_slice(body);
        self.writable[at + 2..at + len].copy_from_slice(writable);
        if self.last_cap == 0 {
            self.bytes[reg::CAPABILITIES] = at as u8;
        } else {
            self.bytes[self.last_cap as usize + 1] = at as u8;
        }
        let st = self.get(reg::STATUS, 2) as u16 | status::CAPABILITIES_LIST;
        self.put(reg::STATUS, 2, st as u32);
        self.last_cap = at as u8;
        self.next_cap_offset = (at + len).next_multiple_of(4);
        at
    }

    // ANCHOR: msi_capability
    /// Adds an MSI capability (64-bit address, one vector, no per-vector masking).
    pub fn add_msi(&mut self) -> usize {
        // Message control (enable bit 0; 64-bit capable bit 7), address low/high, data.
        let body = [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let writable = [
            0x01, 0, 0xFC, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        let at = self.add_capability(CAP_MSI, &body, &writable);
        self.msi_offset = Some(at);
        at
    }

    /// The MSI message the guest programmed, if it enabled MSI.
    pub fn msi(&self) -> Option<MsiMessage> {
        let at = self.msi_offset?;
        if self.bytes[at + 2] & 1 == 0 {
            return None;
        }
        let address = self.get(at + 4, 4) as u64 | (self.get(at + 8, 4) as u64) << 32;
        let data = self.get(at + 12, 2);
        Some(MsiMessage { address, data })
    }
    // ANCHOR_END: msi_capability

    pub fn command(&self) -> u16 {
        self.get(reg::COMMAND, 2) as u16
    }

    pub fn bus_master(&self) -> bool {
        self.command() & command::BUS_MASTER != 0
    }

    pub fn intx_disabled(&self) -> bool {
        self.command() & command::INTX_DISABLE != 0
    }

    /// Sets or clears the status register's interrupt bit (what a driver reads to see INTx).
    pub fn set_interrupt_status(&mut self, on: bool) {
        let mut st = self.get(reg::STATUS, 2) as u16 & !status::INTERRUPT;
        if on {
            st |= status::INTERRUPT;
        }
        self.put(reg::STATUS, 2, st as u32);
    }

    pub fn interrupt_pin(&self) -> u8 {
        self.bytes[reg::INTERRUPT_PIN]
    }

    /// Reads `size` (1, 2, 4) bytes at `offset`; out-of-range parts read as zeros.
    pub fn read(&self, offset: usize, size: usize) -> u32 {
        let mut v = 0u32;
        for i in 0..size.min(4) {
            if let Some(b) = self.bytes.get(offset + i) {
                v |= (*b as u32) << (8 * i);
            }
        }
        v
    }

    // ANCHOR: config_write
    /// Writes through the write masks. Returns true if a BAR or the command register changed
    /// (the bus must re-decode this function's BARs).
    pub fn write(&mut self, offset: usize, size: usize, value: u32) -> bool {
        let mut remap = false;
        for i in 0..size.min(4) {
            let at = offset + i;
            if at >= 256 {
                break;
            }
            let new = (value >> (8 * i)) as u8;
            let mask = self.writable[at];
            let old = self.bytes[at];
            let mut byte = (old & !mask) | (new & mask);
            byte &= !(new & self.write_one_clears[at]);
            self.bytes[at] = byte;
            let decodes = (reg::COMMAND..reg::COMMAND + 2).contains(&at)
                || (reg::BAR0..reg::BAR0 + 24).contains(&at);
            remap |= decodes && byte != old;
        }
        remap
    }
    // ANCHOR_END: config_write

    /// The BARs that decode now: declared, placed (non-zero), and enabled in the command register.
    pub fn mappings(&self) -> Vec<BarMapping> {
        let cmd = self.command();
        let mut out = Vec::new();
        for (i, kind) in self.bars.iter().enumerate() {
            let Some(kind) = kind else { continue };
            let off = reg::BAR0 + 4 * i;
            let (base, io) = match kind {
                BarKind::Io { .. } => ((self.get(off, 4) & !3) as u64, true),
                BarKind::Mem32 { .. } => ((self.get(off, 4) & !0xF) as u64, false),
                BarKind::Mem64 { .. } => (
                    (self.get(off, 4) & !0xF) as u64 | (self.get(off + 4, 4) as u64) << 32,
                    false,
                ),
            };
            let enabled = if io {
                cmd & command::IO != 0
            } else {
                cmd & command::MEMORY != 0
            };
            let size = kind.size();
            // A BAR at 0, or one that would wrap around the address space, decodes nothing;
            // so does an I/O BAR above 64 KiB (x86 ports are 16-bit).
            let fits = base.checked_add(size).is_some() && (!io || base + size <= 0x1_0000);
            if enabled && base != 0 && fits {
                out.push(BarMapping {
                    bar: i as u8,
                    base,
                    size,
                    io,
                });
            }
        }
        out
    }

    /// Places BAR `index` at `base` as firmware would (tests, and the board's defaults).
    pub fn place_bar(&mut self, index: usize, base: u64) {
        let off = reg::BAR0 + 4 * index;
        let low = self.get(off, 4);
        let keep = if low & 1 != 0 { low & 3 } else { low & 0xF };
        self.put(
            off,
            4,
            (base as u32 & !(if low & 1 != 0 { 3 } else { 0xF })) | keep,
        );
        if matches!(self.bars[index], Some(BarKind::Mem64 { .. })) {
            self.put(off + 4, 4, (base >> 32) as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_sizes_as_an_os_probes_it() {
        let mut c = PciConfig::new(0x1AF4, 0x1042, 0x01_00_00, 1);
        c.set_bar(0, BarKind::Io { size: 0x40 });
        c.set_bar(
            1,
            BarKind::Mem32 {
                size: 0x1000,
                prefetchable: false,
            },
        );
        c.set_bar(
            2,
            BarKind::Mem64 {
                size: 0x4000,
                prefetchable: true,
            },
        );
        c.write(reg::BAR0, 4, 0xFFFF_FFFF);
        assert_eq!(c.read(reg::BAR0, 4), 0xFFFF_FFC1, "I/O: size 64, bit 0 set");
        c.write(reg::BAR0 + 4, 4, 0xFFFF_FFFF);
        assert_eq!(c.read(reg::BAR0 + 4, 4), 0xFFFF_F000);
        c.write(reg::BAR0 + 8, 4, 0xFFFF_FFFF);
        c.write(reg::BAR0 + 12, 4, 0xFFFF_FFFF);
        assert_eq!(c.read(reg::BAR0 + 8, 4), 0xFFFF_C00C, "64-bit prefetchable");
        assert_eq!(c.read(reg::BAR0 + 12, 4), 0xFFFF_FFFF);
        assert_eq!(
            c.read(reg::BAR0 + 16, 4),
            0,
            "an undeclared BAR reads 0, sizes to 0"
        );
        c.write(reg::BAR0 + 16, 4, 0xFFFF_FFFF);
        assert_eq!(c.read(reg::BAR0 + 16, 4), 0);
    }

    #[test]
    fn bars_decode_only_when_placed_and_enabled() {
        let mut c = PciConfig::new(0x1AF4, 0x1042, 0x01_00_00, 1);
        c.set_bar(0, BarKind::Io { size: 0x40 });
        c.set_bar(
            2,
            BarKind::Mem64 {
                size: 0x4000,
                prefetchable: false,
            },
        );
        c.write(reg::BAR0, 4, 0xC000);
        c.write(reg::BAR0 + 8, 4, 0xE000_0000);
        c.write(reg::BAR0 + 12, 4, 0x1);
        assert!(c.mappings().is_empty(), "command register off");
        assert!(c.write(reg::COMMAND, 2, (command::IO | command::MEMORY) as u32));
        let m = c.mappings();
        assert_eq!(
            m[0],
            BarMapping {
                bar: 0,
                base: 0xC000,
                size: 0x40,
                io: true
            }
        );
        assert_eq!(m[1].base, 0x1_E000_0000);
    }

    #[test]
    fn read_only_fields_ignore_writes_and_capabilities_chain() {
        let mut c = PciConfig::new(0x8086, 0x1237, 0x06_00_00, 2);
        c.write(reg::VENDOR_ID, 4, 0);
        assert_eq!(c.read(reg::VENDOR_ID, 4), 0x1237_8086);
        let a = c.add_capability(CAP_VENDOR, &[4, 1], &[0, 0]);
        let b = c.add_msi();
        assert_eq!(c.read(reg::CAPABILITIES, 1) as usize, a);
        assert_eq!(c.read(a + 1, 1) as usize, b);
        assert_eq!(c.read(b + 1, 1), 0, "end of list");
        assert!(c.read(reg::STATUS, 2) as u16 & status::CAPABILITIES_LIST != 0);
        assert_eq!(c.msi(), None);
        c.write(b + 4, 4, 0xFEE0_0000);
        c.write(b + 12, 2, 0x0041);
        c.write(b + 2, 2, 1);
        assert_eq!(
            c.msi(),
            Some(MsiMessage {
                address: 0xFEE0_0000,
                data: 0x41
            })
        );
    }
}

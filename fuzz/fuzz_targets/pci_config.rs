//! Random PCI configuration-space reads and writes (mechanism #1, 0xCF8/0xCFC, any offset and size) on the
//! PC board with a virtio-pci rng and QEMU's pci-testdev, then accesses where the BARs now decode. No panics.
#![no_main]

use devices::board::PcPlatformConfig;
use devices::bus::Bus;
use devices::placement::{Transport, VirtioPlacement};
use devices::virtio::rng::VirtioRng;
use libfuzzer_sys::fuzz_target;

/// Devices the config address points at most of the time: the host bridge (slot 0), the
/// virtio-pci rng (2), pci-testdev (3), an empty slot (4).
const SLOTS: [u32; 4] = [0, 2, 3, 4];
const RAM: usize = 0x10000;

fuzz_target!(|data: &[u8]| {
    let mut bus = Bus::new_pc(PcPlatformConfig {
        ram_bytes: RAM as u64,
    });
    let mut place = VirtioPlacement::default();
    place
        .place(&mut bus, Box::new(VirtioRng::new(1)), Transport::Pci)
        .expect("the rng's slot");
    place
        .place_pci_testdev(&mut bus)
        .expect("pci-testdev's slot");
    let mut ram = vec![0u8; RAM];

    for op in data.chunks_exact(6) {
        let size = [1u8, 2, 4, 4][usize::from(op[0] >> 6)];
        let v = u32::from_le_bytes([op[2], op[3], op[4], op[5]]);
        match op[0] & 7 {
            // The address register: enable bit, bus 0 (usually), a known slot, any function and register.
            0 => {
                let slot = if op[1] & 0x80 == 0 {
                    SLOTS[usize::from(op[1] & 3)]
                } else {
                    (v >> 11) & 0x1F
                };
                let bus_nr = if op[1] & 0x40 == 0 {
                    0
                } else {
                    (v >> 16) & 0xFF
                };
                let enable = if op[1] & 0x20 == 0 { 0x8000_0000 } else { 0 };
                let addr = enable | bus_nr << 16 | slot << 11 | (v & 0x7FC) | (v >> 24 & 3);
                bus.io_out_with(0xCF8, 4, addr, &mut ram);
            }
            // Data port, any of its four byte lanes.
            1 | 2 => bus.io_out_with(0xCFC + u16::from(op[1] & 3), size, v, &mut ram),
            3 => {
                let _ = bus.io_in_with(0xCFC + u16::from(op[1] & 3), size, &mut ram);
            }
            // 0xCF8 itself at other sizes and lanes (0xCF9 is the reset control register).
            4 => {
                let port = 0xCF8 + u16::from(op[1] & 3);
                if op[1] & 4 == 0 {
                    let _ = bus.io_in_with(port, size, &mut ram);
                } else if port != 0xCF9 {
                    bus.io_out_with(port, size, v, &mut ram);
                }
            }
            // Where the memory BARs are placed (or were moved by the writes above).
            5 => {
                let addr = 0xE000_0000 + u64::from(v & 0x3FFFF);
                if op[1] & 1 == 0 {
                    let _ = bus.mmio_read_with(addr, size, &mut ram);
                } else {
                    let _ = bus.mmio_write_with(addr, size, u64::from(v), &mut ram);
                }
            }
            // The PCI I/O window (pci-testdev's I/O BAR).
            _ => {
                let port = 0xC000 + (v as u16 & 0x3FF);
                if op[1] & 1 == 0 {
                    let _ = bus.io_in_with(port, size, &mut ram);
                } else {
                    bus.io_out_with(port, size, v >> 8, &mut ram);
                }
            }
        }
    }
});

//! The Realtek RTL8139C, a fully emulated PCI Fast Ethernet NIC: the registers its drivers
//! (Linux 8139too, Windows, the teaching kernel's) program, and the DMA it does.
//! Teaches: what "emulated device" costs — every frame needs several register accesses, each
//! one a trap into the VMM, where virtio-net needs one doorbell per batch.
//!
//! Why this chip: it was QEMU's default NIC for a decade, every OS has a driver, and its
//! programming model is small enough to read in an afternoon — four transmit descriptors,
//! one receive ring — while being a real bus-master PCI device (an ISA NE2000 would teach
//! port-I/O copying instead of DMA, which no NIC since does).
//!
//! Transmit: the driver writes a buffer's physical address to TSAD*n* and its length to
//! TSD*n* with OWN clear; the chip reads the frame by DMA, sends it, and sets OWN and TOK in
//! TSD*n* and TOK in ISR. Descriptors are used round-robin.
//! Receive: a ring of 8/16/32/64 KiB + 16 at RBSTART. The chip writes each frame there at
//! CBR behind a 4-byte header (status, length including the 4-byte CRC) and the CRC,
//! 4-byte aligned, sets ROK in ISR; the driver reads from CAPR + 16 (a quirk every driver
//! carries) and moves CAPR on. With RCR.WRAP set a frame may run past the ring's end into
//! the extra 1.5 KiB instead of wrapping. While the ring is full, frames wait on the link
//! (bounded there), as QEMU's `can_receive` makes them wait.
//! The interrupt line is ISR & IMR ≠ 0; ISR bits clear when written with 1.
//! Not modelled: C+ mode (descriptor rings of the 8139C+), wake-on-LAN, the PHY's
//! negotiation (the link is up at 100 Mb/s full duplex whenever the cable is plugged in).

use std::any::Any;

use super::eeprom93c46::{self, Eeprom93c46};
use super::{MacAddr, NetLink, MAX_FRAME};
use crate::bus::{BusDevice, DeviceCtx, IrqLine};
use crate::pci::config::{BarKind, PciConfig};

pub const VENDOR_ID: u16 = 0x10EC;
pub const DEVICE_ID: u16 = 0x8139;
/// Network controller, Ethernet.
pub const CLASS_CODE: u32 = 0x02_00_00;
/// Revision 0x10: an RTL8139C (QEMU's 0x20 is the C+, which we are not).
pub const REVISION: u8 = 0x10;
/// BAR 0 (I/O ports) and BAR 1 (memory) both hold the 256-byte register file.
pub const BAR_SIZE: u32 = 256;

/// Register offsets (datasheet names).
pub mod reg {
    pub const IDR0: usize = 0x00;
    pub const MAR0: usize = 0x08;
    pub const TSD0: usize = 0x10;
    pub const TSAD0: usize = 0x20;
    pub const RBSTART: usize = 0x30;
    pub const CR: usize = 0x37;
    pub const CAPR: usize = 0x38;
    pub const CBR: usize = 0x3A;
    pub const IMR: usize = 0x3C;
    pub const ISR: usize = 0x3E;
    pub const TCR: usize = 0x40;
    pub const RCR: usize = 0x44;
    pub const TCTR: usize = 0x48;
    pub const MPC: usize = 0x4C;
    pub const CR9346: usize = 0x50;
    pub const CONFIG1: usize = 0x52;
    pub const MSR: usize = 0x58;
    pub const TSAD: usize = 0x60;
    pub const BMCR: usize = 0x62;
    pub const BMSR: usize = 0x64;
}

pub mod cr {
    pub const BUFE: u8 = 1 << 0;
    pub const TE: u8 = 1 << 2;
    pub const RE: u8 = 1 << 3;
    pub const RST: u8 = 1 << 4;
}

pub mod isr {
    pub const ROK: u16 = 1 << 0;
    pub const RER: u16 = 1 << 1;
    pub const TOK: u16 = 1 << 2;
    pub const TER: u16 = 1 << 3;
    pub const RXOVW: u16 = 1 << 4;
    pub const LINK_CHANGE: u16 = 1 << 5;
}

pub mod tsd {
    pub const SIZE_MASK: u32 = 0x1FFF;
    pub const OWN: u32 = 1 << 13;
    pub const TUN: u32 = 1 << 14;
    pub const TOK: u32 = 1 << 15;
    pub const TABT: u32 = 1 << 30;
    /// Carrier sense lost while sending.
    pub const CRS: u32 = 1 << 31;
    /// What the driver may write: size, the early-TX threshold (bits 16–21).
    pub const WRITABLE: u32 = SIZE_MASK | OWN | 0x3F << 16;
}

pub mod rcr {
    pub const AAP: u32 = 1 << 0;
    pub const APM: u32 = 1 << 1;
    pub const AM: u32 = 1 << 2;
    pub const AB: u32 = 1 << 3;
    pub const WRAP: u32 = 1 << 7;
}

/// Receive header status bits.
const RX_ROK: u16 = 1 << 0;
const RX_PAM: u16 = 1 << 13;
const RX_BAR: u16 = 1 << 14;
const RX_MAR: u16 = 1 << 15;
/// TCR's hardware version bits for an RTL8139C (Linux 8139too: HW_REVID(1,1,1,0,1,0,0)).
const TCR_HWVERID: u32 = 0x7400_0000;
/// PCI clocks per µs for TCTR (the timer counts at the 33 MHz bus clock).
const TCTR_MHZ: u64 = 33;

/// What the chip counted beyond the link's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rtl8139Stats {
    pub tx_frames: u64,
    /// Transmit aborted: size 0 or too large, buffer outside RAM, refused by the link, or
    /// sent without a cable.
    pub tx_aborted: u64,
    pub rx_frames: u64,
    /// Frames the address filter did not accept (not for us).
    pub rx_filtered: u64,
    /// Frames lost: receiver off, or the ring outside RAM.
    pub rx_missed: u64,
}

/// An RTL8139C on `link`.
pub struct Rtl8139 {
    config: PciConfig,
    irq: IrqLine,
    link: NetLink,
    mac: MacAddr,
    /// The register file; registers with behaviour are read and written through methods.
    regs: [u8; 256],
    eeprom: Eeprom93c46,
    /// When TCTR was last written (it counts PCI clocks since).
    tctr_base_ns: u64,
    mpc: u32,
    irq_high: bool,
    stats: Rtl8139Stats,
    /// Descriptors handed over while the link was full, in the order they were.
    tx_waiting: std::collections::VecDeque<usize>,
}

impl Rtl8139 {
    pub fn new(mac: MacAddr, link: NetLink, irq: IrqLine) -> Self {
        let mut config = PciConfig::new(VENDOR_ID, DEVICE_ID, CLASS_CODE, REVISION);
        config.set_subsystem(VENDOR_ID, DEVICE_ID);
        config.set_bar(0, BarKind::Io { size: BAR_SIZE });
        config.set_bar(
            1,
            BarKind::Mem32 {
                size: BAR_SIZE,
                prefetchable: false,
            },
        );
        config.set_interrupt(1, irq.number());
        let mut words = [0u16; 64];
        words[0] = 0x8129; // the RTL8139's EEPROM signature
        words[1] = VENDOR_ID;
        words[2] = DEVICE_ID;
        for i in 0..3 {
            words[7 + i] = u16::from_le_bytes([mac.0[2 * i], mac.0[2 * i + 1]]);
        }
        let mut nic = Rtl8139 {
            config,
            irq,
            link,
            mac,
            regs: [0; 256],
            eeprom: Eeprom93c46::new(words),
            tctr_base_ns: 0,
            mpc: 0,
            irq_high: false,
            stats: Rtl8139Stats::default(),
            tx_waiting: std::collections::VecDeque::new(),
        };
        nic.power_on();
        nic
    }

    /// Places BAR 0 (ports) and BAR 1 (memory) and enables decoding and bus mastering, as
    /// firmware would.
    pub fn place(mut self, io_base: u16, mem_base: u64) -> Self {
        use crate::pci::config::{command, reg};
        self.config.place_bar(0, u64::from(io_base));
        self.config.place_bar(1, mem_base);
        let cmd = command::IO | command::MEMORY | command::BUS_MASTER;
        self.config.write(reg::COMMAND, 2, u32::from(cmd));
        self
    }

    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    pub fn stats(&self) -> Rtl8139Stats {
        self.stats
    }

    fn r16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.regs[at], self.regs[at + 1]])
    }

    fn r32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.regs[at..at + 4].try_into().expect("4 bytes"))
    }

    fn w16(&mut self, at: usize, v: u16) {
        self.regs[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn w32(&mut self, at: usize, v: u32) {
        self.regs[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Power-on: the MAC loaded from the EEPROM, then a software reset.
    fn power_on(&mut self) {
        self.regs = [0; 256];
        self.regs[reg::IDR0..reg::IDR0 + 6].copy_from_slice(&self.mac.0);
        self.w32(reg::RCR, 0);
        self.regs[reg::CONFIG1] = 0x8D; // LWACT, DVRLOAD, PMEn as the datasheet's default
        self.software_reset();
    }

    /// CR.RST: transmit and receive stop, pointers and interrupts back to their start; the
    /// MAC, the multicast filter and RCR/TCR stay (datasheet: only the "initial" registers).
    fn software_reset(&mut self) {
        self.regs[reg::CR] = 0;
        self.w16(reg::IMR, 0);
        self.w16(reg::ISR, 0);
        self.w16(reg::CAPR, 0xFFF0);
        self.w16(reg::CBR, 0);
        for n in 0..4 {
            self.w32(reg::TSD0 + 4 * n, tsd::OWN);
        }
        let tcr = self.r32(reg::TCR) & !0x7CC0_0000 | TCR_HWVERID;
        self.w32(reg::TCR, tcr);
        self.w16(reg::BMCR, 0x3100); // 100 Mb/s, auto-negotiation on, full duplex
        self.mpc = 0;
        self.tx_waiting.clear();
    }

    fn raise(&mut self, bits: u16) {
        let v = self.r16(reg::ISR) | bits;
        self.w16(reg::ISR, v);
    }

    // ---- registers ----

    fn read_byte(&mut self, at: usize, now_ns: u64) -> u8 {
        match at {
            reg::CR => {
                let empty = if self.ring_used() == 0 { cr::BUFE } else { 0 };
                self.regs[reg::CR] & (cr::RE | cr::TE) | empty
            }
            0x48..=0x4B => {
                let clocks = now_ns.saturating_sub(self.tctr_base_ns) * TCTR_MHZ / 1000;
                (clocks as u32).to_le_bytes()[at - reg::TCTR]
            }
            0x4C..=0x4F => (self.mpc & 0xFF_FFFF).to_le_bytes()[at - reg::MPC],
            reg::CR9346 => {
                let pins = self.regs[reg::CR9346] & !eeprom93c46::PIN_DO;
                pins | u8::from(self.eeprom.data_out())
            }
            reg::MSR => {
                // LINKB (bit 2) is the inverse of the link; SPEED_10 (bit 3) clear: 100 Mb/s.
                if self.link.carrier() {
                    0
                } else {
                    1 << 2
                }
            }
            0x60..=0x61 => self.tx_summary().to_le_bytes()[at - reg::TSAD],
            0x64..=0x65 => {
                // BMSR: 100BASE-TX full/half capable, auto-negotiation able and complete,
                // link status.
                let link = if self.link.carrier() { 1 << 2 } else { 0 };
                (0x7809u16 | 1 << 5 | link).to_le_bytes()[at - reg::BMSR]
            }
            _ => self.regs[at],
        }
    }

    /// TSAD (0x60): TOK, TUN, TABT and OWN of all four descriptors in one word.
    fn tx_summary(&self) -> u16 {
        let mut v = 0u16;
        for n in 0..4 {
            let t = self.r32(reg::TSD0 + 4 * n);
            v |= u16::from(t & tsd::OWN != 0) << n;
            v |= u16::from(t & tsd::TABT != 0) << (4 + n);
            v |= u16::from(t & tsd::TUN != 0) << (8 + n);
            v |= u16::from(t & tsd::TOK != 0) << (12 + n);
        }
        v
    }

    /// A driver write of `size` bytes at `at`. Registers act once all their bytes in this
    /// access are stored (a 32-bit TSD write transmits once, not four times).
    fn write(&mut self, at: usize, size: usize, value: u64, ctx: &mut DeviceCtx) {
        let end = (at + size).min(self.regs.len());
        let bytes = value.to_le_bytes();
        for (i, a) in (at..end).enumerate() {
            let b = bytes[i];
            match a {
                // ISR: write 1 to clear.
                0x3E..=0x3F => self.regs[a] &= !b,
                reg::CR => {
                    if b & cr::RST != 0 {
                        self.software_reset();
                    } else {
                        self.regs[reg::CR] = b & (cr::RE | cr::TE);
                    }
                }
                // Read-only: CBR, MSR, TSAD, BMSR; TCR's version bits.
                0x3A..=0x3B | reg::MSR | 0x60..=0x61 | 0x64..=0x65 => {}
                0x43 => self.regs[a] = b & !0x7C | (TCR_HWVERID >> 24) as u8,
                0x42 => self.regs[a] = b & !0xC0 | (TCR_HWVERID >> 16) as u8 & 0xC0,
                0x48..=0x4B => self.tctr_base_ns = ctx.now_ns,
                0x4C..=0x4F => self.mpc = 0,
                reg::CR9346 => {
                    self.regs[a] = b;
                    // Mode 10 (bits 7–6): the pins drive the EEPROM directly.
                    let pins = if b >> 6 == 0b10 { b & 0x0F } else { 0 };
                    self.eeprom.set_pins(pins);
                }
                _ => self.regs[a] = b,
            }
        }
        // Registers that act on the value just written.
        for n in 0..4 {
            let tsd_at = reg::TSD0 + 4 * n;
            if at < tsd_at + 4 && tsd_at < end {
                let v = self.r32(tsd_at) & tsd::WRITABLE;
                self.w32(tsd_at, v);
                if v & tsd::OWN == 0 {
                    self.transmit(n, ctx);
                }
            }
        }
        if at < reg::CAPR + 2 && reg::CAPR < end {
            self.deliver(ctx); // room may have been made for waiting frames
        }
    }

    // ---- transmit ----

    // ANCHOR: rtl_transmit
    /// TSD*n* was written with OWN clear: DMA the frame from TSAD*n*, send it — or, while the
    /// link is full (the wire busy), keep it waiting in order; `tick` sends it later.
    fn transmit(&mut self, n: usize, ctx: &mut DeviceCtx) {
        if self.regs[reg::CR] & cr::TE == 0 {
            return; // the transmitter is off: the descriptor stays with the chip
        }
        if !self.tx_waiting.is_empty() || !self.link.can_transmit() {
            if !self.tx_waiting.contains(&n) {
                self.tx_waiting.push_back(n);
            }
            return;
        }
        self.send_descriptor(n, ctx);
    }
    // ANCHOR_END: rtl_transmit

    /// Sends descriptors that waited for the link, oldest first, while it has room.
    fn send_waiting(&mut self, ctx: &mut DeviceCtx) {
        while self.link.can_transmit() {
            let Some(n) = self.tx_waiting.pop_front() else {
                return;
            };
            self.send_descriptor(n, ctx);
        }
    }

    // ANCHOR: rtl_send_descriptor
    fn send_descriptor(&mut self, n: usize, ctx: &mut DeviceCtx) {
        let tsd_at = reg::TSD0 + 4 * n;
        let status = self.r32(tsd_at);
        if !self.link.carrier() {
            // No cable: the frame goes out into nothing, with carrier sense lost (CRS).
            self.stats.tx_aborted += 1;
            self.w32(tsd_at, status | tsd::OWN | tsd::TOK | tsd::CRS);
            self.raise(isr::TOK);
            return;
        }
        let len = (status & tsd::SIZE_MASK) as usize;
        let addr = u64::from(self.r32(reg::TSAD0 + 4 * n));
        let mut frame = vec![0u8; len];
        let ok = len > 0
            && len <= MAX_FRAME
            && self.config.bus_master()
            && ctx.dma.read(addr, &mut frame).is_ok()
            && self.link.transmit(&frame);
        if ok {
            self.stats.tx_frames += 1;
            self.w32(tsd_at, status | tsd::OWN | tsd::TOK);
            self.raise(isr::TOK);
        } else {
            self.stats.tx_aborted += 1;
            self.w32(tsd_at, status | tsd::OWN | tsd::TABT);
            self.raise(isr::TER);
        }
    }
    // ANCHOR_END: rtl_send_descriptor

    // ---- receive ----

    fn ring_size(&self) -> usize {
        8192 << ((self.r32(reg::RCR) >> 11) & 3)
    }

    // ANCHOR: rtl_ring_used
    /// Bytes of the ring holding frames the driver has not read yet.
    fn ring_used(&self) -> usize {
        let size = self.ring_size();
        let read = (usize::from(self.r16(reg::CAPR)) + 16) % size;
        let write = usize::from(self.r16(reg::CBR)) % size;
        (write + size - read) % size
    }
    // ANCHOR_END: rtl_ring_used

    /// Does the address filter (RCR, IDR, MAR) take a frame for `dest`? Returns its header
    /// status bits.
    fn accepts(&self, dest: MacAddr) -> Option<u16> {
        let rcr = self.r32(reg::RCR);
        let ours = MacAddr(self.regs[reg::IDR0..reg::IDR0 + 6].try_into().expect("6"));
        let status = if dest.is_broadcast() {
            (rcr & (rcr::AB | rcr::AAP) != 0).then_some(RX_BAR)
        } else if dest.is_group() {
            let bit = (ether_crc(&dest.0) >> 26) as usize;
            let hashed = self.regs[reg::MAR0 + bit / 8] & (1 << (bit % 8)) != 0;
            (rcr & rcr::AAP != 0 || rcr & rcr::AM != 0 && hashed).then_some(RX_MAR)
        } else if dest == ours {
            (rcr & (rcr::APM | rcr::AAP) != 0).then_some(RX_PAM)
        } else {
            (rcr & rcr::AAP != 0).then_some(0)
        };
        status.map(|s| s | RX_ROK)
    }

    // ANCHOR: rtl_deliver
    /// Moves frames waiting on the link into the ring while they fit.
    fn deliver(&mut self, ctx: &mut DeviceCtx) {
        while self.regs[reg::CR] & cr::RE != 0 && self.link.has_for_guest() {
            if !self.config.bus_master() {
                return;
            }
            let size = self.ring_size();
            // Header + frame + CRC, 4-byte aligned; keep one byte free so full ≠ empty.
            let Some(frame) = self.peek_fit(size) else {
                return; // the ring is full: the frame waits on the link
            };
            let Some(status) = super::frame::destination(&frame).and_then(|d| self.accepts(d))
            else {
                self.stats.rx_filtered += 1;
                continue;
            };
            let write = usize::from(self.r16(reg::CBR)) % size;
            let len = frame.len() + 4; // the length field counts the CRC
            let mut packet = Vec::with_capacity(4 + len);
            packet.extend_from_slice(&status.to_le_bytes());
            packet.extend_from_slice(&(len as u16).to_le_bytes());
            packet.extend_from_slice(&frame);
            packet.extend_from_slice(&crc32(&frame).to_le_bytes());
            let base = u64::from(self.r32(reg::RBSTART));
            let written = if self.r32(reg::RCR) & rcr::WRAP != 0 || write + packet.len() <= size {
                ctx.dma.write(base + write as u64, &packet).is_ok()
            } else {
                let (head, tail) = packet.split_at(size - write);
                ctx.dma.write(base + write as u64, head).is_ok()
                    && ctx.dma.write(base, tail).is_ok()
            };
            if !written {
                self.stats.rx_missed += 1;
                self.mpc = self.mpc.wrapping_add(1);
                self.raise(isr::RER);
                continue;
            }
            let next = (write + packet.len()).next_multiple_of(4) % size;
            self.w16(reg::CBR, next as u16);
            self.stats.rx_frames += 1;
            self.raise(isr::ROK);
        }
    }
    // ANCHOR_END: rtl_deliver

    /// The next waiting frame if it fits in the ring now (taken off the link), else `None`
    /// (left there). Frames that can never fit do not exist: the link caps them at 1518.
    fn peek_fit(&mut self, size: usize) -> Option<Vec<u8>> {
        let free = size - self.ring_used();
        // The largest packet a waiting frame can make; checking against it keeps the order.
        let need = (4 + MAX_FRAME + 4).next_multiple_of(4);
        if free <= need {
            return None;
        }
        self.link.next_for_guest()
    }

    fn sync_irq(&mut self, ctx: &mut DeviceCtx) {
        let high = self.r16(reg::ISR) & self.r16(reg::IMR) != 0;
        let rising = high && !self.irq_high;
        self.irq_high = high;
        crate::pci::signal_interrupt(&mut self.config, self.irq, high, rising, ctx);
    }
}

/// Ethernet's CRC-32 (IEEE 802.3, reflected, as it goes on the wire after the frame).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                crc >> 1 ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The multicast filter's hash: the CRC-32 computed most significant bit first (Linux's
/// `ether_crc`); its top six bits pick one of MAR's 64 bits.
fn ether_crc(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        for i in 0..8 {
            let bit = u32::from(b >> i & 1) ^ (crc >> 31);
            crc <<= 1;
            if bit != 0 {
                crc ^= 0x04C1_1DB7;
            }
        }
    }
    crc
}

impl BusDevice for Rtl8139 {
    fn name(&self) -> &'static str {
        "rtl8139"
    }

    fn pci_config(&mut self) -> Option<&mut PciConfig> {
        Some(&mut self.config)
    }

    fn bar_read(&mut self, _bar: u8, offset: u64, size: u8, ctx: &mut DeviceCtx) -> u64 {
        let mut v = 0u64;
        for i in 0..u64::from(size) {
            let at = offset + i;
            if at < u64::from(BAR_SIZE) {
                v |= u64::from(self.read_byte(at as usize, ctx.now_ns)) << (8 * i);
            }
        }
        v
    }

    fn bar_write(&mut self, _bar: u8, offset: u64, size: u8, value: u64, ctx: &mut DeviceCtx) {
        if offset < u64::from(BAR_SIZE) {
            self.write(offset as usize, usize::from(size), value, ctx);
        }
        self.sync_irq(ctx);
    }

    /// Frames that arrived on the link while the guest ran (the host calls
    /// `Bus::service_device`), and the line after every access.
    fn tick(&mut self, ctx: &mut DeviceCtx) -> Option<u64> {
        self.send_waiting(ctx);
        self.deliver(ctx);
        self.sync_irq(ctx);
        None
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
#[path = "rtl8139_tests.rs"]
mod tests;

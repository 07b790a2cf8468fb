//! RTL8139 tests: a driver's bring-up, transmit through the four descriptors, the receive
//! ring with its CAPR quirk and wrap-around, the address filter, the interrupt line and the
//! guest mistakes (buffers outside RAM, a ring that is never read).

use super::*;
use crate::bus::TestCtx;
use crate::net::frame::ETHERTYPE_ARP;
use crate::net::LINK_QUEUE_LIMIT;

const RING: u64 = 0x10000;
const TXBUF: u64 = 0x40000;
const RAM: usize = 1 << 20;

struct Rig {
    t: TestCtx,
    nic: Rtl8139,
    link: NetLink,
    /// The driver's read offset in the ring.
    read: usize,
}

fn line() -> IrqLine {
    IrqLine::new(17).unwrap()
}

impl Rig {
    fn new() -> Rig {
        let link = NetLink::new();
        let nic =
            Rtl8139::new(MacAddr::vmscope(1), link.clone(), line()).place(0xC000, 0xE000_0000);
        Rig {
            t: TestCtx {
                ram: vec![0; RAM],
                ..Default::default()
            },
            nic,
            link,
            read: 0,
        }
    }

    fn r8(&mut self, at: u64) -> u8 {
        self.nic.bar_read(0, at, 1, &mut self.t.ctx()) as u8
    }
    fn r16(&mut self, at: u64) -> u16 {
        self.nic.bar_read(0, at, 2, &mut self.t.ctx()) as u16
    }
    fn r32(&mut self, at: u64) -> u32 {
        self.nic.bar_read(0, at, 4, &mut self.t.ctx()) as u32
    }
    fn w(&mut self, at: u64, size: u8, v: u64) {
        self.nic.bar_write(0, at, size, v, &mut self.t.ctx());
        self.nic.tick(&mut self.t.ctx()); // the bus ticks a device after every access
    }

    /// What the teaching kernel's driver (and Linux's, without interrupts) does.
    fn bring_up(&mut self, rcr: u32) {
        self.w(reg::CR as u64, 1, u64::from(cr::RST));
        assert_eq!(self.r8(reg::CR as u64) & cr::RST, 0, "reset done at once");
        self.w(reg::RBSTART as u64, 4, RING);
        self.w(reg::RCR as u64, 4, u64::from(rcr));
        self.w(reg::CR as u64, 1, u64::from(cr::RE | cr::TE));
    }

    fn service(&mut self) {
        self.nic.tick(&mut self.t.ctx());
    }

    /// Sends `frame` through descriptor `n` and returns TSD afterwards.
    fn send(&mut self, n: u64, frame: &[u8]) -> u32 {
        let at = TXBUF + 0x800 * n;
        self.t.ram[at as usize..at as usize + frame.len()].copy_from_slice(frame);
        self.w(reg::TSAD0 as u64 + 4 * n, 4, at);
        self.w(reg::TSD0 as u64 + 4 * n, 4, frame.len() as u64);
        self.r32(reg::TSD0 as u64 + 4 * n)
    }

    /// Reads the next packet from the ring as a driver does, or `None` when BUFE is set.
    fn take(&mut self) -> Option<(u16, Vec<u8>)> {
        if self.r8(reg::CR as u64) & cr::BUFE != 0 {
            return None;
        }
        let at = RING as usize + self.read;
        let status = u16::from_le_bytes([self.t.ram[at], self.t.ram[at + 1]]);
        let len = u16::from_le_bytes([self.t.ram[at + 2], self.t.ram[at + 3]]) as usize;
        let frame = self.t.ram[at + 4..at + 4 + len - 4].to_vec();
        let crc = u32::from_le_bytes(self.t.ram[at + len..at + len + 4].try_into().unwrap());
        assert_eq!(crc, crc32(&frame), "the CRC follows the frame");
        self.read = (self.read + len + 4 + 3) & !3;
        self.read %= 8192;
        self.w(
            reg::CAPR as u64,
            2,
            (self.read as u64).wrapping_sub(16) & 0xFFFF,
        );
        Some((status, frame))
    }
}

fn frame_to(dest: MacAddr, tag: u8, len: usize) -> Vec<u8> {
    let mut f = vec![tag; len];
    f[..6].copy_from_slice(&dest.0);
    f[6..12].copy_from_slice(&MacAddr::vmscope(2).0);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f
}

const RCR_NORMAL: u32 = rcr::APM | rcr::AB | rcr::WRAP;

#[test]
fn identity_mac_and_eeprom_are_what_drivers_read() {
    let mut r = Rig::new();
    assert_eq!(r.nic.pci_config().unwrap().read(0, 4), 0x8139_10EC);
    let mac: Vec<u8> = (0..6).map(|i| r.r8(i)).collect();
    assert_eq!(mac, MacAddr::vmscope(1).0);
    assert_eq!(
        r.r32(reg::TCR as u64) & 0x7CC0_0000,
        0x7400_0000,
        "an RTL8139C"
    );
    // Linux reads the MAC from EEPROM words 7–9 by toggling 9346CR (mode 10: programming).
    let word = |r: &mut Rig, a: u16| {
        let cmd = a | 6 << 6;
        let w = |r: &mut Rig, v: u8| r.w(reg::CR9346 as u64, 1, u64::from(0x80 | v));
        w(r, 0x08);
        for i in (0..=10).rev() {
            let di = if cmd & 1 << i != 0 { 0x02 } else { 0 };
            w(r, 0x08 | di);
            w(r, 0x08 | di | 0x04);
        }
        w(r, 0x08);
        let mut v = 0u16;
        for _ in 0..16 {
            w(r, 0x0C);
            v = v << 1 | u16::from(r.r8(reg::CR9346 as u64) & 1);
            w(r, 0x08);
        }
        r.w(reg::CR9346 as u64, 1, 0);
        v
    };
    let words: Vec<u16> = (7..10).map(|a| word(&mut r, a)).collect();
    let from_eeprom: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    assert_eq!(from_eeprom, MacAddr::vmscope(1).0);
    assert_eq!(word(&mut r, 0), 0x8129);
}

#[test]
fn transmit_goes_through_four_descriptors_round_robin() {
    let mut r = Rig::new();
    r.bring_up(RCR_NORMAL);
    for k in 0..6u8 {
        let n = u64::from(k % 4);
        let status = r.send(n, &frame_to(MacAddr::BROADCAST, k, 60));
        assert_eq!(
            status & (tsd::OWN | tsd::TOK),
            tsd::OWN | tsd::TOK,
            "descriptor {n}"
        );
        assert_eq!(status & tsd::SIZE_MASK, 60);
    }
    let sent = r.link.take_transmitted();
    assert_eq!(sent.len(), 6);
    assert!(sent.iter().enumerate().all(|(k, f)| f[20] == k as u8));
    assert_eq!(r.r16(reg::TSAD as u64) & 0xF00F, 0xF00F, "all OWN and TOK");
    assert_ne!(r.r16(reg::ISR as u64) & isr::TOK, 0);
    r.w(reg::ISR as u64, 2, u64::from(isr::TOK));
    assert_eq!(r.r16(reg::ISR as u64), 0, "write 1 to clear");
}

#[test]
fn transmit_errors_abort_the_descriptor() {
    let mut r = Rig::new();
    r.bring_up(RCR_NORMAL);
    // Buffer outside RAM.
    r.w(reg::TSAD0 as u64, 4, RAM as u64 - 10);
    r.w(reg::TSD0 as u64, 4, 100);
    let status = r.r32(reg::TSD0 as u64);
    assert_eq!(status & (tsd::OWN | tsd::TABT), tsd::OWN | tsd::TABT);
    assert_ne!(r.r16(reg::ISR as u64) & isr::TER, 0);
    // Size 0.
    let status = r.send(1, &[]);
    assert_ne!(status & tsd::TABT, 0);
    assert!(r.link.take_transmitted().is_empty());
    assert_eq!(r.nic.stats().tx_aborted, 2);
}

#[test]
fn received_frames_land_in_the_ring_behind_a_header() {
    let mut r = Rig::new();
    r.bring_up(RCR_NORMAL);
    assert_ne!(r.r8(reg::CR as u64) & cr::BUFE, 0, "empty after reset");
    r.link.deliver(&frame_to(MacAddr::vmscope(1), 1, 60));
    r.link.deliver(&frame_to(MacAddr::BROADCAST, 2, 61));
    r.link.deliver(&frame_to(MacAddr::vmscope(9), 3, 62)); // not ours: filtered
    r.service();
    let (status, f) = r.take().unwrap();
    assert_eq!(status, RX_ROK | RX_PAM);
    assert_eq!(f, frame_to(MacAddr::vmscope(1), 1, 60));
    let (status, f) = r.take().unwrap();
    assert_eq!(status, RX_ROK | RX_BAR);
    assert_eq!(f.len(), 61);
    assert_eq!(r.take(), None);
    assert_eq!(r.nic.stats().rx_filtered, 1);
    // Promiscuous: everything.
    r.w(reg::RCR as u64, 4, u64::from(RCR_NORMAL | rcr::AAP));
    r.link.deliver(&frame_to(MacAddr::vmscope(9), 4, 64));
    r.service();
    assert_eq!(r.take().map(|(s, _)| s), Some(RX_ROK));
}

#[test]
fn the_ring_wraps_and_a_full_ring_makes_frames_wait() {
    let mut r = Rig::new();
    r.bring_up(RCR_NORMAL);
    // 40 frames of 1000 bytes are five rings' worth: they come through as the driver reads.
    for k in 0..40u8 {
        assert!(r.link.deliver(&frame_to(MacAddr::vmscope(1), k, 1000)));
    }
    r.service();
    let mut got = Vec::new();
    while got.len() < 40 {
        match r.take() {
            Some((_, f)) => got.push(f[20]),
            None => panic!(
                "ring empty with {} frames still on the link",
                r.link.backlog_for_guest()
            ),
        }
    }
    assert_eq!(got, (0..40).collect::<Vec<u8>>(), "in order, none lost");
    assert_eq!(r.nic.stats().rx_frames, 40);
}

#[test]
fn without_wrap_a_frame_is_split_at_the_ring_end() {
    let mut r = Rig::new();
    r.bring_up(rcr::APM | rcr::AB);
    for k in 0..9u8 {
        r.link.deliver(&frame_to(MacAddr::vmscope(1), k, 1000));
        r.service();
        let at = RING as usize + r.read;
        let len = u16::from_le_bytes([r.t.ram[at + 2], r.t.ram[at + 3]]) as usize;
        assert_eq!(len, 1004);
        // Read it back across the end of the ring.
        let mut f = Vec::new();
        for i in 0..len - 4 {
            f.push(r.t.ram[RING as usize + (r.read + 4 + i) % 8192]);
        }
        assert_eq!(f, frame_to(MacAddr::vmscope(1), k, 1000), "frame {k}");
        r.read = (r.read + len + 4 + 3) & !3;
        r.read %= 8192;
        r.w(
            reg::CAPR as u64,
            2,
            (r.read as u64).wrapping_sub(16) & 0xFFFF,
        );
    }
    assert_eq!(
        r.t.ram[RING as usize + 8192 + 16..RING as usize + 8192 + 100],
        [0; 84],
        "nothing written past the ring"
    );
}

#[test]
fn the_line_follows_isr_and_imr() {
    let mut r = Rig::new();
    r.bring_up(RCR_NORMAL);
    r.w(reg::IMR as u64, 2, u64::from(isr::ROK | isr::TOK));
    assert!(!r.t.irq.is_high(line()));
    r.link.deliver(&frame_to(MacAddr::vmscope(1), 1, 60));
    r.service();
    assert!(r.t.irq.is_high(line()), "ROK unmasked");
    r.w(reg::ISR as u64, 2, u64::from(isr::ROK));
    assert!(!r.t.irq.is_high(line()));
    r.w(reg::IMR as u64, 2, 0);
    r.send(0, &frame_to(MacAddr::BROADCAST, 1, 60));
    assert!(!r.t.irq.is_high(line()), "TOK masked");
}

#[test]
fn a_guest_that_never_reads_its_ring_stays_bounded() {
    let mut r = Rig::new();
    r.bring_up(RCR_NORMAL);
    for k in 0..LINK_QUEUE_LIMIT * 3 {
        r.link
            .deliver(&frame_to(MacAddr::vmscope(1), k as u8, 1500));
        r.service();
    }
    assert!(
        r.nic.stats().rx_frames < 8,
        "an 8 KiB ring holds a few frames"
    );
    assert_eq!(r.link.backlog_for_guest(), LINK_QUEUE_LIMIT);
    assert!(r.link.stats().1.dropped_full > 0);
    // A receive ring outside RAM loses frames, counted in MPC, and nothing else happens.
    r.w(reg::CR as u64, 1, u64::from(cr::RST));
    r.w(reg::RBSTART as u64, 4, RAM as u64 - 100);
    r.w(reg::RCR as u64, 4, u64::from(RCR_NORMAL));
    r.w(reg::CR as u64, 1, u64::from(cr::RE | cr::TE));
    assert!(r.r32(reg::MPC as u64) > 0);
    assert_ne!(r.r16(reg::ISR as u64) & isr::RER, 0);
}

#[test]
fn crcs_match_ethernets() {
    // The check value of CRC-32/ISO-HDLC.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    // Linux's multicast hash for 01:00:5e:00:00:01 (all-hosts) picks MAR bit 32 + ...: the
    // MSB-first CRC's top six bits; compare with the reflected CRC's bit reversal.
    let m = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
    assert_eq!(ether_crc(&m), (!crc32(&m)).reverse_bits());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Write { at: u8, size: u8, value: u32 },
        Read { at: u8, size: u8 },
        Frame(Vec<u8>),
        Tick,
    }

    fn step() -> impl Strategy<Value = Step> {
        let size = prop_oneof![Just(1u8), Just(2), Just(4)];
        prop_oneof![
            (any::<u8>(), size.clone(), any::<u32>()).prop_map(|(at, size, value)| Step::Write {
                at,
                size,
                value
            }),
            (any::<u8>(), size).prop_map(|(at, size)| Step::Read { at, size }),
            proptest::collection::vec(any::<u8>(), 0..1600).prop_map(Step::Frame),
            Just(Step::Tick),
        ]
    }

    proptest! {
        /// Whatever a driver writes and whatever arrives on the cable: no panic, the link's
        /// queues stay bounded, and the device only ever writes inside guest RAM (the `Dma`
        /// checks it; a write elsewhere would be an error, never a host access).
        #[test]
        fn random_register_traffic_and_frames_never_hurt_the_host(steps in proptest::collection::vec(step(), 1..200)) {
            let mut r = Rig::new();
            r.bring_up(RCR_NORMAL | rcr::AAP);
            for s in steps {
                match s {
                    Step::Write { at, size, value } => r.w(u64::from(at), size, u64::from(value)),
                    Step::Read { at, size } => {
                        r.nic.bar_read(0, u64::from(at), size, &mut r.t.ctx());
                    }
                    Step::Frame(f) => {
                        r.link.deliver(&f);
                        r.service();
                    }
                    Step::Tick => r.service(),
                }
            }
            prop_assert!(r.link.backlog_for_guest() <= LINK_QUEUE_LIMIT);
            prop_assert!(r.link.take_transmitted().len() <= LINK_QUEUE_LIMIT);
            for w in &r.t.dma_writes {
                prop_assert!(w.addr + w.len <= RAM as u64);
            }
        }
    }
}

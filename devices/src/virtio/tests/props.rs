//! Property tests: random queue layouts, descriptor tables and available rings in guest RAM.
//! Teaches: the device's promise to the host — whatever the guest wrote, it terminates, never panics, and writes only where the guest said it may.
//!
//! The metadata (descriptor table, avail ring, used ring, up to four indirect tables) lives
//! below [`DATA_START`], buffers above it or wildly outside RAM, so a device write into a
//! buffer cannot change a descriptor under our feet and the set of device-writable buffers
//! can be computed from the tables as written: every non-indirect descriptor with WRITE set,
//! in the main table or in any table an INDIRECT descriptor names. Every byte the device
//! wrote (the Dma log) must be in one of them or in the used ring.

use proptest::prelude::*;

use super::blk::{disk, header};
use super::*;
use crate::virtio::blk::VirtioBlk;
use crate::virtio::console::VirtioConsole;
use crate::virtio::queue::MAX_CHAIN_BYTES;

const DATA_START: u64 = 0x10000;
const RING_SLOTS: [u64; 3] = [0x0000, 0x2000, 0x4000];
const TABLES: u64 = 0x8000;
const TABLE_STRIDE: u64 = 0x800;

#[derive(Debug, Clone)]
struct RawDesc {
    addr_kind: u8,
    addr: u64,
    len_kind: u8,
    len: u32,
    flags: u16,
    next: u16,
}

fn raw_desc() -> impl Strategy<Value = RawDesc> {
    (
        0u8..16,
        any::<u64>(),
        0u8..16,
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(addr_kind, addr, len_kind, len, flags, next)| RawDesc {
            addr_kind,
            addr,
            len_kind,
            len,
            flags,
            next,
        })
}

#[derive(Debug, Clone)]
struct Case {
    size_log2: u32,
    indirect: bool,
    event_idx: bool,
    ring_offsets: [u64; 3],
    /// 0: one ring (chosen by `ring_offsets[0] % 3`) is placed outside RAM.
    ring_wild: u8,
    descs: Vec<RawDesc>,
    tables: Vec<Vec<RawDesc>>,
    avail_idx: u16,
    avail_ring: Vec<u16>,
    avail_flags: u16,
    used_event: u16,
    headers: Vec<(u8, u64)>,
    notifies: u8,
    /// Lay out well-formed blk requests (header, data, status) and mutate some descriptors,
    /// rather than descriptors random from the start.
    wellformed: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (0u32..=4, any::<bool>(), any::<bool>()),
        (prop::array::uniform3(0u64..0x100), 0u8..16),
        prop::collection::vec(raw_desc(), 16),
        prop::collection::vec(prop::collection::vec(raw_desc(), 1..8), 4),
        (
            any::<u16>(),
            prop::collection::vec(any::<u16>(), 16),
            any::<u16>(),
            any::<u16>(),
        ),
        (
            prop::collection::vec((0u8..8, 0u64..80), 32),
            1u8..3,
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (size_log2, indirect, event_idx),
                (ring_offsets, ring_wild),
                descs,
                tables,
                (avail_idx, avail_ring, avail_flags, used_event),
                (headers, notifies, wellformed),
            )| Case {
                size_log2,
                indirect,
                event_idx,
                ring_offsets,
                ring_wild,
                descs,
                tables,
                avail_idx,
                avail_ring,
                avail_flags,
                used_event,
                headers,
                notifies,
                wellformed,
            },
        )
}

/// A descriptor index from a random u16: inside a table of `size` 15 times in 16, else just
/// past it.
fn index(raw: u16, size: u16) -> u16 {
    if !raw.is_multiple_of(16) {
        (raw >> 4) % size
    } else {
        size + (raw >> 4) % 4
    }
}

/// A descriptor as the test writes it into RAM: (addr, len, flags, next); `size` is the
/// table it sits in.
fn materialize(r: &RawDesc, size: u16) -> (u64, u32, u16, u16) {
    let mut flags = r.flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE);
    if (r.flags >> 8).is_multiple_of(8) {
        flags |= VIRTQ_DESC_F_INDIRECT;
    }
    if r.flags >> 15 != 0 {
        flags |= r.flags & 0x7FF8; // undefined bits the device must ignore
    }
    let ram = RAM_SIZE as u64;
    let (addr, len) = if flags & VIRTQ_DESC_F_INDIRECT != 0 {
        let table = TABLES + TABLE_STRIDE * (r.addr % 4);
        let len = match r.len_kind {
            0..=13 => 16 * (r.len % 9),
            14 => r.len % 200,
            // Far too long: never a table that reaches into the data area.
            _ => r.len | 0x8000_0000,
        };
        (table, len)
    } else {
        let sectors = (ram - DATA_START) / 0x200;
        let addr = match r.addr_kind {
            0..=12 => DATA_START + 0x200 * (r.addr % sectors),
            13 => DATA_START + r.addr % (ram - DATA_START),
            14 => ram - 64 + r.addr % 128,
            _ => r.addr.max(ram),
        };
        let len = match r.len_kind {
            0..=7 => r.len % 2048,
            8..=10 => 512 * (r.len % 4),
            11 => 16,
            12 | 13 => 1,
            14 => 0,
            _ => r.len,
        };
        (addr, len)
    };
    (addr, len, flags, index(r.next, size))
}

/// Descriptor `i` of a table of well-formed requests, each `group` descriptors long:
/// header (readable, 16 bytes at a header), data (512·k, direction from `r`), status
/// (writable, 1 byte). One in eight is replaced by a random descriptor.
fn wellformed(r: &RawDesc, i: u16, group: u16, size: u16) -> (u64, u32, u16, u16) {
    if r.len_kind == 0 && r.addr_kind < 8 {
        return materialize(r, size);
    }
    let ram = RAM_SIZE as u64;
    let slot = DATA_START + 0x200 * (r.addr % ((ram - DATA_START) / 0x200 - 8));
    let pos = i % group;
    let last = pos + 1 == group || i + 1 == size;
    let next = if last { 0 } else { i + 1 };
    let next_flag = if last { 0 } else { VIRTQ_DESC_F_NEXT };
    let (addr, len, write) = match pos {
        0 => (slot, 16, 0),
        _ if last => (slot + 0x10, 1, VIRTQ_DESC_F_WRITE),
        _ => (slot, 512 * (1 + r.len % 4), r.flags & VIRTQ_DESC_F_WRITE),
    };
    (addr, len, write | next_flag, next)
}

struct Layout {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
}

fn layout(c: &Case) -> Layout {
    let mut bases = [0u64; 3];
    for k in 0..3 {
        bases[k] = RING_SLOTS[k] + c.ring_offsets[k];
    }
    if c.ring_wild == 0 {
        let k = (c.ring_offsets[0] % 3) as usize;
        bases[k] = if c.ring_offsets[1].is_multiple_of(2) {
            RAM_SIZE as u64 - 4
        } else {
            1 << 40
        };
    }
    Layout {
        size: 1 << c.size_log2,
        desc: bases[0],
        avail: bases[1],
        used: bases[2],
    }
}

/// Writes the case's tables, rings and request headers into `d`'s RAM; returns the ranges
/// the guest declared device-writable.
fn fill(d: &mut Driver, c: &Case, l: &Layout) -> Vec<(u64, u64)> {
    let ram = RAM_SIZE as u64;
    let mut writable = Vec::new();
    let mut declare = |addr: u64, len: u32, flags: u16| {
        if flags & VIRTQ_DESC_F_INDIRECT == 0 && flags & VIRTQ_DESC_F_WRITE != 0 {
            writable.push((addr, u64::from(len)));
        }
    };
    // Request headers at every 512-byte boundary of the data area (some types unknown,
    // some sectors past the 64-sector disk).
    let kinds = [0u32, 1, 4, 8, 0, 1, 2, 99];
    let mut at = DATA_START;
    let mut k = 0;
    while at < ram {
        let (kind, sector) = c.headers[k % c.headers.len()];
        d.put(at, &header(kinds[usize::from(kind)], sector));
        at += 0x200;
        k += 1;
    }
    for (t, table) in c.tables.iter().enumerate() {
        for (i, r) in table.iter().enumerate() {
            let (addr, len, flags, next) = materialize(r, table.len() as u16);
            d.put_desc(
                TABLES + TABLE_STRIDE * t as u64,
                i as u16,
                addr,
                len,
                flags,
                next,
            );
        }
    }
    if l.desc + 16 * u64::from(l.size) <= ram {
        for i in 0..l.size {
            let r = &c.descs[usize::from(i)];
            let (addr, len, flags, next) = if c.wellformed {
                wellformed(r, i, 2 + c.descs[0].next % 2, l.size)
            } else {
                materialize(r, l.size)
            };
            d.put_desc(l.desc, i, addr, len, flags, next);
            if flags & VIRTQ_DESC_F_INDIRECT != 0 {
                // Everything writable in the table it names (as far as it lies in RAM).
                let n = u64::from(len / 16).min((ram.saturating_sub(addr)) / 16);
                for j in 0..n {
                    let e = addr + 16 * j;
                    let b = d.get(e, 16);
                    let a = u64::from_le_bytes(b[0..8].try_into().unwrap());
                    let l = u32::from_le_bytes(b[8..12].try_into().unwrap());
                    declare(a, l, u16::from_le_bytes([b[12], b[13]]));
                }
            } else {
                declare(addr, len, flags);
            }
        }
    }
    if l.avail + 6 + 2 * u64::from(l.size) <= ram {
        d.put_u16(l.avail, c.avail_flags & 1);
        for i in 0..l.size {
            let group = 2 + c.descs[0].next % 2;
            let head = if c.wellformed && !c.avail_ring[usize::from(i)].is_multiple_of(8) {
                (group * i) % l.size
            } else {
                index(c.avail_ring[usize::from(i)], l.size)
            };
            d.put_u16(l.avail + 4 + 2 * u64::from(i), head);
        }
        // 0 ..= size entries 9 times in 10, else 1 to 3 too many.
        let avail_idx = if !c.avail_idx.is_multiple_of(10) {
            (c.avail_idx / 10) % (l.size + 1)
        } else {
            l.size + 1 + (c.avail_idx / 10) % 3
        };
        d.put_u16(l.avail + 2, avail_idx);
        d.put_u16(l.avail + 4 + 2 * u64::from(l.size), c.used_event);
    }
    writable.push((l.used, 6 + 8 * u64::from(l.size)));
    writable
}

/// Marks every byte of RAM inside one of `ranges`.
fn allowed_bytes(ranges: &[(u64, u64)]) -> Vec<bool> {
    let mut ok = vec![false; RAM_SIZE];
    for &(addr, len) in ranges {
        let end = addr.saturating_add(len).min(RAM_SIZE as u64);
        for b in addr.min(end)..end {
            ok[b as usize] = true;
        }
    }
    ok
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The whole path: mmio registers, the core, the parser and virtio-blk.
    #[test]
    fn blk_writes_only_where_the_guest_allowed(c in case()) {
        let disk = disk(false);
        let mut d = Driver::new(Box::new(VirtioBlk::new(Box::new(disk.clone()))));
        let l = layout(&c);
        let mut accept = d.offered() & !(INDIRECT | EVENT_IDX);
        accept |= if c.indirect { INDIRECT } else { 0 } | if c.event_idx { EVENT_IDX } else { 0 };
        prop_assert!(d.negotiate(accept));
        d.write(REG_QUEUE_SEL, 0);
        d.write(REG_QUEUE_NUM, u32::from(l.size));
        for (reg, addr) in [(REG_QUEUE_DESC_LOW, l.desc), (REG_QUEUE_DRIVER_LOW, l.avail), (REG_QUEUE_DEVICE_LOW, l.used)] {
            d.write(reg, addr as u32);
            d.write(reg + 4, (addr >> 32) as u32);
        }
        d.write(REG_QUEUE_READY, 1);
        d.driver_ok();
        let declared = fill(&mut d, &c, &l);
        d.t.dma_writes.clear();
        for _ in 0..c.notifies {
            d.notify(0);
        }
        let ok = allowed_bytes(&declared);
        for w in &d.t.dma_writes {
            for b in w.addr..w.addr + w.len {
                prop_assert!(ok[b as usize], "write {:?} at {:#x} not declared writable", w, b);
            }
        }
        let stats = d.dev.stats().clone();
        prop_assert!(stats.requests <= u64::from(l.size), "at most one ring's worth");
        prop_assert_eq!(disk.0.borrow().bytes.len(), 64 * 512);
    }

    /// virtio-console on random rings, receiveq and transmitq sharing them: transmitting only
    /// reads, host input goes only into buffers the guest declared writable, and nothing
    /// panics, loops or loses count — however the queues are misused.
    #[test]
    fn console_writes_only_where_the_guest_allowed(
        c in case(),
        input in prop::collection::vec(any::<u8>(), 0..3000),
        queues in any::<u8>(),
    ) {
        let mut d = Driver::new(Box::new(VirtioConsole::new()));
        let l = layout(&c);
        let mut accept = d.offered() & !(INDIRECT | EVENT_IDX);
        accept |= if c.indirect { INDIRECT } else { 0 } | if c.event_idx { EVENT_IDX } else { 0 };
        prop_assert!(d.negotiate(accept));
        for q in 0..2 {
            d.write(REG_QUEUE_SEL, q);
            d.write(REG_QUEUE_NUM, u32::from(l.size));
            for (reg, addr) in [(REG_QUEUE_DESC_LOW, l.desc), (REG_QUEUE_DRIVER_LOW, l.avail), (REG_QUEUE_DEVICE_LOW, l.used)] {
                d.write(reg, addr as u32);
                d.write(reg + 4, (addr >> 32) as u32);
            }
            d.write(REG_QUEUE_READY, 1);
        }
        d.driver_ok();
        let declared = fill(&mut d, &c, &l);
        d.t.dma_writes.clear();
        d.dev.device_as::<VirtioConsole>().unwrap().receive(&input);
        for i in 0..c.notifies {
            d.notify(usize::from(queues >> i & 1));
            d.dev.tick(&mut d.t.ctx());
        }
        let ok = allowed_bytes(&declared);
        for w in &d.t.dma_writes {
            for b in w.addr..w.addr + w.len {
                prop_assert!(ok[b as usize], "write {:?} at {:#x} not declared writable", w, b);
            }
        }
        let console = d.dev.device_as::<VirtioConsole>().unwrap();
        let (sent, delivered) = console.byte_counts();
        prop_assert_eq!(console.take_output().len() as u64, sent, "every byte sent is output");
        prop_assert_eq!(delivered + console.pending_input() as u64, input.len() as u64);
    }

    /// The parser alone: every chain it returns is in RAM, ordered and bounded.
    #[test]
    fn popped_chains_are_checked(c in case()) {
        let mut d = Driver::new(Box::new(VirtioBlk::new(Box::new(disk(false)))));
        let l = layout(&c);
        let declared = fill(&mut d, &c, &l);
        let ok = allowed_bytes(&declared);
        let mut q = Queue::new(16);
        q.set_size(l.size);
        q.set_addr(QueueArea::Descriptors, l.desc);
        q.set_addr(QueueArea::Driver, l.avail);
        q.set_addr(QueueArea::Device, l.used);
        q.set_ring_features(c.indirect, c.event_idx);
        q.set_ready(true);
        let mut ctx = d.t.ctx();
        for _ in 0..2 * u32::from(l.size) + 2 {
            let Ok(Some(chain)) = q.pop(&mut ctx.dma) else { break };
            let mut seen_writable = false;
            let mut total = 0u64;
            for s in &chain.segments {
                prop_assert!(s.addr + u64::from(s.len) <= RAM_SIZE as u64);
                prop_assert!(!seen_writable || s.writable, "readable after writable");
                seen_writable |= s.writable;
                total += u64::from(s.len);
                if s.writable {
                    for b in s.addr..s.addr + u64::from(s.len) {
                        prop_assert!(ok[b as usize], "segment {:?} not declared", s);
                    }
                }
            }
            prop_assert!(total <= MAX_CHAIN_BYTES);
            prop_assert!(chain.segments.len() <= 16 + 8, "queue size + one table of 8");
            prop_assert!(q.add_used(&mut ctx.dma, chain.head, 0).is_ok() || l.used + 6 > RAM_SIZE as u64);
        }
    }
}

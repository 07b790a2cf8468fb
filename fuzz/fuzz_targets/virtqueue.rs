//! Random guest RAM and queue configuration through `devices::virtio::Queue`: pop, read and write
//! the chain, add_used, needs_interrupt. Never panics; writes only the used ring and the chains' writable buffers.
#![no_main]

use devices::bus::{Dma, DmaWrite};
use devices::virtio::{Queue, QueueArea};
use libfuzzer_sys::fuzz_target;

/// Guest RAM: the input after the header, zero-padded to this size.
const RAM: usize = 0x4000;
const HEADER: usize = 12;

/// A ring address from 16 bits of input: mostly inside RAM (any alignment), sometimes at its
/// end or far outside it.
fn addr(v: u16) -> u64 {
    match v >> 14 {
        0..=2 => u64::from(v) % RAM as u64,
        _ if v & 1 == 0 => RAM as u64 - u64::from(v >> 1 & 0x3F),
        _ => u64::from(v) << 36,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let (h, body) = data.split_at(HEADER);
    let word = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let mut ram = vec![0u8; RAM];
    let n = body.len().min(RAM);
    ram[..n].copy_from_slice(&body[..n]);

    let max_size = 256;
    let mut q = Queue::new(max_size);
    // Any size the driver may write (the queue refuses the invalid ones).
    let size = word(0) % 512;
    let _ = q.set_size(size);
    q.set_addr(QueueArea::Descriptors, addr(word(2)));
    q.set_addr(QueueArea::Driver, addr(word(4)));
    q.set_addr(QueueArea::Device, addr(word(6)));
    let features = h[8];
    q.set_ring_features(features & 1 != 0, features & 2 != 0);
    let _ = q.set_ready(features & 4 == 0);
    let rounds = usize::from(h[9] % 64) + 1;
    let stride = u64::from(h[10]);
    let written_len = u32::from(h[11]) * 17;

    let used = q.addr(QueueArea::Device);
    let used_end = used.saturating_add(6 + 8 * u64::from(q.size()));
    let mut allowed: Vec<(u64, u64)> = vec![(used, used_end)];
    let mut log: Vec<DmaWrite> = Vec::new();
    {
        let mut dma = Dma::new(&mut ram, &mut log);
        for round in 0..rounds {
            let chain = match q.pop(&mut dma) {
                Ok(Some(c)) => c,
                Ok(None) | Err(_) => break,
            };
            for s in chain.writable() {
                allowed.push((s.addr, s.addr + u64::from(s.len)));
            }
            assert!(chain
                .segments
                .iter()
                .all(|s| s.addr + u64::from(s.len) <= RAM as u64));
            let _ = chain.read_all(&dma, stride * round as u64);
            let fill = vec![0xA5u8; (written_len as usize).min(4096)];
            let wrote = chain.write_at(&mut dma, stride, &fill).unwrap_or(0);
            let _ = q.add_used(&mut dma, chain.head, wrote as u32);
            let _ = q.needs_interrupt(&dma);
        }
        // A head the queue never handed out must be refused or at least handled.
        let _ = q.add_used(&mut dma, word(10), written_len);
        let _ = q.needs_interrupt(&dma);
    }
    // The log merges adjacent writes (a used-ring field next to a buffer): every byte of each
    // entry must lie in some allowed range.
    for w in &log {
        let end = w.addr + w.len;
        assert!(end <= RAM as u64, "write {w:x?} outside RAM");
        let mut at = w.addr;
        while at < end {
            let covered = allowed
                .iter()
                .filter(|&&(a, b)| a <= at && at < b)
                .map(|&(_, b)| b)
                .max();
            match covered {
                Some(b) => at = b,
                None => panic!(
                    "write {w:x?}: byte {at:#x} outside the used ring and every writable buffer {allowed:x?}"
                ),
            }
        }
    }
});

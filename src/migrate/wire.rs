//! The migration stream: a greeting, then framed, checksummed messages both ways.
//! Teaches: a wire protocol between two VMMs is a file format that arrives a piece at a time —
//! each piece needs its own length, checksum and a reader that says where it stopped trusting.
//!
//! ```text
//! source → destination   "VMSCMIGR" version (u16 LE)
//!                        then messages: tag [4]  length (u32 LE)  CRC-32 of the payload (u32 LE)  payload
//!   META   JSON: how to build the machine (the snapshot file's META)
//!   PAGE   postcard PageBatch: a round number and up to PAGES_PER_BATCH pages
//!          (page number, 4096 bytes — or none for a page of zeros)
//!   ROND   postcard RoundReport: a pre-copy round ended (pages sent, pages dirtied meanwhile)
//!   STOP   the machine's state without RAM: a snapshot container (CPU, STAT, KVMC, BUS, ROM)
//! destination → source
//!   GOOD   the machine is restored and runs here now
//!   FAIL   UTF-8: why the destination gave up
//! ```

use std::io::{Read, Write};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::snapshot::file::crc32;

pub const GREETING: &[u8; 8] = b"VMSCMIGR";
/// Bumped whenever a message's layout or meaning changes.
pub const PROTOCOL_VERSION: u16 = 1;
/// No message is longer than this (a PAGE batch is about 1 MiB, STOP far less than this).
pub const MAX_MESSAGE_BYTES: u32 = 16 << 20;
/// Pages in one PAGE message.
pub const PAGES_PER_BATCH: usize = 256;
pub const PAGE_BYTES: usize = 4096;

pub const META: [u8; 4] = *b"META";
pub const PAGE: [u8; 4] = *b"PAGE";
pub const ROUND: [u8; 4] = *b"ROND";
pub const STOP: [u8; 4] = *b"STOP";
pub const GOOD: [u8; 4] = *b"GOOD";
pub const FAIL: [u8; 4] = *b"FAIL";

/// Pages of guest RAM, sent in pre-copy round `round` (or in the stop-and-copy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageBatch {
    pub round: u32,
    /// (page number, its 4096 bytes; empty for a page of zeros).
    pub pages: Vec<(u64, Vec<u8>)>,
}

/// What one round of pre-copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundReport {
    pub round: u32,
    /// Pages sent in this round.
    pub sent: u64,
    /// Pages the guest (or a device) wrote while the round was being sent: the next round's.
    pub dirtied: u64,
    /// Guest time the round took, in ns.
    pub guest_ns: u64,
}

/// One message as read.
#[derive(Debug)]
pub struct Message {
    pub tag: [u8; 4],
    pub payload: Vec<u8>,
}

impl Message {
    pub fn tag_name(&self) -> String {
        String::from_utf8_lossy(&self.tag).into_owned()
    }
}

/// Writes the greeting.
pub fn write_greeting(w: &mut dyn Write) -> std::io::Result<()> {
    w.write_all(GREETING)?;
    w.write_all(&PROTOCOL_VERSION.to_le_bytes())
}

/// Writes one framed message.
pub fn write_message(w: &mut dyn Write, tag: [u8; 4], payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_MESSAGE_BYTES)
        .ok_or_else(|| std::io::Error::other("migration message too long"))?;
    let mut head = [0u8; 12];
    head[..4].copy_from_slice(&tag);
    head[4..8].copy_from_slice(&len.to_le_bytes());
    head[8..].copy_from_slice(&crc32(payload).to_le_bytes());
    w.write_all(&head)?;
    w.write_all(payload)
}

// ANCHOR: reader
/// Reads a stream, counting messages and bytes so every error says where it happened.
pub struct Reader<R> {
    inner: R,
    /// Bytes read so far.
    pub offset: u64,
    /// Messages read so far.
    pub messages: u64,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            offset: 0,
            messages: 0,
        }
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => bail!(
                    "the stream ended at byte {} inside {what} ({got} of {} bytes)",
                    self.offset + got as u64,
                    buf.len()
                ),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => bail!("reading {what} at byte {}: {e}", self.offset + got as u64),
            }
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Reads and checks the greeting.
    pub fn read_greeting(&mut self) -> Result<()> {
        let mut g = [0u8; 10];
        self.fill(&mut g, "the greeting")?;
        if &g[..8] != GREETING {
            bail!(
                "byte 0: not a vmscope migration stream (it starts {:02x?}, not \"VMSCMIGR\")",
                &g[..8]
            );
        }
        let version = u16::from_le_bytes([g[8], g[9]]);
        if version != PROTOCOL_VERSION {
            bail!("byte 8: migration protocol version {version}, this vmscope speaks {PROTOCOL_VERSION}");
        }
        Ok(())
    }

    /// Reads the next message, checked: its length bounded, its checksum right.
    pub fn read_message(&mut self) -> Result<Message> {
        let start = self.offset;
        let index = self.messages;
        let mut head = [0u8; 12];
        self.fill(&mut head, &format!("the header of message {index}"))?;
        let tag: [u8; 4] = head[..4].try_into().expect("4 bytes");
        let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(head[8..].try_into().expect("4 bytes"));
        let name = String::from_utf8_lossy(&tag).into_owned();
        if !tag.iter().all(|b| b.is_ascii_uppercase() || *b == b' ') {
            bail!("message {index} at byte {start}: the tag {tag:02x?} is not a message name");
        }
        if len > MAX_MESSAGE_BYTES {
            bail!("message {index} ({name}) at byte {start}: {len} bytes long, more than the {MAX_MESSAGE_BYTES} a message may have");
        }
        let mut payload = vec![0u8; len as usize];
        self.fill(&mut payload, &format!("message {index} ({name})"))?;
        if crc32(&payload) != crc {
            bail!("message {index} ({name}) at byte {start}: the payload's checksum is wrong (damaged in transit)");
        }
        self.messages += 1;
        Ok(Message { tag, payload })
    }
}
// ANCHOR_END: reader

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(messages: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        write_greeting(&mut out).unwrap();
        for (tag, payload) in messages {
            write_message(&mut out, *tag, payload).unwrap();
        }
        out
    }

    #[test]
    fn messages_come_back_as_written() {
        let bytes = stream(&[(META, b"{}".to_vec()), (PAGE, vec![7; 5000])]);
        let mut r = Reader::new(bytes.as_slice());
        r.read_greeting().unwrap();
        let m = r.read_message().unwrap();
        assert_eq!((m.tag, m.payload.as_slice()), (META, &b"{}"[..]));
        let m = r.read_message().unwrap();
        assert_eq!((m.tag, m.payload.len()), (PAGE, 5000));
        let end = r.read_message().unwrap_err().to_string();
        assert!(end.contains("ended at byte 5036"), "{end}");
    }

    #[test]
    fn damage_is_named_with_its_message_and_offset() {
        let good = stream(&[(META, b"{}".to_vec()), (PAGE, vec![7; 100])]);
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut r = Reader::new(flipped.as_slice());
        r.read_greeting().unwrap();
        r.read_message().unwrap();
        let e = r.read_message().unwrap_err().to_string();
        assert_eq!(
            e,
            "message 1 (PAGE) at byte 24: the payload's checksum is wrong (damaged in transit)"
        );

        let mut long = good.clone();
        long[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut r = Reader::new(long.as_slice());
        r.read_greeting().unwrap();
        assert!(r
            .read_message()
            .unwrap_err()
            .to_string()
            .contains("more than"));

        let mut r = Reader::new(&b"GET / HTTP/1.1\r\n"[..]);
        assert!(r
            .read_greeting()
            .unwrap_err()
            .to_string()
            .contains("not a vmscope migration stream"));

        let mut old = good;
        old[8] = 9;
        let mut r = Reader::new(old.as_slice());
        assert!(r
            .read_greeting()
            .unwrap_err()
            .to_string()
            .contains("version 9"));
    }

    #[test]
    fn random_bytes_never_panic_the_reader() {
        use proptest::prelude::*;
        proptest!(|(tail in proptest::collection::vec(any::<u8>(), 0..200), cut in 0usize..60)| {
            let mut bytes = stream(&[(META, b"{\"a\":1}".to_vec()), (ROUND, vec![1, 2, 3])]);
            bytes.truncate(cut.min(bytes.len()));
            bytes.extend(tail);
            let mut r = Reader::new(bytes.as_slice());
            if r.read_greeting().is_ok() {
                for _ in 0..4 {
                    if r.read_message().is_err() {
                        break;
                    }
                }
            }
        });
    }
}

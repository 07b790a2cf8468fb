//! The snapshot file's container: a header, a table of sections, each section deflated and
//! checksummed — and a reader that names the section and offset of whatever is wrong.
//! Teaches: a file another program (or another version) will read needs a magic number, a
//! format version, lengths it can check before trusting them, and a checksum per part, so a
//! damaged file is refused with a reason instead of being half-loaded.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//!  0  magic "VMSCSNAP"            8  format version (u16) = FORMAT_VERSION, 0 (u16)
//! 12  section count (u32)         16  section table: count × 36 bytes
//!         tag [4]  flags (u32: bit 0 deflated)  offset (u64)  stored length (u64)
//!         length once inflated (u64)  CRC-32 of the stored bytes (u32)
//!  …  CRC-32 of everything above (u32), then the sections' bytes
//! ```
//!
//! What the sections hold is the caller's business (`snapshot::mod`); this module checks that
//! every section lies inside the file, that its bytes are what was written, and inflates it
//! without ever allocating more than the length the table promised (capped at
//! [`MAX_SECTION_BYTES`]).

use std::io::{Read, Write};

use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;

pub const MAGIC: &[u8; 8] = b"VMSCSNAP";
/// Bumped whenever the layout above or the meaning of a section changes.
pub const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 16;
const ENTRY_LEN: usize = 36;
/// No section inflates to more than this (64 GiB of RAM plus its page numbers).
pub const MAX_SECTION_BYTES: u64 = (64 << 30) + (64 << 20);
/// No file has more sections than this.
const MAX_SECTIONS: u32 = 64;
const FLAG_DEFLATED: u32 = 1;

/// One section: a four-letter tag and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub tag: [u8; 4],
    pub data: Vec<u8>,
}

impl Section {
    pub fn new(tag: &[u8; 4], data: Vec<u8>) -> Section {
        Section { tag: *tag, data }
    }

    pub fn tag_str(&self) -> String {
        tag_name(&self.tag)
    }
}

fn tag_name(tag: &[u8; 4]) -> String {
    String::from_utf8_lossy(tag).trim_end().to_string()
}

/// What is wrong with a file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}at offset {offset:#x}: {what}", .section.as_ref().map(|s| format!("section {s} ")).unwrap_or_default())]
pub struct FileError {
    /// The section's tag, if the fault is inside one.
    pub section: Option<String>,
    pub offset: u64,
    pub what: String,
}

fn fail(section: Option<&[u8; 4]>, offset: u64, what: impl Into<String>) -> FileError {
    FileError {
        section: section.map(tag_name),
        offset,
        what: what.into(),
    }
}

pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

/// The whole file for `sections`, each deflated.
pub fn encode(sections: &[Section]) -> Vec<u8> {
    let stored: Vec<Vec<u8>> = sections
        .iter()
        .map(|s| {
            let mut e = DeflateEncoder::new(Vec::new(), Compression::fast());
            e.write_all(&s.data).expect("writing to a Vec");
            e.finish().expect("writing to a Vec")
        })
        .collect();
    let table_end = HEADER_LEN + ENTRY_LEN * sections.len() + 4;
    let mut out = Vec::with_capacity(table_end + stored.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    let mut offset = table_end as u64;
    for (s, bytes) in sections.iter().zip(&stored) {
        out.extend_from_slice(&s.tag);
        out.extend_from_slice(&FLAG_DEFLATED.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&(s.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32(bytes).to_le_bytes());
        offset += bytes.len() as u64;
    }
    let header_crc = crc32(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    for bytes in stored {
        out.extend_from_slice(&bytes);
    }
    out
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Every section of `file`, checked and inflated.
pub fn decode(file: &[u8]) -> Result<Vec<Section>, FileError> {
    if file.len() < HEADER_LEN + 4 {
        return Err(fail(
            None,
            0,
            format!("{} bytes: too short for a snapshot file", file.len()),
        ));
    }
    if &file[..8] != MAGIC {
        return Err(fail(None, 0, "not a vmscope snapshot (no VMSCSNAP magic)"));
    }
    let version = u16_at(file, 8);
    if version != FORMAT_VERSION {
        return Err(fail(
            None,
            8,
            format!("format version {version}; this vmscope reads version {FORMAT_VERSION}"),
        ));
    }
    let count = u32_at(file, 12);
    if count > MAX_SECTIONS {
        return Err(fail(
            None,
            12,
            format!("{count} sections (at most {MAX_SECTIONS})"),
        ));
    }
    let table_end = HEADER_LEN + ENTRY_LEN * count as usize;
    if file.len() < table_end + 4 {
        return Err(fail(
            None,
            HEADER_LEN as u64,
            "the section table is cut short",
        ));
    }
    let want = u32_at(file, table_end);
    if crc32(&file[..table_end]) != want {
        return Err(fail(None, table_end as u64, "header checksum mismatch"));
    }
    let mut sections = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let e = HEADER_LEN + ENTRY_LEN * i;
        let tag: [u8; 4] = file[e..e + 4].try_into().expect("4 bytes");
        let flags = u32_at(file, e + 4);
        let offset = u64_at(file, e + 8);
        let stored = u64_at(file, e + 16);
        let raw = u64_at(file, e + 24);
        let crc = u32_at(file, e + 32);
        let end = offset
            .checked_add(stored)
            .filter(|&end| end <= file.len() as u64);
        let Some(end) = end else {
            return Err(fail(
                Some(&tag),
                offset,
                format!(
                    "{stored} bytes from here run past the end of the file ({} bytes)",
                    file.len()
                ),
            ));
        };
        let bytes = &file[offset as usize..end as usize];
        if crc32(bytes) != crc {
            return Err(fail(
                Some(&tag),
                offset,
                "checksum mismatch: the file is damaged",
            ));
        }
        if raw > MAX_SECTION_BYTES {
            return Err(fail(
                Some(&tag),
                offset,
                format!("claims {raw} bytes inflated"),
            ));
        }
        let data = if flags & FLAG_DEFLATED != 0 {
            let mut data = Vec::new();
            DeflateDecoder::new(bytes)
                .take(raw + 1)
                .read_to_end(&mut data)
                .map_err(|e| fail(Some(&tag), offset, format!("does not inflate: {e}")))?;
            if data.len() as u64 != raw {
                return Err(fail(
                    Some(&tag),
                    offset,
                    format!("inflates to {} bytes, the table says {raw}", data.len()),
                ));
            }
            data
        } else if flags == 0 {
            bytes.to_vec()
        } else {
            return Err(fail(
                Some(&tag),
                (e + 4) as u64,
                format!("unknown flags {flags:#x}"),
            ));
        };
        sections.push(Section { tag, data });
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<Section> {
        vec![
            Section::new(b"META", b"{\"memory\":67108864}".to_vec()),
            Section::new(b"RAM ", (0..100_000u32).map(|i| (i % 7) as u8).collect()),
            Section::new(b"CPU ", vec![]),
        ]
    }

    #[test]
    fn sections_come_back_as_written_and_compressed() {
        let file = encode(&sample());
        assert!(file.len() < 10_000, "deflated: {}", file.len());
        assert_eq!(decode(&file).unwrap(), sample());
    }

    #[test]
    fn damage_is_named_by_section_and_offset() {
        let file = encode(&sample());
        let mut bad = file.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40; // inside the last stored section
        let e = decode(&bad).unwrap_err();
        assert_eq!(e.section.as_deref(), Some("CPU"), "{e}");
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
        let mut v2 = file.clone();
        v2[8] = 2;
        assert!(decode(&v2)
            .unwrap_err()
            .to_string()
            .contains("format version 2"));
        assert!(decode(b"not a snapshot at all")
            .unwrap_err()
            .to_string()
            .contains("magic"));
        let cut = decode(&file[..file.len() - 10]).unwrap_err();
        assert!(cut.to_string().contains("past the end"), "{cut}");
    }

    proptest! {
        #[test]
        fn random_damage_is_an_error_never_a_panic(cut in 0usize..4000, flips in proptest::collection::vec((0usize..4000, 1u8..=255), 0..4)) {
            let mut file = encode(&sample());
            for (at, x) in flips {
                let n = file.len();
                file[at % n] ^= x;
            }
            file.truncate(cut.min(file.len()));
            let _ = decode(&file);
        }

        #[test]
        fn random_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            prop_assert!(decode(&bytes).is_err());
        }
    }
}

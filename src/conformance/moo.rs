//! A reader for the MOO files of the SingleStepTests suites (gzip-compressed, chunked, little-endian).
//! Teaches: how hardware-captured CPU tests are stored — an initial state, the instruction, the final state.
//!
//! A file is a list of chunks (`tag: [u8; 4]`, `len: u32`, payload). The `MOO ` chunk says how many
//! tests follow and for which CPU; each `TEST` chunk holds sub-chunks: `NAME` (disassembly), `BYTS`
//! (instruction bytes), `INIT`/`FINA` (CPU states: `REGS` and `RAM `), optional `EXCP` (an exception
//! the CPU took) and `HASH` (the test's SHA-1 identity). Unknown chunks are skipped, so newer files
//! with extra chunks still read.

use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Register order of a `REGS` chunk: bit i of the mask ↔ `REG_NAMES[i]`.
pub const REG_NAMES: [&str; 14] = [
    "ax", "bx", "cx", "dx", "cs", "ss", "ds", "es", "sp", "bp", "si", "di", "ip", "flags",
];

/// Index of each register in [`Regs`].
pub mod r {
    pub const AX: usize = 0;
    pub const BX: usize = 1;
    pub const CX: usize = 2;
    pub const DX: usize = 3;
    pub const CS: usize = 4;
    pub const SS: usize = 5;
    pub const DS: usize = 6;
    pub const ES: usize = 7;
    pub const SP: usize = 8;
    pub const BP: usize = 9;
    pub const SI: usize = 10;
    pub const DI: usize = 11;
    pub const IP: usize = 12;
    pub const FLAGS: usize = 13;
}

/// Registers present in a state (`None` = not listed; in `FINA` that means "unchanged").
pub type Regs = [Option<u16>; 14];

/// A CPU state from an `INIT` or `FINA` chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub regs: Regs,
    /// (20/24-bit physical address, byte) pairs.
    pub ram: Vec<(u32, u8)>,
}

/// One hardware-captured test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    pub index: u32,
    /// The disassembly, e.g. `add [bx+0Eh],bl`.
    pub name: String,
    /// The instruction's bytes (with prefixes).
    pub bytes: Vec<u8>,
    pub init: State,
    pub fina: State,
    /// The exception the CPU took: (vector, address of the FLAGS word it pushed).
    pub exception: Option<(u8, u32)>,
    pub hash: [u8; 20],
}

impl Test {
    /// The hash as the lowercase hex string revocation lists use.
    pub fn hash_hex(&self) -> String {
        self.hash.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One opcode file: its header and its tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MooFile {
    pub version: u32,
    /// CPU identifier, e.g. `C286`.
    pub cpu: String,
    /// Mnemonic from the `META` chunk (empty if there is none).
    pub mnemonic: String,
    pub tests: Vec<Test>,
}

/// Errors reading a MOO file; each names the file and the byte offset in the decompressed data.
#[derive(Debug, Error)]
pub enum MooError {
    /// cannot read {path}: {source}
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// {path}: offset {offset:#x}: {what}
    #[error("{path}: offset {offset:#x}: {what}")]
    Format {
        path: PathBuf,
        offset: usize,
        what: String,
    },
}

/// Reads and decompresses (`.gz`) a MOO file, then parses it.
pub fn read_file(path: &Path) -> Result<MooFile, MooError> {
    let io = |source| MooError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let data = if raw.starts_with(&[0x1F, 0x8B]) {
        let mut out = Vec::with_capacity(raw.len() * 8);
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    parse(&data).map_err(|(offset, what)| MooError::Format {
        path: path.to_path_buf(),
        offset,
        what,
    })
}

type P<T> = Result<T, (usize, String)>;

/// A cursor over a byte slice that remembers its absolute offset for error messages.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// Absolute offset of `data[0]` in the file.
    base: usize,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8], base: usize) -> Self {
        Cursor { data, pos: 0, base }
    }

    fn at(&self) -> usize {
        self.base + self.pos
    }

    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn take(&mut self, n: usize) -> P<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err((
                self.at(),
                format!(
                    "truncated: need {n} bytes, {} left",
                    self.data.len() - self.pos
                ),
            )),
        }
    }

    fn u8(&mut self) -> P<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> P<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> P<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The next chunk: its tag and a cursor over its payload.
    fn chunk(&mut self) -> P<([u8; 4], Cursor<'a>)> {
        let tag: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
        let len = self.u32()? as usize;
        let base = self.at();
        let payload = self.take(len)?;
        Ok((tag, Cursor::new(payload, base)))
    }
}

/// Parses a decompressed MOO file. Errors carry the offset of the offending bytes.
fn parse(data: &[u8]) -> P<MooFile> {
    let mut c = Cursor::new(data, 0);
    let (tag, mut head) = c.chunk()?;
    if &tag != b"MOO " {
        return Err((
            0,
            format!("not a MOO file (first chunk {:?})", tag_text(&tag)),
        ));
    }
    let version = head.u32()?;
    let count = head.u32()?;
    let cpu = String::from_utf8_lossy(head.take(4)?).trim().to_string();
    let mut file = MooFile {
        version,
        cpu,
        mnemonic: String::new(),
        tests: Vec::with_capacity(count.min(100_000) as usize),
    };
    while !c.done() {
        let (tag, body) = c.chunk()?;
        match &tag {
            b"META" => file.mnemonic = meta_mnemonic(body.data),
            b"TEST" => file.tests.push(parse_test(body)?),
            _ => {}
        }
    }
    if file.tests.len() != count as usize {
        return Err((
            c.at(),
            format!(
                "header announces {count} tests, file holds {}",
                file.tests.len()
            ),
        ));
    }
    Ok(file)
}

/// The META chunk: three header bytes, the opcode (u32), then the mnemonic as 8 space-padded
/// ASCII bytes.
fn meta_mnemonic(payload: &[u8]) -> String {
    payload
        .get(7..15)
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .filter(|s| s.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_default()
}

fn tag_text(tag: &[u8; 4]) -> String {
    String::from_utf8_lossy(tag).into_owned()
}

fn parse_test(mut c: Cursor) -> P<Test> {
    let start = c.at();
    let index = c.u32()?;
    let mut test = Test {
        index,
        name: String::new(),
        bytes: Vec::new(),
        init: State::default(),
        fina: State::default(),
        exception: None,
        hash: [0; 20],
    };
    let (mut have_init, mut have_fina) = (false, false);
    while !c.done() {
        let (tag, mut body) = c.chunk()?;
        match &tag {
            b"NAME" => {
                let len = body.u32()? as usize;
                test.name = String::from_utf8_lossy(body.take(len)?).into_owned();
            }
            b"BYTS" => {
                let len = body.u32()? as usize;
                test.bytes = body.take(len)?.to_vec();
            }
            b"INIT" => {
                test.init = parse_state(body)?;
                have_init = true;
            }
            b"FINA" => {
                test.fina = parse_state(body)?;
                have_fina = true;
            }
            b"EXCP" => {
                let vector = body.u8()?;
                let flags_at = body.u32()?;
                test.exception = Some((vector, flags_at));
            }
            b"HASH" => test.hash = body.take(20)?.try_into().expect("20 bytes"),
            _ => {}
        }
    }
    if !have_init || !have_fina {
        return Err((start, format!("test {index} lacks an INIT or FINA state")));
    }
    Ok(test)
}

fn parse_state(mut c: Cursor) -> P<State> {
    let mut state = State::default();
    while !c.done() {
        let (tag, mut body) = c.chunk()?;
        match &tag {
            b"REGS" => {
                let mask = body.u16()?;
                for (i, slot) in state.regs.iter_mut().enumerate() {
                    if mask & (1 << i) != 0 {
                        *slot = Some(body.u16()?);
                    }
                }
            }
            b"RAM " => {
                let count = body.u32()? as usize;
                // Each entry is 5 bytes; check before allocating so a bad count cannot exhaust memory.
                if count.saturating_mul(5) > body.data.len() {
                    return Err((body.at(), format!("RAM count {count} exceeds the chunk")));
                }
                state.ram.reserve(count);
                for _ in 0..count {
                    let addr = body.u32()?;
                    let value = body.u8()?;
                    state.ram.push((addr, value));
                }
            }
            _ => {}
        }
    }
    Ok(state)
}

/// Reads `revocation_list.txt`: one hex hash per line, `#` starts a comment.
pub fn read_revocations(path: &Path) -> Result<Vec<String>, MooError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(MooError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(tag: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = tag.to_vec();
        v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn sample() -> Vec<u8> {
        let mut head = 1u32.to_le_bytes().to_vec();
        head.extend_from_slice(&1u32.to_le_bytes());
        head.extend_from_slice(b"C286");
        let mut regs = 0b101u16.to_le_bytes().to_vec(); // ax, cx
        regs.extend_from_slice(&0x1234u16.to_le_bytes());
        regs.extend_from_slice(&0xBEEFu16.to_le_bytes());
        let mut ram = 1u32.to_le_bytes().to_vec();
        ram.extend_from_slice(&0x10_FFEFu32.to_le_bytes());
        ram.push(0xF4);
        let init = [chunk(b"REGS", &regs), chunk(b"RAM ", &ram)].concat();
        let mut name = 3u32.to_le_bytes().to_vec();
        name.extend_from_slice(b"nop");
        let mut byts = 1u32.to_le_bytes().to_vec();
        byts.push(0x90);
        let mut excp = vec![13u8];
        excp.extend_from_slice(&0x0FFEu32.to_le_bytes());
        let mut test = 7u32.to_le_bytes().to_vec();
        test.extend(chunk(b"NAME", &name));
        test.extend(chunk(b"BYTS", &byts));
        test.extend(chunk(b"INIT", &init));
        test.extend(chunk(b"FINA", &chunk(b"REGS", &0u16.to_le_bytes())));
        test.extend(chunk(b"EXCP", &excp));
        test.extend(chunk(b"HASH", &[0xAB; 20]));
        test.extend(chunk(b"ZZZZ", b"future chunk"));
        [
            chunk(b"MOO ", &head),
            chunk(b"META", b"\x01\x00\x06\x90\x00\x00\x00nop     "),
            chunk(b"TEST", &test),
        ]
        .concat()
    }

    #[test]
    fn parses_registers_ram_exception_and_hash() {
        let f = parse(&sample()).unwrap();
        assert_eq!(
            (f.version, f.cpu.as_str(), f.mnemonic.as_str()),
            (1, "C286", "nop")
        );
        let t = &f.tests[0];
        assert_eq!(
            (t.index, t.name.as_str(), &t.bytes[..]),
            (7, "nop", &[0x90][..])
        );
        assert_eq!(t.init.regs[r::AX], Some(0x1234));
        assert_eq!(t.init.regs[r::BX], None);
        assert_eq!(t.init.regs[r::CX], Some(0xBEEF));
        assert_eq!(t.init.ram, vec![(0x10_FFEF, 0xF4)]);
        assert_eq!(t.fina.regs, [None; 14]);
        assert_eq!(t.exception, Some((13, 0x0FFE)));
        assert_eq!(t.hash_hex(), "ab".repeat(20));
    }

    #[test]
    fn truncated_and_miscounted_files_are_errors_with_offsets() {
        let data = sample();
        let (offset, what) = parse(&data[..data.len() - 3]).unwrap_err();
        assert!(what.contains("truncated"), "{what}");
        assert!(offset > 0 && offset < data.len());
        let mut bad = data.clone();
        bad[12] = 2; // header claims two tests
        let (_, what) = parse(&bad).unwrap_err();
        assert!(what.contains("announces 2"), "{what}");
        assert!(parse(b"RIFF\0\0\0\0").is_err());
    }
}

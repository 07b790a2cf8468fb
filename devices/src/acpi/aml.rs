//! A small AML encoder: the bytes of the ACPI Machine Language objects vmscope's DSDT needs.
//! Teaches: AML is a byte code of nested, length-prefixed terms — names, packages, buffers, devices.
//!
//! An OS does not probe a PCI root bridge's windows or interrupt routing: it reads them from
//! the DSDT as AML, the byte code ACPI tables carry (ACPI 6.5, chapter 20). Every composite
//! term is an opcode, a *PkgLength* (how many bytes the term covers, itself included) and its
//! contents, so a term is built inside out: contents first, then the length in front. This
//! module writes only the forms the DSDT uses — no methods with code, no fields — each a
//! function returning bytes, so a table reads like the ASL it stands for.

/// AML opcodes (ACPI 6.5, 20.3).
mod op {
    pub const ZERO: u8 = 0x00;
    pub const ONE: u8 = 0x01;
    pub const NAME: u8 = 0x08;
    pub const BYTE: u8 = 0x0A;
    pub const WORD: u8 = 0x0B;
    pub const DWORD: u8 = 0x0C;
    pub const STRING: u8 = 0x0D;
    pub const QWORD: u8 = 0x0E;
    pub const SCOPE: u8 = 0x10;
    pub const BUFFER: u8 = 0x11;
    pub const PACKAGE: u8 = 0x12;
    pub const EXT: u8 = 0x5B;
    pub const DEVICE: u8 = 0x82;
    pub const ROOT: u8 = b'\\';
    pub const DUAL_NAME: u8 = 0x2E;
    pub const MULTI_NAME: u8 = 0x2F;
}

/// A PkgLength for `content` bytes: 1 to 4 bytes that count themselves too (20.2.4). One
/// byte holds up to 63; longer lengths put the byte count in bits 7–6 of the first byte, the
/// low nibble in bits 3–0, and 8 more bits in each following byte.
pub fn pkg_length(content: usize) -> Vec<u8> {
    for extra in 0..4usize {
        let total = content + 1 + extra;
        let fits = match extra {
            0 => total < 1 << 6,
            n => total < 1 << (4 + 8 * n),
        };
        if !fits {
            continue;
        }
        if extra == 0 {
            return vec![total as u8];
        }
        let mut out = vec![((extra as u8) << 6) | (total & 0xF) as u8];
        for i in 0..extra {
            out.push((total >> (4 + 8 * i)) as u8);
        }
        return out;
    }
    panic!("an AML term of {content} bytes is longer than PkgLength can say (256 MiB)")
}

/// `opcode(s) PkgLength contents`: the shape of every composite term.
fn with_length(opcodes: &[u8], contents: Vec<u8>) -> Vec<u8> {
    let mut out = opcodes.to_vec();
    out.extend(pkg_length(contents.len()));
    out.extend(contents);
    out
}

/// A NameString: `\` for the root, then one, two (DualNamePrefix) or more (MultiNamePrefix)
/// four-character segments, short ones padded with `_`. `"\\_SB.PCI0"`, `"_PRT"`.
pub fn name(path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let rest = match path.strip_prefix('\\') {
        Some(r) => {
            out.push(op::ROOT);
            r
        }
        None => path,
    };
    let segments: Vec<&str> = rest.split('.').filter(|s| !s.is_empty()).collect();
    match segments.len() {
        0 => out.push(0), // NullName
        1 => {}
        2 => out.push(op::DUAL_NAME),
        n => out.extend([op::MULTI_NAME, n as u8]),
    }
    for s in segments {
        assert!(
            s.len() <= 4
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "{s:?} is not an ACPI name segment"
        );
        let mut seg = [b'_'; 4];
        seg[..s.len()].copy_from_slice(s.as_bytes());
        out.extend(seg);
    }
    out
}

/// An integer in the shortest form: Zero, One, or a Byte/Word/DWord/QWord constant.
pub fn integer(v: u64) -> Vec<u8> {
    match v {
        0 => vec![op::ZERO],
        1 => vec![op::ONE],
        2..=0xFF => vec![op::BYTE, v as u8],
        0x100..=0xFFFF => [&[op::WORD][..], &(v as u16).to_le_bytes()].concat(),
        0x1_0000..=0xFFFF_FFFF => [&[op::DWORD][..], &(v as u32).to_le_bytes()].concat(),
        _ => [&[op::QWORD][..], &v.to_le_bytes()].concat(),
    }
}

/// A string constant (ASCII, zero-terminated).
pub fn string(s: &str) -> Vec<u8> {
    let mut out = vec![op::STRING];
    out.extend(s.bytes());
    out.push(0);
    out
}

/// `Name(path, value)`.
pub fn name_object(path: &str, value: Vec<u8>) -> Vec<u8> {
    let mut out = vec![op::NAME];
    out.extend(name(path));
    out.extend(value);
    out
}

/// `Scope(path) { terms }`.
pub fn scope(path: &str, terms: Vec<u8>) -> Vec<u8> {
    let mut contents = name(path);
    contents.extend(terms);
    with_length(&[op::SCOPE], contents)
}

/// `Device(path) { terms }`.
pub fn device(path: &str, terms: Vec<u8>) -> Vec<u8> {
    let mut contents = name(path);
    contents.extend(terms);
    with_length(&[op::EXT, op::DEVICE], contents)
}

/// `Package() { elements }` (at most 255 elements, as a DefPackage allows).
pub fn package(elements: &[Vec<u8>]) -> Vec<u8> {
    assert!(
        elements.len() <= 255,
        "a Package holds at most 255 elements"
    );
    let mut contents = vec![elements.len() as u8];
    for e in elements {
        contents.extend_from_slice(e);
    }
    with_length(&[op::PACKAGE], contents)
}

/// `Buffer() { bytes }`.
pub fn buffer(bytes: &[u8]) -> Vec<u8> {
    let mut contents = integer(bytes.len() as u64);
    contents.extend_from_slice(bytes);
    with_length(&[op::BUFFER], contents)
}

/// `EisaId("PNP0A03")`: three letters of five bits and four hex digits, packed into 32 bits
/// and stored most significant byte first.
pub fn eisa_id(id: &str) -> u32 {
    let b = id.as_bytes();
    assert!(
        b.len() == 7 && b[..3].iter().all(u8::is_ascii_uppercase),
        "{id:?} is not an EISA ID"
    );
    let letters = b[..3]
        .iter()
        .fold(0u32, |acc, &c| (acc << 5) | (c - b'@') as u32);
    let product = u32::from_str_radix(&id[3..], 16).expect("an EISA ID ends in four hex digits");
    ((letters << 16) | product).swap_bytes()
}

/// Resource descriptors for a `ResourceTemplate` (ACPI 6.5, 6.4): the bytes inside a
/// `Buffer`, ended by [`Resources::finish`].
#[derive(Default)]
pub struct Resources(Vec<u8>);

/// Address-space descriptor general flags: a window the bridge produces, with a fixed
/// minimum and maximum (`ResourceProducer, MinFixed, MaxFixed, PosDecode`).
const WINDOW_FLAGS: u8 = 0b1100;

impl Resources {
    /// `IO(Decode16, min, max, align, len)`: an I/O range the device itself uses.
    pub fn io(mut self, min: u16, max: u16, align: u8, len: u8) -> Self {
        self.0.extend([0x47, 1]);
        self.0.extend(min.to_le_bytes());
        self.0.extend(max.to_le_bytes());
        self.0.extend([align, len]);
        self
    }

    /// A Word Address Space descriptor (0x88): bus numbers (`kind` 2) or I/O ports (`kind` 1).
    fn word_space(mut self, kind: u8, type_flags: u8, min: u16, max: u16) -> Self {
        self.0.extend([0x88, 13, 0, kind, WINDOW_FLAGS, type_flags]);
        let len = max.wrapping_sub(min).wrapping_add(1);
        for v in [0, min, max, 0, len] {
            self.0.extend(v.to_le_bytes()); // granularity, min, max, translation, length
        }
        self
    }

    /// `WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, len)`.
    pub fn bus_numbers(self, min: u16, max: u16) -> Self {
        self.word_space(2, 0, min, max)
    }

    /// `WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, min, max, 0, len)`.
    pub fn io_window(self, min: u16, max: u16) -> Self {
        self.word_space(1, 0b11, min, max)
    }

    /// `DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
    /// 0, min, max, 0, len)`: a memory window below 4 GiB.
    pub fn memory_window(mut self, min: u32, max: u32) -> Self {
        self.0.extend([0x87, 23, 0, 0, WINDOW_FLAGS, 0b01]);
        let len = max.wrapping_sub(min).wrapping_add(1);
        for v in [0, min, max, 0, len] {
            self.0.extend(v.to_le_bytes());
        }
        self
    }

    /// The End Tag (checksum 0: "treat as valid", as the specification allows) and the
    /// `Buffer` around it all.
    pub fn finish(mut self) -> Vec<u8> {
        self.0.extend([0x79, 0]);
        buffer(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkg_lengths_count_themselves_and_switch_width_where_the_spec_says() {
        assert_eq!(pkg_length(0), [1]);
        assert_eq!(pkg_length(62), [63]);
        // 63 bytes of content + 1 length byte = 64: no longer fits in 6 bits, so 2 bytes.
        assert_eq!(pkg_length(63), [0x41, 0x04]);
        let two = pkg_length(4000);
        assert_eq!(two.len(), 2);
        assert_eq!(((two[1] as usize) << 4) | (two[0] & 0xF) as usize, 4002);
        let three = pkg_length(5000);
        assert_eq!(three[0] >> 6, 2);
        assert_eq!(
            ((three[2] as usize) << 12) | ((three[1] as usize) << 4) | (three[0] & 0xF) as usize,
            5003
        );
    }

    #[test]
    fn names_integers_and_ids_encode_as_in_the_spec() {
        assert_eq!(name("_PRT"), b"_PRT");
        assert_eq!(name("PCI"), b"PCI_");
        assert_eq!(name("\\_SB"), b"\\_SB_");
        assert_eq!(name("\\_SB.PCI0"), b"\\\x2e_SB_PCI0");
        assert_eq!(name("\\A.B.C"), b"\\\x2f\x03A___B___C___");
        assert_eq!(integer(0), [0x00]);
        assert_eq!(integer(1), [0x01]);
        assert_eq!(integer(0x20), [0x0A, 0x20]);
        assert_eq!(integer(0x1234), [0x0B, 0x34, 0x12]);
        assert_eq!(integer(0xFFFF_FFFF), [0x0C, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(integer(1 << 32)[0], 0x0E);
        assert_eq!(string("A"), [0x0D, b'A', 0]);
        // The values every ACPI table dump shows for these IDs.
        assert_eq!(eisa_id("PNP0A03"), 0x030A_D041);
        assert_eq!(eisa_id("PNP0A08"), 0x080A_D041);
    }

    #[test]
    fn composite_terms_nest_with_their_lengths() {
        let p = package(&[integer(5), integer(0)]);
        assert_eq!(p, [0x12, 0x05, 0x02, 0x0A, 0x05, 0x00]);
        let d = device("PCI0", name_object("_UID", integer(0)));
        assert_eq!(
            d,
            [0x5B, 0x82, 0x0B, b'P', b'C', b'I', b'0', 0x08, b'_', b'U', b'I', b'D', 0x00]
        );
        let r = Resources::default().io(0xCF8, 0xCF8, 1, 8).finish();
        assert_eq!(
            r,
            [0x11, 0x0D, 0x0A, 0x0A, 0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08, 0x79, 0x00]
        );
    }

    #[test]
    #[should_panic(expected = "not an ACPI name segment")]
    fn a_name_segment_longer_than_four_is_a_programming_error() {
        name("TOOLONG");
    }
}

//! Symbols from the guest's ELF file, so the disassembly says `enter_long_mode` instead of 0x100123.
//! Teaches: an ELF symbol table is a list of (name, address) pairs linked to a string table.
//!
//! Only symbols defined in a section are kept (not absolute constants like `COM1 = 0x3F8`, nor
//! undefined ones). Every offset read from the file is bounds-checked: a malformed file gives
//! fewer symbols, never a panic.

use std::collections::BTreeMap;
use std::sync::Arc;

const SHT_SYMTAB: u32 = 2;
const SHN_UNDEF: u16 = 0;
const SHN_ABS: u16 = 0xFFF1;
const STT_SECTION: u8 = 3;
const STT_FILE: u8 = 4;
const STB_GLOBAL: u8 = 1;
const MAX_SYMBOLS: usize = 200_000;

/// Address → name, shared cheaply with formatters.
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    by_addr: Arc<BTreeMap<u64, String>>,
}

fn bytes(b: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    b.get(start..end)
}
fn u16_at(b: &[u8], off: u64) -> Option<u16> {
    bytes(b, off, 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], off: u64) -> Option<u32> {
    bytes(b, off, 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], off: u64) -> Option<u64> {
    let s = bytes(b, off, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// Where the fields sit in ELF32 vs ELF64 (little-endian only: x86).
struct Layout {
    is64: bool,
}

impl Layout {
    fn shoff(&self, b: &[u8]) -> Option<u64> {
        if self.is64 {
            u64_at(b, 0x28)
        } else {
            u32_at(b, 0x20).map(u64::from)
        }
    }
    fn shentsize_num(&self, b: &[u8]) -> Option<(u64, u64)> {
        let base = if self.is64 { 0x3A } else { 0x2E };
        Some((u16_at(b, base)? as u64, u16_at(b, base + 2)? as u64))
    }
    /// (type, offset, size, link, entsize) of a section header.
    fn section(&self, b: &[u8], sh: u64) -> Option<(u32, u64, u64, u32, u64)> {
        if self.is64 {
            Some((
                u32_at(b, sh + 4)?,
                u64_at(b, sh + 24)?,
                u64_at(b, sh + 32)?,
                u32_at(b, sh + 40)?,
                u64_at(b, sh + 56)?,
            ))
        } else {
            Some((
                u32_at(b, sh + 4)?,
                u32_at(b, sh + 16)? as u64,
                u32_at(b, sh + 20)? as u64,
                u32_at(b, sh + 24)?,
                u32_at(b, sh + 36)? as u64,
            ))
        }
    }
    /// (name offset, value, info, section index) of a symbol.
    fn symbol(&self, b: &[u8], at: u64) -> Option<(u32, u64, u8, u16)> {
        if self.is64 {
            Some((
                u32_at(b, at)?,
                u64_at(b, at + 8)?,
                *bytes(b, at + 4, 1)?.first()?,
                u16_at(b, at + 6)?,
            ))
        } else {
            Some((
                u32_at(b, at)?,
                u32_at(b, at + 4)? as u64,
                *bytes(b, at + 12, 1)?.first()?,
                u16_at(b, at + 14)?,
            ))
        }
    }
}

impl Symbols {
    /// Reads the symbol table of an ELF32 or ELF64 file; anything else has no symbols.
    pub fn parse(file: &[u8]) -> Self {
        Symbols {
            by_addr: Arc::new(parse_elf(file).unwrap_or_default()),
        }
    }

    /// A table from explicit pairs (tests, flat images with a map file).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u64, String)>) -> Self {
        Symbols {
            by_addr: Arc::new(pairs.into_iter().collect()),
        }
    }

    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// The name of the symbol exactly at `addr`.
    pub fn exact(&self, addr: u64) -> Option<&str> {
        self.by_addr.get(&addr).map(String::as_str)
    }

    /// The nearest symbol at or below `addr` within 64 KiB, and the offset from it.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let (a, name) = self.by_addr.range(..=addr).next_back()?;
        let off = addr - a;
        (off < 0x10000).then_some((name.as_str(), off))
    }

    /// `name` or `name+0x12` for an address, if a symbol is near.
    pub fn describe(&self, addr: u64) -> Option<String> {
        self.lookup(addr).map(|(n, off)| {
            if off == 0 {
                n.to_string()
            } else {
                format!("{n}+{off:#x}")
            }
        })
    }

    /// The address of a symbol by name.
    pub fn find(&self, name: &str) -> Option<u64> {
        self.by_addr
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(a, _)| *a)
    }
}

fn parse_elf(b: &[u8]) -> Option<BTreeMap<u64, String>> {
    if bytes(b, 0, 4)? != b"\x7fELF" || *b.get(5)? != 1 {
        return None;
    }
    let layout = Layout {
        is64: *b.get(4)? == 2,
    };
    let shoff = layout.shoff(b)?;
    let (shentsize, shnum) = layout.shentsize_num(b)?;
    let mut out: BTreeMap<u64, (String, bool)> = BTreeMap::new();
    for i in 0..shnum {
        let sh = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let Some((kind, off, size, link, entsize)) = layout.section(b, sh) else {
            continue;
        };
        if kind != SHT_SYMTAB || entsize == 0 {
            continue;
        }
        let str_sh = shoff.checked_add((link as u64).checked_mul(shentsize)?)?;
        let (_, str_off, str_size, _, _) = layout.section(b, str_sh)?;
        let strtab = bytes(b, str_off, str_size)?;
        for n in 0..(size / entsize).min(MAX_SYMBOLS as u64) {
            let Some((name, value, info, shndx)) = layout.symbol(b, off + n * entsize) else {
                break;
            };
            let (typ, bind) = (info & 0xF, info >> 4);
            if shndx == SHN_UNDEF || shndx == SHN_ABS || typ == STT_SECTION || typ == STT_FILE {
                continue;
            }
            let Some(tail) = strtab.get(name as usize..) else {
                continue;
            };
            let end = tail.iter().position(|c| *c == 0).unwrap_or(tail.len());
            let Ok(text) = std::str::from_utf8(&tail[..end]) else {
                continue;
            };
            if text.is_empty() || text.starts_with(".L") {
                continue;
            }
            let global = bind == STB_GLOBAL;
            match out.get(&value) {
                Some((_, true)) => {}
                Some(_) if !global => {}
                _ => {
                    out.insert(value, (text.to_string(), global));
                }
            }
        }
    }
    Some(out.into_iter().map(|(a, (n, _))| (a, n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_guest_has_its_entry_point_named() {
        let demo = guests::by_name("demo").expect("built in");
        let syms = Symbols::parse(demo.image);
        assert!(syms.len() > 10, "demo.elf has a symbol table");
        // The Multiboot entry is at 1 MiB (the start of .text) and has a name.
        assert!(syms.exact(0x10_0000).is_some(), "a symbol at 0x100000");
        assert!(
            syms.find("COM1").is_none(),
            "absolute constants are not addresses"
        );
        let (name, off) = syms.lookup(0x10_0003).expect("near the entry");
        assert_eq!(Some(name), syms.exact(0x10_0000));
        assert_eq!(off, 3);
    }

    #[test]
    fn malformed_files_give_no_symbols_and_no_panic() {
        let demo = guests::by_name("demo").expect("built in").image;
        assert!(Symbols::parse(b"").is_empty());
        assert!(Symbols::parse(b"\x7fELF\x01\x01").is_empty());
        // Every truncation of a real file parses without panicking.
        for len in (0..demo.len()).step_by(97) {
            let _ = Symbols::parse(&demo[..len]);
        }
        // Section offsets pointing far outside the file.
        let mut broken = demo.to_vec();
        broken[0x20..0x24].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert!(Symbols::parse(&broken).is_empty());
    }
}

//! Reading ACPI tables back from guest memory, as an OS does: scan, verify, follow pointers.
//! Teaches: the guest's side of ACPI — every step checks a signature and a checksum before it
//! trusts a pointer, so a bad table is reported instead of followed.

use super::loader::checksum;

/// Reads `len` bytes of guest-physical memory at an address (`None` outside memory).
pub type ReadMem<'a> = &'a dyn Fn(u64, usize) -> Option<Vec<u8>>;

/// Why the tables cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No "RSD PTR " with a valid checksum on a 16-byte boundary in 0xE0000–0xFFFFF.
    #[error("no RSDP found in 0xE0000-0xFFFFF")]
    NoRsdp,
    /// A table's bytes do not sum to zero.
    #[error("{signature} at {addr:#x} has a bad checksum")]
    BadChecksum { signature: String, addr: u64 },
    /// A pointer leads outside memory, or a length is impossible.
    #[error("table at {addr:#x} is outside memory or truncated")]
    Truncated { addr: u64 },
    /// A table the PC must have is not listed.
    #[error("no {0} table listed in the RSDT/XSDT")]
    Missing(&'static str),
}

/// One MADT entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadtEntry {
    LocalApic {
        uid: u8,
        apic_id: u8,
        flags: u32,
    },
    IoApic {
        id: u8,
        addr: u32,
        gsi_base: u32,
    },
    SourceOverride {
        bus: u8,
        irq: u8,
        gsi: u32,
        flags: u16,
    },
    LocalApicNmi {
        uid: u8,
        flags: u16,
        lint: u8,
    },
    Other {
        kind: u8,
        len: u8,
    },
}

/// The FADT fields a kernel uses first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fadt {
    pub revision: u8,
    pub facs: u32,
    pub dsdt: u32,
    pub x_dsdt: u64,
    pub sci_int: u16,
    pub pm1a_evt_blk: u32,
    pub pm1a_cnt_blk: u32,
    pub pm_tmr_blk: u32,
    pub flags: u32,
}

/// Everything found by following the RSDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiInfo {
    pub rsdp_addr: u64,
    pub rsdp_revision: u8,
    /// (signature, address) of every table the RSDT lists.
    pub rsdt: Vec<(String, u64)>,
    /// The same from the XSDT (empty for ACPI 1.0 RSDPs).
    pub xsdt: Vec<(String, u64)>,
    pub lapic_addr: u32,
    pub madt: Vec<MadtEntry>,
    pub fadt: Fadt,
    /// The DSDT's signature was right and its checksum valid.
    pub dsdt_len: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u32_at(b, at) as u64 | (u32_at(b, at + 4) as u64) << 32
}

/// Scans `[start, end)` on 16-byte boundaries for a valid RSDP.
pub fn find_rsdp(read: ReadMem, start: u64, end: u64) -> Option<u64> {
    (start..end)
        .step_by(16)
        .find(|&a| read(a, 20).is_some_and(|b| &b[..8] == b"RSD PTR " && checksum(&b) == 0))
}

/// Reads a whole table at `addr` and checks its signature, its checksum and that it is at
/// least `min_len` bytes long (so every fixed field read later exists).
fn table(
    read: ReadMem,
    addr: u64,
    signature: &[u8; 4],
    min_len: usize,
) -> Result<Vec<u8>, ParseError> {
    let head = read(addr, 36).ok_or(ParseError::Truncated { addr })?;
    let len = u32_at(&head, 4) as usize;
    if &head[..4] != signature || !(min_len.max(36)..=1 << 20).contains(&len) {
        return Err(ParseError::Truncated { addr });
    }
    let t = read(addr, len).ok_or(ParseError::Truncated { addr })?;
    if checksum(&t) != 0 {
        return Err(ParseError::BadChecksum {
            signature: String::from_utf8_lossy(signature).into_owned(),
            addr,
        });
    }
    Ok(t)
}

fn listed(read: ReadMem, root: &[u8], width: usize) -> Vec<(String, u64)> {
    root[36..]
        .chunks_exact(width)
        .map(|e| {
            if width == 4 {
                u32_at(e, 0) as u64
            } else {
                u64_at(e, 0)
            }
        })
        .map(|a| {
            let sig = read(a, 4).map(|s| String::from_utf8_lossy(&s).into_owned());
            (sig.unwrap_or_default(), a)
        })
        .collect()
}

fn madt_entries(t: &[u8]) -> Vec<MadtEntry> {
    let mut entries = Vec::new();
    let mut at = 44;
    while at + 2 <= t.len() {
        let (kind, len) = (t[at], t[at + 1]);
        if len < 2 || at + len as usize > t.len() {
            break;
        }
        let e = &t[at..at + len as usize];
        entries.push(match (kind, len) {
            (0, 8) => MadtEntry::LocalApic {
                uid: e[2],
                apic_id: e[3],
                flags: u32_at(e, 4),
            },
            (1, 12) => MadtEntry::IoApic {
                id: e[2],
                addr: u32_at(e, 4),
                gsi_base: u32_at(e, 8),
            },
            (2, 10) => MadtEntry::SourceOverride {
                bus: e[2],
                irq: e[3],
                gsi: u32_at(e, 4),
                flags: u16_at(e, 8),
            },
            (4, 6) => MadtEntry::LocalApicNmi {
                uid: e[2],
                flags: u16_at(e, 3),
                lint: e[5],
            },
            _ => MadtEntry::Other { kind, len },
        });
        at += len as usize;
    }
    entries
}

/// Finds the RSDP in 0xE0000–0xFFFFF and reads the RSDT, XSDT, MADT, FADT and DSDT.
pub fn parse(read: ReadMem) -> Result<AcpiInfo, ParseError> {
    let rsdp_addr = find_rsdp(read, 0xE_0000, 0x10_0000).ok_or(ParseError::NoRsdp)?;
    let rsdp = read(rsdp_addr, 36).ok_or(ParseError::NoRsdp)?;
    let revision = rsdp[15];
    let rsdt = table(read, u32_at(&rsdp, 16) as u64, b"RSDT", 36)?;
    let rsdt = listed(read, &rsdt, 4);
    let xsdt = if revision >= 2 {
        if checksum(&rsdp[..36]) != 0 {
            return Err(ParseError::BadChecksum {
                signature: "RSDP (extended)".into(),
                addr: rsdp_addr,
            });
        }
        listed(read, &table(read, u64_at(&rsdp, 24), b"XSDT", 36)?, 8)
    } else {
        Vec::new()
    };
    let find = |sig: &'static str| {
        rsdt.iter()
            .find(|(s, _)| s == sig)
            .map(|&(_, a)| a)
            .ok_or(ParseError::Missing(sig))
    };
    let madt = table(read, find("APIC")?, b"APIC", 44)?;
    let f = table(read, find("FACP")?, b"FACP", 116)?;
    let fadt = Fadt {
        revision: f[8],
        facs: u32_at(&f, 36),
        dsdt: u32_at(&f, 40),
        x_dsdt: if f.len() >= 148 { u64_at(&f, 140) } else { 0 },
        sci_int: u16_at(&f, 46),
        pm1a_evt_blk: u32_at(&f, 56),
        pm1a_cnt_blk: u32_at(&f, 64),
        pm_tmr_blk: u32_at(&f, 76),
        flags: u32_at(&f, 112),
    };
    let dsdt = table(read, fadt.dsdt as u64, b"DSDT", 36)?;
    Ok(AcpiInfo {
        rsdp_addr,
        rsdp_revision: revision,
        rsdt,
        xsdt,
        lapic_addr: u32_at(&madt, 36),
        madt: madt_entries(&madt),
        fadt,
        dsdt_len: dsdt.len() as u32,
    })
}

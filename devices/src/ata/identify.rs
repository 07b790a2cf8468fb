//! The IDENTIFY DEVICE data: 256 words that tell a driver what the drive is and can do.
//! Teaches: how a driver learns a disk's size (28-bit words 60–61, 48-bit words 100–103), its
//! command sets (words 82–87), PIO modes and multiple-block size — and the byte-swapped ATA
//! strings and the checksum byte that trip up every first driver.
//!
//! Word numbers and bits follow ATA/ATAPI-8 ACS §7.16 (IDENTIFY DEVICE); obsolete words that
//! old drivers still read (the default CHS geometry in words 1/3/6, the current translation in
//! 54–58) are filled as ATA-5 defined them.

use super::commands::{cylinders, LBA28_LIMIT};
use super::{Geometry, MAX_MULTIPLE, SECTOR_SIZE};

/// What the IDENTIFY data is made from.
pub(super) struct DriveInfo<'a> {
    /// Up to 20 characters (the backend's id).
    pub serial: &'a str,
    pub total_sectors: u64,
    /// The current CHS translation.
    pub geometry: Geometry,
    /// Current READ/WRITE MULTIPLE block size; 0: disabled.
    pub multiple: u8,
    pub write_cache: bool,
}

/// The model number (words 27–46).
pub const MODEL: &str = "vmscope ATA disk";
/// The firmware revision (words 23–26).
pub const FIRMWARE: &str = "0.1";

// Word numbers.
const GENERAL_CONFIG: usize = 0;
const DEFAULT_CYLINDERS: usize = 1;
const SPECIFIC_CONFIG: usize = 2;
const DEFAULT_HEADS: usize = 3;
const DEFAULT_SECTORS: usize = 6;
const SERIAL: (usize, usize) = (10, 10);
const FIRMWARE_REV: (usize, usize) = (23, 4);
const MODEL_NUMBER: (usize, usize) = (27, 20);
const MULTIPLE_MAX: usize = 47;
const TRUSTED_COMPUTING: usize = 48;
const CAPABILITIES: usize = 49;
const CAPABILITIES_2: usize = 50;
const PIO_TIMING_OBSOLETE: usize = 51;
const FIELD_VALIDITY: usize = 53;
const CURRENT_CYLINDERS: usize = 54;
const CURRENT_HEADS: usize = 55;
const CURRENT_SECTORS: usize = 56;
const CURRENT_CAPACITY: usize = 57;
const MULTIPLE_CURRENT: usize = 59;
const LBA28_CAPACITY: usize = 60;
const MULTIWORD_DMA: usize = 63;
const PIO_MODES: usize = 64;
const MIN_PIO_CYCLE: usize = 67;
const MIN_PIO_CYCLE_IORDY: usize = 68;
const MAJOR_VERSION: usize = 80;
const SUPPORTED_82: usize = 82;
const SUPPORTED_83: usize = 83;
const SUPPORTED_84: usize = 84;
const ENABLED_85: usize = 85;
const ENABLED_86: usize = 86;
const DEFAULT_87: usize = 87;
const ULTRA_DMA: usize = 88;
const RESET_RESULT: usize = 93;
const LBA48_CAPACITY: usize = 100;
const SECTOR_SIZES: usize = 106;
const INTEGRITY: usize = 255;

/// Words 83, 84 and 87: bit 14 set, bit 15 clear mark the word as valid.
const VALID: u16 = 1 << 14;
// Words 82/85.
const WRITE_CACHE: u16 = 1 << 5;
const POWER_MANAGEMENT: u16 = 1 << 3;
// Words 83/86.
const FLUSH_CACHE_EXT: u16 = 1 << 13;
const FLUSH_CACHE: u16 = 1 << 12;
const ADDRESS_48: u16 = 1 << 10;
// Word 49.
const IORDY: u16 = 1 << 11;
const IORDY_DISABLE: u16 = 1 << 10;
const LBA: u16 = 1 << 9;
/// Word 255 bits 7:0: the checksum in bits 15:8 is valid.
const SIGNATURE: u16 = 0xA5;

/// Writes `text` as an ATA string into `len` words from `start`: two characters per word, the
/// first in the high byte, padded with spaces; characters outside printable ASCII become '?'.
fn put_string(words: &mut [u16; 256], (start, len): (usize, usize), text: &str) {
    let mut chars = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c as u8
            } else {
                b'?'
            }
        })
        .chain(std::iter::repeat(b' '));
    for word in &mut words[start..start + len] {
        let (first, second) = (chars.next().unwrap_or(b' '), chars.next().unwrap_or(b' '));
        *word = u16::from_be_bytes([first, second]);
    }
}

/// Puts a 32-bit value into two words, low word first.
fn put_u32(words: &mut [u16; 256], at: usize, value: u32) {
    words[at] = value as u16;
    words[at + 1] = (value >> 16) as u16;
}

/// The 256 IDENTIFY DEVICE words (the checksum in word 255 included).
pub(super) fn identify_words(info: &DriveInfo) -> [u16; 256] {
    let mut w = [0u16; 256];
    let total = info.total_sectors;
    let default_cylinders = cylinders(total, Geometry::DEFAULT).min(16_383);
    let g = info.geometry;
    let current_cylinders = cylinders(total, g);

    w[GENERAL_CONFIG] = 0x0040; // ATA device, fixed (not removable)
    w[DEFAULT_CYLINDERS] = default_cylinders as u16;
    w[SPECIFIC_CONFIG] = 0xC837; // no SET FEATURES needed to spin up, data complete
    w[DEFAULT_HEADS] = Geometry::DEFAULT.heads as u16;
    w[DEFAULT_SECTORS] = Geometry::DEFAULT.sectors as u16;
    put_string(&mut w, SERIAL, info.serial);
    put_string(&mut w, FIRMWARE_REV, FIRMWARE);
    put_string(&mut w, MODEL_NUMBER, MODEL);
    w[MULTIPLE_MAX] = 0x8000 | MAX_MULTIPLE as u16;
    w[TRUSTED_COMPUTING] = VALID; // trusted computing not supported
    w[CAPABILITIES] = IORDY | IORDY_DISABLE | LBA; // no DMA
    w[CAPABILITIES_2] = VALID;
    w[PIO_TIMING_OBSOLETE] = 0x0200;
    w[FIELD_VALIDITY] = 0b111; // words 54–58, 64–70 and 88 are valid
    w[CURRENT_CYLINDERS] = current_cylinders as u16;
    w[CURRENT_HEADS] = g.heads as u16;
    w[CURRENT_SECTORS] = g.sectors as u16;
    let current_capacity = current_cylinders * g.heads as u64 * g.sectors as u64;
    put_u32(&mut w, CURRENT_CAPACITY, current_capacity as u32);
    if info.multiple != 0 {
        w[MULTIPLE_CURRENT] = 0x0100 | info.multiple as u16; // bit 8: the setting is valid
    }
    put_u32(&mut w, LBA28_CAPACITY, total.min(LBA28_LIMIT) as u32);
    w[MULTIWORD_DMA] = 0;
    w[PIO_MODES] = 0b11; // PIO modes 3 and 4 (0–2 are implied)
    w[MIN_PIO_CYCLE] = 120; // ns
    w[MIN_PIO_CYCLE_IORDY] = 120;
    w[MAJOR_VERSION] = 0x01F0; // ATA/ATAPI-4 through ATA8-ACS
    w[SUPPORTED_82] = WRITE_CACHE | POWER_MANAGEMENT;
    w[SUPPORTED_83] = VALID | FLUSH_CACHE_EXT | FLUSH_CACHE | ADDRESS_48;
    w[SUPPORTED_84] = VALID;
    w[ENABLED_85] = POWER_MANAGEMENT | if info.write_cache { WRITE_CACHE } else { 0 };
    w[ENABLED_86] = FLUSH_CACHE_EXT | FLUSH_CACHE | ADDRESS_48;
    w[DEFAULT_87] = VALID;
    w[ULTRA_DMA] = 0;
    // Hardware reset result: valid, device 0 numbered by jumper and passed its diagnostics.
    w[RESET_RESULT] = VALID | 0b1011;
    let lba48 = total.min((1 << 48) - 1);
    for i in 0..4 {
        w[LBA48_CAPACITY + i] = (lba48 >> (16 * i)) as u16;
    }
    w[SECTOR_SIZES] = VALID; // one 512-byte logical sector per physical sector
    w[INTEGRITY] = SIGNATURE;
    let sum = w[..INTEGRITY]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .fold(SIGNATURE as u8, u8::wrapping_add);
    w[INTEGRITY] |= (sum.wrapping_neg() as u16) << 8;
    w
}

/// The IDENTIFY data as the data port delivers it: little-endian words.
pub(super) fn identify_bytes(info: &DriveInfo) -> Vec<u8> {
    let bytes: Vec<u8> = identify_words(info)
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    debug_assert_eq!(bytes.len() as u64, SECTOR_SIZE);
    bytes
}

/// Does a 512-byte IDENTIFY block carry a valid integrity word (signature A5h in byte 510,
/// and all 512 bytes summing to zero modulo 256)? What a careful driver checks.
pub fn identify_checksum_ok(block: &[u8]) -> bool {
    block.len() == 512
        && block[510] == SIGNATURE as u8
        && block.iter().fold(0u8, |a, &b| a.wrapping_add(b)) == 0
}

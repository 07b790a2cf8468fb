//! The ACPI "linker/loader" script (fw_cfg file `etc/table-loader`) and an executor for it.
//! Teaches: ACPI tables point at each other by physical address, which only firmware knows —
//! so the VMM ships the tables with offsets, plus a script that says where to patch and checksum.
//!
//! Every command is a 128-byte little-endian record starting with a `u32` command number:
//!
//! | command | fields after the number |
//! |---------|-------------------------|
//! | 1 ALLOCATE     | `file: [u8; 56]`, `align: u32`, `zone: u8` (1 = anywhere below 4 GiB, 2 = the F segment) |
//! | 2 ADD_POINTER  | `dest_file: [u8; 56]`, `src_file: [u8; 56]`, `offset: u32`, `size: u8` — add src's address to the `size`-byte pointer at `offset` in dest |
//! | 3 ADD_CHECKSUM | `file: [u8; 56]`, `offset: u32`, `start: u32`, `length: u32` — make bytes `start..start+length` sum to 0 by adjusting the byte at `offset` |
//!
//! (This is the format QEMU's firmware interface documents and SeaBIOS/OVMF execute.) vmscope
//! has no BIOS, so the machine runs the same script itself when it is created — see
//! [`run_loader`] — and a guest finds the result exactly where firmware would have left it.

use std::collections::BTreeMap;

use crate::fwcfg::FILE_NAME_LEN;

/// Size of one command record.
pub const COMMAND_SIZE: usize = 128;

/// Where ALLOCATE asks for a file to be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// Anywhere in 32-bit memory (tables).
    High = 1,
    /// The BIOS F segment, 0xE0000–0xFFFFF in practice (the RSDP, which guests scan for).
    FSeg = 2,
}

/// One linker/loader command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoaderCommand {
    Allocate {
        file: String,
        align: u32,
        zone: Zone,
    },
    AddPointer {
        dest_file: String,
        src_file: String,
        offset: u32,
        size: u8,
    },
    AddChecksum {
        file: String,
        offset: u32,
        start: u32,
        length: u32,
    },
}

/// Why a loader script cannot be executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoaderError {
    /// A command names a file that was not allocated.
    #[error("loader command names file {0:?}, which was not allocated")]
    UnknownFile(String),
    /// A pointer or checksum lies outside its file.
    #[error("loader command reaches outside {file:?} (offset {offset}, file size {size})")]
    OutOfBounds {
        file: String,
        offset: u64,
        size: usize,
    },
    /// A pointer size other than 1, 2, 4 or 8.
    #[error("loader pointer size {0} is not 1, 2, 4 or 8")]
    BadPointerSize(u8),
}

fn put_name(record: &mut [u8], at: usize, name: &str) {
    let n = name.len().min(FILE_NAME_LEN - 1);
    record[at..at + n].copy_from_slice(&name.as_bytes()[..n]);
}

fn get_name(record: &[u8], at: usize) -> String {
    let field = &record[at..at + FILE_NAME_LEN];
    let len = field.iter().position(|&b| b == 0).unwrap_or(FILE_NAME_LEN);
    String::from_utf8_lossy(&field[..len]).into_owned()
}

fn u32_at(record: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]])
}

impl LoaderCommand {
    /// The 128-byte record.
    pub fn encode(&self) -> [u8; COMMAND_SIZE] {
        let mut r = [0u8; COMMAND_SIZE];
        let put32 = |r: &mut [u8; COMMAND_SIZE], at: usize, v: u32| {
            r[at..at + 4].copy_from_slice(&v.to_le_bytes())
        };
        match self {
            LoaderCommand::Allocate { file, align, zone } => {
                put32(&mut r, 0, 1);
                put_name(&mut r, 4, file);
                put32(&mut r, 60, *align);
                r[64] = *zone as u8;
            }
            LoaderCommand::AddPointer {
                dest_file,
                src_file,
                offset,
                size,
            } => {
                put32(&mut r, 0, 2);
                put_name(&mut r, 4, dest_file);
                put_name(&mut r, 60, src_file);
                put32(&mut r, 116, *offset);
                r[120] = *size;
            }
            LoaderCommand::AddChecksum {
                file,
                offset,
                start,
                length,
            } => {
                put32(&mut r, 0, 3);
                put_name(&mut r, 4, file);
                put32(&mut r, 60, *offset);
                put32(&mut r, 64, *start);
                put32(&mut r, 68, *length);
            }
        }
        r
    }

    /// Reads a record; `None` for commands this executor does not know (firmware skips them).
    pub fn decode(r: &[u8; COMMAND_SIZE]) -> Option<LoaderCommand> {
        Some(match u32_at(r, 0) {
            1 => LoaderCommand::Allocate {
                file: get_name(r, 4),
                align: u32_at(r, 60),
                zone: if r[64] == 2 { Zone::FSeg } else { Zone::High },
            },
            2 => LoaderCommand::AddPointer {
                dest_file: get_name(r, 4),
                src_file: get_name(r, 60),
                offset: u32_at(r, 116),
                size: r[120],
            },
            3 => LoaderCommand::AddChecksum {
                file: get_name(r, 4),
                offset: u32_at(r, 60),
                start: u32_at(r, 64),
                length: u32_at(r, 68),
            },
            _ => return None,
        })
    }
}

/// Encodes a whole script (the `etc/table-loader` file).
pub fn encode_script(commands: &[LoaderCommand]) -> Vec<u8> {
    commands.iter().flat_map(|c| c.encode()).collect()
}

/// Decodes a script, skipping unknown commands.
pub fn decode_script(bytes: &[u8]) -> Vec<LoaderCommand> {
    bytes
        .chunks_exact(COMMAND_SIZE)
        .filter_map(|c| LoaderCommand::decode(c.try_into().ok()?))
        .collect()
}

/// The byte that makes `bytes` sum to zero (mod 256).
pub fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)))
}

fn range(
    files: &BTreeMap<String, Vec<u8>>,
    file: &str,
    start: u64,
    len: u64,
) -> Result<std::ops::Range<usize>, LoaderError> {
    let data = files
        .get(file)
        .ok_or_else(|| LoaderError::UnknownFile(file.to_string()))?;
    match start.checked_add(len) {
        Some(end) if end <= data.len() as u64 => Ok(start as usize..end as usize),
        _ => Err(LoaderError::OutOfBounds {
            file: file.to_string(),
            offset: start,
            size: data.len(),
        }),
    }
}

/// Executes a script: `files` holds each file's contents (patched in place), `address` the
/// guest-physical address each allocated file was given.
pub fn run_loader(
    commands: &[LoaderCommand],
    files: &mut BTreeMap<String, Vec<u8>>,
    address: &BTreeMap<String, u64>,
) -> Result<(), LoaderError> {
    for command in commands {
        match command {
            LoaderCommand::Allocate { file, .. } => {
                if !files.contains_key(file) || !address.contains_key(file) {
                    return Err(LoaderError::UnknownFile(file.clone()));
                }
            }
            LoaderCommand::AddPointer {
                dest_file,
                src_file,
                offset,
                size,
            } => {
                if ![1, 2, 4, 8].contains(size) {
                    return Err(LoaderError::BadPointerSize(*size));
                }
                let base = *address
                    .get(src_file)
                    .ok_or_else(|| LoaderError::UnknownFile(src_file.clone()))?;
                let r = range(files, dest_file, *offset as u64, *size as u64)?;
                let field = &mut files.get_mut(dest_file).expect("checked by range")[r];
                let mut value = [0u8; 8];
                value[..field.len()].copy_from_slice(field);
                let patched = u64::from_le_bytes(value).wrapping_add(base).to_le_bytes();
                let n = field.len();
                field.copy_from_slice(&patched[..n]);
            }
            LoaderCommand::AddChecksum {
                file,
                offset,
                start,
                length,
            } => {
                let r = range(files, file, *start as u64, *length as u64)?;
                let at = range(files, file, *offset as u64, 1)?.start;
                let data = files.get_mut(file).expect("checked by range");
                data[at] = 0;
                data[at] = checksum(&data[r]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_their_records() {
        let commands = vec![
            LoaderCommand::Allocate {
                file: "etc/acpi/rsdp".into(),
                align: 16,
                zone: Zone::FSeg,
            },
            LoaderCommand::AddPointer {
                dest_file: "etc/acpi/rsdp".into(),
                src_file: "etc/acpi/tables".into(),
                offset: 16,
                size: 4,
            },
            LoaderCommand::AddChecksum {
                file: "etc/acpi/rsdp".into(),
                offset: 8,
                start: 0,
                length: 20,
            },
        ];
        let script = encode_script(&commands);
        assert_eq!(script.len(), 3 * COMMAND_SIZE);
        assert_eq!(&script[0..4], &[1, 0, 0, 0]);
        assert_eq!(script[64], 2, "zone FSEG");
        assert_eq!(&script[128 + 60..128 + 75], b"etc/acpi/tables");
        assert_eq!(decode_script(&script), commands);
    }

    #[test]
    fn pointers_get_the_base_added_and_checksums_zero_the_sum() {
        let mut files = BTreeMap::new();
        files.insert("a".to_string(), vec![0x10, 0, 0, 0, 0, 7, 9]);
        files.insert("b".to_string(), vec![0; 4]);
        let address = BTreeMap::from([("a".to_string(), 0x1000), ("b".to_string(), 0xE_0000)]);
        let commands = [
            LoaderCommand::AddPointer {
                dest_file: "a".into(),
                src_file: "b".into(),
                offset: 0,
                size: 4,
            },
            LoaderCommand::AddChecksum {
                file: "a".into(),
                offset: 4,
                start: 0,
                length: 7,
            },
        ];
        run_loader(&commands, &mut files, &address).unwrap();
        let a = &files["a"];
        assert_eq!(u32::from_le_bytes([a[0], a[1], a[2], a[3]]), 0xE_0010);
        assert_eq!(a.iter().fold(0u8, |s, &b| s.wrapping_add(b)), 0);
    }

    #[test]
    fn bad_scripts_are_errors_not_panics() {
        let mut files = BTreeMap::from([("a".to_string(), vec![0u8; 4])]);
        let address = BTreeMap::from([("a".to_string(), 0)]);
        let out = LoaderCommand::AddChecksum {
            file: "a".into(),
            offset: 0,
            start: u32::MAX,
            length: 2,
        };
        assert!(matches!(
            run_loader(&[out], &mut files, &address),
            Err(LoaderError::OutOfBounds { .. })
        ));
        let missing = LoaderCommand::AddPointer {
            dest_file: "a".into(),
            src_file: "zzz".into(),
            offset: 0,
            size: 4,
        };
        assert_eq!(
            run_loader(&[missing], &mut files, &address),
            Err(LoaderError::UnknownFile("zzz".into()))
        );
        let odd = LoaderCommand::AddPointer {
            dest_file: "a".into(),
            src_file: "a".into(),
            offset: 0,
            size: 3,
        };
        assert_eq!(
            run_loader(&[odd], &mut files, &address),
            Err(LoaderError::BadPointerSize(3))
        );
    }
}

//! Bounds-checked little-endian reads from an image file.
//! Teaches: never index a file with a number the file gave you; check offset + length first.

use super::LoadError;

/// An image file seen as bytes, with its name for error messages.
#[derive(Clone, Copy)]
pub(crate) struct ImageBytes<'n, 'a> {
    pub name: &'n str,
    pub bytes: &'a [u8],
}

impl<'n, 'a> ImageBytes<'n, 'a> {
    pub fn new(name: &'n str, bytes: &'a [u8]) -> Self {
        ImageBytes { name, bytes }
    }

    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// `len` bytes at `offset`, or `LoadError::Truncated` naming `what`.
    pub fn slice(&self, offset: u64, len: u64, what: &str) -> Result<&'a [u8], LoadError> {
        let in_file = offset
            .checked_add(len)
            .filter(|end| *end <= self.len())
            .and_then(|end| Some(usize::try_from(offset).ok()?..usize::try_from(end).ok()?));
        match in_file {
            Some(range) => Ok(&self.bytes[range]),
            None => Err(LoadError::Truncated {
                name: self.name.to_string(),
                what: what.to_string(),
                offset,
                need: len,
                have: self.len(),
            }),
        }
    }

    pub fn u16(&self, offset: u64, what: &str) -> Result<u16, LoadError> {
        let b = self.slice(offset, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&self, offset: u64, what: &str) -> Result<u32, LoadError> {
        let b = self.slice(offset, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Reads a little-endian u32 at `offset` of a slice already known to be long enough, else 0.
pub(crate) fn le32(bytes: &[u8], offset: usize) -> u32 {
    bytes
        .get(offset..offset.saturating_add(4))
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

//! Which device answers at an address: an ordered map of non-overlapping inclusive ranges.
//! Teaches: address decoding. Two devices claiming one port is a board bug, so an overlapping
//! insert is an error; a PCI BAR that moves is a remove and an insert.

use std::collections::BTreeMap;
use std::fmt::LowerHex;

use thiserror::Error;

/// An insert that would make two claimants for one address.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error(
    "{first:#x}..={last:#x} overlaps {other_first:#x}..={other_last:#x}, already taken by {owner}"
)]
pub struct OverlapError {
    pub first: u64,
    pub last: u64,
    pub other_first: u64,
    pub other_last: u64,
    pub owner: String,
}

/// Inclusive ranges `[first, last]` of addresses of type `K` (port numbers, physical
/// addresses), each owned by a `T`. Lookup is a logarithmic search, not a scan.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
#[serde(bound(
    serialize = "K: serde::Serialize, T: serde::Serialize",
    deserialize = "K: Ord + serde::Deserialize<'de>, T: serde::Deserialize<'de>"
))]
pub struct AddressMap<K, T> {
    ranges: BTreeMap<K, (K, T)>,
}

impl<K, T> Default for AddressMap<K, T> {
    fn default() -> Self {
        AddressMap {
            ranges: BTreeMap::new(),
        }
    }
}

impl<K, T> AddressMap<K, T>
where
    K: Ord + Copy + Into<u64> + LowerHex,
    T: Copy + PartialEq + std::fmt::Debug,
{
    /// Claims `[first, last]` for `owner`; fails, changing nothing, if any address is taken.
    pub fn insert(&mut self, first: K, last: K, owner: T) -> Result<(), OverlapError> {
        assert!(first <= last, "empty range {first:#x}..={last:#x}");
        // The only candidates: the range starting at or before `last` with the highest start.
        if let Some((&f, &(l, o))) = self.ranges.range(..=last).next_back() {
            if l >= first {
                return Err(OverlapError {
                    first: first.into(),
                    last: last.into(),
                    other_first: f.into(),
                    other_last: l.into(),
                    owner: format!("{o:?}"),
                });
            }
        }
        self.ranges.insert(first, (last, owner));
        Ok(())
    }

    /// Releases every range `owner` holds; returns how many.
    pub fn remove_owner(&mut self, owner: T) -> usize {
        let before = self.ranges.len();
        self.ranges.retain(|_, (_, o)| *o != owner);
        before - self.ranges.len()
    }

    /// Releases the range starting at `first`, if `owner` holds it.
    pub fn remove(&mut self, first: K, owner: T) -> bool {
        match self.ranges.get(&first) {
            Some((_, o)) if *o == owner => {
                self.ranges.remove(&first);
                true
            }
            _ => false,
        }
    }

    /// The owner of `addr` and the range's first address.
    #[inline]
    pub fn find(&self, addr: K) -> Option<(K, T)> {
        let (&first, &(last, owner)) = self.ranges.range(..=addr).next_back()?;
        (addr <= last).then_some((first, owner))
    }

    /// Every range, in address order: (first, last, owner).
    pub fn iter(&self) -> impl Iterator<Item = (K, K, T)> + '_ {
        self.ranges.iter().map(|(&f, &(l, o))| (f, l, o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_the_owner_and_gaps_find_nothing() {
        let mut map = AddressMap::<u16, u8>::default();
        map.insert(0x40, 0x43, 1).unwrap();
        map.insert(0x3F8, 0x3FF, 2).unwrap();
        map.insert(0x61, 0x61, 1).unwrap();
        assert_eq!(map.find(0x42), Some((0x40, 1)));
        assert_eq!(map.find(0x61), Some((0x61, 1)));
        assert_eq!(map.find(0x3FF), Some((0x3F8, 2)));
        assert_eq!(map.find(0x44), None);
        assert_eq!(map.find(0x3F7), None);
        assert_eq!(map.find(0), None);
    }

    #[test]
    fn overlapping_inserts_are_errors_and_change_nothing() {
        let mut map = AddressMap::<u64, u8>::default();
        map.insert(0x1000, 0x1FFF, 1).unwrap();
        for (f, l) in [
            (0x1FFF, 0x2000),
            (0x800, 0x1000),
            (0x1100, 0x1200),
            (0, u64::MAX),
        ] {
            let e = map.insert(f, l, 2).unwrap_err();
            assert_eq!((e.other_first, e.other_last), (0x1000, 0x1FFF));
        }
        map.insert(0x2000, 0x2FFF, 2).unwrap();
        map.insert(0xFFF, 0xFFF, 3).unwrap();
        assert_eq!(map.iter().count(), 3);
    }

    #[test]
    fn a_moved_range_answers_only_at_its_new_place() {
        let mut map = AddressMap::<u64, u8>::default();
        map.insert(0xE000_0000, 0xE000_0FFF, 7).unwrap();
        assert!(!map.remove(0xE000_0000, 8), "not the owner");
        assert!(map.remove(0xE000_0000, 7));
        map.insert(0xF000_0000, 0xF000_0FFF, 7).unwrap();
        assert_eq!(map.find(0xE000_0010), None);
        assert_eq!(map.find(0xF000_0010), Some((0xF000_0000, 7)));
        assert_eq!(map.remove_owner(7), 1);
    }
}

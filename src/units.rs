//! Unit newtypes for the quantities that flow from disk to image and back.
//!
//! Partition tables count in logical sectors, images and devices in bytes; confusing
//! the two silently corrupts a restore, so each gets its own type, and every conversion
//! that can overflow on values read from disk is checked and returns `None` instead of
//! wrapping. Filesystem block and cluster numbers do not get a type here: they do not
//! leave their filesystem's decoder, whose output (`UsedMap`) is byte ranges.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! unit {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            pub const fn new(v: u64) -> Self {
                Self(v)
            }
            pub const fn get(self) -> u64 {
                self.0
            }
            pub fn checked_add(self, n: u64) -> Option<Self> {
                self.0.checked_add(n).map(Self)
            }
            pub fn checked_sub(self, n: u64) -> Option<Self> {
                self.0.checked_sub(n).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

unit!(
    /// A logical block address: a sector index in the device's logical sector size.
    Lba
);
unit!(
    /// An absolute byte offset (or a length in bytes).
    ByteOffset
);

impl Lba {
    /// Byte offset of this sector, or `None` when it does not fit in a `u64`.
    pub fn to_bytes(self, sector_size: u32) -> Option<ByteOffset> {
        self.0.checked_mul(u64::from(sector_size)).map(ByteOffset)
    }
}

impl ByteOffset {
    /// The sector that holds this byte, when the offset is sector-aligned.
    pub fn to_lba_exact(self, sector_size: u32) -> Option<Lba> {
        let ss = u64::from(sector_size);
        if ss == 0 || self.0 % ss != 0 {
            return None;
        }
        Some(Lba(self.0 / ss))
    }
}

/// Formats a byte count the way a person reads it on a console: `1.5 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// `1 partition`, `4 partitions`: a count with its noun in the right number, so a
/// one-partition disk does not read "1 partitions".
pub fn count<N>(n: N, one: &str, many: &str) -> String
where
    N: fmt::Display + PartialEq + From<u8>,
{
    if n == N::from(1) {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lba_bytes_overflow_is_none() {
        assert_eq!(Lba(u64::MAX).to_bytes(512), None);
        assert_eq!(Lba(2).to_bytes(4096), Some(ByteOffset(8192)));
    }

    #[test]
    fn exact_lba() {
        assert_eq!(ByteOffset(1024).to_lba_exact(512), Some(Lba(2)));
        assert_eq!(ByteOffset(1000).to_lba_exact(512), None);
        assert_eq!(ByteOffset(1000).to_lba_exact(0), None);
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(4 << 30), "4.0 GiB");
    }

    #[test]
    fn counts() {
        assert_eq!(count(1usize, "partition", "partitions"), "1 partition");
        assert_eq!(count(0u64, "file", "files"), "0 files");
        assert_eq!(count(4u32, "partition", "partitions"), "4 partitions");
    }
}

//! Byte extents and a builder that turns runs of used blocks into a sorted, merged list.

use serde::{Deserialize, Serialize};

/// A byte range `[offset, offset + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ByteExtent {
    pub offset: u64,
    pub len: u64,
}

impl ByteExtent {
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// `ranges` sorted, with those that touch or overlap joined and empty ones dropped
/// (a bad stretch across a chunk boundary is one range, as on the disk).
pub fn merged(ranges: impl IntoIterator<Item = ByteExtent>) -> Vec<ByteExtent> {
    let mut b = ExtentBuilder::new();
    for r in ranges {
        b.add(r.offset, r.len);
    }
    b.finish(u64::MAX)
}

/// Collects ranges in any order, then sorts, clips to a limit and merges them.
#[derive(Default)]
pub struct ExtentBuilder {
    ranges: Vec<ByteExtent>,
}

impl ExtentBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `[offset, offset+len)`. Zero-length ranges are ignored; a range whose end
    /// overflows is clipped at `u64::MAX` (and later at the device size by `finish`).
    pub fn add(&mut self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let len = len.min(u64::MAX - offset);
        self.ranges.push(ByteExtent { offset, len });
    }

    /// Adds a run of `count` blocks of `block_size` bytes starting at block `first`.
    /// Returns `None` when the byte range overflows `u64` (a corrupt value from disk).
    pub fn add_blocks(&mut self, first: u64, count: u64, block_size: u64) -> Option<()> {
        let off = first.checked_mul(block_size)?;
        let len = count.checked_mul(block_size)?;
        off.checked_add(len)?;
        self.add(off, len);
        Some(())
    }

    /// Sorted, merged extents, clipped to `[0, limit)`.
    pub fn finish(mut self, limit: u64) -> Vec<ByteExtent> {
        self.ranges.sort_unstable();
        let mut out: Vec<ByteExtent> = Vec::with_capacity(self.ranges.len());
        for r in self.ranges {
            if r.offset >= limit {
                break;
            }
            let end = r.end().min(limit);
            match out.last_mut() {
                Some(last) if r.offset <= last.end() => {
                    if end > last.end() {
                        last.len = end - last.offset;
                    }
                }
                _ => out.push(ByteExtent {
                    offset: r.offset,
                    len: end - r.offset,
                }),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_sorts_and_clips() {
        let mut b = ExtentBuilder::new();
        b.add(100, 50);
        b.add(0, 10);
        b.add(10, 5);
        b.add(120, 100);
        b.add(5000, 10);
        let v = b.finish(200);
        assert_eq!(
            v,
            vec![
                ByteExtent { offset: 0, len: 15 },
                ByteExtent {
                    offset: 100,
                    len: 100
                }
            ]
        );
    }

    #[test]
    fn block_overflow_is_none() {
        let mut b = ExtentBuilder::new();
        assert!(b.add_blocks(u64::MAX / 2, 4, 4096).is_none());
        assert!(b.add_blocks(1, 2, 4096).is_some());
    }
}

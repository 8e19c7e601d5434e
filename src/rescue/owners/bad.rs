//! The set of unreadable bytes, asked "how much of this range is bad?" many times
//! while walking every file, so it answers by binary search.

use crate::rescue::BadRange;

pub struct BadSet {
    /// Sorted, merged, non-empty `[start, end)` byte ranges.
    ranges: Vec<(u64, u64)>,
}

impl BadSet {
    pub fn new(bad: &[BadRange]) -> Self {
        let mut v: Vec<(u64, u64)> = bad
            .iter()
            .filter(|b| b.len > 0)
            .map(|b| (b.offset, b.end()))
            .collect();
        v.sort();
        let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match ranges.last_mut() {
                Some(last) if last.1 >= s => last.1 = last.1.max(e),
                _ => ranges.push((s, e)),
            }
        }
        BadSet { ranges }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn total(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Bad bytes inside `[start, start+len)`.
    pub fn hits(&self, start: u64, len: u64) -> u64 {
        let end = start.saturating_add(len);
        let first = self.ranges.partition_point(|&(_, e)| e <= start);
        let mut n = 0u64;
        for &(s, e) in self.ranges.iter().skip(first) {
            if s >= end {
                break;
            }
            n = n.saturating_add(e.min(end) - s.max(start));
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_counts_overlap() {
        let b = BadSet::new(&[
            BadRange {
                offset: 100,
                len: 10,
            },
            BadRange {
                offset: 105,
                len: 10,
            },
            BadRange {
                offset: 200,
                len: 1,
            },
        ]);
        assert_eq!(b.ranges(), &[(100, 115), (200, 201)]);
        assert_eq!(b.hits(0, 100), 0);
        assert_eq!(b.hits(0, 1000), 16);
        assert_eq!(b.hits(110, 91), 6);
        assert_eq!(b.hits(201, u64::MAX), 0);
    }
}

//! A read-only view of a device with some byte ranges read from other devices. A
//! scheduled image of an encrypted-LVM disk reads its open PV this way: each mounted
//! LV's extents from that LV's snapshot (a consistent copy), everything else from the
//! PV itself (docs/SCHEDULE.md, "Encrypted disks").

use super::patched::read_spliced;
use super::{Access, BlockDevice, DeviceError};
use std::sync::Arc;

/// Bytes `at..at+len` of the view come from `dev`, starting at its byte `from`.
pub struct Redirect {
    pub at: u64,
    pub len: u64,
    pub dev: Arc<dyn BlockDevice>,
    pub from: u64,
}

pub struct Redirected {
    inner: Arc<dyn BlockDevice>,
    /// Sorted by `at`, not overlapping, each inside `inner` and its own device.
    ranges: Vec<Redirect>,
}

impl Redirected {
    /// Errors when ranges overlap or lie outside either device.
    pub fn new(
        inner: Arc<dyn BlockDevice>,
        mut ranges: Vec<Redirect>,
    ) -> Result<Self, DeviceError> {
        ranges.sort_by_key(|r| r.at);
        let bad = |what: String| DeviceError::Query {
            device: inner.describe(),
            what,
        };
        let mut end = 0u64;
        for r in &ranges {
            let r_end = r.at.checked_add(r.len).filter(|&e| e <= inner.size());
            let src_end = r.from.checked_add(r.len).filter(|&e| e <= r.dev.size());
            match (r_end, src_end) {
                (Some(e), Some(_)) if r.at >= end => end = e,
                _ => {
                    return Err(bad(format!(
                        "redirected range {}+{} from {} at {} overlaps or lies outside",
                        r.at,
                        r.len,
                        r.dev.describe(),
                        r.from
                    )))
                }
            }
        }
        Ok(Redirected { inner, ranges })
    }
}

impl BlockDevice for Redirected {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check_range(offset, buf.len() as u64)?;
        let spans = self.ranges.iter().map(|r| (r.at, r.len));
        read_spliced(self.inner.as_ref(), offset, buf, spans, |i, from, dst| {
            let r = &self.ranges[i];
            r.dev.read_at(r.from + from, dst)
        })
    }

    fn write_at(&self, offset: u64, _buf: &[u8]) -> Result<(), DeviceError> {
        Err(DeviceError::ReadOnly {
            device: self.describe(),
            offset,
        })
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn logical_sector_size(&self) -> u32 {
        self.inner.logical_sector_size()
    }

    fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }

    fn access(&self) -> Access {
        Access::ReadOnly
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    #[test]
    fn reads_the_redirected_ranges_from_their_devices() {
        let base: Vec<u8> = (0..64u8).collect();
        let other: Vec<u8> = (100..132u8).collect();
        let inner = Arc::new(MemDevice::from_vec(base.clone(), 512));
        let o: Arc<dyn BlockDevice> = Arc::new(MemDevice::from_vec(other.clone(), 512));
        let ranges = vec![
            Redirect {
                at: 40,
                len: 8,
                dev: o.clone(),
                from: 0,
            },
            Redirect {
                at: 10,
                len: 5,
                dev: o.clone(),
                from: 20,
            },
        ];
        let dev = Redirected::new(inner.clone(), ranges).unwrap();
        let mut want = base.clone();
        want[40..48].copy_from_slice(&other[0..8]);
        want[10..15].copy_from_slice(&other[20..25]);
        for start in 0..64usize {
            for len in 0..=(64 - start) {
                let mut buf = vec![0u8; len];
                dev.read_at(start as u64, &mut buf).unwrap();
                assert_eq!(buf, want[start..start + len], "{start}+{len}");
            }
        }
        assert!(dev.read_at(60, &mut [0u8; 8]).is_err());
        assert!(dev.write_at(0, &[1]).is_err());
        // Overlapping, or past the source's end: refused.
        let bad = vec![
            Redirect {
                at: 0,
                len: 8,
                dev: o.clone(),
                from: 0,
            },
            Redirect {
                at: 4,
                len: 8,
                dev: o.clone(),
                from: 0,
            },
        ];
        assert!(Redirected::new(inner.clone(), bad).is_err());
        let past = vec![Redirect {
            at: 0,
            len: 8,
            dev: o,
            from: 30,
        }];
        assert!(Redirected::new(inner, past).is_err());
    }
}

//! A read-only view of a device with some byte ranges replaced. It lets a filesystem
//! whose primary superblock or boot sector was lost be read (browsed) through a
//! primary rebuilt in memory from its backup, without writing the image or the disk.

use super::{Access, BlockDevice, DeviceError};
use std::sync::Arc;

pub struct Patched {
    inner: Arc<dyn BlockDevice>,
    /// (offset, bytes), sorted, not overlapping.
    patches: Vec<(u64, Vec<u8>)>,
}

impl Patched {
    /// Each `(at, bytes)` is read at `at` instead of what `inner` holds there; of
    /// patches that overlap, the first (by offset) wins.
    pub fn new(inner: Arc<dyn BlockDevice>, mut patches: Vec<(u64, Vec<u8>)>) -> Self {
        patches.sort_by_key(|p| p.0);
        let mut end = 0u64;
        patches.retain(|(at, b)| {
            let keep = *at >= end;
            if keep {
                end = at.saturating_add(b.len() as u64);
            }
            keep
        });
        Patched { inner, patches }
    }
}

impl BlockDevice for Patched {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check_range(offset, buf.len() as u64)?;
        // What is not patched comes from the device, so a patched range that cannot
        // be read there (the lost primary) is never asked for.
        let spans = self.patches.iter().map(|(at, b)| (*at, b.len() as u64));
        read_spliced(self.inner.as_ref(), offset, buf, spans, |i, from, dst| {
            let bytes = &self.patches[i].1;
            let from = from as usize;
            dst.copy_from_slice(&bytes[from..from + dst.len()]);
            Ok(())
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

/// Reads `buf` (bytes `offset..` of a view over `inner`) where `spans` (`(at, len)`,
/// sorted by `at`, not overlapping) are spliced in: the bytes of span `i` from its
/// byte `from` on come from `fill(i, from, dst)`, all the rest from `inner`. The one
/// walk `Patched` (bytes in memory) and `Redirected` (other devices) share.
pub(super) fn read_spliced(
    inner: &dyn BlockDevice,
    offset: u64,
    buf: &mut [u8],
    spans: impl Iterator<Item = (u64, u64)>,
    mut fill: impl FnMut(usize, u64, &mut [u8]) -> Result<(), DeviceError>,
) -> Result<(), DeviceError> {
    let end = offset + buf.len() as u64;
    let mut pos = offset;
    for (i, (at, len)) in spans.enumerate() {
        let s_end = at.saturating_add(len);
        if s_end <= pos || at >= end {
            continue;
        }
        if at > pos {
            let (a, b) = ((pos - offset) as usize, (at - offset) as usize);
            inner.read_at(pos, &mut buf[a..b])?;
            pos = at;
        }
        let hi = s_end.min(end);
        let (a, b) = ((pos - offset) as usize, (hi - offset) as usize);
        fill(i, pos - at, &mut buf[a..b])?;
        pos = hi;
    }
    if pos < end {
        let a = (pos - offset) as usize;
        inner.read_at(pos, &mut buf[a..])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    #[test]
    fn reads_the_patches_and_the_rest_around_them() {
        let base: Vec<u8> = (0..64u8).collect();
        let inner = Arc::new(MemDevice::from_vec(base.clone(), 512));
        let patches = vec![(30, vec![0xDD; 3]), (10, vec![0xEE; 4]), (12, vec![1; 9])];
        let dev = Patched::new(inner, patches);
        let mut want = base.clone();
        want[10..14].fill(0xEE);
        want[30..33].fill(0xDD);
        for start in 0..64usize {
            for len in 0..=(64 - start) {
                let mut buf = vec![0u8; len];
                dev.read_at(start as u64, &mut buf).unwrap();
                assert_eq!(buf, want[start..start + len], "{start}+{len}");
            }
        }
        assert!(dev.read_at(60, &mut [0u8; 8]).is_err());
        assert!(dev.write_at(0, &[1]).is_err());
    }
}

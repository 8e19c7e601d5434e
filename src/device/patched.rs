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
        let end = offset + buf.len() as u64;
        // What is not patched comes from the device, so a patched range that cannot
        // be read there (the lost primary) is never asked for.
        let mut pos = offset;
        for (at, bytes) in &self.patches {
            let p_end = at.saturating_add(bytes.len() as u64);
            if p_end <= pos || *at >= end {
                continue;
            }
            if *at > pos {
                let (a, b) = ((pos - offset) as usize, (at - offset) as usize);
                self.inner.read_at(pos, &mut buf[a..b])?;
                pos = *at;
            }
            let hi = p_end.min(end);
            let (a, b) = ((pos - offset) as usize, (hi - offset) as usize);
            buf[a..b].copy_from_slice(&bytes[(pos - at) as usize..(hi - at) as usize]);
            pos = hi;
        }
        if pos < end {
            let a = (pos - offset) as usize;
            self.inner.read_at(pos, &mut buf[a..])?;
        }
        Ok(())
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

//! A source disk with other devices placed after its end: how a backup reads the
//! plaintext of an opened LUKS volume (`/dev/mapper/...`) as one more area of the same
//! source, without the repository engine knowing about a second device. Read-only.

use super::{Access, BlockDevice, DeviceError};

/// `base` at 0, then each extra device at its own offset past `base`'s end.
pub struct Stacked<'a> {
    base: &'a dyn BlockDevice,
    /// (offset, device), sorted by offset, non-overlapping, all past `base`.
    extra: Vec<(u64, &'a dyn BlockDevice)>,
    size: u64,
}

impl<'a> Stacked<'a> {
    pub fn new(base: &'a dyn BlockDevice) -> Self {
        Stacked {
            base,
            extra: Vec::new(),
            size: base.size(),
        }
    }

    /// Where the next device added would start: past everything, on a 1 MiB boundary
    /// (so its chunks fall on the same grid as a partition's).
    pub fn next_offset(&self) -> Option<u64> {
        const ALIGN: u64 = 1 << 20;
        self.size.checked_next_multiple_of(ALIGN)
    }

    /// Places `dev` at [`Self::next_offset`] and returns that offset.
    pub fn push(&mut self, dev: &'a dyn BlockDevice) -> Result<u64, DeviceError> {
        let over = || DeviceError::Query {
            device: self.describe(),
            what: "stacked devices overflow 2^64 bytes".into(),
        };
        let at = self.next_offset().ok_or_else(over)?;
        self.size = at.checked_add(dev.size()).ok_or_else(over)?;
        self.extra.push((at, dev));
        Ok(at)
    }

    /// The device holding `[offset, offset+len)` and the offset inside it.
    fn find(&self, offset: u64, len: usize) -> Result<(&'a dyn BlockDevice, u64), DeviceError> {
        self.check_range(offset, len as u64)?;
        let hit = self
            .extra
            .iter()
            .rev()
            .find(|(at, _)| *at <= offset)
            .map(|&(at, d)| (d, offset - at))
            .unwrap_or((self.base, offset));
        hit.0.check_range(hit.1, len as u64)?;
        Ok(hit)
    }
}

impl BlockDevice for Stacked<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let (d, at) = self.find(offset, buf.len())?;
        d.read_at(at, buf)
    }

    fn read_direct_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let (d, at) = self.find(offset, buf.len())?;
        d.read_direct_at(at, buf)
    }

    fn write_at(&self, offset: u64, _buf: &[u8]) -> Result<(), DeviceError> {
        Err(DeviceError::ReadOnly {
            device: self.describe(),
            offset,
        })
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn logical_sector_size(&self) -> u32 {
        self.base.logical_sector_size()
    }

    fn physical_sector_size(&self) -> u32 {
        self.base.physical_sector_size()
    }

    fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }

    fn access(&self) -> Access {
        Access::ReadOnly
    }

    fn describe(&self) -> String {
        self.base.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    #[test]
    fn extra_devices_follow_the_base_on_a_mib_boundary() {
        let base = MemDevice::new(3 << 20 | 512, 512);
        let extra = MemDevice::new(8192, 512);
        extra.write_at(100, b"plain").unwrap();
        let mut s = Stacked::new(&base);
        let at = s.push(&extra).unwrap();
        assert_eq!(at, 4 << 20);
        assert_eq!(s.size(), (4 << 20) + 8192);
        let mut b = [0u8; 5];
        s.read_at(at + 100, &mut b).unwrap();
        assert_eq!(&b, b"plain");
        // The gap between the base's end and the extra device is no device's bytes.
        assert!(s.read_at(3 << 20 | 512, &mut b).is_err());
        assert!(s.read_at(at + 8190, &mut b).is_err());
        assert!(s.write_at(0, b"x").is_err());
    }
}

//! A window (offset + length) onto another device: how a partition is read as if it
//! were a disk of its own, so filesystem parsers never see partition offsets.

use super::{Access, BlockDevice, DeviceError};

pub struct Window<D: BlockDevice> {
    inner: D,
    offset: u64,
    len: u64,
}

impl<D: BlockDevice> Window<D> {
    /// Fails when the window does not lie inside `inner`.
    pub fn new(inner: D, offset: u64, len: u64) -> Result<Self, DeviceError> {
        inner.check_range(offset, len)?;
        Ok(Window { inner, offset, len })
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    fn translate(&self, offset: u64, len: usize) -> Result<u64, DeviceError> {
        self.check_range(offset, len as u64)?;
        Ok(self.offset + offset)
    }
}

impl<D: BlockDevice> BlockDevice for Window<D> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let abs = self.translate(offset, buf.len())?;
        self.inner.read_at(abs, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        let abs = self.translate(offset, buf.len())?;
        self.inner.write_at(abs, buf)
    }

    fn write_bulk_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        let abs = self.translate(offset, buf.len())?;
        self.inner.write_bulk_at(abs, buf)
    }

    fn read_direct_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let abs = self.translate(offset, buf.len())?;
        self.inner.read_direct_at(abs, buf)
    }

    fn size(&self) -> u64 {
        self.len
    }

    fn logical_sector_size(&self) -> u32 {
        self.inner.logical_sector_size()
    }

    fn physical_sector_size(&self) -> u32 {
        self.inner.physical_sector_size()
    }

    fn flush(&self) -> Result<(), DeviceError> {
        self.inner.flush()
    }

    fn start_writeback(&self) {
        self.inner.start_writeback()
    }

    fn access(&self) -> Access {
        self.inner.access()
    }

    fn describe(&self) -> String {
        format!("{}@{}+{}", self.inner.describe(), self.offset, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    #[test]
    fn window_translates_and_bounds() {
        let d = MemDevice::new(8192, 512);
        d.write_at(1024, b"hello").unwrap();
        let w = Window::new(&d, 1024, 2048).unwrap();
        let mut b = [0u8; 5];
        w.read_at(0, &mut b).unwrap();
        assert_eq!(&b, b"hello");
        assert!(w.read_at(2044, &mut b).is_err());
        assert!(Window::new(&d, 8000, 1024).is_err());
    }
}

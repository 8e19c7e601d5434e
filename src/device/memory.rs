//! An in-memory device, for tests and for staging small areas before they are written.

use super::{Access, BlockDevice, DeviceError};
use std::sync::RwLock;

pub struct MemDevice {
    data: RwLock<Vec<u8>>,
    sector_size: u32,
    access: Access,
}

impl MemDevice {
    /// A zero-filled device of `size` bytes.
    pub fn new(size: usize, sector_size: u32) -> Self {
        Self::from_vec(vec![0; size], sector_size)
    }

    pub fn from_vec(data: Vec<u8>, sector_size: u32) -> Self {
        MemDevice {
            data: RwLock::new(data),
            sector_size,
            access: Access::ReadWrite,
        }
    }

    /// The same bytes, but refusing writes like a backup source.
    pub fn read_only(self) -> Self {
        MemDevice {
            access: Access::ReadOnly,
            ..self
        }
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.data.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> Vec<u8> {
        self.data.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl BlockDevice for MemDevice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check_range(offset, buf.len() as u64)?;
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        let start = offset as usize;
        buf.copy_from_slice(&data[start..start + buf.len()]);
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        if self.access == Access::ReadOnly {
            return Err(DeviceError::ReadOnly {
                device: self.describe(),
                offset,
            });
        }
        self.check_range(offset, buf.len() as u64)?;
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        let start = offset as usize;
        data[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn size(&self) -> u64 {
        self.data.read().unwrap_or_else(|e| e.into_inner()).len() as u64
    }

    fn logical_sector_size(&self) -> u32 {
        self.sector_size
    }

    fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }

    fn access(&self) -> Access {
        self.access
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_and_bounds() {
        let d = MemDevice::new(4096, 512);
        d.write_at(510, &[0x55, 0xAA]).unwrap();
        let mut b = [0u8; 2];
        d.read_at(510, &mut b).unwrap();
        assert_eq!(b, [0x55, 0xAA]);
        assert!(d.read_at(4095, &mut b).is_err());
        assert!(d.read_at(u64::MAX, &mut b).is_err());
    }

    #[test]
    fn read_only_refuses() {
        let d = MemDevice::new(1024, 512).read_only();
        assert!(matches!(
            d.write_at(0, &[1]),
            Err(DeviceError::ReadOnly { .. })
        ));
    }
}

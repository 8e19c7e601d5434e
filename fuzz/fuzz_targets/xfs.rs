//! The XFS used-block map on arbitrary bytes: must return Ok or Err, never panic, hang
//! or allocate without bound.
//!
//! XFS allocation groups are at least 16 MiB, so a whole filesystem is too big an
//! input. The map reads only each AG's head (superblock copy, AGF, AGFL, free-space
//! tree), so the input is a series of 64 KiB windows, window k placed at 16 MiB × k of
//! a device that reads zeros elsewhere; seeds are made with `-d agsize=16m`.
#![no_main]

use ironclone::device::{Access, BlockDevice, DeviceError};
use ironclone::usedmap::map_xfs;
use libfuzzer_sys::fuzz_target;

const WINDOW: u64 = 64 << 10;
const STRIDE: u64 = 16 << 20;

struct Windows<'a>(&'a [u8]);

impl BlockDevice for Windows<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check_range(offset, buf.len() as u64)?;
        for (i, b) in buf.iter_mut().enumerate() {
            let at = offset + i as u64;
            let (k, inside) = (at / STRIDE, at % STRIDE);
            *b = if inside < WINDOW {
                let idx = k * WINDOW + inside;
                self.0.get(idx as usize).copied().unwrap_or(0)
            } else {
                0
            };
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
        (self.0.len() as u64).div_ceil(WINDOW).max(1) * STRIDE
    }
    fn logical_sector_size(&self) -> u32 {
        512
    }
    fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }
    fn access(&self) -> Access {
        Access::ReadOnly
    }
    fn describe(&self) -> String {
        "fuzz".into()
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = map_xfs(&Windows(data));
});

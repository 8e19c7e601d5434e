//! A device whose reads and writes fail once a cancel flag is set: the engines stop on
//! an error the way they stop on a bad disk, through their usual error paths (a backup
//! stopped before its manifest is written publishes no image and drops its lock, a
//! LUKS volume it opened is closed). The TUI's Cancel and the CLI's Ctrl-C set the flag.
//! The error is not a media error (`DeviceError::is_media_error`), so rescue reading
//! does not retry it or record the rest of the source as unreadable.

use super::{Access, BlockDevice, DeviceError};
use std::sync::atomic::{AtomicBool, Ordering};

/// Wraps a device so a cancel makes the next read or write fail: the engines stop
/// on an I/O error the way they stop on a bad disk, and a backup stopped before its
/// manifest is written leaves no image.
pub struct Cancellable<'a> {
    pub inner: &'a dyn BlockDevice,
    pub cancel: &'a AtomicBool,
}

impl Cancellable<'_> {
    fn check(&self, offset: u64) -> Result<(), DeviceError> {
        if self.cancel.load(Ordering::SeqCst) {
            Err(DeviceError::Query {
                device: self.inner.describe(),
                what: format!("cancelled by the user at byte {offset}"),
            })
        } else {
            Ok(())
        }
    }
}

impl BlockDevice for Cancellable<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check(offset)?;
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.check(offset)?;
        self.inner.write_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.inner.size()
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
    fn write_bulk_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.check(offset)?;
        self.inner.write_bulk_at(offset, buf)
    }
    fn read_direct_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check(offset)?;
        self.inner.read_direct_at(offset, buf)
    }
    fn access(&self) -> Access {
        self.inner.access()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

//! The one device abstraction every layer reads and writes through.
//!
//! Parsers take `&dyn BlockDevice` and never open files, so the same code runs on a
//! real disk, a disk image, a partition window or a byte buffer in a test. Access is
//! positional and `&self`, so a backup can read from several threads without a
//! seek position to fight over. A source is opened read-only by construction: the
//! kernel file descriptor is `O_RDONLY` and `write_at` refuses before any syscall.

mod block;
mod cancellable;
mod direct;
mod error;
mod file;
mod mapped;
mod memory;
mod patched;
mod redirected;
mod stacked;
mod window;

pub use block::open_path;
pub use cancellable::Cancellable;
pub use error::DeviceError;
pub use file::{start_file_writeback, FileDevice, DIRECT_ALIGN};
pub use mapped::{Layout, Mapped, Piece};
pub use memory::MemDevice;
pub use patched::Patched;
pub use redirected::{Redirect, Redirected};
pub use stacked::Stacked;
pub use window::Window;

use std::sync::Arc;

/// How a device is opened. Sources of a backup are always `ReadOnly`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// A positional, thread-safe block device. Offsets and lengths are in bytes.
pub trait BlockDevice: Send + Sync {
    /// Fills `buf` from `offset`. Reading past the end is an error, never a short read.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError>;
    /// Writes all of `buf` at `offset`. Read-only devices refuse without touching the disk.
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError>;
    /// Size in bytes.
    fn size(&self) -> u64;
    /// The logical sector size: the unit of LBAs in partition tables.
    fn logical_sector_size(&self) -> u32;
    fn physical_sector_size(&self) -> u32 {
        self.logical_sector_size()
    }
    /// Makes written data durable.
    fn flush(&self) -> Result<(), DeviceError>;
    /// Starts writing dirty data out without waiting for it, so that writing to the
    /// disk overlaps the work that produces the data and the final `flush` has little
    /// left (no minutes of "Syncing..." at the end of a restore). A hint: errors show
    /// up in `flush`.
    fn start_writeback(&self) {}
    /// `write_at` for bulk data (a restore's chunks): where the device allows it and
    /// `buf`, `offset` and the length are 4 KiB aligned, the write bypasses the page
    /// cache (O_DIRECT). That saves copying every byte into the cache and makes the
    /// disk write while the data is produced, instead of in a long final sync.
    fn write_bulk_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.write_at(offset, buf)
    }
    /// `read_at` that bypasses the page cache where the device allows it (O_DIRECT),
    /// for re-reading a failing area sector by sector: a cached read asks the disk
    /// for the whole page (4 KiB) around a 512-byte sector, so one bad sector fails
    /// the reads of its seven good neighbours. Any `offset` and length; the same bytes
    /// as `read_at`. Devices without a cache to bypass just read.
    fn read_direct_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.read_at(offset, buf)
    }
    fn access(&self) -> Access;
    /// What this device is, for error messages ("/dev/sda", "disk.img", "memory").
    fn describe(&self) -> String;

    /// Reads `len` bytes into a new buffer. Refuses lengths over `MAX_METADATA_READ`
    /// so that an absurd size read from disk cannot become a huge allocation.
    fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>, DeviceError> {
        if len > MAX_METADATA_READ {
            return Err(DeviceError::TooLarge {
                device: self.describe(),
                offset,
                len: len as u64,
            });
        }
        let mut buf = vec![0u8; len];
        self.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// Checks that `[offset, offset+len)` lies inside the device.
    fn check_range(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(DeviceError::OutOfRange {
                device: self.describe(),
                offset,
                len,
                size: self.size(),
            }),
        }
    }
}

/// The largest single metadata read a parser may ask for (256 MiB).
pub const MAX_METADATA_READ: usize = 256 << 20;

/// A shared or borrowed device is the device: every method forwards, so parsers can
/// take `&dyn BlockDevice` and jobs can hold an `Arc` to the same one.
macro_rules! forward_block_device {
    ($($ty:ty),*) => {$(
        impl<T: BlockDevice + ?Sized> BlockDevice for $ty {
            fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
                (**self).read_at(offset, buf)
            }
            fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
                (**self).write_at(offset, buf)
            }
            fn size(&self) -> u64 {
                (**self).size()
            }
            fn logical_sector_size(&self) -> u32 {
                (**self).logical_sector_size()
            }
            fn physical_sector_size(&self) -> u32 {
                (**self).physical_sector_size()
            }
            fn flush(&self) -> Result<(), DeviceError> {
                (**self).flush()
            }
            fn start_writeback(&self) {
                (**self).start_writeback()
            }
            fn write_bulk_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
                (**self).write_bulk_at(offset, buf)
            }
            fn read_direct_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
                (**self).read_direct_at(offset, buf)
            }
            fn access(&self) -> Access {
                (**self).access()
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
        }
    )*};
}

forward_block_device!(Arc<T>, &T);

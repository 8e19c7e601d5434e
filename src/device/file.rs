//! A device backed by a file descriptor: a regular file holding a disk image, or a
//! real block device node. The two differ only in how size and sector size are
//! learned (metadata vs. ioctl), which `block.rs` decides at open time.

use super::{Access, BlockDevice, DeviceError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub struct FileDevice {
    file: File,
    path: PathBuf,
    size: u64,
    logical: u32,
    physical: u32,
    access: Access,
    is_block: bool,
}

impl FileDevice {
    pub(super) fn from_parts(
        file: File,
        path: &Path,
        size: u64,
        logical: u32,
        physical: u32,
        access: Access,
        is_block: bool,
    ) -> Self {
        FileDevice {
            file,
            path: path.to_path_buf(),
            size,
            logical,
            physical,
            access,
            is_block,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True for a block device node, false for a regular image file.
    pub fn is_block_device(&self) -> bool {
        self.is_block
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Sets the logical sector size of an image file (a file has none of its own;
    /// 512 is assumed unless told, e.g. for an image of a 4Kn disk).
    pub fn with_sector_size(mut self, logical: u32) -> Self {
        if !self.is_block {
            self.logical = logical;
            self.physical = self.physical.max(logical);
        }
        self
    }

    fn io_err(&self, offset: u64, len: usize, source: std::io::Error) -> DeviceError {
        DeviceError::Io {
            device: self.describe(),
            offset,
            len: len as u64,
            source,
        }
    }
}

impl BlockDevice for FileDevice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check_range(offset, buf.len() as u64)?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| self.io_err(offset, buf.len(), e))
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        if self.access == Access::ReadOnly {
            return Err(DeviceError::ReadOnly {
                device: self.describe(),
                offset,
            });
        }
        self.check_range(offset, buf.len() as u64)?;
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| self.io_err(offset, buf.len(), e))
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn logical_sector_size(&self) -> u32 {
        self.logical
    }

    fn physical_sector_size(&self) -> u32 {
        self.physical
    }

    fn flush(&self) -> Result<(), DeviceError> {
        if self.access == Access::ReadOnly {
            return Ok(());
        }
        self.file.sync_all().map_err(|e| self.io_err(0, 0, e))
    }

    fn access(&self) -> Access {
        self.access
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

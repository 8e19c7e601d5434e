//! A device backed by a file descriptor: a regular file holding a disk image, or a
//! real block device node. The two differ only in how size and sector size are
//! learned (metadata vs. ioctl), which `block.rs` decides at open time.

use super::{direct, Access, BlockDevice, DeviceError};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Starts writing a file's dirty pages out without waiting, so a later fsync has
/// little left. A hint: its result is not needed, fsync reports the write errors.
pub fn start_file_writeback(f: &File) {
    // SAFETY: sync_file_range only reads its integer arguments; `f` keeps the
    // descriptor open for the whole call. Offset 0 with length 0 means the whole file.
    unsafe {
        nix::libc::sync_file_range(f.as_raw_fd(), 0, 0, nix::libc::SYNC_FILE_RANGE_WRITE);
    }
}

pub struct FileDevice {
    file: File,
    path: PathBuf,
    size: u64,
    logical: u32,
    physical: u32,
    access: Access,
    is_block: bool,
    /// The same file reopened with O_DIRECT for `write_bulk_at`, opened on first use;
    /// `None` where the file system refuses O_DIRECT (tmpfs, some FUSE shares).
    direct: OnceLock<Option<File>>,
    /// Set when a direct write was refused: later writes go through the cache.
    direct_refused: AtomicBool,
    /// The same file reopened read-only with O_DIRECT for `read_direct_at`, opened on
    /// first use (a source is never reopened writable); `None` where refused.
    direct_read: OnceLock<Option<File>>,
    /// Set when a direct read was refused (EINVAL): later ones read through the cache.
    direct_read_refused: AtomicBool,
}

/// Memory, offset and length alignment for O_DIRECT: a page, which also satisfies
/// every logical sector size (512 or 4096) and ext4/NTFS-hosted image files.
pub const DIRECT_ALIGN: usize = 4096;

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
            direct: OnceLock::new(),
            direct_refused: AtomicBool::new(false),
            direct_read: OnceLock::new(),
            direct_read_refused: AtomicBool::new(false),
        }
    }

    /// True once bulk writes have gone through O_DIRECT (and were not refused).
    pub fn writes_direct(&self) -> bool {
        matches!(self.direct.get(), Some(Some(_))) && !self.direct_refused.load(Ordering::Relaxed)
    }

    /// True once a `read_direct_at` has gone through O_DIRECT (and was not refused).
    pub fn reads_direct(&self) -> bool {
        matches!(self.direct_read.get(), Some(Some(_)))
            && !self.direct_read_refused.load(Ordering::Relaxed)
    }

    /// Reopens this very file (through /proc/self/fd, so never another device that
    /// took its name) with O_DIRECT, for writing or (`write == false`) read-only.
    fn reopen_direct(&self, write: bool) -> Option<File> {
        let fd_path = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(nix::libc::O_DIRECT)
            .open(fd_path)
            .ok()
    }

    fn direct_file(&self) -> Option<&File> {
        self.direct
            .get_or_init(|| self.reopen_direct(true))
            .as_ref()
    }

    fn direct_reader(&self) -> Option<&File> {
        self.direct_read
            .get_or_init(|| self.reopen_direct(false))
            .as_ref()
    }

    /// Offset and length unit of direct reads: the logical sector of a block device
    /// (so one bad sector costs only itself); a page for an image file, which every
    /// file system that takes O_DIRECT accepts.
    fn direct_read_unit(&self) -> u64 {
        if self.is_block {
            u64::from(self.logical.max(512))
        } else {
            DIRECT_ALIGN as u64
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

    fn write_bulk_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        let a = DIRECT_ALIGN as u64;
        let aligned = buf.as_ptr().align_offset(DIRECT_ALIGN) == 0
            && offset % a == 0
            && buf.len() as u64 % a == 0;
        if self.access == Access::ReadOnly
            || !aligned
            || self.direct_refused.load(Ordering::Relaxed)
        {
            return self.write_at(offset, buf);
        }
        self.check_range(offset, buf.len() as u64)?;
        let Some(direct) = self.direct_file() else {
            return self.write_at(offset, buf);
        };
        match direct.write_all_at(buf, offset) {
            Ok(()) => Ok(()),
            // EINVAL: this file system or device wants another alignment after all.
            Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => {
                self.direct_refused.store(true, Ordering::Relaxed);
                self.write_at(offset, buf)
            }
            Err(e) => Err(self.io_err(offset, buf.len(), e)),
        }
    }

    fn read_direct_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check_range(offset, buf.len() as u64)?;
        if buf.is_empty() || self.direct_read_refused.load(Ordering::Relaxed) {
            return self.read_at(offset, buf);
        }
        let Some(direct) = self.direct_reader() else {
            return self.read_at(offset, buf);
        };
        match direct::read(direct, self.direct_read_unit(), offset, buf) {
            Ok(()) => Ok(()),
            // EINVAL: this file system or device wants another alignment after all.
            Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => {
                self.direct_read_refused.store(true, Ordering::Relaxed);
                self.read_at(offset, buf)
            }
            Err(e) => Err(self.io_err(offset, buf.len(), e)),
        }
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

    fn start_writeback(&self) {
        if self.access == Access::ReadWrite {
            start_file_writeback(&self.file);
        }
    }

    fn access(&self) -> Access {
        self.access
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

//! Setting a source block device read-only in the kernel for the time of a backup.
//!
//! Opening `O_RDONLY` protects against our own writes; `BLKROSET` also stops anything
//! else on the live system (an automounter, a journal replay by a stray mount) from
//! writing to a disk that is being rescued. The previous state is put back when the
//! guard drops, so the user's disk is left as it was found.

use std::fs::File;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use thiserror::Error;

nix::ioctl_write_ptr_bad!(
    blk_roset,
    nix::request_code_none!(0x12, 93),
    std::os::raw::c_int
);
nix::ioctl_read_bad!(
    blk_roget,
    nix::request_code_none!(0x12, 94),
    std::os::raw::c_int
);

#[derive(Debug, Error)]
pub enum ReadOnlyError {
    #[error("{device}: {what} failed: {source}")]
    Ioctl {
        device: String,
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("{device}: cannot inspect: {source}")]
    Stat {
        device: String,
        #[source]
        source: std::io::Error,
    },
}

/// What `set_read_only` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOnlyState {
    /// Not a block device (an image file): nothing to do.
    NotBlockDevice,
    /// The device already was read-only; left so.
    AlreadyReadOnly,
    /// We set it read-only and will clear it on drop.
    Set,
}

/// Restores the device's previous read-only flag when dropped.
pub struct ReadOnlyGuard {
    file: Option<File>,
    device: String,
    state: ReadOnlyState,
}

impl ReadOnlyGuard {
    pub fn state(&self) -> ReadOnlyState {
        self.state
    }

    /// Restores now, reporting a failure instead of ignoring it as `drop` must.
    pub fn restore(mut self) -> Result<(), ReadOnlyError> {
        self.restore_inner()
    }

    fn restore_inner(&mut self) -> Result<(), ReadOnlyError> {
        if let (Some(file), ReadOnlyState::Set) = (self.file.take(), self.state) {
            let zero: std::os::raw::c_int = 0;
            // SAFETY: BLKROSET reads one int from the pointer, which is valid.
            unsafe { blk_roset(file.as_raw_fd(), &zero) }.map_err(|source| {
                ReadOnlyError::Ioctl {
                    device: self.device.clone(),
                    what: "BLKROSET 0 (restore)",
                    source,
                }
            })?;
        }
        Ok(())
    }
}

impl Drop for ReadOnlyGuard {
    fn drop(&mut self) {
        let _ = self.restore_inner();
    }
}

/// Reads the kernel's read-only flag of a block device.
pub fn is_read_only(file: &File, path: &Path) -> Result<bool, ReadOnlyError> {
    let mut ro: std::os::raw::c_int = 0;
    // SAFETY: BLKROGET writes one int into our local.
    unsafe { blk_roget(file.as_raw_fd(), &mut ro) }.map_err(|source| ReadOnlyError::Ioctl {
        device: path.display().to_string(),
        what: "BLKROGET",
        source,
    })?;
    Ok(ro != 0)
}

/// Sets the block device behind `file` read-only (needs CAP_SYS_ADMIN) until the
/// guard drops. Regular files are left alone. An error means the flag could not be
/// set; the caller should warn and go on, since the descriptor is `O_RDONLY` anyway.
pub fn set_read_only(file: &File, path: &Path) -> Result<ReadOnlyGuard, ReadOnlyError> {
    let device = path.display().to_string();
    let meta = file.metadata().map_err(|source| ReadOnlyError::Stat {
        device: device.clone(),
        source,
    })?;
    if !meta.file_type().is_block_device() {
        return Ok(ReadOnlyGuard {
            file: None,
            device,
            state: ReadOnlyState::NotBlockDevice,
        });
    }
    if is_read_only(file, path)? {
        return Ok(ReadOnlyGuard {
            file: None,
            device,
            state: ReadOnlyState::AlreadyReadOnly,
        });
    }
    // Our own handle, so the guard outlives the caller's borrow.
    let own = file.try_clone().map_err(|source| ReadOnlyError::Stat {
        device: device.clone(),
        source,
    })?;
    let one: std::os::raw::c_int = 1;
    // SAFETY: BLKROSET reads one int from the pointer, which is valid.
    unsafe { blk_roset(own.as_raw_fd(), &one) }.map_err(|source| ReadOnlyError::Ioctl {
        device: device.clone(),
        what: "BLKROSET 1",
        source,
    })?;
    Ok(ReadOnlyGuard {
        file: Some(own),
        device,
        state: ReadOnlyState::Set,
    })
}

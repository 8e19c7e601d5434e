//! Opening a path as a device: regular files are disk images, block device nodes are
//! asked for their size and sector sizes with the kernel's ioctls.

use super::{Access, DeviceError, FileDevice};
use std::fs::OpenOptions;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

nix::ioctl_read!(blk_getsize64, 0x12, 114, u64);
nix::ioctl_read_bad!(blk_sszget, 0x1268, libc_int);
nix::ioctl_read_bad!(blk_pbszget, 0x127B, libc_uint);

#[allow(non_camel_case_types)]
type libc_int = std::os::raw::c_int;
#[allow(non_camel_case_types)]
type libc_uint = std::os::raw::c_uint;

/// Opens a disk image file or a block device. `Access::ReadOnly` opens the descriptor
/// `O_RDONLY`, so even a bug above cannot write to a backup source.
pub fn open_path(path: &Path, access: Access) -> Result<FileDevice, DeviceError> {
    let describe = || path.display().to_string();
    let file = OpenOptions::new()
        .read(true)
        .write(access == Access::ReadWrite)
        .open(path)
        .map_err(|source| DeviceError::Open {
            device: describe(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| DeviceError::Open {
        device: describe(),
        source,
    })?;
    if meta.file_type().is_block_device() {
        let fd = file.as_raw_fd();
        let mut size: u64 = 0;
        let mut logical: libc_int = 0;
        let mut physical: libc_uint = 0;
        // SAFETY: each ioctl writes one integer of the declared type into our local.
        unsafe {
            blk_getsize64(fd, &mut size).map_err(|e| query(path, "BLKGETSIZE64", e))?;
            blk_sszget(fd, &mut logical).map_err(|e| query(path, "BLKSSZGET", e))?;
            blk_pbszget(fd, &mut physical).map_err(|e| query(path, "BLKPBSZGET", e))?;
        }
        let logical = u32::try_from(logical).unwrap_or(512).max(512);
        let physical = physical.max(logical);
        Ok(FileDevice::from_parts(
            file, path, size, logical, physical, access, true,
        ))
    } else if meta.file_type().is_file() {
        Ok(FileDevice::from_parts(
            file,
            path,
            meta.len(),
            512,
            512,
            access,
            false,
        ))
    } else {
        Err(DeviceError::Query {
            device: describe(),
            what: "neither a regular file nor a block device".into(),
        })
    }
}

fn query(path: &Path, what: &str, e: nix::Error) -> DeviceError {
    DeviceError::Query {
        device: path.display().to_string(),
        what: format!("{what} failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::BlockDevice;

    #[test]
    fn file_read_only_refuses_write() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.as_file().set_len(4096).unwrap();
        let d = open_path(tmp.path(), Access::ReadOnly).unwrap();
        assert_eq!(d.size(), 4096);
        assert!(matches!(
            d.write_at(0, &[1]),
            Err(DeviceError::ReadOnly { .. })
        ));
        let rw = open_path(tmp.path(), Access::ReadWrite).unwrap();
        rw.write_at(100, b"x").unwrap();
        let mut b = [0u8; 1];
        d.read_at(100, &mut b).unwrap();
        assert_eq!(&b, b"x");
    }
}

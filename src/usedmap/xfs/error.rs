//! Typed errors for the XFS map: each names the device and, through the decode error,
//! the structure, AG and block that was wrong, so the raw fallback can be explained.

use crate::device::DeviceError;
use crate::ondisk::xfs::XfsDecodeError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum XfsError {
    #[error("{device}: reading {what} at byte {offset}: {source}")]
    Read {
        device: String,
        what: String,
        offset: u64,
        #[source]
        source: DeviceError,
    },
    #[error("{device}: {source}")]
    Decode {
        device: String,
        #[source]
        source: XfsDecodeError,
    },
    #[error("{device}: XFS AG {ag}: {what}")]
    Tree {
        device: String,
        ag: u32,
        what: String,
    },
    #[error(
        "{device}: the XFS log is not clean: {why}; its free-space trees may call blocks free \
         that the log replay will use, so it is imaged whole (mount and unmount it once, \
         or run xfs_repair, to image it by used blocks)"
    )]
    DirtyLog { device: String, why: String },
    #[error("{device}: filesystem is {fs_bytes} bytes but the device holds only {device_bytes}")]
    Truncated {
        device: String,
        fs_bytes: u64,
        device_bytes: u64,
    },
}

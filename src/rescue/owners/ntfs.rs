//! NTFS: which MFT records own unreadable clusters.
use super::{DamageReport, OwnerError};
use crate::device::BlockDevice;
use crate::rescue::BadRange;

pub fn looks_like_ntfs(dev: &dyn BlockDevice) -> bool {
    dev.read_vec(3, 8).is_ok_and(|b| b == b"NTFS    ")
}

pub fn ntfs_owners(_dev: &dyn BlockDevice, _bad: &[BadRange]) -> Result<DamageReport, OwnerError> {
    Ok(DamageReport::default())
}

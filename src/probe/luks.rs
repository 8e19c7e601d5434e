//! LUKS1/LUKS2 probe. An encrypted container cannot be mapped by used blocks without
//! its key, so it must be recognised (and named, not shown as "unknown data"). The
//! header is decoded by `ondisk::luks`; a header with the magic that fails to decode
//! is still LUKS (imaged raw), only without UUID or label.

use super::util::read;
use super::{FsInfo, FsKind};
use crate::device::BlockDevice;
use crate::ondisk::luks::{read_header, version};

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let head = read(dev, 0, 8)?;
    if !matches!(version(&head), Some(1 | 2)) {
        return None;
    }
    let (label, uuid) = match read_header(dev) {
        Ok(h) => (h.label, Some(h.uuid)),
        Err(_) => (None, None),
    };
    Some(FsInfo {
        kind: FsKind::Luks,
        label,
        uuid,
    })
}

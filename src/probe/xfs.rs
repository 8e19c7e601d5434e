//! XFS probe (big-endian superblock at byte 0): names it with its label and UUID.
//! The full superblock checks live in `ondisk::xfs`, used by the used-block map.

use super::util::{has, is_pow2_in, label_from_bytes, read, uuid_string};
use super::{FsInfo, FsKind};
use crate::bytes::{array, be16, be32};
use crate::device::BlockDevice;

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let sb = read(dev, 0, 512)?;
    if !has(&sb, 0, b"XFSB") {
        return None;
    }
    let sb_blocksize = u64::from(be32(&sb, 4)?);
    let sb_sectsize = u64::from(be16(&sb, 102)?);
    let sb_inodesize = u64::from(be16(&sb, 104)?);
    if !is_pow2_in(sb_blocksize, 512, 65536)
        || !is_pow2_in(sb_sectsize, 512, 32768)
        || !is_pow2_in(sb_inodesize, 256, 2048)
    {
        return None;
    }
    Some(FsInfo {
        kind: FsKind::Xfs,
        label: label_from_bytes(sb.get(108..120)?),
        uuid: uuid_string(array::<16>(&sb, 32)?),
    })
}

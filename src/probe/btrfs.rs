//! btrfs probe. ironclone images btrfs raw (no used-block map yet), but it must
//! still be named with its label and fsid so a person recognises the partition.

use super::util::{has, is_pow2_in, label_from_bytes, read, uuid_string};
use super::{FsInfo, FsKind};
use crate::bytes::{array, le32, le64};
use crate::device::BlockDevice;

const SUPER_INFO_OFFSET: u64 = 0x10000;

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let sb = read(dev, SUPER_INFO_OFFSET, 4096)?;
    if !has(&sb, 0x40, b"_BHRfS_M") {
        return None;
    }
    // The primary superblock records its own byte address.
    if le64(&sb, 0x30)? != SUPER_INFO_OFFSET {
        return None;
    }
    let sectorsize = u64::from(le32(&sb, 0x90)?);
    let nodesize = u64::from(le32(&sb, 0x94)?);
    if !is_pow2_in(sectorsize, 512, 65536) || !is_pow2_in(nodesize, 512, 65536) {
        return None;
    }
    Some(FsInfo {
        kind: FsKind::Btrfs,
        label: label_from_bytes(sb.get(0x12B..0x12B + 256)?),
        uuid: uuid_string(array::<16>(&sb, 0x20)?),
    })
}

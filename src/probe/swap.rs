//! Linux swap probe. Swap holds nothing worth imaging, so recognising it lets a
//! backup store only its label and UUID and recreate it with mkswap on restore.
//! The signature sits at the end of the first page, whose size is not fixed.

use super::util::{label_from_bytes, read, uuid_string};
use super::{FsInfo, FsKind};
use crate::bytes::{array, le32};
use crate::device::BlockDevice;

const PAGE_SIZES: [u64; 4] = [4096, 8192, 16384, 65536];

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    for page in PAGE_SIZES {
        let Some(tail) = read(dev, page - 10, 10) else {
            continue;
        };
        if tail != b"SWAPSPACE2" && tail != b"SWAP-SPACE" {
            continue;
        }
        if tail == b"SWAP-SPACE" {
            // The old v0 format has no label or UUID.
            return Some(FsInfo {
                kind: FsKind::Swap,
                label: None,
                uuid: None,
            });
        }
        // union swap_header.info starts after 1024 boot bytes.
        let info = read(dev, 1024, 44)?;
        let version = le32(&info, 0)?;
        if version != 1 {
            return None;
        }
        return Some(FsInfo {
            kind: FsKind::Swap,
            label: label_from_bytes(&array::<16>(&info, 28)?),
            uuid: uuid_string(array::<16>(&info, 12)?),
        });
    }
    None
}

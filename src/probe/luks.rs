//! LUKS1/LUKS2 probe. An encrypted container cannot be mapped by used blocks, so it
//! must be recognised to be imaged raw (and named, not shown as "unknown data").
//! Both versions keep the UUID as a text field at byte 168; LUKS2 adds a label.

use super::util::{has, label_from_bytes, read};
use super::{FsInfo, FsKind};
use crate::bytes::be16;
use crate::device::BlockDevice;

const LUKS_MAGIC: &[u8] = b"LUKS\xba\xbe";

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let hdr = read(dev, 0, 512)?;
    if !has(&hdr, 0, LUKS_MAGIC) {
        return None;
    }
    let version = be16(&hdr, 6)?;
    let label = match version {
        1 => None,
        2 => label_from_bytes(hdr.get(24..72)?),
        _ => return None,
    };
    let uuid = label_from_bytes(hdr.get(168..208)?)
        .filter(|u| u.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'));
    Some(FsInfo {
        kind: FsKind::Luks,
        label,
        uuid,
    })
}

//! LVM2 physical volume probe. A PV holds logical volumes, not files; recognising
//! it stops ironclone from mistaking it for garbage (it is imaged raw). The label
//! may sit in any of the first four sectors; its PV UUID is printed the way LVM
//! and blkid print it (6-4-4-4-4-4-6).

use super::util::{has, read};
use super::{FsInfo, FsKind};
use crate::bytes::{le32, le64};
use crate::device::BlockDevice;

const LABEL_SCAN_SECTORS: u64 = 4;

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let area = read(dev, 0, (LABEL_SCAN_SECTORS * 512) as usize)?;
    for (i, sector) in area.chunks_exact(512).enumerate() {
        if !has(sector, 0, b"LABELONE") || !has(sector, 24, b"LVM2 001") {
            continue;
        }
        // label_header.sector_xl must name the sector it sits in.
        if le64(sector, 8)? != i as u64 {
            continue;
        }
        let offset_xl = usize::try_from(le32(sector, 20)?).ok()?;
        let raw = sector.get(offset_xl..offset_xl.checked_add(32)?)?;
        if !raw.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        let s = std::str::from_utf8(raw).ok()?;
        let mut uuid = String::with_capacity(38);
        let mut pos = 0;
        for (n, w) in [6usize, 4, 4, 4, 4, 4, 6].iter().enumerate() {
            if n > 0 {
                uuid.push('-');
            }
            uuid.push_str(s.get(pos..pos + w)?);
            pos += w;
        }
        return Some(FsInfo {
            kind: FsKind::Lvm2,
            label: None,
            uuid: Some(uuid),
        });
    }
    None
}

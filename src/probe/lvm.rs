//! LVM2 physical volume probe. A PV holds logical volumes, not files; recognising it
//! sends it to usedmap/lvm, which images the used blocks inside its LVs. Lenient on
//! purpose (no CRC check, unlike `ondisk::lvm::PvLabel`): a damaged label is still
//! named. The label may sit in any of the first four sectors; its PV UUID is printed the
//! way LVM and blkid print it (6-4-4-4-4-4-6).

use super::util::{has, read};
use super::{FsInfo, FsKind};
use crate::bytes::{le32, le64};
use crate::device::BlockDevice;
use crate::ondisk::lvm::label::format_uuid;

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
        let uuid = format_uuid(raw)?;
        return Some(FsInfo {
            kind: FsKind::Lvm2,
            label: None,
            uuid: Some(uuid),
        });
    }
    None
}

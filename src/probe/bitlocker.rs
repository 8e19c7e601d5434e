//! BitLocker probe. A BitLocker volume keeps an NTFS/FAT-like boot sector with the
//! OEM id `-FVE-FS-`; it must be recognised before NTFS and FAT so that an
//! encrypted volume is never handed to a filesystem parser (it is imaged raw).
//! Windows 7 and later volumes also point (at byte 176) to an FVE metadata block
//! carrying the same signature, which we check so a stray OEM id is not enough.

use super::util::{has, is_pow2_in, read};
use super::{FsInfo, FsKind};
use crate::bytes::{le16, le64};
use crate::device::BlockDevice;

const VISTA_JUMP: [u8; 3] = [0xEB, 0x52, 0x90];
const WIN7_JUMP: [u8; 3] = [0xEB, 0x58, 0x90];
const FVE_SIGNATURE: &[u8] = b"-FVE-FS-";

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let bs = read(dev, 0, 512)?;
    if !has(&bs, 3, FVE_SIGNATURE) || !has(&bs, 510, &[0x55, 0xAA]) {
        return None;
    }
    if !is_pow2_in(u64::from(le16(&bs, 0x0B)?), 512, 4096) {
        return None;
    }
    if has(&bs, 0, &WIN7_JUMP) {
        let fve_metadata_offset = le64(&bs, 176)?;
        let block = read(dev, fve_metadata_offset, 8)?;
        if block != FVE_SIGNATURE {
            return None;
        }
    } else if !has(&bs, 0, &VISTA_JUMP) {
        return None;
    }
    Some(FsInfo {
        kind: FsKind::Bitlocker,
        label: None,
        uuid: None,
    })
}

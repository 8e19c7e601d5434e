//! FAT12/16/32 probe. The variant decides how the FAT is read when mapping used
//! clusters, so it follows the spec: FAT32 has a zero 16-bit FAT size and its own
//! extended BPB; otherwise the cluster count picks FAT12 (< 4085) or FAT16. The BPB
//! is checked field by field because "0xEB jump + 0x55AA" alone matches many MBRs.
//! The label is taken from the root directory's volume-id entry first (Windows
//! renames a volume only there) and from the BPB otherwise, as blkid does.

use super::util::{is_pow2_in, label_from_bytes, read, serial32};
use super::{FsInfo, FsKind};
use crate::bytes::{array, le16, le32, u8_at};
use crate::device::BlockDevice;

const EXTENDED_BOOT_SIGNATURE: u8 = 0x29;
const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_LONG_NAME: u8 = 0x0F;
const DIR_ENTRY_FREE: u8 = 0xE5;
/// The root directory is scanned no further than this for a label.
const MAX_ROOT_SCAN: u64 = 64 << 10;

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    from_boot_sector(dev, &read(dev, 0, 512)?)
}

/// The same, from the FAT32 backup boot sector (sector 6).
pub(crate) fn probe_backup(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let (_, raw, _) = crate::usedmap::fat::backup::find(dev)?;
    from_boot_sector(dev, &raw)
}

fn from_boot_sector(dev: &dyn BlockDevice, bs: &[u8]) -> Option<FsInfo> {
    let jump = u8_at(bs, 0)?;
    if jump != 0xEB && jump != 0xE9 {
        return None;
    }
    let byts_per_sec = u64::from(le16(bs, 11)?);
    let sec_per_clus = u64::from(u8_at(bs, 13)?);
    let rsvd_sec_cnt = u64::from(le16(bs, 14)?);
    let num_fats = u64::from(u8_at(bs, 16)?);
    let root_ent_cnt = u64::from(le16(bs, 17)?);
    let tot_sec16 = u64::from(le16(bs, 19)?);
    let media = u8_at(bs, 21)?;
    let fat_sz16 = u64::from(le16(bs, 22)?);
    let tot_sec32 = u64::from(le32(bs, 32)?);
    if !is_pow2_in(byts_per_sec, 512, 4096)
        || !is_pow2_in(sec_per_clus, 1, 128)
        || rsvd_sec_cnt == 0
        || !(1..=4).contains(&num_fats)
        || !(media == 0xF0 || media >= 0xF8)
    {
        return None;
    }
    let fat32 = fat_sz16 == 0;
    let fat_sz = if fat32 {
        u64::from(le32(bs, 36)?)
    } else {
        fat_sz16
    };
    let tot_sec = if tot_sec16 != 0 { tot_sec16 } else { tot_sec32 };
    if fat_sz == 0 || tot_sec == 0 || (fat32 && root_ent_cnt != 0) {
        return None;
    }
    let root_dir_sectors = root_ent_cnt
        .checked_mul(32)?
        .checked_add(byts_per_sec - 1)?
        / byts_per_sec;
    let meta = rsvd_sec_cnt
        .checked_add(num_fats.checked_mul(fat_sz)?)?
        .checked_add(root_dir_sectors)?;
    let data_sectors = tot_sec.checked_sub(meta)?;
    let clusters = data_sectors / sec_per_clus;
    let kind = if fat32 {
        FsKind::Fat32
    } else if clusters < 4085 {
        FsKind::Fat12
    } else {
        FsKind::Fat16
    };
    // The extended BPB sits after the FAT32-only fields on FAT32.
    let ebpb = if fat32 { 64 } else { 36 };
    let (label, uuid) = if u8_at(bs, ebpb + 2)? == EXTENDED_BOOT_SIGNATURE {
        let vol_id = le32(bs, ebpb + 3)?;
        let lab = label_from_bytes(&array::<11>(bs, ebpb + 7)?).filter(|l| l != "NO NAME");
        (lab, Some(serial32(vol_id)))
    } else {
        (None, None)
    };
    let root = if fat32 {
        let root_clus = u64::from(le32(bs, 44)?);
        root_clus
            .checked_sub(2)
            .and_then(|c| c.checked_mul(sec_per_clus))
            .and_then(|s| s.checked_add(meta))
            .and_then(|s| s.checked_mul(byts_per_sec))
            .map(|off| (off, sec_per_clus.saturating_mul(byts_per_sec)))
    } else {
        rsvd_sec_cnt
            .checked_add(num_fats.checked_mul(fat_sz)?)?
            .checked_mul(byts_per_sec)
            .map(|off| (off, root_ent_cnt.saturating_mul(32)))
    };
    let label = root
        .and_then(|(off, len)| root_dir_label(dev, off, len))
        .or(label);
    Some(FsInfo { kind, label, uuid })
}

/// The volume-id entry of the root directory, if there is one before the end marker.
fn root_dir_label(dev: &dyn BlockDevice, offset: u64, len: u64) -> Option<String> {
    let len = usize::try_from(len.min(MAX_ROOT_SCAN)).ok()?;
    let dir = read(dev, offset, len)?;
    for entry in dir.chunks_exact(32) {
        let first = entry[0];
        if first == 0 {
            return None;
        }
        let attr = entry[11];
        if first != DIR_ENTRY_FREE && attr != ATTR_LONG_NAME && attr & ATTR_VOLUME_ID != 0 {
            return label_from_bytes(&entry[..11]).filter(|l| l != "NO NAME");
        }
    }
    None
}

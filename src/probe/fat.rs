//! FAT12/16/32 probe. The variant decides how the FAT is read when mapping used
//! clusters, so it follows the spec: FAT32 has a zero 16-bit FAT size and its own
//! extended BPB; otherwise the cluster count picks FAT12 (< 4085) or FAT16. The BPB
//! is checked field by field because "0xEB jump + 0x55AA" alone matches many MBRs.

use super::util::{bytes, is_pow2_in, label_from_bytes, le16, le32, read, serial32, u8_at};
use super::{FsInfo, FsKind};
use crate::device::BlockDevice;

const EXTENDED_BOOT_SIGNATURE: u8 = 0x29;

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let bs = read(dev, 0, 512)?;
    let jump = u8_at(&bs, 0)?;
    if jump != 0xEB && jump != 0xE9 {
        return None;
    }
    let byts_per_sec = u64::from(le16(&bs, 11)?);
    let sec_per_clus = u64::from(u8_at(&bs, 13)?);
    let rsvd_sec_cnt = u64::from(le16(&bs, 14)?);
    let num_fats = u64::from(u8_at(&bs, 16)?);
    let root_ent_cnt = u64::from(le16(&bs, 17)?);
    let tot_sec16 = u64::from(le16(&bs, 19)?);
    let media = u8_at(&bs, 21)?;
    let fat_sz16 = u64::from(le16(&bs, 22)?);
    let tot_sec32 = u64::from(le32(&bs, 32)?);
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
        u64::from(le32(&bs, 36)?)
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
    let (label, uuid) = if u8_at(&bs, ebpb + 2)? == EXTENDED_BOOT_SIGNATURE {
        let vol_id = le32(&bs, ebpb + 3)?;
        let lab = label_from_bytes(&bytes::<11>(&bs, ebpb + 7)?).filter(|l| l != "NO NAME");
        (lab, Some(serial32(vol_id)))
    } else {
        (None, None)
    };
    Some(FsInfo { kind, label, uuid })
}

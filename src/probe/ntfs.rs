//! NTFS probe. The boot sector gives the serial (blkid's UUID); the label lives in
//! the $VOLUME_NAME attribute of MFT record 3 ($Volume), so we read that one record
//! to show the same label Windows and blkid show. A label that cannot be read is
//! simply absent: the kind is what decides how the partition is imaged.

use super::util::{has, is_pow2_in, label_from_utf16le, read};
use super::{FsInfo, FsKind};
use crate::bytes::{le16, le32, le64, u8_at};
use crate::device::BlockDevice;

const VOLUME_RECORD: u64 = 3;
const AT_VOLUME_NAME: u32 = 0x60;
const AT_END: u32 = 0xFFFF_FFFF;

/// The geometry from an NTFS boot sector that the label lookup needs.
struct Geometry {
    cluster_size: u64,
    mft_lcn: u64,
    record_size: u64,
}

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    from_boot_sector(dev, &read(dev, 0, 512)?)
}

/// The same, from the backup boot sector in the partition's last sector.
pub(crate) fn probe_backup(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let (_, raw, _) = crate::usedmap::ntfs::backup::find(dev)?;
    from_boot_sector(dev, &raw)
}

fn from_boot_sector(dev: &dyn BlockDevice, bs: &[u8]) -> Option<FsInfo> {
    if !has(bs, 3, b"NTFS    ") || !has(bs, 510, &[0x55, 0xAA]) {
        return None;
    }
    let geo = geometry(bs)?;
    let serial = le64(bs, 0x48)?;
    Some(FsInfo {
        kind: FsKind::Ntfs,
        label: volume_label(dev, &geo),
        uuid: Some(format!("{serial:016X}")),
    })
}

fn geometry(bs: &[u8]) -> Option<Geometry> {
    let bytes_per_sector = u64::from(le16(bs, 0x0B)?);
    if !is_pow2_in(bytes_per_sector, 256, 4096) {
        return None;
    }
    let spc_raw = u8_at(bs, 0x0D)?;
    // Values above 0x80 are a negative shift: cluster = 2^(256 - value) sectors.
    let sectors_per_cluster: u64 = if spc_raw > 0x80 {
        1u64.checked_shl(256 - u32::from(spc_raw))?
    } else {
        u64::from(spc_raw)
    };
    if !is_pow2_in(sectors_per_cluster, 1, 1 << 16) {
        return None;
    }
    let cluster_size = bytes_per_sector.checked_mul(sectors_per_cluster)?;
    if cluster_size > 2 << 20 {
        return None;
    }
    let total_sectors = le64(bs, 0x28)?;
    if total_sectors == 0 {
        return None;
    }
    let mft_lcn = le64(bs, 0x30)?;
    let clusters_per_record = u8_at(bs, 0x40)? as i8;
    let record_size: u64 = if clusters_per_record < 0 {
        1u64.checked_shl(u32::from(clusters_per_record.unsigned_abs()))?
    } else {
        cluster_size.checked_mul(u64::from(clusters_per_record as u8))?
    };
    if !is_pow2_in(record_size, 256, 65536) {
        return None;
    }
    Some(Geometry {
        cluster_size,
        mft_lcn,
        record_size,
    })
}

fn volume_label(dev: &dyn BlockDevice, geo: &Geometry) -> Option<String> {
    let off = geo
        .mft_lcn
        .checked_mul(geo.cluster_size)?
        .checked_add(VOLUME_RECORD.checked_mul(geo.record_size)?)?;
    let mut rec = read(dev, off, usize::try_from(geo.record_size).ok()?)?;
    if !has(&rec, 0, b"FILE") {
        return None;
    }
    // The update sequence always protects 512-byte strides, whatever the sector size.
    apply_fixups(&mut rec, 512)?;
    let mut pos = usize::from(le16(&rec, 0x14)?);
    // Each attribute is at least 16 bytes, so a record holds a bounded number.
    for _ in 0..rec.len() / 16 {
        let ty = le32(&rec, pos)?;
        if ty == AT_END {
            return None;
        }
        let len = usize::try_from(le32(&rec, pos.checked_add(4)?)?).ok()?;
        if len < 16 {
            return None;
        }
        let non_resident = u8_at(&rec, pos.checked_add(8)?)?;
        if ty == AT_VOLUME_NAME && non_resident == 0 {
            let vlen = usize::try_from(le32(&rec, pos.checked_add(0x10)?)?).ok()?;
            let voff = usize::from(le16(&rec, pos.checked_add(0x14)?)?);
            let start = pos.checked_add(voff)?;
            let value = rec.get(start..start.checked_add(vlen)?)?;
            return label_from_utf16le(value);
        }
        pos = pos.checked_add(len)?;
    }
    None
}

/// Puts back the last two bytes of each sector that the update sequence array
/// replaced, after checking each against the sequence number (a torn write fails).
fn apply_fixups(rec: &mut [u8], stride: usize) -> Option<()> {
    let usa_ofs = usize::from(le16(rec, 4)?);
    let usa_count = usize::from(le16(rec, 6)?);
    if usa_count == 0 {
        return None;
    }
    let usn = le16(rec, usa_ofs)?;
    for i in 1..usa_count {
        let end = i.checked_mul(stride)?;
        if end > rec.len() {
            break;
        }
        let fix = usa_ofs.checked_add(i.checked_mul(2)?)?;
        let val = [*rec.get(fix)?, *rec.get(fix + 1)?];
        let slot = rec.get_mut(end - 2..end)?;
        if u16::from_le_bytes([slot[0], slot[1]]) != usn {
            return None;
        }
        slot.copy_from_slice(&val);
    }
    Some(())
}

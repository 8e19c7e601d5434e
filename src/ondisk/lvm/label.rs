//! The PV label (`label_header`, in one of the first four 512-byte sectors) and the
//! `pv_header` after it: the PV's UUID, size, and where its data and metadata areas are.

use super::crc::calc_crc;
use super::error::LvmError;
use crate::bytes::{le32, le64};
use crate::device::BlockDevice;

/// lvm2 writes its label into one of the first `LABEL_SCAN_SECTORS` sectors.
const LABEL_SCAN_SECTORS: u64 = 4;
const LABEL_SIZE: usize = 512;
/// Offset of `offset_xl` in `label_header`: the CRC covers from here to the sector end.
const CRC_FROM: usize = 20;
/// More areas than this in a list means the list is garbage (lvm2 writes one or two).
const MAX_AREAS: usize = 8;

/// One `disk_locn`: bytes from the PV start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLocn {
    pub offset: u64,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvLabel {
    /// The sector holding the label.
    pub sector: u64,
    /// The PV UUID as lvm2 prints it (6-4-4-4-4-4-6).
    pub pv_uuid: String,
    /// `device_size_xl`: the PV's size in bytes when it was written.
    pub device_size: u64,
    pub data_areas: Vec<DiskLocn>,
    pub metadata_areas: Vec<DiskLocn>,
}

impl PvLabel {
    pub fn read(dev: &dyn BlockDevice) -> Result<PvLabel, LvmError> {
        let head = dev.read_vec(0, LABEL_SCAN_SECTORS as usize * LABEL_SIZE)?;
        for (i, sector) in head.chunks_exact(LABEL_SIZE).enumerate() {
            if sector.starts_with(b"LABELONE") {
                return Self::decode(i as u64, sector);
            }
        }
        Err(LvmError::NoLabel)
    }

    /// Decodes the label found in sector `sector` (its 512 bytes).
    pub fn decode(sector: u64, b: &[u8]) -> Result<PvLabel, LvmError> {
        let bad = |what: String| LvmError::Label { sector, what };
        let short = || bad("sector shorter than 512 bytes".into());
        let sector_xl = le64(b, 8).ok_or_else(short)?;
        if sector_xl != sector {
            return Err(bad(format!("sector_xl = {sector_xl}, not its own sector")));
        }
        let crc_xl = le32(b, 16).ok_or_else(short)?;
        let crc = calc_crc(b.get(CRC_FROM..LABEL_SIZE).ok_or_else(short)?);
        if crc != crc_xl {
            return Err(bad(format!("crc_xl {crc_xl:#010x}, computed {crc:#010x}")));
        }
        if b.get(24..32) != Some(b"LVM2 001".as_slice()) {
            return Err(bad("type is not \"LVM2 001\"".into()));
        }
        let offset_xl = le32(b, 20).ok_or_else(short)? as usize;
        let h = b
            .get(offset_xl..)
            .filter(|h| offset_xl >= 32 && h.len() >= 40)
            .ok_or_else(|| bad(format!("offset_xl = {offset_xl} outside the sector")))?;
        let pv_header =
            |what: &str| LvmError::PvHeader(format!("{what} (label in sector {sector})"));
        let raw_uuid = h.get(..32).ok_or_else(|| pv_header("short"))?;
        let pv_uuid = format_uuid(raw_uuid)
            .ok_or_else(|| pv_header("pv_uuid is not 32 letters and digits"))?;
        let device_size = le64(h, 32).ok_or_else(|| pv_header("short"))?;
        let mut pos = 40usize;
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            loop {
                let (Some(offset), Some(size)) = (le64(h, pos), le64(h, pos + 8)) else {
                    return Err(pv_header("an area list runs past the sector"));
                };
                pos += 16;
                if offset == 0 {
                    break;
                }
                if list.len() == MAX_AREAS {
                    return Err(pv_header("more than 8 areas in a list"));
                }
                list.push(DiskLocn { offset, size });
            }
        }
        let [data_areas, metadata_areas] = lists;
        Ok(PvLabel {
            sector,
            pv_uuid,
            device_size,
            data_areas,
            metadata_areas,
        })
    }
}

/// lvm2's printed form of a 32-character id: groups of 6-4-4-4-4-4-6.
pub fn format_uuid(raw: &[u8]) -> Option<String> {
    if raw.len() != 32 || !raw.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let s = std::str::from_utf8(raw).ok()?;
    let mut out = String::with_capacity(38);
    let mut pos = 0;
    for (n, w) in [6usize, 4, 4, 4, 4, 4, 6].iter().enumerate() {
        if n > 0 {
            out.push('-');
        }
        out.push_str(s.get(pos..pos + w)?);
        pos += w;
    }
    Some(out)
}

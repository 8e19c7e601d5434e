//! LVM2 on-disk structures: the PV label and header, the metadata area header, the
//! volume group metadata text, and the VG it describes. Field names follow lvm2's
//! `format_text/layout.h` (`label_header`, `pv_header`, `mda_header`, `raw_locn`);
//! the text is lvm2's config syntax. Everything comes from a disk that may be damaged
//! or crafted: lengths and offsets are checked, the text parser has depth and size
//! limits, and each error names the structure and the byte or line.
//!
//! Hand-written: no crate reads LVM2 metadata, and calling `pvs`/`vgs` would need the
//! live system's device-mapper and would see only devices, not image files.

mod crc;
mod error;
pub mod label;
pub mod mda;
pub mod relayout;
pub mod text;
pub mod vg;

pub use error::LvmError;
pub use label::PvLabel;
pub use mda::{read_metadata, MdaHeader};
pub use vg::{LogicalVolume, PhysicalVolume, Segment, SegmentKind, VolumeGroup};

use crate::device::BlockDevice;

/// The PV on `dev` and the newest VG metadata among its metadata areas.
pub fn read_pv(dev: &dyn BlockDevice) -> Result<(PvLabel, VolumeGroup), LvmError> {
    read_pv_text(dev).map(|(l, vg, _)| (l, vg))
}

/// `read_pv`, with the metadata text the VG was decoded from.
pub fn read_pv_text(dev: &dyn BlockDevice) -> Result<(PvLabel, VolumeGroup, String), LvmError> {
    let label = PvLabel::read(dev)?;
    let mut best: Option<(VolumeGroup, String)> = None;
    let mut last_err: Option<LvmError> = None;
    for area in &label.metadata_areas {
        match read_metadata(dev, area.offset, area.size)
            .and_then(|t| VolumeGroup::parse(&t).map(|vg| (vg, t)))
        {
            Ok((vg, t)) if best.as_ref().is_none_or(|b| vg.seqno > b.0.seqno) => {
                best = Some((vg, t))
            }
            Ok(_) => {}
            Err(e) => last_err = Some(e),
        }
    }
    match (best, last_err) {
        (Some((vg, t)), _) => Ok((label, vg, t)),
        (None, Some(e)) => Err(e),
        (None, None) => Err(LvmError::NoMetadataArea),
    }
}

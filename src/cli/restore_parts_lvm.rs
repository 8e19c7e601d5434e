//! `restore DIR IMAGE --part sda2=TARGET` where `sda2` is an LVM physical volume of a
//! saveparts image: planned, checked and written by `foreign::clonezilla::parts_pv`
//! (which says how a larger or smaller target is laid out anew, and when it is refused); here
//! only what the CLI keeps between staging and writing, and how it prints.

use ironclone::device::{open_path, Access};
use ironclone::foreign::clonezilla::parts_pv::{plan_pv, PlannedPv};
use ironclone::plan::LayoutMode;
use ironclone::progress::NoProgress;
use std::path::Path;

/// One PV partition checked and planned, ready to be written.
pub(super) struct StagedPv {
    pub part: String,
    pub pv: PlannedPv,
    /// The PV's size (what is written into, from the target's start).
    pub pv_bytes: u64,
    /// Bytes of used blocks the LV images hold.
    pub used_bytes: u64,
    /// One line per LV: `vg-lv fs used`.
    pub lvs: Vec<String>,
}

/// Reads PV `part` of the image `folder`, checks that it fits in `target_bytes`, plans
/// it in `mode` and decodes every LV image to its end (every checksum checked): nothing is
/// written anywhere but `scratch`'s sparse file.
pub(super) fn stage(
    folder: &Path,
    part: &str,
    target: &Path,
    target_bytes: u64,
    mode: LayoutMode,
    scratch: &Path,
) -> anyhow::Result<StagedPv> {
    let pv = plan_pv(
        folder,
        part,
        &target.display().to_string(),
        target_bytes,
        mode,
        scratch,
    )?;
    let (lvs, used_bytes) = pv.check(&NoProgress)?;
    Ok(StagedPv {
        part: part.to_string(),
        pv_bytes: pv.pv_bytes,
        pv,
        used_bytes,
        lvs,
    })
}

/// Writes the staged PV onto `target` (a partition or an image file), then reads it
/// back; the bytes written.
pub(super) fn write(s: &StagedPv, target: &Path, scratch: &Path) -> anyhow::Result<u64> {
    let dev = open_path(target, Access::ReadWrite)?;
    Ok(s.pv.write(&dev, target, scratch, &NoProgress)?)
}

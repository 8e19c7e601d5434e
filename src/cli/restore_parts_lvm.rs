//! `restore DIR IMAGE --part sda2=TARGET` where `sda2` is an LVM physical volume of a
//! saveparts image: Clonezilla saved no image of the PV itself, only its VG's metadata
//! and one image per LV. The PV is read as a disk without a table that holds only it
//! (`clonezilla::restore::ClonezillaRestore::open_pv`: lvm2 writes the label and
//! metadata into a sparse file, each LV's image decoded at its extents), planned and
//! copied as the whole-disk restore copies a PV: its used blocks, at its saved size,
//! from the target's first byte. The space of a larger target past the PV is left as
//! it was (outside the PV: `pvresize` adds it to the VG). A smaller target is refused:
//! the LVs are laid out anew only in a table's PV partition (imaging/restore_lvm.rs).

use anyhow::bail;
use ironclone::device::{open_path, Access};
use ironclone::foreign::clonezilla::restore::{ClonezillaRestore, Route};
use ironclone::imaging::{plan_restore, DiskRestoreOptions, DiskRestorePlan, RestorePlanOptions};
use ironclone::plan::LayoutMode;
use ironclone::progress::NoProgress;
use ironclone::units::human_bytes;
use std::path::Path;

/// One PV partition checked and planned, ready to be written.
pub(super) struct StagedPv {
    pub part: String,
    pub src: ClonezillaRestore,
    pub plan: DiskRestorePlan,
    /// The PV's size (what is written into, from the target's start).
    pub pv_bytes: u64,
    /// Bytes of used blocks the LV images hold.
    pub used_bytes: u64,
    /// One line per LV: `vg/lv fs used`.
    pub lvs: Vec<String>,
}

/// Reads PV `part` of the image `folder`, checks that it fits in `target_bytes`, plans
/// it and decodes every LV image to its end (every checksum checked): nothing is
/// written anywhere but `scratch`'s sparse file.
pub(super) fn stage(
    folder: &Path,
    part: &str,
    target: &Path,
    target_bytes: u64,
    scratch: &Path,
) -> anyhow::Result<StagedPv> {
    let src = ClonezillaRestore::open_pv(folder, part, scratch)?;
    let pv_bytes = src
        .manifest()
        .areas
        .iter()
        .map(|a| a.offset.saturating_add(a.len))
        .max()
        .unwrap_or(0);
    let vg = src
        .image()
        .lvm
        .as_ref()
        .and_then(|l| l.pvs.iter().find(|p| p.dev == part))
        .map_or("?", |p| p.vg.as_str());
    if target_bytes < pv_bytes {
        bail!(
            "partition {part} is the LVM physical volume of VG {vg}, {} ({pv_bytes} bytes); \
             {} holds {} ({target_bytes} bytes): a PV restored with --part keeps its saved \
             size (its LVs are laid out anew only when restoring a whole disk), so the \
             target must hold at least {pv_bytes} bytes; nothing was written",
            human_bytes(pv_bytes),
            target.display(),
            human_bytes(target_bytes),
        );
    }
    let plan = plan_restore(
        src.manifest(),
        target_bytes,
        512,
        &RestorePlanOptions {
            mode: LayoutMode::Keep,
            sizes: Default::default(),
        },
    )?;
    let done = src.check(&NoProgress)?;
    let used_bytes = done.iter().map(|d| d.used_bytes).sum();
    let lvs = done
        .iter()
        .map(|d| format!("{} {} {}", d.part, d.filesystem, human_bytes(d.used_bytes)))
        .collect();
    Ok(StagedPv {
        part: part.to_string(),
        src,
        plan,
        pv_bytes,
        used_bytes,
        lvs,
    })
}

/// Writes the staged PV onto `target` (a partition or an image file), then reads it
/// back; the bytes written.
pub(super) fn write(s: &StagedPv, target: &Path, scratch: &Path) -> anyhow::Result<u64> {
    let dev = open_path(target, Access::ReadWrite)?;
    let opts = DiskRestoreOptions {
        new_ids: false,
        verify_after: true,
        // A partition: no boot repair, no table, no NVRAM entry.
        repair: false,
        nvram: false,
        fallback: false,
        scratch_dir: scratch.to_path_buf(),
        target_is_zeroed: false,
        luks_key: None,
    };
    if let Route::TempRepository(why) = s.src.route(&s.plan, &opts) {
        bail!(
            "partition {}: {why}: not done for a PV restored with --part; nothing was written",
            s.part
        );
    }
    let (rep, _) = s
        .src
        .restore(&s.plan, &dev, target, &opts, true, &NoProgress)?;
    Ok(rep.bytes_written)
}

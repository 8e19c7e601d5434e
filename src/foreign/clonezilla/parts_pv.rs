//! An LVM physical volume of a saveparts image restored onto a partition or an image
//! file (the CLI's `restore --part sda2=DEV`, the TUI's row `IMAGE/sda2`). Clonezilla
//! saved no image of the PV itself, only its VG's metadata and one image per LV; the PV
//! is read as a table-less disk holding only it (`ClonezillaRestore::open_pv`: lvm2
//! writes the label and metadata into a sparse file, each LV's image decoded at its
//! extents) and planned as the whole-disk restore plans a table-less PV of a native
//! image (imaging/plan_lvm.rs `whole_pv_size`, restore_lvm.rs): in Proportional mode
//! (the default) onto a larger or a smaller target it is laid out anew at the
//! target's whole extents, its root LV taking the growth or the shrink and its
//! filesystem grown or shrunk, through a temporary repository, everything staged and
//! checked before the target's first byte; onto a target of its size it is copied as
//! saved (its used blocks, from the target's first byte). `--layout keep` copies it at
//! its saved size onto a target that holds it (the space past it left as it was:
//! `pvresize` adds it to the VG) and refuses a smaller one. A PV that cannot be laid
//! out anew (several PVs, segments other than linear or striped) keeps its size onto
//! a larger target and is refused onto a smaller one, as is one whose LVs' least sizes
//! do not fit.

use super::restore::{ClonezillaRestore, RestoreError, Route};
use crate::device::BlockDevice;
use crate::imaging::{
    plan_restore, DiskRestoreOptions, DiskRestorePlan, ImagingError, RestorePlanOptions,
};
use crate::plan::LayoutMode;
use crate::progress::Progress;
use crate::units::human_bytes;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PvError {
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(
        "partition {part} is the LVM physical volume of VG {vg}, {} ({pv_bytes} bytes); \
         {target} holds {} ({target_bytes} bytes): {why}; nothing was written",
        human_bytes(*pv_bytes),
        human_bytes(*target_bytes)
    )]
    TooSmall {
        part: String,
        vg: String,
        pv_bytes: u64,
        target: String,
        target_bytes: u64,
        why: String,
    },
    #[error(
        "partition {part}: {why}: not done for a PV restored onto a partition; nothing was written"
    )]
    Route { part: String, why: String },
}

/// One PV opened and planned for a target of `target_bytes`.
pub struct PlannedPv {
    pub part: String,
    pub vg: String,
    pub src: ClonezillaRestore,
    pub plan: DiskRestorePlan,
    /// The PV's size (what is written into, from the target's start).
    pub pv_bytes: u64,
}

/// Opens PV `part` of the image `folder` (its metadata, the LVs' filesystem headers)
/// and plans it onto `target` of `target_bytes` in `mode`; refuses a target its LVs do
/// not fit (in Keep mode: one smaller than the PV). Nothing is written but
/// `scratch`'s sparse file.
pub fn plan_pv(
    folder: &Path,
    part: &str,
    target: &str,
    target_bytes: u64,
    mode: LayoutMode,
    scratch: &Path,
) -> Result<PlannedPv, PvError> {
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
        .map_or_else(|| "?".to_string(), |p| p.vg.clone());
    let too_small = |why: String| PvError::TooSmall {
        part: part.to_string(),
        vg: vg.clone(),
        pv_bytes,
        target: target.to_string(),
        target_bytes,
        why,
    };
    if mode == LayoutMode::Keep && target_bytes < pv_bytes {
        return Err(too_small(
            "--layout keep copies it at its saved size (the default layout lays it out \
             anew at the target's size)"
                .into(),
        ));
    }
    let plan = plan_restore(
        src.manifest(),
        target_bytes,
        512,
        &RestorePlanOptions {
            mode,
            sizes: Default::default(),
        },
    );
    let plan = match plan {
        Ok(p) => p,
        Err(ImagingError::WholePvNoRoom { min, lvs, .. }) => {
            return Err(too_small(format!(
                "even laid out anew its LVs need at least {} ({min} bytes); each LV's \
                 least size: {lvs}",
                human_bytes(min)
            )))
        }
        Err(e) if target_bytes < pv_bytes => {
            return Err(too_small(format!(
                "its LVs cannot be laid out anew ({e}), so the target must hold at least \
                 {pv_bytes} bytes"
            )))
        }
        Err(e) => return Err(RestoreError::from(e).into()),
    };
    Ok(PlannedPv {
        part: part.to_string(),
        vg,
        src,
        plan,
        pv_bytes,
    })
}

/// The options a partition's copy takes (a PV's, a LUKS partition's: parts_luks.rs):
/// no table, no boot repair, no NVRAM entry.
pub(super) fn copy_options(scratch: &Path) -> DiskRestoreOptions {
    DiskRestoreOptions {
        new_ids: false,
        verify_after: true,
        repair: false,
        nvram: false,
        fallback: false,
        scratch_dir: scratch.to_path_buf(),
        target_is_zeroed: false,
        luks_key: None,
    }
}

impl PlannedPv {
    /// The PV's size on the target: its saved size, or the target's whole extents
    /// when it is laid out anew (onto a larger or a smaller target).
    pub fn new_bytes(&self) -> u64 {
        self.plan
            .parts
            .first()
            .map_or(self.pv_bytes, |p| p.new_size)
    }

    /// One line per PV laid out anew: each LV's old and new size; else none.
    pub fn relayout_notes(&self) -> Vec<String> {
        self.plan
            .notes()
            .into_iter()
            .filter(|n| n.contains("laid out anew"))
            .collect()
    }

    /// Decodes every LV image to its end, every checksum checked (before any write);
    /// one line per LV: `vg-lv fs used`, and the used bytes in all.
    pub fn check(&self, progress: &dyn Progress) -> Result<(Vec<String>, u64), PvError> {
        Ok(self.src.check_lines(progress)?)
    }

    /// Writes the checked PV onto `dev` (`target` names it), then reads it back; the
    /// bytes written.
    pub fn write(
        &self,
        dev: &dyn BlockDevice,
        target: &Path,
        scratch: &Path,
        progress: &dyn Progress,
    ) -> Result<u64, PvError> {
        let opts = copy_options(scratch);
        // A PV laid out anew goes through a temporary repository (restore_lvm.rs reads
        // it from one); anything else rebuilt is not done here.
        let relaid = self
            .plan
            .parts
            .iter()
            .all(|p| crate::imaging::pv_relaid(p, opts.new_ids));
        if let Route::TempRepository(why) = self.src.route(&self.plan, &opts) {
            if relaid {
                let (rep, _) = self
                    .src
                    .restore(&self.plan, dev, target, &opts, true, progress)?;
                return Ok(rep.bytes_written);
            }
            return Err(PvError::Route {
                part: self.part.clone(),
                why,
            });
        }
        let (rep, _) = self
            .src
            .restore(&self.plan, dev, target, &opts, true, progress)?;
        Ok(rep.bytes_written)
    }
}

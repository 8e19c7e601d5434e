//! An LVM physical volume of a saveparts image restored onto a partition or an image
//! file (the CLI's `restore --part sda2=DEV`, the TUI's row `IMAGE/sda2`). Clonezilla
//! saved no image of the PV itself, only its VG's metadata and one image per LV; the PV
//! is read as a table-less disk holding only it (`ClonezillaRestore::open_pv`: lvm2
//! writes the label and metadata into a sparse file, each LV's image decoded at its
//! extents), planned and copied as the whole-disk restore copies a PV: its used blocks,
//! at its saved size, from the target's first byte. The space of a larger target past
//! the PV is left as it was (outside the PV: `pvresize` adds it to the VG). A smaller
//! target is refused: LVs are laid out anew only in a table's PV partition
//! (imaging/restore_lvm.rs).

use super::restore::{ClonezillaRestore, RestoreError, Route};
use crate::device::BlockDevice;
use crate::imaging::{plan_restore, DiskRestoreOptions, DiskRestorePlan, RestorePlanOptions};
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
         {target} holds {} ({target_bytes} bytes): a PV restored onto a partition keeps \
         its saved size (its LVs are laid out anew only when restoring a whole disk), so the \
         target must hold at least {pv_bytes} bytes; nothing was written",
        human_bytes(*pv_bytes),
        human_bytes(*target_bytes)
    )]
    TooSmall {
        part: String,
        vg: String,
        pv_bytes: u64,
        target: String,
        target_bytes: u64,
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
/// and plans it onto `target` of `target_bytes`; refuses a target smaller than the PV.
/// Nothing is written but `scratch`'s sparse file.
pub fn plan_pv(
    folder: &Path,
    part: &str,
    target: &str,
    target_bytes: u64,
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
    if target_bytes < pv_bytes {
        return Err(PvError::TooSmall {
            part: part.to_string(),
            vg,
            pv_bytes,
            target: target.to_string(),
            target_bytes,
        });
    }
    let plan = plan_restore(
        src.manifest(),
        target_bytes,
        512,
        &RestorePlanOptions {
            mode: LayoutMode::Keep,
            sizes: Default::default(),
        },
    )
    .map_err(RestoreError::from)?;
    Ok(PlannedPv {
        part: part.to_string(),
        vg,
        src,
        plan,
        pv_bytes,
    })
}

/// The options a PV's copy takes: no table, no boot repair, no NVRAM entry.
fn copy_options(scratch: &Path) -> DiskRestoreOptions {
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
    /// Decodes every LV image to its end, every checksum checked (before any write);
    /// one line per LV: `vg-lv fs used`, and the used bytes in all.
    pub fn check(&self, progress: &dyn Progress) -> Result<(Vec<String>, u64), PvError> {
        let done = self.src.check(progress)?;
        let used = done.iter().map(|d| d.used_bytes).sum();
        let lines = done
            .iter()
            .map(|d| format!("{} {} {}", d.part, d.filesystem, human_bytes(d.used_bytes)))
            .collect();
        Ok((lines, used))
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
        if let Route::TempRepository(why) = self.src.route(&self.plan, &opts) {
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

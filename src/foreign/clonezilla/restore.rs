//! Restoring a Clonezilla savedisk image onto a disk: the one path that both the CLI's
//! `restore DIR IMAGE TARGET` and the TUI's restore take, so both plan, check, write,
//! verify and repair the same way.
//!
//! `ClonezillaRestore::open` reads the image as the disk it was saved from
//! (`device::ImageDevice`: table from the saved boot areas, partitions decoded on
//! demand) and plans it like a backup source, which gives the manifest the restore
//! planner takes. `restore` then checks the whole image first (every partition
//! decoded to its end, every checksum it carries and the folder's checksum lists)
//! unless the caller opted out, and only then writes: kept and grown partitions are
//! decoded once more straight onto the target (`imaging::restore_disk_from_device`),
//! and plans that rebuild a partition instead of copying it (a re-created ESP or
//! XFS, an LVM PV laid out anew) go through a temporary repository in the scratch
//! folder, as the repository restore does those steps. The image folder is only read.

use super::assemble::{AssembleError, PartDone};
use super::device::ImageDevice;
use super::{lvm, ClonezillaError, ClonezillaImage};
use crate::device::BlockDevice;
use crate::imaging::{
    device_restore_unsupported, plan_backup_without_files_unlocked, restore_disk,
    restore_disk_from_device, DiskRestoreOptions, DiskRestorePlan, DiskRestoreReport, ImagingError,
    LuksBackup, PlannedDisk,
};
use crate::progress::{Progress, ProgressEvent};
use crate::repo::{self, BackupOptions, Manifest, RepoError, Repository, SourceInfo};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RestoreError {
    #[error(transparent)]
    Folder(#[from] ClonezillaError),
    #[error(transparent)]
    Image(#[from] AssembleError),
    // The wrapped errors are boxed: they are large and every `Result` here carries them.
    #[error("{folder}: reading the saved disk's layout: {source}")]
    Layout {
        folder: PathBuf,
        #[source]
        source: Box<ImagingError>,
    },
    #[error(transparent)]
    Imaging(Box<ImagingError>),
    #[error("the temporary repository {dir}: {source}")]
    TempRepo {
        dir: PathBuf,
        #[source]
        source: Box<RepoError>,
    },
    #[error(
        "the restore stopped and {target} is partly written (the image was not checked \
         before writing): {source}"
    )]
    PartlyWritten {
        target: PathBuf,
        #[source]
        source: Box<ImagingError>,
    },
}

impl From<ImagingError> for RestoreError {
    fn from(e: ImagingError) -> Self {
        RestoreError::Imaging(Box::new(e))
    }
}

/// How the bytes reached the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Decoded straight onto the target.
    Direct,
    /// Through a temporary repository (the plan rebuilds a partition); the reason.
    TempRepository(String),
}

/// A Clonezilla image opened and planned as a restore source.
pub struct ClonezillaRestore {
    img: ClonezillaImage,
    dev: ImageDevice,
    planned: PlannedDisk,
    /// The LUKS partitions' plaintext devices, stacked past the disk's end for the
    /// temporary repository (device_luks.rs).
    luks: Option<LuksBackup>,
    manifest: Manifest,
    scratch: PathBuf,
    /// The partitions as the precheck decoded them, once it has run.
    checked: Mutex<Option<Vec<PartDone>>>,
}

/// Removes the temporary repository however the restore ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl ClonezillaRestore {
    /// Opens the image folder `folder` (for an image of several disks, the disk
    /// `disk`) and reads its layout: each partition image's start is decoded for the
    /// filesystems' metadata. `scratch` takes the table's small sparse file (removed
    /// when this is dropped), staged shrinks and, when needed, the temporary repository.
    pub fn open(folder: &Path, disk: Option<&str>, scratch: &Path) -> Result<Self, RestoreError> {
        let img = ClonezillaImage::open(folder)?.for_disk(disk)?;
        lvm::refuse_whole_disk(&img)?;
        let table = scratch.join(format!(
            "ironclone-clonezilla-{}-{}.table",
            std::process::id(),
            img.name
        ));
        let dev = ImageDevice::open(&img, &table)?;
        let mut r = Self::planned(img, dev, folder, scratch)?;
        let notes = super::lvm_place::elsewhere_notes(&r.img);
        r.planned.warnings.extend(notes);
        Ok(r)
    }

    /// Opens the PV partition `part` of the saveparts image `folder` on its own
    /// (`ImageDevice::open_pv`): a disk without a table holding only the PV, which the
    /// restore copies as one area (its LVs' used blocks at their extents).
    pub fn open_pv(folder: &Path, part: &str, scratch: &Path) -> Result<Self, RestoreError> {
        let img = ClonezillaImage::open(folder)?;
        let table = scratch.join(format!(
            "ironclone-clonezilla-{}-{}-{part}.pv",
            std::process::id(),
            img.name
        ));
        let dev = ImageDevice::open_pv(&img, part, &table)?;
        Self::planned(img, dev, folder, scratch)
    }

    /// Opens the LUKS partition `part` (or its mapping's name) of the saveparts image
    /// `folder` on its own (`ImageDevice::open_luks`): a disk without a table that is
    /// the partition, planned as ironclone's native image of a LUKS partition read
    /// with its key (its header area and its plaintext area), which the restore
    /// writes back through the volume opened with the key (luks_restore.rs).
    pub fn open_luks(folder: &Path, part: &str, scratch: &Path) -> Result<Self, RestoreError> {
        let img = ClonezillaImage::open(folder)?;
        let table = scratch.join(format!(
            "ironclone-clonezilla-{}-{}-{part}.luks",
            std::process::id(),
            img.name
        ));
        let dev = ImageDevice::open_luks(&img, part, &table)?;
        Self::planned(img, dev, folder, scratch)
    }

    fn planned(
        img: ClonezillaImage,
        dev: ImageDevice,
        folder: &Path,
        scratch: &Path,
    ) -> Result<Self, RestoreError> {
        let source = SourceInfo {
            path: folder.display().to_string(),
            model: Some(format!("clonezilla {}", img.name)),
            serial: None,
            size: dev.size(),
            sector_size: dev.logical_sector_size(),
        };
        // No files' runs: a restore copies along the used map and needs no dedup hints.
        let mut luks = dev.luks_backup();
        let planned =
            plan_backup_without_files_unlocked(&dev, source, luks.as_mut()).map_err(|source| {
                RestoreError::Layout {
                    folder: folder.to_path_buf(),
                    source: Box::new(source),
                }
            })?;
        let manifest = planned.preview_manifest(&img.name);
        Ok(ClonezillaRestore {
            img,
            dev,
            planned,
            luks,
            manifest,
            scratch: scratch.to_path_buf(),
            checked: Mutex::new(None),
        })
    }

    /// Why a restore of this image needs the LUKS key, when it does: a LUKS partition
    /// is restored by opening the restored header with it (luks_restore.rs). Told
    /// before the check and before anything is written.
    pub fn needs_key(&self) -> Option<String> {
        let mapper = self.dev.luks_mappers().next()?;
        let v = self.img.luks.iter().find(|v| v.mapper == mapper)?;
        Some(format!(
            "partition {} is LUKS (saved opened as {}): restoring it needs the key its header \
             accepts: --unlock (asks for the passphrase, or takes $IRONCLONE_LUKS_PASSPHRASE) \
             or --key-file FILE. Nothing was written",
            v.part, v.mapper
        ))
    }

    /// What the restore planner takes (`imaging::plan_restore`).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn image(&self) -> &ClonezillaImage {
        &self.img
    }

    /// What the layout reader warned about (table damage, filesystem states); not that
    /// the temporary repository holds a LUKS volume's plaintext, which it deletes after.
    pub fn warnings(&self) -> Vec<&String> {
        let p = &self.planned;
        p.warnings
            .iter()
            .filter(|w| !p.plaintext.contains(w))
            .collect()
    }

    /// How many times a partition's decode started over (the planner's reads, then
    /// the copy): each is one more pass over that partition image.
    pub fn restarts(&self) -> u64 {
        self.dev.restarts()
    }

    /// Bytes of decoded used blocks held in memory by the precheck, and whether they
    /// are the whole image (then the copy decodes nothing again; `device::ImageDevice`).
    pub fn kept(&self) -> (u64, bool) {
        self.dev.kept()
    }

    /// The precheck: the folder's checksum lists and every partition image decoded to
    /// its end with every checksum it carries checked; nothing is written anywhere.
    /// Remembered: a later `restore` does not decode the image again for it.
    pub fn check(&self, progress: &dyn Progress) -> Result<Vec<PartDone>, RestoreError> {
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(done) = &*checked {
            return Ok(done.clone());
        }
        let name = format!("check {}", self.img.name);
        progress.report(ProgressEvent::PhaseStart {
            name: name.clone(),
            total_bytes: self.used_bytes(),
        });
        let done = self.dev.check_all_progress(&self.img, progress)?;
        progress.report(ProgressEvent::PhaseEnd { name });
        *checked = Some(done.clone());
        Ok(done)
    }

    /// [`Self::check`] told as one line per image decoded (`name fs used`) and the
    /// used bytes in all (a saveparts PV or LUKS partition: parts_pv.rs, parts_luks.rs).
    pub fn check_lines(&self, progress: &dyn Progress) -> Result<(Vec<String>, u64), RestoreError> {
        let done = self.check(progress)?;
        let used = done.iter().map(|d| d.used_bytes).sum();
        let lines = done
            .iter()
            .map(|d| {
                format!(
                    "{} {} {}",
                    d.part,
                    d.filesystem,
                    crate::units::human_bytes(d.used_bytes)
                )
            })
            .collect();
        Ok((lines, used))
    }

    /// Bytes of used blocks the plan copies (what the check and the copy each decode,
    /// as far as the used map knows).
    fn used_bytes(&self) -> u64 {
        self.manifest
            .areas
            .iter()
            .flat_map(|a| a.extents.iter())
            .fold(0u64, |acc, e| acc.saturating_add(e.len))
    }

    /// How `restore` will write `plan`: straight from the image, or (when a step
    /// rebuilds a partition) through a temporary repository, and why.
    pub fn route(&self, plan: &DiskRestorePlan, opts: &DiskRestoreOptions) -> Route {
        match device_restore_unsupported(plan, opts.new_ids) {
            None => Route::Direct,
            Some(why) => Route::TempRepository(why),
        }
    }

    /// Restores the image onto `target` (at `target_path`) along `plan` (made from
    /// `manifest()` for this target). With `precheck`, the whole image is checked
    /// before the target's first byte is written (skipped when `check` already ran);
    /// without it, one decode writes and checks at once, and a damaged image stops the
    /// restore with the target partly written (`RestoreError::PartlyWritten`).
    pub fn restore(
        &self,
        plan: &DiskRestorePlan,
        target: &dyn BlockDevice,
        target_path: &Path,
        opts: &DiskRestoreOptions,
        precheck: bool,
        progress: &dyn Progress,
    ) -> Result<(DiskRestoreReport, Route), RestoreError> {
        if let (None, Some(why)) = (&opts.luks_key, self.needs_key()) {
            return Err(ImagingError::Other(why).into());
        }
        let used = self.used_bytes();
        let passes = 1 + u64::from(precheck) + u64::from(opts.verify_after);
        progress.report(ProgressEvent::JobStart {
            job: format!("restore {}", self.img.name),
            total_bytes: used.saturating_mul(passes),
        });
        if precheck {
            self.check(progress)?;
        }
        self.dev.end_planning();
        let Route::TempRepository(why) = self.route(plan, opts) else {
            let rep = restore_disk_from_device(
                &self.dev,
                &self.manifest,
                plan,
                target,
                target_path,
                opts,
                progress,
            )
            .map_err(|source| match precheck {
                true => RestoreError::from(source),
                false => RestoreError::PartlyWritten {
                    target: target_path.to_path_buf(),
                    source: Box::new(source),
                },
            })?;
            self.dev.release_kept();
            return Ok((rep, Route::Direct));
        };
        // The same plan holds for the temporary image: it has the same areas and meta.
        let tmp = TempDir(
            self.scratch
                .join(format!("ironclone-clonezilla-{}", std::process::id())),
        );
        let temp_err = |source| RestoreError::TempRepo {
            dir: tmp.0.clone(),
            source: Box::new(source),
        };
        let repo = Repository::open_or_init(&tmp.0).map_err(temp_err)?;
        let mut bo = BackupOptions::new(&self.img.name);
        bo.level = 1;
        // Nothing is on the target yet: a damaged image fails here. LUKS plaintext
        // areas lie past the disk's end (luks_backup.rs `Stacked`).
        let stacked = self
            .luks
            .as_ref()
            .map(|l| l.stacked(&self.dev))
            .transpose()?;
        let src: &dyn BlockDevice = match &stacked {
            Some(s) => s,
            None => &self.dev,
        };
        repo::backup(&repo, src, &self.planned.plan, &bo, progress).map_err(temp_err)?;
        self.dev.release_kept();
        let rep = restore_disk(&repo, plan, target, target_path, opts, progress)?;
        Ok((rep, Route::TempRepository(why)))
    }
}

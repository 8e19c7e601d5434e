//! Re-creating an ESP for a target whose logical sectors are larger than the ones
//! its FAT was made with (512 -> 4Kn NVMe). A FAT counts everything in its own
//! sectors, so its bytes cannot simply move; but the firmware and the boot loaders
//! need only its files by path. So a new FAT32 with the target's sector size, the
//! source's volume ID and label is made in a scratch file (mkfs.fat), every
//! directory and file is read from the image (`browse`), written into it with
//! mcopy, the result checked with fsck.fat and compared with the image's tree, and
//! only then copied to the target: an ESP whose files do not fit is refused before
//! the target's first write. The boot repair then runs on it as on
//! any restored ESP (fallback loader, NVRAM entry).

use super::esp_tree::{self, TreeError};
use super::plan_restore::{DiskRestorePlan, PartTarget};
use super::staged::{ScratchDir, Staged};
use super::ImagingError;
use crate::browse::{self, open_fatfs, BrowseError, Cursor};
use crate::device::{open_path, Access, BlockDevice};
use crate::probe::FsKind;
use crate::progress::{Progress, ProgressEvent};
use crate::repo::{ImageDevice, Repository};
use crate::resize::fat32::{fsck_fat, mcopy_tree, mkfs_fat32, Fat32Spec};
use crate::resize::ToolError;
use crate::units::human_bytes;
use crate::usedmap::map_filesystem;
use fatfs::{FatType, FileSystem};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RecreateError {
    #[error(transparent)]
    Source(#[from] BrowseError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(
        "its files do not fit: they need {needed} clusters of {cluster} bytes, \
         the new FAT32 of {} has {free}", human_bytes(*size)
    )]
    NoRoom {
        needed: u64,
        free: u64,
        cluster: u64,
        size: u64,
    },
    #[error("the new FAT32 in {path}: {what}")]
    New { path: PathBuf, what: String },
}

/// The label the source carries: the root directory's volume entry (what Windows and
/// mtools show), else the boot sector's; none when it is blank or "NO NAME".
fn source_label(src: &FileSystem<Cursor<'static>>) -> Option<String> {
    let root = src.read_volume_label_from_root_dir().ok().flatten();
    let label = root.unwrap_or_else(|| src.volume_label());
    let label = label.trim_end().to_string();
    (!label.is_empty() && label != "NO NAME").then_some(label)
}

/// Labels mkfs.fat refuses (it names these characters); the ESP is then re-created
/// without one rather than not at all: firmware and loaders do not look at it.
fn mkfs_accepts_label(label: &str) -> bool {
    !label.chars().any(|c| "*?.,;:/\\|+=<>[]\"".contains(c))
}

fn image_fs(path: &Path) -> Result<Arc<dyn BlockDevice>, ImagingError> {
    Ok(Arc::new(open_path(path, Access::ReadOnly)?))
}

/// Builds the re-created ESP of `p` in a scratch file; returns it (with the byte
/// ranges to copy to the target) and the line the restore report shows.
pub(super) fn stage_recreate(
    repo: &Repository,
    plan: &DiskRestorePlan,
    p: &PartTarget,
    scratch_dir: &Path,
    progress: &dyn Progress,
) -> Result<(Staged, String), ImagingError> {
    let number = p.meta.partition.as_ref().map_or(0, |q| q.number);
    let sector = plan.target_sector;
    let fail = |why: RecreateError| ImagingError::Recreate {
        number,
        sector,
        why,
    };
    let name = format!("ironclone-esp-{}-{}", std::process::id(), p.area);
    let mut staged = Staged::create(scratch_dir, &format!("{name}.img"), p.new_size)?;
    let tree_dir = ScratchDir::create(scratch_dir, &format!("{name}.tree"))?;

    // The source: its identity through fatfs, its tree through browse.
    let source: Arc<dyn BlockDevice> = Arc::new(ImageDevice::open(repo, &plan.image, &p.area)?);
    let (volume_id, old_label) = {
        let fs = open_fatfs(source.clone()).map_err(|e| fail(e.into()))?;
        (fs.volume_id(), source_label(&fs))
    };
    let label = old_label.clone().filter(|l| mkfs_accepts_label(l));
    let mut src = browse::open(source).map_err(|e| fail(e.into()))?;
    let tree = esp_tree::walk(src.as_mut()).map_err(|e| fail(e.into()))?;

    let spec = Fat32Spec {
        sector,
        volume_id,
        label,
        hidden_sectors: u32::try_from(p.new_offset / u64::from(sector.max(1))).ok(),
    };
    mkfs_fat32(&staged.path, &spec).map_err(|e| fail(e.into()))?;
    {
        let new_err = |what: String| RecreateError::New {
            path: staged.path.clone(),
            what,
        };
        let fs = open_fatfs(image_fs(&staged.path)?).map_err(|e| fail(e.into()))?;
        if fs.fat_type() != FatType::Fat32 {
            let what = format!("mkfs.fat made {:?}, not FAT32", fs.fat_type());
            return Err(fail(new_err(what)));
        }
        let st = fs.stats().map_err(|e| fail(new_err(e.to_string())))?;
        let cluster = u64::from(st.cluster_size());
        let needed = esp_tree::clusters_needed(&tree, cluster);
        let free = u64::from(st.free_clusters());
        if needed > free {
            return Err(fail(RecreateError::NoRoom {
                needed,
                free,
                cluster,
                size: p.new_size,
            }));
        }
    }
    let phase = format!("re-create {}", p.area);
    let total: u64 = tree.iter().map(|e| e.size).sum();
    progress.report(ProgressEvent::PhaseStart {
        name: phase.clone(),
        total_bytes: total,
    });
    let bytes = esp_tree::extract(src.as_mut(), &tree, &tree_dir.path, progress)
        .map_err(|e| fail(e.into()))?;
    mcopy_tree(&staged.path, &tree_dir.path).map_err(|e| fail(e.into()))?;
    progress.report(ProgressEvent::PhaseEnd { name: phase });
    drop(tree_dir);

    // Checked by the reference tool, and against the image's tree, before any of
    // it reaches the target.
    fsck_fat(&staged.path).map_err(|e| fail(e.into()))?;
    let mut new = browse::open(image_fs(&staged.path)?).map_err(|e| fail(e.into()))?;
    let got = esp_tree::walk(new.as_mut()).map_err(|e| fail(e.into()))?;
    if let Some(d) = esp_tree::first_difference(&tree, &got) {
        return Err(fail(RecreateError::New {
            path: staged.path.clone(),
            what: d,
        }));
    }
    let map = map_filesystem(&open_path(&staged.path, Access::ReadOnly)?, FsKind::Fat32);
    if map.raw {
        return Err(fail(RecreateError::New {
            path: staged.path.clone(),
            what: format!(
                "its used blocks could not be mapped: {}",
                map.raw_reason.unwrap_or_default()
            ),
        }));
    }
    staged.extents = map.extents;
    let dirs = tree.iter().filter(|e| e.dir).count();
    let shown_label = match (&spec.label, &old_label) {
        (Some(l), _) => l.clone(),
        (None, Some(old)) => format!("none: mkfs.fat refuses the characters of {old:?}"),
        (None, None) => "none".into(),
    };
    let line = format!(
        "partition {number} (ESP): {} re-created as FAT32 with {sector}-byte sectors in {} \
         (volume ID {:04X}-{:04X}, label {}): {dirs} directories, {} files, {} copied",
        p.kind,
        human_bytes(p.new_size),
        spec.volume_id >> 16,
        spec.volume_id & 0xFFFF,
        shown_label,
        tree.len() - dirs,
        human_bytes(bytes),
    );
    Ok((staged, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_mkfs_fat_refuses_are_dropped() {
        assert!(mkfs_accepts_label("ESP LABEL"));
        assert!(mkfs_accepts_label("efi-boot_1"));
        for bad in ["A.B", "x*", "a/b", "a\\b", "q\"", "[x]"] {
            assert!(!mkfs_accepts_label(bad), "{bad}");
        }
    }
}

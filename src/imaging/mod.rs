//! Whole-disk imaging: the glue between the partition table, the filesystem maps and
//! the image repository.
//!
//! The repository engine stores byte areas and knows nothing of disks; the table and
//! filesystem code know disks and nothing of storage. This module turns a disk into a
//! backup plan (which areas, which bytes, and what a restore needs to rebuild the
//! disk), and turns an image back into a disk of any size, repaired so it boots.

mod device_copy;
mod error;
mod esp_tree;
mod luks_backup;
mod luks_restore;
pub mod meta;
mod plan_backup;
mod plan_lvm;
mod plan_restore;
mod rebuild_primary;
mod recreate_esp;
mod recreate_xfs;
mod repair;
mod repair_bcd;
mod repair_nvram;
mod restore_device;
mod restore_disk;
mod restore_lvm;
mod staged;
mod windows_boot;

pub use error::ImagingError;
pub use luks_backup::{LuksBackup, OpenVolume, PLAINTEXT_SUFFIX};
pub use luks_restore::check_key as check_luks_key;
pub use plan_backup::{
    plan_backup, plan_backup_unlocked, plan_backup_without_files,
    plan_backup_without_files_unlocked, PartitionFinding, PlannedDisk,
};
pub use plan_lvm::relaid as pv_relaid;
pub use plan_restore::{plan_restore, DiskRestorePlan, PartTarget, RestorePlanOptions};
pub use repair::{plan_repairs, repair_partition_start, RepairOptions, RepairPlan};
pub use restore_device::{restore_disk_from_device, unsupported as device_restore_unsupported};
pub use restore_disk::{restore_disk, DiskRestoreOptions, DiskRestoreReport};

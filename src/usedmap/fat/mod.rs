//! FAT12/16/32 used map (EFI system partitions, USB sticks): the reserved area, every
//! FAT copy, the fixed root directory of FAT12/16, and every allocated cluster.
//!
//! The FAT32 root directory is an ordinary cluster chain, so it is covered by the
//! allocated clusters. Clusters marked bad (0xFF7 / 0xFFF7 / 0x0FFFFFF7) are neither
//! copied nor counted: they hold nothing a restore needs (the FAT itself records them
//! as bad), and reading them on a failing disk would only produce errors. partclone.fat
//! likewise counts only allocated clusters plus the area before the data region.

pub mod backup;
mod table;

pub use table::Entry;

use crate::device::{BlockDevice, DeviceError};
use crate::ondisk::fat::{BootSector, BootSectorError};
use crate::usedmap::{ExtentBuilder, UsedMap};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum FatError {
    #[error(transparent)]
    BootSector(#[from] BootSectorError),
    #[error("FAT volume claims {fs_bytes} bytes but the device has only {device_bytes}")]
    Truncated { fs_bytes: u64, device_bytes: u64 },
    #[error("reading {what} at byte {offset}: {source}")]
    Device {
        what: &'static str,
        offset: u64,
        #[source]
        source: DeviceError,
    },
}

/// Free clusters according to the first FAT: what FAT32's FSInfo `FSI_Free_Count`
/// should say.
pub fn free_clusters(dev: &dyn BlockDevice, bpb: &BootSector) -> Result<u64, FatError> {
    let mut free = 0u64;
    table::walk(dev, bpb, |_, e| free += u64::from(e == Entry::Free))?;
    Ok(free)
}

/// Reads the used map of the FAT volume on `dev`.
///
/// `block_size` is the cluster size; `used_bytes` = bytes before the data region
/// (reserved sectors, FATs, FAT12/16 root directory) + allocated clusters × cluster
/// size, the same figure as partclone.fat's "Space in use" (partclone marks the
/// pre-data sectors used and then each allocated cluster's sectors).
///
/// A FAT32 whose boot sector is lost is mapped through its backup boot sector.
pub fn map_fat(dev: &dyn BlockDevice) -> Result<UsedMap, FatError> {
    let (bpb, primary_lost) = backup::open(dev)?;
    let total_bytes = bpb.total_bytes();
    if total_bytes > dev.size() {
        return Err(FatError::Truncated {
            fs_bytes: total_bytes,
            device_bytes: dev.size(),
        });
    }
    let cs = bpb.cluster_size();
    let meta = bpb.meta_bytes();
    // Clusters come from the walk (2 and up), so each has an offset.
    let add_run = |b: &mut ExtentBuilder, s: u64, end: u64| {
        if let Some(at) = bpb.cluster_offset(s) {
            b.add(at, (end - s) * cs);
        }
    };
    let mut b = ExtentBuilder::new();
    b.add(0, meta);
    let mut used_clusters = 0u64;
    let mut run: Option<(u64, u64)> = None;
    let mut bad = 0u64;
    table::walk(dev, &bpb, |c, e| match e {
        Entry::Used => {
            used_clusters += 1;
            match &mut run {
                Some((_, end)) if *end == c => *end = c + 1,
                _ => {
                    if let Some((s, end)) = run.take() {
                        add_run(&mut b, s, end);
                    }
                    run = Some((c, c + 1));
                }
            }
        }
        Entry::Bad => bad += 1,
        Entry::Free => {}
    })?;
    if let Some((s, end)) = run {
        add_run(&mut b, s, end);
    }
    let mut warnings = Vec::new();
    if let Some(lost) = &primary_lost {
        warnings.push(format!("FAT32: {}", lost.line()));
    }
    if bad > 0 {
        warnings.push(format!(
            "FAT: {} marked bad, not imaged",
            crate::units::count(bad, "cluster", "clusters")
        ));
    }
    Ok(UsedMap {
        block_size: cs,
        total_bytes,
        used_bytes: meta + used_clusters * cs,
        extents: b.finish(total_bytes),
        raw: false,
        raw_reason: None,
        warnings,
        primary_lost,
        lvm: None,
        fs_sector: None,
    })
}

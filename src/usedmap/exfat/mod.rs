//! exFAT used map (SD cards, USB and data disks): the main and backup boot regions,
//! the FAT, and every cluster the allocation bitmap marks.
//!
//! The gaps that align the FAT and the cluster heap (between sector 24 and the FAT,
//! and between the FAT and the heap) hold nothing: no driver or checker reads them,
//! so they are not copied. The allocation bitmap, the up-case table and the root
//! directory are clusters marked in the bitmap; their chains are added as well, so
//! a bitmap that forgot one of them still gives a mountable copy.
//!
//! TexFAT volumes (two FATs and two bitmaps, `NumberOfFats` = 2) are imaged raw:
//! `mkfs.exfat` cannot make one, so a map of them could not be tested.

mod bitmap;
mod boot;
mod reader;
mod root;

use crate::device::{BlockDevice, DeviceError};
use crate::ondisk::exfat::{DecodeError, BOOT_REGION_SECTORS};
use crate::usedmap::{ExtentBuilder, UsedMap};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExfatError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("exFAT volume claims {fs_bytes} bytes but the device has only {device_bytes}")]
    Truncated { fs_bytes: u64, device_bytes: u64 },
    #[error("exFAT with {0} FATs (TexFAT): two allocation bitmaps are not mapped yet")]
    TexFat(u8),
    #[error("exFAT root directory: {0}")]
    Root(&'static str),
    #[error(
        "exFAT allocation bitmap entry: DataLength {data_length} is below the {need} bytes \
         that {cluster_count} clusters need"
    )]
    BitmapTooSmall {
        data_length: u64,
        need: u64,
        cluster_count: u64,
    },
    #[error("exFAT {what}: its chain has {got} clusters, its DataLength needs {need}")]
    ShortChain {
        what: &'static str,
        got: u64,
        need: u64,
    },
    #[error("reading exFAT {what} at byte {offset}: {source}")]
    Device {
        what: &'static str,
        offset: u64,
        #[source]
        source: DeviceError,
    },
}

/// Reads the used map of the exFAT volume on `dev`.
///
/// `block_size` is the cluster size; `used_bytes` is what is copied: both boot
/// regions, the FAT and the allocated clusters. partclone.exfat counts the whole
/// area before the cluster heap instead (alignment gaps included).
pub fn map_exfat(dev: &dyn BlockDevice) -> Result<UsedMap, ExfatError> {
    let bs = boot::open(dev)?;
    if bs.number_of_fats != 1 {
        return Err(ExfatError::TexFat(bs.number_of_fats));
    }
    let total_bytes = bs.total_bytes().unwrap_or(u64::MAX);
    if total_bytes > dev.size() {
        return Err(ExfatError::Truncated {
            fs_bytes: total_bytes,
            device_bytes: dev.size(),
        });
    }
    let fat = reader::Fat::new(dev, &bs);
    let root = root::read(&fat)?;
    let mut b = ExtentBuilder::new();
    b.add(0, 2 * BOOT_REGION_SECTORS * bs.sector_size());
    b.add(bs.fat_byte_offset(0), bs.fat_bytes());
    let cs = bs.cluster_size();
    for &c in root.clusters.iter().chain(&root.up_case_clusters) {
        add_cluster(&mut b, &bs, c);
    }
    let bitmap_clusters = bitmap::chain(&fat, &root.bitmap)?;
    for &c in &bitmap_clusters {
        add_cluster(&mut b, &bs, c);
    }
    let used_clusters = bitmap::scan(&fat, &bitmap_clusters, &mut b)?;
    let mut warnings = Vec::new();
    if bs.is_dirty() {
        warnings.push(
            "exFAT: the volume is marked dirty (not cleanly unmounted); run fsck.exfat".to_string(),
        );
    }
    let extents = b.finish(total_bytes);
    let meta = extents
        .iter()
        .take_while(|e| e.offset < bs.cluster_heap_offset * bs.sector_size())
        .map(|e| e.len)
        .sum::<u64>();
    Ok(UsedMap {
        block_size: cs,
        total_bytes,
        used_bytes: meta.saturating_add(used_clusters.saturating_mul(cs)),
        extents,
        raw: false,
        raw_reason: None,
        warnings,
        primary_lost: None,
        lvm: None,
        fs_sector: u32::try_from(bs.sector_size()).ok(),
    })
}

fn add_cluster(b: &mut ExtentBuilder, bs: &crate::ondisk::exfat::BootSector, c: u32) {
    // Chains are validated against the heap, so every cluster has an offset.
    if let Some(at) = bs.cluster_offset(u64::from(c)) {
        b.add(at, bs.cluster_size());
    }
}

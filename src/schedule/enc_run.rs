//! One scheduled image of an encrypted-LVM disk (`enc_disk` says what and why), in
//! this order:
//! 1. each open PV's label and metadata areas are read into memory: the VG as it is
//!    before any snapshot exists;
//! 2. a snapshot of each LV mounted read-write (`snapshot::Snapshot`);
//! 3. the plain partitions mounted read-write are made still (`enc_disk::Quiesced`);
//! 4. the disk is planned and read as `backup --unlock` would, each LUKS partition's
//!    plaintext read from a view of its open mapping: the captured metadata at its
//!    place, each snapshotted LV's extents from its snapshot, the rest (swap, LVs not
//!    mounted, free extents, which are not read) from the mapping;
//! 5. everything undone in reverse, also on error.

use super::enc_disk::{CryptPv, EncDisk, Quiesced};
use super::error::ScheduleError;
use super::snapshot::Snapshot;
use crate::device::{
    open_path, Access, BlockDevice, DeviceError, FileDevice, Patched, Redirect, Redirected,
};
use crate::imaging::{plan_backup_unlocked, LuksBackup, OpenVolume};
use crate::ondisk::lvm::{read_pv, LvmError, SegmentKind, VolumeGroup};
use crate::progress::NoProgress;
use crate::repo::{self, BackupOptions, Manifest, Repository, SourceInfo};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SECTOR: u64 = 512;

/// Why an open PV could not be read consistently. The run reports it in
/// `ScheduleError::Backup` after the partition and mapping it concerns.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("{path}: {source}")]
    Lvm {
        path: PathBuf,
        #[source]
        source: LvmError,
    },
    #[error("captured metadata: {0}")]
    Captured(#[source] LvmError),
    #[error("{0}: this PV is not in its VG's metadata")]
    NotInVg(PathBuf),
    #[error("{0} overflows 64 bits")]
    Overflow(&'static str),
    #[error("the LV {lv} is not in the metadata of VG {vg}")]
    NoLv { lv: String, vg: String },
    #[error(
        "the LV {lv} has a segment that is not linear ({kind}); only linear LVs can be read \
         from their snapshots"
    )]
    NotLinear { lv: String, kind: String },
    #[error(
        "the LV {lv} has extents on another PV ({pv}); only LVs on this PV alone can be \
         imaged with the disk"
    )]
    OtherPv { lv: String, pv: String },
    #[error(transparent)]
    Snapshot(Box<ScheduleError>),
}

/// Drops what the kernel has cached of `dev`: a disk read earlier (a previous run) may
/// still have pages that the filesystems on its partitions have since rewritten
/// through their own devices, which share no cache with the whole disk.
fn drop_cache(dev: &FileDevice) {
    use std::os::fd::AsRawFd;
    let _ = nix::fcntl::posix_fadvise(
        dev.file().as_raw_fd(),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
}

/// The byte ranges of a PV holding its label and metadata: from its start to its
/// first extent, and any metadata area past that (a second copy at its end).
pub fn metadata_ranges(pe_start: u64, areas: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = vec![(0, pe_start)];
    out.extend(areas.iter().filter(|(off, _)| *off >= pe_start).copied());
    out
}

/// Where LV `lv`'s extents lie on the PV `pv_key` (bytes): (PV offset, length, offset
/// in the LV). Only linear segments on this PV can be read from a snapshot.
pub fn lv_ranges(
    vg: &VolumeGroup,
    pv_key: &str,
    pe_start: u64,
    lv: &str,
) -> Result<Vec<(u64, u64, u64)>, PrepareError> {
    let l = vg
        .lvs
        .iter()
        .find(|l| l.name == lv)
        .ok_or_else(|| PrepareError::NoLv {
            lv: lv.into(),
            vg: vg.name.clone(),
        })?;
    let ext = vg
        .extent_size
        .checked_mul(SECTOR)
        .ok_or(PrepareError::Overflow("the extent size"))?;
    let mut out = Vec::new();
    for s in &l.segments {
        let (pv, pe) = match &s.kind {
            SegmentKind::Striped { stripes, .. } if stripes.len() == 1 => &stripes[0],
            k => {
                return Err(PrepareError::NotLinear {
                    lv: lv.into(),
                    kind: format!("{k:?}"),
                })
            }
        };
        if pv != pv_key {
            return Err(PrepareError::OtherPv {
                lv: lv.into(),
                pv: pv.clone(),
            });
        }
        let over = PrepareError::Overflow("an extent's place");
        let at = pe
            .checked_mul(ext)
            .and_then(|o| o.checked_add(pe_start))
            .ok_or(over)?;
        let len = (s.extent_count.checked_mul(ext)).ok_or(PrepareError::Overflow("a length"))?;
        let from = (s.start_extent.checked_mul(ext)).ok_or(PrepareError::Overflow("an offset"))?;
        out.push((at, len, from));
    }
    Ok(out)
}

/// An open PV read consistently: its captured metadata and its snapshots.
struct Prepared {
    volume: OpenVolume,
    snaps: Vec<Snapshot>,
}

fn prepare(v: &CryptPv) -> Result<Prepared, PrepareError> {
    let path = Path::new("/dev/mapper").join(&v.mapping);
    let map = open_path(&path, Access::ReadOnly)?;
    drop_cache(&map);
    let (label, vg) = read_pv(&map).map_err(|source| PrepareError::Lvm {
        path: path.clone(),
        source,
    })?;
    let pv = vg
        .pv_by_id(&label.pv_uuid)
        .ok_or_else(|| PrepareError::NotInVg(path.clone()))?;
    let pe_start = pv
        .pe_start
        .checked_mul(SECTOR)
        .ok_or(PrepareError::Overflow("pe_start"))?;
    let areas: Vec<(u64, u64)> = label
        .metadata_areas
        .iter()
        .map(|a| (a.offset, a.size))
        .collect();
    let mut patches = Vec::new();
    for (off, len) in metadata_ranges(pe_start, &areas) {
        let n = usize::try_from(len).map_err(|_| PrepareError::Overflow("a metadata area"))?;
        let mut b = vec![0u8; n];
        map.read_at(off, &mut b)?;
        patches.push((off, b));
    }
    // The VG that goes into the image is the one read back from the captured bytes.
    let map: Arc<dyn BlockDevice> = Arc::new(map);
    let captured = Patched::new(map.clone(), patches.clone());
    let (_, vg) = read_pv(&captured).map_err(PrepareError::Captured)?;
    let mut snaps = Vec::new();
    let mut ranges = Vec::new();
    for lv in &v.lvs {
        let segs = lv_ranges(&vg, &pv.key, pe_start, &lv.lv)?;
        let s = Snapshot::create(lv, None).map_err(|e| PrepareError::Snapshot(Box::new(e)))?;
        let dev = open_path(&s.device(), Access::ReadOnly)?;
        snaps.push(s);
        let dev: Arc<dyn BlockDevice> = Arc::new(dev);
        ranges.extend(segs.into_iter().map(|(at, len, from)| Redirect {
            at,
            len,
            dev: dev.clone(),
            from,
        }));
    }
    let view = Redirected::new(map, ranges)?;
    let plain = Patched::new(Arc::new(view), patches);
    Ok(Prepared {
        volume: OpenVolume {
            partition_offset: v.offset,
            name: v.mapping.clone(),
            plain: Box::new(plain),
        },
        snaps,
    })
}

/// Images `read` (the disk) into `repo` as `name`; `warnings` gets what the plan said
/// that a user should know.
pub fn backup(
    repo: &Repository,
    disk: &Path,
    read: &Path,
    enc: &EncDisk,
    name: &str,
) -> Result<Manifest, ScheduleError> {
    let fail = |why: String| ScheduleError::Backup {
        disk: disk.display().to_string(),
        why,
    };
    // Dropped in reverse: the volumes (which hold the snapshots open) before the
    // snapshots, so that a failure removes them.
    let mut snaps = Vec::new();
    let mut volumes = Vec::new();
    for v in &enc.volumes {
        let p = prepare(v).map_err(|e| fail(format!("{} ({}): {e}", v.part, v.mapping)))?;
        volumes.push(p.volume);
        snaps.extend(p.snaps);
    }
    let still = Quiesced::enter(&enc.plain)?;
    let dev = open_path(read, Access::ReadOnly).map_err(|e| fail(e.to_string()))?;
    drop_cache(&dev);
    let source = SourceInfo::of_device(disk, &dev);
    let mut luks = LuksBackup::with_open_volumes(volumes, dev.size());
    let planned =
        plan_backup_unlocked(&dev, source, Some(&mut luks)).map_err(|e| fail(e.to_string()))?;
    let stacked = luks.stacked(&dev).map_err(|e| fail(e.to_string()))?;
    let m = repo::backup_unchanged(
        repo,
        &stacked,
        &planned.plan,
        &BackupOptions::new(name),
        None,
        &NoProgress,
    )
    .map_err(|e| fail(e.to_string()))?;
    drop(stacked);
    drop(luks);
    drop(dev);
    still.release()?;
    for s in snaps {
        s.remove()?;
    }
    Ok(m)
}

/// The mapping device of `v` (for messages and tests).
pub fn mapping_path(v: &CryptPv) -> PathBuf {
    Path::new("/dev/mapper").join(&v.mapping)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ondisk::lvm::{LogicalVolume, PhysicalVolume, Segment};

    fn seg(start: u64, count: u64, pv: &str, pe: u64) -> Segment {
        Segment {
            start_extent: start,
            extent_count: count,
            kind: SegmentKind::Striped {
                stripe_size: 0,
                stripes: vec![(pv.into(), pe)],
            },
        }
    }

    fn vg(lvs: Vec<(&str, Vec<Segment>)>) -> VolumeGroup {
        VolumeGroup {
            name: "vgc".into(),
            id: "id".into(),
            seqno: 3,
            extent_size: 8192, // 4 MiB
            pvs: vec![PhysicalVolume {
                key: "pv0".into(),
                id: "pvid".into(),
                pe_start: 2048,
                pe_count: 100,
                dev_size: None,
            }],
            lvs: lvs
                .into_iter()
                .map(|(n, segments)| LogicalVolume {
                    name: n.into(),
                    id: format!("{n}-id"),
                    status: vec!["VISIBLE".into()],
                    tags: vec![],
                    segments,
                })
                .collect(),
        }
    }

    #[test]
    fn an_lv_s_extents_map_to_its_snapshot_s_offsets() {
        const MIB: u64 = 1 << 20;
        // root: LV extents 0-9 at PV extents 0-9, then 10-14 at PV extents 40-44.
        let g = vg(vec![
            ("root", vec![seg(0, 10, "pv0", 0), seg(10, 5, "pv0", 40)]),
            ("swap", vec![seg(0, 2, "pv0", 10)]),
            ("far", vec![seg(0, 2, "pv1", 0)]),
            (
                "thin",
                vec![Segment {
                    start_extent: 0,
                    extent_count: 1,
                    kind: SegmentKind::Other("thin".into()),
                }],
            ),
        ]);
        let r = lv_ranges(&g, "pv0", MIB, "root").unwrap();
        assert_eq!(
            r,
            vec![(MIB, 40 * MIB, 0), (MIB + 160 * MIB, 20 * MIB, 40 * MIB)]
        );
        let e = |lv| lv_ranges(&g, "pv0", MIB, lv).unwrap_err().to_string();
        assert!(e("far").contains("another PV"));
        assert!(e("thin").contains("not linear"));
        assert!(e("gone").contains("not in the metadata"));
    }

    #[test]
    fn the_metadata_ranges_are_the_head_and_any_area_past_it() {
        assert_eq!(
            metadata_ranges(1 << 20, &[(4096, 1_044_480)]),
            vec![(0, 1 << 20)]
        );
        assert_eq!(
            metadata_ranges(1 << 20, &[(4096, 1_044_480), (500 << 20, 1 << 20)]),
            vec![(0, 1 << 20), (500 << 20, 1 << 20)]
        );
    }
}

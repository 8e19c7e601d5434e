//! Turning a disk into a backup plan: the areas to read and what to remember.
//!
//! Besides each partition's used blocks, a disk holds bytes no filesystem owns that
//! booting needs: the MBR boot code, the post-MBR gap where GRUB keeps core.img
//! (Rescuezilla#50 lost it), the EBRs of logical partitions and the GPT backup. Those
//! are imaged raw, whole.

use super::luks_backup::LuksBackup;
use super::meta::{PartitionMeta, TableMeta, HEAD_AREA, META_VERSION, WHOLE_FS_AREA};
use super::windows_boot::read_windows_boot;
use super::ImagingError;
use crate::device::{BlockDevice, Window};
use crate::probe::{probe, FsKind};
use crate::repo::{AreaKind, BackupPlan, PlannedArea, SourceInfo};
use crate::table::{read_layout, DiskLayout, TableKind};
use crate::usedmap::{file_runs, map_filesystem, ByteExtent, UsedMap};
use std::sync::Arc;

/// A head area larger than this is cut (a first partition far into the disk would
/// otherwise make a huge raw area); the cut is reported.
const MAX_HEAD: u64 = 64 << 20;

/// One partition's findings, for the report shown before and after a backup.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PartitionFinding {
    pub area: String,
    pub number: Option<u32>,
    pub offset: u64,
    pub size: u64,
    pub filesystem: String,
    pub label: Option<String>,
    pub used_bytes: u64,
    pub copy_bytes: u64,
    pub raw: bool,
    pub warnings: Vec<String>,
}

pub struct PlannedDisk {
    pub plan: BackupPlan,
    pub layout: DiskLayout,
    pub findings: Vec<PartitionFinding>,
    /// Warnings for the whole disk (table damage, cut areas) and every partition.
    pub warnings: Vec<String>,
    /// Of `warnings`, the notices that the image holds a LUKS volume's plaintext: true
    /// of a repository, not of a restore's temporary one (which is deleted after), so
    /// a restore leaves them out (`foreign::clonezilla::ClonezillaRestore::warnings`).
    pub plaintext: Vec<String>,
}

fn whole(len: u64) -> Vec<ByteExtent> {
    if len == 0 {
        vec![]
    } else {
        vec![ByteExtent { offset: 0, len }]
    }
}

fn meta_value<T: serde::Serialize>(m: &T) -> Result<serde_json::Value, ImagingError> {
    serde_json::to_value(m).map_err(|e| ImagingError::Other(format!("metadata: {e}")))
}

/// Reads the table, probes and maps every partition of `dev` (opened read-only).
pub fn plan_backup(dev: &dyn BlockDevice, source: SourceInfo) -> Result<PlannedDisk, ImagingError> {
    plan_backup_unlocked(dev, source, None)
}

/// [`plan_backup`], opening each LUKS partition with the key in `luks` (which must
/// live, and keep its volumes open, until the backup has read them).
pub fn plan_backup_unlocked(
    dev: &dyn BlockDevice,
    source: SourceInfo,
    luks: Option<&mut LuksBackup>,
) -> Result<PlannedDisk, ImagingError> {
    plan_inner(dev, source, luks, true)
}

/// [`plan_backup`] without the files' runs, which only steer a backup's dedup: for a
/// restore planned from a source whose metadata is costly to read (a Clonezilla image
/// decoded on demand), where the walk of every inode or MFT record is wasted.
pub fn plan_backup_without_files(
    dev: &dyn BlockDevice,
    source: SourceInfo,
) -> Result<PlannedDisk, ImagingError> {
    plan_inner(dev, source, None, false)
}

/// [`plan_backup_without_files`] with LUKS partitions read through `luks` (a
/// Clonezilla image's opened volumes: foreign/clonezilla/device_luks.rs).
pub fn plan_backup_without_files_unlocked(
    dev: &dyn BlockDevice,
    source: SourceInfo,
    luks: Option<&mut LuksBackup>,
) -> Result<PlannedDisk, ImagingError> {
    plan_inner(dev, source, luks, false)
}

fn plan_inner(
    dev: &dyn BlockDevice,
    source: SourceInfo,
    mut luks: Option<&mut LuksBackup>,
    with_files: bool,
) -> Result<PlannedDisk, ImagingError> {
    let runs = |d: &dyn BlockDevice, kind, map: &UsedMap| {
        if with_files {
            file_runs(d, kind, map)
        } else {
            Default::default()
        }
    };
    let layout = read_layout(dev)?;
    let ss = u64::from(layout.sector_size);
    let size = dev.size();
    let mut areas = Vec::new();
    let mut findings = Vec::new();
    let mut warnings = layout.warnings.clone();
    let mut plaintext = Vec::new();

    if layout.kind == TableKind::None {
        let info = probe(dev);
        let kind = info.as_ref().map_or(FsKind::Unknown, |i| i.kind);
        // A LUKS volume as a whole (a saved partition, a Clonezilla saveparts image's
        // LUKS partition): its header and plaintext areas, as for a partition.
        if let (FsKind::Luks, Some(lb)) = (kind, luks.as_deref_mut().filter(|l| l.handles(0))) {
            let got = lb.plan_partition(dev, None, info, WHOLE_FS_AREA, 0, size)?;
            // Not the layout reader's warnings: a missing or unreadable table is what a
            // LUKS volume is, and its backup GPT would lie in the never-saved ciphertext.
            return Ok(PlannedDisk {
                plan: BackupPlan {
                    source,
                    areas: got.areas,
                },
                layout,
                findings: got.findings,
                warnings: got.warnings,
                plaintext: vec![got.plaintext],
            });
        }
        let map = map_filesystem(dev, kind);
        let files = runs(dev, kind, &map);
        findings.push(finding(WHOLE_FS_AREA, None, 0, size, &info, &map));
        warnings.extend(
            map.warnings
                .iter()
                .chain(&files.warnings)
                .map(|w| format!("whole disk: {w}")),
        );
        areas.push(PlannedArea {
            name: WHOLE_FS_AREA.into(),
            kind: AreaKind::Partition,
            offset: 0,
            len: size,
            extents: map.extents.clone(),
            meta: meta_value(&PartitionMeta::new(None, info, map))?,
            file_runs: files.runs,
        });
        return Ok(PlannedDisk {
            plan: BackupPlan { source, areas },
            layout,
            findings,
            warnings,
            plaintext: vec![],
        });
    }

    let first_start = layout
        .partitions
        .iter()
        .map(|p| p.start_lba.get().saturating_mul(ss))
        .min()
        .unwrap_or_else(|| size.min(1 << 20));
    let mut head = first_start.min(size);
    if head > MAX_HEAD {
        warnings.push(format!(
            "the first partition starts at byte {head}; only the first {MAX_HEAD} bytes before it are imaged"
        ));
        head = MAX_HEAD;
    }
    areas.push(PlannedArea {
        name: HEAD_AREA.into(),
        kind: AreaKind::TableRaw,
        offset: 0,
        len: head,
        extents: whole(head),
        meta: meta_value(&TableMeta {
            version: META_VERSION,
            layout: layout.clone(),
        })?,
        file_runs: Vec::new(),
    });

    for p in &layout.partitions {
        if let Some(ebr) = p.ebr_lba {
            let off = ebr.get().saturating_mul(ss);
            if off.saturating_add(ss) <= size && off >= head {
                areas.push(PlannedArea {
                    name: format!("ebr-{}", p.number),
                    kind: AreaKind::TableRaw,
                    offset: off,
                    len: ss,
                    extents: whole(ss),
                    meta: serde_json::Value::Null,
                    file_runs: Vec::new(),
                });
            }
        }
    }

    if let Some(g) = &layout.gpt {
        let start = g.last_usable_lba.get().saturating_add(1).saturating_mul(ss);
        if start < size {
            areas.push(PlannedArea {
                name: "gpt-backup".into(),
                kind: AreaKind::TableRaw,
                offset: start,
                len: size - start,
                extents: whole(size - start),
                meta: serde_json::Value::Null,
                file_runs: Vec::new(),
            });
        }
    }

    for p in &layout.partitions {
        if p.ptype.is_mbr_extended() {
            continue;
        }
        let Some((offset, len)) = p.byte_range(layout.sector_size) else {
            warnings.push(format!(
                "partition {}: its range overflows; skipped",
                p.number
            ));
            continue;
        };
        let win = Window::new(dev, offset, len)?;
        let info = probe(&win);
        let kind = info.as_ref().map_or(FsKind::Unknown, |i| i.kind);
        let name = format!("p{}", p.number);
        if let (FsKind::Luks, Some(lb)) = (kind, luks.as_deref_mut().filter(|l| l.handles(offset)))
        {
            let got = lb.plan_partition(&win, Some(p.clone()), info, &name, offset, len)?;
            areas.extend(got.areas);
            findings.extend(got.findings);
            warnings.extend(got.warnings);
            plaintext.push(got.plaintext);
            continue;
        }
        let map = map_filesystem(&win, kind);
        let files = runs(&win, kind, &map);
        warnings.extend(
            map.warnings
                .iter()
                .chain(&files.warnings)
                .map(|w| format!("partition {}: {w}", p.number)),
        );
        findings.push(finding(&name, Some(p.number), offset, len, &info, &map));
        let extents = map.extents.clone();
        let mut meta = PartitionMeta::new(Some(p.clone()), info, map);
        if let (TableKind::Mbr, FsKind::Ntfs, Some(sig)) =
            (layout.kind, kind, layout.disk_signature)
        {
            let part: Arc<dyn BlockDevice + '_> = Arc::new(Window::new(dev, offset, len)?);
            match read_windows_boot(part, sig) {
                Ok(found) => {
                    if let Some(why) = found.as_ref().and_then(|w| w.unreadable.as_ref()) {
                        warnings.push(format!(
                            "partition {}: its Windows boot store (\\Boot\\BCD) could not be read ({why}); the partition keeps its size, but a restore cannot rewrite the BCD if a Windows partition has to move",
                            p.number
                        ));
                    }
                    meta.windows_boot = found;
                }
                Err(e) => warnings.push(format!(
                    "partition {}: Windows boot store not read ({e}); a restore that moves Windows partitions may not boot",
                    p.number
                )),
            }
        }
        areas.push(PlannedArea {
            name,
            kind: AreaKind::Partition,
            offset,
            len,
            extents,
            meta: meta_value(&meta)?,
            file_runs: files.runs,
        });
    }
    Ok(PlannedDisk {
        plan: BackupPlan { source, areas },
        layout,
        findings,
        warnings,
        plaintext,
    })
}

fn finding(
    area: &str,
    number: Option<u32>,
    offset: u64,
    size: u64,
    info: &Option<crate::probe::FsInfo>,
    map: &UsedMap,
) -> PartitionFinding {
    PartitionFinding {
        area: area.into(),
        number,
        offset,
        size,
        filesystem: if map.raw {
            match map.raw_reason.as_deref() {
                // A locked LUKS volume's reason already says "imaged raw".
                Some(r) if r.contains("imaged raw") => r.to_string(),
                r => format!("raw ({})", r.unwrap_or("not understood")),
            }
        } else {
            info.as_ref()
                .map_or("unknown".into(), |i| i.kind.to_string())
        },
        label: info.as_ref().and_then(|i| i.label.clone()),
        used_bytes: map.used_bytes,
        copy_bytes: map.copy_bytes(),
        raw: map.raw,
        warnings: map.warnings.clone(),
    }
}

impl PlannedDisk {
    /// The manifest this plan's backup would have, without its chunks: enough for
    /// `plan_restore` to show a disk-to-disk clone's layout before anything is read
    /// beyond the metadata.
    pub fn preview_manifest(&self, name: &str) -> crate::repo::Manifest {
        crate::repo::Manifest {
            version: 1,
            name: name.to_string(),
            created_unix: 0,
            source: self.plan.source.clone(),
            chunk_size: crate::repo::DEFAULT_CHUNK_SIZE,
            areas: self
                .plan
                .areas
                .iter()
                .map(|a| crate::repo::AreaManifest {
                    name: a.name.clone(),
                    kind: a.kind,
                    offset: a.offset,
                    len: a.len,
                    extents: a.extents.clone(),
                    meta: a.meta.clone(),
                    chunks: Vec::new(),
                    unreadable: Vec::new(),
                    damage: None,
                })
                .collect(),
            stats: Default::default(),
            root: String::new(),
        }
    }
}

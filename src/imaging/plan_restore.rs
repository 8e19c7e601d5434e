//! Planning a restore without writing: read the image's layout, ask the planner for
//! the target's layout, and build the partition table the target will get. The CLI's
//! `--dry-run` and the TUI's plan screen show exactly this.

use super::luks_restore::luks_min;
use super::meta::{partition_meta, table_meta, PartitionMeta, WHOLE_FS_AREA};
use super::ImagingError;
use crate::plan::{self, LayoutMode, PartIn, Plan, PlanInput, Role, SizeRequest, TableFlavour};
use crate::probe::FsKind;
use crate::repo::{AreaKind, Manifest};
use crate::resize::{can_grow, can_shrink, fat32_min_size, BTRFS_MIN_RESIZE};
use crate::table::{DiskLayout, PartType, TableKind};
use crate::units::Lba;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct RestorePlanOptions {
    pub mode: LayoutMode,
    pub sizes: BTreeMap<u32, SizeRequest>,
}

/// Where one image area goes and what happens to it.
#[derive(Clone, Debug)]
pub struct PartTarget {
    pub area: String,
    pub meta: PartitionMeta,
    pub kind: FsKind,
    pub old_offset: u64,
    pub old_size: u64,
    pub new_offset: u64,
    pub new_size: u64,
    /// A new filesystem with the target's sector size, the image's files copied in.
    pub recreate: bool,
}

impl PartTarget {
    pub fn shrinks(&self) -> bool {
        !self.recreate && self.new_size < self.old_size
    }
    pub fn grows(&self) -> bool {
        !self.recreate && self.new_size > self.old_size && can_grow(self.kind)
    }
}

#[derive(Clone, Debug)]
pub struct DiskRestorePlan {
    pub image: String,
    pub source_layout: Option<DiskLayout>,
    /// The table the target gets (None: a whole-disk filesystem).
    pub target_layout: Option<DiskLayout>,
    pub plan: Plan,
    pub parts: Vec<PartTarget>,
    pub target_size: u64,
    pub target_sector: u32,
}

impl DiskRestorePlan {
    /// What the table's "recreate" means for each such partition, and why a btrfs in a
    /// larger partition keeps its size, shown under the table.
    pub fn notes(&self) -> Vec<String> {
        let from = self.source_layout.as_ref().map_or(512, |l| l.sector_size);
        let kept_btrfs = self
            .parts
            .iter()
            .filter(|p| p.kind == FsKind::Btrfs && p.grows() && p.new_size < BTRFS_MIN_RESIZE);
        kept_btrfs
            .map(|p| {
                format!(
                    "partition {} (btrfs): keeps its {} in a {} partition (the kernel resizes \
                     btrfs only to {} or more)",
                    p.meta.partition.as_ref().map_or(0, |q| q.number),
                    plan::mib(p.old_size),
                    plan::mib(p.new_size),
                    plan::mib(BTRFS_MIN_RESIZE)
                )
            })
            .chain(self.parts.iter().filter(|p| p.recreate).map(|p| {
                let number = p.meta.partition.as_ref().map_or(0, |q| q.number);
                if p.kind == FsKind::Xfs {
                    return format!(
                        "partition {number} (XFS): XFS cannot shrink, so it is re-created at {} \
                         with the same UUID, label and features, and its files are copied with \
                         xfsdump | xfsrestore",
                        plan::mib(p.new_size)
                    );
                }
                let grown = if p.new_size > p.old_size {
                    format!(
                        "; it grows from {} to {}, FAT32's minimum with these sectors",
                        plan::mib(p.old_size),
                        plan::mib(p.new_size)
                    )
                } else {
                    String::new()
                };
                format!(
                    "partition {number} (ESP): a FAT keeps its {from}-byte sectors, so it is \
                     re-created as FAT32 with {}-byte sectors (same volume ID and label) and \
                     its files are copied{grown}",
                    self.target_sector
                )
            }))
            .chain(super::repair_bcd::layout_notes(self))
            .chain(super::plan_lvm::notes(self))
            .collect()
    }
}

/// Room a filesystem keeps beyond its used blocks when the planner estimates its
/// minimum: the resize tools want slack for metadata they add while moving blocks.
/// The real minimum is asked of resize2fs/ntfsresize before the target is touched,
/// so the fixed part of the slack is kept small (8 MiB, not 32): with 32 MiB per
/// filesystem a 160 MiB disk holding 34 MiB of data in three filesystems was refused
/// on a 96 MiB target although resize2fs -P / ntfsresize put it at 37 MiB.
pub(super) fn estimated_min(meta: &PartitionMeta, size: u64) -> u64 {
    let used = meta.map.used_bytes;
    let floor = match fs_kind(meta) {
        // The kernel resizes btrfs only to 256 MiB or more (resize/btrfs.rs).
        FsKind::Btrfs => BTRFS_MIN_RESIZE,
        _ => 0,
    };
    used.saturating_add(used / 10)
        .saturating_add(8 << 20)
        .max(floor)
        .min(size)
}

/// mkfs.xfs refuses data sections under 300 MiB.
pub(super) const XFS_MIN_BYTES: u64 = 300 << 20;

/// The least room an XFS is re-created in: its used blocks with the usual slack, at
/// least what mkfs.xfs accepts, and never more than it had (then it is copied as is).
fn xfs_recreate_min(meta: &PartitionMeta, size: u64) -> u64 {
    estimated_min(meta, size).max(XFS_MIN_BYTES).min(size)
}

pub(super) fn fs_kind(meta: &PartitionMeta) -> FsKind {
    if meta.map.raw {
        return FsKind::Unknown;
    }
    meta.filesystem.as_ref().map_or(FsKind::Unknown, |f| f.kind)
}

/// The largest target sector size a filesystem can live on: NTFS and FAT keep
/// their sector size in the boot sector, ext its block size.
fn max_sector(kind: FsKind, meta: &PartitionMeta, source_sector: u32) -> Option<u32> {
    match kind {
        FsKind::Ntfs | FsKind::Fat12 | FsKind::Fat16 | FsKind::Fat32 => Some(source_sector),
        k if k.is_ext() => u32::try_from(meta.map.block_size).ok(),
        // exFAT and XFS keep their own sector size, at least the source disk's (mkfs
        // made it so), and often 4096 on a 512e disk: that is their limit. Images made
        // before the map recorded it fall back to the source disk's sector.
        FsKind::Exfat | FsKind::Xfs => Some(meta.map.fs_sector.unwrap_or(source_sector)),
        _ => None,
    }
}

/// An ESP is the one filesystem that cannot follow the target's larger sectors and
/// can still be rebuilt: the firmware needs only its files, so it is re-created as
/// FAT32 with the target's sector size (docs/RESIZE.md). NTFS and FAT data
/// partitions stay refused: Windows' BCD, volume serials and the users' data live in
/// the filesystem itself.
fn recreate_min(kind: FsKind, role: Role, target_sector: u32) -> Option<u64> {
    (role == Role::Esp && kind.is_fat()).then(|| fat32_min_size(target_sector))
}

pub fn plan_restore(
    m: &Manifest,
    target_size: u64,
    target_sector: u32,
    opts: &RestorePlanOptions,
) -> Result<DiskRestorePlan, ImagingError> {
    let table = table_meta(m)?;
    let mut metas = Vec::new();
    for a in m.areas.iter().filter(|a| a.kind == AreaKind::Partition) {
        metas.push((a, partition_meta(m, a)?));
    }
    let Some(table) = table else {
        return plan_whole_fs(m, metas, target_size, target_sector, opts);
    };
    let src = table.layout;
    let flavour = match (&src.kind, &src.gpt) {
        (TableKind::Gpt, Some(g)) => TableFlavour::Gpt {
            entries_bytes: u64::from(g.num_entries.max(128)) * u64::from(g.entry_size),
        },
        (TableKind::Gpt, None) => TableFlavour::Gpt {
            entries_bytes: 128 * 128,
        },
        _ => TableFlavour::Mbr,
    };
    let ss = u64::from(src.sector_size);
    // Starts that Windows' BCD records (MBR disks): those partitions keep their start.
    let bcd_starts: Vec<u64> = metas
        .iter()
        .filter_map(|(_, pm)| pm.windows_boot.as_ref())
        .flat_map(|w| w.bcd.iter().map(|r| r.offset))
        .collect();
    let mut inputs = Vec::new();
    for p in &src.partitions {
        let start = p.start_lba.get().saturating_mul(ss);
        let meta = metas
            .iter()
            .find(|(_, pm)| pm.partition.as_ref().map(|q| q.number) == Some(p.number));
        let role = match &p.ptype {
            _ if meta
                .and_then(|(_, pm)| pm.windows_boot.as_ref())
                .is_some_and(|w| !w.has_windows_dir) =>
            {
                Role::WindowsBoot
            }
            PartType::Gpt(t) => Role::from_gpt_type(t),
            PartType::Mbr(t) => Role::from_mbr_type(*t),
        };
        let (fs, used, min, grow, maxs, recreate) = match meta {
            Some((_, pm)) if pm.luks.is_some() => {
                let (min, grow) = luks_min(pm, &metas, p.size_bytes);
                (pm.fs_name(), pm.map.used_bytes, min, grow, None, None)
            }
            Some((_, pm)) => {
                let kind = fs_kind(pm);
                // An LVM PV resizes through its LVs (plan_lvm.rs).
                let lvm_min = super::plan_lvm::pv_min(pm);
                (
                    pm.fs_name(),
                    pm.map.used_bytes,
                    if let Some(min) = lvm_min {
                        min.min(p.size_bytes)
                    } else if can_shrink(kind) {
                        estimated_min(pm, p.size_bytes)
                    } else if kind == FsKind::Xfs {
                        xfs_recreate_min(pm, p.size_bytes)
                    } else {
                        p.size_bytes
                    },
                    lvm_min.is_some() || can_grow(kind),
                    max_sector(kind, pm, src.sector_size),
                    recreate_min(kind, role, target_sector),
                )
            }
            None => ("-".into(), 0, 0, false, None, None),
        };
        inputs.push(PartIn {
            number: p.number,
            start,
            size: p.size_bytes,
            role,
            fs,
            used_bytes: used,
            min_size: min,
            can_grow: grow,
            max_target_sector: maxs,
            recreate_min: recreate,
            logical: p.logical,
            keep_start: bcd_starts.contains(&start),
        });
    }
    let input = PlanInput {
        source_size: src.disk_size,
        source_sector: src.sector_size,
        target_size,
        target_sector,
        table: flavour,
        partitions: inputs,
        mode: opts.mode,
        sizes: opts.sizes.clone(),
    };
    // A too-small target with an XFS on the image: say which partition needs the room.
    let fixed_xfs = metas
        .iter()
        .filter(|(_, pm)| fs_kind(pm) == FsKind::Xfs)
        .find_map(|(a, pm)| Some((pm.partition.as_ref()?.number, xfs_recreate_min(pm, a.len))));
    let lvm_fixed = metas
        .iter()
        .find_map(|(_, pm)| super::plan_lvm::unshrinkable(pm));
    let mut plan = plan::plan(&input).map_err(|e| match (e, fixed_xfs, lvm_fixed) {
        (e @ plan::PlanError::TooSmall { .. }, Some((number, min)), _) => ImagingError::XfsNoRoom {
            source: e,
            number,
            min,
        },
        (
            e @ (plan::PlanError::TooSmall { .. } | plan::PlanError::BelowMinimum { .. }),
            None,
            Some((number, min, lvs)),
        ) => ImagingError::LvmNoRoom {
            source: e,
            number,
            min,
            lvs,
        },
        (e, _, _) => e.into(),
    })?;
    for out in &mut plan.partitions {
        let kind = metas
            .iter()
            .find(|(_, pm)| pm.partition.as_ref().map(|q| q.number) == Some(out.number))
            .map_or(FsKind::Unknown, |(_, pm)| fs_kind(pm));
        // XFS cannot shrink: given less room, it is re-created (recreate_xfs.rs).
        if kind == FsKind::Xfs && out.new_size < out.old_size {
            out.action = plan::Action::Recreate;
        }
        // A partition grown to under 256 MiB keeps its btrfs at its size (the kernel
        // refuses the resize): the table must not promise a grow that will not happen.
        if kind == FsKind::Btrfs
            && out.action == plan::Action::Grow
            && out.new_size < BTRFS_MIN_RESIZE
        {
            out.action = plan::Action::Copy;
        }
    }
    let target_layout = build_layout(&src, &plan, target_size, target_sector)?;
    let mut parts = Vec::new();
    for (a, pm) in metas {
        let Some(number) = pm.partition.as_ref().map(|p| p.number) else {
            continue;
        };
        let Some(out) = plan.get(number) else {
            continue;
        };
        parts.push(PartTarget {
            area: a.name.clone(),
            kind: fs_kind(&pm),
            meta: pm,
            old_offset: a.offset,
            old_size: a.len,
            new_offset: out.new_start,
            new_size: out.new_size,
            recreate: out.action == plan::Action::Recreate,
        });
    }
    Ok(DiskRestorePlan {
        image: m.name.clone(),
        source_layout: Some(src),
        target_layout: Some(target_layout),
        plan,
        parts,
        target_size,
        target_sector,
    })
}

/// The partition table for the target: the source's, with the planned positions in
/// the target's sector units, EBRs kept at their distance in front of each logical
/// partition, and the extended container rebuilt around the logical ones.
fn build_layout(
    src: &DiskLayout,
    plan: &Plan,
    target_size: u64,
    target_sector: u32,
) -> Result<DiskLayout, ImagingError> {
    let ts = u64::from(target_sector);
    let ss = u64::from(src.sector_size);
    let mut l = src.clone();
    l.sector_size = target_sector;
    l.disk_size = target_size;
    l.warnings.clear();
    if let Some(g) = &mut l.gpt {
        let first_bytes = g.first_usable_lba.get().saturating_mul(ss);
        g.first_usable_lba = Lba::new(first_bytes.div_ceil(ts));
        g.from_backup = false;
    }
    for p in &mut l.partitions {
        if p.ptype.is_mbr_extended() {
            continue;
        }
        let Some(out) = plan.get(p.number) else {
            return Err(ImagingError::Other(format!(
                "partition {} is missing from the plan",
                p.number
            )));
        };
        let old_start = p.start_lba.get();
        p.start_lba = Lba::new(out.new_start / ts);
        p.end_lba = Lba::new((out.new_start + out.new_size) / ts - 1);
        p.size_bytes = out.new_size;
        if let Some(ebr) = p.ebr_lba {
            let dist_bytes = old_start
                .saturating_sub(ebr.get())
                .saturating_mul(ss)
                .max(ts);
            let room = plan.alignment.max(ts);
            let dist = dist_bytes.min(room) / ts;
            p.ebr_lba = Some(Lba::new(p.start_lba.get().saturating_sub(dist.max(1))));
        }
    }
    let logicals: Vec<(u64, u64)> = l
        .partitions
        .iter()
        .filter(|p| p.logical)
        .map(|p| {
            (
                p.ebr_lba.map_or(p.start_lba.get(), |e| e.get()),
                p.end_lba.get(),
            )
        })
        .collect();
    if let Some(ext) = l.partitions.iter_mut().find(|p| p.ptype.is_mbr_extended()) {
        let start = logicals.iter().map(|x| x.0).min();
        let end = logicals.iter().map(|x| x.1).max();
        if let (Some(s), Some(e)) = (start, end) {
            ext.start_lba = Lba::new(s);
            ext.end_lba = Lba::new(e);
            ext.size_bytes = (e - s + 1) * ts;
        }
    }
    Ok(l)
}

fn plan_whole_fs(
    m: &Manifest,
    metas: Vec<(&crate::repo::AreaManifest, PartitionMeta)>,
    target_size: u64,
    target_sector: u32,
    opts: &RestorePlanOptions,
) -> Result<DiskRestorePlan, ImagingError> {
    let Some((a, pm)) = metas.iter().find(|(a, _)| a.name == WHOLE_FS_AREA).cloned() else {
        return Err(ImagingError::Meta {
            image: m.name.clone(),
            area: "-".into(),
            what: "the image has neither a partition table nor a whole-disk filesystem".into(),
        });
    };
    let kind = fs_kind(&pm);
    // A LUKS volume as a whole (luks_backup.rs): its header area here, its plaintext
    // area restored through the opened volume (luks_restore.rs), sized as a LUKS
    // partition is.
    if pm.luks.is_some() {
        let (min, grow) = luks_min(&pm, &metas, a.len);
        let new_size = match opts.mode {
            LayoutMode::Proportional if grow => {
                (target_size / 4096 * 4096).max(a.len).min(target_size)
            }
            _ => a.len.min(target_size),
        };
        let keep_short = opts.mode == LayoutMode::Keep && new_size < a.len;
        if new_size < min || keep_short {
            let needed = if keep_short { a.len } else { min };
            return Err(crate::plan::PlanError::TooSmall {
                needed,
                available: target_size,
                missing: needed.saturating_sub(target_size),
            }
            .into());
        }
        return Ok(whole_fs_plan(
            m,
            a,
            pm,
            kind,
            new_size,
            target_size,
            target_sector,
        ));
    }
    // A table-less PV resizes through its LVs, as a PV partition does (plan_lvm.rs).
    if let Some(size) = super::plan_lvm::whole_pv_size(&pm, a.len, target_size, opts.mode)? {
        return Ok(whole_fs_plan(
            m,
            a,
            pm,
            kind,
            size,
            target_size,
            target_sector,
        ));
    }
    let min = if can_shrink(kind) {
        estimated_min(&pm, a.len)
    } else {
        a.len
    };
    let new_size = match opts.mode {
        LayoutMode::Keep => a.len,
        // Whole 4 KiB units, but never less than the source when the target holds it:
        // rounding alone must not shrink a filesystem onto a same-size disk.
        LayoutMode::Proportional if can_grow(kind) => {
            (target_size / 4096 * 4096).max(a.len).min(target_size)
        }
        LayoutMode::Proportional => a.len,
    };
    if new_size < min || new_size > target_size {
        let needed = min.max(a.len.min(new_size));
        return Err(crate::plan::PlanError::TooSmall {
            needed,
            available: target_size,
            missing: needed.saturating_sub(target_size),
        }
        .into());
    }
    Ok(whole_fs_plan(
        m,
        a,
        pm,
        kind,
        new_size,
        target_size,
        target_sector,
    ))
}

/// The plan of a table-less image: its one area at byte 0, `new_size` long.
fn whole_fs_plan(
    m: &Manifest,
    a: &crate::repo::AreaManifest,
    pm: PartitionMeta,
    kind: FsKind,
    new_size: u64,
    target_size: u64,
    target_sector: u32,
) -> DiskRestorePlan {
    let out = crate::plan::PartOut {
        number: 0,
        fs: pm.fs_name(),
        role: Role::Data,
        used_bytes: pm.map.used_bytes,
        old_start: 0,
        old_size: a.len,
        new_start: 0,
        new_size,
        action: match new_size.cmp(&a.len) {
            std::cmp::Ordering::Greater => crate::plan::Action::Grow,
            std::cmp::Ordering::Less => crate::plan::Action::Shrink,
            _ => crate::plan::Action::Copy,
        },
    };
    DiskRestorePlan {
        image: m.name.clone(),
        source_layout: None,
        target_layout: None,
        plan: Plan {
            alignment: 4096,
            target_size,
            target_sector,
            partitions: vec![out],
        },
        parts: vec![PartTarget {
            area: a.name.clone(),
            kind,
            meta: pm,
            old_offset: 0,
            old_size: a.len,
            new_offset: 0,
            new_size,
            recreate: false,
        }],
        target_size,
        target_sector,
    }
}

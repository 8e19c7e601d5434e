//! The planner's view of an LVM2 PV partition: resizable when its VG lives on it
//! alone and every LV lies in linear or striped segments on it. Its least size is
//! `pe_start` plus each LV's least size in whole extents: the filesystem's estimated
//! minimum (the used blocks with the same slack as a partition's, checked against
//! the resize tool's own minimum before anything is written) for LVs that can
//! shrink, the whole LV otherwise (swap, raw, hidden, XFS). The change in size is
//! shared among the LVs by `plan::lvm::share`; the restore (restore_lvm.rs) asks it
//! again with the same input, so the plan's notes show what is done.

use super::meta::PartitionMeta;
use super::plan_restore::{DiskRestorePlan, PartTarget, XFS_MIN_BYTES};
use super::ImagingError;
use crate::plan::lvm::{self, LvIn};
use crate::plan::mib;
use crate::plan::LayoutMode;
use crate::probe::FsKind;
use crate::resize::{can_grow, can_shrink, BTRFS_MIN_RESIZE};
use crate::usedmap::{LvLayout, LvmLayout};

/// The filesystem kind the image found in `lv` (Unknown for none or raw).
pub(super) fn lv_kind(lv: &LvLayout) -> FsKind {
    match (&lv.fs, &lv.whole) {
        (Some(fs), None) => {
            serde_json::from_value(serde_json::Value::String(fs.clone())).unwrap_or(FsKind::Unknown)
        }
        _ => FsKind::Unknown,
    }
}

/// The layout of a PV the restore can lay out anew, or None (it then keeps its size).
pub(super) fn resizable(pm: &PartitionMeta) -> Option<&LvmLayout> {
    let l = pm.map.lvm.as_ref()?;
    (l.pv_count == 1 && l.pe_start > 0 && l.extent_bytes > 0 && l.lvs.iter().all(|v| v.movable))
        .then_some(l)
}

/// Each LV as `plan::lvm` sees it.
pub(super) fn lv_inputs(l: &LvmLayout) -> Vec<LvIn> {
    let ext = l.extent_bytes.max(1);
    l.lvs
        .iter()
        .map(|v| {
            let kind = lv_kind(v);
            let extents = v.size / ext;
            let fixed = !v.visible || kind == FsKind::Swap;
            // XFS cannot shrink: onto less room it is re-created (recreate_xfs.rs), at
            // no less than mkfs.xfs accepts.
            let min_bytes = if !fixed && (can_shrink(kind) || kind == FsKind::Xfs) {
                let floor = match kind {
                    FsKind::Btrfs => BTRFS_MIN_RESIZE,
                    FsKind::Xfs => XFS_MIN_BYTES,
                    _ => 0,
                };
                v.copied
                    .saturating_add(v.copied / 10)
                    .saturating_add(8 << 20)
                    .max(floor)
            } else {
                v.size
            };
            LvIn {
                name: v.name.clone(),
                extents,
                min_extents: min_bytes.div_ceil(ext).min(extents),
                can_grow: !fixed && can_grow(kind),
                visible: v.visible,
            }
        })
        .collect()
}

/// The least bytes the PV partition can be given.
pub(super) fn pv_min(pm: &PartitionMeta) -> Option<u64> {
    let l = resizable(pm)?;
    lvm::min_extents(&lv_inputs(l))
        .checked_mul(l.extent_bytes)?
        .checked_add(l.pe_start)
}

/// For a PV holding filesystems that cannot shrink nor be re-created (FAT, exFAT): its
/// partition number, its least size and those LVs, so a refusal
/// can name them.
pub(super) fn unshrinkable(pm: &PartitionMeta) -> Option<(u32, u64, String)> {
    let l = resizable(pm)?;
    let names: Vec<String> = l
        .lvs
        .iter()
        .filter(|v| v.visible)
        .filter(|v| {
            let k = lv_kind(v);
            k != FsKind::Unknown && k != FsKind::Swap && k != FsKind::Xfs && !can_shrink(k)
        })
        .map(|v| format!("{} ({})", v.name, lv_kind(v)))
        .collect();
    if names.is_empty() {
        return None;
    }
    Some((pm.partition.as_ref()?.number, pv_min(pm)?, names.join(", ")))
}

/// The size a table-less PV (a disk that is a PV as a whole) is restored at in
/// Proportional mode: the target's whole extents, never less than the source's size on
/// a target that holds it. None when it is not resizable or keeps its size (Keep mode):
/// it is then copied at its size. Refused, naming each LV's least size, when even the
/// LVs' minimums do not fit.
pub(super) fn whole_pv_size(
    pm: &PartitionMeta,
    old: u64,
    target: u64,
    mode: LayoutMode,
) -> Result<Option<u64>, ImagingError> {
    let (Some(l), Some(min), LayoutMode::Proportional) = (resizable(pm), pv_min(pm), mode) else {
        return Ok(None);
    };
    let whole = pe_count(l, target)
        .checked_mul(l.extent_bytes)
        .and_then(|b| b.checked_add(l.pe_start))
        .unwrap_or(0);
    let size = if target >= old {
        whole.max(old).min(target)
    } else {
        whole
    };
    if size < min || pe_count(l, target) < lvm::min_extents(&lv_inputs(l)) {
        let each: Vec<String> = lv_inputs(l)
            .iter()
            .map(|v| format!("{} {}", v.name, mib(v.min_extents * l.extent_bytes)))
            .collect();
        return Err(ImagingError::WholePvNoRoom {
            vg: l.vg_name.clone(),
            min,
            target,
            lvs: each.join(", "),
        });
    }
    Ok(Some(size))
}

/// Extents a PV of `bytes` holds.
pub(super) fn pe_count(l: &LvmLayout, bytes: u64) -> u64 {
    bytes.saturating_sub(l.pe_start) / l.extent_bytes.max(1)
}

/// Whether the restore lays this PV out anew (a new size, or new ids asked for).
pub fn relaid(p: &PartTarget, new_ids: bool) -> bool {
    resizable(&p.meta).is_some() && (new_ids || p.new_size != p.old_size)
}

/// One line per resized PV: each LV's old and new size.
pub(super) fn notes(plan: &DiskRestorePlan) -> Vec<String> {
    let mut out = Vec::new();
    for p in plan.parts.iter().filter(|p| p.new_size != p.old_size) {
        let Some(l) = resizable(&p.meta) else {
            continue;
        };
        let what = p
            .meta
            .partition
            .as_ref()
            .map_or("the disk".to_string(), |q| {
                format!("partition {}", q.number)
            });
        let lvs = lv_inputs(l);
        let Some(new) = lvm::share(&lvs, pe_count(l, p.new_size)) else {
            continue;
        };
        let root = lvm::root(&lvs);
        let each: Vec<String> = lvs
            .iter()
            .zip(&new)
            .zip(&l.lvs)
            .enumerate()
            .map(|(i, ((v, &n), info))| {
                let (old, now) = (v.extents * l.extent_bytes, n * l.extent_bytes);
                let tag = if Some(i) == root { " (root LV)" } else { "" };
                let xfs = lv_kind(info) == FsKind::Xfs && now < old;
                let how = if xfs { " (XFS re-created)" } else { "" };
                if old == now {
                    format!("{}{tag} keeps {}", v.name, mib(old))
                } else {
                    format!("{}{tag} {} → {}{how}", v.name, mib(old), mib(now))
                }
            })
            .collect();
        out.push(format!(
            "{what} (LVM2 PV of VG {}): its LVs are laid out anew as linear \
             segments: {}",
            l.vg_name,
            each.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn lv(name: &str, fs: &str, size: u64, copied: u64, visible: bool) -> LvLayout {
        LvLayout {
            name: name.into(),
            id: format!("{name}-id"),
            tags: vec![],
            visible,
            size,
            fs: Some(fs.into()),
            label: None,
            uuid: None,
            copied,
            movable: true,
            whole: None,
        }
    }

    fn layout(lvs: Vec<LvLayout>) -> LvmLayout {
        LvmLayout {
            vg_name: "vg".into(),
            vg_id: "vgid".into(),
            seqno: 3,
            extent_bytes: 4 * MIB,
            pe_start: MIB,
            pv_key: "pv0".into(),
            pv_id: "pvid".into(),
            pv_count: 1,
            lvs,
        }
    }

    #[test]
    fn each_lv_its_least_size_in_whole_extents() {
        let l = layout(vec![
            lv("root", "ext4", 28 * MIB, 6 * MIB, true),
            lv("swap", "swap", 8 * MIB, 4096, true),
            lv("xfs", "xfs", 40 * MIB, MIB, true),
            lv("pool_tdata", "ext4", 4 * MIB, MIB, false),
        ]);
        let ins = lv_inputs(&l);
        // 6 MiB used + 10% + 8 MiB = 14.6 MiB: 4 extents.
        assert_eq!(ins[0].min_extents, 4);
        assert!(ins[0].can_grow);
        assert_eq!((ins[1].min_extents, ins[1].can_grow), (2, false));
        assert_eq!((ins[2].min_extents, ins[2].can_grow), (10, true));
        assert_eq!((ins[3].min_extents, ins[3].can_grow), (1, false));
        assert_eq!(
            lvm::root(&ins),
            Some(2),
            "the XFS LV is the largest resizable"
        );
        assert_eq!(lvm::min_extents(&ins), 17);
    }

    #[test]
    fn a_raw_lv_is_unknown_and_keeps_its_size() {
        let mut raw = lv("raw", "ext4", 8 * MIB, 8 * MIB, true);
        raw.whole = Some("not understood".into());
        assert_eq!(lv_kind(&raw), FsKind::Unknown);
        let ins = lv_inputs(&layout(vec![raw]));
        assert_eq!((ins[0].min_extents, ins[0].can_grow), (2, false));
        assert_eq!(lvm::root(&ins), None);
    }
}

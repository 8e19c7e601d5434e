//! Restoring an LVM2 PV at another size, or with new ids, entirely off the target:
//! the PV's area is restored into a sparse scratch file, each LV is read through its
//! segments (`Mapped`) into a scratch file of its own and resized there by its
//! filesystem's tool (an XFS given less room is re-created, as recreate_xfs.rs does), lvm2 writes the label and the edited VG metadata (same names,
//! ids unless `--new-ids`, tags and extent size, `seqno` one higher, every LV one
//! linear segment) onto a second scratch file of the new PV's size, and the LVs are
//! laid onto their new extents. Only the result, judged by ironclone's own LVM
//! decoder (`map_lvm`), goes to the target, so a filesystem that does not fit or a
//! tool that fails stops the restore before its first write.
//!
//! The planner (plan_lvm.rs) and this module share the LVs' sizes through
//! `plan::lvm::share` on the same input; the resize tool's own minimum is asked
//! here before anything is resized.

use super::plan_lvm::{lv_inputs, lv_kind, pe_count, resizable};
use super::plan_restore::{DiskRestorePlan, PartTarget};
use super::recreate_xfs::recreate_into;
use super::restore_disk::DiskRestoreOptions;
use super::staged::Staged;
use super::ImagingError;
use crate::device::{open_path, Access, BlockDevice, DeviceError, Layout, Mapped, Piece};
use crate::ondisk::lvm::relayout::{new_id, relayout, LvPlace, NewPv};
use crate::ondisk::lvm::{read_pv_text, LogicalVolume, SegmentKind};
use crate::plan::{lvm, mib};
use crate::probe::FsKind;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::resize::{self, LoopDevice, ToolError};
use crate::usedmap::{
    map_filesystem, map_lvm, mark_tails_unzeroed, ByteExtent, ExtError, LvLayout,
};
use thiserror::Error;

const SECTOR: u64 = 512;

/// What went wrong with one LV on its way to the new PV.
#[derive(Debug, Error)]
pub enum LvStageError {
    #[error("segment at LV extent {start}: {what}")]
    Segment { start: u64, what: &'static str },
    #[error("segment at LV extent {start} has extents on another PV ({pv})")]
    OtherPv { start: u64, pv: String },
    #[error(
        "its {kind} filesystem needs at least {min} bytes (said its resize tool) but the plan \
         gives it {planned}"
    )]
    TooSmall {
        kind: FsKind,
        min: u64,
        planned: u64,
    },
    #[error("after resizing, its {kind} filesystem could not be mapped: {why}")]
    Unmapped { kind: FsKind, why: String },
    #[error("copying {offset} + {to} overflows")]
    Overflow { offset: u64, to: u64 },
    #[error("scratch file {path}: {source}")]
    Scratch {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    ExtTails(#[from] ExtError),
    /// Boxed: an ImagingError holds this one.
    #[error(transparent)]
    Staging(Box<ImagingError>),
}

impl From<ImagingError> for LvStageError {
    fn from(e: ImagingError) -> Self {
        LvStageError::Staging(Box::new(e))
    }
}

/// The new PV in a scratch file, its byte ranges to copy, and the report's lines.
pub(super) fn stage_lvm(
    repo: &Repository,
    plan: &DiskRestorePlan,
    p: &PartTarget,
    opts: &DiskRestoreOptions,
    progress: &dyn Progress,
) -> Result<(Staged, Vec<String>), ImagingError> {
    let number = p.meta.partition.as_ref().map_or(0, |q| q.number);
    let fail = |what: String| ImagingError::Lvm { number, what };
    let layout = resizable(&p.meta)
        .ok_or_else(|| fail("the image does not describe a PV that can be laid out anew".into()))?;
    let tag = format!("{}-{}", std::process::id(), p.area);
    let old = Staged::create(
        &opts.scratch_dir,
        &format!("ironclone-pv-{tag}.img"),
        p.old_size,
    )?;
    old.restore_area(repo, &plan.image, &p.area, progress)?;
    let src = open_path(&old.path, Access::ReadOnly)?;
    let (label, vg, text) = read_pv_text(&src)?;
    let pv = vg
        .pv_by_id(&label.pv_uuid)
        .ok_or_else(|| fail(format!("PV {} is not in its own metadata", label.pv_uuid)))?;
    let ext = layout.extent_bytes;
    let names_match = vg.lvs.len() == layout.lvs.len()
        && vg
            .lvs
            .iter()
            .zip(&layout.lvs)
            .all(|(a, b)| a.name == b.name);
    if vg.extent_size.checked_mul(SECTOR) != Some(ext)
        || pv.pe_start.checked_mul(SECTOR) != Some(layout.pe_start)
        || !names_match
    {
        return Err(fail(
            "the restored PV's metadata differs from the image's description of it".into(),
        ));
    }
    let lvs = lv_inputs(layout);
    let avail = pe_count(layout, p.new_size);
    let new = lvm::share(&lvs, avail).ok_or_else(|| {
        fail(format!(
            "its LVs need at least {} extents, the {} partition holds {avail}",
            lvm::min_extents(&lvs),
            mib(p.new_size)
        ))
    })?;
    let mut lines = Vec::new();
    let mut places = Vec::new();
    let mut files = Vec::new();
    let mut next = 0u64;
    for ((lv, info), &n) in vg.lvs.iter().zip(&layout.lvs).zip(&new) {
        let new_len = n
            .checked_mul(ext)
            .ok_or_else(|| fail(format!("LV {}: size overflows", lv.name)))?;
        let at = Lv {
            number,
            key: &pv.key,
            pe_start: layout.pe_start,
            ext,
        };
        let (file, line) =
            stage_lv(&src, &at, lv, info, new_len, opts, &tag).map_err(|source| {
                ImagingError::LvmLv {
                    number,
                    lv: lv.name.clone(),
                    source: Box::new(source),
                }
            })?;
        lines.extend(line);
        places.push(LvPlace {
            name: lv.name.clone(),
            first_pe: next,
            extents: n,
        });
        next = next.saturating_add(n);
        files.push(file);
    }
    let pv_id = if opts.new_ids {
        new_id()
    } else {
        label.pv_uuid.clone()
    };
    let vg_id = opts.new_ids.then(new_id);
    let edited = relayout(
        &text,
        &NewPv {
            pv_key: pv.key.clone(),
            // vgcfgrestore commits it one higher: the source's seqno + 1 on the target.
            seqno: vg.seqno,
            dev_size: p.new_size / SECTOR,
            pe_count: avail,
            lvs: places.clone(),
            vg_id: vg_id.clone(),
            pv_id: opts.new_ids.then(|| pv_id.clone()),
        },
    )?;
    let meta = Staged::create(&opts.scratch_dir, &format!("ironclone-vg-{tag}.txt"), 0)?;
    std::fs::write(&meta.path, edited).map_err(|source| ImagingError::Scratch {
        path: meta.path.clone(),
        source,
    })?;
    let mut out = Staged::create(
        &opts.scratch_dir,
        &format!("ironclone-pv-new-{tag}.img"),
        p.new_size,
    )?;
    {
        let lo = LoopDevice::attach(&out.path, 0, p.new_size)?;
        resize::lvm_write_pv(lo.path(), &pv_id, &vg.name, &meta.path)?;
    }
    let dst = open_path(&out.path, Access::ReadWrite)?;
    for (place, file) in places.iter().zip(&files) {
        let at = place
            .first_pe
            .checked_mul(ext)
            .and_then(|o| o.checked_add(layout.pe_start))
            .ok_or_else(|| fail(format!("LV {}: offset overflows", place.name)))?;
        let f = open_path(&file.path, Access::ReadOnly)?;
        copy_ranges(&f, &dst, &file.extents, at).map_err(|source| ImagingError::LvmLv {
            number,
            lv: place.name.clone(),
            source: Box::new(source),
        })?;
    }
    dst.flush()?;
    // Judged by ironclone's own decoder: the label, the metadata lvm2 wrote, and each
    // LV's filesystem where the new segments say it is.
    let map = map_lvm(&dst)?;
    let got = map.lvm.as_ref().map_or(&[][..], |l| l.lvs.as_slice());
    for (want, have) in layout.lvs.iter().zip(got) {
        if lv_kind(want) != FsKind::Unknown && (have.fs != want.fs || have.whole.is_some()) {
            return Err(fail(format!(
                "LV {}: after the new layout its {} filesystem is not found whole ({})",
                want.name,
                want.fs.as_deref().unwrap_or("-"),
                have.whole.as_deref().unwrap_or("found as another kind")
            )));
        }
    }
    out.extents = map.extents;
    let ids = match &vg_id {
        Some(v) => format!("new VG id {v}, new PV id {pv_id}"),
        None => format!("VG id {} and PV id {pv_id} kept", vg.id),
    };
    lines.push(format!(
        "partition {number}: LVM2 VG {} laid out anew in {} ({} of {avail} extents used, \
         seqno {}; {ids})",
        vg.name,
        mib(p.new_size),
        next,
        vg.seqno.saturating_add(1)
    ));
    Ok((out, lines))
}

/// Where this PV's extents are (and its partition's number, for errors).
struct Lv<'a> {
    number: u32,
    key: &'a str,
    pe_start: u64,
    ext: u64,
}

/// How `lv` lies on the PV (linear and striped segments on it alone: `movable`).
fn pieces(at: &Lv, lv: &LogicalVolume) -> Result<Vec<Piece>, LvStageError> {
    let mut out = Vec::new();
    for s in &lv.segments {
        let seg = |what| LvStageError::Segment {
            start: s.start_extent,
            what,
        };
        let SegmentKind::Striped {
            stripe_size,
            stripes,
        } = &s.kind
        else {
            return Err(seg("neither linear nor striped"));
        };
        let n = stripes.len() as u64;
        if n == 0 || s.extent_count % n != 0 {
            return Err(seg("its extents do not split into its stripes"));
        }
        let mut starts = Vec::new();
        for (key, pe) in stripes {
            if key != at.key {
                return Err(LvStageError::OtherPv {
                    start: s.start_extent,
                    pv: key.clone(),
                });
            }
            starts.push(
                pe.checked_mul(at.ext)
                    .and_then(|o| o.checked_add(at.pe_start))
                    .ok_or_else(|| seg("a stripe's offset overflows"))?,
            );
        }
        let layout = match starts.as_slice() {
            [one] => Layout::Linear(*one),
            _ => Layout::Striped {
                stripe: stripe_size
                    .checked_mul(SECTOR)
                    .ok_or_else(|| seg("stripe_size overflows"))?,
                starts,
            },
        };
        out.push(Piece {
            start: s
                .start_extent
                .checked_mul(at.ext)
                .ok_or_else(|| seg("start overflows"))?,
            len: s
                .extent_count
                .checked_mul(at.ext)
                .ok_or_else(|| seg("length overflows"))?,
            layout,
        });
    }
    out.sort_by_key(|p| p.start);
    Ok(out)
}

/// LV `lv` in a scratch file of its own, resized to `new_len`, with the byte ranges
/// of it to lay onto the new PV.
fn stage_lv(
    src: &dyn BlockDevice,
    at: &Lv,
    lv: &LogicalVolume,
    info: &LvLayout,
    new_len: u64,
    opts: &DiskRestoreOptions,
    tag: &str,
) -> Result<(Staged, Option<String>), LvStageError> {
    let m = Mapped::new(src, format!("LV {}", lv.name), pieces(at, lv)?)?;
    let old_len = m.size();
    let kind = lv_kind(info);
    let mut f = Staged::create(
        &opts.scratch_dir,
        &format!("ironclone-lv-{tag}-{}.img", lv.name),
        old_len,
    )?;
    let whole = vec![ByteExtent {
        offset: 0,
        len: old_len,
    }];
    let used = match kind {
        FsKind::Unknown => whole,
        k => {
            let map = map_filesystem(&m, k);
            if map.raw {
                whole
            } else {
                map.extents
            }
        }
    };
    {
        let dev = open_path(&f.path, Access::ReadWrite)?;
        copy_ranges(&m, &dev, &used, 0)?;
    }
    let path = f.path.clone();
    let set_len = |len: u64| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|h| h.set_len(len))
            .map_err(|source| LvStageError::Scratch {
                path: path.clone(),
                source,
            })
    };
    let line = match new_len.cmp(&old_len) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Less if kind == FsKind::Xfs => {
            let new = Staged::create(
                &opts.scratch_dir,
                &format!("ironclone-lv-new-{tag}-{}.img", lv.name),
                new_len,
            )?;
            let spec = recreate_into(&f.path, old_len, &new.path, new_len, at.number)?;
            f = new;
            Some(format!(
                "LV {}: XFS re-created at {} (it cannot shrink from {}): same UUID {}, label \
                 and features, files copied with xfsdump | xfsrestore",
                lv.name,
                mib(new_len),
                mib(old_len),
                spec.uuid
            ))
        }
        std::cmp::Ordering::Less => {
            let min = resize::min_size(kind, &f.path)?.unwrap_or(old_len);
            if min > new_len {
                return Err(LvStageError::TooSmall {
                    kind,
                    min,
                    planned: new_len,
                });
            }
            resize::resize(kind, &f.path, new_len)?;
            set_len(new_len)?;
            Some(format!(
                "LV {}: {kind} shrunk from {} to {}",
                lv.name,
                mib(old_len),
                mib(new_len)
            ))
        }
        std::cmp::Ordering::Greater => {
            set_len(new_len)?;
            let lo = LoopDevice::attach(&f.path, 0, new_len)?;
            resize::resize(kind, lo.path(), new_len)?;
            drop(lo);
            Some(format!(
                "LV {}: {kind} grown from {} to {}",
                lv.name,
                mib(old_len),
                mib(new_len)
            ))
        }
    };
    if kind == FsKind::Ntfs && line.is_some() {
        resize::ntfs_clear_dirty(&f.path)?;
    }
    let dev = open_path(&f.path, Access::ReadWrite)?;
    if kind.is_ext() && !opts.target_is_zeroed {
        // The target's old bytes would sit in inode-table tails the map leaves out.
        mark_tails_unzeroed(&dev)?;
    }
    f.extents = match kind {
        FsKind::Unknown => vec![ByteExtent {
            offset: 0,
            len: dev.size(),
        }],
        k => {
            let map = map_filesystem(&dev, k);
            if map.raw {
                return Err(LvStageError::Unmapped {
                    kind: k,
                    why: map.raw_reason.unwrap_or_default(),
                });
            }
            map.extents
        }
    };
    Ok((f, line))
}

/// Copies `ranges` of `src` to `dst`, `to` bytes further on. `dst` is a new sparse
/// file: all-zero blocks are left unwritten.
fn copy_ranges(
    src: &dyn BlockDevice,
    dst: &dyn BlockDevice,
    ranges: &[ByteExtent],
    to: u64,
) -> Result<u64, LvStageError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    for e in ranges {
        let mut off = e.offset;
        while off < e.end() {
            let len = usize::try_from(e.end() - off)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let b = buf.get_mut(..len).unwrap_or_default();
            src.read_at(off, b)?;
            if b.iter().any(|&x| x != 0) {
                let at = off
                    .checked_add(to)
                    .ok_or(LvStageError::Overflow { offset: off, to })?;
                dst.write_at(at, b)?;
            }
            off += len as u64;
            n += len as u64;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(kind: SegmentKind) -> LogicalVolume {
        LogicalVolume {
            name: "root".into(),
            id: "id".into(),
            status: vec!["VISIBLE".into()],
            tags: vec![],
            segments: vec![crate::ondisk::lvm::Segment {
                start_extent: 0,
                extent_count: 4,
                kind,
            }],
        }
    }

    const AT: Lv<'static> = Lv {
        number: 2,
        key: "pv0",
        pe_start: 1 << 20,
        ext: 4 << 20,
    };

    #[test]
    fn linear_and_striped_segments_become_pieces() {
        let one = lv(SegmentKind::Striped {
            stripe_size: 0,
            stripes: vec![("pv0".into(), 2)],
        });
        let p = pieces(&AT, &one).unwrap();
        assert_eq!(p[0].layout, Layout::Linear((1 << 20) + 2 * (4 << 20)));
        let two = lv(SegmentKind::Striped {
            stripe_size: 128,
            stripes: vec![("pv0".into(), 0), ("pv0".into(), 8)],
        });
        assert!(matches!(
            pieces(&AT, &two).unwrap()[0].layout,
            Layout::Striped { stripe: 65536, .. }
        ));
    }

    #[test]
    fn foreign_and_unknown_segments_are_typed_errors() {
        let other = lv(SegmentKind::Striped {
            stripe_size: 0,
            stripes: vec![("pv1".into(), 0)],
        });
        assert!(matches!(
            pieces(&AT, &other),
            Err(LvStageError::OtherPv { start: 0, ref pv }) if pv == "pv1"
        ));
        let thin = lv(SegmentKind::Other("thin".into()));
        assert!(matches!(
            pieces(&AT, &thin),
            Err(LvStageError::Segment { start: 0, .. })
        ));
        let uneven = lv(SegmentKind::Striped {
            stripe_size: 128,
            stripes: vec![("pv0".into(), 0), ("pv0".into(), 8), ("pv0".into(), 9)],
        });
        assert!(matches!(
            pieces(&AT, &uneven),
            Err(LvStageError::Segment { .. })
        ));
        let huge = lv(SegmentKind::Striped {
            stripe_size: 0,
            stripes: vec![("pv0".into(), u64::MAX / 2)],
        });
        assert!(matches!(
            pieces(&AT, &huge),
            Err(LvStageError::Segment { .. })
        ));
    }
}

//! Where the bytes of a Clonezilla LVM image go on the disk it was saved from.
//! Clonezilla saves a physical volume partition as its VG's metadata (`lvm_<vg>.conf`,
//! vgcfgbackup's text) and one image per LV; its restore runs `pvcreate --uuid
//! --restorefile` and `vgcfgrestore` on the partition, activates the VG and decodes
//! each image into `/dev/<vg>/<lv>`. ironclone does the same without activating
//! anything (no device-mapper needed, which the host and some live systems lack):
//! lvm2 writes the label and metadata area into the image disk's sparse table file
//! (a loop device over the PV's byte range; the folder is only read), and each LV
//! segment becomes a place on the disk where the LV's image is decoded, at
//! `pe_start + pe × extent_size` of the PV. `device::ImageDevice` then reads as a
//! native LVM disk, so the planner, the restore (same size: the PV copied; another
//! size: its LVs laid out anew by imaging/restore_lvm.rs) and an import (the PV's
//! `meta.map.lvm`) treat it as any PV.
//!
//! A saveparts image has no table: each PV is placed on its own (`place_bare`), from
//! byte 0 to the partition's size lvm2 recorded, and read as a table-less disk
//! holding only the PV (`ImageDevice::open_pv`: `restore --part`, `import`).
//!
//! Only shapes whose every byte is known are taken: every PV of a VG saved with a disk of
//! the image (this one, or another one restored on its own: `others_here`; a VG on one
//! PV may also be a saveparts partition alone), and every LV of the VG linear (lvm2's
//! `striped` with one stripe; its segments may lie on any of the VG's PVs) with an
//! image in the folder. Anything else is refused naming the VG, the LV and why, before
//! anything is written: a PV with an LV left empty must not look restored.

use super::error::ClonezillaError;
use super::lvm::{LvmInfo, PhysicalVolume};
use super::{ClonezillaImage, DiskLayout, PartImage};
use crate::ondisk::lvm::{SegmentKind, VolumeGroup};
use std::path::{Path, PathBuf};

const SECTOR: u64 = 512;

/// One linear segment of an LV: the LV bytes `[base, base + len)` lie at disk byte
/// `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvPiece {
    pub image: PartImage,
    pub offset: u64,
    pub len: u64,
    pub base: u64,
    /// The whole LV's size (its image's filesystem must fit in it).
    pub lv_len: u64,
}

/// One PV partition of the disk, rebuilt from its VG's metadata.
#[derive(Clone, Debug)]
pub struct PvPlace {
    pub vg: String,
    pub part: String,
    pub uuid: String,
    pub conf: PathBuf,
    /// The partition's byte range on the disk.
    pub offset: u64,
    pub len: u64,
    pub pieces: Vec<LvPiece>,
    /// Every PV of its VG as the metadata lists them: id and size (`pv_bytes`). Those
    /// not placed beside it lie on another disk of the image (`write_heads`).
    pub vg_pvs: Vec<(String, u64)>,
}

fn bad(file: &Path, why: String) -> ClonezillaError {
    ClonezillaError::Bad {
        file: file.to_path_buf(),
        why,
    }
}

/// The PVs of the one-disk view `img` (disk `layout`, `size` bytes) and where each of
/// their LVs' segments lies, or why the image's LVM cannot be placed. Reads only the
/// folder's metadata.
pub fn place(
    img: &ClonezillaImage,
    layout: &DiskLayout,
    size: u64,
) -> Result<Vec<PvPlace>, ClonezillaError> {
    let Some(l) = &img.lvm else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    // PVs of other disks belong to those disks' views (`for_disk` keeps `parts` of its
    // disk only).
    for pv in l.pvs.iter().filter(|p| img.parts.contains(&p.dev)) {
        out.push(place_pv(img, l, Where::Table(layout, size), pv)?);
    }
    Ok(out)
}

/// Checks, without writing anything, that every VG of `img` on a saved disk can be
/// placed. A saveparts image has no table: each of its PVs is placed on its own
/// (`place_bare`). A savedisk image with a PV in no saved table is refused (there is no
/// place for it on the disk, and it would come out empty).
pub fn check(img: &ClonezillaImage) -> Result<(), ClonezillaError> {
    let Some(l) = &img.lvm else { return Ok(()) };
    // A one-disk view (`for_disk`) keeps its disk's partitions in `parts`.
    for pv in l.pvs.iter().filter(|p| img.parts.contains(&p.dev)) {
        if img.is_saveparts() {
            place_pv(img, l, Where::Bare, pv)?;
            continue;
        }
        let Some(layout) = img.disk_of(&pv.dev) else {
            return Err(bad(
                &img.dir.join("lvm_vg_dev.list"),
                format!(
                    "VG {} on {}: the PV is in no saved disk's table; LVM is restored and \
                     imported with its disk (savedisk images) or as a partition of a \
                     saveparts image; its logical volumes can be browsed (`ironclone browse \
                     DIR IMAGE <vg>-<lv> ls`)",
                    pv.vg, pv.dev
                ),
            ));
        };
        let size = layout.disk_bytes().unwrap_or(u64::MAX);
        place_pv(img, l, Where::Table(layout, size), pv)?;
    }
    Ok(())
}

/// The PV partition `part` of `img` on its own, as a saveparts image saves it (no
/// table): its bytes from 0 to the partition's size as lvm2 last saw it (`dev_size`
/// in the VG's metadata; else the end of its last extent), each LV segment at
/// `pe_start + pe x extent_size`. Reads only the folder's metadata.
pub fn place_bare(img: &ClonezillaImage, part: &str) -> Result<PvPlace, ClonezillaError> {
    let l = img.lvm.as_ref().ok_or_else(|| ClonezillaError::Missing {
        file: img.dir.join("lvm_vg_dev.list"),
        why: "the list of LVM physical volumes",
    })?;
    let pv = l.pvs.iter().find(|p| p.dev == part).ok_or_else(|| {
        bad(
            &img.dir.join("lvm_vg_dev.list"),
            format!("{part} is not a physical volume of the image"),
        )
    })?;
    place_pv(img, l, Where::Bare, pv)
}

/// Where a PV lies: in a saved disk's table (`size` bytes), or on its own from byte 0.
#[derive(Clone, Copy)]
enum Where<'a> {
    Table(&'a DiskLayout, u64),
    Bare,
}

fn place_pv(
    img: &ClonezillaImage,
    l: &LvmInfo,
    at: Where,
    pv: &PhysicalVolume,
) -> Result<PvPlace, ClonezillaError> {
    let table = match at {
        Where::Table(layout, size) => Some(partition(img, layout, size, pv)?),
        Where::Bare => None,
    };
    let conf = l
        .confs
        .iter()
        .find(|(vg, _)| *vg == pv.vg)
        .map(|(_, f)| f.clone())
        .ok_or_else(|| ClonezillaError::Missing {
            file: img.dir.join(format!("lvm_{}.conf", pv.vg)),
            why: "the metadata of a saved volume group (its PV is re-created from it)",
        })?;
    let text = super::read_text(&conf)?;
    let vg = VolumeGroup::parse(&text)
        .map_err(|e| bad(&conf, format!("VG {}: not lvm2 metadata: {e}", pv.vg)))?;
    let vgs = |why: String| bad(&conf, format!("VG {} on {}: {why}", pv.vg, pv.dev));
    if vg.name != pv.vg {
        return Err(vgs(format!("the file holds VG {}", vg.name)));
    }
    let me = vg.pvs.iter().find(|p| p.id == pv.uuid).ok_or_else(|| {
        let ids: Vec<&str> = vg.pvs.iter().map(|p| p.id.as_str()).collect();
        vgs(format!(
            "lvm_vg_dev.list names PV {} but the metadata's PVs are {}",
            pv.uuid,
            ids.join(", ")
        ))
    })?;
    others_here(img, l, at, &vg, me, &vgs)?;
    let ext = vg.extent_size.checked_mul(SECTOR);
    let pe_start = me.pe_start.checked_mul(SECTOR);
    let (Some(ext), Some(pe_start)) = (ext, pe_start) else {
        return Err(vgs("extent_size or pe_start overflows".into()));
    };
    let pe_end = me
        .pe_count
        .checked_mul(ext)
        .and_then(|n| n.checked_add(pe_start));
    let (offset, len) = match table {
        Some(t) => t,
        // No table: the partition was as large as lvm2 saw it; at least its extents.
        None => match (pe_end, pv_bytes(&vg, me)) {
            (Some(_), Some(len)) => (0, len),
            _ => return Err(vgs("its extents' end overflows".into())),
        },
    };
    if pe_end.is_none_or(|e| e > len) {
        return Err(vgs(format!(
            "{} extents of {ext} bytes from byte {pe_start} do not fit in the {len}-byte \
             partition",
            me.pe_count
        )));
    }
    let mut pieces = Vec::new();
    for lv in &vg.lvs {
        let whose = |why: String| vgs(format!("LV {}: {why}", lv.name));
        let image = l
            .lvs
            .iter()
            .find(|i| i.vg == pv.vg && i.lv == lv.name)
            .map(|i| i.image.clone())
            .ok_or_else(|| {
                whose("not in lvm_logv.list (no image saved): it would come out empty".into())
            })?;
        let lv_len = lv
            .extents()
            .checked_mul(ext)
            .ok_or_else(|| whose("its size overflows".into()))?;
        let mut segs: Vec<_> = lv.segments.iter().collect();
        segs.sort_by_key(|s| s.start_extent);
        let mut next = 0u64;
        for s in segs {
            let seg =
                |why: String| whose(format!("segment at LV extent {}: {why}", s.start_extent));
            if s.start_extent != next {
                return Err(seg(format!(
                    "the segments do not follow on (expected {next})"
                )));
            }
            next = next.saturating_add(s.extent_count);
            let pe = match &s.kind {
                SegmentKind::Striped { stripes, .. } => match stripes.as_slice() {
                    [(key, pe)] if *key == me.key => *pe,
                    // Placed with its own PV, on this disk or when its disk is
                    // restored (`others_here` found it saved).
                    [(key, _)] if vg.pvs.iter().any(|p| p.key == *key) => continue,
                    [(key, _)] => return Err(seg(format!("on a PV the VG does not list ({key})"))),
                    many => {
                        return Err(seg(format!(
                            "striped over {} stripes: only linear LVs are restored",
                            many.len()
                        )))
                    }
                },
                SegmentKind::Other(t) => {
                    return Err(seg(format!(
                        "a {t} segment: only linear LVs are restored (thin, RAID, mirror, \
                         snapshot and cache LVs are not)"
                    )))
                }
            };
            let at = pe
                .checked_add(s.extent_count)
                .filter(|&e| e <= me.pe_count)
                .and_then(|_| pe.checked_mul(ext))
                .and_then(|o| o.checked_add(pe_start))
                .and_then(|o| o.checked_add(offset))
                .ok_or_else(|| {
                    seg(format!(
                        "PV extents {pe}+{} lie outside the PV",
                        s.extent_count
                    ))
                })?;
            pieces.push(LvPiece {
                image: image.clone(),
                offset: at,
                len: s.extent_count.saturating_mul(ext),
                base: s.start_extent.saturating_mul(ext),
                lv_len,
            });
        }
    }
    pieces.sort_by_key(|p| p.offset);
    if let Some(w) = pieces
        .windows(2)
        .find(|w| w[0].offset.saturating_add(w[0].len) > w[1].offset)
    {
        return Err(vgs(format!(
            "LVs {} and {} share extents",
            w[0].image.part, w[1].image.part
        )));
    }
    // An LV listed for this VG that the metadata does not hold has nowhere to go.
    if let Some(i) = l
        .lvs
        .iter()
        .find(|i| i.vg == pv.vg && !vg.lvs.iter().any(|v| v.name == i.lv))
    {
        return Err(vgs(format!(
            "LV {} is in lvm_logv.list but not in the VG's metadata",
            i.lv
        )));
    }
    let vg_pvs = vg
        .pvs
        .iter()
        .map(|p| {
            let len =
                pv_bytes(&vg, p).ok_or_else(|| vgs(format!("PV {}: its size overflows", p.key)))?;
            Ok((p.id.clone(), len))
        })
        .collect::<Result<_, ClonezillaError>>()?;
    Ok(PvPlace {
        vg: pv.vg.clone(),
        part: pv.dev.clone(),
        uuid: pv.uuid.clone(),
        conf,
        offset,
        len,
        pieces,
        vg_pvs,
    })
}

/// How large lvm2 last saw PV `pv` of `vg`, in bytes: its `dev_size`, else the end of
/// its extents (the partition was at least that).
fn pv_bytes(vg: &VolumeGroup, pv: &crate::ondisk::lvm::PhysicalVolume) -> Option<u64> {
    let end = vg
        .extent_size
        .checked_mul(pv.pe_count)
        .and_then(|n| n.checked_add(pv.pe_start))
        .and_then(|n| n.checked_mul(SECTOR));
    pv.dev_size.and_then(|n| n.checked_mul(SECTOR)).or(end)
}

/// A VG on several PVs is placed when every other PV of it was saved too, in the same
/// saved table as `me` or in another disk's of the same image (`elsewhere`, a one-disk
/// view: that PV is written when its disk is restored, from the same metadata, and
/// stands in as a scratch PV meanwhile, `write_heads`): lvm2 commits a VG's metadata
/// onto all its PVs at once, and an LV with extents on a PV that was not saved would
/// come back with a hole. A saveparts image (no table) restores one partition at a
/// time, so there its PVs must each hold a VG of their own.
fn others_here(
    img: &ClonezillaImage,
    l: &LvmInfo,
    at: Where,
    vg: &VolumeGroup,
    me: &crate::ondisk::lvm::PhysicalVolume,
    vgs: &dyn Fn(String) -> ClonezillaError,
) -> Result<(), ClonezillaError> {
    for other in vg.pvs.iter().filter(|p| p.id != me.id) {
        let saved = l
            .pvs
            .iter()
            .find(|p| p.vg == vg.name && p.uuid == other.id)
            .ok_or_else(|| {
                vgs(format!(
                    "its PV {} ({}) is not in lvm_vg_dev.list: the VG's LVs would have holes",
                    other.key, other.id
                ))
            })?;
        let on_disk = match at {
            Where::Bare => {
                return Err(vgs(format!(
                    "the VG also lies on {} ({}): a VG on several PVs is restored and \
                     imported with its disk from a savedisk image, not one partition alone",
                    saved.dev, other.key
                )))
            }
            // In this view's table, or (a whole image of several disks) another's.
            Where::Table(..) => {
                img.disk_of(&saved.dev).is_some() || img.elsewhere.contains(&saved.dev)
            }
        };
        if !on_disk {
            return Err(vgs(format!(
                "its PV {} ({}) is in no saved disk's table: a VG is restored when all its \
                 PVs were saved with their disks",
                saved.dev, other.key
            )));
        }
    }
    Ok(())
}

/// What a person restoring or importing the one-disk view `img` must know: each VG of
/// this disk that also lies on a PV of another disk of the image, which is whole only
/// once that disk is restored too.
pub fn elsewhere_notes(img: &ClonezillaImage) -> Vec<String> {
    let Some(l) = &img.lvm else {
        return Vec::new();
    };
    let mut vgs: Vec<&str> = l
        .pvs
        .iter()
        .filter(|p| img.parts.contains(&p.dev))
        .map(|p| p.vg.as_str())
        .collect();
    vgs.sort_unstable();
    vgs.dedup();
    vgs.into_iter()
        .filter_map(|vg| {
            let other: Vec<&str> = l
                .pvs
                .iter()
                .filter(|p| p.vg == vg && img.elsewhere.contains(&p.dev))
                .map(|p| p.dev.as_str())
                .collect();
            (!other.is_empty()).then(|| {
                format!(
                    "VG {vg} also lies on {} of another disk of this image: restore that disk \
                     too; until then lvm2 reports that PV missing and the LVs on it incomplete",
                    other.join(", ")
                )
            })
        })
        .collect()
}

/// The byte range of PV `pv`'s partition in the saved table.
fn partition(
    img: &ClonezillaImage,
    layout: &DiskLayout,
    size: u64,
    pv: &PhysicalVolume,
) -> Result<(u64, u64), ClonezillaError> {
    let sf = img.dir.join(format!("{}-pt.sf", layout.disk));
    let node = format!("/dev/{}", pv.dev);
    let e = layout
        .table
        .entries
        .iter()
        .find(|e| e.node == node)
        .ok_or_else(|| {
            bad(
                &sf,
                format!(
                    "VG {} on {}: the PV is not in the saved table",
                    pv.vg, pv.dev
                ),
            )
        })?;
    let ss = u64::from(layout.table.sector_size);
    let offset = e.start.checked_mul(ss);
    let len = e.size.checked_mul(ss);
    match (offset, len) {
        (Some(o), Some(l)) if o.checked_add(l).is_some_and(|end| end <= size) => Ok((o, l)),
        _ => Err(bad(
            &sf,
            format!(
                "PV partition {} lies past the end of the {size}-byte disk",
                pv.dev
            ),
        )),
    }
}

// Writing the placed PVs' labels, metadata and swap headers.
#[path = "lvm_place_heads.rs"]
mod heads;
#[cfg(test)]
use heads::swap_ids;
pub use heads::write_heads;
pub(crate) use heads::write_swap_header;

#[cfg(test)]
#[path = "lvm_place_tests.rs"]
mod tests;

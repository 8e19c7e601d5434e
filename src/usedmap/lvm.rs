//! The used blocks of an LVM2 physical volume: its label, its metadata areas, and
//! inside each logical volume the blocks its own filesystem uses, read through the
//! volume's segments (device-mapper's linear and striped layouts, without
//! device-mapper) and mapped back to the PV. Free extents are not read.
//!
//! Whatever is not understood is copied whole, with the reason kept: an LV whose
//! stripes lie on another PV (its filesystem cannot be read from this one), hidden
//! LVs (RAID images and metadata, thin pool data, mirror logs, snapshot stores: their
//! content is not a filesystem of its own), and filesystems without a map.

use super::{map_filesystem, ExtentBuilder, UsedMap};
use crate::device::{BlockDevice, Layout, Mapped, Piece};
use crate::ondisk::lvm::{read_pv, LogicalVolume, LvmError, PvLabel, SegmentKind, VolumeGroup};
use crate::probe::{probe, FsKind};
use serde::{Deserialize, Serialize};

const SECTOR: u64 = 512;
/// The label lives in one of the first four sectors: all four are copied.
const LABEL_BYTES: u64 = 4 * SECTOR;

/// What the image keeps of the VG: enough to name it, recreate it with the same ids
/// and tell the person what was inside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvmLayout {
    pub vg_name: String,
    pub vg_id: String,
    pub seqno: u64,
    pub extent_bytes: u64,
    /// Bytes from the PV's start to its first extent; 0 on images made before it was
    /// kept (their PV keeps its size on restore).
    #[serde(default)]
    pub pe_start: u64,
    /// This PV's name in the metadata ("pv0") and its UUID.
    pub pv_key: String,
    pub pv_id: String,
    /// PVs of the VG (1 for a VG on this partition alone).
    pub pv_count: usize,
    pub lvs: Vec<LvLayout>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvLayout {
    pub name: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub visible: bool,
    pub size: u64,
    /// The filesystem found inside ("ext4", "swap"...), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Bytes of it the image holds.
    pub copied: u64,
    /// All its segments are linear or striped on this PV, so a restore can lay it
    /// out anew (false on images made before it was kept).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub movable: bool,
    /// Why it is copied whole, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whole: Option<String>,
}

/// Maps the PV on `dev`.
pub fn map_lvm(dev: &dyn BlockDevice) -> Result<UsedMap, LvmError> {
    let (label, vg) = read_pv(dev)?;
    let bad = |what: String| LvmError::Vg {
        vg: vg.name.clone(),
        what,
    };
    let pv = vg.pv_by_id(&label.pv_uuid).ok_or_else(|| {
        bad(format!(
            "this PV ({}) is not in its metadata",
            label.pv_uuid
        ))
    })?;
    let ext = vg
        .extent_size
        .checked_mul(SECTOR)
        .ok_or_else(|| bad("extent_size overflows".into()))?;
    let pe_start = pv
        .pe_start
        .checked_mul(SECTOR)
        .ok_or_else(|| bad("pe_start overflows".into()))?;
    let pe_end = pv
        .pe_count
        .checked_mul(ext)
        .and_then(|n| n.checked_add(pe_start))
        .filter(|&e| e <= dev.size())
        .ok_or_else(|| {
            bad(format!(
                "{} extents from sector {} run past the partition",
                pv.pe_count, pv.pe_start
            ))
        })?;
    let mut b = ExtentBuilder::new();
    b.add(0, LABEL_BYTES);
    for a in &label.metadata_areas {
        b.add(a.offset, a.size);
    }
    let geo = Geometry {
        key: &pv.key,
        ext,
        pe_start,
        pe_end,
    };
    let mut warnings = Vec::new();
    let mut lvs = Vec::new();
    for lv in &vg.lvs {
        let l = map_lv(dev, &geo, lv, &mut b)
            .map_err(|what| bad(format!("logical volume {}: {what}", lv.name)))?;
        if let Some(why) = &l.whole {
            if l.copied > 0 {
                warnings.push(format!("LV {}/{}: copied whole: {why}", vg.name, lv.name));
            }
        }
        lvs.push(l);
    }
    let extents = b.finish(dev.size());
    let used_bytes = extents.iter().map(|e| e.len).sum();
    Ok(UsedMap {
        block_size: SECTOR,
        total_bytes: dev.size(),
        used_bytes,
        extents,
        raw: false,
        raw_reason: None,
        warnings,
        primary_lost: None,
        lvm: Some(layout(&label, &vg, &pv.key, (ext, pe_start), lvs)),
        fs_sector: None,
    })
}

fn layout(
    label: &PvLabel,
    vg: &VolumeGroup,
    key: &str,
    (ext, pe_start): (u64, u64),
    lvs: Vec<LvLayout>,
) -> LvmLayout {
    LvmLayout {
        vg_name: vg.name.clone(),
        vg_id: vg.id.clone(),
        seqno: vg.seqno,
        extent_bytes: ext,
        pe_start,
        pv_key: key.to_string(),
        pv_id: label.pv_uuid.clone(),
        pv_count: vg.pvs.len(),
        lvs,
    }
}

/// Where this PV's extents are.
struct Geometry<'a> {
    key: &'a str,
    ext: u64,
    pe_start: u64,
    pe_end: u64,
}

impl Geometry<'_> {
    /// Byte range of `count` extents from PV extent `pe`, checked against the PV.
    fn extents(&self, pe: u64, count: u64) -> Result<(u64, u64), String> {
        let off = pe
            .checked_mul(self.ext)
            .and_then(|o| o.checked_add(self.pe_start));
        let len = count.checked_mul(self.ext);
        match (off, len) {
            (Some(o), Some(l)) if o.checked_add(l).is_some_and(|e| e <= self.pe_end) => Ok((o, l)),
            _ => Err(format!("extents {pe}+{count} lie outside the PV")),
        }
    }
}

/// Adds LV `lv`'s copied bytes to `b` and says what it holds.
fn map_lv(
    dev: &dyn BlockDevice,
    g: &Geometry,
    lv: &LogicalVolume,
    b: &mut ExtentBuilder,
) -> Result<LvLayout, String> {
    let size = lv.extents().saturating_mul(g.ext);
    let mut out = LvLayout {
        name: lv.name.clone(),
        id: lv.id.clone(),
        tags: lv.tags.clone(),
        visible: lv.visible(),
        size,
        fs: None,
        label: None,
        uuid: None,
        copied: 0,
        movable: !lv.segments.is_empty(),
        whole: None,
    };
    // This PV's share of the LV, whatever the LV is: copied whole when not mapped.
    let mut here: Vec<(u64, u64)> = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut why: Option<String> = (!out.visible).then(|| {
        "a hidden LV (RAID image, thin pool data, mirror log or snapshot store)".to_string()
    });
    for s in &lv.segments {
        let start = s
            .start_extent
            .checked_mul(g.ext)
            .ok_or("segment start overflows")?;
        let len = s
            .extent_count
            .checked_mul(g.ext)
            .ok_or("segment length overflows")?;
        match &s.kind {
            SegmentKind::Striped {
                stripe_size,
                stripes,
            } => {
                let n = stripes.len() as u64;
                if n == 0 || s.extent_count % n != 0 {
                    return Err(format!(
                        "{} extents do not split into {n} stripes",
                        s.extent_count
                    ));
                }
                let mut starts = Vec::new();
                for (key, pe) in stripes {
                    out.movable &= key == g.key;
                    if key == g.key {
                        let r = g.extents(*pe, s.extent_count / n)?;
                        here.push(r);
                        starts.push(r.0);
                    } else {
                        why.get_or_insert_with(|| format!("it has extents on another PV ({key})"));
                    }
                }
                let layout = match starts.as_slice() {
                    [one] if n == 1 => Layout::Linear(*one),
                    _ => Layout::Striped {
                        stripe: stripe_size
                            .checked_mul(SECTOR)
                            .ok_or("stripe_size overflows")?,
                        starts,
                    },
                };
                pieces.push(Piece { start, len, layout });
            }
            SegmentKind::Other(t) => {
                out.movable = false;
                why.get_or_insert_with(|| format!("a {t} segment"));
            }
        }
    }
    pieces.sort_by_key(|p| p.start);
    if why.is_none() {
        match Mapped::new(dev, format!("LV {}", lv.name), pieces) {
            Ok(m) => match map_inside(&m, &mut out) {
                Ok(copied) => {
                    for (o, l) in copied {
                        out.copied = out.copied.saturating_add(l);
                        b.add(o, l);
                    }
                    return Ok(out);
                }
                Err(w) => why = Some(w),
            },
            Err(e) => why = Some(e.to_string()),
        }
    }
    for (o, l) in here {
        out.copied = out.copied.saturating_add(l);
        b.add(o, l);
    }
    out.whole = why;
    Ok(out)
}

/// The PV ranges the filesystem inside LV `m` uses, or why it is copied whole.
fn map_inside(m: &Mapped, out: &mut LvLayout) -> Result<Vec<(u64, u64)>, String> {
    let info = probe(m);
    let kind = info.as_ref().map_or(FsKind::Unknown, |i| i.kind);
    if let Some(i) = info {
        out.fs = Some(i.kind.to_string());
        out.label = i.label;
        out.uuid = i.uuid;
    }
    if kind == FsKind::Lvm2 {
        return Err("an LVM PV inside an LV".into());
    }
    let map = map_filesystem(m, kind);
    if map.raw {
        return Err(map.raw_reason.unwrap_or_else(|| "not understood".into()));
    }
    let mut ranges = Vec::new();
    for e in &map.extents {
        ranges.extend(m.resolve(e.offset, e.len).map_err(|e| e.to_string())?);
    }
    Ok(ranges)
}

//! The volume group a PV's metadata text describes: its PVs (where each one's
//! extents start), its LVs and their segments (which PV extents hold which LV
//! extents). Sizes in the text are 512-byte sectors; here they stay in the text's
//! units and are turned into bytes, checked, by whoever maps them.

use super::error::LvmError;
use super::text::{self, Section, Value};

/// lvm2 writes `segment_count` segments; more than this in one LV is garbage.
const MAX_SEGMENTS: usize = 1 << 16;
const MAX_STRIPES: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeGroup {
    pub name: String,
    pub id: String,
    pub seqno: u64,
    /// Extent size in 512-byte sectors.
    pub extent_size: u64,
    pub pvs: Vec<PhysicalVolume>,
    pub lvs: Vec<LogicalVolume>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalVolume {
    /// The name the segments use for it ("pv0").
    pub key: String,
    pub id: String,
    /// Where its first extent starts, in sectors from the PV start.
    pub pe_start: u64,
    pub pe_count: u64,
    /// The device's size in sectors as lvm2 last saw it (`dev_size`; absent in old
    /// metadata): how large the PV partition was.
    pub dev_size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalVolume {
    pub name: String,
    pub id: String,
    pub status: Vec<String>,
    pub tags: Vec<String>,
    pub segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start_extent: u64,
    pub extent_count: u64,
    pub kind: SegmentKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// `type = "striped"`: one stripe is a linear mapping. `stripe_size` in sectors
    /// (0 for one stripe); each stripe is (PV key, first PV extent).
    Striped {
        stripe_size: u64,
        stripes: Vec<(String, u64)>,
    },
    /// Any other type (thin, raid, mirror, snapshot, cache...), by its name.
    Other(String),
}

impl LogicalVolume {
    /// False for LVs lvm2 hides (sub-volumes of thin pools, RAID images...).
    pub fn visible(&self) -> bool {
        self.status.iter().any(|s| s == "VISIBLE")
    }

    /// Extents the LV spans (sum of its segments).
    pub fn extents(&self) -> u64 {
        self.segments
            .iter()
            .fold(0u64, |a, s| a.saturating_add(s.extent_count))
    }
}

impl VolumeGroup {
    pub fn parse(metadata: &str) -> Result<VolumeGroup, LvmError> {
        let top = text::parse(metadata)?;
        let (name, s) = top
            .sections()
            .find(|(_, s)| s.section("physical_volumes").is_some())
            .ok_or_else(|| LvmError::Syntax {
                line: 1,
                what: "no volume group section (one holding physical_volumes)".into(),
            })?;
        let bad = |what: String| LvmError::Vg {
            vg: name.to_string(),
            what,
        };
        let need_int = |s: &Section, key: &str, whose: &str| -> Result<u64, LvmError> {
            s.int(key)
                .and_then(|i| u64::try_from(i).ok())
                .ok_or_else(|| bad(format!("{whose}: no {key} (a non-negative integer)")))
        };
        let extent_size = need_int(s, "extent_size", "the VG")?;
        if extent_size == 0 {
            return Err(bad("extent_size is 0".into()));
        }
        let mut pvs = Vec::new();
        for (key, p) in s
            .section("physical_volumes")
            .into_iter()
            .flat_map(Section::sections)
        {
            let whose = format!("physical volume {key}");
            pvs.push(PhysicalVolume {
                key: key.to_string(),
                id: p
                    .str("id")
                    .ok_or_else(|| bad(format!("{whose}: no id")))?
                    .to_string(),
                pe_start: need_int(p, "pe_start", &whose)?,
                pe_count: need_int(p, "pe_count", &whose)?,
                dev_size: p.int("dev_size").and_then(|n| u64::try_from(n).ok()),
            });
        }
        let mut lvs = Vec::new();
        for (lv_name, l) in s
            .section("logical_volumes")
            .into_iter()
            .flat_map(Section::sections)
        {
            let whose = format!("logical volume {lv_name}");
            let mut segments = Vec::new();
            for (seg_name, g) in l.sections().filter(|(k, _)| k.starts_with("segment")) {
                if segments.len() == MAX_SEGMENTS {
                    return Err(bad(format!("{whose}: more than {MAX_SEGMENTS} segments")));
                }
                let whose = format!("{whose}, {seg_name}");
                let kind = match g.str("type") {
                    Some("striped") => {
                        striped(g).ok_or_else(|| bad(format!("{whose}: bad stripes")))?
                    }
                    Some(other) => SegmentKind::Other(other.to_string()),
                    None => return Err(bad(format!("{whose}: no type"))),
                };
                segments.push(Segment {
                    start_extent: need_int(g, "start_extent", &whose)?,
                    extent_count: need_int(g, "extent_count", &whose)?,
                    kind,
                });
            }
            lvs.push(LogicalVolume {
                name: lv_name.to_string(),
                id: l
                    .str("id")
                    .ok_or_else(|| bad(format!("{whose}: no id")))?
                    .to_string(),
                status: strings(l, "status"),
                tags: strings(l, "tags"),
                segments,
            });
        }
        Ok(VolumeGroup {
            name: name.to_string(),
            id: s.str("id").ok_or_else(|| bad("no id".into()))?.to_string(),
            seqno: need_int(s, "seqno", "the VG")?,
            extent_size,
            pvs,
            lvs,
        })
    }

    pub fn pv_by_id(&self, id: &str) -> Option<&PhysicalVolume> {
        self.pvs.iter().find(|p| p.id == id)
    }
}

fn strings(s: &Section, key: &str) -> Vec<String> {
    match s.value(key) {
        Some(Value::List(l)) => l
            .iter()
            .filter_map(|v| match v {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A striped segment's stripes: `stripes = ["pv0", 6, "pv1", 0]`.
fn striped(g: &Section) -> Option<SegmentKind> {
    let count = usize::try_from(g.int("stripe_count")?).ok()?;
    let Some(Value::List(list)) = g.value("stripes") else {
        return None;
    };
    if count == 0 || count > MAX_STRIPES || list.len() != count * 2 {
        return None;
    }
    let stripes = list
        .chunks_exact(2)
        .map(|p| match p {
            [Value::Str(pv), Value::Int(pe)] => Some((pv.clone(), u64::try_from(*pe).ok()?)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let stripe_size = match count {
        1 => 0,
        _ => u64::try_from(g.int("stripe_size")?)
            .ok()
            .filter(|&s| s > 0)?,
    };
    Some(SegmentKind::Striped {
        stripe_size,
        stripes,
    })
}

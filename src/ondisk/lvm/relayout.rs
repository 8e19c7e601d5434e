//! A VG's metadata text rewritten for a PV of another size: the same VG, PV and LV
//! names, ids, tags, flags and extent size, the `seqno` asked for, the PV's `dev_size`
//! and `pe_count` for its new size, and each LV as one linear segment at the extents
//! the restore gives it. Everything else in the text (creation host and time, LV
//! status, lvm2's own keys this decoder does not know) is kept as lvm2 wrote it, which
//! is why the text is edited rather than written from the decoded `VolumeGroup`.

use super::error::LvmError;
use super::text::{self, Item, Section, Value};

/// Where one LV goes in the new PV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvPlace {
    pub name: String,
    pub first_pe: u64,
    pub extents: u64,
}

/// The new PV and, with `--new-ids`, the VG's and PV's new ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPv {
    pub pv_key: String,
    /// `vgcfgrestore` commits the text one higher: the source's seqno gives seqno+1.
    pub seqno: u64,
    /// The PV's size in 512-byte sectors.
    pub dev_size: u64,
    pub pe_count: u64,
    pub lvs: Vec<LvPlace>,
    pub vg_id: Option<String>,
    pub pv_id: Option<String>,
}

fn int(n: u64, vg: &str, what: &str) -> Result<Value, LvmError> {
    i64::try_from(n).map(Value::Int).map_err(|_| LvmError::Vg {
        vg: vg.to_string(),
        what: format!("{what} {n} does not fit the metadata's integers"),
    })
}

/// `metadata` (a VG's text as read from its PV) laid out as `new` says.
pub fn relayout(metadata: &str, new: &NewPv) -> Result<String, LvmError> {
    let mut top = text::parse(metadata)?;
    let (name, vg) = top
        .sections_mut()
        .find(|(_, s)| s.section("physical_volumes").is_some())
        .ok_or_else(|| LvmError::Syntax {
            line: 1,
            what: "no volume group section (one holding physical_volumes)".into(),
        })?;
    let name = name.to_string();
    let bad = |what: String| LvmError::Vg {
        vg: name.clone(),
        what,
    };
    vg.set("seqno", int(new.seqno, &name, "seqno")?);
    if let Some(id) = &new.vg_id {
        vg.set("id", Value::Str(id.clone()));
    }
    let pv = vg
        .section_mut("physical_volumes")
        .and_then(|p| p.section_mut(&new.pv_key))
        .ok_or_else(|| bad(format!("no physical volume {}", new.pv_key)))?;
    if let Some(id) = &new.pv_id {
        pv.set("id", Value::Str(id.clone()));
    }
    pv.set("dev_size", int(new.dev_size, &name, "dev_size")?);
    pv.set("pe_count", int(new.pe_count, &name, "pe_count")?);
    let lvs = vg
        .section_mut("logical_volumes")
        .ok_or_else(|| bad("no logical_volumes".into()))?;
    let mut placed = 0usize;
    for (lv_name, lv) in lvs.sections_mut() {
        let place = new.lvs.iter().find(|p| p.name == lv_name).ok_or_else(|| {
            bad(format!(
                "logical volume {lv_name} has no place in the new PV"
            ))
        })?;
        lv.items
            .retain(|(k, v)| !(k.starts_with("segment") && matches!(v, Item::Section(_))));
        lv.set("segment_count", Value::Int(1));
        let seg = Section {
            items: vec![
                ("start_extent".into(), Item::Value(Value::Int(0))),
                (
                    "extent_count".into(),
                    Item::Value(int(place.extents, &name, "extent_count")?),
                ),
                ("type".into(), Item::Value(Value::Str("striped".into()))),
                ("stripe_count".into(), Item::Value(Value::Int(1))),
                (
                    "stripes".into(),
                    Item::Value(Value::List(vec![
                        Value::Str(new.pv_key.clone()),
                        int(place.first_pe, &name, "first extent")?,
                    ])),
                ),
            ],
        };
        lv.items.push(("segment1".into(), Item::Section(seg)));
        placed += 1;
    }
    if placed != new.lvs.len() {
        return Err(bad(format!(
            "{} places for {placed} logical volumes",
            new.lvs.len()
        )));
    }
    Ok(top.emit())
}

/// A new random id in lvm2's alphabet and printed form (what `pvcreate` would make).
pub fn new_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    let raw: Vec<u8> = a
        .as_bytes()
        .iter()
        .chain(b.as_bytes())
        .map(|&x| {
            ALPHABET
                .get(usize::from(x) % ALPHABET.len())
                .copied()
                .unwrap_or(b'0')
        })
        .collect();
    super::label::format_uuid(&raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::VolumeGroup;
    use super::*;

    const TEXT: &str = "vg0 {\nid = \"vgid\"\nseqno = 4\nextent_size = 8192\n\
        tags = [\"keep\"]\nphysical_volumes {\npv0 {\nid = \"pvid\"\ndev_size = 196608\n\
        pe_start = 2048\npe_count = 23\n}\n}\nlogical_volumes {\nroot {\nid = \"lvid\"\n\
        status = [\"READ\", \"WRITE\", \"VISIBLE\"]\ntags = [\"t\"]\nsegment_count = 2\n\
        segment1 {\nstart_extent = 0\nextent_count = 4\ntype = \"striped\"\nstripe_count = 1\n\
        stripes = [\"pv0\", 8]\n}\nsegment2 {\nstart_extent = 4\nextent_count = 3\n\
        type = \"striped\"\nstripe_count = 1\nstripes = [\"pv0\", 1]\n}\n}\n}\n}\n\
        contents = \"Text Format Volume Group\"\nversion = 1\n";

    fn new(vg_id: Option<String>) -> NewPv {
        NewPv {
            pv_key: "pv0".into(),
            seqno: 5,
            dev_size: 300_000,
            pe_count: 36,
            lvs: vec![LvPlace {
                name: "root".into(),
                first_pe: 0,
                extents: 30,
            }],
            vg_id,
            pv_id: None,
        }
    }

    #[test]
    fn one_linear_segment_and_the_seqno_asked() {
        let out = relayout(TEXT, &new(None)).unwrap();
        let vg = VolumeGroup::parse(&out).unwrap();
        assert_eq!((vg.seqno, vg.id.as_str()), (5, "vgid"));
        assert_eq!(vg.pvs[0].pe_count, 36);
        assert_eq!(vg.lvs[0].segments.len(), 1);
        assert_eq!(vg.lvs[0].extents(), 30);
        assert_eq!(vg.lvs[0].tags, vec!["t".to_string()]);
        assert!(out.contains("contents = \"Text Format Volume Group\""));
        let id = new_id();
        let vg = VolumeGroup::parse(&relayout(TEXT, &new(Some(id.clone()))).unwrap()).unwrap();
        assert_eq!(vg.id, id);
        assert_eq!(id.len(), 38);
    }

    #[test]
    fn an_lv_without_a_place_is_an_error() {
        let mut n = new(None);
        n.lvs[0].name = "other".into();
        assert!(matches!(relayout(TEXT, &n), Err(LvmError::Vg { .. })));
        assert!(relayout("vg0 {\n", &new(None)).is_err());
    }
}

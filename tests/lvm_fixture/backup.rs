//! What lvm2's `vgcfgbackup` says of a PV image (after `pvck` passed on it), read by a
//! small parser of the tests' own, so the restored metadata is judged by lvm2 and not
//! by ironclone's decoder.

use super::{lvm, sh, Detach, PvFixture};
use std::collections::BTreeMap;
use std::path::Path;

/// What vgcfgbackup says of the VG.
#[derive(Debug, Default)]
pub struct Meta {
    pub vg_id: String,
    pub pv_id: String,
    pub seqno: u64,
    pub pe_start: u64,
    pub pe_count: u64,
    pub lvs: BTreeMap<String, LvMeta>,
}

#[derive(Debug, Default)]
pub struct LvMeta {
    /// First PV extent and extents of its first segment.
    pub first: u64,
    pub count: u64,
    pub tags: String,
    pub segments: String,
    pub stripes: String,
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').to_string()
}

/// Reads lvm2's own backup text.
pub fn parse(text: &str) -> Meta {
    let mut m = Meta::default();
    let mut path: Vec<String> = Vec::new();
    // lvm2 spreads lists over lines: one line per value here.
    let mut depth = 0;
    let text: String = text
        .chars()
        .map(|c| {
            depth += match c {
                '[' => 1,
                ']' => -1,
                _ => 0,
            };
            if c == '\n' && depth > 0 {
                ' '
            } else {
                c
            }
        })
        .collect();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_suffix('{') {
            path.push(name.trim().to_string());
            continue;
        }
        if line == "}" {
            path.pop();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.split('#').next().unwrap().trim());
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        match (p.as_slice(), k) {
            ([_], "id") => m.vg_id = unquote(v),
            ([_], "seqno") => m.seqno = v.parse().unwrap(),
            ([_, "physical_volumes", _], "id") => m.pv_id = unquote(v),
            ([_, "physical_volumes", _], "pe_start") => m.pe_start = v.parse().unwrap(),
            ([_, "physical_volumes", _], "pe_count") => m.pe_count = v.parse().unwrap(),
            ([_, "logical_volumes", lv], "tags") => {
                m.lvs.entry(lv.to_string()).or_default().tags = v.to_string()
            }
            ([_, "logical_volumes", lv], "segment_count") => {
                m.lvs.entry(lv.to_string()).or_default().segments = v.to_string()
            }
            ([_, "logical_volumes", lv, "segment1"], "extent_count") => {
                m.lvs.entry(lv.to_string()).or_default().count = v.parse().unwrap()
            }
            ([_, "logical_volumes", lv, "segment1"], "stripe_count") => {
                m.lvs.entry(lv.to_string()).or_default().stripes = v.to_string()
            }
            ([_, "logical_volumes", lv, "segment1"], "stripes") => {
                let pe = v.trim_matches(['[', ']']).split(',').nth(1).unwrap().trim();
                m.lvs.entry(lv.to_string()).or_default().first = pe.parse().unwrap();
            }
            _ => {}
        }
    }
    m
}

/// pvck, then vgcfgbackup of the PV image `pv`.
pub fn metadata(fx: &PvFixture, pv: &Path) -> Meta {
    let lo = sh("losetup", &["-f", "--show", "-r", pv.to_str().unwrap()]);
    let lo = Detach(lo.trim().into());
    lvm("pvck", &lo.0, &[lo.0.to_str().unwrap()]);
    let back = fx.dir.path().join("relaid.txt");
    lvm(
        "vgcfgbackup",
        &lo.0,
        &["-q", "-f", back.to_str().unwrap(), &fx.vg],
    );
    parse(&std::fs::read_to_string(&back).unwrap())
}

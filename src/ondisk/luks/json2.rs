//! The LUKS2 JSON area: the `segments` (where the encrypted data lies), the `keyslots`'
//! areas (which must lie before the data, so that the header area holds them) and
//! `config.json_size`. Numbers that can exceed 2^53 are JSON strings in LUKS2
//! (`"offset": "16777216"`), so they are parsed here, checked, into u64.
//!
//! serde_json parses the text: it is bounded by `hdr_size` (at most 4 MiB) and
//! serde_json limits nesting to 128 levels, so a crafted area ends in an error.

use super::error::LuksError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// cryptsetup allows 32 keyslots and a few segments; more is a crafted area.
const MAX_KEYSLOTS: usize = 32;
const SECTOR_SIZES: [u32; 4] = [512, 1024, 2048, 4096];

#[derive(Deserialize)]
struct Metadata {
    segments: BTreeMap<String, SegmentJson>,
    #[serde(default)]
    keyslots: BTreeMap<String, KeyslotJson>,
    config: ConfigJson,
}

#[derive(Deserialize)]
struct SegmentJson {
    #[serde(rename = "type")]
    kind: String,
    offset: String,
    size: String,
    #[serde(default)]
    encryption: Option<String>,
    #[serde(default)]
    sector_size: Option<u32>,
}

#[derive(Deserialize)]
struct KeyslotJson {
    area: AreaJson,
}

#[derive(Deserialize)]
struct AreaJson {
    offset: String,
    size: String,
}

#[derive(Deserialize)]
struct ConfigJson {
    json_size: String,
}

/// The one data segment of a LUKS2 volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Bytes from the device start.
    pub offset: u64,
    /// `None` for `"dynamic"`: the segment runs to the device's end (and follows it
    /// when the partition grows).
    pub size: Option<u64>,
    pub encryption: String,
    pub sector_size: u32,
}

/// What the JSON area says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Json {
    pub segment: Segment,
    pub keyslots: usize,
}

impl Json {
    /// Parses the JSON area (`area`, NUL padded) of a header whose JSON area is
    /// `json_len` bytes.
    pub fn parse(area: &[u8], json_len: u64) -> Result<Json, LuksError> {
        let bad = |what: String| LuksError::Json {
            len: json_len,
            what,
        };
        let end = area.iter().position(|&c| c == 0).unwrap_or(area.len());
        let text = area.get(..end).unwrap_or_default();
        let meta: Metadata =
            serde_json::from_slice(text).map_err(|e| bad(format!("not LUKS2 metadata: {e}")))?;
        let json_size = number(&meta.config.json_size)
            .ok_or_else(|| bad("config.json_size is not a number".into()))?;
        if json_size != json_len {
            return Err(bad(format!(
                "config.json_size {json_size} differs from hdr_size - 4096"
            )));
        }
        // A second segment exists only while a reencryption runs: the data is then
        // half old key, half new, and no single mapping reads it.
        let mut segs = meta.segments.iter();
        let (key, seg) = match (segs.next(), segs.next()) {
            (Some(one), None) => one,
            (None, _) => return Err(bad("no segment".into())),
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "{} segments (a reencryption in progress?)",
                    meta.segments.len()
                )))
            }
        };
        let segment = decode_segment(key, seg)?;
        if meta.keyslots.len() > MAX_KEYSLOTS {
            return Err(bad(format!("{} keyslots", meta.keyslots.len())));
        }
        for (key, slot) in &meta.keyslots {
            let ks = |field: &'static str, what: String| LuksError::Keyslot {
                key: key.clone(),
                field,
                what,
            };
            let off =
                number(&slot.area.offset).ok_or_else(|| ks("offset", "not a number".into()))?;
            let size = number(&slot.area.size).ok_or_else(|| ks("size", "not a number".into()))?;
            let end = off
                .checked_add(size)
                .ok_or_else(|| ks("size", "offset + size overflows".into()))?;
            if end > segment.offset {
                return Err(ks(
                    "size",
                    format!(
                        "ends at byte {end}, after the data segment's start {}",
                        segment.offset
                    ),
                ));
            }
        }
        Ok(Json {
            segment,
            keyslots: meta.keyslots.len(),
        })
    }
}

fn decode_segment(key: &str, s: &SegmentJson) -> Result<Segment, LuksError> {
    let bad = |field: &'static str, what: String| LuksError::Segment {
        key: key.to_string(),
        field,
        what,
    };
    if s.kind != "crypt" {
        return Err(bad("type", format!("{:?}, not \"crypt\"", s.kind)));
    }
    let sector_size = s.sector_size.unwrap_or(512);
    if !SECTOR_SIZES.contains(&sector_size) {
        return Err(bad("sector_size", format!("{sector_size}")));
    }
    let offset = number(&s.offset).ok_or_else(|| bad("offset", "not a number".into()))?;
    if offset == 0 || offset % 512 != 0 {
        return Err(bad(
            "offset",
            format!("{offset} is not a positive multiple of 512"),
        ));
    }
    let size = match s.size.as_str() {
        "dynamic" => None,
        n => {
            let n =
                number(n).ok_or_else(|| bad("size", "neither \"dynamic\" nor a number".into()))?;
            if n == 0 || n % u64::from(sector_size) != 0 {
                return Err(bad(
                    "size",
                    format!("{n} is not a positive multiple of sector_size {sector_size}"),
                ));
            }
            Some(n)
        }
    };
    Ok(Segment {
        offset,
        size,
        encryption: s.encryption.clone().unwrap_or_default(),
        sector_size,
    })
}

/// A LUKS2 number: decimal digits in a string.
fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

//! The partition table as Clonezilla saves it, `sfdisk -d` output in `<disk>-pt.sf`:
//! `key: value` header lines, then one `node : start=.., size=.., type=..` line a
//! partition. Only the fields a restore needs are kept; unknown keys are ignored as
//! newer sfdisk releases add some.

use super::error::ClonezillaError;
use std::path::Path;

/// Bounds the partitions a dump may list (GPT's usual array holds 128).
const MAX_PARTS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    Dos,
    Gpt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SfdiskEntry {
    /// Device node as saved, e.g. `/dev/sda1`.
    pub node: String,
    pub start: u64,
    pub size: u64,
    /// MBR type byte as hex (`83`) or GPT type GUID.
    pub type_: String,
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub bootable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SfdiskTable {
    pub label: Label,
    pub label_id: Option<String>,
    pub first_lba: Option<u64>,
    pub last_lba: Option<u64>,
    pub sector_size: u32,
    pub entries: Vec<SfdiskEntry>,
}

impl SfdiskTable {
    pub fn parse(file: &Path, text: &str) -> Result<Self, ClonezillaError> {
        let bad = |line: usize, why, t: &str| ClonezillaError::BadLine {
            file: file.to_path_buf(),
            line,
            why,
            text: t.to_string(),
        };
        let mut label = None;
        let mut t = Self {
            label: Label::Dos,
            label_id: None,
            first_lba: None,
            last_lba: None,
            sector_size: 512,
            entries: Vec::new(),
        };
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((node, rest)) = line.split_once(" : ") {
                if t.entries.len() >= MAX_PARTS {
                    return Err(bad(n, "more partitions than any table holds", line));
                }
                t.entries.push(
                    entry(node.trim(), rest).ok_or_else(|| bad(n, "not a partition line", line))?,
                );
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(bad(n, "neither a header nor a partition line", line));
            };
            let value = value.trim();
            let num = || {
                value
                    .parse::<u64>()
                    .map_err(|_| bad(n, "not a number", line))
            };
            match key.trim() {
                "label" => {
                    label = Some(match value {
                        "gpt" => Label::Gpt,
                        "dos" => Label::Dos,
                        _ => return Err(bad(n, "label is neither gpt nor dos", line)),
                    })
                }
                "label-id" => t.label_id = Some(value.to_string()),
                "first-lba" => t.first_lba = Some(num()?),
                "last-lba" => t.last_lba = Some(num()?),
                "sector-size" => {
                    let s = num()?;
                    t.sector_size = match s {
                        512 | 1024 | 2048 | 4096 => s as u32,
                        _ => {
                            return Err(bad(n, "sector size is not 512, 1024, 2048 or 4096", line))
                        }
                    };
                }
                _ => {}
            }
        }
        t.label = label.ok_or_else(|| ClonezillaError::Bad {
            file: file.to_path_buf(),
            why: "no `label:` line: not an sfdisk dump".into(),
        })?;
        Ok(t)
    }
}

/// `start=  2048, size= 1048576, type=.., uuid=.., name="..", bootable`
fn entry(node: &str, rest: &str) -> Option<SfdiskEntry> {
    let mut e = SfdiskEntry {
        node: node.to_string(),
        start: 0,
        size: 0,
        type_: String::new(),
        uuid: None,
        name: None,
        bootable: false,
    };
    let (mut have_start, mut have_size) = (false, false);
    for field in split_fields(rest) {
        let field = field.trim();
        match field.split_once('=') {
            Some((k, v)) => {
                let v = v.trim();
                match k.trim() {
                    "start" => (e.start, have_start) = (v.parse().ok()?, true),
                    "size" => (e.size, have_size) = (v.parse().ok()?, true),
                    "type" | "Id" => e.type_ = v.to_string(),
                    "uuid" => e.uuid = Some(v.to_string()),
                    "name" => e.name = Some(v.trim_matches('"').to_string()),
                    _ => {}
                }
            }
            None if field == "bootable" => e.bootable = true,
            None => {}
        }
    }
    (have_start && have_size).then_some(e)
}

/// Splits on commas outside double quotes (a GPT name may hold a comma).
fn split_fields(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(s.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s.get(start..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_gpt_dump() {
        let text = "label: gpt\nlabel-id: 0A8F\ndevice: /dev/sda\nunit: sectors\nfirst-lba: 34\nlast-lba: 204766\nsector-size: 512\n\n/dev/sda1 : start=        2048, size=       65536, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=1111, name=\"EFI, system\"\n/dev/sda2 : start=       67584, size=      100000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=2222\n";
        let t = SfdiskTable::parse(Path::new("sda-pt.sf"), text).unwrap();
        assert_eq!(t.label, Label::Gpt);
        assert_eq!(t.last_lba, Some(204766));
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[0].name.as_deref(), Some("EFI, system"));
        assert_eq!(t.entries[1].start, 67584);
        let e = SfdiskTable::parse(
            Path::new("sda-pt.sf"),
            "label: gpt\n/dev/sda1 : start=x, size=1\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("sda-pt.sf line 2"), "{e}");
        let e = SfdiskTable::parse(Path::new("sda-pt.sf"), "garbage\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}

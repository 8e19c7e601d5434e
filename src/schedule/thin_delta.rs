//! Changed-block tracking for thin LVs (issue 23). A scheduled run images a mounted
//! thin LV from a thin snapshot (`snapshot`); after a good image that snapshot is kept
//! as `ironclone-base-<lv>` (inactive, activation skipped, tagged with the image's
//! name) instead of being removed. The next run takes its new snapshot and asks
//! `thin_delta` (thin-provisioning-tools) which blocks of the thin device differ
//! between the two: the pool's metadata maps every block of both snapshots, so a block
//! the LV wrote since has a different mapping (thin provisioning copies on write a
//! block the base shares), and a discarded one is unmapped on one side. Only those
//! blocks are read (`repo::backup_unchanged`); every other chunk is the previous
//! image's. Then the new snapshot becomes the base.
//!
//! The kernel changes the pool's live metadata at any time, so thin_delta reads a
//! metadata snapshot of it (`dmsetup message <pool>-tpool 0 reserve_metadata_snap`,
//! released afterwards), as thin_dump users do.
//!
//! Cost: like any snapshot, the base keeps the blocks the LV overwrote since the last
//! run allocated in the pool. Whatever fails here (no thin_delta, no dmsetup, the
//! previous image pruned, a base without its tag) is a warning and the run reads the
//! used blocks as it does for every other filesystem; it never makes a wrong image
//! from a guess.

use super::error::ScheduleError;
use super::snapshot::{lvm, LvRef};
use crate::resize::run_tool;
use crate::usedmap::ByteExtent;
use std::path::PathBuf;

pub const BASE_PREFIX: &str = "ironclone-base-";
/// The base's LVM tag: this prefix and the image made from it. LVM tags allow
/// letters, digits and `_+.-/=!:&#`, which holds every image name.
pub const TAG_PREFIX: &str = "ironclone-image=";
/// Test knob: set, runs keep their base but read the used blocks (to measure both
/// ways on the same data).
pub const DISABLE_ENV: &str = "IRONCLONE_SCHEDULE_NO_THIN_DELTA";

pub fn base_name(lv: &LvRef) -> String {
    format!("{BASE_PREFIX}{}", lv.lv)
}

pub fn image_tag(image: &str) -> String {
    format!("{TAG_PREFIX}{image}")
}

pub fn disabled() -> bool {
    std::env::var_os(DISABLE_ENV).is_some()
}

/// A device-mapper name: lvm2 joins VG and LV with `-` and doubles their own dashes.
pub fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

/// What thin_delta says: the data block size and the changed byte ranges of the thin
/// device (sorted, adjacent ones merged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta {
    pub block_bytes: u64,
    pub changed: Vec<ByteExtent>,
}

impl Delta {
    pub fn changed_bytes(&self) -> u64 {
        self.changed.iter().map(|e| e.len).sum()
    }
}

/// The value of attribute `name` in one XML tag line (`name="value"`).
fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {name}=\""))? + name.len() + 3;
    let rest = line.get(at..)?;
    rest.get(..rest.find('"')?)
}

fn num(line: &str, name: &str) -> Result<u64, String> {
    attr(line, name)
        .ok_or_else(|| format!("no {name} in `{line}`"))?
        .parse()
        .map_err(|_| format!("{name} is not a number in `{line}`"))
}

/// Parses thin_delta's XML (without --verbose): `<superblock data_block_size=S ...>`
/// (S in 512-byte sectors), then in `<diff>` one `<same|different|left_only|right_only
/// begin=B length=N/>` per run of blocks of the thin device. All but `same` changed.
pub fn parse_delta(xml: &str) -> Result<Delta, String> {
    let mut block_bytes = None;
    let mut in_diff = false;
    let mut changed: Vec<ByteExtent> = Vec::new();
    for line in xml.lines().map(str::trim) {
        if line.starts_with("<superblock ") {
            let sectors = num(line, "data_block_size")?;
            block_bytes = Some(
                sectors
                    .checked_mul(512)
                    .filter(|&b| b > 0)
                    .ok_or_else(|| format!("data_block_size {sectors} is not a block size"))?,
            );
        } else if line.starts_with("<diff ") {
            in_diff = true;
        } else if line.starts_with("<same ") || line.starts_with("</") || line.is_empty() {
        } else if ["<different ", "<left_only ", "<right_only "]
            .iter()
            .any(|t| line.starts_with(t))
        {
            let bs = block_bytes.ok_or("a range before the superblock")?;
            let (begin, len) = (num(line, "begin")?, num(line, "length")?);
            let bad = || format!("range {begin}+{len} blocks overflows");
            let e = ByteExtent {
                offset: begin.checked_mul(bs).ok_or_else(bad)?,
                len: len.checked_mul(bs).ok_or_else(bad)?,
            };
            e.offset.checked_add(e.len).ok_or_else(bad)?;
            match changed.last_mut() {
                Some(l) if l.end() == e.offset => l.len += e.len,
                Some(l) if l.end() > e.offset => {
                    return Err(format!("ranges out of order at block {begin}"))
                }
                _ => changed.push(e),
            }
        } else {
            return Err(format!("unexpected line `{line}`"));
        }
    }
    match (block_bytes, in_diff) {
        (Some(block_bytes), true) => Ok(Delta {
            block_bytes,
            changed,
        }),
        _ => Err("no <superblock> with a <diff> in thin_delta's output".into()),
    }
}

/// The kept base of `lv` and the image made from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Base {
    pub lv: String,
    pub image: String,
}

/// Parses `lvs --separator '|' -o lv_name,lv_tags VG` for `base`.
pub fn parse_base(text: &str, base: &str) -> Option<Base> {
    text.lines().find_map(|l| {
        let (name, tags) = l.trim().split_once('|')?;
        (name.trim() == base).then(|| Base {
            lv: base.into(),
            image: tags
                .split(',')
                .find_map(|t| t.trim().strip_prefix(TAG_PREFIX))
                .unwrap_or_default()
                .into(),
        })
    })
}

/// The base `lv`'s last run kept, if any (its `image` empty when untagged).
pub fn find_base(lv: &LvRef) -> Result<Option<Base>, ScheduleError> {
    let out = lvm(
        "lvs",
        &[
            "--noheadings".into(),
            "--separator".into(),
            "|".into(),
            "-o".into(),
            "lv_name,lv_tags".into(),
            lv.vg.clone(),
        ],
    )?;
    Ok(parse_base(&out, &base_name(lv)))
}

fn thin_id(vg: &str, lv: &str) -> Result<u64, ScheduleError> {
    let out = lvm(
        "lvs",
        &[
            "--noheadings".into(),
            "-o".into(),
            "thin_id".into(),
            format!("{vg}/{lv}"),
        ],
    )?;
    out.trim().parse().map_err(|_| ScheduleError::Disk {
        disk: format!("{vg}/{lv}"),
        why: format!("lvs printed no thin device id (\"{}\")", out.trim()),
    })
}

fn dmsetup_message(pool_dm: &str, msg: &str) -> Result<(), ScheduleError> {
    run_tool("dmsetup", &["message", pool_dm, "0", msg], None, &[0])?;
    Ok(())
}

/// The blocks of the thin device that differ between the base and `snap` (an LV name
/// in the same VG), from a metadata snapshot of `lv`'s pool.
pub fn delta(lv: &LvRef, base: &Base, snap: &str) -> Result<Delta, ScheduleError> {
    let pool = lv.pool.as_deref().ok_or_else(|| ScheduleError::Disk {
        disk: format!("{}/{}", lv.vg, lv.lv),
        why: "not a thin LV".into(),
    })?;
    let (a, b) = (thin_id(&lv.vg, &base.lv)?, thin_id(&lv.vg, snap)?);
    // The pool's thin-pool target is `<pool>-tpool` while thin LVs are active (lvm2
    // then puts a linear layer named after the pool above it).
    let tpool = [
        format!("{}-tpool", dm_name(&lv.vg, pool)),
        dm_name(&lv.vg, pool),
    ]
    .into_iter()
    .find(|n| std::path::Path::new("/dev/mapper").join(n).exists())
    .ok_or_else(|| ScheduleError::Disk {
        disk: format!("{}/{pool}", lv.vg),
        why: "the thin pool is not active (no /dev/mapper node)".into(),
    })?;
    let tmeta = PathBuf::from("/dev/mapper").join(dm_name(&lv.vg, &format!("{pool}_tmeta")));
    dmsetup_message(&tpool, "reserve_metadata_snap")?;
    let out = run_tool(
        "thin_delta",
        &[
            "--metadata-snap",
            "--snap1",
            &a.to_string(),
            "--snap2",
            &b.to_string(),
            &tmeta.to_string_lossy(),
        ],
        None,
        &[0],
    );
    // Released whatever thin_delta did: a reserved metadata snapshot blocks the next.
    let released = dmsetup_message(&tpool, "release_metadata_snap");
    let out = out?;
    released?;
    parse_delta(&out.stdout).map_err(|why| ScheduleError::Disk {
        disk: format!("{}/{}", lv.vg, lv.lv),
        why: format!("thin_delta: {why}"),
    })
}

/// Makes snapshot `snap` of `lv` the new base: the old base is removed first (a crash
/// in between leaves no base, and the next run reads everything), then `snap` is
/// renamed, deactivated and marked to be skipped by autoactivation (it holds the same
/// filesystem UUID as the LV).
pub fn promote(lv: &LvRef, snap: &str) -> Result<(), ScheduleError> {
    let base = base_name(lv);
    if find_base(lv)?.is_some() {
        lvm("lvremove", &["-f".into(), format!("{}/{base}", lv.vg)])?;
    }
    lvm("lvrename", &[lv.vg.clone(), snap.to_string(), base.clone()])?;
    let path = format!("{}/{base}", lv.vg);
    lvm("lvchange", &["-an".into(), path.clone()])?;
    lvm("lvchange", &["-ky".into(), path])?;
    Ok(())
}

/// Removes the base of `lv` (a thick LV, or a run without an image to go with it).
pub fn remove_base(lv: &LvRef) -> Result<(), ScheduleError> {
    if find_base(lv)?.is_some() {
        lvm(
            "lvremove",
            &["-f".into(), format!("{}/{}", lv.vg, base_name(lv))],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_thin_delta_output() {
        // What thin_delta 0.9 prints for a thin_restore'd metadata (see the test below).
        let xml = r#"<superblock uuid="" time="1" transaction="1" data_block_size="128" nr_data_blocks="100">
  <diff left="1" right="2">
    <same begin="0" length="1"/>
    <different begin="1" length="1"/>
    <same begin="2" length="1"/>
    <left_only begin="3" length="1"/>
    <right_only begin="4" length="2"/>
    <different begin="9" length="1"/>
  </diff>
</superblock>
"#;
        let d = parse_delta(xml).unwrap();
        let k = 64 << 10;
        assert_eq!(d.block_bytes, k);
        assert_eq!(
            d.changed,
            vec![
                ByteExtent { offset: k, len: k },
                ByteExtent {
                    offset: 3 * k,
                    len: 3 * k
                },
                ByteExtent {
                    offset: 9 * k,
                    len: k
                },
            ]
        );
        assert_eq!(d.changed_bytes(), 5 * k);
        let empty = "<superblock data_block_size=\"128\">\n<diff left=\"1\" right=\"2\">\n</diff>\n</superblock>\n";
        assert_eq!(parse_delta(empty).unwrap().changed, vec![]);
        for bad in [
            "",
            "<superblock data_block_size=\"128\">\n</superblock>",
            "<superblock data_block_size=\"0\">\n<diff>",
            "<superblock data_block_size=\"x\">\n<diff left=\"1\">",
            "<superblock data_block_size=\"128\">\n<diff left=\"1\">\n<different begin=\"1\"/>",
            "<superblock data_block_size=\"128\">\n<diff left=\"1\">\n<different begin=\"4\" length=\"1\"/>\n<different begin=\"2\" length=\"1\"/>",
            "<superblock data_block_size=\"128\">\n<diff left=\"1\">\n<different begin=\"18446744073709551615\" length=\"1\"/>",
            "<superblock data_block_size=\"128\">\n<diff left=\"1\">\n<range begin=\"1\" length=\"1\"/>",
        ] {
            assert!(parse_delta(bad).is_err(), "{bad}");
        }
    }

    /// The real tool on metadata thin_restore writes to a file (no device-mapper on
    /// the host): device 2 remaps block 1, drops block 3, adds blocks 5-6.
    #[test]
    fn thin_delta_itself_agrees() {
        if run_tool("thin_delta", &["--version"], None, &[0]).is_err() {
            eprintln!("thin_delta not installed (thin-provisioning-tools); skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let xml = dir.path().join("meta.xml");
        std::fs::write(
            &xml,
            r#"<superblock uuid="" time="1" transaction="1" data_block_size="128" nr_data_blocks="100">
  <device dev_id="1" mapped_blocks="4" transaction="0" creation_time="0" snap_time="1">
    <range_mapping origin_begin="0" data_begin="0" length="4" time="0"/>
  </device>
  <device dev_id="2" mapped_blocks="5" transaction="0" creation_time="0" snap_time="1">
    <single_mapping origin_block="0" data_block="0" time="0"/>
    <single_mapping origin_block="1" data_block="10" time="1"/>
    <single_mapping origin_block="2" data_block="2" time="0"/>
    <single_mapping origin_block="5" data_block="11" time="1"/>
    <single_mapping origin_block="6" data_block="12" time="1"/>
  </device>
</superblock>
"#,
        )
        .unwrap();
        let meta = dir.path().join("meta.bin");
        std::fs::File::create(&meta)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let (x, m) = (xml.to_str().unwrap(), meta.to_str().unwrap());
        run_tool("thin_restore", &["-i", x, "-o", m], None, &[0]).unwrap();
        let out = run_tool(
            "thin_delta",
            &["--snap1", "1", "--snap2", "2", m],
            None,
            &[0],
        )
        .unwrap();
        let d = parse_delta(&out.stdout).unwrap();
        let k = 64 << 10;
        assert_eq!(
            d.changed,
            vec![
                ByteExtent { offset: k, len: k },
                ByteExtent {
                    offset: 3 * k,
                    len: k
                },
                ByteExtent {
                    offset: 5 * k,
                    len: 2 * k
                },
            ],
            "{}",
            out.stdout
        );
    }

    #[test]
    fn names_and_tags() {
        assert_eq!(dm_name("vg-0", "pool_tmeta"), "vg--0-pool_tmeta");
        let lv = LvRef {
            vg: "vg0".into(),
            lv: "thin".into(),
            pool: Some("pool".into()),
        };
        assert_eq!(base_name(&lv), "ironclone-base-thin");
        let lvs = "  pool||\n  ironclone-base-thin|ironclone-image=pc-thin-2026-12-03-081500,other|\n  thin||\n";
        assert_eq!(
            parse_base(lvs, "ironclone-base-thin"),
            Some(Base {
                lv: "ironclone-base-thin".into(),
                image: "pc-thin-2026-12-03-081500".into()
            })
        );
        assert_eq!(parse_base("  thin|\n", "ironclone-base-thin"), None);
        assert_eq!(
            parse_base("  ironclone-base-thin|\n", "ironclone-base-thin").map(|b| b.image),
            Some(String::new())
        );
        assert_eq!(image_tag("a"), "ironclone-image=a");
    }
}

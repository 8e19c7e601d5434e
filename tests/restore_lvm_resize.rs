//! An LVM2 PV partition restored at another size through the binary: the fixture PV
//! (tests/lvm_fixture: ext4 LVs in linear and striped segments, swap, a hidden LV)
//! in a GPT disk, restored onto 1.5x (the PV grows, the root LV takes the growth),
//! onto a disk where the PV must shrink below its LVs' total (the root LV shrinks),
//! with `--new-ids` (new PV/VG UUIDs, same names), and onto a disk too small even for
//! the LVs' minimums (refused, the target untouched). Judged by lvm2's `pvck` and
//! `vgcfgbackup` (ids, names, tags, each LV's new extents, read by a small parser of
//! its own here), `e2fsck -fn` and every file of each ext4 LV read at its new extents,
//! the swap header and the hidden LV's bytes. Needs root (loop devices).

mod common;
mod lvm_fixture;
mod restore_fixture;

use common::path_str;
use lvm_fixture::{gather, lvm, same_files, sh, Detach, PvFixture, EXT, PE_START};
use restore_fixture::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const LINUX_LVM: &str = "E6D6D379-F507-44C2-A23C-238F2A3DF928";

/// What vgcfgbackup says of the VG.
#[derive(Debug, Default)]
struct Meta {
    vg_id: String,
    pv_id: String,
    pe_start: u64,
    pe_count: u64,
    lvs: BTreeMap<String, LvMeta>,
}

#[derive(Debug, Default)]
struct LvMeta {
    /// First PV extent and extents of its first segment.
    first: u64,
    count: u64,
    tags: String,
    segments: String,
    stripes: String,
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').to_string()
}

/// Reads lvm2's own backup text.
fn parse(text: &str) -> Meta {
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
fn metadata(fx: &PvFixture, pv: &Path) -> Meta {
    let lo = sh("losetup", &["-f", "--show", "-r", path_str(pv)]);
    let lo = Detach(lo.trim().into());
    lvm("pvck", &lo.0, &[lo.0.to_str().unwrap()]);
    let back = fx.dir.path().join("relaid.txt");
    lvm("vgcfgbackup", &lo.0, &["-q", "-f", path_str(&back), &fx.vg]);
    parse(&std::fs::read_to_string(&back).unwrap())
}

/// Every LV of the fixture in the relaid PV `copy`: ext4 clean, its files, at its
/// new size; swap and the hidden LV as they were. Returns the metadata.
fn check_relaid(fx: &PvFixture, copy: &Path, src: &Meta, same_ids: bool, what: &str) -> Meta {
    let m = metadata(fx, copy);
    assert_eq!(m.pe_start * 512, PE_START, "{what}: pe_start");
    assert_eq!(
        (m.vg_id == src.vg_id, m.pv_id == src.pv_id),
        (same_ids, same_ids),
        "{what}: VG/PV ids {m:?} against {src:?}"
    );
    let names: Vec<_> = m.lvs.keys().collect();
    let src_names: Vec<_> = src.lvs.keys().collect();
    assert_eq!(names, src_names, "{what}: LV names");
    for (name, l) in &m.lvs {
        let (first, count) = (&l.first, &l.count);
        assert_eq!(l.tags, src.lvs[name].tags, "{what}: LV {name}'s tags");
        assert_eq!(
            (l.segments.as_str(), l.stripes.as_str()),
            ("1", "1"),
            "{what}: LV {name} is not one linear segment"
        );
        assert!(first + count <= m.pe_count, "{what}: LV {name} past the PV");
        let seg = vec![(0, *count, vec![*first])];
        let out = fx.dir.path().join(format!("{name}.relaid"));
        gather(copy, &out, &seg);
        match name.as_str() {
            "root" | "data" => {
                let fsck = Command::new("e2fsck")
                    .args(["-fn", path_str(&out)])
                    .output()
                    .unwrap();
                assert!(
                    fsck.status.success(),
                    "{what}: {name}: e2fsck -fn:\n{}",
                    String::from_utf8_lossy(&fsck.stdout)
                );
                let blocks: u64 = dumpe2fs_field(&out, "Block count").parse().unwrap();
                let bs: u64 = dumpe2fs_field(&out, "Block size").parse().unwrap();
                assert_eq!(
                    blocks * bs,
                    count * EXT,
                    "{what}: {name} does not fill its LV"
                );
                same_files(&out, &fx.dir.path().join(format!("files-{name}")), "");
            }
            "swap" => {
                assert_eq!(*count, 2, "{what}: the swap LV changed size");
                let orig = std::fs::read(fx.lv("swap").1.as_ref().unwrap()).unwrap();
                assert_eq!(
                    std::fs::read(&out).unwrap()[..4096],
                    orig[..4096],
                    "{what}: swap"
                );
            }
            _ => {
                let orig = std::fs::read(fx.lv(name).1.as_ref().unwrap()).unwrap();
                assert!(
                    std::fs::read(&out).unwrap() == orig,
                    "{what}: LV {name}'s bytes"
                );
            }
        }
        std::fs::remove_file(&out).unwrap();
    }
    m
}

#[test]
#[ignore = "needs root"]
fn a_pv_grows_and_shrinks_through_its_root_lv() {
    for t in [
        "sfdisk",
        "sgdisk",
        "mkfs.ext4",
        "lvm",
        "debugfs",
        "resize2fs",
    ] {
        common::require_tool(t);
    }
    let fx = PvFixture::new("icvgresize");
    let src_meta = metadata(&fx, &fx.pv);
    let td = common::tempdir();
    let dir = td.path().to_path_buf();
    let disk = dir.join("src.img");
    let size = 160 * MIB;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    let script = format!("label: gpt\n,40M,L\n,96M,{LINUX_LVM}\n");
    common::run_in("sfdisk", &["-q", path_str(&disk)], Some(&script));
    let ext = FsSpec {
        number: 1,
        fs: Fs::Ext4,
        files: files(31, 3),
    };
    ext4_into(&disk, &dir, &ext);
    let (start, _) = part(&disk, 2);
    dd_in(&disk, &fx.pv, start);
    let repo = dir.join("repo");
    let (ok, log) = ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup failed:\n{log}");
    let s = Source {
        _dir: td,
        dir,
        disk,
        repo,
        size,
        gpt: true,
        fss: vec![ext],
    };

    // (target, extra args, same ids, what the root LV does)
    let cases: [(&str, u64, &[&str], bool, std::cmp::Ordering); 3] = [
        (
            "grow.img",
            size * 3 / 2,
            &[],
            true,
            std::cmp::Ordering::Greater,
        ),
        (
            "ids.img",
            size * 3 / 2,
            &["--new-ids"],
            false,
            std::cmp::Ordering::Greater,
        ),
        (
            "shrink.img",
            size,
            &["--size", "2=52M"],
            true,
            std::cmp::Ordering::Less,
        ),
    ];
    for (name, tsize, extra, same_ids, root) in cases {
        let t = s.target(name, tsize);
        let log = s.restore_ok(&t, extra);
        s.check(&t, same_ids, &log);
        let (pstart, plen) = part(&t, 2);
        assert_ne!(plen, 96 * MIB, "{name}: the PV kept its size\n{log}");
        assert!(
            log.contains("root (root LV)"),
            "{name}: no LV line in the plan\n{log}"
        );
        let copy = s.dir.join(format!("{name}.pv"));
        dd_out(&t, &copy, pstart, plen);
        let m = check_relaid(&fx, &copy, &src_meta, same_ids, name);
        assert_eq!(
            m.pe_count,
            (plen - PE_START) / EXT,
            "{name}: pe_count\n{log}"
        );
        assert_eq!(
            m.lvs["root"].count.cmp(&7),
            root,
            "{name}: root LV {m:?}\n{log}"
        );
        assert_eq!(m.lvs["data"].count, 4, "{name}: data LV {m:?}\n{log}");
        std::fs::remove_file(&copy).unwrap();
        std::fs::remove_file(&t).unwrap();
    }

    // Even the LVs' minimums do not fit: refused, the target untouched.
    let t = s.target("small.img", 80 * MIB);
    let before = std::fs::read(&t).unwrap();
    let (ok, log) = s.restore(&t, &["--size", "2=30M"]);
    assert!(!ok, "a 30 MiB PV should be refused:\n{log}");
    assert!(
        std::fs::read(&t).unwrap() == before,
        "the refused target was written\n{log}"
    );
}

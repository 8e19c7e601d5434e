//! An LVM2 PV partition restored at another size through the binary: the fixture PV
//! (tests/lvm_fixture: ext4 LVs in linear and striped segments, swap, a hidden LV)
//! in a GPT disk, restored onto 1.5x (the PV grows, the root LV takes the growth),
//! onto a disk where the PV must shrink below its LVs' total (the root LV shrinks),
//! with `--new-ids` (new PV/VG UUIDs, same names), and onto a disk too small even for
//! the LVs' minimums (refused, the target untouched). A PV holding an XFS LV: it grows,
//! or given less room is re-created (`xfs_repair -n`, same UUID, files read back on a
//! read-only mount), and below mkfs.xfs's minimum it is refused. Judged by lvm2's `pvck` and
//! `vgcfgbackup` (ids, names, tags, each LV's new extents, read by a small parser of
//! its own here), `e2fsck -fn` and every file of each ext4 LV read at its new extents,
//! the swap header and the hidden LV's bytes. Needs root (loop devices).

mod common;
mod fsfixture;
mod lvm_fixture;
mod restore_fixture;
mod xfs_fixture;

use common::path_str;
use lvm_fixture::backup::{metadata, Meta};
use lvm_fixture::{files_dir, gather, same_files, PvFixture, EXT, PE_START};
use restore_fixture::*;
use std::path::Path;
use std::process::Command;

/// Every LV of the fixture in the relaid PV `copy`: ext4 clean, its files, at its
/// new size; swap and the hidden LV as they were. Returns the metadata.
fn check_relaid(fx: &PvFixture, copy: &Path, src: &Meta, same_ids: bool, what: &str) -> Meta {
    let m = metadata(fx, copy);
    assert_eq!(m.pe_start * 512, PE_START, "{what}: pe_start");
    assert_eq!(m.seqno, src.seqno + 1, "{what}: seqno");
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
    let (s, _) = pv_disk_source(&fx.pv);
    let size = s.size;

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

    // lvm2 failing while the new PV is written (a fake `lvm` first in PATH): the restore
    // stops before the target's first write, with what lvm said, and no scratch left.
    let fake = s.dir.join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    let script = fake.join("lvm");
    std::fs::write(&script, "#!/bin/sh\necho 'fake lvm: no' >&2\nexit 5\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let t = s.target("nolvm.img", size * 3 / 2);
    let before = std::fs::read(&t).unwrap();
    let scratch = s.dir.join("scratch-nolvm");
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let out = Command::new(BIN)
        .args([
            "restore",
            path_str(&s.repo),
            "img",
            path_str(&t),
            "--yes",
            "--no-nvram",
        ])
        .args(["--scratch", path_str(&scratch)])
        .env("PATH", path)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "a restore without lvm2 should fail:\n{log}"
    );
    assert!(
        log.contains("fake lvm: no"),
        "lvm's stderr is not shown:\n{log}"
    );
    assert!(
        std::fs::read(&t).unwrap() == before,
        "the failed target was written\n{log}"
    );
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "scratch files left: {left:?}");
}

/// Compares every file under `files` with the same path under `mounted`.
fn same_tree(files: &Path, mounted: &Path, what: &str) {
    for e in std::fs::read_dir(files).unwrap() {
        let e = e.unwrap();
        let there = mounted.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            same_tree(&e.path(), &there, what);
        } else {
            assert!(
                std::fs::read(e.path()).unwrap() == std::fs::read(&there).unwrap(),
                "{what}: {} differs",
                there.display()
            );
        }
    }
}

#[test]
#[ignore = "needs root"]
fn an_xfs_lv_grows_or_is_re_created() {
    for t in [
        "sfdisk",
        "lvm",
        "mkfs.xfs",
        "xfs_growfs",
        "xfs_repair",
        "xfs_db",
    ] {
        common::require_tool(t);
    }
    let dir = tempfile::tempdir().unwrap();
    let xfs = dir.path().join("xroot.fs");
    xfs_fixture::mkfs(&xfs, &["-L", "xroot"]);
    let files = files_dir(dir.path(), "xroot", 40, 5);
    {
        let _m = xfs_fixture::LoopMount::new(&xfs, &dir.path().join("mnt"), "rw");
        common::run(
            "cp",
            &[
                "-a",
                &format!("{}/.", path_str(&files)),
                path_str(&dir.path().join("mnt")),
            ],
        );
    }
    let xfs_ext = xfs_fixture::SIZE / EXT;
    let swap = dir.path().join("swap.fs");
    std::fs::File::create(&swap)
        .unwrap()
        .set_len(2 * EXT)
        .unwrap();
    common::run("mkswap", &[path_str(&swap)]);
    let lvs = vec![
        ("xroot".into(), Some(xfs), vec![(0, xfs_ext, vec![0])]),
        ("swap".into(), Some(swap), vec![(0, 2, vec![xfs_ext])]),
    ];
    let pv_len = 336 * MIB;
    let fx = PvFixture::build(dir, "icvgxfs", pv_len, lvs);
    let src_meta = metadata(&fx, &fx.pv);

    let td = common::tempdir();
    let sdir = td.path().to_path_buf();
    let disk = sdir.join("src.img");
    let size = 400 * MIB;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    let script = format!("label: gpt\n,336M,{LINUX_LVM}\n");
    common::run_in("sfdisk", &["-q", path_str(&disk)], Some(&script));
    let (start, _) = part(&disk, 1);
    dd_in(&disk, &fx.pv, start);
    let repo = sdir.join("repo");
    let (ok, log) = ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup failed:\n{log}");
    let s = Source {
        _dir: td,
        dir: sdir,
        disk,
        repo,
        size,
        gpt: true,
        fss: vec![],
    };

    let xfs_db = |img: &Path, cmds: &[&str]| -> String {
        let mut a = vec!["-r"];
        for c in cmds {
            a.extend_from_slice(&["-c", c]);
        }
        a.push(path_str(img));
        common::run("xfs_db", &a)
    };
    let src_uuid = xfs_db(fx.lv("xroot").1.as_ref().unwrap(), &["uuid"]);
    // Grown into a 1.5x disk; re-created in a PV with less room than it had.
    let cases: [(&str, u64, &[&str], std::cmp::Ordering); 2] = [
        ("grow.img", size * 3 / 2, &[], std::cmp::Ordering::Greater),
        (
            "recreate.img",
            size,
            &["--size", "1=312M"],
            std::cmp::Ordering::Less,
        ),
    ];
    for (name, tsize, extra, how) in cases {
        let t = s.target(name, tsize);
        let log = s.restore_ok(&t, extra);
        let (pstart, plen) = part(&t, 1);
        let copy = s.dir.join(format!("{name}.pv"));
        dd_out(&t, &copy, pstart, plen);
        let m = metadata(&fx, &copy);
        assert_eq!(
            (m.vg_id == src_meta.vg_id, m.seqno),
            (true, src_meta.seqno + 1),
            "{name}\n{log}"
        );
        let x = &m.lvs["xroot"];
        assert_eq!(
            x.count.cmp(&xfs_ext),
            how,
            "{name}: the XFS LV: {m:?}\n{log}"
        );
        assert_eq!(
            m.lvs["swap"].count, 2,
            "{name}: the swap LV changed size\n{log}"
        );
        let out = fx.dir.path().join("xroot.back");
        gather(&copy, &out, &[(0, x.count, vec![x.first])]);
        let repair = Command::new("xfs_repair")
            .args(["-n", "-f", path_str(&out)])
            .output()
            .unwrap();
        assert!(
            repair.status.success(),
            "{name}: xfs_repair -n:\n{}",
            String::from_utf8_lossy(&repair.stderr)
        );
        assert_eq!(xfs_db(&out, &["uuid"]), src_uuid, "{name}: XFS UUID\n{log}");
        let db = xfs_db(&out, &["sb 0", "p dblocks", "p blocksize"]);
        let field = |k: &str| -> u64 {
            db.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = ")))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        assert_eq!(
            field("dblocks") * field("blocksize"),
            x.count * EXT,
            "{name}: the XFS does not fill its LV\n{log}"
        );
        {
            let mnt = fx.dir.path().join("check");
            let _m = xfs_fixture::LoopMount::new(&out, &mnt, "ro,nouuid");
            same_tree(&fx.dir.path().join("files-xroot"), &mnt, name);
        }
        std::fs::remove_file(&out).unwrap();
        std::fs::remove_file(&copy).unwrap();
        std::fs::remove_file(&t).unwrap();
    }

    // Less room than mkfs.xfs's 300 MiB and the swap LV: refused, the target untouched.
    let t = s.target("small.img", size);
    let before = std::fs::read(&t).unwrap();
    let (ok, log) = s.restore(&t, &["--size", "1=200M"]);
    assert!(!ok, "a 200 MiB PV should be refused:\n{log}");
    assert!(
        std::fs::read(&t).unwrap() == before,
        "the refused target was written\n{log}"
    );
}

/// A disk that is a PV as a whole (no partition table), backed up natively, restored
/// onto smaller and larger targets: the PV takes the target's whole extents, the root
/// LV the difference; Keep mode copies it at its size; a target below the LVs' least
/// sizes is refused untouched.
#[test]
#[ignore = "needs root"]
fn a_whole_disk_pv_is_laid_out_anew_at_the_targets_size() {
    for t in ["mkfs.ext4", "lvm", "debugfs", "resize2fs", "e2fsck"] {
        common::require_tool(t);
    }
    let fx = PvFixture::new("icvgwhole");
    let src_meta = metadata(&fx, &fx.pv);
    let td = common::tempdir();
    let dir = td.path().to_path_buf();
    let repo = dir.join("repo");
    let (ok, log) = ironclone(&["backup", path_str(&fx.pv), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup failed:\n{log}");
    let size = std::fs::metadata(&fx.pv).unwrap().len();
    let s = Source {
        _dir: td,
        dir,
        disk: fx.pv.clone(),
        repo,
        size,
        gpt: false,
        fss: vec![],
    };
    // (target, extra args, same ids): 0.7x (the root LV takes the free extents),
    // 1.5x, 0.5x (the root LV shrinks), new ids.
    let cases: [(&str, u64, &[&str], bool); 4] = [
        ("w07.img", size * 7 / 10, &[], true),
        ("w15.img", size * 3 / 2, &[], true),
        ("w05.img", size / 2, &[], true),
        ("wids.img", size * 3 / 2, &["--new-ids"], false),
    ];
    for (name, tsize, extra, same_ids) in cases {
        let t = s.target(name, tsize);
        let tlen = std::fs::metadata(&t).unwrap().len();
        let log = s.restore_ok(&t, extra);
        assert!(
            log.contains("the disk (LVM2 PV of VG icvgwhole)") && log.contains("root (root LV)"),
            "{name}: no LV line in the plan\n{log}"
        );
        let m = check_relaid(&fx, &t, &src_meta, same_ids, name);
        let pe = (tlen - PE_START) / EXT;
        assert_eq!(m.pe_count, pe, "{name}: pe_count {m:?}\n{log}");
        // data 4 + swap 2 + pool_tdata 1 keep their extents; root takes the rest.
        assert_eq!(m.lvs["root"].count, pe - 7, "{name}: root LV {m:?}\n{log}");
        assert_eq!(m.lvs["data"].count, 4, "{name}: data LV {m:?}\n{log}");
        std::fs::remove_file(&t).unwrap();
    }

    // Keep mode: the PV at its saved size on a larger target, its LVs as they were.
    let t = s.target("wkeep.img", size * 3 / 2);
    let log = s.restore_ok(&t, &["--layout", "keep"]);
    let copy = s.dir.join("wkeep.pv");
    dd_out(&t, &copy, 0, size);
    fx.check_copy(&copy, "keep");
    assert_eq!(
        metadata(&fx, &copy).seqno,
        src_meta.seqno,
        "keep: relaid\n{log}"
    );
    std::fs::remove_file(&copy).unwrap();
    std::fs::remove_file(&t).unwrap();

    // Even the LVs' minimums do not fit: refused naming the LVs, the target untouched.
    let t = s.target("wsmall.img", 24 * MIB);
    let before = std::fs::read(&t).unwrap();
    let (ok, log) = s.restore(&t, &[]);
    assert!(!ok, "a 24 MiB target should be refused:\n{log}");
    assert!(
        log.contains("VG icvgwhole") && log.contains("each LV's least size: root"),
        "the refusal does not name the LVs:\n{log}"
    );
    assert!(
        std::fs::read(&t).unwrap() == before,
        "the refused target was written\n{log}"
    );
}

//! A Clonezilla savedisk image of a disk whose VG lies on two PVs (sda1 and sda2),
//! built the way ocs-sr saves it: lvm2 makes both PVs and the VG (pvcreate, vgcreate,
//! the LVs added by vgcfgrestore from edited metadata; the host has no
//! device-mapper), each LV's ext4 is laid onto its extents, then partclone images of
//! the LVs, `lvm_vg_dev.list` naming both PVs and vgcfgbackup's text. LV `root` has
//! its first four extents on pv0 and its last two on pv1; `home` lies on pv1 alone.
//!
//! Restored onto a 1.5x disk, then imported and restored natively: lvm2 reads both PVs
//! (`pvck`, then `vgcfgbackup` of the VG with both in view: the saved VG and PV ids,
//! both LVs), and each LV gathered from the extents of both PVs passes `e2fsck -fn`
//! and holds the fixture's files. Seen failing with the other PV's segments left
//! unplaced (root's last extents read as zeros: e2fsck fails).
//!
//! The same VG saved as an image of two disks (sda1 and sdb1): each disk restored on
//! its own, the VG is whole once both are.
//!
//! Needs root (loop devices, lvm2 on them).

mod clonezilla_fixture;
mod czlvm_fixture;
mod fsfixture;
mod lvm_fixture;
mod xfs_fixture;

use clonezilla_fixture::{dd_range, run_with_scratch, save_gpt_disk};
use czlvm_fixture::{part, s};
use fsfixture::{run, run_status};
use lvm_fixture::{files_dir, lvm_id, same_files, scatter, sh, Detach, EXT, MIB, PE_START};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Each PV partition: 64 MiB (15 extents of 4 MiB after the 1 MiB pe_start).
const PV_BYTES: u64 = 64 * MIB;
/// sda1 from 1 MiB, sda2 right after it, 1 MiB for the backup GPT.
const DISK: u64 = 2 * MIB + 2 * PV_BYTES;
/// A disk of the two-disk image: sda1 (or sdb1) alone.
const DISK_ONE: u64 = 2 * MIB + PV_BYTES;

/// An LV's extents: (LV extent, count, PV index, PV extent).
type Place = (u64, u64, usize, u64);
const ROOT: [Place; 2] = [(0, 4, 0, 2), (4, 2, 1, 5)];
const HOME: [Place; 1] = [(0, 4, 1, 0)];

/// lvm2 seeing only `devs`, writing no backup or archive.
fn lvm(cmd: &str, devs: &[&Path], args: &[&str]) -> String {
    let accept: Vec<String> = devs
        .iter()
        .map(|d| format!("\"a|^{}$|\"", d.display()))
        .collect();
    let config = format!(
        "devices {{ filter = [ {}, \"r|.*|\" ] }} backup {{ backup = 0 archive = 0 }}",
        accept.join(", ")
    );
    let mut a = vec![cmd, "--config", &config];
    a.extend_from_slice(args);
    sh("lvm", &a)
}

fn attach(file: &Path, ro: bool) -> Detach {
    let mut a = vec!["-f", "--show"];
    if ro {
        a.push("-r");
    }
    a.push(s(file));
    Detach(PathBuf::from(sh("losetup", &a).trim()))
}

fn ext4(dir: &Path, name: &str, extents: u64, seed: u64) -> PathBuf {
    let img = dir.join(format!("{name}.fs"));
    let files = files_dir(dir, name, 25, seed);
    fs::File::create(&img)
        .unwrap()
        .set_len(extents * EXT)
        .unwrap();
    run(
        "mkfs.ext4",
        &["-q", "-F", "-L", name, "-d", s(&files), s(&img)],
    );
    img
}

fn lv_text(vg: &str, name: &str, places: &[Place]) -> String {
    let mut t = format!(
        "{name} {{\nid = \"{}\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\nsegment_count = {}\n",
        lvm_id(&format!("{vg}-{name}")),
        places.len()
    );
    for (i, (first, count, pv, pe)) in places.iter().enumerate() {
        t += &format!(
            "segment{} {{\nstart_extent = {first}\nextent_count = {count}\ntype = \"striped\"\nstripe_count = 1\nstripes = [\"pv{pv}\", {pe}]\n}}\n",
            i + 1
        );
    }
    t + "}\n"
}

struct TwoPvs {
    dir: tempfile::TempDir,
    vg: String,
    root: PathBuf,
    image: PathBuf,
    pv_ids: [String; 2],
    vg_id: String,
}

fn quoted_after(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key))
        .map(|v| {
            v.trim()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"')
                .to_string()
        })
        .collect()
}

fn build(vg: &str, two_disks: bool) -> TwoPvs {
    let dir = tempfile::Builder::new()
        .prefix("ironclone-cz2pv-")
        .tempdir()
        .unwrap();
    let d = dir.path().to_path_buf();
    let root_fs = ext4(&d, "root", 6, 1);
    let home_fs = ext4(&d, "home", 4, 2);
    // Garbage in both PVs: free extents a restore copied would show.
    let pvs = [d.join("pv0.img"), d.join("pv1.img")];
    let junk: Vec<u8> = (0..PV_BYTES).map(|i| (i * 131 % 251) as u8 | 1).collect();
    for p in &pvs {
        fs::write(p, &junk).unwrap();
    }
    let conf = d.join("vg.txt");
    {
        let los = [attach(&pvs[0], false), attach(&pvs[1], false)];
        let devs = [los[0].0.as_path(), los[1].0.as_path()];
        for (i, lo) in devs.iter().enumerate() {
            let id = lvm_id(&format!("{vg}-pv{i}"));
            lvm(
                "pvcreate",
                &devs,
                &["-q", "-ff", "-y", "--uuid", &id, "--norestorefile", s(lo)],
            );
        }
        lvm(
            "vgcreate",
            &devs,
            &["-q", "-s", "4m", vg, s(devs[0]), s(devs[1])],
        );
        lvm("vgcfgbackup", &devs, &["-q", "-f", s(&conf), vg]);
        let meta = fs::read_to_string(&conf).unwrap();
        let end = meta.rfind('}').unwrap();
        let lvs = format!(
            "logical_volumes {{\n{}{}}}\n",
            lv_text(vg, "root", &ROOT),
            lv_text(vg, "home", &HOME)
        );
        let edited = d.join("vg-lvs.txt");
        fs::write(&edited, format!("{}{lvs}{}", &meta[..end], &meta[end..])).unwrap();
        lvm("vgcfgrestore", &devs, &["-q", "-f", s(&edited), vg]);
        // what ocs-sr saves: vgcfgbackup of the VG as it now is
        lvm("vgcfgbackup", &devs, &["-q", "-f", s(&conf), vg]);
    }
    for (img, places) in [(&root_fs, &ROOT[..]), (&home_fs, &HOME[..])] {
        for &(first, count, pv, pe) in places {
            scatter(&pvs[pv], img, &[(first, count, vec![pe])]);
        }
    }

    let root = d.join("partimag");
    let image = root.join("img");
    fs::create_dir_all(&image).unwrap();
    let (s1, n) = (MIB / 512, PV_BYTES / 512);
    let first = format!("1:{s1}:{}", s1 + n - 1);
    let pv_devs = match two_disks {
        // sda: GPT, sda1 = pv0, sda2 = pv1
        false => {
            let disk = d.join("source.img");
            fs::File::create(&disk).unwrap().set_len(DISK).unwrap();
            let second = format!("2:{}:{}", s1 + n, s1 + 2 * n - 1);
            run(
                "sgdisk",
                &[
                    "-Z",
                    "-n",
                    &first,
                    "-t",
                    "1:8E00",
                    "-n",
                    &second,
                    "-t",
                    "2:8E00",
                    s(&disk),
                ],
            );
            save_gpt_disk(&disk, &image, "sda");
            ["sda1", "sda2"]
        }
        // sda and sdb: GPT each, sda1 = pv0, sdb1 = pv1
        true => {
            for name in ["sda", "sdb"] {
                let disk = d.join(format!("source-{name}.img"));
                fs::File::create(&disk).unwrap().set_len(DISK_ONE).unwrap();
                run("sgdisk", &["-Z", "-n", &first, "-t", "1:8E00", s(&disk)]);
                save_gpt_disk(&disk, &image, name);
            }
            ["sda1", "sdb1"]
        }
    };
    let disks = match two_disks {
        false => "sda",
        true => "sda sdb",
    };
    fs::write(image.join("disk"), format!("{disks}\n")).unwrap();
    fs::write(image.join("parts"), pv_devs.join(" ") + "\n").unwrap();
    fs::write(
        image.join("clonezilla-img"),
        "This image was saved by Clonezilla\n### Image created time: 2026-1204-2300\n",
    )
    .unwrap();
    let text: String = fs::read_to_string(&conf)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(image.join(format!("lvm_{vg}.conf")), &text).unwrap();
    let ids = quoted_after(&text, "id =");
    // the VG's id comes first, then pv0's and pv1's, then the LVs'
    let (vg_id, pv_ids) = (ids[0].clone(), [ids[1].clone(), ids[2].clone()]);
    fs::write(
        image.join("lvm_vg_dev.list"),
        format!(
            "{vg} /dev/{} {}\n{vg} /dev/{} {}\n",
            pv_devs[0], pv_ids[0], pv_devs[1], pv_ids[1]
        ),
    )
    .unwrap();
    fs::write(
        image.join("lvm_logv.list"),
        format!(
            "/dev/{vg}/root  Linux rev 1.0 ext4 filesystem data, volume name \"root\"\n\
             /dev/{vg}/home  Linux rev 1.0 ext4 filesystem data, volume name \"home\"\n"
        ),
    )
    .unwrap();
    for (fs_img, lv) in [(&root_fs, "root"), (&home_fs, "home")] {
        let out = image.join(format!("{vg}-{lv}.ext4-ptcl-img"));
        run(
            "partclone.ext4",
            &["-q", "-c", "-s", s(fs_img), "-O", s(&out)],
        );
        run("zstd", &["-q", "-f", "--rm", s(&out)]);
    }
    TwoPvs {
        dir,
        vg: vg.to_string(),
        root,
        image,
        pv_ids,
        vg_id,
    }
}

impl TwoPvs {
    /// Judges the PVs restored at `at` (disk file, partition number): both read by lvm2
    /// with the saved ids, and each LV gathered from its extents on both PVs
    /// e2fsck-clean with the fixture's files.
    fn check(&self, at: [(&Path, usize); 2], what: &str) {
        let d = self.dir.path();
        let pvs = [d.join("pv0.out"), d.join("pv1.out")];
        for (p, (disk, n)) in pvs.iter().zip(at) {
            dd_range(disk, part(disk, n), p);
        }
        {
            let los = [attach(&pvs[0], true), attach(&pvs[1], true)];
            let devs = [los[0].0.as_path(), los[1].0.as_path()];
            for lo in devs {
                lvm("pvck", &devs, &[s(lo)]);
            }
            let back = d.join("back.txt");
            lvm("vgcfgbackup", &devs, &["-q", "-f", s(&back), &self.vg]);
            let text = fs::read_to_string(&back).unwrap();
            let ids = quoted_after(&text, "id =");
            assert_eq!(
                ids.get(..3),
                Some(
                    &[
                        self.vg_id.clone(),
                        self.pv_ids[0].clone(),
                        self.pv_ids[1].clone()
                    ][..]
                ),
                "{what}: the VG's and PVs' ids"
            );
            for lv in ["root {", "home {"] {
                assert!(text.contains(lv), "{what}: no LV {lv} in:\n{text}");
            }
        }
        for (name, places) in [("root", &ROOT[..]), ("home", &HOME[..])] {
            let out = d.join(format!("{name}.out"));
            let mut o = fs::File::create(&out).unwrap();
            for &(first, count, pv, pe) in places {
                let mut buf = vec![0u8; (count * EXT) as usize];
                let mut f = fs::File::open(&pvs[pv]).unwrap();
                f.seek(SeekFrom::Start(PE_START + pe * EXT)).unwrap();
                f.read_exact(&mut buf).unwrap();
                o.seek(SeekFrom::Start(first * EXT)).unwrap();
                o.write_all(&buf).unwrap();
            }
            drop(o);
            let r = run_status("e2fsck", &["-fn", s(&out)]);
            assert!(
                r.status.success(),
                "{what}: LV {name}: e2fsck -fn:\n{}",
                String::from_utf8_lossy(&r.stdout)
            );
            same_files(&out, &d.join(format!("files-{name}")), "");
        }
    }
}

/// `restore SRC IMAGE TARGET --yes --no-nvram EXTRA...` onto a new sparse file of `len`
/// bytes; its output, the restore having succeeded.
fn restore_onto(
    src: &Path,
    image: &str,
    target: &Path,
    len: u64,
    extra: &[&str],
    scratch: &Path,
) -> String {
    fs::File::create(target).unwrap().set_len(len).unwrap();
    let mut args = vec!["restore", s(src), image, s(target), "--yes", "--no-nvram"];
    args.extend_from_slice(extra);
    let (ok, out) = run_with_scratch(&args, scratch);
    assert!(ok, "{out}");
    out
}

/// `import` of the folder into `repo` as `cz`, then `verify` of the repository.
fn import_and_verify(root: &Path, repo: &Path, scratch: &Path) {
    let (ok, out) = run_with_scratch(
        &["import", s(root), "img", s(repo), "--name", "cz"],
        scratch,
    );
    assert!(ok, "{out}");
    let o = run_status(env!("CARGO_BIN_EXE_ironclone"), &["verify", s(repo)]);
    assert!(
        o.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
#[ignore = "needs root"]
fn a_vg_on_two_pvs_restores_and_imports() {
    let cz = build("cz2pv", false);
    let d = cz.dir.path();
    let scratch = d.join("scratch");
    assert!(cz.image.join("cz2pv-root.ext4-ptcl-img.zst").exists());

    // onto 1.5x: both PV partitions keep their size (a VG on several PVs is not laid
    // out anew), the table is fitted
    let target = d.join("t-large.img");
    restore_onto(&cz.root, "img", &target, DISK / 2 * 3, &[], &scratch);
    cz.check([(&target, 1), (&target, 2)], "restore 1.5x");
    let v = run_status("sgdisk", &["-v", s(&target)]);
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("No problems found"),
        "sgdisk -v: {}",
        String::from_utf8_lossy(&v.stdout)
    );
    fs::remove_file(&target).unwrap();

    // imported: verify passes, and the native restore gives the same disk
    let repo = d.join("repo");
    import_and_verify(&cz.root, &repo, &scratch);
    restore_onto(&repo, "cz", &target, DISK, &[], &scratch);
    cz.check([(&target, 1), (&target, 2)], "import, native restore");
}

/// The VG on sda1 and sdb1 of an image of two disks: each disk restored on its own
/// (`--disk`), its PV written by lvm2 beside a stand-in for the other; once both are
/// restored the VG is whole. Seen failing with the other disk's PV refused.
#[test]
#[ignore = "needs root"]
fn a_vg_on_two_disks_is_whole_once_both_disks_are_restored() {
    let cz = build("cz2dk", true);
    let d = cz.dir.path();
    let scratch = d.join("scratch");
    let mut targets = Vec::new();
    for name in ["sda", "sdb"] {
        let target = d.join(format!("t-{name}.img"));
        let extra = ["--disk", name];
        let out = restore_onto(&cz.root, "img", &target, DISK_ONE * 2, &extra, &scratch);
        let other = if name == "sda" { "sdb1" } else { "sda1" };
        assert!(
            out.contains(&format!("VG cz2dk also lies on {other} of another disk")),
            "{out}"
        );
        targets.push(target);
    }
    // no stand-in is left behind
    let left: Vec<_> = fs::read_dir(&scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in the scratch folder: {left:?}");
    cz.check(
        [(&targets[0], 1), (&targets[1], 1)],
        "two disks, each restored",
    );
    import_and_verify(&cz.root, &d.join("repo"), &scratch);
}

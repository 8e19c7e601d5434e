//! A Clonezilla saveparts image whose partitions are an ext4 `sda1` and the LVM PV
//! `sda2` (tests/czlvm_fixture, its table files removed as `ocs-sr saveparts` leaves
//! them out: VG with an ext4 LV in two out-of-order segments, an XFS LV and a swap LV):
//! - `images` lists it with its LVs, `browse DIR IMAGE <vg>-root` reads a file;
//! - `restore --part sda1=p1 --part sda2=p2` onto a loop disk laid out as the source
//!   (the fixture's whole-disk check: lvm2 reads the PV with the saved VG and PV ids,
//!   each LV gathered from its saved extents passes e2fsck -fn / xfs_repair -n and
//!   holds the fixture's files, swap has its UUID and label); onto a larger p2 laid out
//!   anew at its whole extents (lvm2's pe_count those extents, the XFS LV grown and its
//!   filesystem with it, ids kept, the bytes past the PV untouched), and with
//!   `--layout keep` as saved (the bytes after it untouched);
//! - refused before anything is written, the target byte for byte as it was: a target
//!   smaller than the PV (naming the PV and the sizes), a flipped byte in an LV image
//!   (naming the file), a VG on two PVs, an LV with no image;
//! - `import` makes `<name>-sda1` and `<name>-sda2` (one area, the PV, with its LVM
//!   layout in `meta.map.lvm`); `verify` passes; each restores from the repository
//!   onto an image file and passes the same checks, a file smaller than the PV is
//!   refused and left as it was; an import of the damaged image stores no image.
//!
//! Needs root (loop devices, lvm2 on them).

mod clonezilla_fixture;
mod czlvm_fixture;
mod fsfixture;
mod lvm_fixture;
mod xfs_fixture;

use clonezilla_fixture::{dd_range, run_with_scratch};
use czlvm_fixture::{part, s, CzLvm};
use fsfixture::{run, run_status};
use lvm_fixture::{same_files, MIB};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A loop device (with partitions) over a GPT disk file: p1 16 MiB at 1 MiB, p2
/// `p2_mib` MiB right after it (the source's layout when 384), a byte pattern
/// everywhere else; detached on drop.
struct Disk {
    dev: String,
    file: PathBuf,
}

impl Disk {
    fn new(file: &Path, p2_mib: u64) -> Disk {
        let total = 18 + p2_mib;
        let pattern: Vec<u8> = (0..total * MIB).map(|i| (i % 247) as u8).collect();
        fs::write(file, pattern).unwrap();
        run(
            "sgdisk",
            &[
                "-n",
                "1:2048:+16M",
                "-n",
                &format!("2:34816:+{p2_mib}M"),
                s(file),
            ],
        );
        let o = run("losetup", &["-P", "--show", "-f", s(file)]);
        let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let d = Disk {
            dev,
            file: file.to_path_buf(),
        };
        let _ = run_status("partx", &["-a", &d.dev]);
        for n in 1..=2 {
            let node = d.part(n);
            let mut tries = 0;
            while !Path::new(&node).exists() {
                tries += 1;
                assert!(tries < 100, "{node} did not appear");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        d
    }
    fn part(&self, n: u32) -> String {
        format!("{}p{n}", self.dev)
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = run_status("losetup", &["-d", &self.dev]);
    }
}

fn bin(args: &[&str]) -> (bool, String) {
    let o = run_status(env!("CARGO_BIN_EXE_ironclone"), args);
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// The size of the XFS in the file `fs` (its superblock's data blocks × block size),
/// as xfs_db reads it.
fn xfs_bytes(fs: &Path) -> u64 {
    let o = run(
        "xfs_db",
        &[
            "-r",
            "-c",
            "sb 0",
            "-c",
            "p dblocks",
            "-c",
            "p blocksize",
            s(fs),
        ],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let v: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split_once(" = ").and_then(|(_, v)| v.trim().parse().ok()))
        .collect();
    assert_eq!(v.len(), 2, "xfs_db: {text}");
    v[0] * v[1]
}

fn hash(p: &Path) -> blake3::Hash {
    blake3::hash(&fs::read(p).unwrap())
}

/// The fixture as a saveparts image.
fn saveparts(vg: &str) -> CzLvm {
    let cz = czlvm_fixture::build(vg);
    czlvm_fixture::to_saveparts(&cz.image);
    cz
}

/// A copy of the image folder named `name` beside it, for a damaged variant.
fn copy_image(cz: &CzLvm, name: &str) -> PathBuf {
    let to = cz.root.join(name);
    run("cp", &["-a", s(&cz.image), s(&to)]);
    to
}

/// The sda1 ext4 restored into the file or device `boot` is clean and holds its files.
fn check_boot(cz: &CzLvm, boot: &Path, what: &str) {
    let o = run_status("e2fsck", &["-fn", s(boot)]);
    assert!(
        o.status.success(),
        "{what}: sda1: e2fsck -fn:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    same_files(boot, &cz.pv.dir.path().join("files-boot"), "");
}

#[test]
#[ignore = "needs root"]
fn a_saveparts_pv_restores_onto_partitions_and_refuses_what_it_cannot() {
    let cz = saveparts("czlvp");
    let d = cz.pv.dir.path();
    let scratch = d.join("scratch");
    let restore_with = |image: &str, parts: &[String], extra: &[&str]| {
        let mut a = vec!["restore", s(&cz.root), image, "--yes"];
        for p in parts {
            a.extend(["--part", p]);
        }
        a.extend(extra);
        run_with_scratch(&a, &scratch)
    };
    let restore = |image: &str, parts: &[String]| restore_with(image, parts, &[]);

    let (ok, out) = bin(&["images", s(&cz.root)]);
    assert!(
        ok && out.contains("clonezilla (partitions)") && out.contains("czlvp/root"),
        "{out}"
    );
    let o = run_status(
        env!("CARGO_BIN_EXE_ironclone"),
        &[
            "browse",
            s(&cz.root),
            "img",
            "czlvp-root",
            "cat",
            "/f1",
            "--cache",
            s(&d.join("cache")),
        ],
    );
    let want = fs::read(d.join("files-root/f1")).unwrap();
    assert!(
        o.status.success() && o.stdout == want,
        "browse: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    // the source's layout: the whole-disk check of the fixture applies
    let disk = Disk::new(&d.join("same.img"), 384);
    let (ok, out) = restore(
        "img",
        &[
            format!("sda1={}", disk.part(1)),
            format!("sda2={}", disk.part(2)),
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("LVM PV"), "{out}");
    drop(disk);
    cz.check(&d.join("same.img"), false, "same size");
    fs::remove_file(d.join("same.img")).unwrap();

    // a larger p2 (400 MiB): laid out anew at its whole extents, the XFS LV (the
    // largest resizable) takes the growth and its filesystem is grown; ids kept; the
    // bytes past the new PV as they were
    let disk = Disk::new(&d.join("large.img"), 400);
    let before = fs::read(&disk.file).unwrap();
    let (ok, out) = restore("img", &[format!("sda2={}", disk.part(2))]);
    assert!(ok && out.contains("laid out anew at 397.0 MiB"), "{out}");
    drop(disk);
    let (p2, len) = part(&d.join("large.img"), 2);
    let pv = d.join("large-pv.out");
    dd_range(&d.join("large.img"), (p2, len), &pv);
    cz.check_pv(&pv, true, "larger partition");
    let m = lvm_fixture::backup::metadata(&cz.pv, &pv);
    let pe = (len - m.pe_start * 512) / lvm_fixture::EXT;
    let data_ext = xfs_fixture::SIZE / lvm_fixture::EXT;
    assert_eq!(
        (m.pe_count, m.lvs["data"].count, m.lvs["root"].count),
        (pe, data_ext + pe - 88, 6),
        "larger partition: {m:?}\n{out}"
    );
    // check_pv left the data LV gathered in data.out: its XFS was grown into it
    let xfs = xfs_bytes(&cz.pv.dir.path().join("data.out"));
    assert!(
        xfs > xfs_fixture::SIZE && xfs <= m.lvs["data"].count * lvm_fixture::EXT,
        "larger partition: the XFS is {xfs} bytes\n{out}"
    );
    let now = fs::read(d.join("large.img")).unwrap();
    let end = p2 + m.pe_start * 512 + pe * lvm_fixture::EXT;
    let tail = end as usize..(p2 + len) as usize;
    assert!(
        now[tail.clone()] == before[tail],
        "the space past the PV was written"
    );
    fs::remove_file(d.join("large.img")).unwrap();

    // --layout keep: the PV as saved, the 16 MiB after it as they were
    let disk = Disk::new(&d.join("keep.img"), 400);
    let before = fs::read(&disk.file).unwrap();
    let (ok, out) = restore_with(
        "img",
        &[format!("sda2={}", disk.part(2))],
        &["--layout", "keep"],
    );
    assert!(ok && out.contains("outside the PV"), "{out}");
    drop(disk);
    let (p2, len) = part(&d.join("keep.img"), 2);
    let pv = d.join("keep-pv.out");
    dd_range(&d.join("keep.img"), (p2, 384 * MIB), &pv);
    cz.check_pv(&pv, false, "keep");
    let now = fs::read(d.join("keep.img")).unwrap();
    let tail = (p2 + 384 * MIB) as usize..(p2 + len) as usize;
    assert!(
        now[tail.clone()] == before[tail],
        "keep: the space past the PV was written"
    );
    fs::remove_file(d.join("keep.img")).unwrap();

    // a smaller file (340 MiB, 84 extents for 88): laid out anew, the XFS LV (the
    // largest resizable) re-created 4 extents smaller
    let smaller = d.join("smaller.img");
    fs::File::create(&smaller)
        .unwrap()
        .set_len(340 * MIB)
        .unwrap();
    let (ok, out) = restore("img", &[format!("sda2={}", s(&smaller))]);
    assert!(
        ok && out.contains("laid out anew at 337.0 MiB")
            && out.contains("data (root LV) 320 MiB → 304 MiB"),
        "{out}"
    );
    cz.check_pv(&smaller, true, "smaller file");
    let m = lvm_fixture::backup::metadata(&cz.pv, &smaller);
    assert_eq!(
        (m.pe_count, m.lvs["data"].count, m.lvs["root"].count),
        (84, 76, 6),
        "smaller file: {m:?}\n{out}"
    );
    fs::remove_file(&smaller).unwrap();

    // refusals, each with the target byte for byte as it was
    let small = d.join("small.img");
    fs::File::create(&small)
        .unwrap()
        .set_len(300 * MIB)
        .unwrap();
    let (ok, out) = restore("img", &[format!("sda2={}", s(&small))]);
    assert!(
        !ok && out.contains("partition sda2 is the LVM physical volume of VG czlvp")
            && out.contains("402653184 bytes")
            && out.contains("314572800 bytes")
            && out.contains("each LV's least size: root"),
        "{out}"
    );
    assert_eq!(fs::metadata(&small).unwrap().blocks(), 0, "written");

    let disk = Disk::new(&d.join("refuse.img"), 384);
    let before = hash(&disk.file);
    let both = [
        format!("sda1={}", disk.part(1)),
        format!("sda2={}", disk.part(2)),
    ];
    let bad = copy_image(&cz, "bad");
    czlvm_fixture::flip_lv_byte(&bad.join("czlvp-root.ext4-ptcl-img.zst"));
    let (ok, out) = restore("bad", &both);
    assert!(
        !ok && out.contains("czlvp-root.ext4-ptcl-img.zst"),
        "a damaged LV image was restored:\n{out}"
    );
    assert_eq!(hash(&disk.file), before, "damaged LV: the disk was written");

    let two = copy_image(&cz, "twopv");
    let conf = two.join("lvm_czlvp.conf");
    let text = fs::read_to_string(&conf).unwrap().replacen(
        "physical_volumes {\n",
        "physical_volumes {\n\t\tpv9 {\n\t\t\tid = \"abcdef-ghij-klmn-opqr-stuv-wxyz-012345\"\n\t\t\tdevice = \"/dev/sdb1\"\n\t\t\tstatus = [\"ALLOCATABLE\"]\n\t\t\tflags = []\n\t\t\tdev_size = 204800\n\t\t\tpe_start = 2048\n\t\t\tpe_count = 24\n\t\t}\n",
        1,
    );
    fs::write(&conf, text).unwrap();
    let (ok, out) = restore("twopv", &both);
    assert!(
        !ok && out.contains("VG czlvp on sda2")
            && out.contains(
                "its PV pv9 (abcdef-ghij-klmn-opqr-stuv-wxyz-012345) is not in lvm_vg_dev.list"
            ),
        "a VG on two PVs was restored:\n{out}"
    );

    let nolv = copy_image(&cz, "nolv");
    let list = nolv.join("lvm_logv.list");
    let kept: String = fs::read_to_string(&list)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("/dev/czlvp/data"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&list, kept).unwrap();
    let (ok, out) = restore("nolv", &both);
    assert!(
        !ok && out.contains("LV data: not in lvm_logv.list"),
        "an LV without image was restored:\n{out}"
    );
    assert_eq!(hash(&disk.file), before, "refusals: the disk was written");
}

#[test]
#[ignore = "needs root"]
fn a_saveparts_pv_imports_and_restores_from_the_repository() {
    let cz = saveparts("czlvq");
    let d = cz.pv.dir.path();
    let scratch = d.join("scratch");
    let repo = d.join("repo");

    // a damaged LV image: nothing stored
    let bad = copy_image(&cz, "bad");
    czlvm_fixture::flip_lv_byte(&bad.join("czlvq-root.ext4-ptcl-img.zst"));
    let bad_repo = d.join("bad-repo");
    let (ok, out) = run_with_scratch(
        &["import", s(&cz.root), "bad", s(&bad_repo), "--name", "cz"],
        &scratch,
    );
    assert!(
        !ok && out.contains("czlvq-root.ext4-ptcl-img.zst"),
        "a damaged LV image was imported:\n{out}"
    );
    let (_, listed) = bin(&["images", s(&bad_repo)]);
    assert!(!listed.contains("cz-"), "an image was stored: {listed}");

    let (ok, out) = run_with_scratch(
        &["import", s(&cz.root), "img", s(&repo), "--name", "cz"],
        &scratch,
    );
    assert!(
        ok && out.contains("image cz-sda1") && out.contains("image cz-sda2"),
        "{out}"
    );
    let (ok, out) = bin(&["verify", s(&repo), "cz-sda2"]);
    assert!(ok, "verify: {out}");
    // one area, the PV, with the LVM layout a PV partition's backup keeps
    let m = ironclone::repo::Repository::open(&repo)
        .unwrap()
        .load_manifest("cz-sda2")
        .unwrap();
    let [a] = m.areas.as_slice() else {
        panic!(
            "areas: {:?}",
            m.areas.iter().map(|a| &a.name).collect::<Vec<_>>()
        )
    };
    let lvs = &a.meta["map"]["lvm"]["lvs"];
    let names: Vec<&str> = (0..3).filter_map(|i| lvs[i]["name"].as_str()).collect();
    assert_eq!(
        (a.len, a.meta["map"]["lvm"]["pv_count"].as_u64(), names),
        (384 * MIB, Some(1), vec!["root", "data", "swap"]),
        "{}",
        a.meta
    );

    let pv = d.join("pv.img");
    fs::File::create(&pv).unwrap().set_len(384 * MIB).unwrap();
    let (ok, out) = run_with_scratch(
        &[
            "restore",
            s(&repo),
            "cz-sda2",
            s(&pv),
            "--yes",
            "--no-nvram",
        ],
        &scratch,
    );
    assert!(ok, "{out}");
    cz.check_pv(&pv, false, "import, native restore");
    // a smaller file is laid out anew (the XFS LV re-created 4 extents smaller)
    let smaller = d.join("smaller.img");
    fs::File::create(&smaller)
        .unwrap()
        .set_len(340 * MIB)
        .unwrap();
    let (ok, out) = run_with_scratch(
        &[
            "restore",
            s(&repo),
            "cz-sda2",
            s(&smaller),
            "--yes",
            "--no-nvram",
        ],
        &scratch,
    );
    assert!(ok && out.contains("the disk (LVM2 PV of VG"), "{out}");
    cz.check_pv(&smaller, true, "import, smaller file");
    let m = lvm_fixture::backup::metadata(&cz.pv, &smaller);
    assert_eq!(
        (m.pe_count, m.lvs["data"].count),
        (84, 76),
        "import, smaller file: {m:?}\n{out}"
    );
    fs::remove_file(&smaller).unwrap();
    // one below the LVs' least sizes is refused, left as it was
    let small = d.join("small.img");
    fs::File::create(&small)
        .unwrap()
        .set_len(300 * MIB)
        .unwrap();
    let (ok, out) = run_with_scratch(
        &[
            "restore",
            s(&repo),
            "cz-sda2",
            s(&small),
            "--yes",
            "--no-nvram",
        ],
        &scratch,
    );
    assert!(!ok && out.contains("each LV's least size: root"), "{out}");
    assert_eq!(fs::metadata(&small).unwrap().blocks(), 0, "written");
    let boot = d.join("boot.img");
    fs::File::create(&boot).unwrap().set_len(16 * MIB).unwrap();
    let (ok, out) = run_with_scratch(
        &[
            "restore",
            s(&repo),
            "cz-sda1",
            s(&boot),
            "--yes",
            "--no-nvram",
        ],
        &scratch,
    );
    assert!(ok, "{out}");
    check_boot(&cz, &boot, "import, native restore");
}

/// The TUI with the real services: the saveparts image's rows are `img/sda1` and the PV
/// `img/sda2`; the PV row onto the larger p2 of a loop disk (the only disk the session
/// may use): planned laid out anew at the partition's size, confirmed by the disk's
/// name, checked, written, read back; the PV passes the fixture's check (lvm2 metadata and ids, each LV's
/// filesystem and files, pe_count the partition's extents) and the disk outside the
/// PV is byte for byte as it was.
#[test]
#[ignore = "needs root"]
fn the_tui_restores_a_saveparts_pv_onto_a_partition() {
    use crossterm::event::KeyCode;
    use ironclone::tui::app::Screen;
    use ironclone::tui::real::RealServices;
    use ironclone::tui::App;
    use std::sync::Arc;
    use std::time::Duration;

    let cz = saveparts("czlvt");
    let d = cz.pv.dir.path();
    std::env::set_var("IRONCLONE_SCRATCH", d.join("scratch"));
    let disk = Disk::new(&d.join("tui.img"), 400);
    let before = fs::read(&disk.file).unwrap();
    let services = RealServices::new(Some(vec![PathBuf::from(&disk.dev)]));
    let mut app = App::new(Arc::new(services));
    app.press(KeyCode::Char('r'));
    app.press(KeyCode::Char('/'));
    app.type_str(s(&cz.root));
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(30));
    let names: Vec<&str> = app.choices.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["img/sda1", "img/sda2"], "{:?}", app.screen());
    assert!(
        app.choices.images[1]
            .source_model
            .contains("LVM PV of czlvt"),
        "{:?}",
        app.choices.images[1]
    );
    app.press(KeyCode::Down);
    app.press(KeyCode::Enter);
    assert!(
        matches!(app.screen(), Screen::PartTargets { .. }),
        "{:?}",
        app.screen()
    );
    app.press(KeyCode::Down);
    app.press(KeyCode::Enter);
    app.settle(std::time::Duration::from_secs(60)); // the plan, made on its own thread
    let plan = format!("{:?}", app.choices.plan);
    assert!(
        plan.contains("LVM2") && plan.contains("laid out anew at 397.0 MiB"),
        "{plan}"
    );
    app.press(KeyCode::Enter);
    app.type_str(disk.dev.trim_start_matches("/dev/"));
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(600));
    let report = format!("{:?}", app.report);
    assert!(report.starts_with("Some(Ok("), "{report}");
    assert!(report.contains("LVM physical volume sda2"), "{report}");
    drop(disk);
    let (p2, len) = part(&d.join("tui.img"), 2);
    let pv = d.join("tui-pv.out");
    dd_range(&d.join("tui.img"), (p2, len), &pv);
    cz.check_pv(&pv, true, "TUI");
    let m = lvm_fixture::backup::metadata(&cz.pv, &pv);
    let pe = (len - m.pe_start * 512) / lvm_fixture::EXT;
    assert_eq!(m.pe_count, pe, "TUI: {m:?}");
    let now = fs::read(d.join("tui.img")).unwrap();
    assert!(
        now[..p2 as usize] == before[..p2 as usize],
        "the disk before p2 was written"
    );
    let end = p2 + m.pe_start * 512 + pe * lvm_fixture::EXT;
    let tail = end as usize..(p2 + len) as usize;
    assert!(
        now[tail.clone()] == before[tail],
        "the space past the PV was written"
    );
}

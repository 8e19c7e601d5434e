//! Issue 16 item 3 through the binary: an image of a 512-byte-sector GPT disk whose
//! ESP (mkfs.fat, files put in with mmd/mcopy: nested directories, long names, fixed
//! modification times, no fallback loader) sits beside an ext4 partition, restored
//! onto a target with 4096-byte logical sectors. A FAT keeps its sector size in its
//! boot sector, so the ESP must be re-created (FAT32, 4096-byte sectors, same volume
//! ID and label) and its files copied. Judged only by independent tools: fsck.fat -n,
//! the boot sector's bytes, sgdisk -v on a 4Kn loop device, and every file copied out
//! with `mcopy -m` and compared (bytes and modification time) with the source's.

mod common;
mod restore_fixture;

use common::{path_str, require_tool, run, run_status};
use restore_fixture::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const VOLID: &str = "1A2B3C4D";
const LABEL: &str = "ESP LABEL";
/// A FAT32 with 4096-byte sectors needs 65525 clusters of at least one sector, so
/// the smallest one mkfs.fat makes is 257 MiB (checked by hand: 256 MiB gives 65376).
const FAT32_4K_MIN: u64 = 257 * MIB;

struct Src {
    _td: tempfile::TempDir,
    _tree_td: tempfile::TempDir,
    dir: PathBuf,
    disk: PathBuf,
    repo: PathBuf,
    size: u64,
    /// The ESP's files as put in (host tree) and the ext4 partition's.
    esp_tree: PathBuf,
    ext: FsSpec,
}

fn write(path: &Path, data: &[u8], mtime: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    run("touch", &["-d", mtime, path_str(path)]);
}

fn random(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    common::Rng::new(seed).fill(&mut v);
    v
}

/// The ESP's content: shim and GRUB under \EFI\debian (no \EFI\BOOT: the boot repair
/// must find them in the re-created ESP), a nested directory, long and lower-case
/// names, an empty file, and even-second times (FAT keeps 2-second resolution).
fn esp_content(root: &Path) {
    let t = "2021-03-04 05:06:08";
    write(
        &root.join("EFI/debian/shimx64.efi"),
        &random(11, 934_000),
        t,
    );
    write(
        &root.join("EFI/debian/grubx64.efi"),
        &random(12, 2_100_000),
        t,
    );
    write(
        &root.join("EFI/debian/mmx64.efi"),
        &random(13, 850_000),
        "2020-01-02 03:04:06",
    );
    write(
        &root.join("EFI/debian/grub.cfg"),
        b"search.fs_uuid 1234 root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n",
        "2022-11-30 23:58:58",
    );
    write(&root.join("EFI/debian/BOOTX64.CSV"), b"s\0h\0i\0m\0", t);
    write(
        &root.join("EFI/debian/fonts/deep/nested/unicode.pf2"),
        &random(14, 40_000),
        "2019-07-08 09:10:12",
    );
    write(
        &root.join("EFI/debian/A rather long file name, with spaces.and.dots.txt"),
        b"long names must survive the re-creation\n",
        t,
    );
    write(
        &root.join("loader/entries/debian-6.1.conf"),
        b"title Debian\n",
        t,
    );
    write(&root.join("empty.txt"), b"", t);
}

fn mtool(tool: &str, args: &[&str]) -> String {
    require_tool(tool);
    let out = std::process::Command::new(tool)
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawn {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A GPT disk (512-byte sectors): p1 an ESP of `esp_mib` MiB made by `mkfs`
/// (extra mkfs.fat arguments) holding `tree`, p2 ext4; backed up into a repository.
fn source(esp_mib: u64, mkfs: &[&str], tree: &dyn Fn(&Path)) -> Src {
    for t in [
        "sgdisk",
        "mkfs.fat",
        "fsck.fat",
        "mcopy",
        "mmd",
        "mkfs.ext4",
        "dd",
        "losetup",
    ] {
        require_tool(t);
    }
    let td = common::tempdir();
    let dir = td.path().to_path_buf();
    let size = (esp_mib + 64) * MIB;
    let disk = common::sparse(&dir, "src.img", size);
    run(
        "sgdisk",
        &[
            "-n",
            &format!("1:2048:+{esp_mib}M"),
            "-t",
            "1:EF00",
            "-n",
            "2:0:0",
            "-t",
            "2:8300",
            path_str(&disk),
        ],
    );
    let (esp_start, esp_len) = part(&disk, 1);
    let esp = common::sparse(&dir, "esp.fat", esp_len);
    let hidden = (esp_start / 512).to_string();
    let mut a = vec!["-i", VOLID, "-n", LABEL, "-h", &hidden];
    a.extend_from_slice(mkfs);
    a.push(path_str(&esp));
    run("mkfs.fat", &a);
    // The host tree lives in tmpfs where there is one: 70,000 files on this
    // machine's disk take minutes to create and delete.
    let shm = Path::new("/dev/shm");
    let tree_td = tempfile::Builder::new()
        .prefix("ironclone-test-")
        .tempdir_in(if shm.is_dir() { shm } else { &dir })
        .unwrap();
    let esp_tree = tree_td.path().to_path_buf();
    tree(&esp_tree);
    let i = path_str(&esp).to_string();
    for e in std::fs::read_dir(&esp_tree).unwrap() {
        let p = e.unwrap().path();
        mtool("mcopy", &["-s", "-m", "-i", &i, path_str(&p), "::/"]);
    }
    dd_in(&disk, &esp, esp_start);
    std::fs::remove_file(&esp).unwrap();

    let ext = FsSpec {
        number: 2,
        fs: Fs::Ext4,
        files: files(21, 3),
    };
    ext4_4k_into(&disk, &dir, &ext);

    let repo = dir.join("repo");
    let (ok, out) = ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup:\n{out}");
    Src {
        _td: td,
        _tree_td: tree_td,
        dir,
        disk,
        repo,
        size,
        esp_tree,
        ext,
    }
}

impl Src {
    /// Restores onto the image file `target`, planned with 4096-byte sectors.
    fn restore(&self, target: &Path, extra: &[&str]) -> (bool, String) {
        self.restore_onto(target, true, extra)
    }

    fn restore_onto(&self, target: &Path, file: bool, extra: &[&str]) -> (bool, String) {
        let scratch = self.dir.join("scratch");
        let mut a = vec![
            "restore",
            path_str(&self.repo),
            "img",
            path_str(target),
            "--yes",
            "--no-nvram",
            "--scratch",
            path_str(&scratch),
        ];
        if file {
            a.extend_from_slice(&["--sector-size", "4096"]);
        }
        a.extend_from_slice(extra);
        let r = ironclone(&a);
        let left: Vec<_> = std::fs::read_dir(&scratch)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "staged files left: {left:?}\n{}", r.1);
        r
    }
}

/// Every file under `root` (relative '/'-separated path -> (bytes, mtime)).
fn tree_files(root: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let m = std::fs::metadata(&p).unwrap().modified().unwrap();
                out.insert(rel, (std::fs::read(&p).unwrap(), m));
            }
        }
    }
    out
}

/// Copies every file of the FAT at `offset` in `img` out with mtools, times kept.
fn copy_out(img: &Path, offset: u64, to: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    let i = format!("{}@@{offset}", img.display());
    mtool("mcopy", &["-s", "-m", "-n", "-i", &i, "::/*", path_str(to)]);
    tree_files(to)
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
#[ignore = "needs root"]
fn small_esp_onto_4kn_is_recreated_as_fat32_with_its_files() {
    // 64 MiB: mkfs.fat's default makes it FAT16, as small ESPs often are.
    let s = source(64, &[], &esp_content);
    let t = common::sparse(&s.dir, "t.img", s.size + 256 * MIB);

    // The plan says what happens to the ESP before anything is written.
    let (ok, plan) = s.restore(&t, &["--dry-run"]);
    assert!(ok, "dry run:\n{plan}");
    let p1 = plan
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or_else(|| panic!("no row for partition 1:\n{plan}"));
    assert!(
        p1.ends_with("Recreate"),
        "partition 1 is not re-created:\n{plan}"
    );
    assert!(
        p1.contains("257 MiB"),
        "the ESP does not grow to FAT32's minimum:\n{plan}"
    );
    assert!(
        plan.contains("partition 1 (ESP): a FAT keeps its 512-byte sectors, so it is re-created as FAT32 with 4096-byte sectors"),
        "the plan does not say why:\n{plan}"
    );

    let (ok, out) = s.restore(&t, &["--dry-run", "--json"]);
    assert!(ok, "dry run --json:\n{out}");
    let ev: serde_json::Value = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["event"] == "plan")
        .unwrap_or_else(|| panic!("no plan event:\n{out}"));
    assert_eq!(ev["plan"]["partitions"][0]["action"], "recreate", "{ev}");
    assert!(
        ev["notes"][0]
            .as_str()
            .is_some_and(|n| n.contains("re-created as FAT32")),
        "{ev}"
    );

    let (ok, log) = s.restore(&t, &[]);
    assert!(ok, "restore --sector-size 4096:\n{log}");
    check_restored(&s, &t, &log);

    // The same onto a 4Kn block device (a loop device with 4096-byte logical
    // sectors, as an NVMe drive formatted 4Kn shows itself): the sector size comes
    // from the device, and the boot repair's mtools work on it.
    let t2 = common::sparse(&s.dir, "t2.img", s.size + 256 * MIB);
    let log = {
        let lo = common::LoopDev::attach(&t2, Some(4096));
        let (ok, log) = s.restore_onto(&lo.path, false, &[]);
        assert!(ok, "restore onto {}:\n{log}", lo.path.display());
        log
    };
    check_restored(&s, &t2, &log);
}

/// Every check of a restored 4Kn disk image `t`: the GPT, the ESP (FAT32 with
/// 4096-byte sectors, ID and label kept, fsck.fat clean, every file's bytes and
/// time), the fallback loader the boot repair put there, and the ext4 partition.
fn check_restored(s: &Src, t: &Path, log: &str) {
    let lo = common::LoopDev::attach(t, Some(4096));
    let v = run("sgdisk", &["-v", path_str(&lo.path)]);
    assert!(
        v.contains("No problems found"),
        "sgdisk -v (4096):\n{v}\n{log}"
    );
    let (estart, elen) = part(&lo.path, 1);
    let (xstart, xlen) = part(&lo.path, 2);
    drop(lo);
    assert_eq!(elen, FAT32_4K_MIN, "ESP size\n{log}");
    assert_eq!(estart % 4096, 0);

    // The ESP: FAT32, 4096-byte sectors, volume ID and label kept, fsck.fat clean.
    let esp = s.dir.join("chk-esp.img");
    dd_out(t, &esp, estart, elen);
    let (ok, out) = run_status("fsck.fat", &["-n", path_str(&esp)]);
    assert!(ok, "fsck.fat -n:\n{out}\n{log}");
    assert!(
        !out.contains("Warning") && !out.contains("WARNING"),
        "fsck.fat -n:\n{out}"
    );
    let boot = std::fs::read(&esp).unwrap();
    assert_eq!(
        u16::from_le_bytes([boot[11], boot[12]]),
        4096,
        "bytes per sector"
    );
    assert_eq!(&boot[82..90], b"FAT32   ", "filesystem type string");
    assert_eq!(
        le32(&boot, 67),
        u32::from_str_radix(VOLID, 16).unwrap(),
        "volume ID"
    );
    assert_eq!(
        &boot[71..82],
        format!("{LABEL:<11}").as_bytes(),
        "BPB label"
    );
    assert_eq!(le32(&boot, 28) as u64, estart / 4096, "hidden sectors");
    let label = mtool("mlabel", &["-s", "-i", path_str(&esp), "::"]);
    assert!(label.contains(LABEL), "root-directory label: {label}");

    // Every file: same bytes and modification time as in the source ESP; the boot
    // repair found shim in the re-created ESP and put it at the fallback path.
    let (sstart, _) = part(&s.disk, 1);
    let want = copy_out(&s.disk, sstart, &s.dir.join("out-src"));
    let got = copy_out(t, estart, &s.dir.join("out-dst"));
    let put_in = tree_files(&s.esp_tree);
    assert_eq!(want.len(), put_in.len(), "the fixture's ESP lost files");
    for (name, (data, mtime)) in &want {
        let Some((d, m)) = got.get(name) else {
            panic!(
                "{name} is missing from the restored ESP: {:?}\n{log}",
                got.keys()
            );
        };
        assert!(d == data, "{name}: contents differ\n{log}");
        assert_eq!(m, mtime, "{name}: modification time\n{log}");
    }
    let shim = &want["EFI/debian/shimx64.efi"].0;
    assert!(
        got.get("EFI/BOOT/BOOTX64.EFI")
            .is_some_and(|f| f.0 == *shim),
        "{log}"
    );
    assert_eq!(got.len(), want.len() + 3, "{:?}\n{log}", got.keys());

    // ext4 moved to 4096-byte units as before.
    let src_img = s.dir.join("chk-src.img");
    let (st, ln) = part(&s.disk, 2);
    dd_out(&s.disk, &src_img, st, ln);
    let out_img = s.dir.join("chk.img");
    dd_out(t, &out_img, xstart, xlen);
    check_ext4(&src_img, &out_img, xlen, &s.ext, log);
}

/// 70,000 one-byte files fill 70,000 512-byte clusters in a 64 MiB FAT32, but need
/// as many 4096-byte clusters: more than the 257 MiB FAT32 holds. Refused, nothing written.
#[test]
fn esp_whose_files_do_not_fit_at_4kn_is_refused_before_writing() {
    let many = |root: &Path| {
        for d in 0..100 {
            let dir = root.join(format!("d{d}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..700 {
                std::fs::write(dir.join(format!("f{f}")), b"x").unwrap();
            }
        }
    };
    let s = source(64, &["-F", "32", "-s", "1"], &many);
    let t = common::sparse(&s.dir, "t.img", s.size + 256 * MIB);
    std::fs::write(&t, vec![0x5a; MIB as usize]).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&t)
        .unwrap()
        .set_len(s.size + 256 * MIB)
        .unwrap();
    let before = run("b2sum", &[path_str(&t)]);
    let (ok, out) = s.restore(&t, &[]);
    assert!(
        !ok,
        "a restore whose ESP cannot hold its files succeeded:\n{out}"
    );
    assert!(
        out.contains("partition 1") && out.contains("do not fit"),
        "the refusal does not say what does not fit:\n{out}"
    );
    assert_eq!(
        before,
        run("b2sum", &[path_str(&t)]),
        "the refused restore wrote to the target"
    );
}

//! Clonezilla saveparts images (`parts` only: no `disk`, no table;
//! tests/clonezilla_fixture/shapes.rs) restored with `restore DIR IMAGE --part
//! sda1=DEV --part sda2=DEV` onto the partitions of a loop disk: the ext4 shrunk into a
//! smaller partition and grown into a larger one (dumpe2fs's block count equals the
//! partition's size), the FAT kept at its size; judged by fsck.vfat -n, e2fsck -fn and
//! the files' bytes. Refused with a message naming what is wrong, the target byte for
//! byte as it was: a `--part` naming a partition not in the image, a whole disk as
//! --part target, a partition smaller than the filesystem's smallest size, a listed
//! partition without image file, and no --part at all. `import` makes one image per
//! partition; `browse` reads a partition. LVM images: listed with their LVs, an LV
//! browsed, an LV without image file refused naming it, a whole-disk restore refused.

mod clonezilla_fixture;
mod fsfixture;

use clonezilla_fixture::shapes::{bin, s};
use clonezilla_fixture::{run_with_scratch, shapes, MIB};
use fsfixture::{prng_bytes, run, run_status};
use std::fs;
use std::path::{Path, PathBuf};

/// A loop device over a GPT disk file with partitions of `sizes` MiB; detached on drop.
struct Loop {
    dev: String,
    file: PathBuf,
}

impl Loop {
    fn new(file: &Path, sizes: &[u64]) -> Loop {
        let total: u64 = sizes.iter().sum::<u64>() + 2;
        run("truncate", &["-s", &format!("{total}M"), s(file)]);
        let mut a = vec!["-Z".to_string()];
        for (i, m) in sizes.iter().enumerate() {
            a.extend(["-n".into(), format!("{}:0:+{m}M", i + 1)]);
        }
        a.push(s(file).into());
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run("sgdisk", &a);
        // a pattern in the partitions: an untouched one must still hold it
        let pattern: Vec<u8> = (0..total * MIB).map(|i| (i % 249) as u8).collect();
        let mut head = fs::read(file).unwrap();
        let first = 2048 * 512;
        let last = head.len() - 34 * 512;
        head[first..last].copy_from_slice(&pattern[first..last]);
        fs::write(file, head).unwrap();
        let o = run("losetup", &["-P", "--show", "-f", s(file)]);
        let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let lo = Loop {
            dev,
            file: file.to_path_buf(),
        };
        // losetup -P does not always scan here; partx adds what is missing
        let _ = run_status("partx", &["-a", &lo.dev]);
        for n in 1..=sizes.len() as u32 {
            wait_for(&lo.part(n));
        }
        lo
    }
    fn part(&self, n: u32) -> String {
        format!("{}p{n}", self.dev)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = run_status("losetup", &["-d", &self.dev]);
    }
}

fn wait_for(node: &str) {
    for _ in 0..100 {
        if Path::new(node).exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{node} did not appear");
}

fn ext_blocks(dev: &str) -> u64 {
    let o = run("dumpe2fs", &["-h", dev]);
    let t = String::from_utf8_lossy(&o.stdout);
    let count = |k: &str| -> u64 {
        t.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    count("Block count:") * count("Block size:")
}

fn dev_bytes(dev: &str) -> u64 {
    let o = run("blockdev", &["--getsize64", dev]);
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// The restored ext4 at `dev` is clean and holds the fixture's files.
fn check_ext(dev: &str, seed: u64) {
    let o = run_status("e2fsck", &["-fn", dev]);
    assert!(
        o.status.success(),
        "e2fsck -fn {dev}: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    for i in 0..4u64 {
        let o = run("debugfs", &["-R", &format!("cat /data{i}"), dev]);
        assert!(
            o.stdout == prng_bytes(seed * 10 + i, 2_000_000),
            "/data{i} differs on {dev}"
        );
    }
}

fn check_fat(dev: &str, seed: u64, dir: &Path) {
    let o = run_status("fsck.vfat", &["-n", dev]);
    assert!(
        o.status.success(),
        "fsck.vfat -n {dev}: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let out = dir.join("efi.out");
    let _ = fs::remove_file(&out);
    run("mcopy", &["-i", dev, "::/EFI/BOOT/BOOTX64.EFI", s(&out)]);
    assert!(fs::read(&out).unwrap() == prng_bytes(seed + 100, 300_000));
}

#[test]
#[ignore = "needs root"]
fn saveparts_restore_onto_partitions_shrinks_grows_and_refuses() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 21, false);
    shapes::to_saveparts(&fx);
    let scratch = d.path().join("scratch");

    let (ok, out, _) = bin(&["images", s(&fx.root)]);
    assert!(
        ok && out.contains("partitions sda1,sda2") && out.contains("clonezilla (partitions)"),
        "{out}"
    );

    // p1 48 MiB for the 32 MiB FAT, p2 40 MiB (ext4 of ~128 MiB, 8 MB used), p3 200 MiB
    let lo = Loop::new(&d.path().join("disk.img"), &[48, 40, 200]);
    let before = fs::read(&lo.file).unwrap();
    let restore = |parts: &[String]| {
        let mut a = vec!["restore", s(&fx.root), "img", "--yes"];
        for p in parts {
            a.extend(["--part", p]);
        }
        run_with_scratch(&a, &scratch)
    };
    let unchanged = |what: &str| {
        assert!(
            fs::read(&lo.file).unwrap() == before,
            "{what}: the disk was written"
        );
    };

    // refusals first, nothing written by any
    let (ok, out) = restore(&[]);
    assert!(
        !ok && out.contains("saveparts image") && out.contains("--part"),
        "{out}"
    );
    let (ok, out) = restore(&[format!("sda9={}", lo.part(1))]);
    assert!(
        !ok && out.contains("no partition sda9") && out.contains("sda1, sda2"),
        "{out}"
    );
    let (ok, out) = restore(&[format!("sda1={}", lo.dev)]);
    assert!(!ok && out.contains("is a whole disk"), "{out}");
    unchanged("refusals");
    // a 4 MiB partition cannot hold the ext4 at its smallest
    let small = Loop::new(&d.path().join("small.img"), &[4]);
    let small_before = fs::read(&small.file).unwrap();
    let (ok, out) = restore(&[format!("sda2={}", small.part(1))]);
    assert!(
        !ok && out.contains("partition sda2") && out.contains("needs at least"),
        "{out}"
    );
    assert!(
        fs::read(&small.file).unwrap() == small_before,
        "the small disk was written"
    );
    // the FAT is not shrunk here: refused into a 4 MiB partition, naming why
    let (ok, out) = restore(&[format!("sda1={}", small.part(1))]);
    assert!(!ok && out.contains("not shrunk here"), "{out}");
    drop(small);

    // shrunk into p2, FAT kept in p1
    let (ok, out) = restore(&[
        format!("sda1={}", lo.part(1)),
        format!("sda2={}", lo.part(2)),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("Shrunk") && out.contains("Kept"), "{out}");
    check_fat(&lo.part(1), 21, d.path());
    check_ext(&lo.part(2), 21);
    assert_eq!(ext_blocks(&lo.part(2)), dev_bytes(&lo.part(2)));
    // p3 untouched so far, then grown into
    let now = fs::read(&lo.file).unwrap();
    let p3 = (2048 + (48 + 40) * 2048) as usize * 512;
    assert!(
        now[p3..p3 + 200 * MIB as usize] == before[p3..p3 + 200 * MIB as usize],
        "p3 was written"
    );
    let (ok, out) = restore(&[format!("sda2={}", lo.part(3))]);
    assert!(ok && out.contains("Grown"), "{out}");
    check_ext(&lo.part(3), 21);
    assert_eq!(ext_blocks(&lo.part(3)), dev_bytes(&lo.part(3)));

    // browse and import of the saveparts image
    let (ok, out, stdout) = bin(&[
        "browse",
        s(&fx.root),
        "img",
        "sda2",
        "cat",
        "/etc/hostname",
        "--cache",
        s(&d.path().join("cache")),
    ]);
    assert!(ok && stdout == b"host21\n", "{out}");
    let repo = d.path().join("repo");
    let (ok, out) = run_with_scratch(
        &["import", s(&fx.root), "img", s(&repo), "--name", "pc"],
        &scratch,
    );
    assert!(
        ok && out.contains("image pc-sda1") && out.contains("image pc-sda2"),
        "{out}"
    );

    // a listed partition without its image file
    fs::remove_file(fx.image.join("sda2.ext4-ptcl-img.gz")).unwrap();
    let (ok, out) = restore(&[format!("sda1={}", lo.part(1))]);
    assert!(
        !ok && out.contains("no image file for partition sda2"),
        "{out}"
    );
}

#[test]
fn lvm_images_are_listed_browsed_and_refused_whole() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 22, false);
    shapes::add_lvm(d.path(), &fx, 22);
    let (ok, out, _) = bin(&["images", s(&fx.root)]);
    assert!(ok && out.contains("lvm: vg0/root (vg0-root)"), "{out}");
    let cache = d.path().join("cache");
    for area in ["vg0-root", "vg0/root"] {
        let (ok, out, stdout) = bin(&[
            "browse",
            s(&fx.root),
            "img",
            area,
            "cat",
            "/etc/hostname",
            "--cache",
            s(&cache),
        ]);
        assert!(ok && stdout == b"lvhost22\n", "{area}: {out}");
    }
    let (ok, _, stdout) = bin(&[
        "browse",
        s(&fx.root),
        "img",
        "vg0-root",
        "cat",
        "/big",
        "--cache",
        s(&cache),
    ]);
    assert!(ok && stdout == prng_bytes(29, 1_000_000));
    // whole-disk restore and import: refused, naming the VG (its PV is in no table)
    let target = d.path().join("t.img");
    fs::File::create(&target)
        .unwrap()
        .set_len(200 * MIB)
        .unwrap();
    let scratch = d.path().join("scratch");
    let (ok, out) = run_with_scratch(
        &["restore", s(&fx.root), "img", s(&target), "--yes"],
        &scratch,
    );
    assert!(
        !ok && out.contains("vg0 on sda3") && out.contains("in no saved disk's table"),
        "{out}"
    );
    assert_eq!(fs::metadata(&target).unwrap().len(), 200 * MIB);
    let (ok, out) = run_with_scratch(
        &[
            "import",
            s(&fx.root),
            "img",
            s(&d.path().join("repo")),
            "--name",
            "x",
        ],
        &scratch,
    );
    assert!(!ok && out.contains("vg0 on sda3"), "{out}");
    // an LV without image file
    for e in fs::read_dir(&fx.image).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("vg0-root.")
        {
            fs::remove_file(p).unwrap();
        }
    }
    let (_, out, _) = bin(&["images", s(&fx.root)]);
    assert!(
        out.contains("no image file for partition vg0-root"),
        "{out}"
    );
}

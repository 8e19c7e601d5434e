//! Other shapes of Clonezilla folders, made from the savedisk fixture the way ocs-sr
//! lays them out: a second disk (`disk` reads `sda sdb`), a saveparts folder (no
//! `disk`, no table files), and LVM (`lvm_vg_dev.list`, `lvm_logv.list`,
//! `lvm_<vg>.conf`, the LV's partclone image named `<vg>-<lv>.ext4-ptcl-img.zst`).

use super::Fixture;
use crate::fsfixture::{prng_bytes, run};
use std::fs;
use std::path::Path;
use std::process::Command;

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Adds the disk of `b` to the folder of `a` as disk `name` (its files renamed from
/// `sda` to `name`, device names inside them too).
pub fn add_disk(a: &Fixture, b: &Fixture, name: &str) {
    for e in fs::read_dir(&b.image).unwrap() {
        let e = e.unwrap();
        let f = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = f.strip_prefix("sda") else {
            continue;
        };
        let to = a.image.join(format!("{name}{rest}"));
        if f.ends_with(".sf") || f.ends_with(".parted") {
            let t = fs::read_to_string(e.path()).unwrap();
            fs::write(to, t.replace("/dev/sda", &format!("/dev/{name}"))).unwrap();
        } else {
            fs::copy(e.path(), to).unwrap();
        }
    }
    let parts = fs::read_to_string(a.image.join("parts")).unwrap();
    fs::write(
        a.image.join("parts"),
        format!("{} {name}1 {name}2\n", parts.trim()),
    )
    .unwrap();
    fs::write(a.image.join("disk"), format!("sda {name}\n")).unwrap();
}

/// Makes the savedisk folder a saveparts one: no `disk`, no table or boot areas.
pub fn to_saveparts(fx: &Fixture) {
    for e in fs::read_dir(&fx.image).unwrap() {
        let e = e.unwrap();
        let f = e.file_name().to_string_lossy().into_owned();
        if f == "disk" || f.starts_with("sda-") {
            fs::remove_file(e.path()).unwrap();
        }
    }
}

/// Adds a volume group `vg0` on `sda3` holding LV `root` (an ext4 of 48 MiB with
/// `/etc/hostname` = "lvhost<seed>" and `/big` 1 MB of seeded bytes) to the folder.
pub fn add_lvm(dir: &Path, fx: &Fixture, seed: u64) {
    let tree = dir.join("lv-tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/hostname"), format!("lvhost{seed}\n")).unwrap();
    fs::write(tree.join("big"), prng_bytes(seed + 7, 1_000_000)).unwrap();
    let fsimg = dir.join("lv-root.img");
    run("truncate", &["-s", "48M", s(&fsimg)]);
    run(
        "mke2fs",
        &["-F", "-q", "-t", "ext4", "-d", s(&tree), s(&fsimg)],
    );
    let out = fx.image.join("vg0-root.ext4-ptcl-img");
    let log = dir.join("pc-lv.log");
    run(
        "partclone.ext4",
        &["-q", "-c", "-s", s(&fsimg), "-O", s(&out), "-L", s(&log)],
    );
    run("zstd", &["-q", "-f", "--rm", s(&out)]);
    fs::write(
        fx.image.join("lvm_vg_dev.list"),
        "vg0 /dev/sda3 i20UTQ-OaX3-c6nB-CiBv-Gav1-hgVf-tEkO2W\n",
    )
    .unwrap();
    fs::write(
        fx.image.join("lvm_logv.list"),
        "/dev/vg0/root  Linux rev 1.0 ext4 filesystem data, UUID=x (extents) (large files) (huge files)\n",
    )
    .unwrap();
    fs::write(
        fx.image.join("lvm_vg0.conf"),
        "contents = \"Text Format Volume Group\"\nversion = 1\n",
    )
    .unwrap();
    let parts = fs::read_to_string(fx.image.join("parts")).unwrap();
    fs::write(fx.image.join("parts"), format!("{} sda3\n", parts.trim())).unwrap();
}

/// Runs ironclone: (success, stdout+stderr, stdout).
pub fn bin(args: &[&str]) -> (bool, String, Vec<u8>) {
    let o = Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        o.stdout,
    )
}

/// Makes sda2 of the folder (the fixture `fx` built in `dir` as `name`) a LUKS2
/// partition saved opened, as Clonezilla 3.x saves one: `luks-dev.list`,
/// `sda2-luksHeader.bin` (`cryptsetup luksHeaderBackup`, 16 MiB, passphrase `pass`),
/// the decrypted ext4 (the fixture's files, partition size − 16 MiB) as
/// `<mapper>.ext4-ptcl-img.zst` in place of sda2's image, `dev-fs.list`, and
/// `MD5SUMS` listing the header. Returns the volume's UUID.
pub fn make_luks(dir: &Path, fx: &Fixture, name: &str, pass: &str, mapper: &str) -> String {
    let (_, len) = super::part(&fx.disk, 2);
    let img = &fx.image;
    let header = img.join("sda2-luksHeader.bin");
    let uuid = super::luks_header(dir, len, pass, &header);
    assert_eq!(fs::metadata(&header).unwrap().len(), 16 * super::MIB);
    let inner = dir.join("inner.img");
    run(
        "truncate",
        &["-s", &(len - 16 * super::MIB).to_string(), s(&inner)],
    );
    let tree = dir.join(format!("{name}-tree"));
    run(
        "mke2fs",
        &[
            "-F",
            "-q",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-d",
            s(&tree),
            s(&inner),
        ],
    );
    let out = img.join(format!("{mapper}.ext4-ptcl-img"));
    let log = dir.join("pc-luks.log");
    run(
        "partclone.ext4",
        &["-q", "-c", "-s", s(&inner), "-O", s(&out), "-L", s(&log)],
    );
    run("zstd", &["-q", "-f", "--rm", s(&out)]);
    fs::remove_file(img.join("sda2.ext4-ptcl-img.gz")).unwrap();
    fs::write(
        img.join("luks-dev.list"),
        format!("# <Block device> <UUID> <Device mapped name>\n/dev/sda2 {uuid} {mapper}\n"),
    )
    .unwrap();
    fs::write(
        img.join("dev-fs.list"),
        format!("# <Device name>   <File system>   <Size>\n/dev/sda1 vfat 32M\n/dev/sda2 crypto_LUKS 127.9M\n/dev/mapper/{mapper} ext4 111.9M\n"),
    )
    .unwrap();
    let sums = Command::new("md5sum")
        .args(["sda2-luksHeader.bin", "parts"])
        .current_dir(img)
        .output()
        .unwrap();
    assert!(sums.status.success());
    fs::write(img.join("MD5SUMS"), sums.stdout).unwrap();
    uuid
}

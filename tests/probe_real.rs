//! Superblock probes against filesystems made by the real mkfs tools, checked
//! against `blkid -p` (an independent implementation) for kind, label and UUID.

use ironclone::device::{open_path, Access, BlockDevice};
use ironclone::probe::{probe, FsKind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!("{cmd} is required for this test (install it with scripts/setup.sh): {e}")
        });
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn blkid(path: &Path) -> HashMap<String, String> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(path)
        .output()
        .expect("blkid (util-linux) is required");
    assert!(
        out.status.success(),
        "blkid found nothing on {}",
        path.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("\\ ", " ")))
        .collect()
}

fn blkid_kind(b: &HashMap<String, String>) -> FsKind {
    match (
        b.get("TYPE").map(String::as_str),
        b.get("VERSION").map(String::as_str),
    ) {
        (Some("ext2"), _) => FsKind::Ext2,
        (Some("ext3"), _) => FsKind::Ext3,
        (Some("ext4"), _) => FsKind::Ext4,
        (Some("ntfs"), _) => FsKind::Ntfs,
        (Some("vfat"), Some("FAT12")) => FsKind::Fat12,
        (Some("vfat"), Some("FAT16")) => FsKind::Fat16,
        (Some("vfat"), Some("FAT32")) => FsKind::Fat32,
        (Some("exfat"), _) => FsKind::Exfat,
        (Some("swap"), _) => FsKind::Swap,
        (Some("crypto_LUKS"), _) => FsKind::Luks,
        (Some("LVM2_member"), _) => FsKind::Lvm2,
        (Some("btrfs"), _) => FsKind::Btrfs,
        (Some("xfs"), _) => FsKind::Xfs,
        (Some("BitLocker"), _) => FsKind::Bitlocker,
        other => panic!("unexpected blkid result {other:?}"),
    }
}

fn image(dir: &Path, name: &str, size_mib: u64) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(size_mib << 20).unwrap();
    p
}

/// Probes `path` and checks kind, label and UUID against blkid and against what we asked mkfs for.
fn check(path: &Path, kind: FsKind, label: Option<&str>, uuid: Option<&str>) {
    let dev = open_path(path, Access::ReadOnly).unwrap();
    let info = probe(&dev).unwrap_or_else(|| panic!("{}: not recognised", path.display()));
    let b = blkid(path);
    assert_eq!(info.kind, kind, "{}", path.display());
    assert_eq!(
        info.kind,
        blkid_kind(&b),
        "kind vs blkid on {}",
        path.display()
    );
    assert_eq!(
        info.label.as_deref(),
        b.get("LABEL").map(String::as_str),
        "label vs blkid"
    );
    assert_eq!(
        info.uuid.as_deref(),
        b.get("UUID").map(String::as_str),
        "uuid vs blkid"
    );
    assert_eq!(info.label.as_deref(), label, "label vs requested");
    if let Some(u) = uuid {
        assert_eq!(info.uuid.as_deref(), Some(u), "uuid vs requested");
    }
}

const U1: &str = "0f3e0e2c-7d43-4a8b-9d61-2b9f4c1e5a01";

#[test]
fn ext_family() {
    let d = tempfile::tempdir().unwrap();
    for (mkfs, kind) in [
        ("mkfs.ext2", FsKind::Ext2),
        ("mkfs.ext3", FsKind::Ext3),
        ("mkfs.ext4", FsKind::Ext4),
    ] {
        let p = image(d.path(), mkfs, 16);
        run(
            mkfs,
            &["-q", "-F", "-L", "extlabel", "-U", U1, p.to_str().unwrap()],
        );
        check(&p, kind, Some("extlabel"), Some(U1));
    }
}

#[test]
fn ntfs_with_label_from_volume_record() {
    let d = tempfile::tempdir().unwrap();
    let p = image(d.path(), "ntfs.img", 16);
    run(
        "mkntfs",
        &["-q", "-F", "-f", "-L", "Windows Data", p.to_str().unwrap()],
    );
    check(&p, FsKind::Ntfs, Some("Windows Data"), None);
    // 4096-byte sectors and a 4 KiB-cluster MFT record layout too.
    let p = image(d.path(), "ntfs4k.img", 16);
    run(
        "mkntfs",
        &[
            "-q",
            "-F",
            "-f",
            "-s",
            "4096",
            "-c",
            "8192",
            "-L",
            "Big",
            p.to_str().unwrap(),
        ],
    );
    check(&p, FsKind::Ntfs, Some("Big"), None);
}

#[test]
fn fat_variants() {
    let d = tempfile::tempdir().unwrap();
    for (bits, size, kind) in [
        ("12", 4, FsKind::Fat12),
        ("16", 32, FsKind::Fat16),
        ("32", 64, FsKind::Fat32),
    ] {
        let p = image(d.path(), &format!("fat{bits}.img"), size);
        run(
            "mkfs.fat",
            &[
                "-F",
                bits,
                "-n",
                "BOOTFAT",
                "-i",
                "1a2b3c4d",
                p.to_str().unwrap(),
            ],
        );
        check(&p, kind, Some("BOOTFAT"), Some("1A2B-3C4D"));
    }
    // Windows renames a FAT volume only in the root directory: the BPB says
    // "NO NAME" but the label is the root directory's volume-id entry.
    for bits in ["16", "32"] {
        let p = image(d.path(), &format!("renamed{bits}.img"), 64);
        run(
            "mkfs.fat",
            &[
                "-F",
                bits,
                "-n",
                "WINLABEL",
                "-i",
                "1a2b3c4d",
                p.to_str().unwrap(),
            ],
        );
        let mut bytes = std::fs::read(&p).unwrap();
        let at = if bits == "32" { 71 } else { 43 };
        bytes[at..at + 11].copy_from_slice(b"NO NAME    ");
        std::fs::write(&p, &bytes).unwrap();
        check(
            &p,
            if bits == "32" {
                FsKind::Fat32
            } else {
                FsKind::Fat16
            },
            Some("WINLABEL"),
            Some("1A2B-3C4D"),
        );
    }
    // No label: "NO NAME" is not a label.
    let p = image(d.path(), "nolabel.img", 32);
    run(
        "mkfs.fat",
        &["-F", "16", "-i", "00000001", p.to_str().unwrap()],
    );
    check(&p, FsKind::Fat16, None, Some("0000-0001"));
}

#[test]
fn exfat() {
    let d = tempfile::tempdir().unwrap();
    let p = image(d.path(), "exfat.img", 16);
    run("mkfs.exfat", &["-L", "Stick", p.to_str().unwrap()]);
    check(&p, FsKind::Exfat, Some("Stick"), None);
}

#[test]
fn swap() {
    let d = tempfile::tempdir().unwrap();
    let p = image(d.path(), "swap.img", 8);
    run("mkswap", &["-L", "swappy", "-U", U1, p.to_str().unwrap()]);
    check(&p, FsKind::Swap, Some("swappy"), Some(U1));
}

#[test]
fn luks1_and_luks2() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("key");
    std::fs::write(&key, b"not a secret, only a test key").unwrap();
    for (ty, label) in [("luks1", None), ("luks2", Some("vault"))] {
        let p = image(d.path(), &format!("{ty}.img"), 32);
        let mut args = vec![
            "luksFormat",
            "-q",
            "--type",
            ty,
            "--uuid",
            U1,
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            key.to_str().unwrap(),
        ];
        if let Some(l) = label {
            args.extend(["--label", l]);
        }
        args.push(p.to_str().unwrap());
        run("cryptsetup", &args);
        check(&p, FsKind::Luks, label, Some(U1));
    }
}

#[test]
fn btrfs_and_xfs() {
    let d = tempfile::tempdir().unwrap();
    let p = image(d.path(), "btrfs.img", 128);
    run(
        "mkfs.btrfs",
        &["-q", "-f", "-L", "butter", "-U", U1, p.to_str().unwrap()],
    );
    check(&p, FsKind::Btrfs, Some("butter"), Some(U1));
    let p = image(d.path(), "xfs.img", 320);
    run(
        "mkfs.xfs",
        &[
            "-q",
            "-f",
            "-L",
            "xfslab",
            "-m",
            &format!("uuid={U1}"),
            p.to_str().unwrap(),
        ],
    );
    check(&p, FsKind::Xfs, Some("xfslab"), Some(U1));
}

#[test]
#[ignore = "needs root"]
fn lvm2_pv_on_loop() {
    let d = tempfile::tempdir().unwrap();
    let p = image(d.path(), "pv.img", 8);
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&p)
        .output()
        .expect("losetup");
    assert!(
        out.status.success(),
        "losetup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let loopdev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    struct Detach(String);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = Command::new("losetup").args(["-d", &self.0]).status();
        }
    }
    let _guard = Detach(loopdev.clone());
    run("pvcreate", &["-ff", "-y", "--devicesfile", "", &loopdev]);
    // Our probe reads the backing file; blkid reads the same bytes.
    check(&p, FsKind::Lvm2, None, None);
}

#[test]
fn bitlocker_before_ntfs_and_fat() {
    // No tool makes BitLocker volumes on Linux: take a FAT boot sector and give it
    // BitLocker's OEM id, as Windows does. It must not be taken for FAT.
    let d = tempfile::tempdir().unwrap();
    let p = image(d.path(), "bl.img", 32);
    run("mkfs.fat", &["-F", "16", p.to_str().unwrap()]);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[0..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
    bytes[3..11].copy_from_slice(b"-FVE-FS-");
    let fve_metadata_offset: u64 = 1 << 20;
    bytes[176..184].copy_from_slice(&fve_metadata_offset.to_le_bytes());
    bytes[1 << 20..(1 << 20) + 8].copy_from_slice(b"-FVE-FS-");
    std::fs::write(&p, &bytes).unwrap();
    let dev = open_path(&p, Access::ReadOnly).unwrap();
    assert_eq!(probe(&dev).map(|i| i.kind), Some(FsKind::Bitlocker));
    assert_eq!(blkid_kind(&blkid(&p)), FsKind::Bitlocker);
}

/// Real superblocks with random bytes flipped, and truncated copies of them: the
/// probes must return something or nothing, never panic or hang.
#[test]
fn damaged_real_superblocks_never_panic() {
    use ironclone::device::{BlockDevice, MemDevice};
    let d = tempfile::tempdir().unwrap();
    let mut images = Vec::new();
    let p = image(d.path(), "e4", 16);
    run("mkfs.ext4", &["-q", "-F", p.to_str().unwrap()]);
    images.push(p);
    let p = image(d.path(), "nt", 16);
    run(
        "mkntfs",
        &["-q", "-F", "-f", "-L", "x", p.to_str().unwrap()],
    );
    images.push(p);
    let p = image(d.path(), "f32", 64);
    run("mkfs.fat", &["-F", "32", "-n", "X", p.to_str().unwrap()]);
    images.push(p);
    let p = image(d.path(), "ex", 16);
    run("mkfs.exfat", &["-L", "x", p.to_str().unwrap()]);
    images.push(p);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for img in &images {
        let dev = open_path(img, Access::ReadOnly).unwrap();
        // NTFS keeps $Volume at 16 KiB into the MFT, which mkntfs puts ~4 MiB in; read it all.
        let len = dev.size().min(8 << 20) as usize;
        let pristine = dev.read_vec(0, len).unwrap();
        for round in 0..300 {
            let mut buf = pristine.clone();
            for _ in 0..(1 + round % 8) {
                // Hit the first 2 KiB (boot sectors, superblocks) most of the time.
                let r = next();
                let pos = if r % 4 == 0 {
                    (r >> 8) as usize % len
                } else {
                    (r >> 8) as usize % 2048
                };
                buf[pos] = (r >> 40) as u8;
            }
            let _ = probe(&MemDevice::from_vec(buf, 512));
        }
        for cut in [0usize, 1, 511, 512, 1100, 2047, 4096, 65536, 70000] {
            let _ = probe(&MemDevice::from_vec(pristine[..cut.min(len)].to_vec(), 512));
        }
    }
}

/// mkfs.xfs over an ext4 leaves ext4's backup superblock in group 1 (checked here):
/// the backup probes run only after every probe failed on the primaries, so the
/// partition is the XFS that lives there now, never the old ext4 read through its
/// backup; with the primary zeroed as well, the old ext4 is found through the backup.
#[test]
fn stale_ext_backup_never_outranks_the_filesystem_there() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("x.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    let p = img.to_str().unwrap();
    run("mkfs.ext4", &["-q", "-F", "-b", "4096", p]);
    run("mkfs.xfs", &["-q", "-f", p]);
    let dev = open_path(&img, Access::ReadOnly).unwrap();
    let backup_magic = dev.read_vec(32768 * 4096 + 0x38, 2).unwrap();
    assert_eq!(backup_magic, [0x53, 0xEF], "mkfs.xfs wiped the ext4 backup");
    assert_eq!(probe(&dev).map(|i| i.kind), Some(FsKind::Xfs));
    drop(dev);
    run(
        "dd",
        &[
            "if=/dev/zero",
            &format!("of={p}"),
            "bs=4096",
            "count=1",
            "conv=notrunc",
        ],
    );
    let dev = open_path(&img, Access::ReadOnly).unwrap();
    assert_eq!(probe(&dev).map(|i| i.kind), Some(FsKind::Ext4));
}

//! The resize layer against real filesystems made by mkfs: shrink to the reported
//! minimum and grow again, then check with the filesystems' own checkers.

use ironclone::probe::FsKind;
use ironclone::resize;
use std::path::Path;
use std::process::Command;

fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// The block count dumpe2fs reads from the superblock.
fn ext_block_count(img: &Path) -> u64 {
    let out = sh(&format!("dumpe2fs -h {}", img.display()));
    let v = out
        .lines()
        .find_map(|l| l.strip_prefix("Block count:"))
        .unwrap_or_else(|| panic!("no block count from dumpe2fs:\n{out}"));
    v.trim().parse().unwrap()
}

/// (cluster size, volume size in clusters) as ntfsinfo reads them from the volume.
fn ntfs_geometry(img: &Path) -> (u64, u64) {
    let out = sh(&format!("ntfsinfo -m {}", img.display()));
    let field = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} from ntfsinfo:\n{out}"))
            .trim()
            .parse()
            .unwrap()
    };
    (field("Cluster Size:"), field("Volume Size in Clusters:"))
}

/// Whole clusters below `size` bytes once the last sector holds the backup boot sector:
/// what mkntfs and ntfsresize give a volume of that size.
fn ntfs_clusters_for(size: u64, cluster: u64) -> u64 {
    (size - 512) / cluster
}

#[test]
fn ext4_shrink_to_minimum_and_grow() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    sh(&format!(
        "head -c 20000000 /dev/urandom > {0}/a && seq 1 200000 > {0}/b",
        data.display()
    ));
    let img = dir.path().join("fs.img");
    sh(&format!(
        "truncate -s 256M {0} && mkfs.ext4 -q -F -d {1} {0}",
        img.display(),
        data.display()
    ));
    let before = sh(&format!("md5sum {}/a | cut -d' ' -f1", data.display()));

    let min = resize::min_size(FsKind::Ext4, &img).unwrap().unwrap();
    assert!(min > 20_000_000 && min < 256 << 20, "min {min}");
    let bs = resize::ext_block_size(&img).unwrap();
    let target = (min + (8 << 20)) / bs * bs;
    resize::resize(FsKind::Ext4, &img, target).unwrap();
    sh(&format!("e2fsck -fn {}", img.display()));
    assert_eq!(ext_block_count(&img) * bs, target);

    sh(&format!("truncate -s 512M {}", img.display()));
    resize::resize(FsKind::Ext4, &img, size(&img)).unwrap();
    sh(&format!("e2fsck -fn {}", img.display()));
    assert_eq!(
        ext_block_count(&img) * bs,
        512 << 20,
        "grown to the container"
    );
    let after = sh(&format!(
        "debugfs -R 'cat /a' {} 2>/dev/null | md5sum | cut -d' ' -f1",
        img.display()
    ));
    assert_eq!(before, after);
}

#[test]
fn ntfs_shrink_and_grow() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("ntfs.img");
    let file = dir.path().join("f");
    sh(&format!(
        "truncate -s 300M {0} && mkntfs -q -F -f {0} && head -c 30000000 /dev/urandom > {1} && ntfscp -f {0} {1} f",
        img.display(),
        file.display()
    ));
    let min = resize::min_size(FsKind::Ntfs, &img).unwrap().unwrap();
    assert!(min > 30_000_000 && min < 300 << 20, "min {min}");
    let target = min + (16 << 20);
    resize::resize(FsKind::Ntfs, &img, target).unwrap();
    // The container follows the filesystem, as a shrunk partition would.
    sh(&format!("truncate -s {target} {}", img.display()));
    resize::ntfs_clear_dirty(&img).unwrap();
    let (cluster, clusters) = ntfs_geometry(&img);
    assert_eq!(
        clusters,
        ntfs_clusters_for(target, cluster),
        "shrunk to {target}"
    );
    sh(&format!("truncate -s 400M {}", img.display()));
    resize::resize(FsKind::Ntfs, &img, 400 << 20).unwrap();
    resize::ntfs_clear_dirty(&img).unwrap();
    let (cluster, clusters) = ntfs_geometry(&img);
    assert_eq!(
        clusters,
        ntfs_clusters_for(400 << 20, cluster),
        "grown to 400 MiB"
    );
    sh(&format!("ntfsfix -n {}", img.display()));
    sh(&format!(
        "ntfsresize --info --force --no-progress-bar {}",
        img.display()
    ));
    let a = sh(&format!("md5sum < {}", file.display()));
    let b = sh(&format!("ntfscat {} f | md5sum", img.display()));
    assert_eq!(a, b);
}

#[test]
fn failing_tool_error_carries_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("junk.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let e = resize::resize(FsKind::Ext4, &img, 1 << 20).unwrap_err();
    assert!(e.to_string().contains("e2fsck"), "{e}");
}

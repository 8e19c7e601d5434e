//! A new FAT32 through `mkfs.fat`, for an ESP that cannot keep its sector size: a
//! FAT records its bytes per sector in the boot sector and every FAT offset counts
//! in them, so a FAT made on 512-byte sectors cannot be read on a 4Kn disk; it is
//! made anew with the target's sectors and its files copied in with `mcopy`.
//! (Not with the `fatfs` crate: 0.3 writes long-name entries in front of `.` and
//! `..`, which fsck.fat rejects and firmware need not accept.)
//!
//! FAT32 needs at least 65525 clusters (below that, the FAT type is FAT16 by the
//! specification's rule, the cluster count), and a cluster is at least one sector.
//! With 4096-byte sectors that is 256.6 MiB, which is why Windows makes its ESP
//! 260 MB on 4Kn disks. mkfs.fat forced below it only warns; Linux, `fsck.fat` and
//! Windows' fastfat still read the result as FAT32 (they go by `BPB_FATSz16` = 0),
//! but mtools and the `fatfs` crate go by the cluster count: `mcopy` cannot write
//! into it (checked with mtools 4.0.32), and the files are copied in with `mcopy`.

use super::tool::{run_tool, run_tool_env, ToolError};
use std::path::Path;

/// The fewest clusters a FAT32 may have (Microsoft's FAT specification).
pub const FAT32_MIN_CLUSTERS: u64 = 65_525;
/// What mkfs.fat reserves in front of the FATs on FAT32 (boot sector, FSInfo, backup).
const MKFS_RESERVED_SECTORS: u64 = 32;
const FATS: u64 = 2;
const MIB: u64 = 1 << 20;

/// The smallest partition (whole MiB) in which mkfs.fat makes a FAT32 with
/// `sector`-byte sectors and one sector per cluster: 257 MiB for 4096-byte sectors.
pub fn fat32_min_size(sector: u32) -> u64 {
    let ss = u64::from(sector.max(512));
    // Two reserved FAT entries in front of the clusters, four bytes each.
    let fat_sectors = ((FAT32_MIN_CLUSTERS + 2) * 4).div_ceil(ss);
    let sectors = MKFS_RESERVED_SECTORS + FATS * fat_sectors + FAT32_MIN_CLUSTERS;
    (sectors * ss).div_ceil(MIB) * MIB
}

/// What the new FAT32 keeps of the old one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fat32Spec {
    pub sector: u32,
    pub volume_id: u32,
    /// The volume label, or `None` for none ("NO NAME").
    pub label: Option<String>,
    /// The partition's start LBA in `sector` units (BPB_HiddSec), when it fits 32 bits.
    pub hidden_sectors: Option<u32>,
}

/// `mkfs.fat -F 32 -S <sector> -i <id> [-n <label>] [-h <hidden>] <path>` on the
/// file or device `path`, which must already have the partition's size.
pub fn mkfs_fat32(path: &Path, spec: &Fat32Spec) -> Result<(), ToolError> {
    let sector = spec.sector.to_string();
    let id = format!("{:08X}", spec.volume_id);
    let hidden = spec.hidden_sectors.map(|h| h.to_string());
    let mut args = vec!["-F", "32", "-S", &sector, "-i", &id];
    if let Some(l) = &spec.label {
        args.extend_from_slice(&["-n", l]);
    }
    if let Some(h) = &hidden {
        args.extend_from_slice(&["-h", h]);
    }
    let p = path.display().to_string();
    args.push(&p);
    run_tool("mkfs.fat", &args, None, &[0]).map(|_| ())
}

/// `fsck.fat -n`: the new filesystem is checked by the reference tool before any
/// of it reaches the target.
pub fn fsck_fat(path: &Path) -> Result<(), ToolError> {
    run_tool("fsck.fat", &["-n", &path.display().to_string()], None, &[0]).map(|_| ())
}

/// `mcopy -s -m` of every entry of the host directory `from` into the root of the
/// FAT in `image`, with modification times. FAT keeps local time without a zone; the
/// tree was written out with FAT times taken as UTC, so mtools runs in UTC to put
/// the same fields back. UTF-8 names need a UTF-8 locale.
pub fn mcopy_tree(image: &Path, from: &Path) -> Result<(), ToolError> {
    let io = |source| ToolError::Io {
        path: from.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for e in std::fs::read_dir(from).map_err(io)? {
        entries.push(e.map_err(io)?.path().display().to_string());
    }
    if entries.is_empty() {
        return Ok(());
    }
    entries.sort();
    let img = image.display().to_string();
    let mut args = vec!["-s", "-m", "-Q", "-i", &img];
    args.extend(entries.iter().map(String::as_str));
    args.push("::/");
    let env = [
        ("MTOOLS_SKIP_CHECK", "1"),
        ("TZ", "UTC0"),
        ("LC_ALL", "C.UTF-8"),
    ];
    run_tool_env("mcopy", &args, &env, None, &[0]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat32_minimum_per_sector_size() {
        // mkfs.fat 4.2 -S 4096 -F 32: 256 MiB gives 65376 clusters, 257 MiB 65630.
        assert_eq!(fat32_min_size(4096), 257 * MIB);
        // 512-byte sectors: 65525 clusters of 512 bytes plus 2 x 512 FAT sectors.
        assert_eq!(fat32_min_size(512), 33 * MIB);
    }

    /// mkfs.fat + mcopy_tree: a FAT32 with 4096-byte sectors, the label and ID
    /// asked for, the tree inside with its times, clean for fsck.fat.
    #[test]
    fn new_fat32_with_a_tree_passes_fsck() {
        let td = tempfile::tempdir().unwrap();
        let img = td.path().join("esp.fat");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(fat32_min_size(4096))
            .unwrap();
        let spec = Fat32Spec {
            sector: 4096,
            volume_id: 0x1234_abcd,
            label: Some("ESP".into()),
            hidden_sectors: Some(256),
        };
        mkfs_fat32(&img, &spec).unwrap();
        let tree = td.path().join("tree");
        let deep = tree.join("EFI/debian/fonts/deep/nested");
        std::fs::create_dir_all(&deep).unwrap();
        let f = deep.join("unicode.pf2");
        std::fs::write(&f, vec![7u8; 40_000]).unwrap();
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(when)
            .unwrap();
        std::fs::write(tree.join("EFI/debian/A long name, spaces.txt"), b"x").unwrap();
        mcopy_tree(&img, &tree).unwrap();
        fsck_fat(&img).unwrap();
        let b = std::fs::read(&img).unwrap();
        assert_eq!(&b[11..13], &4096u16.to_le_bytes());
        assert_eq!(&b[67..71], &0x1234_abcdu32.to_le_bytes());
        assert_eq!(&b[71..82], b"ESP        ");
        assert_eq!(&b[28..32], &256u32.to_le_bytes());
        let env = [("MTOOLS_SKIP_CHECK", "1"), ("TZ", "UTC0")];
        let i = img.display().to_string();
        let out = run_tool_env("mdir", &["-/", "-b", "-i", &i, "::/"], &env, None, &[0]).unwrap();
        assert!(
            out.stdout.contains("::/EFI/debian/A long name, spaces.txt"),
            "{}",
            out.stdout
        );
        let out = run_tool_env(
            "mdir",
            &["-i", &i, "::/EFI/debian/fonts/deep/nested/unicode.pf2"],
            &env,
            None,
            &[0],
        )
        .unwrap();
        // 1600000000 is 2020-09-13 12:26:40 UTC.
        assert!(out.stdout.contains("2020-09-13  12:26"), "{}", out.stdout);
    }
}

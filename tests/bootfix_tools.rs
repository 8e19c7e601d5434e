//! The boot-sector repairs on filesystems made by the real tools (mkntfs, mkfs.fat,
//! mtools), placed inside a disk image at a partition offset, and judged by
//! independent tools: `file` for the hidden-sectors field, `ntfsfix -n` for NTFS
//! (including its alternate boot sector), `fsck.fat -n` for FAT32's backup boot
//! sector, and `mdir`/`mtype` for the ESP fallback copy.

use ironclone::bootfix::esp_fallback::{self, FallbackPlan};
use ironclone::bootfix::{fat_geometry, ntfs_geometry};
use ironclone::device::{open_path, Access, BlockDevice, Window};
use std::path::Path;
use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} (install it with scripts/setup.sh): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd} {args:?} failed: {text}");
    text
}

/// Copies `part` into `disk` at byte `offset` (sparse-friendly: only nonzero 1 MiB blocks).
fn place(disk: &Path, part: &Path, offset: u64) {
    run(
        "dd",
        &[
            &format!("if={}", part.display()),
            &format!("of={}", disk.display()),
            "bs=1M",
            "oflag=seek_bytes",
            &format!("seek={offset}"),
            "conv=notrunc,sparse",
            "status=none",
        ],
    );
}

/// Copies a partition back out of the disk, so the tools judge exactly what we wrote.
fn extract(disk: &Path, offset: u64, len: u64, out: &Path) {
    run(
        "dd",
        &[
            &format!("if={}", disk.display()),
            &format!("of={}", out.display()),
            "bs=1M",
            "iflag=skip_bytes,count_bytes",
            &format!("skip={offset}"),
            &format!("count={len}"),
            "status=none",
        ],
    );
}

#[test]
fn ntfs_hidden_sectors_fixed_in_both_boot_sectors() {
    let dir = tempfile::tempdir().unwrap();
    let (vol, disk, back) = (
        dir.path().join("v.ntfs"),
        dir.path().join("disk.img"),
        dir.path().join("back.ntfs"),
    );
    let len: u64 = 32 << 20;
    std::fs::File::create(&vol).unwrap().set_len(len).unwrap();
    // Made for a partition at LBA 2048, then "restored" to LBA 6144.
    run(
        "mkntfs",
        &[
            "-q",
            "-F",
            "-Q",
            "-s",
            "512",
            "-p",
            "2048",
            "-H",
            "255",
            "-S",
            "63",
            vol.to_str().unwrap(),
        ],
    );
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let start: u64 = 6144;
    place(&disk, &vol, start * 512);

    let dev = open_path(&disk, Access::ReadWrite).unwrap();
    let part = Window::new(&dev, start * 512, len).unwrap();
    let fix = ntfs_geometry::fix_ntfs_geometry(&part, start, None).unwrap();
    assert_eq!(fix.old.hidden_sectors, 2048);
    assert_eq!(fix.new.hidden_sectors, 6144);
    assert!(
        fix.backup_was_present,
        "mkntfs writes the backup boot sector"
    );
    assert_eq!(fix.backup_offset, fix.old.number_of_sectors * 512);
    dev.flush().unwrap();

    extract(&disk, start * 512, len, &back);
    let f = run("file", &["-b", back.to_str().unwrap()]);
    assert!(f.contains("hidden sectors 6144"), "file says: {f}");
    let n = run("ntfsfix", &["-n", back.to_str().unwrap()]);
    assert!(
        n.contains("Checking the alternate boot sector... OK"),
        "ntfsfix says: {n}"
    );
    // The backup (last sector of the volume) carries the new value too.
    let bytes = std::fs::read(&back).unwrap();
    let b = (fix.backup_offset as usize)..(fix.backup_offset as usize + 512);
    assert_eq!(&bytes[..512], &bytes[b]);
}

#[test]
fn fat32_hidden_sectors_fixed_in_boot_and_backup_sector() {
    let dir = tempfile::tempdir().unwrap();
    let (vol, disk, back) = (
        dir.path().join("v.fat"),
        dir.path().join("disk.img"),
        dir.path().join("back.fat"),
    );
    let len: u64 = 64 << 20;
    run(
        "mkfs.fat",
        &[
            "-F",
            "32",
            "-S",
            "512",
            "-s",
            "1",
            "-h",
            "2048",
            "-C",
            vol.to_str().unwrap(),
            &(len / 1024).to_string(),
        ],
    );
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(128 << 20)
        .unwrap();
    let start: u64 = 40960;
    place(&disk, &vol, start * 512);

    let dev = open_path(&disk, Access::ReadWrite).unwrap();
    let part = Window::new(&dev, start * 512, len).unwrap();
    let fix = fat_geometry::fix_fat_hidden_sectors(&part, start).unwrap();
    assert_eq!(
        (fix.old_hidden_sectors, fix.new_hidden_sectors),
        (2048, 40960)
    );
    assert_eq!(fix.backup_patched_at_sector, Some(6));

    extract(&disk, start * 512, len, &back);
    let f = run("file", &["-b", back.to_str().unwrap()]);
    assert!(f.contains("hidden sectors 40960"), "file says: {f}");
    let fsck = run("fsck.fat", &["-n", back.to_str().unwrap()]);
    assert!(!fsck.contains("differences"), "fsck.fat -n says: {fsck}");
}

#[test]
fn esp_fallback_copies_the_distribution_loader() {
    let dir = tempfile::tempdir().unwrap();
    let (esp, disk, loader) = (
        dir.path().join("esp.fat"),
        dir.path().join("disk.img"),
        dir.path().join("grubx64.efi"),
    );
    run(
        "mkfs.fat",
        &["-F", "32", "-C", esp.to_str().unwrap(), "40960"],
    );
    std::fs::write(&loader, b"MZ not really a PE, but bytes to compare").unwrap();
    let img = |p: &Path| p.to_str().unwrap().to_string();
    run("mmd", &["-i", &img(&esp), "::/EFI", "::/EFI/debian"]);
    run(
        "mcopy",
        &["-i", &img(&esp), &img(&loader), "::/EFI/debian/grubx64.efi"],
    );
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let offset = 2048 * 512;
    place(&disk, &esp, offset);

    let out = esp_fallback::ensure_fallback(&disk, offset, None).unwrap();
    assert!(
        matches!(&out.plan, FallbackPlan::Copy { loader, .. } if loader == "/EFI/debian/grubx64.efi")
    );
    let target = format!("{}@@{offset}", disk.display());
    let listing = run("mdir", &["-/", "-b", "-i", &target, "::/"]);
    assert!(
        listing
            .lines()
            .any(|l| l.trim() == "::/EFI/BOOT/BOOTX64.EFI"),
        "mdir: {listing}"
    );
    let copied = Command::new("mtype")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-i", &target, "::/EFI/BOOT/BOOTX64.EFI"])
        .output()
        .unwrap();
    assert_eq!(copied.stdout, std::fs::read(&loader).unwrap());
    run("fsck.fat", &["-n", &img(&esp)]);
    // A second run finds it present and changes nothing.
    let again = esp_fallback::ensure_fallback(&disk, offset, None).unwrap();
    assert_eq!(again.plan, FallbackPlan::AlreadyPresent);
    // An ESP without any loader is refused.
    let empty = dir.path().join("empty.fat");
    run("mkfs.fat", &["-C", empty.to_str().unwrap(), "8192"]);
    assert!(esp_fallback::ensure_fallback(&empty, 0, None).is_err());
}

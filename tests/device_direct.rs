//! Bulk writes (`write_bulk_at`) bypass the page cache when everything is aligned,
//! fall back to ordinary writes when not, and land the same bytes either way; direct
//! reads (`read_direct_at`) bypass it at any offset, read-only, with the same bytes.

use ironclone::device::{open_path, Access, BlockDevice, DeviceError, DIRECT_ALIGN};

/// `len` bytes of a pattern inside a buffer, starting at an aligned address.
fn aligned(len: usize, seed: u8) -> (Vec<u8>, usize) {
    let mut v = vec![0u8; len + DIRECT_ALIGN];
    let start = v.as_ptr().align_offset(DIRECT_ALIGN);
    for (i, b) in v[start..start + len].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    (v, start)
}

/// `expect_direct`: `Some(true)` the aligned write must have used O_DIRECT, `Some(false)` it
/// must have fallen back to the cache, `None` either (tmpfs, depending on the kernel).
fn check_dir(dir: &std::path::Path, expect_direct: Option<bool>) {
    let path = dir.join("target.img");
    std::fs::write(&path, vec![0u8; 16 << 20]).unwrap();
    let dev = open_path(&path, Access::ReadWrite).unwrap();
    let (a, s) = aligned(1 << 20, 7);
    let body = &a[s..s + (1 << 20)];
    dev.write_bulk_at(4 << 20, body).unwrap();
    // Unaligned in every way: goes through the cache, same result.
    let odd = &a[s + 1..s + 3001];
    dev.write_bulk_at(1000, odd).unwrap();
    dev.flush().unwrap();
    if let Some(direct) = expect_direct {
        assert_eq!(
            dev.writes_direct(),
            direct,
            "aligned bulk write used O_DIRECT: {}",
            dev.writes_direct()
        );
        let flags = fd_flags(&path);
        assert_eq!(
            flags.iter().any(|f| f & nix::libc::O_DIRECT != 0),
            direct,
            "O_DIRECT descriptors on the target: {flags:?}"
        );
    }
    let back = std::fs::read(&path).unwrap();
    assert_eq!(&back[4 << 20..5 << 20], body);
    assert_eq!(&back[1000..4000], odd);
    assert!(back[..1000].iter().all(|&b| b == 0));
    assert!(back[5 << 20..].iter().all(|&b| b == 0));
    // Out of range is refused as for write_at.
    assert!(dev.write_bulk_at(16 << 20, body).is_err());
}

#[test]
fn aligned_bulk_writes_go_direct_on_a_disk_file_system() {
    // /var/tmp is on the root file system here (ext4), which takes O_DIRECT.
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    check_dir(dir.path(), Some(true));
}

#[test]
#[ignore = "needs root"]
fn file_systems_without_o_direct_fall_back_to_cached_writes() {
    // ramfs refuses O_DIRECT when the file is opened, so both the aligned and the
    // unaligned bulk write must go through the page cache, with the same bytes.
    let fs = Ramfs::mount();
    check_dir(fs.path(), Some(false));
}

#[test]
fn tmpfs_bulk_writes_land_the_same_bytes() {
    // tmpfs refuses O_DIRECT on older kernels and takes it on newer ones; the bytes
    // must be right either way.
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    check_dir(dir.path(), None);
}

/// A ramfs mounted on a fresh directory, unmounted when dropped. Unlike tmpfs (which takes
/// O_DIRECT since Linux 6.6) ramfs has no direct I/O at all: opening with O_DIRECT fails
/// with EINVAL, which `mount` checks before any test relies on it.
struct Ramfs(tempfile::TempDir);

impl Ramfs {
    fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        common::run(
            "mount",
            &["-t", "ramfs", "ramfs", common::path_str(dir.path())],
        );
        let fs = Ramfs(dir);
        let probe = fs.path().join("probe");
        std::fs::write(&probe, b"probe").unwrap();
        let e = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECT)
            .open(&probe)
            .expect_err("precondition: ramfs refuses O_DIRECT");
        assert_eq!(e.raw_os_error(), Some(nix::libc::EINVAL), "{e}");
        fs
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Ramfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn read_only_devices_refuse_bulk_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.img");
    std::fs::write(&path, vec![9u8; 1 << 20]).unwrap();
    let dev = open_path(&path, Access::ReadOnly).unwrap();
    let (a, s) = aligned(4096, 1);
    let e = dev.write_bulk_at(0, &a[s..s + 4096]).unwrap_err();
    assert!(matches!(e, DeviceError::ReadOnly { .. }), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), vec![9u8; 1 << 20]);
}

// ---- direct reads (`read_direct_at`): the rescue's sector-exact re-reads ----

#[path = "common/mod.rs"]
mod common;

use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + i / 4096) as u8).wrapping_add(seed) | 1)
        .collect()
}

/// The open flags of this process's descriptors on `path`, from /proc/self/fdinfo.
fn fd_flags(path: &Path) -> Vec<i32> {
    let path = path.canonicalize().unwrap();
    let mut flags = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if std::fs::read_link(e.path()).ok().as_deref() != Some(path.as_path()) {
            continue;
        }
        let info = std::fs::read_to_string(Path::new("/proc/self/fdinfo").join(e.file_name()));
        let Ok(info) = info else { continue };
        let f = info.lines().find_map(|l| l.strip_prefix("flags:")).unwrap();
        flags.push(i32::from_str_radix(f.trim(), 8).unwrap());
    }
    flags
}

/// Reads `(offset, len)` both ways (also into a page-aligned buffer) and compares.
fn same_both_ways(dev: &dyn BlockDevice, offset: u64, len: usize) {
    let mut cached = vec![0u8; len];
    dev.read_at(offset, &mut cached).unwrap();
    let mut direct = vec![0xEEu8; len];
    dev.read_direct_at(offset, &mut direct)
        .unwrap_or_else(|e| panic!("direct read {offset}+{len}: {e}"));
    assert!(direct == cached, "direct read {offset}+{len} differs");
    let (mut a, s) = aligned(len, 0);
    dev.read_direct_at(offset, &mut a[s..s + len]).unwrap();
    assert!(
        a[s..s + len] == cached[..],
        "aligned direct read {offset}+{len} differs"
    );
}

/// `expect_direct` as for `check_dir`.
fn check_direct_reads(dir: &Path, expect_direct: Option<bool>) {
    let path = dir.join("source.img");
    let size = (3 << 20) + 1000; // not a whole number of pages or sectors
    std::fs::write(&path, pattern(size, 3)).unwrap();
    let dev = open_path(&path, Access::ReadOnly).unwrap();
    let s = size as u64;
    for (offset, len) in [
        (0, 512),
        (1, 1),
        (4095, 2),
        (1000, 3000),
        (4096, 4096),
        (4096 * 5 + 512, 512),
        (100, (2 << 20) + 12345), // over the 1 MiB bounce buffer
        (s - 700, 700),           // to the end of a file that ends mid-sector
        (s - 1, 1),
    ] {
        same_both_ways(&dev, offset, len);
    }
    assert!(matches!(
        dev.read_direct_at(s - 10, &mut [0u8; 20]),
        Err(DeviceError::OutOfRange { .. })
    ));
    if let Some(direct) = expect_direct {
        assert_eq!(dev.reads_direct(), direct, "direct reads used O_DIRECT");
        let flags = fd_flags(&path);
        assert_eq!(
            flags.iter().any(|f| f & nix::libc::O_DIRECT != 0),
            direct,
            "O_DIRECT descriptors on the source: {flags:?}"
        );
        // A source is never opened writable, not even for the direct reads.
        assert!(
            flags
                .iter()
                .all(|f| f & nix::libc::O_ACCMODE == nix::libc::O_RDONLY),
            "a descriptor on the source is writable: {flags:?}"
        );
    }
}

#[test]
fn direct_reads_of_a_file_equal_cached_reads_at_any_offset() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    check_direct_reads(dir.path(), Some(true));
}

#[test]
fn direct_reads_on_tmpfs_equal_cached_reads() {
    // tmpfs takes O_DIRECT on newer kernels only; either way the bytes are the same.
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    check_direct_reads(dir.path(), None);
}

#[test]
#[ignore = "needs root"]
fn direct_reads_fall_back_to_cached_reads_where_o_direct_is_refused() {
    let fs = Ramfs::mount();
    check_direct_reads(fs.path(), Some(false));
}

/// On a block device a direct read skips the device's page cache and reads just the
/// sectors asked for: after the backing file changes under a loop device, cached reads
/// still see the old page, direct reads the new sector and its old neighbours.
fn check_loop_bypass(sector: u32) {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let file = dir.path().join("disk.img");
    let old = pattern(1 << 20, 5);
    std::fs::write(&file, &old).unwrap();
    let lo = common::LoopDev::attach(&file, Some(sector));
    let dev = open_path(&lo.path, Access::ReadOnly).unwrap();
    assert!(dev.is_block_device());
    assert_eq!(dev.logical_sector_size(), sector);
    let mut warm = vec![0u8; 64 << 10];
    dev.read_at(0, &mut warm).unwrap(); // now in the loop device's page cache
    assert_eq!(warm[..], old[..64 << 10]);

    let at = 8192 + u64::from(sector); // inside what the cached read brought in
    let new = pattern(sector as usize, 99);
    let backing = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    backing.write_all_at(&new, at).unwrap();
    backing.sync_all().unwrap();

    let mut cached = vec![0u8; sector as usize];
    dev.read_at(at, &mut cached).unwrap();
    assert!(
        cached[..] == old[at as usize..at as usize + sector as usize],
        "precondition: the cached read should still see the old sector"
    );
    // Unaligned inside the sector, and the whole page around it.
    let mut part = vec![0u8; 100];
    dev.read_direct_at(at + 7, &mut part).unwrap();
    assert_eq!(part[..], new[7..107], "direct read served from the cache");
    // The sector and its neighbours in one direct read: old, new, old.
    let k = sector as usize;
    let mut three = vec![0u8; 3 * k];
    dev.read_direct_at(at - u64::from(sector), &mut three)
        .unwrap();
    let mut want = old[at as usize - k..at as usize + 2 * k].to_vec();
    want[k..2 * k].copy_from_slice(&new);
    assert!(three == want, "direct read is not old, new, old sector");
    assert!(dev.reads_direct());
    let flags = fd_flags(&lo.path);
    assert!(flags.iter().any(|f| f & nix::libc::O_DIRECT != 0));
    assert!(flags
        .iter()
        .all(|f| f & nix::libc::O_ACCMODE == nix::libc::O_RDONLY));
}

#[test]
#[ignore = "needs root"]
fn direct_reads_of_a_block_device_bypass_its_page_cache() {
    check_loop_bypass(512);
    check_loop_bypass(4096);
}

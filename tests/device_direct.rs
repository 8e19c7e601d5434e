//! Bulk writes (`write_bulk_at`) bypass the page cache when everything is aligned,
//! fall back to ordinary writes when not, and land the same bytes either way.

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

fn check_dir(dir: &std::path::Path, expect_direct: bool) {
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
    if expect_direct {
        assert!(
            dev.writes_direct(),
            "aligned bulk write did not use O_DIRECT"
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
    check_dir(dir.path(), true);
}

#[test]
fn file_systems_without_o_direct_fall_back_to_cached_writes() {
    // tmpfs refuses O_DIRECT on older kernels and takes it on newer ones; the bytes
    // must be right either way.
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    check_dir(dir.path(), false);
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

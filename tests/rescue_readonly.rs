//! BLKROSET on a real loop device: while the guard lives, a write from another
//! descriptor is refused by the kernel (EPERM); after it drops, writes work again.

use ironclone::rescue::{set_read_only, ReadOnlyState};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;

/// Detaches the loop device this test attached (and only that one).
struct Loop(PathBuf);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

fn attach(file: &std::path::Path) -> Loop {
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(file)
        .output()
        .expect("losetup is required for this test (util-linux)");
    assert!(
        out.status.success(),
        "losetup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Loop(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

#[test]
#[ignore = "needs root"]
fn blkroset_blocks_writes_and_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let lo = attach(&img);

    let writer = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lo.0)
        .unwrap();
    writer.write_all_at(b"before", 0).unwrap();

    let source = OpenOptions::new().read(true).open(&lo.0).unwrap();
    let guard = set_read_only(&source, &lo.0).unwrap();
    assert_eq!(guard.state(), ReadOnlyState::Set);
    assert!(ironclone::rescue::readonly::is_read_only(&source, &lo.0).unwrap());
    let err = writer.write_all_at(b"during", 4096).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc_eperm()), "{err}");
    // Reading keeps working.
    let mut b = [0u8; 6];
    source.read_exact_at(&mut b, 0).unwrap();
    assert_eq!(&b, b"before");

    drop(guard);
    assert!(!ironclone::rescue::readonly::is_read_only(&source, &lo.0).unwrap());
    writer.write_all_at(b"after!", 4096).unwrap();
    writer.sync_all().unwrap();

    // A device that was read-only before stays read-only after the guard.
    let st = Command::new("blockdev")
        .arg("--setro")
        .arg(&lo.0)
        .status()
        .unwrap();
    assert!(st.success());
    let guard = set_read_only(&source, &lo.0).unwrap();
    assert_eq!(guard.state(), ReadOnlyState::AlreadyReadOnly);
    drop(guard);
    assert!(ironclone::rescue::readonly::is_read_only(&source, &lo.0).unwrap());
    let st = Command::new("blockdev")
        .arg("--setrw")
        .arg(&lo.0)
        .status()
        .unwrap();
    assert!(st.success());

    // A regular file is left alone.
    let f = std::fs::File::open(&img).unwrap();
    assert_eq!(
        set_read_only(&f, &img).unwrap().state(),
        ReadOnlyState::NotBlockDevice
    );
}

fn libc_eperm() -> i32 {
    1
}

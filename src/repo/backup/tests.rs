//! A backup refused before it stores anything.

use super::*;
use crate::progress::NoProgress;
use crate::repo::manifest;
use crate::repo::SourceInfo;

#[test]
fn a_source_whose_manifest_no_reader_would_take_is_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let r = Repository::init(&dir.path().join("r"), 8 << 20, 128 << 20).unwrap();
    // One 64 KiB chunk too many, in a sparse file (nothing is read).
    let path = dir.path().join("big.img");
    let size = (manifest::max_chunks() + 1) * (64 << 10);
    std::fs::File::create(&path).unwrap().set_len(size).unwrap();
    let dev = crate::device::open_path(&path, crate::device::Access::ReadOnly).unwrap();
    let plan = BackupPlan::whole_device(SourceInfo {
        path: "big".into(),
        model: None,
        serial: None,
        size,
        sector_size: 512,
    });
    let e = backup(&r, &dev, &plan, &BackupOptions::new("big"), &NoProgress).unwrap_err();
    assert!(
        matches!(e, RepoError::TooManyChunks { chunks, max } if chunks == max + 1),
        "{e}"
    );
    assert!(r.list_images().unwrap().is_empty());
    assert!(
        index::file_names(&r).unwrap().is_empty(),
        "no pack was stored"
    );
}

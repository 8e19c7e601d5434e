//! LVM2 PVs imaged by the used blocks of the filesystems inside their LVs: a PV made by
//! lvm2 (tests/lvm_fixture), mapped, and only the mapped bytes copied onto zeros; then
//! lvm2's own `pvck` and `vgcfgbackup` read the copy's label and metadata, each LV is
//! read back out through its segments and checked with e2fsck and every file, and
//! damaged labels and metadata give errors that name the structure.

mod fsfixture;
mod lvm_fixture;

use fsfixture::restore_extents;
use ironclone::device::{open_path, Access, MemDevice};
use ironclone::ondisk::lvm::LvmError;
use ironclone::probe::FsKind;
use ironclone::usedmap::{map_filesystem, map_lvm};
use lvm_fixture::*;
use std::path::Path;

fn map_file(p: &Path) -> Result<ironclone::usedmap::UsedMap, LvmError> {
    map_lvm(&open_path(p, Access::ReadOnly).unwrap())
}

#[test]
#[ignore = "needs root"]
fn lvs_are_imaged_by_their_filesystems_used_blocks() {
    let fx = PvFixture::new("icvgmap");
    let map = map_file(&fx.pv).unwrap();
    let lay = map.lvm.as_ref().expect("an LVM layout");
    assert_eq!(lay.vg_name, "icvgmap");
    assert_eq!(lay.extent_bytes, EXT);
    let lv = |n: &str| lay.lvs.iter().find(|l| l.name == n).unwrap();
    assert_eq!(lv("root").fs.as_deref(), Some("ext4"));
    assert_eq!(lv("root").label.as_deref(), Some("root"));
    assert_eq!(lv("root").tags, ["t-root"]);
    assert_eq!(lv("data").fs.as_deref(), Some("ext4"));
    assert_eq!(lv("swap").fs.as_deref(), Some("swap"));
    for n in ["root", "data", "swap"] {
        assert!(lv(n).whole.is_none(), "{n}: {:?}", lv(n).whole);
        assert!(
            lv(n).copied < lv(n).size / 2,
            "{n} copied {} of {}",
            lv(n).copied,
            lv(n).size
        );
    }
    assert_eq!(lv("pool_tdata").copied, EXT, "a hidden LV is copied whole");
    assert!(lv("pool_tdata")
        .whole
        .as_deref()
        .unwrap()
        .contains("hidden"));
    // Label, metadata area and LV data: far less than the 96 MiB PV.
    assert!(map.used_bytes < 40 * MIB, "{}", map.used_bytes);
    // Through the generic entry point too (what a backup calls).
    let dev = open_path(&fx.pv, Access::ReadOnly).unwrap();
    let generic = map_filesystem(&dev, FsKind::Lvm2);
    assert_eq!(generic.extents, map.extents);

    let copy = fx.dir.path().join("copy.img");
    restore_extents(&fx.pv, &copy, &map);
    // Free extents are zeros in the copy; everything lvm2 and the LVs need is there.
    fx.check_copy(&copy, "the mapped extents");

    // The check can fail: without the map's last extent, a file of "data" is lost.
    let mut short = map.clone();
    short
        .extents
        .retain(|e| e.offset < PE_START + 13 * EXT || e.offset >= PE_START + 17 * EXT);
    let broken = fx.dir.path().join("broken.img");
    restore_extents(&fx.pv, &broken, &short);
    let out = fx.dir.path().join("data.broken");
    gather(&broken, &out, &fx.lv("data").2);
    let fsck = std::process::Command::new("e2fsck")
        .args(["-fn", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !fsck.status.success(),
        "e2fsck passed an LV whose blocks were not copied"
    );
}

#[test]
#[ignore = "needs root"]
fn damaged_labels_and_metadata_are_named() {
    let fx = PvFixture::new("icvgbad");
    let pv = std::fs::read(&fx.pv).unwrap();
    let label_at = (0..4)
        .map(|s| s * 512)
        .find(|&o| pv[o..o + 8] == *b"LABELONE")
        .unwrap();
    // The committed text is wherever raw_locns[0] says (each commit moves it on).
    let text_at = 4096 + u64::from_le_bytes(pv[4096 + 40..4096 + 48].try_into().unwrap()) as usize;
    let cases: [(usize, &str); 4] = [
        (label_at + 40, "label in sector"), // pv_uuid: the label CRC fails
        (4096 + 8, "metadata area header at byte 4096"), // mda_header magic
        (4096 + 40, "metadata area header at byte 4096"), // raw_locn: the header CRC fails
        (text_at + 20, "metadata text at byte"), // the text: its checksum fails
    ];
    for (at, what) in cases {
        let mut b = pv.clone();
        b[at] ^= 0x55;
        let dev = MemDevice::from_vec(b, 512);
        let err = map_lvm(&dev).unwrap_err().to_string();
        assert!(err.contains(what), "byte {at}: {err}");
        let raw = map_filesystem(&dev, FsKind::Lvm2);
        assert!(
            raw.raw && raw.raw_reason.as_deref().unwrap().contains(what),
            "{raw:?}"
        );
    }
    // A PV without a label at all.
    let mut b = pv.clone();
    b[label_at..label_at + 8].copy_from_slice(b"LABELTWO");
    assert!(matches!(
        map_lvm(&MemDevice::from_vec(b, 512)),
        Err(LvmError::NoLabel)
    ));
}

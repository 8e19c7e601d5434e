//! An LVM2 PV partition through the binary: `ironclone backup` of a GPT disk (p1 ext4,
//! p2 a PV made by lvm2 holding ext4 LVs in linear and striped segments, swap and a
//! hidden LV), `ironclone restore` onto a larger and a smaller disk (ext4 grows or
//! shrinks; the PV, asked to keep its size with `--size`, moves; resizing it is
//! tests/restore_lvm_resize.rs) and onto one too small to hold it
//! (refused before anything is written). Judged by sgdisk -v and e2fsck for p1, and
//! for the PV by lvm2's pvck and vgcfgbackup, e2fsck and every file of each LV read
//! back through its segments (tests/lvm_fixture). Needs root (loop devices).

mod common;
mod lvm_fixture;
mod restore_fixture;

use common::path_str;
use restore_fixture::*;

const PV_LEN: u64 = 96 * MIB;

#[test]
#[ignore = "needs root"]
fn a_pv_partition_moves_with_its_size_and_its_lvs_intact() {
    for t in ["sfdisk", "sgdisk", "mkfs.ext4", "lvm", "debugfs"] {
        common::require_tool(t);
    }
    let pv = lvm_fixture::PvFixture::new("icvgrestore");
    let (s, log) = pv_disk_source(&pv.pv);
    let line = log
        .lines()
        .find(|l| l.trim_start().starts_with("p2 "))
        .unwrap_or_else(|| panic!("no p2 line in the backup summary:\n{log}"));
    assert!(
        line.contains("lvm2") && !line.contains("raw"),
        "the PV was not imaged by used blocks: {line}\n{log}"
    );
    let (ok, listing) = ironclone(&["images", path_str(&s.repo), "--json"]);
    assert!(ok, "{listing}");
    let size = s.size;

    for (name, pct) in [("grow.img", 150), ("shrink.img", 90)] {
        let t = s.target(name, size * pct / 100);
        // Sized as it was: the PV is copied as is (tests/restore_lvm_resize.rs resizes).
        let log = s.restore_ok(&t, &["--size", "2=96M"]);
        s.check(&t, true, &log);
        let (_, plen) = part(&t, 2);
        assert_eq!(plen, PV_LEN, "{name}: the PV partition changed size\n{log}");
        let copy = s.dir.join(format!("{name}.pv"));
        let (pstart, _) = part(&t, 2);
        if pct > 100 {
            let (sstart, _) = part(&s.disk, 2);
            assert_ne!(
                pstart, sstart,
                "{name}: the fixture meant the PV to move\n{log}"
            );
        }
        dd_out(&t, &copy, pstart, PV_LEN);
        pv.check_copy(&copy, name);
        std::fs::remove_file(&copy).unwrap();
        std::fs::remove_file(&t).unwrap();
    }

    // Too small for the PV at its size and p1's smallest size: refused, the target
    // untouched.
    let t = s.target("small.img", 100 * MIB);
    let before = std::fs::read(&t).unwrap();
    let (ok, log) = s.restore(&t, &["--size", "2=96M"]);
    assert!(!ok, "a restore onto 100 MiB should be refused:\n{log}");
    assert!(
        std::fs::read(&t).unwrap() == before,
        "the refused target was written\n{log}"
    );
}

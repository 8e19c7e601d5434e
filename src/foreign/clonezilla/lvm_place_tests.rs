//! Unit tests of lvm_place.rs: where each LV segment goes, and what is refused.

use super::*;

#[test]
fn reads_the_swap_info() {
    let (u, l) = swap_ids("UUID=\"2ed2a5c1-3b5e-4f0a-9d64-1b9e8f3c2a10\"\nLABEL=\"\"\n");
    assert_eq!(u.as_deref(), Some("2ed2a5c1-3b5e-4f0a-9d64-1b9e8f3c2a10"));
    assert_eq!(l, None);
    assert_eq!(swap_ids("LABEL=sw\n").1.as_deref(), Some("sw"));
}

const MIB: u64 = 1 << 20;

/// An MBR disk whose sda1 (1 MiB on, 100 MiB) is the PV of vg0: LV root in two
/// segments out of order (LV extents 0-3 at PV extent 6, 4-5 at PV extent 0).
fn folder(dir: &Path, conf_lvs: &str, pvs: &str, logv: &str) -> ClonezillaImage {
    let w = |n: &str, t: &str| std::fs::write(dir.join(n), t).unwrap();
    w("disk", "sda\n");
    w("parts", "sda1\n");
    w("sda-mbr", "");
    w(
        "sda-pt.sf",
        "label: dos\ndevice: /dev/sda\nunit: sectors\n\n/dev/sda1 : start=2048, size=204800, type=8e\n",
    );
    w("lvm_vg_dev.list", "vg0 /dev/sda1 PVUUID\n");
    w("lvm_logv.list", logv);
    w("vg0-root.ext4-ptcl-img.zst", "");
    w(
        "lvm_vg0.conf",
        &format!(
            "vg0 {{\nid = \"VGID\"\nseqno = 3\nextent_size = 8192\nphysical_volumes {{\n{pvs}}}\nlogical_volumes {{\n{conf_lvs}}}\n}}\n"
        ),
    );
    ClonezillaImage::open(dir).unwrap()
}

const PV0: &str = "pv0 {\nid = \"PVUUID\"\npe_start = 2048\npe_count = 12\n}\n";

fn root(seg1_type: &str) -> String {
    format!(
        "root {{\nid = \"LVID\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nsegment_count = 2\n\
         segment1 {{\nstart_extent = 0\nextent_count = 4\ntype = \"{seg1_type}\"\nstripe_count = 1\nstripes = [\"pv0\", 6]\n}}\n\
         segment2 {{\nstart_extent = 4\nextent_count = 2\ntype = \"striped\"\nstripe_count = 1\nstripes = [\"pv0\", 0]\n}}\n}}\n"
    )
}

const LOGV: &str = "/dev/vg0/root Linux rev 1.0 ext4 filesystem data\n";

fn place_err(img: &ClonezillaImage) -> String {
    check(img).unwrap_err().to_string()
}

#[test]
fn places_each_segment_at_its_extents() {
    let d = tempfile::tempdir().unwrap();
    let img = folder(d.path(), &root("striped"), PV0, LOGV);
    check(&img).unwrap();
    let layout = &img.layouts[0];
    let size = layout.disk_bytes().unwrap();
    let pvs = place(&img, layout, size).unwrap();
    let [pv] = pvs.as_slice() else {
        panic!("{pvs:?}")
    };
    assert_eq!(
        (pv.offset, pv.len, pv.uuid.as_str()),
        (MIB, 100 * MIB, "PVUUID")
    );
    // partition 1 MiB + pe_start 1 MiB + PV extent x 4 MiB
    let got: Vec<_> = pv
        .pieces
        .iter()
        .map(|p| (p.offset, p.len, p.base, p.lv_len))
        .collect();
    assert_eq!(
        got,
        [
            (2 * MIB, 8 * MIB, 16 * MIB, 24 * MIB),
            (26 * MIB, 16 * MIB, 0, 24 * MIB)
        ]
    );
}

#[test]
fn refuses_what_it_cannot_place() {
    let d = tempfile::tempdir().unwrap();
    let e = place_err(&folder(d.path(), &root("thin"), PV0, LOGV));
    assert!(e.contains("LV root") && e.contains("a thin segment"), "{e}");
    let d = tempfile::tempdir().unwrap();
    let pv1 = PV0.replace("pv0", "pv1").replace("PVUUID", "OTHER");
    let e = place_err(&folder(
        d.path(),
        &root("striped"),
        &format!("{PV0}{pv1}"),
        LOGV,
    ));
    assert!(
        e.contains("VG vg0 on sda1") && e.contains("its PV pv1 (OTHER) is not in lvm_vg_dev.list"),
        "{e}"
    );
    let d = tempfile::tempdir().unwrap();
    let e = place_err(&folder(d.path(), &root("striped"), PV0, ""));
    assert!(e.contains("LV root: not in lvm_logv.list"), "{e}");
    let d = tempfile::tempdir().unwrap();
    let e = place_err(&folder(
        d.path(),
        &root("striped"),
        &PV0.replace("12", "30"),
        LOGV,
    ));
    assert!(
        e.contains("do not fit in the 104857600-byte partition"),
        "{e}"
    );
    let d = tempfile::tempdir().unwrap();
    let lvs = root("striped").replace("[\"pv0\", 0]", "[\"pv0\", 7]");
    let e = place_err(&folder(d.path(), &lvs, PV0, LOGV));
    assert!(e.contains("share extents"), "{e}");
}

/// `folder` without its disk: a saveparts image of the PV sda1.
fn saveparts(dir: &Path, pvs: &str) -> ClonezillaImage {
    folder(dir, &root("striped"), pvs, LOGV);
    for f in ["disk", "sda-mbr", "sda-pt.sf"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    ClonezillaImage::open(dir).unwrap()
}

#[test]
fn places_a_saveparts_pv_on_its_own() {
    let d = tempfile::tempdir().unwrap();
    let img = saveparts(
        d.path(),
        &PV0.replace("pe_count", "dev_size = 204800\npe_count"),
    );
    assert!(img.is_saveparts());
    check(&img).unwrap();
    let pv = place_bare(&img, "sda1").unwrap();
    // dev_size 204800 sectors; pe_start 1 MiB + PV extent x 4 MiB from byte 0
    assert_eq!((pv.offset, pv.len), (0, 100 * MIB));
    let got: Vec<_> = pv.pieces.iter().map(|p| (p.offset, p.len)).collect();
    assert_eq!(got, [(MIB, 8 * MIB), (25 * MIB, 16 * MIB)]);
    // without dev_size: up to the end of the last extent
    let d = tempfile::tempdir().unwrap();
    let pv = place_bare(&saveparts(d.path(), PV0), "sda1").unwrap();
    assert_eq!(pv.len, 49 * MIB);
    let e = place_bare(&saveparts(d.path(), PV0), "sda9").unwrap_err();
    assert!(
        e.to_string().contains("sda9 is not a physical volume"),
        "{e}"
    );
    // a VG on two PVs is not restored from one partition alone
    let d = tempfile::tempdir().unwrap();
    let pv1 = PV0.replace("pv0", "pv1").replace("PVUUID", "OTHER");
    saveparts(d.path(), &format!("{PV0}{pv1}"));
    std::fs::write(
        d.path().join("lvm_vg_dev.list"),
        "vg0 /dev/sda1 PVUUID\nvg0 /dev/sda2 OTHER\n",
    )
    .unwrap();
    let e = check(&ClonezillaImage::open(d.path()).unwrap()).unwrap_err();
    assert!(
        e.to_string()
            .contains("the VG also lies on sda2 (pv1): a VG on several PVs is restored"),
        "{e}"
    );
}

/// `folder` with a second PV, sda2 (102 MiB on, 100 MiB), holding root's second
/// segment at its PV extent 2, saved as partition `dev2`; `table2` is its line in the
/// saved table.
fn two_pvs(dir: &Path, dev2: &str, table2: &str) -> ClonezillaImage {
    let lvs = root("striped").replace("[\"pv0\", 0]", "[\"pv1\", 2]");
    let pv1 = PV0.replace("pv0", "pv1").replace("PVUUID", "OTHER");
    folder(dir, &lvs, &format!("{PV0}{pv1}"), LOGV);
    let w = |n: &str, t: &str| std::fs::write(dir.join(n), t).unwrap();
    w("parts", &format!("sda1 {dev2}\n"));
    w(
        "lvm_vg_dev.list",
        &format!("vg0 /dev/sda1 PVUUID\nvg0 /dev/{dev2} OTHER\n"),
    );
    w(
        "sda-pt.sf",
        &format!(
            "label: dos\ndevice: /dev/sda\nunit: sectors\n\n\
             /dev/sda1 : start=2048, size=204800, type=8e\n{table2}"
        ),
    );
    ClonezillaImage::open(dir).unwrap()
}

#[test]
fn places_a_vg_on_two_pvs_of_the_disk_each_segment_on_its_own_pv() {
    let d = tempfile::tempdir().unwrap();
    let img = two_pvs(
        d.path(),
        "sda2",
        "/dev/sda2 : start=208896, size=204800, type=8e\n",
    );
    check(&img).unwrap();
    let layout = &img.layouts[0];
    let pvs = place(&img, layout, layout.disk_bytes().unwrap()).unwrap();
    let got: Vec<_> = pvs
        .iter()
        .map(|p| {
            let pieces: Vec<_> = p.pieces.iter().map(|x| (x.offset, x.len, x.base)).collect();
            (p.part.as_str(), p.uuid.as_str(), p.offset, pieces)
        })
        .collect();
    // sda1: LV extents 0-3 at its PV extent 6; sda2 (102 MiB on): LV extents 4-5 at
    // its PV extent 2, after its own 1 MiB pe_start
    assert_eq!(
        got,
        [
            ("sda1", "PVUUID", MIB, vec![(26 * MIB, 16 * MIB, 0)]),
            (
                "sda2",
                "OTHER",
                102 * MIB,
                vec![(102 * MIB + MIB + 8 * MIB, 8 * MIB, 16 * MIB)]
            ),
        ]
    );
}

#[test]
fn refuses_a_vg_whose_other_pv_is_on_no_saved_table() {
    let d = tempfile::tempdir().unwrap();
    // in lvm_vg_dev.list, but the saved table has no sda2 (another disk's partition)
    let img = two_pvs(d.path(), "sdb1", "");
    let e = check(&img).unwrap_err().to_string();
    assert!(
        e.contains("its PV sdb1 (pv1) is in no saved disk's table"),
        "{e}"
    );
}

#[test]
fn places_this_disks_pv_of_a_vg_that_also_lies_on_another_disk_of_the_image() {
    let d = tempfile::tempdir().unwrap();
    // the one-disk view of sda, sdb1 on the image's other disk (`for_disk`)
    let mut img = two_pvs(d.path(), "sdb1", "");
    img.parts.retain(|p| p != "sdb1");
    img.elsewhere = vec!["sdb1".into()];
    check(&img).unwrap();
    let layout = &img.layouts[0];
    let pvs = place(&img, layout, layout.disk_bytes().unwrap()).unwrap();
    let got: Vec<_> = pvs
        .iter()
        .map(|p| (p.part.as_str(), p.pieces.len()))
        .collect();
    // root's first segment is sda1's; its second is written with sdb's disk
    assert_eq!(got, [("sda1", 1)]);
    let notes = elsewhere_notes(&img);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].starts_with("VG vg0 also lies on sdb1 of another disk"));
    // a one-disk image says nothing
    let d = tempfile::tempdir().unwrap();
    let one = folder(d.path(), &root("striped"), PV0, LOGV);
    assert!(elsewhere_notes(&one).is_empty());
}

//! The "encrypted laptop" as Clonezilla 3.x saves it: an LVM PV inside an opened LUKS2
//! volume (tests/czlvm_fixture's VG, its PV moved into a LUKS2 partition sda2 of 400 MiB:
//! `luks-dev.list`, `sda2-luksHeader.bin`, `/dev/mapper/ocs_luks_Lv1` as the PV in
//! `lvm_vg_dev.list` and in `lvm_<vg>.conf`). `images` lists it; `import` stores the
//! header area and the plaintext area holding the PV, which lvm2 reads back with the
//! saved VG and PV ids and whose LVs pass e2fsck -fn / xfs_repair -n with every file;
//! `verify` passes. A restore with the key needs device-mapper (not on the host).
//!
//! Needs root (loop devices, lvm2 on them).

mod clonezilla_fixture;
mod czlvm_fixture;
mod fsfixture;
mod lvm_fixture;
mod xfs_fixture;

use czlvm_fixture::s;
use fsfixture::run;
use lvm_fixture::MIB;
use std::fs;
use std::path::Path;

const MAPPER: &str = "ocs_luks_Lv1";
const PASS: &str = "correct horse battery staple";
/// The disk: sda1 16 MiB from 1 MiB, sda2 400 MiB (16 MiB LUKS2 header + the 384 MiB PV).
const DISK: u64 = 424 * MIB;

/// Moves the fixture's PV into a LUKS2 partition as Clonezilla saves an opened one.
fn into_luks(d: &Path, image: &Path, vg: &str) -> String {
    let disk = d.join("luks-table.img");
    fs::File::create(&disk).unwrap().set_len(DISK).unwrap();
    let (s2, n2) = (17 * MIB / 512, 400 * MIB / 512);
    run(
        "sgdisk",
        &[
            "-Z",
            "-n",
            &format!("1:2048:{}", 2048 + 16 * MIB / 512 - 1),
            "-t",
            "1:8300",
            "-n",
            &format!("2:{s2}:{}", s2 + n2 - 1),
            "-t",
            "2:8309",
            s(&disk),
        ],
    );
    clonezilla_fixture::save_gpt_disk(&disk, image, "sda");
    fs::write(image.join("disk"), "sda\n").unwrap();
    fs::write(image.join("parts"), "sda1 sda2\n").unwrap();
    let uuid =
        clonezilla_fixture::luks_header(d, 400 * MIB, PASS, &image.join("sda2-luksHeader.bin"));
    fs::write(
        image.join("luks-dev.list"),
        format!("# <Block device> <UUID> <Device mapped name>\n/dev/sda2 {uuid} {MAPPER}\n"),
    )
    .unwrap();
    let list = image.join("lvm_vg_dev.list");
    let t = fs::read_to_string(&list).unwrap();
    fs::write(
        &list,
        t.replace("/dev/sda2", &format!("/dev/mapper/{MAPPER}")),
    )
    .unwrap();
    let conf = image.join(format!("lvm_{vg}.conf"));
    let t = fs::read_to_string(&conf).unwrap();
    fs::write(
        &conf,
        t.replace("\"/dev/sda2\"", &format!("\"/dev/mapper/{MAPPER}\"")),
    )
    .unwrap();
    uuid
}

#[test]
#[ignore = "needs root"]
fn lvm_inside_luks_lists_and_imports_with_its_pv_intact() {
    let vg = "czlkvg";
    let cz = czlvm_fixture::build(vg);
    let d = cz.pv.dir.path();
    let uuid = into_luks(d, &cz.image, vg);
    let scratch = d.join("scratch");

    let o = run(env!("CARGO_BIN_EXE_ironclone"), &["images", s(&cz.root)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("clonezilla: sda2 (LUKS2, LVM PV of {vg} inside)")),
        "{text}"
    );

    let repo = d.join("repo");
    let (ok, out) = clonezilla_fixture::run_with_scratch(
        &["import", s(&cz.root), "img", s(&repo), "--name", "laptop"],
        &scratch,
    );
    assert!(ok, "{out}");
    assert!(out.contains("PLAINTEXT"), "{out}");
    let o = run(
        env!("CARGO_BIN_EXE_ironclone"),
        &["verify", s(&repo), "laptop"],
    );
    assert!(o.status.success());

    // the plaintext area is the PV lvm2 and the filesystems judge; the header area is
    // the header file
    use ironclone::device::BlockDevice;
    let r = ironclone::repo::Repository::open(&repo).unwrap();
    let head = ironclone::repo::ImageDevice::open(&r, "laptop", "p2").unwrap();
    let saved = fs::read(cz.image.join("sda2-luksHeader.bin")).unwrap();
    assert!(head.read_vec(0, saved.len()).unwrap() == saved);
    let plain = ironclone::repo::ImageDevice::open(&r, "laptop", "p2-plaintext").unwrap();
    assert_eq!(plain.size(), 384 * MIB);
    let pv = d.join("plain-pv.img");
    {
        let f = fs::File::create(&pv).unwrap();
        f.set_len(plain.size()).unwrap();
        let mut buf = vec![0u8; 4 << 20];
        let mut at = 0;
        while at < plain.size() {
            plain.read_at(at, &mut buf).unwrap();
            std::os::unix::fs::FileExt::write_all_at(&f, &buf, at).unwrap();
            at += buf.len() as u64;
        }
    }
    cz.check_pv(&pv, false, "imported LUKS PV");
    eprintln!("LUKS {uuid}: header and PV checked");
}

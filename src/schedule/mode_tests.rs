//! Unit tests of `mode` on a fake /sys/block.

use super::*;

/// A fake /sys/block: `dev` files, partitions, holders and dm/{uuid,name}.
struct FakeSys(tempfile::TempDir);

impl FakeSys {
    fn new() -> FakeSys {
        FakeSys(tempfile::tempdir().unwrap())
    }
    fn block(&self) -> PathBuf {
        self.0.path().join("block")
    }
    fn dev(&self, path: &str, majmin: &str) -> PathBuf {
        let d = self.block().join(path);
        std::fs::create_dir_all(d.join("holders")).unwrap();
        std::fs::write(d.join("dev"), format!("{majmin}\n")).unwrap();
        d
    }
    fn part(&self, disk: &str, part: &str, majmin: &str) -> PathBuf {
        let d = self.dev(&format!("{disk}/{part}"), majmin);
        std::fs::write(d.join("partition"), "1\n").unwrap();
        d
    }
    fn dm(&self, name: &str, majmin: &str, uuid: &str, dm_name: &str, on: &Path) -> PathBuf {
        let d = self.dev(name, majmin);
        std::fs::create_dir_all(d.join("dm")).unwrap();
        std::fs::write(d.join("dm/uuid"), format!("{uuid}\n")).unwrap();
        std::fs::write(d.join("dm/name"), format!("{dm_name}\n")).unwrap();
        std::fs::write(on.join("holders").join(name), "").unwrap();
        d
    }
}

fn rw(pairs: &[((u32, u32), &str)]) -> HashMap<(u32, u32), PathBuf> {
    pairs.iter().map(|(d, p)| (*d, PathBuf::from(p))).collect()
}

fn why(r: Result<(), Busy>) -> (&'static str, String) {
    match r {
        Ok(()) => ("direct", String::new()),
        Err(Busy::NeedsRescue(w)) => ("rescue", w),
        Err(Busy::Refused(w)) => ("refused", w),
    }
}

/// The Debian/Ubuntu "encrypted LVM" install: sda1 the ESP, sda2 /boot, sda3
/// LUKS → PV → vg0-root at /. Before the holders were followed past the first
/// level, the disk counted as unmounted once /boot and the ESP were not mounted.
#[test]
fn an_lv_on_luks_is_found_two_levels_up() {
    let s = FakeSys::new();
    let disk = s.dev("sda", "8:0");
    s.part("sda", "sda1", "8:1");
    s.part("sda", "sda2", "8:2");
    let p3 = s.part("sda", "sda3", "8:3");
    let crypt = s.dm("dm-0", "254:0", "CRYPT-LUKS2-abcd-luks", "luks-abcd", &p3);
    s.dm("dm-1", "254:1", "LVM-xyz", "vg0-root", &crypt);
    s.dm("dm-2", "254:2", "LVM-xyw", "vg0-swap_1", &crypt);
    // Nothing mounted: imaged directly.
    assert_eq!(
        why(check_mounted_in(&s.block(), &disk, "sda", &rw(&[]))).0,
        "direct"
    );
    // The root LV mounted: refused, naming the LV, the LUKS volume and what to list.
    let (k, w) = why(check_mounted_in(
        &s.block(),
        &disk,
        "sda",
        &rw(&[((254, 1), "/")]),
    ));
    assert_eq!(k, "refused", "{w}");
    assert!(
        w.contains("vg0-root on the LUKS volume luks-abcd mounted read-write at /"),
        "{w}"
    );
    assert!(
        w.contains("/dev/<vg>/<lv>") && w.contains("decrypted"),
        "{w}"
    );
    // Read-only mounts do not count (rw() holds only read-write ones).
    // A plain partition mounted read-write is found first: the rescue entry.
    let (k, w) = why(check_mounted_in(
        &s.block(),
        &disk,
        "sda",
        &rw(&[((8, 2), "/boot"), ((254, 1), "/")]),
    ));
    assert_eq!(k, "rescue", "{w}");
    assert!(w.contains("sda2 is mounted read-write at /boot"), "{w}");
}

#[test]
fn a_plain_luks_volume_needs_the_rescue_entry_and_says_what_it_costs() {
    let s = FakeSys::new();
    let disk = s.dev("sdb", "8:16");
    let p1 = s.part("sdb", "sdb1", "8:17");
    s.dm("dm-3", "254:3", "CRYPT-LUKS2-ef01-home", "home_crypt", &p1);
    let (k, w) = why(check_mounted_in(
        &s.block(),
        &disk,
        "sdb",
        &rw(&[((254, 3), "/home")]),
    ));
    assert_eq!(k, "rescue", "{w}");
    assert!(
        w.contains("LUKS volume home_crypt mounted read-write at /home"),
        "{w}"
    );
    assert!(w.contains("encrypted and whole"), "{w}");
    // An LV straight on a partition (a PV without LUKS): refused, no word of decryption.
    let s = FakeSys::new();
    let disk = s.dev("sdc", "8:32");
    let p1 = s.part("sdc", "sdc1", "8:33");
    s.dm("dm-4", "254:4", "LVM-abc", "vg1-data", &p1);
    let (k, w) = why(check_mounted_in(
        &s.block(),
        &disk,
        "sdc",
        &rw(&[((254, 4), "/srv")]),
    ));
    assert_eq!(k, "refused", "{w}");
    assert!(
        w.contains("LVM volume vg1-data mounted") && !w.contains("decrypted"),
        "{w}"
    );
}

#[test]
fn the_luks_volume_below_an_lv_is_found_down_its_slaves() {
    let s = FakeSys::new();
    let p = s.part("sda", "sda3", "8:3");
    let c = s.dm("dm-0", "254:0", "CRYPT-LUKS2-abcd-luks", "luks-abcd", &p);
    let lv = s.dm("dm-1", "254:1", "LVM-xyz", "vg0-root", &c);
    std::fs::create_dir_all(lv.join("slaves")).unwrap();
    std::fs::write(lv.join("slaves/dm-0"), "").unwrap();
    std::fs::create_dir_all(c.join("slaves")).unwrap();
    std::fs::write(c.join("slaves/sda3"), "").unwrap();
    assert_eq!(
        crypt_below_in(&s.block(), &lv, 0).as_deref(),
        Some("luks-abcd")
    );
    // An LV straight on a partition: nothing encrypted below.
    let lv2 = s.dm("dm-2", "254:2", "LVM-abc", "vg1-data", &p);
    std::fs::create_dir_all(lv2.join("slaves")).unwrap();
    std::fs::write(lv2.join("slaves/sda3"), "").unwrap();
    assert_eq!(crypt_below_in(&s.block(), &lv2, 0), None);
    assert_eq!(crypt_below_in(&s.block(), &p, 0), None);
}

#[test]
fn a_root_on_device_mapper_is_named() {
    let s = FakeSys::new();
    let plain = s.dev("sda", "8:0");
    assert_eq!(root_dm_in(&plain), None);
    let p = s.part("sda", "sda3", "8:3");
    let c = s.dm("dm-0", "254:0", "CRYPT-LUKS2-abcd-luks", "luks-abcd", &p);
    let lv = s.dm("dm-1", "254:1", "LVM-xyz", "vg0-root", &c);
    assert_eq!(root_dm_in(&c).as_deref(), Some("the LUKS volume luks-abcd"));
    assert_eq!(root_dm_in(&lv).as_deref(), Some("the LVM volume vg0-root"));
}

/// The whole disk of the encrypted-LVM install with its root LV, /boot and the ESP
/// mounted read-write: one image online, each LV found with its LUKS partition.
#[test]
fn the_encrypted_lvm_disk_is_imaged_online() {
    let s = FakeSys::new();
    let disk = s.dev("sda", "8:0");
    s.part("sda", "sda1", "8:1");
    s.part("sda", "sda2", "8:2");
    let p3 = s.part("sda", "sda3", "8:3");
    std::fs::write(p3.join("start"), "1050624\n").unwrap();
    let crypt = s.dm("dm-0", "254:0", "CRYPT-LUKS2-abcd-luks", "luks-abcd", &p3);
    s.dm("dm-1", "254:1", "LVM-xyz", "vg0-root", &crypt);
    s.dm("dm-2", "254:2", "LVM-xyw", "vg0-home", &crypt);
    s.dm("dm-3", "254:3", "LVM-xyv", "vg0-swap_1", &crypt);
    // Nothing on an LV mounted: not this mode (the others decide).
    assert!(enc_in(&s.block(), &disk, "sda", &rw(&[((8, 2), "/boot")])).is_none());
    let m = rw(&[
        ((8, 1), "/boot/efi"),
        ((8, 2), "/boot"),
        ((254, 1), "/"),
        ((254, 2), "/home"),
    ]);
    let f = enc_in(&s.block(), &disk, "sda", &m).unwrap().unwrap();
    let plain: Vec<String> = f
        .plain
        .iter()
        .map(|p| format!("{} {}", p.0, p.1.display()))
        .collect();
    assert_eq!(plain, ["sda1 /boot/efi", "sda2 /boot"]);
    assert_eq!(f.volumes.len(), 1);
    let v = &f.volumes[0];
    assert_eq!(
        (v.part.as_str(), v.offset, v.crypt.as_str()),
        ("sda3", 1050624 * 512, "luks-abcd")
    );
    assert_eq!(v.lvs, ["vg0-root", "vg0-home"]);
    // Without its start in sysfs the partition cannot be matched: an error, not a guess.
    std::fs::remove_file(p3.join("start")).unwrap();
    let e = enc_in(&s.block(), &disk, "sda", &m).unwrap().err().unwrap();
    assert!(e.contains("sda3: its start"), "{e}");
}

/// Next to an LV on LUKS, a mounted plain LUKS volume or an LV on a plain PV cannot be
/// made consistent: refused, naming it.
#[test]
fn a_mounted_mapping_that_is_not_an_lv_on_luks_is_refused() {
    let s = FakeSys::new();
    let disk = s.dev("sda", "8:0");
    let p2 = s.part("sda", "sda2", "8:2");
    let p3 = s.part("sda", "sda3", "8:3");
    std::fs::write(p3.join("start"), "2048\n").unwrap();
    let crypt = s.dm("dm-0", "254:0", "CRYPT-LUKS2-abcd-luks", "luks-abcd", &p3);
    s.dm("dm-1", "254:1", "LVM-xyz", "vg0-root", &crypt);
    s.dm("dm-5", "254:5", "CRYPT-LUKS2-ef01-home", "home_crypt", &p2);
    let m = rw(&[((254, 1), "/"), ((254, 5), "/home")]);
    let e = enc_in(&s.block(), &disk, "sda", &m).unwrap().err().unwrap();
    assert!(
        e.contains("sda2 holds home_crypt mounted read-write at /home"),
        "{e}"
    );
}

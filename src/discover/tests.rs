//! Discovery on a fake sysfs/udev/mountinfo tree shaped like real machines
//! (NVMe, SATA, USB, virtio, loop), so every transport and fallback is covered
//! without the hardware.

use super::*;
use std::fs;

struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        let t = Tree {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["sys/class/block", "udev", "dev", "run"] {
            fs::create_dir_all(t.root().join(d)).unwrap();
        }
        fs::write(t.root().join("mountinfo"), "").unwrap();
        t
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn paths(&self) -> SysPaths {
        SysPaths {
            sys_block: self.root().join("sys/class/block"),
            udev_data: self.root().join("udev"),
            mountinfo: self.root().join("mountinfo"),
            boot_device: self.root().join("run/boot-device"),
            dev: self.root().join("dev"),
        }
    }
    fn write(&self, rel: &str, content: &str) {
        let p = self.root().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    /// A disk at `devpath` (under sys/devices) linked from sys/class/block.
    fn disk(
        &self,
        name: &str,
        devpath: &str,
        dev: &str,
        sectors: u64,
        attrs: &[(&str, &str)],
    ) -> String {
        let base = format!("sys/devices/{devpath}/{name}");
        self.write(&format!("{base}/dev"), dev);
        self.write(&format!("{base}/size"), &format!("{sectors}\n"));
        self.write(&format!("{base}/queue/logical_block_size"), "512\n");
        self.write(&format!("{base}/queue/physical_block_size"), "4096\n");
        self.write(&format!("{base}/queue/rotational"), "0\n");
        self.write(&format!("{base}/removable"), "0\n");
        self.write(&format!("{base}/ro"), "0\n");
        fs::create_dir_all(self.root().join(&base).join("holders")).unwrap();
        for (k, v) in attrs {
            self.write(&format!("{base}/{k}"), v);
        }
        std::os::unix::fs::symlink(
            self.root().join(&base),
            self.root().join("sys/class/block").join(name),
        )
        .unwrap();
        base
    }
    fn part(&self, disk_base: &str, name: &str, number: u32, dev: &str, start: u64, size: u64) {
        let base = format!("{disk_base}/{name}");
        self.write(&format!("{base}/partition"), &format!("{number}\n"));
        self.write(&format!("{base}/dev"), dev);
        self.write(&format!("{base}/start"), &format!("{start}\n"));
        self.write(&format!("{base}/size"), &format!("{size}\n"));
        self.write(&format!("{base}/ro"), "0\n");
        std::os::unix::fs::symlink(
            self.root().join(&base),
            self.root().join("sys/class/block").join(name),
        )
        .unwrap();
    }
}

fn machine() -> Tree {
    let t = Tree::new();
    let nvme = t.disk(
        "nvme0n1",
        "pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0",
        "259:0",
        2_000_409_264,
        &[
            ("device/model", "Samsung SSD 980 PRO 1TB  \n"),
            ("device/serial", " S5GXNF0R123456  \n"),
            ("wwid", "eui.002538b111b22c33\n"),
        ],
    );
    t.part(&nvme, "nvme0n1p1", 1, "259:1", 2048, 1_048_576);
    t.part(&nvme, "nvme0n1p2", 2, "259:2", 1_050_624, 1_999_358_607);
    let sda = t.disk(
        "sda",
        "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block",
        "8:0",
        976_773_168,
        &[
            ("queue/rotational", "1\n"),
            ("device/model", "WDC WD5000AAKX\n"),
        ],
    );
    t.part(&sda, "sda1", 1, "8:1", 2048, 976_771_072);
    t.write(
        "udev/b8:0",
        "S:disk/by-id/ata-WDC_WD5000AAKX-001CA0_WD-WCAYUFF12345\nE:ID_BUS=ata\nE:ID_MODEL=WDC_WD5000AAKX-001CA0\nE:ID_MODEL_ENC=WDC\\x20WD5000AAKX-001CA0\\x20\\x20\nE:ID_SERIAL_SHORT=WD-WCAYUFF12345\nE:ID_WWN=0x50014ee2b1234567\n",
    );
    t.write(
        "udev/b8:1",
        "E:ID_FS_TYPE=ntfs\nE:ID_FS_LABEL=Data_Disk\nE:ID_FS_LABEL_ENC=Data\\x20Disk\nE:ID_FS_UUID=01D2A3B4C5D6E7F8\n",
    );
    let sdb = t.disk(
        "sdb",
        "pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block",
        "8:16",
        60_063_744,
        &[("removable", "1\n"), ("device/model", "Ultra Fit       \n")],
    );
    t.part(&sdb, "sdb1", 1, "8:17", 2048, 60_061_696);
    t.write(
        "udev/b8:16",
        "E:ID_BUS=usb\nE:ID_SERIAL_SHORT=4C530001230512345678\n",
    );
    t.write(
        "udev/b8:17",
        "E:ID_FS_TYPE=vfat\nE:ID_FS_VERSION=FAT32\nE:ID_FS_LABEL=LIVE\nE:ID_FS_UUID=1A2B-3C4D\n",
    );
    t.disk(
        "vda",
        "pci0000:00/0000:00:02.0/virtio1/block",
        "254:0",
        41_943_040,
        &[("serial", "qemu-disk-1\n")],
    );
    t.disk(
        "loop0",
        "virtual/block",
        "7:0",
        204_800,
        &[
            ("loop/backing_file", "/tmp/disk image.img\n"),
            ("ro", "1\n"),
            ("queue/logical_block_size", "4096\n"),
        ],
    );
    t.disk("loop1", "virtual/block", "7:1", 0, &[]);
    t.disk("zram0", "virtual/block", "251:0", 8_388_608, &[]);
    t.disk("dm-0", "virtual/block", "253:0", 8_388_608, &[]);
    t.write(
        "mountinfo",
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
         27 1 259:2 / / rw,relatime - ext4 /dev/nvme0n1p2 rw\n\
         28 27 259:1 / /boot/efi rw - vfat /dev/nvme0n1p1 rw\n\
         40 27 8:1 / /mnt/my\\040data rw - ntfs3 /dev/sda1 rw\n",
    );
    t
}

fn by_name<'a>(disks: &'a [Disk], name: &str) -> &'a Disk {
    disks
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("{name} not listed"))
}

#[test]
fn lists_whole_disks_with_sysfs_and_udev_facts() {
    let t = machine();
    let disks = list_disks(&t.paths()).unwrap();
    let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["loop0", "nvme0n1", "sda", "sdb", "vda"]);

    let nvme = by_name(&disks, "nvme0n1");
    assert_eq!(nvme.transport, Transport::Nvme);
    assert_eq!(nvme.model.as_deref(), Some("Samsung SSD 980 PRO 1TB"));
    assert_eq!(nvme.serial.as_deref(), Some("S5GXNF0R123456"));
    assert_eq!(nvme.wwn.as_deref(), Some("eui.002538b111b22c33"));
    assert_eq!(nvme.size_bytes, 2_000_409_264 * 512);
    assert_eq!(
        (nvme.logical_sector_size, nvme.physical_sector_size),
        (512, 4096)
    );
    assert_eq!(nvme.partitions.len(), 2);
    assert_eq!(nvme.partitions[1].number, 2);
    assert_eq!(nvme.partitions[1].start_bytes, 1_050_624 * 512);
    assert_eq!(nvme.partitions[0].mountpoints, [PathBuf::from("/boot/efi")]);
    assert!(nvme.is_boot && nvme.has_mounted);

    let sda = by_name(&disks, "sda");
    assert_eq!(sda.transport, Transport::Sata);
    assert_eq!(
        sda.model.as_deref(),
        Some("WDC WD5000AAKX-001CA0"),
        "udev wins over sysfs"
    );
    assert_eq!(sda.serial.as_deref(), Some("WD-WCAYUFF12345"));
    assert_eq!(sda.wwn.as_deref(), Some("0x50014ee2b1234567"));
    assert!(sda.rotational && !sda.is_boot && sda.has_mounted);
    let fs = sda.partitions[0].filesystem.as_ref().unwrap();
    assert_eq!(
        (fs.kind, fs.label.as_deref()),
        (FsKind::Ntfs, Some("Data Disk"))
    );
    assert_eq!(sda.partitions[0].filesystem_source, Some(FsSource::Udev));
    assert!(
        sda.probe_error
            .as_deref()
            .is_some_and(|e| e.contains("cannot open")),
        "{:?}",
        sda.probe_error
    );
    assert_eq!(
        sda.partitions[0].mountpoints,
        [PathBuf::from("/mnt/my data")]
    );

    let sdb = by_name(&disks, "sdb");
    assert_eq!(sdb.transport, Transport::Usb);
    assert!(sdb.removable && !sdb.has_mounted);
    assert_eq!(sdb.model.as_deref(), Some("Ultra Fit"));
    assert_eq!(
        sdb.partitions[0].filesystem.as_ref().unwrap().kind,
        FsKind::Fat32
    );

    let vda = by_name(&disks, "vda");
    assert_eq!(vda.transport, Transport::Virtio);
    assert_eq!(vda.serial.as_deref(), Some("qemu-disk-1"));

    let lp = by_name(&disks, "loop0");
    assert_eq!(lp.transport, Transport::Loop);
    assert_eq!(lp.backing_file, Some(PathBuf::from("/tmp/disk image.img")));
    assert_eq!(lp.logical_sector_size, 4096);
    assert!(lp.read_only);
}

#[test]
fn boot_device_file_overrides_root_disk() {
    let t = machine();
    t.write("run/boot-device", "/dev/sdb1\n");
    let disks = list_disks(&t.paths()).unwrap();
    let boot: Vec<&str> = disks
        .iter()
        .filter(|d| d.is_boot)
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(boot, ["sdb"]);
}

#[test]
fn refuses_boot_mounted_in_use_and_read_only_targets() {
    let t = machine();
    let base = "sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda";
    let disks = list_disks(&t.paths()).unwrap();
    let err = check_target_allowed(by_name(&disks, "nvme0n1")).unwrap_err();
    assert!(matches!(err, Refusal::BootDisk { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("Samsung SSD 980 PRO 1TB")
            && msg.contains("S5GXNF0R123456")
            && msg.contains("GiB"),
        "{msg}"
    );
    let err = check_target_allowed(by_name(&disks, "sda")).unwrap_err();
    assert!(
        err.to_string().contains("/dev/sda1 on /mnt/my data"),
        "{err}"
    );
    assert!(matches!(
        check_target_allowed(by_name(&disks, "loop0")),
        Err(Refusal::ReadOnly { .. })
    ));
    assert_eq!(check_target_allowed(by_name(&disks, "sdb")), Ok(()));
    assert_eq!(check_target_allowed(by_name(&disks, "vda")), Ok(()));
    fs::write(t.root().join(base).join("holders/dm-0"), "").unwrap();
    let disks = list_disks(&t.paths()).unwrap();
    assert!(matches!(
        check_target_allowed(by_name(&disks, "vda")),
        Err(Refusal::InUse { .. })
    ));
}

#[test]
fn identity_matches_by_serial_wwn_model_and_size() {
    let t = machine();
    let disks = list_disks(&t.paths()).unwrap();
    let sda = by_name(&disks, "sda").identity();
    assert!(sda.is_strong());
    assert!(sda.matches(&sda.clone()));
    let mut other = sda.clone();
    other.serial = Some("WD-OTHER".into());
    assert!(!sda.matches(&other), "serial changed");
    let mut bigger = sda.clone();
    bigger.size += 512;
    assert!(!sda.matches(&bigger), "size changed");
    assert!(!sda.matches(&by_name(&disks, "nvme0n1").identity()));
    assert!(!by_name(&disks, "loop0").identity().is_strong());
    let hits = find_by_identity(&disks, &sda);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].name, "sda");
    assert!(find_by_identity(&disks, &other).is_empty());
    // A model agrees when one is the start of the other (sysfs keeps 16 characters),
    // never when they differ.
    let mut cut = sda.clone();
    cut.model = Some("WDC WD5000".into());
    assert!(sda.matches(&cut));
    cut.model = Some("WDC WD1000AAKX".into());
    assert!(!sda.matches(&cut), "model changed");
}

#[test]
fn skips_ram_dm_and_emmc_hardware_areas() {
    for n in [
        "ram0",
        "zram0",
        "dm-3",
        "mmcblk0boot0",
        "mmcblk0boot1",
        "mmcblk0rpmb",
        "nbd0",
        "fd0",
    ] {
        assert!(skipped(n), "{n}");
    }
    for n in ["mmcblk0", "sda", "nvme0n1", "loop7", "vda", "sr0"] {
        assert!(!skipped(n), "{n}");
    }
}

#[test]
fn missing_sysfs_is_an_error_not_an_empty_list() {
    let t = Tree::new();
    let mut p = t.paths();
    p.sys_block = t.root().join("nope");
    assert!(matches!(
        list_disks(&p),
        Err(DiscoverError::ListBlock { .. })
    ));
}

#[test]
fn finds_the_disk_holding_a_path() {
    let t = machine();
    let p = t.paths();
    let disks = list_disks(&p).unwrap();
    let repo = Path::new("/mnt/my data/ironclone-repo");
    let holder = disk_holding_path(&p, &disks, repo).unwrap();
    assert_eq!(holder.map(|d| d.name.as_str()), Some("sda"));
    let sda = by_name(&disks, "sda");
    let err = check_target_not_holding(sda, holder, "the image repository", repo).unwrap_err();
    assert!(
        err.to_string()
            .contains("the image repository (/mnt/my data/ironclone-repo)"),
        "{err}"
    );
    assert_eq!(
        check_target_not_holding(by_name(&disks, "sdb"), holder, "x", repo),
        Ok(())
    );
    // /boot/efi/x is on the ESP of the NVMe disk (longest mount point wins over /).
    let esp = disk_holding_path(&p, &disks, Path::new("/boot/efi/EFI")).unwrap();
    assert_eq!(esp.map(|d| d.name.as_str()), Some("nvme0n1"));
    assert!(disk_holding_path(&p, &disks, Path::new("/proc/1"))
        .unwrap()
        .is_none());
}

#[test]
fn live_system_names_a_sata_disk_as_udev_does() {
    // The same SATA disk as `machine()`'s sda, seen by a live system without udev:
    // serial from VPD page 0x80, WWN from device/wwid, model cut to 16 characters.
    let t = Tree::new();
    let base = t.disk(
        "sdb",
        "pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0/block",
        "8:16",
        976_773_168,
        &[
            ("device/model", "WDC WD5000AAKX-0\n"),
            ("device/wwid", "naa.50014EE2B1234567\n"),
        ],
    );
    let mut page = vec![0x00, 0x80, 0x00, 20];
    page.extend_from_slice(b"     WD-WCAYUFF12345");
    fs::write(t.root().join(&base).join("device/vpd_pg80"), &page).unwrap();
    let live = list_disks(&t.paths()).unwrap();
    let sdb = by_name(&live, "sdb").identity();
    assert_eq!(sdb.serial.as_deref(), Some("WD-WCAYUFF12345"));
    assert_eq!(sdb.wwn.as_deref(), Some("0x50014ee2b1234567"));
    let installed = machine();
    let disks = list_disks(&installed.paths()).unwrap();
    let sda = by_name(&disks, "sda").identity();
    assert!(sda.matches(&sdb), "udev {sda:?} vs sysfs {sdb:?}");
    assert!(sdb.matches(&sda));

    // A t10 designator is vendor+model+serial, not a WWN; blanks inside a serial are `_`.
    let t = Tree::new();
    let base = t.disk(
        "sda",
        "pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block",
        "8:0",
        997_376,
        &[
            ("device/model", "QEMU HARDDISK\n"),
            (
                "device/wwid",
                "t10.ATA     QEMU HARDDISK                           QM00001\n",
            ),
        ],
    );
    fs::write(
        t.root().join(&base).join("device/vpd_pg80"),
        b"\x00\x80\x00\x0cQM 00001\0\0\0\0",
    )
    .unwrap();
    let disks = list_disks(&t.paths()).unwrap();
    let qemu = by_name(&disks, "sda").identity();
    assert_eq!(qemu.wwn, None);
    assert_eq!(qemu.serial.as_deref(), Some("QM_00001"));
    // A page that is not 0x80 gives no serial.
    fs::write(
        t.root().join(&base).join("device/vpd_pg80"),
        b"\x00\x83\x00\x04abcd",
    )
    .unwrap();
    let disks = list_disks(&t.paths()).unwrap();
    assert_eq!(by_name(&disks, "sda").identity().serial, None);
}

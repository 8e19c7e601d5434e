//! The machine FakeServices shows: its disks (a Windows SSD, a data disk, an empty
//! NVMe, the ironclone stick, a USB backup disk, a virtual disk) and the images its
//! repository holds. Kept apart from the fake services' behaviour (`super`), which
//! only says what each job does.

use super::{GB, GIB, MIB};
use crate::tui::model::*;

pub fn part(number: u32, fs: &str, label: &str, size: u64, used: Option<u64>) -> PartView {
    PartView {
        number,
        fs: fs.into(),
        label: label.into(),
        size,
        used,
        volumes: Vec::new(),
        lock: None,
    }
}

pub(super) fn windows_layout() -> Vec<(u32, &'static str, &'static str, u64, u64)> {
    vec![
        (1, "vfat", "ESP", 512 * MIB, 38 * MIB),
        (2, "msr", "", 16 * MIB, 0),
        (3, "ntfs", "Windows", 465 * GIB, 212 * GIB),
        (4, "ntfs", "Recovery", 750 * MIB, 520 * MIB),
    ]
}

pub fn demo_disks() -> Vec<DiskView> {
    vec![
        DiskView {
            dev: "/dev/sda".into(),
            model: "Samsung SSD 860 EVO 500GB".into(),
            serial: "S3Z9NB0K512345A".into(),
            size: 500_107_862_016,
            transport: "SATA".into(),
            partitions: windows_layout()
                .into_iter()
                .map(|(n, fs, l, s, u)| part(n, fs, l, s, Some(u)))
                .collect(),
            warnings: vec![
                "Windows on partition 3 is hibernated (Fast Startup): the image will be \
                 crash-consistent. Shut Windows down fully with Fast Startup off if you can."
                    .into(),
            ],
            ..Default::default()
        },
        DiskView {
            dev: "/dev/sdb".into(),
            model: "WDC WD10EZEX-08WN4A0".into(),
            serial: "WD-WCC6Y3KF7XZT".into(),
            size: 1_000_204_886_016,
            transport: "SATA".into(),
            partitions: vec![
                part(1, "ext4", "home", 931 * GIB, Some(402 * GIB)),
                part(2, "swap", "", 0, None),
            ]
            .into_iter()
            .filter(|p| p.size > 0)
            .collect(),
            warnings: vec![
                "ext4 on partition 1 has an unreplayed journal (needs_recovery): it was not \
                 shut down cleanly. The image will be crash-consistent; nothing is replayed."
                    .into(),
            ],
            ..Default::default()
        },
        DiskView {
            dev: "/dev/nvme0n1".into(),
            model: "Samsung SSD 980 1TB".into(),
            serial: "S649NF0R812345K".into(),
            size: 1_000_204_886_016,
            transport: "NVMe".into(),
            ..Default::default()
        },
        DiskView {
            dev: "/dev/sdc".into(),
            model: "SanDisk Ultra USB 3.0".into(),
            serial: "4C530001230612109054".into(),
            size: 30_752_636_928,
            transport: "USB".into(),
            mounted: true,
            boot_medium: true,
            removable: true,
            partitions: vec![part(1, "iso9660", "IRONCLONE", 512 * MIB, Some(480 * MIB))],
            ..Default::default()
        },
        DiskView {
            dev: "/dev/sdd".into(),
            model: "Seagate Expansion Desk".into(),
            serial: "NA8TQ2LM".into(),
            size: 2 * 1000 * GB,
            transport: "USB".into(),
            removable: true,
            partitions: vec![part(1, "ext4", "backups", 1862 * GIB, Some(611 * GIB))],
            ..Default::default()
        },
        // Virtual disks often report no serial: only the kernel name identifies them.
        DiskView {
            dev: "/dev/vda".into(),
            model: "QEMU HARDDISK".into(),
            serial: String::new(),
            size: 64 * GIB,
            transport: "virtio".into(),
            ..Default::default()
        },
    ]
}

pub fn demo_images() -> Vec<ImageView> {
    vec![
        ImageView {
            name: "latitude-7490-2026-10-02".into(),
            date: "2026-10-02 18:41".into(),
            source_model: "Samsung SSD 860 EVO 500GB".into(),
            source_serial: "S3Z9NB0K512345A".into(),
            source_size: 500_107_862_016,
            stored_bytes: 131 * GIB,
            data_bytes: 205 * GIB,
            dedup_ratio: 1.1,
            clonezilla: false,
            partition: None,
            table_less: false,
            needs_luks_key: false,
        },
        ImageView {
            name: "latitude-7490-2026-11-20".into(),
            date: "2026-11-20 09:12".into(),
            source_model: "Samsung SSD 860 EVO 500GB".into(),
            source_serial: "S3Z9NB0K512345A".into(),
            source_size: 500_107_862_016,
            stored_bytes: 14 * GIB,
            data_bytes: 212 * GIB,
            dedup_ratio: 9.4,
            clonezilla: false,
            partition: None,
            table_less: false,
            needs_luks_key: false,
        },
        ImageView {
            name: "nas-home-2026-09-15".into(),
            date: "2026-09-15 22:03".into(),
            source_model: "WDC WD10EZEX-08WN4A0".into(),
            source_serial: "WD-WCC6Y3KF7XZT".into(),
            source_size: 1_000_204_886_016,
            stored_bytes: 377 * GIB,
            data_bytes: 401 * GIB,
            dedup_ratio: 1.0,
            clonezilla: false,
            partition: None,
            table_less: false,
            needs_luks_key: false,
        },
    ]
}

/// What the demo's Clonezilla folder (`/home/partimag`) lists.
pub fn demo_clonezilla_images() -> Vec<ImageView> {
    vec![
        ImageView {
            name: "2026-11-30-12-img".into(),
            date: "2026-11-30 12:04".into(),
            source_model: "clonezilla: sda".into(),
            source_serial: String::new(),
            source_size: 256_060_514_304,
            stored_bytes: 38 * GIB,
            data_bytes: 38 * GIB,
            dedup_ratio: 1.0,
            clonezilla: true,
            partition: None,
            table_less: false,
            needs_luks_key: false,
        },
        ImageView {
            // One partition of a saveparts image: restored onto a partition.
            name: "2026-10-02-09-img/sda3".into(),
            date: "2026-10-02 09:31".into(),
            source_model: "clonezilla: sda3 (ntfs)".into(),
            source_serial: String::new(),
            source_size: 0,
            stored_bytes: 21 * GIB,
            data_bytes: 21 * GIB,
            dedup_ratio: 1.0,
            clonezilla: true,
            partition: Some("sda3".into()),
            table_less: false,
            needs_luks_key: false,
        },
    ]
}

/// The passphrase the demo's LUKS images (`needs_luks_key`) accept.
pub const DEMO_LUKS_PASSPHRASE: &str = "luks sesame";

/// The demo's LUKS key check: only `DEMO_LUKS_PASSPHRASE` opens its headers.
pub fn demo_check_luks_key(
    image: &ImageView,
    key: &crate::share::Password,
) -> Result<(), crate::tui::services::ServiceError> {
    match *key == crate::share::Password::new(DEMO_LUKS_PASSPHRASE) {
        true => Ok(()),
        false => Err(crate::tui::services::ServiceError::Plain(format!(
            "Wrong passphrase: no key slot of {}'s LUKS header accepts it.",
            image.name
        ))),
    }
}

//! Finding the disks of this machine, what is on them and which must not be touched.
//!
//! The disk picker, the backup source list and the restore target check all start
//! here. Everything is read from sysfs, the udev database and mountinfo (no
//! external tools, no libudev, so the static binary works in the live system), and
//! each partition's filesystem comes from our own superblock probes, so what the
//! picker shows is what the imager will see. The roots are injectable
//! ([`SysPaths`]) so tests run on a fake tree.

mod escape;
pub mod mountinfo;
mod safety;
mod sysfs;
pub mod udev;

pub use safety::{
    check_restore_target, check_target_allowed, check_target_not_holding, DiskIdentity, Refusal,
    TargetCheckError,
};

use crate::device::{open_path, Access, BlockDevice, Window};
use crate::probe::{self, FsInfo, FsKind};
use mountinfo::Mount;
use serde::Serialize;
use std::path::{Path, PathBuf};
use thiserror::Error;
use udev::UdevProps;

/// Where discovery looks. `Default` is the real system.
#[derive(Clone, Debug)]
pub struct SysPaths {
    /// `/sys/class/block`
    pub sys_block: PathBuf,
    /// `/run/udev/data`
    pub udev_data: PathBuf,
    /// `/proc/self/mountinfo`
    pub mountinfo: PathBuf,
    /// `/run/ironclone/boot-device`: written by the live system's init with the
    /// boot medium's `/dev` path.
    pub boot_device: PathBuf,
    /// `/dev`: where device nodes are opened for probing.
    pub dev: PathBuf,
}

impl Default for SysPaths {
    fn default() -> Self {
        SysPaths {
            sys_block: "/sys/class/block".into(),
            udev_data: "/run/udev/data".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            boot_device: "/run/ironclone/boot-device".into(),
            dev: "/dev".into(),
        }
    }
}

#[derive(Debug, Error)]
pub enum DiscoverError {
    #[error("cannot list block devices in {path}: {source}")]
    ListBlock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read mount table {path}: {source}")]
    Mountinfo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Nvme,
    Sata,
    Usb,
    Virtio,
    Scsi,
    Loop,
    Mmc,
    Unknown,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Nvme => "nvme",
            Transport::Sata => "sata",
            Transport::Usb => "usb",
            Transport::Virtio => "virtio",
            Transport::Scsi => "scsi",
            Transport::Loop => "loop",
            Transport::Mmc => "mmc",
            Transport::Unknown => "unknown",
        }
    }
}

/// Where a partition's filesystem facts came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsSource {
    /// Our own superblock probe read the device.
    Probe,
    /// The device could not be opened; udev's `ID_FS_*` values are shown instead.
    Udev,
}

#[derive(Clone, Debug, Serialize)]
pub struct Partition {
    pub name: String,
    pub path: PathBuf,
    pub number: u32,
    pub major: u32,
    pub minor: u32,
    /// In bytes from the start of the disk (sysfs counts 512-byte units whatever
    /// the sector size).
    pub start_bytes: u64,
    /// In the disk's logical sectors.
    pub start_lba: u64,
    pub size_bytes: u64,
    pub read_only: bool,
    pub filesystem: Option<FsInfo>,
    pub filesystem_source: Option<FsSource>,
    pub mountpoints: Vec<PathBuf>,
    /// Kernel devices stacked on this one (dm, md): in use even when not mounted.
    pub holders: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Disk {
    pub name: String,
    pub path: PathBuf,
    pub major: u32,
    pub minor: u32,
    pub size_bytes: u64,
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub transport: Transport,
    pub removable: bool,
    pub read_only: bool,
    pub rotational: bool,
    /// For a loop device: the file behind it.
    pub backing_file: Option<PathBuf>,
    /// The disk the running system booted from (or whose filesystem is `/`).
    pub is_boot: bool,
    /// True when the disk itself or any of its partitions is mounted.
    pub has_mounted: bool,
    pub mountpoints: Vec<PathBuf>,
    pub holders: Vec<String>,
    /// A filesystem directly on the disk (no partition table).
    pub filesystem: Option<FsInfo>,
    pub filesystem_source: Option<FsSource>,
    /// Why the disk could not be opened for probing (then filesystems come from
    /// udev, or are unknown).
    pub probe_error: Option<String>,
    pub partitions: Vec<Partition>,
}

impl Disk {
    pub fn identity(&self) -> DiskIdentity {
        DiskIdentity {
            serial: self.serial.clone(),
            wwn: self.wwn.clone(),
            model: self.model.clone(),
            size: self.size_bytes,
        }
    }

    /// "Samsung SSD 870 (serial S5X…, 465.8 GiB, /dev/sda)": how a person tells disks apart.
    pub fn describe(&self) -> String {
        let mut s = self
            .model
            .clone()
            .unwrap_or_else(|| match &self.backing_file {
                Some(f) => format!("loop on {}", f.display()),
                None => "unknown model".to_string(),
            });
        s.push_str(" (");
        if let Some(serial) = &self.serial {
            s.push_str(&format!("serial {serial}, "));
        }
        s.push_str(&format!(
            "{}, {})",
            crate::units::human_bytes(self.size_bytes),
            self.path.display()
        ));
        s
    }
}

/// Kernel names that are never disks a person would image or restore onto: RAM
/// disks, device-mapper nodes (their backing disks are listed), and eMMC hardware
/// boot/RPMB areas (`mmcblk0boot0`, `mmcblk0rpmb`). Floppy drives are skipped
/// because opening an empty one to probe it stalls for seconds.
fn skipped(name: &str) -> bool {
    ["ram", "zram", "dm-", "nbd", "fd"]
        .iter()
        .any(|p| name.starts_with(p))
        || (name.starts_with("mmcblk") && (name.contains("boot") || name.ends_with("rpmb")))
}

/// The disks that are `id`: a restore re-lists the disks and calls this just
/// before writing, because kernel names change between boots. More than one hit
/// (identical weak identities, e.g. two loop devices of one size) must be refused
/// by the caller.
pub fn find_by_identity<'a>(disks: &'a [Disk], id: &DiskIdentity) -> Vec<&'a Disk> {
    disks.iter().filter(|d| d.identity().matches(id)).collect()
}

/// Lists every whole disk (loop devices included when attached), sorted by name.
pub fn list_disks(paths: &SysPaths) -> Result<Vec<Disk>, DiscoverError> {
    let entries =
        std::fs::read_dir(&paths.sys_block).map_err(|source| DiscoverError::ListBlock {
            path: paths.sys_block.clone(),
            source,
        })?;
    let mounts = mountinfo::load(&paths.mountinfo).map_err(|source| DiscoverError::Mountinfo {
        path: paths.mountinfo.clone(),
        source,
    })?;
    let mut disks = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let link = entry.path();
        if skipped(&name) || link.join("partition").exists() {
            continue;
        }
        if let Some(d) = read_disk(paths, &name, &link, &mounts) {
            disks.push(d);
        }
    }
    disks.sort_by(|a, b| a.name.cmp(&b.name));
    mark_boot_disk(paths, &mut disks, &mounts);
    Ok(disks)
}

fn read_disk(paths: &SysPaths, name: &str, link: &Path, mounts: &[Mount]) -> Option<Disk> {
    let dir = std::fs::canonicalize(link).unwrap_or_else(|_| link.to_path_buf());
    let (major, minor) = sysfs::read_dev(&dir)?;
    let size_bytes = sysfs::read_u64(&dir.join("size"))?.checked_mul(512)?;
    if size_bytes == 0 {
        // Detached loops and empty card readers.
        return None;
    }
    let udev = UdevProps::load(&paths.udev_data, major, minor);
    let logical = sysfs::read_u64(&dir.join("queue/logical_block_size"))
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(512);
    let physical = sysfs::read_u64(&dir.join("queue/physical_block_size"))
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(logical);
    let model = udev
        .get_decoded("ID_MODEL")
        .or_else(|| sysfs::first_of(&dir, &["device/model", "device/name"]));
    let serial = udev
        .get("ID_SERIAL_SHORT")
        .map(str::to_string)
        .or_else(|| sysfs::first_of(&dir, &["device/serial", "serial"]))
        .or_else(|| sysfs::vpd_serial(&dir));
    // NVMe's `wwid` is what udev's rules copy into ID_WWN; a SCSI disk's needs mapping.
    let wwn = udev
        .get("ID_WWN_WITH_EXTENSION")
        .or_else(|| udev.get("ID_WWN"))
        .map(str::to_string)
        .or_else(|| sysfs::read_str(&dir.join("wwid")))
        .or_else(|| sysfs::scsi_wwn(&dir));
    let transport = sysfs::transport(
        name,
        &dir.to_string_lossy(),
        udev.get("ID_BUS"),
        udev.get("ID_PATH"),
    );
    let backing_file = sysfs::read_str(&dir.join("loop/backing_file")).map(PathBuf::from);
    let path = paths.dev.join(name);
    let opened = open_path(&path, Access::ReadOnly);
    let probe_error = opened.as_ref().err().map(ToString::to_string);
    let dev = opened.ok();
    let mut partitions = read_partitions(paths, &dir, logical, dev.as_ref(), mounts);
    partitions.sort_by_key(|p| p.number);
    let mountpoints = mounts_of(mounts, major, minor, &path);
    let (filesystem, filesystem_source) = if partitions.is_empty() {
        filesystem_of(dev.as_ref().map(|d| d as &dyn BlockDevice), &udev)
    } else {
        (None, None)
    };
    let has_mounted =
        !mountpoints.is_empty() || partitions.iter().any(|p| !p.mountpoints.is_empty());
    Some(Disk {
        name: name.to_string(),
        path,
        major,
        minor,
        size_bytes,
        logical_sector_size: logical,
        physical_sector_size: physical,
        model,
        serial,
        wwn,
        transport,
        removable: sysfs::read_bool(&dir.join("removable")),
        read_only: sysfs::read_bool(&dir.join("ro")),
        rotational: sysfs::read_bool(&dir.join("queue/rotational")),
        backing_file,
        is_boot: false,
        has_mounted,
        mountpoints,
        holders: sysfs::list_names(&dir.join("holders")),
        filesystem,
        filesystem_source,
        probe_error,
        partitions,
    })
}

fn read_partitions(
    paths: &SysPaths,
    disk_dir: &Path,
    logical: u32,
    dev: Option<&crate::device::FileDevice>,
    mounts: &[Mount],
) -> Vec<Partition> {
    let Ok(rd) = std::fs::read_dir(disk_dir) else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    for e in rd.filter_map(Result::ok) {
        let dir = e.path();
        let Some(number) =
            sysfs::read_u64(&dir.join("partition")).and_then(|n| u32::try_from(n).ok())
        else {
            continue;
        };
        let name = e.file_name().to_string_lossy().into_owned();
        let (Some((major, minor)), Some(start512), Some(size512)) = (
            sysfs::read_dev(&dir),
            sysfs::read_u64(&dir.join("start")),
            sysfs::read_u64(&dir.join("size")),
        ) else {
            continue;
        };
        let (Some(start_bytes), Some(size_bytes)) =
            (start512.checked_mul(512), size512.checked_mul(512))
        else {
            continue;
        };
        let udev = UdevProps::load(&paths.udev_data, major, minor);
        let window = dev.and_then(|d| Window::new(d, start_bytes, size_bytes).ok());
        let (filesystem, filesystem_source) =
            filesystem_of(window.as_ref().map(|w| w as &dyn BlockDevice), &udev);
        let path = paths.dev.join(&name);
        parts.push(Partition {
            mountpoints: mounts_of(mounts, major, minor, &path),
            name,
            path,
            number,
            major,
            minor,
            start_bytes,
            start_lba: start_bytes / u64::from(logical.max(1)),
            size_bytes,
            read_only: sysfs::read_bool(&dir.join("ro")),
            filesystem,
            filesystem_source,
            holders: sysfs::list_names(&dir.join("holders")),
        });
    }
    parts
}

/// Our probe when the device can be read; udev's view when it cannot.
fn filesystem_of(
    dev: Option<&dyn BlockDevice>,
    udev: &UdevProps,
) -> (Option<FsInfo>, Option<FsSource>) {
    if let Some(d) = dev {
        return match probe::probe(d) {
            Some(fs) => (Some(fs), Some(FsSource::Probe)),
            None => (None, Some(FsSource::Probe)),
        };
    }
    match udev_fs(udev) {
        Some(fs) => (Some(fs), Some(FsSource::Udev)),
        None => (None, None),
    }
}

fn udev_fs(udev: &UdevProps) -> Option<FsInfo> {
    let kind = match (udev.get("ID_FS_TYPE")?, udev.get("ID_FS_VERSION")) {
        ("ext2", _) => FsKind::Ext2,
        ("ext3", _) => FsKind::Ext3,
        ("ext4", _) => FsKind::Ext4,
        ("ntfs", _) => FsKind::Ntfs,
        ("vfat", Some("FAT12")) => FsKind::Fat12,
        ("vfat", Some("FAT16")) => FsKind::Fat16,
        ("vfat", _) => FsKind::Fat32,
        ("exfat", _) => FsKind::Exfat,
        ("swap", _) => FsKind::Swap,
        ("crypto_LUKS", _) => FsKind::Luks,
        ("LVM2_member", _) => FsKind::Lvm2,
        ("btrfs", _) => FsKind::Btrfs,
        ("xfs", _) => FsKind::Xfs,
        ("BitLocker", _) => FsKind::Bitlocker,
        _ => FsKind::Unknown,
    };
    Some(FsInfo {
        kind,
        label: udev.get_decoded("ID_FS_LABEL"),
        uuid: udev.get("ID_FS_UUID").map(str::to_string),
    })
}

/// Mount points of a device, matched by major:minor or (for FUSE mounts such as
/// ntfs-3g, whose major:minor is anonymous) by the mount source path.
fn mounts_of(mounts: &[Mount], major: u32, minor: u32, path: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| {
            (m.major == major && m.minor == minor && major != 0) || Path::new(&m.source) == path
        })
        .map(|m| m.mount_point.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The disk whose mounted filesystem holds `path` (e.g. the image repository, which
/// a restore must never overwrite). Found through the mount table by the longest
/// mount point that contains the path, so FUSE mounts (ntfs-3g) are found too.
pub fn disk_holding_path<'a>(
    paths: &SysPaths,
    disks: &'a [Disk],
    path: &Path,
) -> Result<Option<&'a Disk>, DiscoverError> {
    let mounts = mountinfo::load(&paths.mountinfo).map_err(|source| DiscoverError::Mountinfo {
        path: paths.mountinfo.clone(),
        source,
    })?;
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Some(m) = mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        // The last of equally long mount points is the one on top.
        .max_by_key(|m| m.mount_point.as_os_str().len())
    else {
        return Ok(None);
    };
    let on = |maj: u32, min: u32, dev: &Path| {
        (m.major != 0 && m.major == maj && m.minor == min) || Path::new(&m.source) == dev
    };
    Ok(disks.iter().find(|d| {
        on(d.major, d.minor, &d.path) || d.partitions.iter().any(|p| on(p.major, p.minor, &p.path))
    }))
}

/// The boot medium named by the live system's init; otherwise the disk under `/`.
fn mark_boot_disk(paths: &SysPaths, disks: &mut [Disk], mounts: &[Mount]) {
    let named = sysfs::read_str(&paths.boot_device).map(|p| {
        let p = PathBuf::from(p);
        // /dev/disk/by-* links resolve to the kernel name.
        std::fs::canonicalize(&p).unwrap_or(p)
    });
    let idx = match named {
        Some(p) => {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            disks.iter().position(|d| {
                Some(&d.name) == name.as_ref()
                    || d.partitions.iter().any(|q| Some(&q.name) == name.as_ref())
            })
        }
        None => mounts
            .iter()
            .find(|m| m.mount_point == Path::new("/"))
            .and_then(|root| {
                disks.iter().position(|d| {
                    let hit = |maj: u32, min: u32, path: &Path| {
                        (root.major != 0 && root.major == maj && root.minor == min)
                            || Path::new(&root.source) == path
                    };
                    hit(d.major, d.minor, &d.path)
                        || d.partitions.iter().any(|q| hit(q.major, q.minor, &q.path))
                })
            }),
    };
    if let Some(i) = idx {
        if let Some(d) = disks.get_mut(i) {
            d.is_boot = true;
        }
    }
}

#[cfg(test)]
mod tests;

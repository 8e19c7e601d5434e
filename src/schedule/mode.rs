//! How a configured disk can be imaged consistently while the system runs:
//! - nothing on it mounted read-write (a data disk, an image file): directly;
//! - an LVM logical volume mounted read-write: from a temporary snapshot LV;
//! - a plain partition mounted read-write: the upstream kernel cannot snapshot it and
//!   a copy of a filesystem being written is not one, so it is imaged by the rescue
//!   entry, after a reboot into the live system (docs/SCHEDULE.md; `rescue_entry`);
//! - a disk with LVs on a LUKS partition mounted read-write (an encrypted-LVM install,
//!   its ESP and /boot beside): online, as one image (`enc_disk`), since the rescue
//!   entry could not open the volume. Checked first, so its plain partitions mounted
//!   read-write do not send it to the rescue entry.
//!
//! The kernel's view is read straight from /proc/self/mountinfo (the `rw` option) and
//! sysfs (partitions, holders, a dm device's `dm/uuid`, which lvm2 starts with `LVM-`).

use super::enc_disk::{CryptPv, EncDisk, PlainMount, Quiesce};
use super::error::ScheduleError;
use super::snapshot::{self, LvRef};
use crate::discover::mountinfo;
use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Direct,
    LvmSnapshot(LvRef),
    /// Only the rescue entry can image it; the text says what is mounted where.
    Rescue(String),
    /// The whole disk of an encrypted-LVM install, online (`enc_disk`).
    EncryptedLvm(EncDisk),
}

/// Why a disk cannot be imaged where it is.
enum Busy {
    /// A plain partition (or a non-LVM mapping on one) mounted read-write.
    NeedsRescue(String),
    Refused(String),
}

type RwMounts = HashMap<(u32, u32), PathBuf>;
type FsTypes = HashMap<(u32, u32), String>;

/// (major, minor) → mount point of every read-write mount, and → its filesystem type.
fn rw_mounts() -> Result<(RwMounts, FsTypes), ScheduleError> {
    let p = Path::new("/proc/self/mountinfo");
    let all: Vec<_> = mountinfo::load(p)
        .map_err(ScheduleError::io(p))?
        .into_iter()
        .filter(|m| m.read_write)
        .collect();
    let types = all
        .iter()
        .map(|m| ((m.major, m.minor), m.fs_type.clone()))
        .collect();
    Ok((
        all.into_iter()
            .map(|m| ((m.major, m.minor), m.mount_point))
            .collect(),
        types,
    ))
}

/// The run's view of what [`enc_in`] found: each mounted LV as lvm2 names it (thin
/// LVs refused: their extents lie in a pool's data LV), each plain partition with the
/// way it is made still.
fn enc_disk(f: EncFound, types: &FsTypes) -> Result<EncDisk, String> {
    let mut plain = Vec::new();
    for (part, mount, d) in f.plain {
        let fs_type = types.get(&d).cloned().unwrap_or_default();
        let how = Quiesce::for_fs(&fs_type).ok_or_else(|| {
            format!(
                "{part} ({fs_type}) is mounted read-write at {}, next to an LVM volume on LUKS; \
                 it can be neither frozen nor remounted read-only for the run",
                mount.display()
            )
        })?;
        plain.push(PlainMount {
            part,
            mount,
            fs_type,
            how,
        });
    }
    let mut volumes = Vec::new();
    for v in f.volumes {
        let mut lvs = Vec::new();
        for dm in &v.lvs {
            let lv = snapshot::describe(&format!("/dev/mapper/{dm}")).map_err(|e| e.to_string())?;
            if lv.pool.is_some() {
                return Err(format!(
                    "the thin LV {}/{} on the LUKS volume {} is mounted read-write; a thin LV cannot be \
                     imaged with the whole disk (list it in the schedule's disks instead)",
                    lv.vg, lv.lv, v.crypt
                ));
            }
            lvs.push(lv);
        }
        volumes.push(CryptPv {
            part: v.part,
            offset: v.offset,
            mapping: v.crypt,
            lvs,
        });
    }
    Ok(EncDisk { plain, volumes })
}

fn dev_of(sys: &Path) -> Option<(u32, u32)> {
    let t = std::fs::read_to_string(sys.join("dev")).ok()?;
    let (a, b) = t.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn is_lvm_dm(sys: &Path) -> bool {
    std::fs::read_to_string(sys.join("dm/uuid")).is_ok_and(|u| u.starts_with("LVM-"))
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Chooses the mode for `disk` (as configured; resolved here).
pub fn choose(disk: &Path) -> Result<Mode, ScheduleError> {
    let err = |why: String| ScheduleError::Disk {
        disk: disk.display().to_string(),
        why,
    };
    let canon =
        std::fs::canonicalize(disk).map_err(|e| err(format!("{e} (is the disk attached?)")))?;
    let meta = std::fs::metadata(&canon).map_err(ScheduleError::io(&canon))?;
    let (rw, types) = rw_mounts()?;
    if meta.file_type().is_file() {
        // An image file is in use when a loop device over it is mounted read-write.
        for loopdev in names_in(Path::new("/sys/block")) {
            let sys = Path::new("/sys/block").join(&loopdev);
            let back = std::fs::read_to_string(sys.join("loop/backing_file")).unwrap_or_default();
            if Path::new(back.trim()) == canon {
                if let Err(b) = check_mounted(&sys, &loopdev, &rw) {
                    return busy(b).map_err(err);
                }
            }
        }
        return Ok(Mode::Direct);
    }
    if !meta.file_type().is_block_device() {
        return Err(err("neither a block device nor a disk image file".into()));
    }
    let rdev = meta.rdev();
    let (major, minor) = (
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    );
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if is_lvm_dm(&sys) {
        return match rw.get(&(major, minor)) {
            None => Ok(Mode::Direct),
            Some(_) => Ok(Mode::LvmSnapshot(snapshot::describe(
                &canon.to_string_lossy(),
            )?)),
        };
    }
    let name = canon
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(found) = enc_in(Path::new(SYS_BLOCK), &sys, &name, &rw) {
        return found
            .and_then(|f| enc_disk(f, &types))
            .map(Mode::EncryptedLvm)
            .map_err(err);
    }
    match check_mounted(&sys, &name, &rw) {
        Ok(()) => Ok(Mode::Direct),
        Err(b) => busy(b).map_err(err),
    }
}

/// True when the filesystem holding `path` (the repository) is on block device `disk`:
/// the disk itself, one of its partitions, or a device-mapper device stacked on one of
/// them (LVM, LUKS). Imaging a disk directly while the run writes its repository to it
/// makes an image of a filesystem being written (and of the repository in it); a
/// `uuid=` repository is mounted by the run itself, after the modes were chosen.
pub fn holds_path(disk: &Path, path: &Path) -> bool {
    let Ok(repo) = std::fs::metadata(path) else {
        return false;
    };
    let dev = repo.dev();
    let want = (
        nix::sys::stat::major(dev) as u32,
        nix::sys::stat::minor(dev) as u32,
    );
    let Ok(meta) = std::fs::metadata(disk) else {
        return false;
    };
    if !meta.file_type().is_block_device() {
        return false;
    }
    let rdev = meta.rdev();
    let sys = PathBuf::from(format!(
        "/sys/dev/block/{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    ));
    let mut devs = vec![sys.clone()];
    for n in names_in(&sys) {
        if sys.join(&n).join("partition").exists() {
            devs.push(sys.join(n));
        }
    }
    let holders: Vec<PathBuf> = devs
        .iter()
        .flat_map(|d| names_in(&d.join("holders")))
        .map(|h| Path::new("/sys/block").join(h))
        .collect();
    devs.into_iter()
        .chain(holders)
        .any(|d| dev_of(&d) == Some(want))
}

fn busy(b: Busy) -> Result<Mode, String> {
    match b {
        Busy::NeedsRescue(why) => Ok(Mode::Rescue(why)),
        Busy::Refused(why) => Err(why),
    }
}

/// The block devices by name: `/sys/block` (a tree built by the unit tests).
const SYS_BLOCK: &str = "/sys/block";

/// Device-mapper stacks deeper than this are not followed (LUKS → PV → LV is 2).
const MAX_DEPTH: usize = 8;

fn is_crypt_dm(sys: &Path) -> bool {
    std::fs::read_to_string(sys.join("dm/uuid")).is_ok_and(|u| u.starts_with("CRYPT-"))
}

fn dm_name(sys: &Path, fallback: &str) -> String {
    std::fs::read_to_string(sys.join("dm/name"))
        .map(|n| n.trim().to_string())
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| fallback.to_string())
}

/// A device-mapper device stacked (at any depth) on a partition and mounted read-write.
struct MountedAbove {
    /// Its dm name (`vg0-root`, `luks-…`).
    name: String,
    mount: PathBuf,
    /// It is an LVM logical volume.
    lvm: bool,
    /// The dm-crypt (LUKS) device on the way down to the partition, if any.
    crypt: Option<String>,
}

/// Every read-write mount among the holders of `dev` and theirs, depth first (a
/// mounted device's own holders are not followed). The kernel lists in `holders/`
/// only the devices directly on top: an LV on a LUKS volume on a partition is two
/// levels up, and a disk imaged directly under it would be an image of a filesystem
/// being written.
fn mounted_above(
    sys_block: &Path,
    dev: &Path,
    rw: &HashMap<(u32, u32), PathBuf>,
    crypt: Option<&str>,
    depth: usize,
    out: &mut Vec<MountedAbove>,
) {
    if depth >= MAX_DEPTH {
        return;
    }
    let mut holders = names_in(&dev.join("holders"));
    holders.sort();
    for holder in holders {
        let hsys = sys_block.join(&holder);
        let name = dm_name(&hsys, &holder);
        let crypt_here = if is_crypt_dm(&hsys) {
            Some(name.clone())
        } else {
            crypt.map(String::from)
        };
        if let Some(mp) = dev_of(&hsys).and_then(|d| rw.get(&d)) {
            out.push(MountedAbove {
                name,
                mount: mp.clone(),
                lvm: is_lvm_dm(&hsys),
                crypt: crypt_here,
            });
            continue;
        }
        mounted_above(sys_block, &hsys, rw, crypt_here.as_deref(), depth + 1, out);
    }
}

fn first_mounted_above(
    sys_block: &Path,
    dev: &Path,
    rw: &HashMap<(u32, u32), PathBuf>,
) -> Option<MountedAbove> {
    let mut out = Vec::new();
    mounted_above(sys_block, dev, rw, None, 0, &mut out);
    out.into_iter().next()
}

/// The partitions of the device at `sys` (named `name`), the device itself first.
fn parts_of(sys: &Path, name: &str) -> Vec<(String, PathBuf)> {
    let mut parts: Vec<(String, PathBuf)> = vec![(name.to_string(), sys.to_path_buf())];
    let mut names = names_in(sys);
    names.sort();
    for n in names {
        if sys.join(&n).join("partition").exists() {
            parts.push((n.clone(), sys.join(n)));
        }
    }
    parts
}

/// The encrypted-LVM disk layout (docs/SCHEDULE.md, "Encrypted disks"): `None` when no
/// LV on a LUKS volume on the device at `sys` is mounted read-write (the other modes
/// apply); else what the run must snapshot and make consistent, or why it cannot.
pub(super) fn enc_in(
    sys_block: &Path,
    sys: &Path,
    name: &str,
    rw: &HashMap<(u32, u32), PathBuf>,
) -> Option<Result<EncFound, String>> {
    let mut plain = Vec::new();
    let mut above: Vec<(String, PathBuf, MountedAbove)> = Vec::new();
    for (pname, psys) in parts_of(sys, name) {
        if let Some(d) = dev_of(&psys).filter(|d| rw.contains_key(d)) {
            plain.push((pname, rw[&d].clone(), d));
            continue;
        }
        let mut out = Vec::new();
        mounted_above(sys_block, &psys, rw, None, 0, &mut out);
        above.extend(out.into_iter().map(|m| (pname.clone(), psys.clone(), m)));
    }
    if !above.iter().any(|(_, _, m)| m.lvm && m.crypt.is_some()) {
        return None;
    }
    let mut volumes: Vec<EncVolume> = Vec::new();
    for (pname, psys, m) in above {
        let crypt = match (&m.crypt, m.lvm) {
            (Some(c), true) if pname != name => c.clone(),
            _ => {
                return Some(Err(format!(
                    "{pname} holds {} mounted read-write at {}, next to an LVM volume on LUKS;                      only LVs on a LUKS partition (and plain partitions) can be imaged online in one image of the disk",
                    m.name,
                    m.mount.display()
                )))
            }
        };
        let start: Option<u64> = std::fs::read_to_string(psys.join("start"))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .and_then(|s| s.checked_mul(512));
        let Some(offset) = start else {
            return Some(Err(format!("{pname}: its start is unreadable in sysfs")));
        };
        match volumes.iter_mut().find(|v| v.part == pname) {
            Some(v) if v.crypt == crypt => v.lvs.push(m.name),
            Some(v) => {
                return Some(Err(format!(
                    "{pname} holds two LUKS volumes ({} and {crypt})",
                    v.crypt
                )))
            }
            None => volumes.push(EncVolume {
                part: pname,
                offset,
                crypt,
                lvs: vec![m.name],
            }),
        }
    }
    Some(Ok(EncFound { plain, volumes }))
}

/// What [`enc_in`] found, by kernel names.
pub(super) struct EncFound {
    /// Plain partitions mounted read-write: name, mount point, device number.
    pub plain: Vec<(String, PathBuf, (u32, u32))>,
    pub volumes: Vec<EncVolume>,
}

pub(super) struct EncVolume {
    pub part: String,
    /// The partition's byte offset on the disk.
    pub offset: u64,
    /// The LUKS mapping's dm name.
    pub crypt: String,
    /// dm names of the LVs on it mounted read-write.
    pub lvs: Vec<String>,
}

/// Errors when the device at `sys`, a partition of it, or a device-mapper device
/// stacked on one (an LV, a LUKS volume, an LV on a LUKS volume) is mounted
/// read-write; says which mode it needs.
fn check_mounted(sys: &Path, name: &str, rw: &HashMap<(u32, u32), PathBuf>) -> Result<(), Busy> {
    check_mounted_in(Path::new(SYS_BLOCK), sys, name, rw)
}

fn check_mounted_in(
    sys_block: &Path,
    sys: &Path,
    name: &str,
    rw: &HashMap<(u32, u32), PathBuf>,
) -> Result<(), Busy> {
    for (pname, psys) in &parts_of(sys, name) {
        if let Some(mp) = dev_of(psys).and_then(|d| rw.get(&d)) {
            return Err(Busy::NeedsRescue(format!(
                "{pname} is mounted read-write at {}; a plain partition cannot be snapshotted while mounted, \
                 so it needs the rescue-entry mode",
                mp.display()
            )));
        }
        let Some(m) = first_mounted_above(sys_block, psys, rw) else {
            continue;
        };
        let via = m
            .crypt
            .as_ref()
            .filter(|c| **c != m.name)
            .map(|c| format!(" on the LUKS volume {c}"))
            .unwrap_or_default();
        return Err(match (m.lvm, &m.crypt) {
            (true, _) => Busy::Refused(format!(
                "{pname} holds the LVM volume {}{via} mounted read-write at {}; list the \
                 logical volume (/dev/<vg>/<lv>) in the schedule's disks to image it from a snapshot{}",
                m.name,
                m.mount.display(),
                if m.crypt.is_some() {
                    " (the image then holds its decrypted filesystem: docs/SCHEDULE.md)"
                } else {
                    ""
                }
            )),
            (false, Some(_)) => Busy::NeedsRescue(format!(
                "{pname} holds the LUKS volume {} mounted read-write at {}; it needs the rescue-entry mode, \
                 which has no key: it images the partition encrypted and whole (every run reads all of it; \
                 unchanged sectors are deduplicated)",
                m.name,
                m.mount.display()
            )),
            (false, None) => Busy::NeedsRescue(format!(
                "{pname} holds {} mounted read-write at {}; it needs the rescue-entry mode",
                m.name,
                m.mount.display()
            )),
        });
    }
    Ok(())
}

/// The LUKS volume (its dm name) below the device-mapper device `disk` (an LV on a
/// LUKS volume), found down its `slaves/`; `None` for anything else. Its image holds
/// the decrypted filesystem, which `schedule init` says.
pub fn crypt_below(disk: &Path) -> Option<String> {
    let meta = std::fs::metadata(disk).ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    let rdev = meta.rdev();
    let sys = PathBuf::from(format!(
        "/sys/dev/block/{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    ));
    crypt_below_in(Path::new(SYS_BLOCK), &sys, 0)
}

fn crypt_below_in(sys_block: &Path, dev: &Path, depth: usize) -> Option<String> {
    if depth >= MAX_DEPTH || !dev.join("dm").is_dir() {
        return None;
    }
    if is_crypt_dm(dev) {
        return Some(dm_name(dev, "?"));
    }
    let mut slaves = names_in(&dev.join("slaves"));
    slaves.sort();
    slaves
        .iter()
        .find_map(|s| crypt_below_in(sys_block, &sys_block.join(s), depth + 1))
}

/// What the running system's root filesystem (`/`) sits on when that is a
/// device-mapper device (`the LUKS volume luks-…`, `the LVM volume vg0-root`), else
/// `None`. The live system cannot see the filesystem inside a LUKS volume it has no
/// key for, nor in an LV it does not activate: the rescue entry then keeps the
/// schedule on the boot partition (`boot_mirror`).
pub fn root_on_device_mapper() -> Option<String> {
    dm_at(Path::new("/"))
}

/// The same for the filesystem mounted exactly at `dir` (an installed root mounted
/// elsewhere, `--root DIR`); `None` when `dir` is no mount point or not on
/// device-mapper.
pub fn dm_at(dir: &Path) -> Option<String> {
    let canon = std::fs::canonicalize(dir).ok()?;
    let p = Path::new("/proc/self/mountinfo");
    let root = mountinfo::load(p)
        .ok()?
        .into_iter()
        .rev()
        .find(|m| m.mount_point == canon)?;
    root_dm_in(Path::new(&format!(
        "/sys/dev/block/{}:{}",
        root.major, root.minor
    )))
}

fn root_dm_in(sys: &Path) -> Option<String> {
    let uuid = std::fs::read_to_string(sys.join("dm/uuid")).ok()?;
    let name = dm_name(sys, "?");
    Some(if uuid.starts_with("CRYPT-") {
        format!("the LUKS volume {name}")
    } else if uuid.starts_with("LVM-") {
        format!("the LVM volume {name}")
    } else {
        format!("the device-mapper device {name}")
    })
}

#[cfg(test)]
#[path = "mode_tests.rs"]
mod tests;

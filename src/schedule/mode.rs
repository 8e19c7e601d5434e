//! How a configured disk can be imaged consistently while the system runs:
//! - nothing on it mounted read-write (a data disk, an image file): directly;
//! - an LVM logical volume mounted read-write: from a temporary snapshot LV;
//! - a plain partition mounted read-write: the upstream kernel cannot snapshot it and
//!   a copy of a filesystem being written is not one, so it is imaged by the rescue
//!   entry, after a reboot into the live system (docs/SCHEDULE.md; `rescue_entry`).
//!
//! The kernel's view is read straight from /proc/self/mountinfo (the `rw` option) and
//! sysfs (partitions, holders, a dm device's `dm/uuid`, which lvm2 starts with `LVM-`).

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
}

/// Why a disk cannot be imaged where it is.
enum Busy {
    /// A plain partition (or a non-LVM mapping on one) mounted read-write.
    NeedsRescue(String),
    Refused(String),
}

/// (major, minor) → mount point of every read-write mount.
fn rw_mounts() -> Result<HashMap<(u32, u32), PathBuf>, ScheduleError> {
    let p = Path::new("/proc/self/mountinfo");
    Ok(mountinfo::load(p)
        .map_err(ScheduleError::io(p))?
        .into_iter()
        .filter(|m| m.read_write)
        .map(|m| ((m.major, m.minor), m.mount_point))
        .collect())
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
    let rw = rw_mounts()?;
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

/// The first read-write mount among the holders of `dev` and theirs, depth first.
/// The kernel lists in `holders/` only the devices directly on top: an LV on a LUKS
/// volume on a partition is two levels up, and a disk imaged directly under it would
/// be an image of a filesystem being written.
fn mounted_above(
    sys_block: &Path,
    dev: &Path,
    rw: &HashMap<(u32, u32), PathBuf>,
    crypt: Option<&str>,
    depth: usize,
) -> Option<MountedAbove> {
    if depth >= MAX_DEPTH {
        return None;
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
            return Some(MountedAbove {
                name,
                mount: mp.clone(),
                lvm: is_lvm_dm(&hsys),
                crypt: crypt_here,
            });
        }
        if let Some(m) = mounted_above(sys_block, &hsys, rw, crypt_here.as_deref(), depth + 1) {
            return Some(m);
        }
    }
    None
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
    let mut parts: Vec<(String, PathBuf)> = vec![(name.to_string(), sys.to_path_buf())];
    let mut names = names_in(sys);
    names.sort();
    for n in names {
        if sys.join(&n).join("partition").exists() {
            parts.push((n.clone(), sys.join(n)));
        }
    }
    for (pname, psys) in &parts {
        if let Some(mp) = dev_of(psys).and_then(|d| rw.get(&d)) {
            return Err(Busy::NeedsRescue(format!(
                "{pname} is mounted read-write at {}; a plain partition cannot be snapshotted while mounted, \
                 so it needs the rescue-entry mode",
                mp.display()
            )));
        }
        let Some(m) = mounted_above(sys_block, psys, rw, None, 0) else {
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
/// `None`. The rescue run finds the installed system by its root filesystem's UUID,
/// which the live system cannot see inside a LUKS volume it has no key for, nor in an
/// LV it does not activate: such a root can never be reached by a rescue run.
pub fn root_on_device_mapper() -> Option<String> {
    let p = Path::new("/proc/self/mountinfo");
    let root = mountinfo::load(p)
        .ok()?
        .into_iter()
        .rev()
        .find(|m| m.mount_point.as_path() == Path::new("/"))?;
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
        // An LV on a LUKS volume is still out of the rescue system's reach.
        format!("the LVM volume {name}")
    } else {
        format!("the device-mapper device {name}")
    })
}

#[cfg(test)]
mod tests {
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
}

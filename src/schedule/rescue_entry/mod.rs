//! The rescue entry (issue 23): the live system's kernel and initramfs on the
//! installed machine's own disk, with a boot entry "ironclone rescue" that starts them
//! with a command line making the live system run `ironclone schedule run --rescue
//! <root-uuid>` (or `--rescue-boot <boot-uuid>`, below) unattended and reboot. A scheduled run that finds a plain partition
//! mounted read-write (which nothing can snapshot) asks for one boot into that entry
//! and reboots; the rescue system images the disks while nothing has them mounted
//! read-write. docs/SCHEDULE.md, "The rescue entry".
//!
//! - UEFI (`efi`): files in `EFI/ironclone/` on the ESP, a `Boot####` pointing at the
//!   kernel's EFI stub, not in BootOrder, reached once through `BootNext`.
//! - BIOS (`grub`): files in `/boot/ironclone/`, an /etc/grub.d script whose entry
//!   `grub-reboot` selects once.
//!
//! A root filesystem on device-mapper (plain LUKS, LVM) is out of the live system's
//! reach: the entry then names the partition it boots from (the ESP, a separate
//! /boot), where `boot_mirror` keeps a copy of the schedule.
//!
//! What was installed is recorded in /etc/ironclone/rescue-entry.json, which `remove`,
//! `status` and the scheduled run read.

pub mod efi;
pub mod grub;

use super::error::ScheduleError;
use super::Roots;
use crate::bootfix::efi_load_option::HardDrive;
use crate::bootfix::efivars::EfiVars;
use crate::discover::mountinfo;
use crate::resize::run_tool;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const LABEL: &str = "ironclone rescue";
pub const GRUB_ID: &str = "ironclone-rescue";
/// On the ESP, relative to its root; the loader path the firmware sees.
pub const ESP_DIR: &str = "EFI/ironclone";
pub const EFI_LOADER: &str = "\\EFI\\ironclone\\vmlinuz";
pub const EFI_INITRD: &str = "\\EFI\\ironclone\\initrd.img";
/// Under /boot on BIOS machines.
pub const BOOT_DIR: &str = "ironclone";
pub const KERNEL_FILE: &str = "vmlinuz";
pub const INITRD_FILE: &str = "initrd.img";
pub const RECORD_VERSION: u32 = 1;
const MAX_RECORD: u64 = 64 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Uefi,
    Bios,
}

/// /etc/ironclone/rescue-entry.json.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescueEntry {
    pub version: u32,
    pub firmware: Firmware,
    /// The directory holding vmlinuz and initrd.img.
    pub dir: PathBuf,
    /// The installed system's root filesystem, which the rescue run mounts.
    pub root_uuid: String,
    /// The filesystem holding `dir`, when the root is on device-mapper: the command
    /// line names it instead of the root, and the schedule is mirrored into `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_uuid: Option<String>,
    pub cmdline: String,
    /// UEFI: the Boot#### number written.
    pub boot_number: Option<u16>,
    pub installed_unix: u64,
}

fn err(why: impl Into<String>) -> ScheduleError {
    ScheduleError::Rescue { why: why.into() }
}

pub fn record_path(roots: &Roots) -> PathBuf {
    roots.root().join("etc/ironclone/rescue-entry.json")
}

impl RescueEntry {
    /// The installed entry, `None` when none is.
    pub fn load(roots: &Roots) -> Result<Option<RescueEntry>, ScheduleError> {
        let path = record_path(roots);
        let meta = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other.map_err(ScheduleError::io(&path))?,
        };
        if meta.len() > MAX_RECORD {
            return Err(ScheduleError::Syntax {
                path,
                why: "too large for a rescue-entry record".into(),
            });
        }
        let bytes = std::fs::read(&path).map_err(ScheduleError::io(&path))?;
        let r: RescueEntry = serde_json::from_slice(&bytes).map_err(|e| ScheduleError::Syntax {
            path: path.clone(),
            why: e.to_string(),
        })?;
        if r.version != RECORD_VERSION {
            return Err(ScheduleError::Field {
                path,
                field: "version".into(),
                why: format!("{} is not {RECORD_VERSION}", r.version),
            });
        }
        Ok(Some(r))
    }
}

/// A filesystem UUID as blkid prints it: hex digits and dashes only, so it can go on
/// a kernel command line and into a GRUB script unquoted.
pub fn check_uuid(uuid: &str) -> Result<(), ScheduleError> {
    if uuid.is_empty()
        || uuid.len() > 64
        || !uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
    {
        return Err(err(format!(
            "\"{uuid}\" is not a filesystem UUID (hex digits and dashes)"
        )));
    }
    Ok(())
}

/// An extra kernel argument (console=ttyS0,115200): printable ASCII without the
/// characters that GRUB or a shell would interpret.
fn check_arg(a: &str) -> Result<(), ScheduleError> {
    if a.is_empty()
        || !a
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"'\"$\\;{}`".contains(&b))
    {
        return Err(err(format!(
            "kernel argument \"{a}\": only printable characters without quotes, $, \\, ;, {{}} and `"
        )));
    }
    Ok(())
}

/// The rescue system's kernel command line. `ironclone.run` makes the live /init run
/// the scheduled run unattended; `ironclone.reboot=1` makes it reboot (back into the
/// installed system, since BootNext or grub-reboot held for one boot) instead of
/// powering off, also after a failure; `panic=10` reboots a kernel that panics.
pub fn cmdline(
    firmware: Firmware,
    finds: Finds,
    append: &[String],
) -> Result<String, ScheduleError> {
    let (flag, uuid) = match finds {
        Finds::Root(u) => ("--rescue", u),
        Finds::Boot(u) => ("--rescue-boot", u),
    };
    check_uuid(uuid)?;
    let mut words = Vec::new();
    if firmware == Firmware::Uefi {
        // The EFI stub loads the initramfs from the ESP itself.
        words.push(format!("initrd={EFI_INITRD}"));
    }
    words.push(format!("ironclone.run=schedule+run+{flag}+{uuid}"));
    words.push("ironclone.reboot=1".into());
    words.push("panic=10".into());
    for a in append {
        check_arg(a)?;
        words.push(a.clone());
    }
    Ok(words.join(" "))
}

/// What the rescue run finds the schedule by: the installed root's filesystem UUID
/// (`--rescue`), or the boot partition's holding its mirror (`--rescue-boot`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finds<'a> {
    Root(&'a str),
    Boot(&'a str),
}

/// Where the files come from.
pub enum Source {
    Files {
        kernel: PathBuf,
        initramfs: PathBuf,
    },
    /// An ironclone ISO file (boot/vmlinuz, boot/initrd.img), mounted read-only.
    Iso(PathBuf),
    /// The medium this live system booted from (/run/ironclone/boot-device).
    LiveMedium,
}

/// Where the entry goes.
pub enum Target {
    Uefi {
        /// The mounted ESP (e.g. /boot/efi).
        esp: PathBuf,
        efivars: PathBuf,
        /// The ESP as a disk (or disk image) and partition number, when it is not the
        /// mounted partition's own disk (tests); read for the HD() node.
        esp_part: Option<(PathBuf, u32)>,
    },
    Bios {
        /// The installed system's /boot.
        boot: PathBuf,
    },
}

pub struct Install {
    pub source: Source,
    pub target: Target,
    /// None: the filesystem mounted at the root.
    pub root_uuid: Option<String>,
    pub append: Vec<String>,
}

/// The device node of a (major, minor), from sysfs (devtmpfs has no /dev/block/).
fn dev_node(major: u32, minor: u32) -> Result<PathBuf, ScheduleError> {
    let p = PathBuf::from(format!("/sys/dev/block/{major}:{minor}/uevent"));
    let t = std::fs::read_to_string(&p).map_err(ScheduleError::io(&p))?;
    t.lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(|n| Path::new("/dev").join(n))
        .ok_or_else(|| err(format!("{} names no DEVNAME", p.display())))
}

/// The mount whose mount point is `dir` exactly.
fn mount_at(dir: &Path) -> Result<mountinfo::Mount, ScheduleError> {
    let canon = std::fs::canonicalize(dir).map_err(ScheduleError::io(dir))?;
    let p = Path::new("/proc/self/mountinfo");
    mountinfo::load(p)
        .map_err(ScheduleError::io(p))?
        .into_iter()
        .rev()
        .find(|m| m.mount_point == canon)
        .ok_or_else(|| err(format!("{} is not a mount point", dir.display())))
}

/// The UUID of the filesystem mounted at `dir`, from its superblock.
pub fn fs_uuid_at(dir: &Path) -> Result<String, ScheduleError> {
    let m = mount_at(dir)?;
    let node = dev_node(m.major, m.minor)?;
    let dev = crate::device::open_path(&node, crate::device::Access::ReadOnly)
        .map_err(|e| err(format!("{}: {e}", node.display())))?;
    crate::probe::probe(&dev)
        .and_then(|i| i.uuid)
        .ok_or_else(|| {
            err(format!(
                "{} (mounted at {}) has no filesystem UUID",
                node.display(),
                dir.display()
            ))
        })
}

/// The HD() node of the ESP: partition `number` of `disk`, from its partition table.
fn hard_drive(disk: &Path, number: u32) -> Result<HardDrive, ScheduleError> {
    use crate::table::TableKind;
    let dev = crate::device::open_path(disk, crate::device::Access::ReadOnly)
        .map_err(|e| err(format!("{}: {e}", disk.display())))?;
    let layout =
        crate::table::read_layout(&dev).map_err(|e| err(format!("{}: {e}", disk.display())))?;
    let part = layout
        .partitions
        .iter()
        .find(|p| p.number == number)
        .ok_or_else(|| err(format!("{} has no partition {number}", disk.display())))?;
    let (start, size) = (part.start_lba.get(), part.sectors());
    match (layout.kind, part.uuid, layout.disk_signature) {
        (TableKind::Gpt, Some(g), _) => Ok(HardDrive::gpt(number, start, size, g)),
        (TableKind::Mbr, _, Some(sig)) if !part.logical => Ok(HardDrive::mbr(number, start, size, sig)),
        _ => Err(err(format!(
            "partition {number} of {} cannot be named in a boot entry (no GPT GUID or MBR signature)",
            disk.display()
        ))),
    }
}

/// The mounted ESP's disk and partition number, from sysfs.
fn esp_partition(esp: &Path) -> Result<(PathBuf, u32), ScheduleError> {
    let m = mount_at(esp)?;
    let sys = PathBuf::from(format!("/sys/dev/block/{}:{}", m.major, m.minor));
    let num: u32 = std::fs::read_to_string(sys.join("partition"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| err(format!("{} is not on a partition", esp.display())))?;
    let real = std::fs::canonicalize(&sys).map_err(ScheduleError::io(&sys))?;
    let disk = real
        .parent()
        .and_then(|p| p.file_name())
        .ok_or_else(|| err(format!("no disk above {}", real.display())))?;
    Ok((Path::new("/dev").join(disk), num))
}

/// Copies `from` to `to` through a temporary file and a rename: an ESP that fills up
/// half way keeps the old file, and the temporary one is removed.
fn copy_file(from: &Path, to: &Path) -> Result<(), ScheduleError> {
    use std::io::Write;
    let tmp = to.with_extension("tmp");
    let res = (|| {
        let data = std::fs::read(from).map_err(ScheduleError::io(from))?;
        let mut f = std::fs::File::create(&tmp).map_err(ScheduleError::io(&tmp))?;
        f.write_all(&data)
            .and_then(|()| f.sync_all())
            .map_err(ScheduleError::io(&tmp))?;
        std::fs::rename(&tmp, to).map_err(ScheduleError::io(to))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Mounts an ISO (or the live medium) read-only for the copy; unmounts when dropped.
struct MountedSource(PathBuf);

impl Drop for MountedSource {
    fn drop(&mut self) {
        let _ = run_tool("umount", &[&self.0.to_string_lossy()], None, &[0]);
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn mount_source(dev: &Path, loop_file: bool) -> Result<MountedSource, ScheduleError> {
    let mp = Path::new(super::target::RUN_DIR).join("rescue-source");
    std::fs::create_dir_all(&mp).map_err(ScheduleError::io(&mp))?;
    let opts = if loop_file { "ro,loop" } else { "ro" };
    run_tool(
        "mount",
        &[
            "-t",
            "iso9660",
            "-o",
            opts,
            &dev.to_string_lossy(),
            &mp.to_string_lossy(),
        ],
        None,
        &[0],
    )
    .map_err(|e| err(format!("mounting {}: {e}", dev.display())))?;
    Ok(MountedSource(mp))
}

/// Installs the files and the boot entry, and records them. Returns the record.
pub fn install(roots: &Roots, opts: &Install) -> Result<RescueEntry, ScheduleError> {
    let root_uuid = match &opts.root_uuid {
        Some(u) => u.clone(),
        None => fs_uuid_at(roots.root())?,
    };
    let firmware = match opts.target {
        Target::Uefi { .. } => Firmware::Uefi,
        Target::Bios { .. } => Firmware::Bios,
    };
    // A root on device-mapper: the partition the entry boots from holds the schedule.
    let boot_uuid = match super::mode::dm_at(roots.root()) {
        None => None,
        Some(dm) => Some(super::boot_mirror::boot_partition_uuid(
            match &opts.target {
                Target::Uefi { esp, .. } => esp,
                Target::Bios { boot } => boot,
            },
            &dm,
        )?),
    };
    let finds = match &boot_uuid {
        Some(b) => Finds::Boot(b),
        None => Finds::Root(&root_uuid),
    };
    let cmdline = cmdline(firmware, finds, &opts.append)?;
    // Everything that can be refused is checked before anything is written.
    let (dir, hd) = match &opts.target {
        Target::Uefi { esp, esp_part, .. } => {
            let (disk, n) = match esp_part {
                Some((d, n)) => (d.clone(), *n),
                None => esp_partition(esp)?,
            };
            (esp.join(ESP_DIR), Some(hard_drive(&disk, n)?))
        }
        Target::Bios { boot } => (boot.join(BOOT_DIR), None),
    };
    let _mounted;
    let (kernel, initrd) = match &opts.source {
        Source::Files { kernel, initramfs } => (kernel.clone(), initramfs.clone()),
        Source::Iso(iso) => {
            let m = mount_source(iso, true)?;
            let p = m.0.clone();
            _mounted = m;
            (p.join("boot/vmlinuz"), p.join("boot/initrd.img"))
        }
        Source::LiveMedium => {
            let f = Path::new(super::target::RUN_DIR).join("boot-device");
            let dev = std::fs::read_to_string(&f).map_err(|_| {
                err("not running from an ironclone live medium: give --kernel and --initramfs, or --iso")
            })?;
            let m = mount_source(Path::new(dev.trim()), false)?;
            let p = m.0.clone();
            _mounted = m;
            (p.join("boot/vmlinuz"), p.join("boot/initrd.img"))
        }
    };
    for f in [&kernel, &initrd] {
        if !f.is_file() {
            return Err(err(format!("{} is not a file", f.display())));
        }
    }
    std::fs::create_dir_all(&dir).map_err(ScheduleError::io(&dir))?;
    copy_file(&kernel, &dir.join(KERNEL_FILE))?;
    copy_file(&initrd, &dir.join(INITRD_FILE))?;
    let boot_number = match (&opts.target, hd) {
        (Target::Uefi { efivars, .. }, Some(hd)) => {
            let vars = EfiVars::new(efivars);
            let opt = efi::load_option(LABEL, hd, EFI_LOADER, &cmdline)?;
            Some(efi::write(&vars, &opt, EFI_LOADER)?)
        }
        _ => {
            let path = roots.root().join(grub::SNIPPET);
            super::write_atomic(&path, grub::snippet(LABEL, BOOT_DIR, &cmdline).as_bytes())?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(ScheduleError::io(&path))?;
            if !roots.is_alternate() {
                grub::update_config()?;
            }
            None
        }
    };
    let rec = RescueEntry {
        version: RECORD_VERSION,
        firmware,
        dir,
        root_uuid,
        boot_uuid,
        cmdline,
        boot_number,
        installed_unix: super::run::now_unix(),
    };
    let mut bytes = serde_json::to_vec_pretty(&rec).unwrap_or_default();
    bytes.push(b'\n');
    super::write_atomic(&record_path(roots), &bytes)?;
    super::boot_mirror::sync_state(roots)?;
    Ok(rec)
}

/// Removes the boot entry, the files and the record. Returns what was removed.
pub fn remove(roots: &Roots, efivars: &Path) -> Result<Option<RescueEntry>, ScheduleError> {
    let Some(rec) = RescueEntry::load(roots)? else {
        return Ok(None);
    };
    match rec.firmware {
        Firmware::Uefi => {
            efi::remove(&EfiVars::new(efivars), EFI_LOADER)?;
        }
        Firmware::Bios => {
            let path = roots.root().join(grub::SNIPPET);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ScheduleError::io(&path)(e))
                }
                _ => {}
            }
            if !roots.is_alternate() {
                grub::update_config()?;
            }
        }
    }
    let mirror = super::boot_mirror::FILES.iter().flat_map(|f| {
        let p = Path::new(f);
        [p.to_path_buf(), p.with_extension("tmp")]
    });
    for f in [PathBuf::from(KERNEL_FILE), PathBuf::from(INITRD_FILE)]
        .into_iter()
        .chain(mirror)
    {
        let p = rec.dir.join(f);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ScheduleError::io(&p)(e))
            }
            _ => {}
        }
    }
    let _ = std::fs::remove_dir(&rec.dir);
    let p = record_path(roots);
    std::fs::remove_file(&p).map_err(ScheduleError::io(&p))?;
    Ok(Some(rec))
}

/// What `rescue status` shows beyond the record.
pub struct Health {
    pub files_present: bool,
    /// UEFI: the entry's number in NVRAM now (None: gone), and a pending BootNext to it.
    pub nvram_entry: Option<u16>,
    pub boot_next_pending: bool,
    pub grub_snippet_present: bool,
}

pub fn health(roots: &Roots, rec: &RescueEntry, efivars: &Path) -> Result<Health, ScheduleError> {
    let files_present = rec.dir.join(KERNEL_FILE).is_file() && rec.dir.join(INITRD_FILE).is_file();
    let (mut nvram_entry, mut boot_next_pending) = (None, false);
    if rec.firmware == Firmware::Uefi {
        let vars = EfiVars::new(efivars);
        nvram_entry = efi::find(&vars, EFI_LOADER)?.map(|(n, _)| n);
        boot_next_pending = nvram_entry.is_some() && efi::boot_next(&vars)? == nvram_entry;
    }
    Ok(Health {
        files_present,
        nvram_entry,
        boot_next_pending,
        grub_snippet_present: roots.root().join(grub::SNIPPET).is_file(),
    })
}

/// The /boot a BIOS entry was installed under: its files are in `<boot>/ironclone`.
pub fn bios_boot_dir(rec: &RescueEntry) -> Result<&Path, ScheduleError> {
    rec.dir
        .parent()
        .filter(|_| rec.dir.file_name() == Some(std::ffi::OsStr::new(BOOT_DIR)))
        .ok_or_else(|| {
            err(format!(
                "the rescue entry's directory {} is not <boot>/{BOOT_DIR}",
                rec.dir.display()
            ))
        })
}

/// Makes the next boot (one boot only) start the rescue entry. Returns what was set,
/// for the state and the log.
pub fn request_next_boot(roots: &Roots, efivars: &Path) -> Result<String, ScheduleError> {
    let rec = RescueEntry::load(roots)?
        .ok_or_else(|| err("no rescue entry is installed (run `ironclone rescue install`)"))?;
    if !rec.dir.join(KERNEL_FILE).is_file() || !rec.dir.join(INITRD_FILE).is_file() {
        return Err(err(format!(
            "the rescue entry's files in {} are missing (is the ESP mounted? run `ironclone rescue install` again)",
            rec.dir.display()
        )));
    }
    match rec.firmware {
        Firmware::Uefi => {
            let vars = EfiVars::new(efivars);
            let (n, _) = efi::find(&vars, EFI_LOADER)?.ok_or_else(|| {
                err("the rescue entry is gone from the firmware's boot entries (run `ironclone rescue install` again)")
            })?;
            efi::set_boot_next(&vars, n)?;
            Ok(format!("BootNext=Boot{n:04X}"))
        }
        Firmware::Bios => {
            let boot = bios_boot_dir(&rec)?;
            if let Some(why) = grub::config_problem(boot, GRUB_ID) {
                return Err(err(why));
            }
            let env = grub::reboot_into(boot, GRUB_ID)?;
            Ok(format!(
                "grub-reboot {GRUB_ID}: next_entry in {}",
                env.display()
            ))
        }
    }
}

#[cfg(test)]
mod tests;

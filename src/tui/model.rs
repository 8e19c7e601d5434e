//! Plain data the TUI shows. The screens only ever see these views, never the library's
//! own types, so the front end can be built and tested before (and apart from) the real
//! disk discovery, repository and restore code; the real `Services` fills them in.

use std::path::PathBuf;

/// One partition of a disk as the picker lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartView {
    pub number: u32,
    /// Filesystem name for display ("ext4", "ntfs", "vfat", "" when unknown).
    pub fs: String,
    pub label: String,
    pub size: u64,
    /// Used bytes, when the filesystem could be read.
    pub used: Option<u64>,
    /// The logical volumes of an LVM2 PV, when it is one.
    pub volumes: Vec<VolumeView>,
    /// An encrypted (LUKS) partition's state in words: "locked", or "open as dm-0"
    /// when something on this machine has unlocked it.
    pub lock: Option<String>,
}

/// A logical volume inside a PV partition, as the picker lists it under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeView {
    pub name: String,
    /// Filesystem inside ("xfs", "swap", "" when none was recognised).
    pub fs: String,
    pub size: u64,
    /// Bytes a backup reads from it (its filesystem's used blocks, or all of it).
    pub used: u64,
}

/// One whole disk with what a rescuer must know before touching it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskView {
    /// Kernel path, e.g. "/dev/sdb". Changes between boots; identity is model + serial.
    pub dev: String,
    pub model: String,
    pub serial: String,
    pub size: u64,
    /// "SATA", "NVMe", "USB", "virtio"...
    pub transport: String,
    pub mounted: bool,
    /// The disk the live system itself runs from.
    pub boot_medium: bool,
    pub read_only: bool,
    pub removable: bool,
    pub partitions: Vec<PartView>,
    /// Filesystem states in plain words (hibernated NTFS, unreplayed ext4 journal...).
    pub warnings: Vec<String>,
}

impl DiskView {
    /// The short kernel name ("sdb") the destructive confirmation accepts.
    pub fn short_name(&self) -> &str {
        self.dev.rsplit('/').next().unwrap_or(&self.dev)
    }

    /// Why this disk must not be written to, if it must not.
    pub fn refuse_as_target(&self) -> Option<String> {
        if self.boot_medium {
            Some(format!(
                "{} is the disk ironclone is running from.",
                self.dev
            ))
        } else if self.mounted {
            Some(format!(
                "{} has a mounted partition; unmount it first.",
                self.dev
            ))
        } else if self.read_only {
            Some(format!("{} is read-only.", self.dev))
        } else {
            None
        }
    }
}

/// A partition that could hold (or already holds) an image repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoCandidate {
    /// Partition path, e.g. "/dev/sdd1".
    pub dev: String,
    pub disk_model: String,
    pub label: String,
    pub fs: String,
    pub size: u64,
    pub free: u64,
    /// Already mounted here, if it is.
    pub mount_point: Option<PathBuf>,
    /// An ironclone repository was found on it.
    pub has_repo: bool,
}

/// Where the user wants the repository: a partition (mounted for them), a path (a
/// share typed there is mounted as guest), or a share with a login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoTarget {
    Partition(String),
    Path(PathBuf),
    Share {
        location: String,
        /// `user` or `DOMAIN\user`.
        user: String,
        password: crate::share::Password,
    },
    /// `s3://...` or `sftp://...` with what the credentials screen asked.
    Remote {
        location: String,
        creds: super::remote::RemoteCreds,
    },
}

impl RepoTarget {
    /// The network share this target names, if it is one (typed or with a login).
    pub fn share_location(&self) -> Option<String> {
        match self {
            RepoTarget::Share { location, .. } => Some(location.clone()),
            RepoTarget::Path(p) => {
                let text = p.to_string_lossy();
                crate::share::is_share_location(&text).then(|| text.into_owned())
            }
            RepoTarget::Partition(_) | RepoTarget::Remote { .. } => None,
        }
    }

    /// What the user picked, as the picker's notes name it: the partition, the path
    /// or the network location.
    pub fn label(&self) -> String {
        match self {
            RepoTarget::Partition(dev) => dev.clone(),
            RepoTarget::Path(p) => p.display().to_string(),
            RepoTarget::Share { location, .. } | RepoTarget::Remote { location, .. } => {
                location.clone()
            }
        }
    }

    /// A location opened over the network (a share or a remote store): it waits for
    /// DHCP and the server.
    pub fn network_location(&self) -> Option<String> {
        match self {
            RepoTarget::Remote { location, .. } => Some(location.clone()),
            _ => self.share_location(),
        }
    }

    /// The SMB login a `Share` carries (`DOMAIN\\user` split); a guest login otherwise.
    pub fn login(&self) -> crate::share::SmbCredentials {
        match self {
            RepoTarget::Share { user, password, .. } => {
                crate::share::SmbCredentials::login(user, None, Some(password.clone()))
            }
            RepoTarget::Partition(_) | RepoTarget::Path(_) | RepoTarget::Remote { .. } => {
                Default::default()
            }
        }
    }
}

/// One stored image, as listed in a repository.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageView {
    pub name: String,
    /// "YYYY-MM-DD HH:MM", already formatted.
    pub date: String,
    pub source_model: String,
    pub source_serial: String,
    pub source_size: u64,
    /// Bytes the image occupies in the repository (after compression and dedup).
    pub stored_bytes: u64,
    /// Bytes of used data the image holds (what a restore writes).
    pub data_bytes: u64,
    /// How much deduplication saved: logical / stored chunks, e.g. 1.8.
    pub dedup_ratio: f64,
    /// A Clonezilla image folder beside the repository (read-only, not deduplicated).
    pub clonezilla: bool,
    /// The saved partition this row is, for a Clonezilla saveparts image (one row per
    /// partition): it restores onto a partition of a disk, not a whole disk.
    pub partition: Option<String>,
    /// The image holds the plaintext of LUKS volumes (a native image backed up with
    /// `--unlock`, a Clonezilla image of an opened LUKS partition): its restore needs
    /// the key the volume's header accepts.
    pub needs_luks_key: bool,
    /// A native image without a partition table (a filesystem or LUKS partition backed
    /// up alone): it restores into a partition (the usual case) or onto a whole disk.
    pub table_less: bool,
}

/// How the restored layout follows the target disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LayoutMode {
    #[default]
    Proportional,
    Keep,
}

impl LayoutMode {
    pub fn name(self) -> &'static str {
        match self {
            LayoutMode::Proportional => "proportional",
            LayoutMode::Keep => "keep",
        }
    }
    pub fn toggled(self) -> Self {
        match self {
            LayoutMode::Proportional => LayoutMode::Keep,
            LayoutMode::Keep => LayoutMode::Proportional,
        }
    }
}

/// An explicit size for one partition (`--size 3=40G`, `--size 2=max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeChoice {
    Bytes(u64),
    Max,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    pub mode: LayoutMode,
    /// (partition number, size), at most one entry per partition.
    pub sizes: Vec<(u32, SizeChoice)>,
}

impl RestoreOptions {
    pub fn set_size(&mut self, number: u32, size: SizeChoice) {
        self.sizes.retain(|(n, _)| *n != number);
        self.sizes.push((number, size));
        self.sizes.sort_by_key(|(n, _)| *n);
    }
}

/// What the planner will do to one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanAction {
    Copy,
    Grow,
    Shrink,
    /// A new filesystem with the target's sector size, the files copied in.
    Recreate,
}

impl PlanAction {
    pub fn name(self) -> &'static str {
        match self {
            PlanAction::Copy => "copy",
            PlanAction::Grow => "grow",
            PlanAction::Shrink => "shrink",
            PlanAction::Recreate => "recreate",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRow {
    pub number: u32,
    pub fs: String,
    pub label: String,
    pub old_start: u64,
    pub old_size: u64,
    pub new_start: u64,
    pub new_size: u64,
    pub used: u64,
    pub action: PlanAction,
}

/// The planner's answer for one image onto one disk, shown before anything is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanView {
    pub table: String,
    pub target_size: u64,
    pub rows: Vec<PlanRow>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRequest {
    pub source_dev: String,
    pub source_serial: String,
    pub repo: PathBuf,
    pub name: String,
    /// The passphrase of the NEW repository this backup makes at `repo`, when the
    /// person chose to encrypt it (asked twice; never printed, zeroed when dropped).
    /// None: an existing repository, or a new one left unencrypted.
    pub encrypt: Option<crate::share::Password>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreRequest {
    pub repo: PathBuf,
    pub image: String,
    pub target_dev: String,
    /// Re-checked by the job just before writing: names like sdb move between boots.
    pub target_serial: String,
    pub target_size: u64,
    pub options: RestoreOptions,
    /// The partition (its number on the target disk) a saved partition goes onto; the
    /// rest of the disk is left as it is. None: the whole disk.
    pub target_part: Option<u32>,
    /// The LUKS passphrase of an image that needs one (checked against its header
    /// before the plan); never printed (`Password`), zeroed when dropped.
    pub luks_key: Option<crate::share::Password>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyRequest {
    pub repo: PathBuf,
    pub image: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloneRequest {
    pub source_dev: String,
    pub source_serial: String,
    pub target_dev: String,
    pub target_serial: String,
    pub target_size: u64,
    pub options: RestoreOptions,
}

/// What a finished job tells the done screen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobReport {
    /// Plain lines: "Image dell-2026-11-23 stored: 41.2 GiB data, 18.9 GiB on disk".
    pub summary: Vec<String>,
    /// Boot repairs done after a restore or clone ("GRUB core re-embedded at LBA 34"...).
    pub boot_repairs: Vec<String>,
    /// Files or metadata hit by unreadable ranges, and other warnings.
    pub warnings: Vec<String>,
}

/// A schedule of image backups the TUI sets up on the installed system (what
/// `ironclone schedule init` takes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRequest {
    pub disk: DiskView,
    /// The repository as a scheduled run finds it: `uuid=<fs-uuid>:/path` for a
    /// partition, a share, or an absolute path.
    pub repo: String,
    /// systemd calendar syntax ("daily", "Mon..Fri 02:00").
    pub calendar: String,
    /// "500G" or "20%" of the repository's filesystem.
    pub budget: String,
    pub keep_last: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
}

//! The real side of the TUI's schedule flow: how a scheduled run will name the
//! repository and the disk (names that survive a reboot), and the install, which is
//! `schedule init`'s (`crate::schedule::install`).

use crate::discover::mountinfo;
use crate::schedule::install::{check, install};
use crate::schedule::{target, Roots, ScheduleConfig};
use crate::tui::model::{RepoTarget, ScheduleRequest};
use crate::tui::services::ServiceError;
use std::path::{Path, PathBuf};

/// The folder a repository gets on a partition or share the TUI opened (`REPO_SUBDIR`).
const SUBDIR: &str = super::REPO_SUBDIR;

pub(super) fn unavailable() -> Option<String> {
    // Only the live system's init records the medium it booted from.
    Path::new(target::RUN_DIR)
        .join("boot-device")
        .exists()
        .then(|| {
            "This is the ironclone live system: a schedule set up here is gone at power-off. \
             Run `ironclone` on the installed system (with systemd) to set one up."
                .into()
        })
}

pub(super) fn location(t: &RepoTarget, repo: &Path) -> Result<String, ServiceError> {
    match t {
        RepoTarget::Share { location, .. } => Err(ServiceError::Plain(format!(
            "{location} needs a login, and a scheduled run has nobody to type the password \
             (the schedule file is no place for one): pick a share a guest can write to"
        ))),
        // The endpoint and keys typed on the credentials screen live in memory only.
        RepoTarget::Remote { location, .. } => Err(ServiceError::Plain(format!(
            "{location}: a scheduled run cannot use the endpoint and keys typed here \
             (they are kept in memory only): pick a partition or a share"
        ))),
        RepoTarget::Path(p) => {
            let text = p.to_string_lossy().trim_end_matches('/').to_string();
            match crate::share::is_share_location(&text) {
                // The TUI opened the share's `ironclone` folder: the run mounts that folder.
                true if repo.ends_with(SUBDIR) && !text.ends_with(SUBDIR) => {
                    Ok(format!("{text}/{SUBDIR}"))
                }
                _ => Ok(repo.display().to_string()),
            }
        }
        RepoTarget::Partition(dev) => {
            let dev = Path::new(dev);
            let uuid = target::uuid_of_device(dev)
                .map_err(|e| ServiceError::Plain(e.to_string()))?
                .ok_or_else(|| {
                    ServiceError::Plain(format!("{} has no filesystem UUID", dev.display()))
                })?;
            let inner = path_inside(dev, repo)?;
            Ok(format!("uuid={uuid}:{}", inner.display()))
        }
    }
}

/// `repo`'s path inside the filesystem of `dev`, which is mounted above it.
fn path_inside(dev: &Path, repo: &Path) -> Result<PathBuf, ServiceError> {
    let mounts = mountinfo::load(Path::new("/proc/self/mountinfo"))
        .map_err(|e| ServiceError::Plain(format!("/proc/self/mountinfo: {e}")))?;
    let want = std::fs::canonicalize(dev).unwrap_or_else(|_| dev.to_path_buf());
    mounts
        .iter()
        .filter(|m| std::fs::canonicalize(&m.source).is_ok_and(|s| s == want))
        .filter_map(|m| repo.strip_prefix(&m.mount_point).ok())
        .min_by_key(|rel| rel.components().count())
        .map(|rel| Path::new("/").join(rel))
        .ok_or_else(|| {
            ServiceError::Plain(format!(
                "{} is not on {} as mounted now",
                repo.display(),
                dev.display()
            ))
        })
}

/// A name for `dev` that a reboot does not change: its /dev/disk/by-id link (the
/// model-and-serial kind first), or `dev` itself when it has none.
fn stable_name(dev: &str) -> PathBuf {
    let want = std::fs::canonicalize(dev).ok();
    let mut names: Vec<PathBuf> = std::fs::read_dir("/dev/disk/by-id")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| want.is_some() && std::fs::canonicalize(p).ok() == want)
        .collect();
    // wwn- and eui. names are stable too, but say nothing a person recognises.
    names.sort_by_key(|p| {
        let n = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        (n.starts_with("wwn-") || n.starts_with("nvme-eui."), n)
    });
    names
        .into_iter()
        .next()
        .unwrap_or_else(|| PathBuf::from(dev))
}

fn config(req: &ScheduleRequest) -> Result<ScheduleConfig, ServiceError> {
    let field = |name: &str, why: String| ServiceError::Plain(format!("{name}: {why}"));
    Ok(ScheduleConfig {
        version: crate::schedule::config::CONFIG_VERSION,
        repo: req.repo.parse().map_err(|why| field("repository", why))?,
        disks: vec![stable_name(&req.disk.dev)],
        calendar: req.calendar.clone(),
        budget: req.budget.parse().map_err(|why| field("budget", why))?,
        keep_last: req.keep_last,
        keep_weekly: req.keep_weekly,
        keep_monthly: req.keep_monthly,
        allow_battery: false,
    })
}

pub(super) fn check_request(req: &ScheduleRequest) -> Result<Option<String>, ServiceError> {
    let checked =
        check(&Roots::new(None), &config(req)?).map_err(|e| ServiceError::Plain(e.to_string()))?;
    Ok(checked.next_run)
}

pub(super) fn install_request(req: &ScheduleRequest) -> Result<Vec<String>, ServiceError> {
    let cfg = config(req)?;
    let exe = std::env::current_exe()
        .map_err(|e| ServiceError::Plain(format!("the path of this program: {e}")))?;
    let done =
        install(&Roots::new(None), &cfg, &exe).map_err(|e| ServiceError::Plain(e.to_string()))?;
    let disk = cfg.disks.first().map(|d| d.display().to_string());
    Ok(vec![
        format!("Schedule saved in {}.", done.config.display()),
        format!(
            "Disk {} (its name survives a reboot).",
            disk.unwrap_or_default()
        ),
        match done.next_run {
            Some(n) => format!(
                "Timer {} started; next run {n}.",
                crate::schedule::units::TIMER
            ),
            None => format!("Timer {} started.", crate::schedule::units::TIMER),
        },
        "`ironclone schedule status` shows the last run and what failed.".into(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(cmd: &str, args: &[&str]) -> String {
        let o = Command::new(cmd).args(args).output().expect(cmd);
        assert!(o.status.success(), "{cmd} {args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// A partition picked in the TUI becomes `uuid=<its fs UUID>:/<folder>`, which is
    /// what `schedule run` mounts; a folder on another filesystem is refused.
    #[test]
    #[ignore = "needs root"]
    fn a_picked_partition_is_named_by_its_filesystem_uuid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("fs.img");
        let uuid = "7d0c4f0e-1f7a-4c1b-9d0e-5e2a9b1c3d4f";
        sh("truncate", &["-s", "16M", &img.to_string_lossy()]);
        sh(
            "mkfs.ext4",
            &["-q", "-F", "-U", uuid, &img.to_string_lossy()],
        );
        let dev = sh("losetup", &["--show", "-f", &img.to_string_lossy()]);
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mkdir");
        sh("mount", &[&dev, &mnt.to_string_lossy()]);
        let repo = mnt.join("ironclone");
        std::fs::create_dir(&repo).expect("mkdir repo");
        let got = location(&RepoTarget::Partition(dev.clone()), &repo);
        let elsewhere = location(&RepoTarget::Partition(dev.clone()), dir.path());
        sh("umount", &[&mnt.to_string_lossy()]);
        sh("losetup", &["-d", &dev]);
        assert_eq!(got.expect("location"), format!("uuid={uuid}:/ironclone"));
        let e = elsewhere.expect_err("a folder outside the partition");
        assert!(e.to_string().contains("is not on"), "{e}");
    }

    #[test]
    fn a_share_with_a_login_is_refused_and_a_guest_share_keeps_its_folder() {
        let login = RepoTarget::Share {
            location: "//nas/backups".into(),
            user: "ana".into(),
            password: crate::share::Password::new("secret"),
        };
        let e = location(&login, Path::new("/run/x")).expect_err("login");
        assert!(e.to_string().contains("nobody to type the password"), "{e}");
        assert!(!e.to_string().contains("secret"));
        let guest = RepoTarget::Path("//nas/backups".into());
        let repo = Path::new("/run/ironclone/shares/nas-backups/ironclone");
        assert_eq!(
            location(&guest, repo).expect("guest"),
            "//nas/backups/ironclone"
        );
        let local = RepoTarget::Path("/srv/images".into());
        assert_eq!(
            location(&local, Path::new("/srv/images")).expect("path"),
            "/srv/images"
        );
    }
}

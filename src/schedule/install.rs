//! `schedule init`'s work, shared by the CLI and the TUI: check a schedule, then write
//! schedule.json and the systemd units under the root and enable the timer. Everything
//! that can be refused (a field, the calendar) is checked before the first file is
//! written, so a refused schedule leaves the previous one in place.

use super::{calendar, units, Roots, ScheduleConfig, ScheduleError};
use std::path::{Path, PathBuf};

/// What `install` wrote and what systemd said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    pub config: PathBuf,
    pub service: PathBuf,
    pub timer: PathBuf,
    /// False when systemctl is missing under an alternate root (enable it there).
    pub enabled: bool,
    /// The calendar's next run as systemd-analyze computes it (None without the tool).
    pub next_run: Option<String>,
    /// The calendar was not checked: systemd-analyze is not installed.
    pub calendar_unchecked: bool,
    /// Disks (with why) that only the rescue entry can image, while none is installed.
    pub needs_rescue_entry: Vec<String>,
    /// Disks whose images hold the decrypted data of a LUKS volume (an LV on one).
    pub decrypted: Vec<String>,
}

/// The outcome of checking a schedule before it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The calendar's next run as systemd-analyze computes it.
    pub next_run: Option<String>,
    /// systemd-analyze is not installed: systemd checks the calendar when it loads
    /// the timer.
    pub calendar_unchecked: bool,
    /// Disks (with why) that only the rescue entry can image, while none is installed:
    /// every run would fail until `rescue install`, and the timer may fire first.
    pub needs_rescue_entry: Vec<String>,
    /// Disks (with the LUKS volume) whose images hold decrypted data: an LV on a LUKS
    /// volume is read through the open mapping, and a scheduled repository has no
    /// passphrase (nobody is there to type it).
    pub decrypted: Vec<String>,
}

/// Checks `cfg`: every field, and the calendar with systemd-analyze when installed.
pub fn check(roots: &Roots, cfg: &ScheduleConfig) -> Result<Checked, ScheduleError> {
    cfg.validate()
        .map_err(|(field, why)| ScheduleError::Field {
            path: roots.config_path(),
            field: field.to_string(),
            why,
        })?;
    let cal = calendar::check(&cfg.calendar)?;
    if !roots.is_alternate() {
        let needs: Vec<(String, String)> = cfg
            .disks
            .iter()
            .filter_map(|d| match super::mode::choose(d) {
                Ok(super::mode::Mode::Rescue(why)) => Some((d.display().to_string(), why)),
                _ => None,
            })
            .collect();
        let entry = super::rescue_entry::RescueEntry::load(roots).ok().flatten();
        rescue_reachable(
            cfg,
            super::mode::root_on_device_mapper(),
            entry.map(|e| e.boot_uuid.is_some()),
            &needs,
        )?;
    }
    Ok(Checked {
        calendar_unchecked: cal.is_none(),
        next_run: cal.and_then(|c| c.next_elapse),
        needs_rescue_entry: rescue_missing(roots, cfg),
        decrypted: cfg
            .disks
            .iter()
            .filter_map(|d| {
                super::mode::crypt_below(d)
                    .map(|c| format!("{} (on the LUKS volume {c})", d.display()))
                    .or_else(|| match super::mode::choose(d) {
                        // The whole disk of an encrypted-LVM install, imaged online.
                        Ok(super::mode::Mode::EncryptedLvm(e)) => {
                            Some(format!("{} ({})", d.display(), e.summary()))
                        }
                        _ => None,
                    })
            })
            .collect(),
    })
}

/// The configured disks that need the rescue entry when none is installed. Only on the
/// running system: under an alternate root the mounts that decide it are another
/// system's. Not an error: `rescue install` may well come next.
fn rescue_missing(roots: &Roots, cfg: &ScheduleConfig) -> Vec<String> {
    if roots.is_alternate() || !matches!(super::rescue_entry::RescueEntry::load(roots), Ok(None)) {
        return Vec::new();
    }
    cfg.disks
        .iter()
        .filter_map(|d| match super::mode::choose(d) {
            Ok(super::mode::Mode::Rescue(why)) => Some(format!("{}: {why}", d.display())),
            _ => None,
        })
        .collect()
}

/// Decides whether the disks that need the rescue entry (`needs`: disk, why) can be
/// reached by it when the root filesystem is on device-mapper (`root_dm`, LUKS or
/// LVM), which the live system cannot open or find. The rescue entry then keeps the
/// schedule on the partition it boots from (`boot_mirror`), so this refuses only
/// what that cannot cover: a schedule holding a secret (it would lie unencrypted on
/// the ESP or /boot), and an installed entry (`entry_mirrored`: Some(false)) from
/// before the mirror, which finds the schedule on the root. No entry yet is fine:
/// `rescue install` sets the mirror up (or refuses a /boot inside the root).
fn rescue_reachable(
    cfg: &ScheduleConfig,
    root_dm: Option<String>,
    entry_mirrored: Option<bool>,
    needs: &[(String, String)],
) -> Result<(), ScheduleError> {
    let (Some(root), Some((disk, why))) = (root_dm, needs.first()) else {
        return Ok(());
    };
    let refuse = |what: String| {
        ScheduleError::Disk {
        disk: disk.clone(),
        why: format!(
            "{why}; the root filesystem (/) is on {root}, which the rescue system cannot open, so \
             the rescue entry reads this schedule from the ESP (or /boot); {what} (docs/SCHEDULE.md)"
        ),
    }
    };
    if let Err(e) = super::boot_mirror::check_no_secret(cfg) {
        return Err(refuse(e.to_string()));
    }
    if entry_mirrored == Some(false) {
        return Err(refuse(
            "but the installed rescue entry still looks for the root filesystem: run \
             `ironclone rescue install` again"
                .into(),
        ));
    }
    Ok(())
}

/// Checks `cfg`, then writes it and the units that run `exe`, and enables the timer.
pub fn install(
    roots: &Roots,
    cfg: &ScheduleConfig,
    exe: &Path,
) -> Result<Installed, ScheduleError> {
    let checked = check(roots, cfg)?;
    // Before the first write: a rescue entry whose copy of the schedule cannot be
    // written (the ESP not mounted) would run the old schedule.
    if super::boot_mirror::target_dir(roots)?.is_some() {
        super::boot_mirror::check_no_secret(cfg)?;
    }
    let config = roots.config_path();
    super::write_atomic(&config, &cfg.to_json())?;
    // The rescue entry of a root on device-mapper reads the schedule's copy.
    super::boot_mirror::sync_state(roots)?;
    let [service, timer] = units::write_units(roots, cfg, exe)?;
    let enabled = units::enable(roots)?;
    Ok(Installed {
        config,
        service,
        timer,
        enabled,
        next_run: checked.next_run,
        calendar_unchecked: checked.calendar_unchecked,
        needs_rescue_entry: checked.needs_rescue_entry,
        decrypted: checked.decrypted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::config::{Budget, RepoLocation, CONFIG_VERSION};

    fn cfg(repo: &str) -> ScheduleConfig {
        ScheduleConfig {
            version: CONFIG_VERSION,
            repo: repo.parse().unwrap(),
            disks: vec!["/dev/sda".into()],
            calendar: "daily".into(),
            budget: Budget::Percent(50),
            keep_last: 1,
            keep_weekly: 0,
            keep_monthly: 0,
            allow_battery: false,
        }
    }

    #[test]
    fn rescue_reachable_decisions() {
        let c = cfg("uuid=abcd:/repo");
        let needs = vec![(
            "/dev/sda".to_string(),
            "sda2 is mounted read-write at /boot".to_string(),
        )];
        let luks = || Some("the LUKS volume luks-1".to_string());
        // A plain root, or nothing needing the rescue entry: nothing to decide.
        assert!(rescue_reachable(&c, None, Some(false), &needs).is_ok());
        assert!(rescue_reachable(&c, luks(), Some(false), &[]).is_ok());
        // A root on LUKS or LVM: no entry yet (rescue install sets the mirror up), or an
        // entry that keeps the mirror.
        assert!(rescue_reachable(&c, luks(), None, &needs).is_ok());
        assert!(rescue_reachable(&c, luks(), Some(true), &needs).is_ok());
        let lvm = Some("the LVM volume vg0-root".to_string());
        assert!(rescue_reachable(&c, lvm, Some(true), &needs).is_ok());
        // An entry from before the mirror looks for the root: refused, saying what to do.
        let e = rescue_reachable(&c, luks(), Some(false), &needs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("disk /dev/sda") && e.contains("luks-1"), "{e}");
        assert!(e.contains("rescue install` again"), "{e}");
        // A secret in the schedule never goes to the boot partition.
        let mut s = cfg("//nas/share");
        s.repo = RepoLocation::Share("//user:pw@nas/share".into());
        let e = rescue_reachable(&s, luks(), Some(true), &needs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds a login"), "{e}");
        assert!(rescue_reachable(&cfg("//nas/share"), luks(), Some(true), &needs).is_ok());
    }
}

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
        rescue_reachable(cfg, super::mode::root_on_device_mapper())?;
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

/// Refuses a schedule whose disks need the rescue entry when the root filesystem is
/// on device-mapper (`root_dm`, LUKS or LVM): the rescue run finds the installed
/// system by its root filesystem's UUID, which the live system sees neither inside a
/// LUKS volume (no key at boot) nor in an LV (it activates none), so it could never
/// read this schedule and every run would end in a request nobody answers. A key for
/// the rescue system would have to lie unencrypted next to it on /boot or the ESP,
/// which undoes the disk's encryption (docs/SCHEDULE.md).
fn rescue_reachable(cfg: &ScheduleConfig, root_dm: Option<String>) -> Result<(), ScheduleError> {
    let Some(root) = root_dm else {
        return Ok(());
    };
    for d in &cfg.disks {
        if let Ok(super::mode::Mode::Rescue(why)) = super::mode::choose(d) {
            return Err(ScheduleError::Disk {
                disk: d.display().to_string(),
                why: format!(
                    "{why}; but the root filesystem (/) is on {root}, which the rescue system cannot \
                     open or find, so it could never read this schedule. Schedule the logical volumes \
                     instead (/dev/<vg>/<lv>: imaged online from a snapshot), or back this disk up from \
                     the live system by hand (`ironclone backup --unlock`); docs/SCHEDULE.md"
                ),
            });
        }
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
    let config = roots.config_path();
    super::write_atomic(&config, &cfg.to_json())?;
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

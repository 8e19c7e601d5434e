//! The installed system's side of a rescue run: a scheduled run that found a disk only
//! the rescue entry can image sets the one-time boot into it and records the request
//! as pending (and, for a root on device-mapper, in the mirror on the boot partition
//! that the rescue run reads: `boot_mirror`). The caller reboots.

use super::config::ScheduleConfig;
use super::error::ScheduleError;
use super::mode::Mode;
use super::run::{now_unix, Outcome, RunOptions};
use super::state::{PendingDisk, PendingRescue, RunRecord, ScheduleState};
use super::{boot_mirror, rescue_entry, Roots};

/// The identities of the configured block devices, for the rescue run.
fn identities(cfg: &ScheduleConfig) -> Vec<PendingDisk> {
    let Ok(disks) = crate::discover::list_disks(&crate::discover::SysPaths::default()) else {
        return Vec::new();
    };
    cfg.disks
        .iter()
        .filter_map(|d| {
            let canon = std::fs::canonicalize(d).ok()?;
            let found = disks.iter().find(|x| x.path == canon)?;
            Some(PendingDisk {
                configured: d.display().to_string(),
                identity: found.identity(),
            })
        })
        .collect()
}

/// Sets the one-time boot into the rescue entry and records it as pending.
/// A request the rescue system never answered is recorded as a failed run first, so
/// `status` says so; then it is asked again (once per scheduled run: no loop).
/// The mirror (when the entry keeps one) is written before the boot is requested, so
/// that a requested boot always finds this request's disks there.
pub fn request(
    roots: &Roots,
    opts: &RunOptions,
    cfg: &ScheduleConfig,
    modes: &[Mode],
    mut rec: RunRecord,
) -> Result<Outcome, ScheduleError> {
    let why: Vec<String> = modes
        .iter()
        .filter_map(|m| match m {
            Mode::Rescue(w) => Some(w.clone()),
            _ => None,
        })
        .collect();
    let st = ScheduleState::load(roots).unwrap_or_default();
    if let Some(p) = st.pending_rescue {
        let lost = RunRecord {
            start_unix: p.requested_unix,
            end_unix: now_unix(),
            repo: rec.repo.clone(),
            error: Some(format!(
                "the rescue run requested {} ({}) never reported back: did the \"{}\" entry boot? \
                 (the firmware's boot menu lists it; the live system's console shows why it failed)",
                crate::timefmt::utc_human(p.requested_unix),
                p.how,
                rescue_entry::LABEL
            )),
            ..RunRecord::default()
        };
        ScheduleState::record(roots, &lost)?;
        ScheduleState::set_pending(roots, None)?;
    }
    let mut pending = PendingRescue {
        requested_unix: now_unix(),
        how: String::new(),
        why,
        disks: identities(cfg),
    };
    let asked = boot_mirror::sync(roots, Some(&pending))
        .and_then(|_| rescue_entry::request_next_boot(roots, &opts.efivars));
    pending.how = match asked {
        Ok(h) => h,
        Err(e) => {
            rec.end_unix = now_unix();
            rec.error = Some(format!("{}; {e}", pending.why.join("; ")));
            ScheduleState::record(roots, &rec)?;
            return Ok(Outcome::Done(rec));
        }
    };
    ScheduleState::set_pending(roots, Some(pending.clone()))?;
    Ok(Outcome::RescueRequested(pending))
}

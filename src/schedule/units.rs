//! The systemd service and timer that run `ironclone schedule run`.
//!
//! The service runs at the lowest CPU and I/O priority (a backup must not make the
//! machine feel slow), is skipped on battery unless allowed, and the timer is
//! Persistent (a run missed while the machine was off happens at the next boot) with
//! a small random delay (machines on one share do not all start at midnight).
//! With an alternate root the files are written under it and enabled through
//! `systemctl --root`, which only makes symlinks there; on the running system
//! systemd is reloaded and the timer started.

use super::config::ScheduleConfig;
use super::error::ScheduleError;
use super::Roots;
use crate::resize::{run_tool, ToolError};
use std::path::{Path, PathBuf};

pub const SERVICE: &str = "ironclone-backup.service";
pub const TIMER: &str = "ironclone-backup.timer";

pub fn service_text(cfg: &ScheduleConfig, exe: &Path) -> String {
    let power = if cfg.allow_battery {
        ""
    } else {
        "ConditionACPower=true\n"
    };
    format!(
        "# Written by `ironclone schedule init` (run it again to change the power condition).\n\
         [Unit]\n\
         Description=ironclone scheduled image backup\n\
         {power}\
         After=local-fs.target network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={} schedule run\n\
         Nice=19\n\
         IOSchedulingClass=idle\n\
         CPUSchedulingPolicy=batch\n",
        exe.display()
    )
}

pub fn timer_text(cfg: &ScheduleConfig) -> String {
    format!(
        "# Written by `ironclone schedule init`.\n\
         [Unit]\n\
         Description=ironclone scheduled image backup ({})\n\
         \n\
         [Timer]\n\
         OnCalendar={}\n\
         Persistent=true\n\
         RandomizedDelaySec=10min\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        cfg.calendar, cfg.calendar
    )
}

/// Writes both units; returns their paths.
pub fn write_units(
    roots: &Roots,
    cfg: &ScheduleConfig,
    exe: &Path,
) -> Result<[PathBuf; 2], ScheduleError> {
    let dir = roots.unit_dir();
    let svc = dir.join(SERVICE);
    let tmr = dir.join(TIMER);
    super::write_atomic(&svc, service_text(cfg, exe).as_bytes())?;
    super::write_atomic(&tmr, timer_text(cfg).as_bytes())?;
    Ok([svc, tmr])
}

/// Enables the timer: under an alternate root only its symlink (`systemctl --root`);
/// on the running system also reload and start it. Under an alternate root without
/// systemctl (a build root, the live system) returns `Ok(false)`: the files are in
/// place and the caller says how to enable them.
pub fn enable(roots: &Roots) -> Result<bool, ScheduleError> {
    if roots.is_alternate() {
        let root = roots.root().to_string_lossy().into_owned();
        return match run_tool("systemctl", &["--root", &root, "enable", TIMER], None, &[0]) {
            Ok(_) => Ok(true),
            Err(ToolError::Spawn { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        };
    }
    run_tool("systemctl", &["daemon-reload"], None, &[0])?;
    run_tool("systemctl", &["enable", "--now", TIMER], None, &[0])?;
    Ok(true)
}

/// The timer's next elapse from the running systemd, if it knows one.
pub fn next_elapse_running() -> Option<String> {
    let out = run_tool(
        "systemctl",
        &["show", TIMER, "-p", "NextElapseUSecRealtime", "--value"],
        None,
        &[0],
    )
    .ok()?;
    let v = out.stdout.trim();
    (!v.is_empty() && v != "n/a").then(|| v.to_string())
}

//! schedule-state.json: the outcome of the last run (and when the last good one was),
//! written at the end of every run so that `schedule status` can say what happened
//! without reading the journal. Written atomically: a run killed while writing it
//! leaves the previous outcome, never half of one.

use super::error::ScheduleError;
use super::Roots;
use serde::{Deserialize, Serialize};

pub const STATE_VERSION: u32 = 1;
const MAX_STATE: u64 = 4 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    pub version: u32,
    pub last_run: Option<RunRecord>,
    /// End of the last run that succeeded.
    pub last_success_unix: Option<u64>,
    /// A run asked for a boot into the rescue entry, which has not reported yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_rescue: Option<PendingRescue>,
}

/// What a scheduled run set before rebooting into the rescue entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRescue {
    pub requested_unix: u64,
    /// `BootNext=Boot0003` or `grub-reboot ironclone-rescue`.
    pub how: String,
    /// Why: what was mounted read-write.
    pub why: Vec<String>,
    /// The configured disks' identities as the installed system saw them: the live
    /// system has no udev (no /dev/disk/by-id) and numbers /dev/sdX in probe order,
    /// so the rescue run finds each disk by these.
    #[serde(default)]
    pub disks: Vec<PendingDisk>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDisk {
    /// As in schedule.json.
    pub configured: String,
    pub identity: crate::discover::DiskIdentity,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub start_unix: u64,
    pub end_unix: u64,
    pub ok: bool,
    pub repo: String,
    pub images: Vec<ImageRecord>,
    /// Images removed by retention.
    pub pruned: Vec<String>,
    /// The repository's size after the run, and its budget.
    pub repo_bytes: u64,
    pub budget_bytes: u64,
    pub warnings: Vec<String>,
    /// Why the run failed, as printed to the journal.
    pub error: Option<String>,
    /// Made by the rescue entry's unattended run.
    #[serde(default)]
    pub rescue: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub disk: String,
    pub image: String,
    /// "direct", "lvm-snapshot", "lvm-thin-delta" or "rescue".
    pub mode: String,
    pub bytes_read: u64,
    pub new_bytes: u64,
    pub new_stored_bytes: u64,
    /// Not read: unchanged since the previous image (lvm-thin-delta).
    #[serde(default)]
    pub unchanged_bytes: u64,
}

impl ScheduleState {
    /// The recorded state; none recorded yet is the default (never run).
    pub fn load(roots: &Roots) -> Result<ScheduleState, ScheduleError> {
        let path = roots.state_path();
        let meta = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ScheduleState::default())
            }
            other => other.map_err(ScheduleError::io(&path))?,
        };
        if meta.len() > MAX_STATE {
            return Err(ScheduleError::Syntax {
                path,
                why: "too large for a state file".into(),
            });
        }
        let bytes = std::fs::read(&path).map_err(ScheduleError::io(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| ScheduleError::Syntax {
            path,
            why: e.to_string(),
        })
    }

    /// Records `run` as the last run.
    pub fn record(roots: &Roots, run: &RunRecord) -> Result<(), ScheduleError> {
        // A damaged state file must not stop the outcome from being recorded.
        let mut st = Self::load(roots).unwrap_or_default();
        st.version = STATE_VERSION;
        if run.ok {
            st.last_success_unix = Some(run.end_unix);
        }
        st.last_run = Some(run.clone());
        if run.rescue {
            st.pending_rescue = None;
        }
        st.write(roots)
    }

    /// Records (or clears) a pending rescue boot.
    pub fn set_pending(roots: &Roots, p: Option<PendingRescue>) -> Result<(), ScheduleError> {
        let mut st = Self::load(roots).unwrap_or_default();
        st.version = STATE_VERSION;
        st.pending_rescue = p;
        st.write(roots)
    }

    fn write(&self, roots: &Roots) -> Result<(), ScheduleError> {
        let st = self;
        let mut bytes = serde_json::to_vec_pretty(&st).unwrap_or_default();
        bytes.push(b'\n');
        super::write_atomic(&roots.state_path(), &bytes)
    }
}

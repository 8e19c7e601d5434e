//! Progress reporting, decoupled from rendering.
//!
//! The core (backup, restore, verify) reports events to a `Progress` and never draws
//! anything. The CLI renders them with indicatif or as JSON lines, the TUI as gauges,
//! and tests collect them. That is what lets one job run under every front end.

use serde::Serialize;
use std::sync::Mutex;

/// One thing that happened in a job. Serialised as a JSON line by `--json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// A job starts; `total_bytes` is what it expects to move overall.
    JobStart {
        job: String,
        total_bytes: u64,
    },
    /// A step inside the job (a partition, a verification pass).
    PhaseStart {
        name: String,
        total_bytes: u64,
    },
    /// `bytes` more were processed in the current phase.
    Advance {
        bytes: u64,
    },
    /// A range could not be read (rescue reading).
    ReadError {
        offset: u64,
        len: u64,
    },
    /// Something the user should know, which does not stop the job.
    Warning {
        message: String,
    },
    PhaseEnd {
        name: String,
    },
    JobEnd {
        ok: bool,
    },
}

pub trait Progress: Send + Sync {
    fn report(&self, event: ProgressEvent);
}

/// Discards everything (library callers that do not care).
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _event: ProgressEvent) {}
}

/// Keeps every event, for tests and for the summary at the end of a job.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<ProgressEvent>>);

impl Collect {
    pub fn events(&self) -> Vec<ProgressEvent> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Progress for Collect {
    fn report(&self, event: ProgressEvent) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }
}

impl<P: Progress + ?Sized> Progress for &P {
    fn report(&self, event: ProgressEvent) {
        (**self).report(event)
    }
}

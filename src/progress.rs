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

/// Passes on `inner`'s events with each phase's progress scaled to `bytes` in all:
/// the phase's own total becomes `bytes`, each `Advance` its share of it, and what is
/// left is reported at the phase's end. For a job in passes (a restore or a verify of
/// a large image) that announces its total before the passes' own are known: the
/// records or packs a pass reads are known only once its index is loaded, and one
/// read by two passes is read by both; each pass is then counted as its share.
pub struct Scaled<'a> {
    inner: &'a dyn Progress,
    bytes: u64,
    /// (the phase's own total, its advances so far, the bytes passed on).
    state: Mutex<(u64, u64, u64)>,
}

impl<'a> Scaled<'a> {
    pub fn new(inner: &'a dyn Progress, bytes: u64) -> Self {
        Scaled {
            inner,
            bytes,
            state: Mutex::new((0, 0, 0)),
        }
    }
}

impl Progress for Scaled<'_> {
    fn report(&self, event: ProgressEvent) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (stored, seen, passed) = &mut *st;
        match event {
            ProgressEvent::PhaseStart { name, total_bytes } => {
                *st = (total_bytes, 0, 0);
                self.inner.report(ProgressEvent::PhaseStart {
                    name,
                    total_bytes: self.bytes,
                });
            }
            ProgressEvent::Advance { bytes } => {
                *seen = seen.saturating_add(bytes).min(*stored);
                let now = match *stored {
                    0 => 0,
                    s => (u128::from(self.bytes) * u128::from(*seen) / u128::from(s)) as u64,
                };
                if now > *passed {
                    let step = now - *passed;
                    *passed = now;
                    self.inner.report(ProgressEvent::Advance { bytes: step });
                }
            }
            ProgressEvent::PhaseEnd { name } => {
                if self.bytes > *passed {
                    let step = self.bytes - *passed;
                    *passed = self.bytes;
                    self.inner.report(ProgressEvent::Advance { bytes: step });
                }
                self.inner.report(ProgressEvent::PhaseEnd { name });
            }
            e => self.inner.report(e),
        }
    }
}

impl<P: Progress + ?Sized> Progress for &P {
    fn report(&self, event: ProgressEvent) {
        (**self).report(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_phase_reports_its_own_bytes_however_many_it_is_told() {
        let got = Collect::default();
        let p = Scaled::new(&got, 1000);
        p.report(ProgressEvent::PhaseStart {
            name: "check".into(),
            total_bytes: 3,
        });
        for _ in 0..3 {
            p.report(ProgressEvent::Advance { bytes: 1 });
        }
        p.report(ProgressEvent::PhaseEnd {
            name: "check".into(),
        });
        let ev = got.events();
        let steps: Vec<u64> = ev
            .iter()
            .filter_map(|e| match e {
                ProgressEvent::Advance { bytes } => Some(*bytes),
                _ => None,
            })
            .collect();
        assert_eq!(steps, [333, 333, 334]);
        assert_eq!(
            ev[0],
            ProgressEvent::PhaseStart {
                name: "check".into(),
                total_bytes: 1000
            }
        );
        // Nothing stored to read (every chunk a zero one): the bytes at the end.
        let got = Collect::default();
        let p = Scaled::new(&got, 70);
        p.report(ProgressEvent::PhaseStart {
            name: "check".into(),
            total_bytes: 0,
        });
        p.report(ProgressEvent::PhaseEnd {
            name: "check".into(),
        });
        assert!(got.events().contains(&ProgressEvent::Advance { bytes: 70 }));
    }
}

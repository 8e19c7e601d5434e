//! What the progress screen knows of the running job: totals, phases, warnings and
//! read errors, folded from the `ProgressEvent`s the job reports.

use super::Flow;
use crate::progress::ProgressEvent;

/// One step of a job (a partition, the verification pass).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhaseView {
    pub name: String,
    pub total: u64,
    pub done: u64,
    pub finished: bool,
}

/// Live progress of the running job, fed by `ProgressEvent`s.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobView {
    pub title: String,
    /// What the job does (a backup's verify pass is `Verify`); decides what a cancel means.
    pub kind: Option<Flow>,
    pub total: u64,
    pub done: u64,
    pub phases: Vec<PhaseView>,
    pub warnings: Vec<String>,
    pub read_errors: u64,
    pub unreadable: u64,
    /// Seconds since the job started; set on ticks so `draw` stays pure.
    pub elapsed_secs: f64,
    pub cancelling: bool,
}

impl JobView {
    pub fn rate(&self) -> Option<f64> {
        (self.elapsed_secs >= 1.0).then(|| self.done as f64 / self.elapsed_secs)
    }
    pub fn eta_secs(&self) -> Option<u64> {
        let rate = self.rate()?;
        (rate > 0.0).then(|| (self.total.saturating_sub(self.done) as f64 / rate) as u64)
    }
    pub(super) fn apply(&mut self, ev: ProgressEvent) {
        match ev {
            ProgressEvent::JobStart { total_bytes, .. } => self.total = total_bytes,
            ProgressEvent::PhaseStart { name, total_bytes } => self.phases.push(PhaseView {
                name,
                total: total_bytes,
                ..Default::default()
            }),
            ProgressEvent::Advance { bytes } => {
                self.done = self.done.saturating_add(bytes);
                if let Some(p) = self.phases.last_mut() {
                    p.done = p.done.saturating_add(bytes);
                }
            }
            ProgressEvent::ReadError { len, .. } => {
                self.read_errors += 1;
                self.unreadable = self.unreadable.saturating_add(len);
            }
            ProgressEvent::Warning { message } => {
                if !self.warnings.contains(&message) {
                    self.warnings.push(message)
                }
            }
            ProgressEvent::PhaseEnd { .. } => {
                if let Some(p) = self.phases.last_mut() {
                    p.finished = true;
                }
            }
            ProgressEvent::JobEnd { .. } => {}
        }
    }
}

//! What the progress screen knows of the running job: totals, phases, warnings and
//! read errors, folded from the `ProgressEvent`s the job reports; and how the app
//! starts a job, feeds its progress back and takes its outcome.

use super::{App, ChannelProgress, Flow, Msg, Screen};
use crate::progress::{Progress, ProgressEvent};
use crate::tui::model::VerifyRequest;
use crate::tui::services::{JobHandle, JobOutcome};
use std::sync::Arc;
use std::time::Instant;

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

impl App {
    pub(super) fn job_done(&mut self, outcome: JobOutcome) {
        self.handle = None;
        self.job_started = None;
        self.cancel_ask = false;
        if self.verify_next {
            self.verify_next = false;
            if outcome.is_ok() && !self.job.cancelling {
                self.report = Some(outcome);
                let req = VerifyRequest {
                    repo: self.choices.repo.clone().unwrap_or_default(),
                    image: self.choices.name.clone(),
                };
                let progress = self.progress_sink();
                let h = self.services.start_verify(req, progress);
                self.begin_job(Flow::Verify, "Verifying the new image", h);
                return;
            }
        }
        if self.flow == Flow::Backup && self.report.is_some() {
            self.verify_report = Some(outcome);
        } else {
            self.report = Some(outcome);
        }
        if let Some(Screen::Progress) = self.stack.last() {
            self.stack.pop();
        }
        self.push(Screen::Done);
    }

    pub(super) fn progress_sink(&self) -> Arc<dyn Progress> {
        Arc::new(ChannelProgress(self.tx.clone()))
    }

    pub(super) fn begin_job(&mut self, kind: Flow, title: &str, handle: JobHandle) {
        self.job = JobView {
            title: title.into(),
            kind: Some(kind),
            ..Default::default()
        };
        self.job_started = Some(Instant::now());
        let done = handle.done.clone();
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let outcome = done.recv().unwrap_or_else(|_| {
                Err("The job stopped without saying how it ended. Please report this.".into())
            });
            let _ = tx.send(Msg::JobDone(outcome));
        });
        self.handle = Some(handle);
        if !matches!(self.stack.last(), Some(Screen::Progress)) {
            self.push(Screen::Progress);
        }
    }
}

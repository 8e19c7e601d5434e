//! The TUI's state machine: `event` turns keys into state changes, `update` takes
//! everything else (ticks, job progress, job results), `draw(&self)` only renders.
//! Keeping drawing free of side effects is what lets the snapshot tests render every
//! screen from a state built by the same key sequences a user would type.

use super::model::{
    BackupRequest, CloneRequest, DiskView, ImageView, JobReport, PlanView, RepoCandidate,
    RepoTarget, RestoreOptions, RestoreRequest, SizeChoice, VerifyRequest,
};
use super::screens;
use super::services::{JobHandle, JobOutcome, Services};
use crate::progress::{Progress, ProgressEvent};
use crossbeam_channel::{unbounded, Receiver, Sender};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Frame;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything that reaches the main loop, on one channel.
#[derive(Debug)]
pub enum Msg {
    Input(Event),
    Tick,
    Progress(ProgressEvent),
    JobDone(JobOutcome),
}

/// What the main loop must do after an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Leave the TUI for a shell, come back when it exits.
    Shell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Backup,
    Restore,
    Clone,
    Verify,
    Browse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskPurpose {
    BackupSource,
    RestoreTarget,
    CloneSource,
    CloneTarget,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AskWhat {
    PowerOff,
    Quit,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Screen {
    Home {
        sel: usize,
    },
    Disks {
        purpose: DiskPurpose,
        sel: usize,
        note: Option<String>,
    },
    Repos {
        cands: Vec<RepoCandidate>,
        sel: usize,
        /// Some while the user types a path.
        path: Option<String>,
        note: Option<String>,
    },
    Images {
        sel: usize,
    },
    Name {
        input: String,
        note: Option<String>,
    },
    Summary,
    Plan {
        sel: usize,
        /// Some while the user types a size for the selected partition.
        size: Option<String>,
    },
    Confirm {
        input: String,
        refused: bool,
    },
    Progress,
    Done,
    Error {
        what: String,
        next: String,
    },
    Ask {
        what: AskWhat,
    },
}

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
    fn apply(&mut self, ev: ProgressEvent) {
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

/// What the user chose so far in the current flow.
#[derive(Clone, Debug, Default)]
pub struct Choices {
    pub source: Option<DiskView>,
    pub target: Option<DiskView>,
    pub repo: Option<PathBuf>,
    /// The partition the repository lives on, when one was picked (not a typed path).
    pub repo_dev: Option<String>,
    pub images: Vec<ImageView>,
    pub image: Option<ImageView>,
    pub name: String,
    pub options: RestoreOptions,
    pub plan: Option<Result<PlanView, String>>,
}

/// Forwards job progress into the TUI's channel.
struct ChannelProgress(Sender<Msg>);

impl Progress for ChannelProgress {
    fn report(&self, event: ProgressEvent) {
        let _ = self.0.send(Msg::Progress(event));
    }
}

pub const HOME_ITEMS: [(&str, char); 7] = [
    ("Backup a disk", 'b'),
    ("Restore an image", 'r'),
    ("Clone disk to disk", 'c'),
    ("Verify an image", 'v'),
    ("Browse images", 'i'),
    ("Shell", 's'),
    ("Power off", 'p'),
];

pub struct App {
    pub services: Arc<dyn Services>,
    pub stack: Vec<Screen>,
    pub flow: Flow,
    pub disks: Vec<DiskView>,
    pub disks_error: Option<String>,
    pub choices: Choices,
    pub job: JobView,
    pub report: Option<Result<JobReport, String>>,
    /// The verify report that followed a backup.
    pub verify_report: Option<Result<JobReport, String>>,
    /// Ctrl-C was pressed during a job: ask before cancelling.
    pub cancel_ask: bool,
    handle: Option<JobHandle>,
    job_started: Option<Instant>,
    /// A backup is followed by a verification of the new image.
    verify_next: bool,
    pub(crate) last_refresh: Option<Instant>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Applies an editing key to a one-line text input; true when the key was used.
fn edit(input: &mut String, k: &KeyEvent) -> bool {
    match k.code {
        KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
            if input.chars().count() < 64 {
                input.push(c);
            }
            true
        }
        KeyCode::Backspace => {
            input.pop();
            true
        }
        _ => false,
    }
}

/// "40G", "512M", "1.5T", "max": sizes typed in the plan table (binary units).
pub fn parse_size(s: &str) -> Option<SizeChoice> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("max") {
        return Some(SizeChoice::Max);
    }
    let upper = s.to_ascii_uppercase();
    let t = upper.trim_end_matches("IB").trim_end_matches('B');
    let (num, mult) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 1u64 << 10),
        'M' => (&t[..t.len() - 1], 1 << 20),
        'G' => (&t[..t.len() - 1], 1 << 30),
        'T' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    if !(v.is_finite() && v > 0.0) || v * mult as f64 > 1e18 {
        return None;
    }
    Some(SizeChoice::Bytes((v * mult as f64) as u64))
}

/// Image names end up as directory names: keep them to a safe alphabet.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Whether partition `part` (/dev/sdb1, /dev/nvme0n1p2) belongs to disk `disk`.
pub fn on_disk(part: &str, disk: &str) -> bool {
    match part.strip_prefix(disk) {
        Some(rest) => {
            let rest = rest.strip_prefix('p').unwrap_or(rest);
            rest.is_empty() || rest.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !s.starts_with('.')
}

impl App {
    pub fn new(services: Arc<dyn Services>) -> App {
        let (tx, rx) = unbounded();
        App {
            services,
            stack: vec![Screen::Home { sel: 0 }],
            flow: Flow::Backup,
            disks: Vec::new(),
            disks_error: None,
            choices: Choices::default(),
            job: JobView::default(),
            report: None,
            verify_report: None,
            cancel_ask: false,
            handle: None,
            job_started: None,
            verify_next: false,
            last_refresh: None,
            tx,
            rx,
        }
    }

    /// For the input and tick threads.
    pub fn sender(&self) -> Sender<Msg> {
        self.tx.clone()
    }

    pub fn receiver(&self) -> Receiver<Msg> {
        self.rx.clone()
    }

    pub fn screen(&self) -> &Screen {
        // The stack always holds Home at the bottom.
        self.stack.last().unwrap_or(&Screen::Home { sel: 0 })
    }

    pub fn job_running(&self) -> bool {
        self.handle.is_some()
    }

    fn push(&mut self, s: Screen) {
        self.stack.push(s);
    }

    fn back(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
        }
    }

    fn home(&mut self) {
        self.stack.truncate(1);
        self.choices = Choices::default();
    }

    fn error(&mut self, what: impl Into<String>, next: impl Into<String>) {
        self.push(Screen::Error {
            what: what.into(),
            next: next.into(),
        });
    }

    pub fn refresh_disks(&mut self) {
        self.last_refresh = Some(Instant::now());
        match self.services.list_disks() {
            Ok(d) => {
                self.disks = d;
                self.disks_error = None;
            }
            Err(e) => self.disks_error = Some(e),
        }
        let n = self.disks.len();
        if let Some(Screen::Disks { sel, .. }) = self.stack.last_mut() {
            *sel = (*sel).min(n.saturating_sub(1));
        }
    }

    /// Non-input messages: ticks, progress, job results.
    pub fn update(&mut self, msg: Msg) -> Action {
        match msg {
            Msg::Input(ev) => return self.event(ev),
            Msg::Tick => {
                if let Some(t) = self.job_started {
                    self.job.elapsed_secs = t.elapsed().as_secs_f64();
                }
                let due = self
                    .last_refresh
                    .map_or(true, |t| t.elapsed() >= Duration::from_secs(2));
                if matches!(self.screen(), Screen::Disks { .. }) && due {
                    self.refresh_disks();
                }
            }
            Msg::Progress(ev) => {
                if let Some(t) = self.job_started {
                    self.job.elapsed_secs = t.elapsed().as_secs_f64();
                }
                self.job.apply(ev)
            }
            Msg::JobDone(outcome) => self.job_done(outcome),
        }
        Action::None
    }

    fn job_done(&mut self, outcome: JobOutcome) {
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

    fn progress_sink(&self) -> Arc<dyn Progress> {
        Arc::new(ChannelProgress(self.tx.clone()))
    }

    fn begin_job(&mut self, kind: Flow, title: &str, handle: JobHandle) {
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

    /// Processes queued non-input messages until no job runs (tests, or `timeout`).
    pub fn settle(&mut self, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if !self.job_running() {
                while let Ok(m) = self.rx.try_recv() {
                    self.update(m);
                }
                if !self.job_running() {
                    return;
                }
            }
            match self.rx.recv_timeout(left) {
                Ok(m) => {
                    self.update(m);
                }
                Err(_) => return,
            }
        }
    }

    /// Convenience for tests and scripted input.
    pub fn press(&mut self, code: KeyCode) -> Action {
        self.event(Event::Key(key(code)))
    }

    pub fn type_str(&mut self, s: &str) {
        for c in s.chars() {
            self.press(KeyCode::Char(c));
        }
    }

    pub fn event(&mut self, ev: Event) -> Action {
        let Event::Key(k) = ev else {
            return Action::None;
        };
        if k.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl_c = k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
        if self.cancel_ask {
            match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    if let Some(h) = &self.handle {
                        h.request_cancel();
                    }
                    self.job.cancelling = true;
                    self.cancel_ask = false;
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => self.cancel_ask = false,
                _ => {}
            }
            return Action::None;
        }
        if ctrl_c {
            if self.job_running() {
                self.cancel_ask = true;
            } else if !matches!(self.screen(), Screen::Ask { .. }) {
                self.push(Screen::Ask {
                    what: AskWhat::Quit,
                });
            }
            return Action::None;
        }
        let screen = self.screen().clone();
        match screen {
            Screen::Home { sel } => self.on_home(sel, &k),
            Screen::Disks { purpose, sel, .. } => {
                self.on_disks(purpose, sel, &k);
                Action::None
            }
            Screen::Repos { .. } => {
                self.on_repos(&k);
                Action::None
            }
            Screen::Images { sel } => {
                self.on_images(sel, &k);
                Action::None
            }
            Screen::Name { .. } => {
                self.on_name(&k);
                Action::None
            }
            Screen::Summary => {
                match k.code {
                    KeyCode::Enter => self.start_backup(),
                    KeyCode::Esc => self.back(),
                    _ => {}
                }
                Action::None
            }
            Screen::Plan { .. } => {
                self.on_plan(&k);
                Action::None
            }
            Screen::Confirm { .. } => {
                self.on_confirm(&k);
                Action::None
            }
            Screen::Progress => {
                if k.code == KeyCode::Esc && self.job_running() {
                    self.cancel_ask = true;
                }
                Action::None
            }
            Screen::Done => {
                if matches!(k.code, KeyCode::Enter | KeyCode::Esc) {
                    self.home();
                }
                Action::None
            }
            Screen::Error { .. } => {
                if matches!(k.code, KeyCode::Enter | KeyCode::Esc) {
                    self.back();
                }
                Action::None
            }
            Screen::Ask { what } => match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => match what {
                    AskWhat::Quit => Action::Quit,
                    AskWhat::PowerOff => match self.services.power_off() {
                        Ok(()) => Action::Quit,
                        Err(e) => {
                            self.back();
                            self.error(
                                format!("Could not power off: {e}"),
                                "Hold the power button, or choose Shell and run 'poweroff -f'.",
                            );
                            Action::None
                        }
                    },
                },
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.back();
                    Action::None
                }
                _ => Action::None,
            },
        }
    }

    fn on_home(&mut self, sel: usize, k: &KeyEvent) -> Action {
        let n = HOME_ITEMS.len();
        let choice = match k.code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.stack[0] = Screen::Home {
                    sel: (sel + n - 1) % n,
                };
                None
            }
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => {
                self.stack[0] = Screen::Home { sel: (sel + 1) % n };
                None
            }
            KeyCode::Enter => Some(sel),
            KeyCode::Char('q') => {
                self.push(Screen::Ask {
                    what: AskWhat::Quit,
                });
                None
            }
            KeyCode::Char(c) => HOME_ITEMS.iter().position(|(_, h)| *h == c),
            _ => None,
        };
        let Some(i) = choice else {
            return Action::None;
        };
        self.stack[0] = Screen::Home { sel: i };
        self.choices = Choices::default();
        self.report = None;
        self.verify_report = None;
        match i {
            0 => {
                self.flow = Flow::Backup;
                self.open_disks(DiskPurpose::BackupSource);
            }
            1 => {
                self.flow = Flow::Restore;
                self.open_repos();
            }
            2 => {
                self.flow = Flow::Clone;
                self.open_disks(DiskPurpose::CloneSource);
            }
            3 => {
                self.flow = Flow::Verify;
                self.open_repos();
            }
            4 => {
                self.flow = Flow::Browse;
                self.open_repos();
            }
            5 => return Action::Shell,
            _ => self.push(Screen::Ask {
                what: AskWhat::PowerOff,
            }),
        }
        Action::None
    }

    fn open_disks(&mut self, purpose: DiskPurpose) {
        self.push(Screen::Disks {
            purpose,
            sel: 0,
            note: None,
        });
        self.refresh_disks();
    }

    fn open_repos(&mut self) {
        match self.services.list_repo_candidates() {
            Ok(cands) => self.push(Screen::Repos {
                cands,
                sel: 0,
                path: None,
                note: None,
            }),
            Err(e) => self.error(
                format!("Could not list the partitions: {e}"),
                "Press Enter to go back, then try again. If a disk was just plugged in, wait a few seconds.",
            ),
        }
    }

    fn set_note(&mut self, text: Option<String>) {
        match self.stack.last_mut() {
            Some(Screen::Disks { note, .. })
            | Some(Screen::Repos { note, .. })
            | Some(Screen::Name { note, .. }) => *note = text,
            _ => {}
        }
    }

    fn on_disks(&mut self, purpose: DiskPurpose, sel: usize, k: &KeyEvent) {
        let n = self.disks.len();
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Char('r') => self.refresh_disks(),
            KeyCode::Up | KeyCode::Char('k') if sel > 0 => self.set_disk_sel(sel - 1),
            KeyCode::Down | KeyCode::Char('j') if sel + 1 < n => self.set_disk_sel(sel + 1),
            KeyCode::Enter => {
                let Some(disk) = self.disks.get(sel).cloned() else {
                    return;
                };
                match purpose {
                    DiskPurpose::BackupSource => {
                        if disk.boot_medium {
                            self.set_note(Some(format!(
                                "{} is the ironclone stick itself; pick the machine's disk.",
                                disk.dev
                            )));
                            return;
                        }
                        self.choices.source = Some(disk);
                        self.open_repos();
                    }
                    DiskPurpose::CloneSource => {
                        self.choices.source = Some(disk);
                        self.open_disks(DiskPurpose::CloneTarget);
                    }
                    DiskPurpose::RestoreTarget | DiskPurpose::CloneTarget => {
                        if let Some(why) = disk.refuse_as_target() {
                            self.set_note(Some(format!("Cannot write there: {why}")));
                            return;
                        }
                        if let Some(r) = &self.choices.repo_dev {
                            if on_disk(r, &disk.dev) {
                                self.set_note(Some(format!(
                                    "Cannot write there: {} holds the repository ({r}).",
                                    disk.dev
                                )));
                                return;
                            }
                        }
                        // Disks without a serial (loop, many virtual disks) are told
                        // apart by their kernel name.
                        let same = self.choices.source.as_ref().is_some_and(|s| {
                            s.dev == disk.dev || (!s.serial.is_empty() && s.serial == disk.serial)
                        });
                        if purpose == DiskPurpose::CloneTarget && same {
                            self.set_note(Some("That is the source disk.".into()));
                            return;
                        }
                        self.choices.target = Some(disk);
                        self.choices.options = RestoreOptions::default();
                        self.replan();
                        self.push(Screen::Plan { sel: 0, size: None });
                    }
                }
            }
            _ => {}
        }
    }

    fn set_disk_sel(&mut self, v: usize) {
        if let Some(Screen::Disks { sel, note, .. }) = self.stack.last_mut() {
            *sel = v;
            *note = None;
        }
    }

    fn on_repos(&mut self, k: &KeyEvent) {
        let Some(Screen::Repos {
            cands, sel, path, ..
        }) = self.stack.last_mut()
        else {
            return;
        };
        let n = cands.len() + 1;
        if let Some(p) = path {
            match k.code {
                KeyCode::Esc => *path = None,
                KeyCode::Enter => {
                    let target = RepoTarget::Path(PathBuf::from(p.trim()));
                    self.choose_repo(target);
                }
                _ => {
                    edit(p, k);
                }
            }
            return;
        }
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Up | KeyCode::Char('k') => *sel = sel.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => *sel = (*sel + 1).min(n - 1),
            KeyCode::Char('/') => *path = Some(String::from("/")),
            KeyCode::Enter => {
                if let Some(c) = cands.get(*sel) {
                    let target = RepoTarget::Partition(c.dev.clone());
                    self.choose_repo(target);
                } else {
                    *path = Some(String::from("/"));
                }
            }
            _ => {}
        }
    }

    fn choose_repo(&mut self, target: RepoTarget) {
        if let (RepoTarget::Partition(dev), Some(src), Flow::Backup) =
            (&target, &self.choices.source, self.flow)
        {
            if on_disk(dev, &src.dev) {
                self.set_note(Some(format!(
                    "{dev} is on the disk being backed up; store the image on another disk."
                )));
                return;
            }
        }
        let repo = match self.services.open_repo(&target) {
            Ok(r) => r,
            Err(e) => {
                self.set_note(Some(e));
                return;
            }
        };
        let images = match self.services.list_images(&repo) {
            Ok(i) => i,
            Err(e) => {
                self.error(
                    format!("Could not read the repository at {}: {e}", repo.display()),
                    "Press Enter to go back and pick another partition or path.",
                );
                return;
            }
        };
        self.choices.repo = Some(repo);
        self.choices.repo_dev = match &target {
            RepoTarget::Partition(dev) => Some(dev.clone()),
            RepoTarget::Path(_) => None,
        };
        self.choices.images = images;
        if self.flow == Flow::Backup {
            let base = self
                .choices
                .source
                .as_ref()
                .map(|d| slug(&d.model))
                .filter(|s| !s.is_empty())
                .or_else(|| self.services.hostname().map(|h| slug(&h)))
                .unwrap_or_else(|| "disk".into());
            let input = format!("{base}-{}", self.services.today());
            self.push(Screen::Name { input, note: None });
        } else if self.choices.images.is_empty() {
            self.set_note(Some(
                "No images in that repository. Pick another one.".into(),
            ));
        } else {
            self.push(Screen::Images { sel: 0 });
        }
    }

    fn on_images(&mut self, sel: usize, k: &KeyEvent) {
        let n = self.choices.images.len();
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Up | KeyCode::Char('k') => {
                self.stack.pop();
                self.push(Screen::Images {
                    sel: sel.saturating_sub(1),
                });
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.stack.pop();
                self.push(Screen::Images {
                    sel: (sel + 1).min(n.saturating_sub(1)),
                });
            }
            KeyCode::Enter => {
                let Some(img) = self.choices.images.get(sel).cloned() else {
                    return;
                };
                self.choices.image = Some(img.clone());
                match self.flow {
                    Flow::Restore => self.open_disks(DiskPurpose::RestoreTarget),
                    Flow::Browse => {
                        self.flow = Flow::Restore;
                        self.open_disks(DiskPurpose::RestoreTarget);
                    }
                    Flow::Verify => {
                        let req = VerifyRequest {
                            repo: self.choices.repo.clone().unwrap_or_default(),
                            image: img.name,
                        };
                        let h = self.services.start_verify(req, self.progress_sink());
                        self.begin_job(Flow::Verify, "Verifying an image", h);
                    }
                    Flow::Backup | Flow::Clone => {}
                }
            }
            _ => {}
        }
    }

    fn on_name(&mut self, k: &KeyEvent) {
        let Some(Screen::Name { input, note }) = self.stack.last_mut() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Enter => {
                let name = input.trim().to_string();
                if !valid_name(&name) {
                    *note = Some("Use letters, digits, '-', '_' and '.' only (at most 64).".into());
                } else if self.choices.images.iter().any(|i| i.name == name) {
                    *note = Some(format!(
                        "An image called \"{name}\" exists; choose another name."
                    ));
                } else {
                    self.choices.name = name;
                    self.push(Screen::Summary);
                }
            }
            _ => {
                if edit(input, k) {
                    *note = None;
                }
            }
        }
    }

    fn start_backup(&mut self) {
        let Some(src) = self.choices.source.clone() else {
            return;
        };
        let req = BackupRequest {
            source_dev: src.dev,
            source_serial: src.serial,
            repo: self.choices.repo.clone().unwrap_or_default(),
            name: self.choices.name.clone(),
        };
        self.verify_next = true;
        let h = self.services.start_backup(req, self.progress_sink());
        self.begin_job(Flow::Backup, "Backing up", h);
    }

    pub fn replan(&mut self) {
        let Some(target) = self.choices.target.clone() else {
            return;
        };
        let plan = match (self.flow, &self.choices.image, &self.choices.source) {
            (Flow::Clone, _, Some(src)) => {
                self.services
                    .plan_clone(src, &target, &self.choices.options)
            }
            (_, Some(img), _) => self.services.plan_restore(
                self.choices
                    .repo
                    .as_deref()
                    .unwrap_or(std::path::Path::new("")),
                &img.name,
                &target,
                &self.choices.options,
            ),
            _ => Err("Nothing to restore was chosen.".into()),
        };
        self.choices.plan = Some(plan);
    }

    fn on_plan(&mut self, k: &KeyEvent) {
        let rows = match &self.choices.plan {
            Some(Ok(p)) => p.rows.clone(),
            _ => Vec::new(),
        };
        let Some(Screen::Plan { sel, size }) = self.stack.last_mut() else {
            return;
        };
        if let Some(input) = size {
            match k.code {
                KeyCode::Esc => *size = None,
                KeyCode::Enter => {
                    let parsed = parse_size(input);
                    let number = rows.get(*sel).map(|r| r.number);
                    *size = None;
                    if let (Some(s), Some(n)) = (parsed, number) {
                        self.choices.options.set_size(n, s);
                        self.replan();
                    }
                }
                _ => {
                    edit(input, k);
                }
            }
            return;
        }
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Up | KeyCode::Char('k') => *sel = sel.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                *sel = (*sel + 1).min(rows.len().saturating_sub(1))
            }
            KeyCode::Char('s') if !rows.is_empty() => *size = Some(String::new()),
            KeyCode::Char('m') => {
                self.choices.options.mode = self.choices.options.mode.toggled();
                self.replan();
            }
            KeyCode::Char('x') => {
                self.choices.options.sizes.clear();
                self.replan();
            }
            KeyCode::Enter => {
                if matches!(self.choices.plan, Some(Ok(_))) {
                    self.push(Screen::Confirm {
                        input: String::new(),
                        refused: false,
                    });
                }
            }
            _ => {}
        }
    }

    /// The names the user may type to confirm: the serial or the kernel name.
    pub fn confirm_accepts(&self, typed: &str) -> bool {
        let Some(t) = &self.choices.target else {
            return false;
        };
        let typed = typed.trim();
        (!t.serial.is_empty() && typed == t.serial) || typed == t.short_name() || typed == t.dev
    }

    fn on_confirm(&mut self, k: &KeyEvent) {
        let ok = match self.stack.last() {
            Some(Screen::Confirm { input, .. }) => self.confirm_accepts(input),
            _ => return,
        };
        let Some(Screen::Confirm { input, refused }) = self.stack.last_mut() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Enter if !ok => *refused = true,
            KeyCode::Enter => self.start_write(),
            _ => {
                if edit(input, k) {
                    *refused = false;
                }
            }
        }
    }

    fn start_write(&mut self) {
        let Some(target) = self.choices.target.clone() else {
            return;
        };
        let options = self.choices.options.clone();
        let progress = self.progress_sink();
        let (kind, title, h) = if self.flow == Flow::Clone {
            let Some(src) = self.choices.source.clone() else {
                return;
            };
            let req = CloneRequest {
                source_dev: src.dev,
                source_serial: src.serial,
                target_dev: target.dev,
                target_serial: target.serial,
                target_size: target.size,
                options,
            };
            (
                Flow::Clone,
                "Cloning",
                self.services.start_clone(req, progress),
            )
        } else {
            let Some(img) = self.choices.image.clone() else {
                return;
            };
            let req = RestoreRequest {
                repo: self.choices.repo.clone().unwrap_or_default(),
                image: img.name,
                target_dev: target.dev,
                target_serial: target.serial,
                target_size: target.size,
                options,
            };
            (
                Flow::Restore,
                "Restoring",
                self.services.start_restore(req, progress),
            )
        };
        self.begin_job(kind, title, h);
    }

    pub fn draw(&self, f: &mut Frame) {
        match self.screen() {
            Screen::Home { sel } => screens::home::draw(self, *sel, f),
            Screen::Disks { purpose, sel, note } => {
                screens::disks::draw(self, *purpose, *sel, note.as_deref(), f)
            }
            Screen::Repos {
                cands,
                sel,
                path,
                note,
            } => screens::repos::draw(self, cands, *sel, path.as_deref(), note.as_deref(), f),
            Screen::Images { sel } => screens::images::draw(self, *sel, f),
            Screen::Name { input, note } => screens::name::draw(self, input, note.as_deref(), f),
            Screen::Summary => screens::summary::draw(self, f),
            Screen::Plan { sel, size } => screens::plan::draw(self, *sel, size.as_deref(), f),
            Screen::Confirm { input, refused } => screens::confirm::draw(self, input, *refused, f),
            Screen::Progress => screens::progress::draw(self, f),
            Screen::Done => screens::done::draw(self, f),
            Screen::Error { what, next } => screens::error::draw(what, next, f),
            Screen::Ask { what } => screens::ask::draw(*what, f),
        }
        if self.cancel_ask {
            screens::cancel::draw(self.job.kind.unwrap_or(self.flow), f);
        }
    }
}

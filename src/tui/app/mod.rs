//! The TUI's state machine: `event` turns keys into state changes, `update` takes
//! everything else (ticks, job progress, job results), `draw(&self)` only renders.
//! Keeping drawing free of side effects is what lets the snapshot tests render every
//! screen from a state built by the same key sequences a user would type.

use super::model::{
    BackupRequest, CloneRequest, DiskView, ImageView, PlanView, RepoTarget, RestoreOptions,
    RestoreRequest, SizeChoice, VerifyRequest,
};
use super::services::{JobHandle, JobOutcome, RepoFacts, ServiceError, Services};
use crate::progress::{Progress, ProgressEvent};
use crossbeam_channel::{unbounded, Receiver, Sender};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod deploy;
mod draw;
mod input;
mod job;
mod login;
mod new_repo;
mod part_target;
mod path_field;
mod pick;
mod plan;
mod refresh;
mod remote;
pub mod schedule;
mod screen;
mod unlock;
mod write;

pub use deploy::{result_of as deploy_result_of, DeployForm, DEPLOY_BOOT_ROW, DEPLOY_FIELDS};
use input::{edit, key, valid_name};
pub use input::{on_disk, parse_size, slug};
pub use job::{JobView, PhaseView};
pub use path_field::{PathField, TypedKind};
pub use schedule::ScheduleForm;
pub use screen::Screen;

/// Everything that reaches the main loop, on one channel.
#[derive(Debug)]
pub enum Msg {
    Input(Event),
    Tick,
    Progress(ProgressEvent),
    JobDone(JobOutcome),
    /// A repository opened (or not) on its own thread: mounting a share waits for DHCP
    /// and the server, a partition's mount for a slow disk, and the picker then reads
    /// its image list; none of it may freeze the screen.
    RepoOpened {
        target: RepoTarget,
        /// The repository and what the picker asks of it (`Services::repo_facts`).
        result: Result<(PathBuf, RepoFacts), ServiceError>,
    },
    /// An encrypted repository's passphrase checked (or not) on its own thread: the key
    /// slot's Argon2id takes a second or more, and on S3 or SFTP fetching the slots is a
    /// request that a slow server retries.
    RepoUnlocked {
        repo: PathBuf,
        /// What the picker asks of the repository, asked once it is unlocked.
        result: Result<RepoFacts, ServiceError>,
    },
    /// A restore or clone plan made on its own thread: it loads the image's manifest
    /// (a download from S3 or SFTP, hundreds of MB for a large disk) or reads a
    /// Clonezilla image's partition headers. `seq` names the request: the answer to
    /// one replaced by a later edit, or left with Esc, is dropped.
    Planned {
        seq: u64,
        result: Result<PlanView, ServiceError>,
    },
    /// An image's LUKS passphrase checked against the image's header on its own
    /// thread (the header's Argon2id takes seconds). The key comes back with the
    /// answer: kept for the restore when it opens the header, dropped otherwise.
    LuksChecked {
        image: String,
        key: crate::share::Password,
        result: Result<(), ServiceError>,
    },
    /// A deploy's live status or its end.
    Deploy(super::deploy_model::DeployEvent),
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
    /// Scheduled backups of the installed system (`schedule init`).
    Schedule,
    /// One image onto many machines over the network (`ironclone deploy`).
    Deploy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskPurpose {
    BackupSource,
    RestoreTarget,
    CloneSource,
    CloneTarget,
    ScheduleSource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AskWhat {
    PowerOff,
    Quit,
}

/// What the user chose so far in the current flow.
#[derive(Clone, Debug, Default)]
pub struct Choices {
    pub source: Option<DiskView>,
    pub target: Option<DiskView>,
    /// The partition of `target` a saved partition goes onto (its number).
    pub target_part: Option<u32>,
    pub repo: Option<PathBuf>,
    /// The partition the repository lives on, when one was picked (not a typed path).
    pub repo_dev: Option<String>,
    pub images: Vec<ImageView>,
    pub image: Option<ImageView>,
    /// The LUKS passphrase `image` needs, once its header accepted it.
    pub luks_key: Option<crate::share::Password>,
    pub name: String,
    pub options: RestoreOptions,
    pub plan: Option<Result<PlanView, String>>,
    /// The repository as a scheduled run names it (schedule flow).
    pub schedule_repo: Option<String>,
    /// A backup's NEW repository (the location had none) and whether to encrypt it:
    /// its passphrase, or None for unencrypted (`App::ask_new_repo`).
    pub new_repo: Option<(PathBuf, Option<crate::share::Password>)>,
}

/// A share being opened: the screen depth it was asked from, and what was asked (a
/// result for anything else is from an open the user stopped waiting for).
#[derive(Debug)]
struct Opening {
    depth: usize,
    target: RepoTarget,
}

/// Forwards job progress into the TUI's channel.
struct ChannelProgress(Sender<Msg>);

impl Progress for ChannelProgress {
    fn report(&self, event: ProgressEvent) {
        let _ = self.0.send(Msg::Progress(event));
    }
}

pub const HOME_ITEMS: [(&str, char); 9] = [
    ("Backup a disk", 'b'),
    ("Restore an image", 'r'),
    ("Clone disk to disk", 'c'),
    ("Verify an image", 'v'),
    ("Browse images", 'i'),
    ("Schedule backups of this machine", 'a'),
    ("Deploy an image to many machines", 'd'),
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
    pub report: Option<JobOutcome>,
    /// The verify report that followed a backup.
    pub verify_report: Option<JobOutcome>,
    /// Ctrl-C was pressed during a job: ask before cancelling.
    pub cancel_ask: bool,
    handle: Option<JobHandle>,
    /// A running deploy's cancel flag (its job reports through `Msg::Deploy`).
    deploy_cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    job_started: Option<Instant>,
    /// A backup is followed by a verification of the new image.
    verify_next: bool,
    pub(crate) last_refresh: Option<Instant>,
    /// While a share is being opened off the UI thread. Its result is dropped if the
    /// user went elsewhere or stopped waiting (Esc) meanwhile.
    opening: Option<Opening>,
    /// What the opening thread learnt of the repository it opened, used once by
    /// `repo_opened` (`take_facts`).
    facts: Option<(PathBuf, RepoFacts)>,
    /// While a passphrase is checked off the UI thread (`Msg::RepoUnlocked`): the
    /// depth of its screen. Its result is dropped if the user left meanwhile.
    unlocking: Option<usize>,
    /// The plan being made off the UI thread (`Msg::Planned`), by request number.
    planning: Option<u64>,
    /// Plans asked so far: the next request's number.
    plans_asked: u64,
    /// While an image's LUKS passphrase is checked off the UI thread
    /// (`Msg::LuksChecked`): the depth of its screen.
    checking_luks: Option<usize>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
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
            deploy_cancel: None,
            job_started: None,
            verify_next: false,
            last_refresh: None,
            opening: None,
            facts: None,
            unlocking: None,
            planning: None,
            plans_asked: 0,
            checking_luks: None,
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

    /// A repository is being opened (the picker says "Opening ..." or, for a network
    /// location, "Connecting to ...").
    pub fn connecting(&self) -> bool {
        self.opening.is_some()
    }

    /// A plan is being made (the plan screen says so and waits for it).
    pub fn planning(&self) -> bool {
        self.planning.is_some()
    }

    pub fn job_running(&self) -> bool {
        self.handle.is_some() || self.deploy_cancel.is_some()
    }

    /// Asks the services on a thread of their own (a network store, a key derivation, a
    /// plan: nothing the screen may wait for); the answer `ask` makes comes back through
    /// the main loop, whose handler drops it if the user has gone elsewhere meanwhile.
    fn ask_off_thread(&self, ask: impl FnOnce(&dyn Services) -> Msg + Send + 'static) {
        let (services, tx) = (Arc::clone(&self.services), self.tx.clone());
        std::thread::spawn(move || {
            let _ = tx.send(ask(services.as_ref()));
        });
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
                if matches!(
                    self.screen(),
                    Screen::Disks { .. } | Screen::PartTargets { .. }
                ) && due
                {
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
            Msg::Deploy(e) => self.deploy_event(e),
            Msg::RepoUnlocked { repo, result } => self.repo_unlocked(repo, result),
            Msg::Planned { seq, result } => self.planned(seq, result),
            Msg::LuksChecked { image, key, result } => self.luks_checked(&image, key, result),
            Msg::RepoOpened { target, result } => {
                if self.opening.as_ref().is_some_and(|o| o.target == target) {
                    let asked_from = self.opening.take().map(|o| o.depth);
                    if asked_from == Some(self.stack.len()) {
                        let result = result.map(|(repo, facts)| {
                            self.facts = Some((repo.clone(), facts));
                            repo
                        });
                        self.repo_opened(target, result);
                    }
                }
            }
        }
        Action::None
    }

    /// Processes queued non-input messages until no job runs and nothing is asked off
    /// the UI thread (tests, or `timeout`).
    pub fn settle(&mut self, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let busy = |app: &App| {
                app.job_running()
                    || app.opening.is_some()
                    || app.unlocking.is_some()
                    || app.planning.is_some()
                    || app.checking_luks.is_some()
            };
            if !busy(self) {
                while let Ok(m) = self.rx.try_recv() {
                    self.update(m);
                }
                if !busy(self) {
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
                    self.cancel_deploy();
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
            Screen::PartTargets { sel, .. } => {
                self.on_part_targets(sel, &k);
                Action::None
            }
            Screen::Repos { .. } => {
                self.on_repos(&k);
                Action::None
            }
            Screen::ShareLogin { .. } => {
                self.on_share_login(&k);
                Action::None
            }
            Screen::RepoUnlock { .. } => {
                self.on_repo_unlock(&k);
                Action::None
            }
            Screen::LuksKey { .. } => {
                self.on_luks_key(&k);
                Action::None
            }
            Screen::NewRepo { .. } => {
                self.on_new_repo(&k);
                Action::None
            }
            Screen::NewPassphrase { .. } => {
                self.on_new_passphrase(&k);
                Action::None
            }
            Screen::RemoteLogin(_) => {
                self.on_remote_login(&k);
                Action::None
            }
            Screen::HostKey { .. } => {
                self.on_host_key(&k);
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
            Screen::ScheduleForm(_) => {
                self.on_schedule_form(&k);
                Action::None
            }
            Screen::ScheduleSummary { .. } => {
                self.on_schedule_summary(&k);
                Action::None
            }
            Screen::ScheduleDone { .. } => {
                if matches!(k.code, KeyCode::Enter | KeyCode::Esc) {
                    self.home();
                }
                Action::None
            }
            Screen::DeployForm(_) => {
                self.on_deploy_form(&k);
                Action::None
            }
            Screen::DeploySummary(_) => {
                self.on_deploy_summary(&k);
                Action::None
            }
            // The deploy runs until its clients reported (or it is cancelled: Esc or c
            // asks first); its table follows.
            Screen::DeployLive(_) => {
                self.on_deploy_live(&k);
                Action::None
            }
            Screen::DeployDone(_) => {
                self.on_deploy_done(&k);
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
}

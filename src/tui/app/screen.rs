//! Every screen of the TUI and the state each one holds; `App::stack` is a stack of
//! these, the last one drawn and sent the keys.

use super::*;
use crate::tui::model::RepoCandidate;

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
    /// The partition a saved partition (a Clonezilla saveparts image's) goes onto: every
    /// partition of every disk, one row each (`App::part_targets`).
    PartTargets {
        sel: usize,
        note: Option<String>,
    },
    Repos {
        cands: Vec<RepoCandidate>,
        sel: usize,
        /// Some while the user types a path.
        path: Option<PathField>,
        note: Option<String>,
    },
    /// A typed SMB share that a guest could not mount: user name and password.
    ShareLogin {
        location: String,
        user: String,
        password: crate::share::Password,
        on_password: bool,
        note: Option<String>,
    },
    /// An encrypted repository's passphrase, before its images are listed.
    RepoUnlock {
        target: RepoTarget,
        repo: PathBuf,
        password: crate::share::Password,
        note: Option<String>,
    },
    /// A backup's location holds no repository yet: encrypt the new one or not.
    NewRepo {
        target: RepoTarget,
        repo: PathBuf,
        sel: usize,
    },
    /// The new repository's passphrase, typed twice.
    NewPassphrase {
        target: RepoTarget,
        repo: PathBuf,
        first: crate::share::Password,
        again: crate::share::Password,
        on_again: bool,
        note: Option<String>,
    },
    /// The LUKS passphrase of the picked image (`ImageView::needs_luks_key`), checked
    /// against its header before the target is picked.
    LuksKey {
        password: crate::share::Password,
        note: Option<String>,
    },
    /// A typed `s3://` or `sftp://` repository's endpoint and credentials.
    RemoteLogin(crate::tui::remote::RemoteForm),
    /// An SFTP server's host key, not in known_hosts: accepted by typing "yes".
    HostKey {
        key: crate::tui::remote::HostKey,
        target: RepoTarget,
        input: String,
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
    /// When and how much: the schedule's calendar, budget and retention.
    ScheduleForm(ScheduleForm),
    /// What will be installed, with the calendar's next run.
    ScheduleSummary {
        req: crate::tui::model::ScheduleRequest,
        next_run: Option<String>,
    },
    ScheduleDone {
        lines: Vec<String>,
    },
    /// How many clients, how long to wait, which disk, network boot or not.
    DeployForm(DeployForm),
    DeploySummary(crate::tui::deploy_model::DeployRequest),
    /// Clients joining and receiving.
    DeployLive(crate::tui::deploy_model::DeployLive),
    /// The sender's table.
    DeployDone(crate::tui::deploy_model::DeployResult),
}

//! Plain data of the "Deploy to many machines" flow (the server side) and of a deploy
//! client's console screen: what the screens show, filled by the real services from
//! `crate::deploy` and by the demo from made-up clients.

use std::path::PathBuf;

/// A network interface the server could serve network boot on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceView {
    pub name: String,
    /// Its IPv4 address with prefix ("192.168.1.5/24"), None when it has none.
    pub addr: Option<String>,
}

/// Which disk each client overwrites (`deploy-client --target`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetChoice {
    Auto,
    Largest,
    Device(String),
}

impl TargetChoice {
    pub fn text(&self) -> String {
        match self {
            TargetChoice::Auto => "auto".into(),
            TargetChoice::Largest => "largest".into(),
            TargetChoice::Device(d) => d.clone(),
        }
    }

    pub fn explain(&self) -> String {
        match self {
            TargetChoice::Auto => "the only empty disk of each client".into(),
            TargetChoice::Largest => "the largest empty disk of each client".into(),
            TargetChoice::Device(d) => format!("{d} on each client, if it is empty"),
        }
    }
}

/// Everything `ironclone deploy` takes, as the TUI's form filled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployRequest {
    pub repo: PathBuf,
    pub image: String,
    /// The image's stored size: what each client holds in RAM while receiving.
    pub stored_bytes: u64,
    pub clients: u32,
    pub min_wait: Option<u32>,
    pub max_wait: Option<u32>,
    pub target: TargetChoice,
    /// Serve network boot on this interface (with its address) for the deploy's length.
    pub serve_boot: Option<IfaceView>,
}

/// The sender's phase in words the screen shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LivePhase {
    /// Building the stream from the repository.
    Preparing,
    /// Waiting for the clients to join.
    Waiting,
    /// The multicast transfer runs.
    Sending,
    /// The stream is sent; the clients restore and report.
    Reports,
    /// Cancel confirmed: udp-sender and the boot server are being stopped.
    Cancelling,
}

/// One client on the live screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveClient {
    pub addr: String,
    /// Path, model and serial, or "-" when it found no disk.
    pub disk: String,
    pub size: u64,
    /// "joined", "receiving", "restoring", "ok", "FAILED", "MISSING", "refused".
    pub state: String,
}

/// The live screen's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployLive {
    pub phase: LivePhase,
    pub stream_bytes: u64,
    /// Bytes the deploy's interface has sent since the transfer began, when known.
    pub bytes_sent: Option<u64>,
    pub clients: Vec<LiveClient>,
    /// "serving network boot on eth1 (192.168.1.5)", when it does.
    pub boot: Option<String>,
    /// The last thing the sender said (udp-sender's lines, a client's result).
    pub last_line: String,
}

/// One row of the final table (the CLI's columns).
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    pub addr: String,
    pub disk: String,
    pub size: u64,
    /// "ok", "FAILED", "REFUSED", "MISSING" or "CANCELLED".
    pub result: String,
    pub seconds: f64,
    pub written: u64,
    pub message: String,
}

/// The end of a deploy: the table and its count line.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployResult {
    pub rows: Vec<ResultRow>,
    /// "2 of 3 client(s) ok; stream N bytes sent once in S s".
    pub count: String,
    pub all_ok: bool,
    /// Cancelled on the sender before every client reported.
    pub cancelled: bool,
}

/// What the sender's job tells the TUI as it goes.
#[derive(Debug)]
pub enum DeployEvent {
    Live(DeployLive),
    Done(Result<DeployResult, super::services::ServiceError>),
}

/// A deploy client's console screen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientView {
    pub server: String,
    pub image: Option<String>,
    /// "/dev/sda WDC WD5000 WD-WX31A" and its size, when a disk was chosen.
    pub disk: Option<(String, u64)>,
    /// Why no disk was chosen.
    pub refused: Option<String>,
    pub state: ClientStateView,
    pub stream_bytes: u64,
    pub received: u64,
    /// The restore's own progress (bytes done, total, current step).
    pub restore_done: u64,
    pub restore_total: u64,
    pub step: String,
    /// The result line, once done.
    pub message: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientStateView {
    #[default]
    Connecting,
    Waiting,
    Receiving,
    Restoring,
    Verifying,
    Done,
    Failed,
}

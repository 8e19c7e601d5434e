//! One-to-many restore (`ironclone deploy` / `deploy-client`): a sender streams an
//! image once over multicast with udpcast, every client restores it onto its own disk
//! with the normal restore path and reports back (docs/DEPLOY.md).
//!
//! `stream` is the wire format, `protocol` the TCP control messages, `sender` and
//! `client` the two sides, `target` how a client picks its disk.

pub mod client;
pub mod protocol;
pub mod report;
pub mod sender;
pub mod stream;
pub mod target;
mod udpcast;

use thiserror::Error;

/// Where a network-booted client draws its "waiting for the server" screen unless the
/// deploy says otherwise: the first virtual console.
pub const CLIENT_SCREEN: &str = "/dev/tty1";

/// The kernel argument that starts a network-booted client (`ironclone.run=`, spaces
/// as `+`): register with `server:port`, pick the disk by `rule`, and show the
/// "waiting for the server" screen on `screen` (a VT, or a serial port such as
/// /dev/ttyS1 for a lab watched over IPMI serial-over-LAN).
pub fn client_command(server: &str, port: u16, rule: &target::TargetRule, screen: &str) -> String {
    let rule = match rule {
        target::TargetRule::Auto => "auto".to_string(),
        target::TargetRule::Largest => "largest".to_string(),
        target::TargetRule::Path(p) => p.display().to_string(),
    };
    format!(
        "ironclone.run=deploy-client+--server+{server}:{port}+--target+{rule}+--screen+{screen}"
    )
}

#[derive(Debug, Error)]
pub enum DeployError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed: {what}")]
    Tool { tool: String, what: String },
    #[error("{0}")]
    Usage(String),
    /// No disk may be written (the rule found none, or the named one is refused).
    #[error("no target: {0}")]
    NoTarget(String),
    #[error("not enough room: {0}")]
    NoRoom(String),
    #[error("deploy protocol: {0}")]
    Protocol(String),
    #[error("deploy stream: {0}")]
    Stream(#[from] stream::StreamError),
    #[error("deploy stream byte {at}: {source}")]
    Spool {
        at: u64,
        #[source]
        source: crate::repo::transfer::SpoolError,
    },
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    #[error(transparent)]
    Imaging(#[from] crate::imaging::ImagingError),
    #[error(transparent)]
    Discover(#[from] crate::discover::DiscoverError),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
}

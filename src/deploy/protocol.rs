//! The control protocol between `deploy` and `deploy-client`: one JSON object per
//! line over TCP (docs/DEPLOY.md, "Control protocol"). The image itself never goes
//! over it; only who takes part and how it ended.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read, Write};

/// Bumped when a message changes incompatibly; a mismatch is refused by name.
pub const PROTOCOL: u32 = 1;
/// A line longer than this is refused (a message is a few hundred bytes).
pub const MAX_LINE: u64 = 64 << 10;

/// The disk a client chose, as the sender's table shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInfo {
    pub path: String,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub size: u64,
    /// The disk held data and the site allowed erasing it (`ironclone.erase=any`).
    #[serde(default)]
    pub erased_data: bool,
}

impl DiskInfo {
    pub fn describe(&self) -> String {
        let mut s = self.path.clone();
        for v in [&self.model, &self.serial].into_iter().flatten() {
            s.push(' ');
            s.push_str(v);
        }
        s
    }
}

/// Client -> sender, first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    /// The client's ironclone version.
    pub version: String,
    /// `None` when no disk could be chosen (then `refused` says why).
    pub disk: Option<DiskInfo>,
    pub refused: Option<String>,
}

/// Sender -> client, in answer to `Hello`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    pub image: String,
    /// The stream's exact length: the client checks its spool's room against it.
    pub stream_bytes: u64,
    /// udp-receiver's --portbase.
    pub portbase: u16,
    /// Set when the client cannot take part (the stream was already sent...).
    pub refused: Option<String>,
}

/// Sender -> every registered client, once `udp-sender` has ended: a client still
/// receiving after a grace period was dropped (or joined the multicast late) and stops.
/// `cancelled`: the deploy was cancelled on the sender before the stream was complete;
/// the client stops receiving at once (nothing was written to its disk) and reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub stream_sent: bool,
    /// Absent from a version-1 sender that predates cancelling: false.
    #[serde(default)]
    pub cancelled: bool,
}

/// Client -> sender, last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub ok: bool,
    pub seconds: f64,
    /// Bytes received from the stream.
    pub bytes_received: u64,
    /// Bytes written to the disk by the restore.
    pub bytes_written: u64,
    /// Why it failed, or the restore's summary.
    pub message: String,
}

/// Sends one message as a line.
pub fn send<T: Serialize>(w: &mut impl Write, msg: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Reads one message; `Ok(None)` when the peer closed the connection first.
pub fn recv<T: for<'de> Deserialize<'de>>(r: &mut impl BufRead) -> std::io::Result<Option<T>> {
    let mut line = Vec::new();
    let n = r.by_ref().take(MAX_LINE).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "message cut short or over 64 KiB",
        ));
    }
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

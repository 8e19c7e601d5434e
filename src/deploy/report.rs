//! The sender's closing table (one line per client, then a count), as text lines:
//! `ironclone deploy` prints them and the TUI's deploy screen shows the same lines, so
//! the two cannot tell a fleet operator different things.

use super::sender::{ClientRow, DeployReport, Outcome};
use crate::units::human_bytes;

/// The table's lines: a header, one row per client, the count and the stream's size.
/// `finish_hint` is how a late or dropped client is finished by hand (a unicast
/// restore of the same image), appended to its message.
pub fn table_lines(rep: &DeployReport, stream_bytes: u64, finish_hint: &str) -> Vec<String> {
    let mut out = vec![format!(
        "{:<22} {:<40} {:>10} {:<8} {:>8} {:>10}  message",
        "address", "disk", "size", "result", "time", "written"
    )];
    for r in &rep.rows {
        out.push(row_line(r, finish_hint));
    }
    let ok = rep.rows.iter().filter(|r| r.outcome == Outcome::Ok).count();
    out.push(format!(
        "{}{ok} of {} client(s) ok; stream {stream_bytes} bytes {} in {:.1} s",
        if rep.cancelled {
            "deploy CANCELLED: "
        } else {
            ""
        },
        rep.rows.len(),
        if rep.cancelled {
            "(cancelled)"
        } else {
            "sent once"
        },
        rep.udp_sender_seconds
    ));
    out
}

/// The `ironclone restore REPO NAME DISK` a late or dropped client is finished with.
pub fn finish_hint(repo: &str, image: &str) -> String {
    format!("late/dropped: finish it with `ironclone restore {repo} {image} DISK`")
}

/// What the disk column adds for a disk that held data: the site accepted erasing it
/// on the client's kernel command line.
pub const ERASED_NOTE: &str = " (held data: erased, ironclone.erase=any)";

/// The disk column: path, model, serial, and whether the site let it erase data.
pub fn disk_text(r: &ClientRow) -> (String, u64) {
    r.disk.as_ref().map_or(("-".to_string(), 0), |d| {
        (
            format!(
                "{}{}",
                d.describe(),
                if d.erased_data { ERASED_NOTE } else { "" }
            ),
            d.size,
        )
    })
}

/// "ok", "FAILED", "REFUSED", "MISSING" or "CANCELLED", and the message (with the
/// unicast-finish hint for a client that did not get the image).
pub fn result_text(o: &Outcome, finish_hint: &str) -> (&'static str, String) {
    match o {
        Outcome::Ok => ("ok", String::new()),
        Outcome::Failed(m) => ("FAILED", m.clone()),
        Outcome::Refused(m) => ("REFUSED", m.clone()),
        Outcome::Missing(m) => ("MISSING", format!("{m}; {finish_hint}")),
        Outcome::Cancelled(m) => ("CANCELLED", format!("{m}; {finish_hint}")),
    }
}

fn row_line(r: &ClientRow, finish_hint: &str) -> String {
    let (disk, size) = disk_text(r);
    let (result, msg) = result_text(&r.outcome, finish_hint);
    format!(
        "{:<22} {:<40} {:>10} {:<8} {:>7.1}s {:>10}  {msg}",
        r.addr.to_string(),
        disk,
        human_bytes(size),
        result,
        r.seconds,
        human_bytes(r.bytes_written),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::protocol::DiskInfo;

    fn row(port: u16, outcome: Outcome, erased: bool) -> ClientRow {
        ClientRow {
            addr: ([10, 0, 0, 21], port).into(),
            version: "0.1.0".into(),
            disk: Some(DiskInfo {
                path: "/dev/sda".into(),
                model: Some("WDC".into()),
                serial: Some("WX31".into()),
                size: 1 << 30,
                erased_data: erased,
            }),
            outcome,
            seconds: 12.0,
            bytes_received: 5,
            bytes_written: 1 << 20,
        }
    }

    #[test]
    fn the_table_names_every_client_and_counts_the_ok_ones() {
        let rep = DeployReport {
            rows: vec![
                row(1, Outcome::Ok, true),
                row(2, Outcome::Refused("no target: none empty".into()), false),
                row(3, Outcome::Missing("dropped".into()), false),
            ],
            udp_sender_seconds: 3.5,
            cancelled: false,
        };
        let hint = finish_hint("/mnt/repo", "lab");
        let t = table_lines(&rep, 1234, &hint);
        assert_eq!(t.len(), 5);
        assert!(
            t[1].contains("/dev/sda WDC WX31 (held data: erased, ironclone.erase=any)")
                && t[1].contains(" ok "),
            "{}",
            t[1]
        );
        assert!(t[2].contains("REFUSED") && t[2].ends_with("no target: none empty"));
        assert!(
            t[3].contains("MISSING")
                && t[3].ends_with(
                    "dropped; late/dropped: finish it with `ironclone restore /mnt/repo lab DISK`"
                )
        );
        assert_eq!(
            t[4],
            "1 of 3 client(s) ok; stream 1234 bytes sent once in 3.5 s"
        );
    }

    #[test]
    fn a_cancelled_deploy_says_so_on_every_client_without_a_report() {
        let rep = DeployReport {
            rows: vec![
                row(
                    1,
                    Outcome::Cancelled("cancelled on the sender".into()),
                    false,
                ),
                row(2, Outcome::Ok, false),
            ],
            udp_sender_seconds: 1.0,
            cancelled: true,
        };
        let t = table_lines(&rep, 99, &finish_hint("/r", "lab"));
        assert!(
            t[1].contains("CANCELLED") && t[1].contains("finish it with"),
            "{}",
            t[1]
        );
        assert_eq!(
            t[3],
            "deploy CANCELLED: 1 of 2 client(s) ok; stream 99 bytes (cancelled) in 1.0 s"
        );
    }
}

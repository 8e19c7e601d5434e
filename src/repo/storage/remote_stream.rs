//! A remote object streamed in bounded parts: a backup's manifest (issue 20). It is
//! ~41 bytes per chunk compressed (about 650 MiB for 1 TiB of 64 KiB chunks, 170 MiB
//! of 256 KiB ones), which `writer` would hold whole for one PUT; its name is known
//! before its first byte, so it need not be.
//!
//! - S3: one multipart upload (opendal's `Writer`). The store shows the object only
//!   when the upload is completed (`finish`, after the backup's last check of its
//!   lock): a backup killed or failing before that leaves nothing under the
//!   manifest's name, and no listing or read of the bucket shows the unfinished
//!   upload. A failing backup aborts it (`Drop`); a killed one's parts stay on the
//!   store, invisible, until the next `prune` aborts the upload (prune_uploads.rs:
//!   one whose manifest no live backup's lock names; opendal cannot list uploads,
//!   s3_uploads.rs does) or the store's expiry of incomplete uploads (a lifecycle
//!   rule `AbortIncompleteMultipartUpload` on AWS) removes them. A manifest smaller than
//!   one part goes up in a single PUT at `finish`, as every manifest did before.
//! - SFTP: a temp file under `tmp/` renamed into place by `finish`, as a pack's; a
//!   killed backup's is removed by the next `clear_partial` (prune, when no backup
//!   runs), so SFTP needs nothing like the S3 abort.
//!
//! Memory, whatever the manifest's size: the part being filled, the last full part
//! (held back until the next one fills, see `Parts`) and the one opendal holds (it
//! sends a part when the next one arrives, and the last at `finish`), so at most
//! 3 × `REMOTE_PART_SIZE` (24 MiB) plus the HTTP client's buffers. Parts go one at a
//! time: the manifest is written once per backup, after all its packs.

use super::remote::{retry, sftp_publish, sftp_temp_name, to_io, Kind};
use super::ObjectWriter;
use opendal::blocking::Operator;
use opendal::options::WriteOptions;
use opendal::Buffer;
use std::io;

/// The size of each part of a streamed object but the last.
pub const REMOTE_PART_SIZE: usize = 8 << 20;

/// S3's smallest part but the last. It is also where opendal stops merging writes:
/// smaller ones it collects into a part of its own, and a part it loses in a failed
/// request cannot be sent again (see `send`). So no S3 part is ever smaller.
const MIN_S3_PART: usize = 5 << 20;
/// SFTP has no parts, only writes: any size works.
const MIN_SFTP_PART: usize = 1 << 20;
/// The largest part the measurement knob may ask for.
const MAX_PART: usize = 512 << 20;

/// `REMOTE_PART_SIZE`, or `IRONCLONE_REMOTE_PART_MIB` for measurements and tests
/// (docs/BENCH.md), kept within the store's smallest part and `MAX_PART`.
fn part_size(kind: Kind) -> usize {
    let min = match kind {
        Kind::S3 => MIN_S3_PART,
        Kind::Sftp => MIN_SFTP_PART,
    };
    std::env::var("IRONCLONE_REMOTE_PART_MIB")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(REMOTE_PART_SIZE, |m| m.saturating_mul(1 << 20))
        .clamp(min, MAX_PART)
}

/// Cuts a byte stream into parts of exactly `size` bytes, the last one longer (up to
/// twice `size`). The last full part is held back until the next one fills, so the
/// stream's tail is never a write of its own smaller than `size`: opendal would keep
/// such a write in a buffer of its own and lose it if the request sending the part
/// before it failed (`send`).
pub(super) struct Parts {
    size: usize,
    held: Option<Vec<u8>>,
    buf: Vec<u8>,
}

impl Parts {
    pub(super) fn new(size: usize) -> Parts {
        Parts {
            size: size.max(1),
            held: None,
            buf: Vec::new(),
        }
    }

    /// Appends `b`, handing every part but the last full one to `send` (moved, not
    /// copied).
    pub(super) fn push(
        &mut self,
        mut b: &[u8],
        send: &mut dyn FnMut(Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        while !b.is_empty() {
            if self.buf.capacity() == 0 {
                // Reserved whole once: growing by doubling would copy the part and
                // briefly hold it twice.
                self.buf = Vec::with_capacity(self.size);
            }
            let room = self.size.saturating_sub(self.buf.len());
            let (now, rest) = b.split_at(room.min(b.len()));
            self.buf.extend_from_slice(now);
            b = rest;
            if self.buf.len() >= self.size {
                if let Some(prev) = self.held.take() {
                    send(prev)?;
                }
                self.held = Some(std::mem::take(&mut self.buf));
            }
        }
        Ok(())
    }

    /// The last part: the held full part and what came after it, as one write; or,
    /// when no part ever filled, the whole (short) stream. Empty for an empty stream.
    pub(super) fn last(&mut self) -> Buffer {
        let held = self.held.take().unwrap_or_default();
        let rest = std::mem::take(&mut self.buf);
        // Two pieces in one Buffer: no copy of the part.
        [held, rest]
            .into_iter()
            .filter(|v| !v.is_empty())
            .flat_map(Buffer::from)
            .collect()
    }

    /// Bytes held now (the tests' measure of the bound).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.buf.capacity() + self.held.as_ref().map_or(0, Vec::capacity)
    }
}

/// An object of a fixed name streamed to a remote store (see the module comment).
pub(super) struct StreamWriter {
    /// `None` once finished or dropped.
    w: Option<opendal::Writer>,
    handle: tokio::runtime::Handle,
    op: Operator,
    kind: Kind,
    /// The object's name (`finish` must be given the same).
    name: String,
    /// Where the bytes go: `name` on S3, a temp file on SFTP.
    target: String,
    parts: Parts,
}

impl StreamWriter {
    pub(super) fn start(
        aop: &opendal::Operator,
        op: &Operator,
        handle: tokio::runtime::Handle,
        kind: Kind,
        name: &str,
    ) -> io::Result<StreamWriter> {
        let target = match kind {
            Kind::S3 => name.to_string(),
            Kind::Sftp => sftp_temp_name(),
        };
        // No `chunk`: each write below is one whole part (on S3 at least MIN_S3_PART), which
        // opendal passes on as it is rather than re-cutting it (see `send`).
        let w = retry(|| {
            handle.block_on(aop.writer_options(
                &target,
                WriteOptions {
                    concurrent: 1,
                    ..Default::default()
                },
            ))
        })?;
        Ok(StreamWriter {
            w: Some(w),
            handle,
            op: op.clone(),
            kind,
            name: name.to_string(),
            target,
            parts: Parts::new(part_size(kind)),
        })
    }
}

/// Hands one part to opendal's writer.
///
/// S3: retried like any request. That is safe because of how opendal (0.57) cuts
/// writes: one of at least `MIN_S3_PART` it passes straight to its multipart writer,
/// which keeps the part whose upload failed and does not take the new one, so the
/// same call again uploads that part and then takes this one: nothing is lost or sent
/// twice. A smaller write it would keep in a buffer of its own, which a failed upload
/// of the part before empties: so every write here is at least `MIN_S3_PART`, the last
/// part included (`Parts`), except the whole stream of an object under one part,
/// which opendal only takes at that point (no request can fail) and then sends in one
/// PUT at `close`, which keeps it until that succeeds.
///
/// SFTP: a failed write leaves the file's position unknown, so it is not retried
/// here; the backup streams its whole manifest again to a new temp file when the
/// failure was temporary (manifest_out::publish), else fails with its packs kept
/// for the next run.
fn send(
    handle: &tokio::runtime::Handle,
    w: &mut opendal::Writer,
    kind: Kind,
    part: Buffer,
) -> io::Result<()> {
    match kind {
        // A Buffer clone shares the bytes: a retry does not copy the part.
        Kind::S3 => retry(|| handle.block_on(w.write(part.clone()))),
        Kind::Sftp => handle.block_on(w.write(part)).map_err(|e| to_io(e, 1)),
    }
}

impl ObjectWriter for StreamWriter {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        let StreamWriter {
            w,
            handle,
            kind,
            parts,
            ..
        } = self;
        let w = w
            .as_mut()
            .ok_or_else(|| io::Error::other("the object was already published"))?;
        parts.push(b, &mut |part| send(handle, w, *kind, Buffer::from(part)))
    }

    fn finish(mut self: Box<Self>, name: &str) -> io::Result<()> {
        if name != self.name {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("streamed as {}, published as {name}", self.name),
            ));
        }
        let last = self.parts.last();
        let handle = self.handle.clone();
        let kind = self.kind;
        let w = self
            .w
            .as_mut()
            .ok_or_else(|| io::Error::other("the object was already published"))?;
        if !last.is_empty() {
            send(&handle, w, kind, last)?;
        }
        // Why the name stays free (the put-if-absent the whole-object PUT had): it is
        // checked absent under the backup's lock when the backup starts (backup.rs,
        // `ImageExists`), and a manifest is created once by its name and never
        // rewritten (lock.rs); completing the upload is an unconditional publish,
        // exactly as that PUT was. No `If-None-Match` on the completion: not every S3
        // store knows it there, and one refusing it would fail every backup at its
        // very last step.
        match kind {
            Kind::S3 => {
                retry(|| handle.block_on(w.close()).map(drop))?;
                self.w = None;
                Ok(())
            }
            Kind::Sftp => {
                let closed = handle
                    .block_on(w.close())
                    .map(drop)
                    .map_err(|e| to_io(e, 1));
                self.w = None;
                if let Err(e) = closed {
                    let _ = self.op.delete(&self.target);
                    return Err(e);
                }
                sftp_publish(&self.op, &self.target, name, false)
            }
        }
    }
}

impl Drop for StreamWriter {
    /// Unpublished (a failed backup): nothing is left behind. `block_on` must not run
    /// inside the runtime; the repository's threads never are.
    fn drop(&mut self) {
        let Some(mut w) = self.w.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        match self.kind {
            Kind::S3 => {
                let _ = self.handle.block_on(w.abort());
            }
            Kind::Sftp => {
                drop(w);
                let _ = self.op.delete(&self.target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_whole_in_order_and_two_are_held_at_most() {
        let size = 1 << 20;
        let data: Vec<u8> = (0..10 * size + 12345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut parts = Parts::new(size);
        let mut sent: Vec<Vec<u8>> = Vec::new();
        let mut most = 0;
        let mut at = 0;
        // Writes of uneven sizes, some larger than a part.
        for step in [1usize, 4095, 65536, 3 << 20, 17, 900_000].iter().cycle() {
            if at >= data.len() {
                break;
            }
            let end = (at + step).min(data.len());
            parts
                .push(&data[at..end], &mut |p| {
                    sent.push(p);
                    Ok(())
                })
                .unwrap();
            most = most.max(parts.held());
            at = end;
        }
        assert!(most <= 2 * size, "held {most} bytes, parts are {size}");
        // Every part sent on the way is whole; the last is a whole one and the tail.
        assert_eq!(sent.len(), 9);
        assert!(sent.iter().all(|p| p.len() == size));
        let last = parts.last().to_vec();
        assert_eq!(last.len(), size + 12345);
        sent.push(last);
        assert_eq!(sent.concat(), data);
        // A stream under one part is one write of its own; an empty one, none.
        let mut short = Parts::new(size);
        short.push(&data[..100], &mut |_| panic!("sent")).unwrap();
        assert_eq!(short.last().to_vec(), &data[..100]);
        assert!(Parts::new(size).last().is_empty());
    }

    #[test]
    fn a_failed_send_is_returned() {
        let mut parts = Parts::new(4);
        let e = parts
            .push(b"0123456789", &mut |_| Err(io::Error::other("store down")))
            .unwrap_err();
        assert_eq!(e.to_string(), "store down");
    }
}

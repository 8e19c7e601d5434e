//! The two per-object handles of a remote store: ranged reads of one object, and a
//! pack held in memory until its hash names it (remote.rs says why a pack is not
//! streamed while a manifest is).

use super::remote::{retry, write_whole, Kind};
use super::s3_uploads::S3Direct;
use super::{ObjectReader, ObjectWriter};
use opendal::blocking::Operator;
use opendal::options::ReadOptions;
use opendal::raw::BytesRange;
use opendal::Buffer;
use std::io;
use std::sync::Arc;

/// Ranged reads of one object.
pub(super) struct RemoteReader {
    pub(super) op: Operator,
    pub(super) name: String,
    /// On S3, the direct client and its runtime (s3_ranges.rs says why).
    pub(super) s3: Option<(Arc<S3Direct>, Arc<tokio::runtime::Runtime>)>,
}

impl ObjectReader for RemoteReader {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.read_two_at(&mut [], buf, offset)
    }

    fn read_two_at(&self, head: &mut [u8], body: &mut [u8], offset: u64) -> io::Result<()> {
        if let Some((c, rt)) = &self.s3 {
            return c.read_range(rt, &self.name, offset, head, body);
        }
        let want = (head.len() as u64).saturating_add(body.len() as u64);
        let got = retry(|| {
            self.op.read_options(
                &self.name,
                ReadOptions {
                    range: BytesRange::new(offset, Some(want)),
                    ..Default::default()
                },
            )
        })?;
        if got.len() as u64 != want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} bytes at {offset}: the object ends after {}",
                    want,
                    got.len()
                ),
            ));
        }
        // The answer's pieces are copied into the two buffers as they come: the header
        // is a few bytes, so a piece may straddle the boundary.
        let mut dst: [&mut [u8]; 2] = [head, body];
        let mut which = 0;
        let mut at = 0;
        for chunk in got {
            let mut src: &[u8] = &chunk;
            while !src.is_empty() {
                let room = dst.get(which).map_or(0, |d| d.len() - at);
                if room == 0 {
                    which += 1;
                    at = 0;
                    if which >= dst.len() {
                        return Err(io::Error::other("range longer than asked"));
                    }
                    continue;
                }
                let n = room.min(src.len());
                let d = dst
                    .get_mut(which)
                    .and_then(|d| d.get_mut(at..at + n))
                    .ok_or_else(|| io::Error::other("range longer than asked"))?;
                d.copy_from_slice(src.get(..n).unwrap_or(&[]));
                src = src.get(n..).unwrap_or(&[]);
                at += n;
            }
        }
        Ok(())
    }
}

/// One pack in memory until its name is known.
pub(super) struct BufferWriter {
    pub(super) op: Operator,
    pub(super) kind: Kind,
    pub(super) data: Vec<u8>,
}

impl ObjectWriter for BufferWriter {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(b);
        Ok(())
    }

    fn finish(self: Box<Self>, name: &str) -> io::Result<()> {
        // A pack's name is its hash: a pack already there holds the same bytes.
        let BufferWriter { op, kind, data } = *self;
        write_whole(&op, kind, name, Buffer::from(data), false)
    }
}

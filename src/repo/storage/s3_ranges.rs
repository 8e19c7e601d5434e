//! Ranged reads of S3 objects straight into the caller's buffers: the restore's hot
//! path (every record it checks and writes is one of these, or a run of them).
//!
//! opendal's `read` collects the whole answer as a list of the HTTP client's body
//! chunks and hands them over at the end, so every chunk is still referenced when the
//! next one arrives and hyper allocates a fresh read buffer (up to 408 KiB) each
//! time: on the musl build each is a new mapping, page-faulted, zeroed and unmapped
//! again, and the bytes are then copied a second time out of the list. Measured on the
//! bench's S3 restore (ironclone on one core, the store on the other): 1125 mappings
//! of 408 KiB for 417 MiB downloaded, and page faults, page clears and unmaps about an
//! eighth of the client's CPU (docs/BENCH.md, "S3 restore: ranged reads without
//! opendal's buffers"). Here each chunk is copied into the destination as it arrives
//! and dropped before the next read, so hyper refills the buffer it has.
//!
//! The request is signed and sent by the same client and signer as the multipart
//! calls (s3_uploads.rs: opendal's crates at the versions Cargo.lock has), against
//! the same endpoint, bucket addressing and credentials; it is retried like opendal's
//! (5xx, 429, timeouts and dropped connections, with backoff), and the whole range
//! is asked again after a failure, so a read resumes from its start.

use super::remote::retry_when;
use super::s3_uploads::{encode, S3Direct, UploadsError};
use std::io;

const OP: &str = "GetObject";

impl S3Direct {
    /// Reads `head.len() + body.len()` bytes of object `name` (relative to the
    /// repository) at `offset` into `head`, then `body`.
    pub(super) fn read_range(
        &self,
        rt: &tokio::runtime::Runtime,
        name: &str,
        offset: u64,
        head: &mut [u8],
        body: &mut [u8],
    ) -> io::Result<()> {
        let want = (head.len() as u64).saturating_add(body.len() as u64);
        if want == 0 {
            return Ok(());
        }
        let key = format!("{}{name}", self.key_prefix);
        retry_when(
            || rt.block_on(self.get_range(&key, offset, want, &mut [&mut *head, &mut *body])),
            UploadsError::temporary,
        )
        .map_err(|(e, n)| e.into_io(n))
    }

    async fn get_range(
        &self,
        key: &str,
        offset: u64,
        want: u64,
        dst: &mut [&mut [u8]; 2],
    ) -> Result<(), UploadsError> {
        // What the store answered that is not what was asked: not retried.
        let failed = |why: String| UploadsError::Request {
            op: OP,
            why,
            temporary: false,
        };
        let last = offset
            .checked_add(want - 1)
            .ok_or_else(|| failed(format!("{want} bytes at {offset}: past 2^64")))?;
        let uri = format!("{}/{}", self.bucket_url, encode(key, true));
        let b = http::Request::builder()
            .method(http::Method::GET)
            .uri(&uri)
            .header(http::header::RANGE, format!("bytes={offset}-{last}"));
        let req = self.signed(OP, b).await?;
        let lost = |e| UploadsError::lost(OP, e);
        let mut resp = self.http.execute(req).await.map_err(lost)?;
        let status = resp.status();
        // 206 for a range; a store may answer a range covering the whole object with
        // the object (200), which is then exactly the bytes asked for.
        let whole = status == http::StatusCode::OK && offset == 0;
        if status != http::StatusCode::PARTIAL_CONTENT && !whole {
            let body = resp.text().await.unwrap_or_default();
            return Err(UploadsError::Status {
                op: OP,
                status: status.as_u16(),
                detail: body.trim().chars().take(300).collect(),
            });
        }
        let (mut which, mut at, mut got) = (0usize, 0usize, 0u64);
        while let Some(chunk) = resp.chunk().await.map_err(lost)? {
            let mut src: &[u8] = &chunk;
            while !src.is_empty() {
                let Some(d) = dst.get_mut(which) else {
                    return Err(failed(format!("more than the {want} bytes asked")));
                };
                let n = (d.len() - at).min(src.len());
                if n == 0 {
                    which += 1;
                    at = 0;
                    continue;
                }
                let (s, rest) = src.split_at(n);
                if let Some(t) = d.get_mut(at..at + n) {
                    t.copy_from_slice(s);
                }
                src = rest;
                at += n;
                got += n as u64;
            }
            // The chunk is dropped here, before the next read: hyper reuses its buffer.
        }
        if got != want {
            // A clean end short of the range: the object is shorter.
            return Err(failed(format!(
                "{want} bytes at {offset}: the object ends after {got}"
            )));
        }
        Ok(())
    }
}

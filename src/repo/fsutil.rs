//! Helpers for the local directory backend (storage/local.rs: every file is written
//! under a temporary name, fsynced, renamed into place and its directory fsynced) and
//! the compressed JSON of metadata objects.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique temporary path inside `tmp_dir` (same filesystem as the final place, so
/// rename is atomic).
pub fn temp_path(tmp_dir: &Path, stem: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    tmp_dir.join(format!("{stem}.{}.{n}.tmp", std::process::id()))
}

pub fn fsync_dir(dir: &Path) {
    // Directories cannot be opened for fsync on every filesystem (FAT via some
    // drivers); the rename is still atomic there, so a failure to sync is not fatal.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// JSON metadata (manifests, index files) as written from format version 2: `value`'s
/// JSON through zstd level 3, streamed, so the text is never held whole. They list one
/// 32-byte id per chunk, as 64 hex digits; compressed, an id costs about its 32 bytes
/// again, so a manifest of 30 000 chunks is 1 MB instead of 3.
pub fn compress_json<T: serde::Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3)?;
    serde_json::to_writer(&mut enc, value)?;
    enc.finish()
}

/// The JSON of a metadata file as `unpack_json` finds it, read as a stream: a 1 TB
/// image's manifest is hundreds of MB of text, which a parser reading from here never
/// holds (it keeps only what it builds). Reading past `max` bytes fails.
pub fn json_reader(bytes: &[u8], max: u64) -> std::result::Result<impl std::io::Read + '_, String> {
    let inner: Box<dyn std::io::Read + '_> = match bytes.starts_with(&ZSTD_MAGIC) {
        false => Box::new(bytes),
        true => Box::new(
            zstd::stream::read::Decoder::with_buffer(bytes).map_err(|e| format!("zstd: {e}"))?,
        ),
    };
    // A parser reads a byte at a time: the buffer is outermost, so a byte is a copy
    // from it, not a call through the box and into zstd.
    Ok(std::io::BufReader::with_capacity(
        256 << 10,
        Limit { inner, left: max },
    ))
}

/// `json_reader` over a stream of the stored bytes (a manifest read in pieces, never
/// held whole): the first bytes tell whether it is compressed. Not buffered: the
/// caller puts its parser's buffer above whatever it adds (manifest_stream.rs hashes
/// the text on its way).
pub fn json_stream<'a, R: std::io::BufRead + 'a>(
    mut r: R,
    max: u64,
) -> std::result::Result<impl std::io::Read + 'a, String> {
    let zstd = r
        .fill_buf()
        .map_err(|e| e.to_string())?
        .starts_with(&ZSTD_MAGIC);
    let inner: Box<dyn std::io::Read + 'a> = match zstd {
        false => Box::new(r),
        true => {
            Box::new(zstd::stream::read::Decoder::with_buffer(r).map_err(|e| format!("zstd: {e}"))?)
        }
    };
    Ok(Limit { inner, left: max })
}

/// A reader that fails once more than `left` bytes were asked of it.
struct Limit<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Limit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self
            .left
            .checked_sub(n as u64)
            .ok_or_else(|| std::io::Error::other("more JSON than a metadata file may hold"))?;
        Ok(n)
    }
}

/// The JSON of a metadata file written by `compress_json` or, before version 2, as
/// plain JSON; at most `max` bytes. The error says why the zstd frame is bad; callers
/// name the file (a damaged manifest or index file).
pub fn unpack_json(bytes: Vec<u8>, max: u64) -> std::result::Result<Vec<u8>, String> {
    if !bytes.starts_with(&ZSTD_MAGIC) {
        return Ok(bytes);
    }
    // Streamed, so the buffer grows with the text instead of being reserved at `max`.
    use std::io::Read;
    let dec = zstd::stream::read::Decoder::new(&bytes[..]).map_err(|e| format!("zstd: {e}"))?;
    // Sized ahead by a guess (the streamed frames do not carry their length): JSON of
    // hex ids compresses about 4:1.
    let guess = (bytes.len() as u64).saturating_mul(5).min(max);
    let mut out = Vec::with_capacity(usize::try_from(guess).unwrap_or(0));
    dec.take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("zstd: {e}"))?;
    if out.len() as u64 > max {
        return Err(format!("more than {max} bytes of JSON"));
    }
    Ok(out)
}

//! A manifest read without holding its chunk lists (issue 20: a restore of 1 TB in
//! under 200 MB). The chunk references stream from the JSON parser into a scratch
//! file of fixed-size records (the backup's chunk list format, backup/list.rs) as they
//! are parsed; what stays in memory is the manifest without them and, per area, the
//! range of its records. A restore then reads each area's list in order from the file
//! (planning, the check, the read-back) and single records by position.
//!
//! The root hash is checked over the bytes as they pass instead of by serialising the
//! parsed manifest again (which needs the chunk lists): a manifest is stored exactly as
//! `compute_root` serialises it, with `root` as its last field, so the bytes before
//! the root's value followed by `"}` are what the root hashes. A manifest whose bytes
//! are not in that form (none written by ironclone) is refused here with
//! `NotCanonical`, and the caller reads it the old way.

use super::backup::list::{ChunkList, Entry};
use super::crypto::CryptoError;
use super::error::RepoError;
use super::manifest::{AreaManifest, ChunkRef, Manifest};
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use std::cell::RefCell;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

/// A manifest whose chunk lists are in a scratch file.
pub struct Spilled {
    /// The manifest, every area's `chunks` empty.
    pub head: Manifest,
    /// Every area's chunks, area after area.
    pub(crate) chunks: ChunkList,
    /// Each area's records in `chunks` (by the area's index in `head.areas`).
    pub(crate) areas: Vec<Range<usize>>,
    /// Read whole first (not in the canonical form the stream checks): what tests
    /// tell the two ways apart by.
    #[cfg(test)]
    pub(crate) whole: bool,
}

/// Why a manifest was not read this way.
#[derive(Debug)]
pub enum StreamError {
    /// The bytes are not those `compute_root` hashes: read the manifest whole.
    NotCanonical,
    Repo(RepoError),
}

impl From<RepoError> for StreamError {
    fn from(e: RepoError) -> Self {
        StreamError::Repo(e)
    }
}

/// `"root":"` + 64 hex digits + `"}`.
const ROOT_TAIL: usize = 8 + 64 + 2;

/// Hashes what it reads, but for the last `ROOT_TAIL` bytes, which it holds back.
/// It sits under the parser's buffer: the parser reads a byte at a time, this a
/// buffer's worth, hashed in place (only the held-back tail is copied).
struct Tee<R> {
    inner: R,
    hash: blake3::Hasher,
    tail: Vec<u8>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = buf.get(..n).unwrap_or(&[]);
        match got.len().checked_sub(ROOT_TAIL) {
            // The held tail and all but the last ROOT_TAIL new bytes are hashed.
            Some(keep) => {
                self.hash.update(&self.tail);
                self.hash.update(got.get(..keep).unwrap_or(&[]));
                self.tail.clear();
                self.tail.extend_from_slice(got.get(keep..).unwrap_or(&[]));
            }
            None => {
                self.tail.extend_from_slice(got);
                if let Some(over) = self.tail.len().checked_sub(ROOT_TAIL) {
                    self.hash.update(self.tail.get(..over).unwrap_or(&[]));
                    self.tail.drain(..over);
                }
            }
        }
        Ok(n)
    }
}

thread_local! {
    /// Where the chunk references of the manifest being parsed on this thread go:
    /// serde's derived code gives a field no context of its own.
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

struct Sink {
    list: ChunkList,
    buf: Vec<Entry>,
    count: usize,
    failed: Option<RepoError>,
}

impl Sink {
    fn push(&mut self, c: ChunkRef) {
        self.buf.push(Entry::from(&c));
        if self.buf.len() >= 4096 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.failed.is_none() && !self.buf.is_empty() {
            let first = self.count - self.buf.len();
            if let Err(e) = self.list.put(first, &self.buf) {
                self.failed = Some(e);
            }
        }
        self.buf.clear();
    }
}

/// An area's chunk list as parsed: the range of its records in the sink.
struct Spill(Range<usize>);

impl<'de> Deserialize<'de> for Spill {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Spill, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Spill;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of chunk references")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Spill, A::Error> {
                let first = SINK.with(|s| s.borrow().as_ref().map_or(0, |s| s.count));
                while let Some(c) = seq.next_element::<ChunkRef>()? {
                    SINK.with(|s| {
                        if let Some(s) = s.borrow_mut().as_mut() {
                            s.count += 1;
                            s.push(c);
                        }
                    });
                }
                let end = SINK.with(|s| s.borrow().as_ref().map_or(0, |s| s.count));
                Ok(Spill(first..end))
            }
        }
        d.deserialize_seq(V)
    }
}

/// Reads manifest `image` (its JSON from `r`, named `path` in errors) with its chunk
/// lists in a scratch file under `scratch`, and checks it as `Manifest::parse_from`
/// does: the version, the root hash, the name, every chunk inside its area.
pub fn load(
    image: &str,
    path: &Path,
    r: impl Read,
    scratch: &Path,
) -> std::result::Result<Spilled, StreamError> {
    let bad = |what: String| RepoError::CorruptManifest {
        image: image.to_string(),
        path: path.to_path_buf(),
        what,
    };
    let list = ChunkList::growing(scratch)?;
    SINK.with(|s| {
        *s.borrow_mut() = Some(Sink {
            list,
            buf: Vec::with_capacity(4096),
            count: 0,
            failed: None,
        })
    });
    let mut tee = Tee {
        inner: r,
        hash: blake3::Hasher::new(),
        tail: Vec::new(),
    };
    let parsed = {
        let buffered = std::io::BufReader::with_capacity(256 << 10, &mut tee);
        // By value: `io::Bytes` over a `BufReader` itself takes each byte from its buffer;
        // over `&mut BufReader` every byte was a `read` call (a third of the parse).
        serde_json::from_reader::<_, Manifest<Spill>>(buffered)
    };
    let sink = SINK.with(|s| s.borrow_mut().take());
    let Some(mut sink) = sink else {
        return Err(bad("the chunk list's scratch file was lost".into()).into());
    };
    sink.flush();
    if let Some(e) = sink.failed {
        return Err(e.into());
    }
    let m = parsed.map_err(|e| match e.is_io() {
        // The store failed while the manifest was read: say so, not that it is damaged.
        true => {
            let io = std::io::Error::from(e);
            // A sealed segment that fails its tag is damage, not the store failing.
            match io.get_ref().is_some_and(|i| i.is::<CryptoError>()) {
                true => bad(io.to_string()),
                false => RepoError::io(path.to_path_buf())(io),
            }
        }
        false => bad(e.to_string()),
    })?;
    if m.version != 1 {
        return Err(bad(format!("manifest version {}", m.version)).into());
    }
    // The root: the bytes up to its value, then `"}`.
    let tail = &tee.tail;
    let expect = format!("\"root\":\"{}\"}}", m.root);
    if m.root.len() != 64 || !tail.ends_with(expect.as_bytes()) {
        return Err(StreamError::NotCanonical);
    }
    let mut h = tee.hash;
    h.update(tail.get(..tail.len() - 66).unwrap_or(&[]));
    h.update(b"\"}");
    let computed = h.finalize().to_hex().to_string();
    if computed != m.root {
        return Err(bad(format!(
            "root hash mismatch (stored {}, computed {computed})",
            m.root
        ))
        .into());
    }
    if m.name != image {
        return Err(bad(format!("names image {:?}", m.name)).into());
    }
    let mut areas = Vec::with_capacity(m.areas.len());
    let head = Manifest {
        version: m.version,
        name: m.name,
        created_unix: m.created_unix,
        source: m.source,
        chunk_size: m.chunk_size,
        areas: m
            .areas
            .into_iter()
            .map(|a| {
                areas.push(a.chunks.0);
                AreaManifest {
                    name: a.name,
                    kind: a.kind,
                    offset: a.offset,
                    len: a.len,
                    extents: a.extents,
                    meta: a.meta,
                    chunks: Vec::new(),
                    unreadable: a.unreadable,
                    damage: a.damage,
                }
            })
            .collect(),
        stats: m.stats,
        root: m.root,
    };
    let chunks = sink.list.finish(sink.count);
    let s = Spilled {
        head,
        chunks,
        areas,
        #[cfg(test)]
        whole: false,
    };
    s.check_chunks().map_err(|e| StreamError::Repo(bad(e)))?;
    Ok(s)
}

impl Spilled {
    /// A manifest read whole (one not in canonical form), its chunk lists written to
    /// a scratch file under `scratch` so that a restore reads every manifest one way.
    pub fn from_manifest(m: &Manifest, scratch: &Path) -> Result<Spilled, RepoError> {
        let n: usize = m.areas.iter().map(|a| a.chunks.len()).sum();
        let chunks = ChunkList::new(scratch, n)?;
        let mut areas = Vec::with_capacity(m.areas.len());
        let mut first = 0usize;
        let mut head = m.clone_head();
        for (a, h) in m.areas.iter().zip(head.areas.iter_mut()) {
            for (k, piece) in a.chunks.chunks(4096).enumerate() {
                let entries: Vec<Entry> = piece.iter().map(Entry::from).collect();
                chunks.put(first + k * 4096, &entries)?;
            }
            areas.push(first..first + a.chunks.len());
            first += a.chunks.len();
            h.chunks = Vec::new();
        }
        Ok(Spilled {
            head,
            chunks,
            areas,
            #[cfg(test)]
            whole: true,
        })
    }

    /// The bytes the chunks cover (`Manifest::data_bytes`): one pass over the list.
    pub fn data_bytes(&self) -> Result<u64, RepoError> {
        self.bytes_in(0..self.chunks.len())
    }

    /// The bytes the chunks of the area named `name` cover: what the head cannot
    /// say, as its areas' chunk lists are empty.
    pub fn area_bytes(&self, name: &str) -> Result<u64, RepoError> {
        let mut sum = 0u64;
        for (a, r) in self.head.areas.iter().zip(&self.areas) {
            if a.name == name {
                sum = sum.saturating_add(self.bytes_in(r.clone())?);
            }
        }
        Ok(sum)
    }

    fn bytes_in(&self, r: Range<usize>) -> Result<u64, RepoError> {
        let mut rd = self.chunks.read(r);
        let mut sum = 0u64;
        while let Some(c) = rd.next_entry()? {
            sum = sum.saturating_add(u64::from(c.len));
        }
        Ok(sum)
    }

    /// Chunks must lie inside their areas (as `Manifest::check_chunks`): one pass.
    fn check_chunks(&self) -> std::result::Result<(), String> {
        for (a, r) in self.head.areas.iter().zip(&self.areas) {
            let mut rd = self.chunks.read(r.clone());
            while let Some(c) = rd.next_entry().map_err(|e| e.to_string())? {
                let end = c.offset.checked_add(u64::from(c.len));
                if c.len > self.head.chunk_size || end.map_or(true, |e| e > a.len) {
                    return Err(format!(
                        "area {}: chunk at {} (+{}) outside the area ({} bytes)",
                        a.name, c.offset, c.len, a.len
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `load` over bytes in memory, as the fuzz targets read a manifest: its head and how
/// many chunk references it lists; `None` when it is not in canonical form.
pub fn load_bytes(
    image: &str,
    path: &Path,
    bytes: &[u8],
    scratch: &Path,
) -> Result<Option<(Manifest, usize)>, RepoError> {
    match load(image, path, bytes, scratch) {
        Ok(s) => Ok(Some((s.head, s.chunks.len()))),
        Err(StreamError::NotCanonical) => Ok(None),
        Err(StreamError::Repo(e)) => Err(e),
    }
}

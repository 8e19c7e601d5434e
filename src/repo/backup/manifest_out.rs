//! Writes a backup's manifest by streaming its chunk lists from the scratch file
//! (list.rs): neither the lists nor their JSON are ever held whole.
//!
//! The JSON is exactly `serde_json` of `Manifest` (docs/FORMAT.md, "Manifests"), so
//! images read as before, by this build and older ones. The views below mirror
//! `Manifest` and `AreaManifest` field for field, with the chunk list an iterator
//! over the file; serde rather than a hand-written writer, so each chunk is `ChunkRef`'s
//! own serialisation and the test below compares the bytes with `Manifest`'s.
//!
//! The root hash is blake3 of the JSON with `root` empty; `root` is the last field, so
//! that JSON ends with `"root":""}` and differs from the published one only there.
//! One pass: every byte goes to blake3, and all but that tail to the output at once;
//! the tail is checked and replaced by `"root":"<hash>"}` at the end.

use super::super::crypto;
use super::super::error::{RepoError, Result};
use super::super::manifest::{AreaManifest, ChunkRef, ImageStats};
use super::super::plan::{AreaKind, SourceInfo};
use super::super::storage::ObjectWriter;
use super::super::{ImageSummary, Repository};
use super::list::ChunkList;
use crate::progress::{Progress, ProgressEvent};
use crate::rescue::owners::DamageReport;
use crate::usedmap::ByteExtent;
use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};
use std::cell::RefCell;
use std::io::{self, Write};
use std::ops::Range;

/// The manifest without its chunk lists, and where each area's chunks are in the list.
pub(super) struct Head<'a> {
    pub version: u32,
    pub name: &'a str,
    pub created_unix: u64,
    pub source: &'a SourceInfo,
    pub chunk_size: u32,
    /// Each area with `chunks` empty, and beside it (`ranges`, one per area) the range
    /// of the list holding its chunks.
    pub areas: &'a [AreaManifest],
    pub ranges: &'a [Range<usize>],
    pub stats: &'a ImageStats,
}

/// `Manifest`'s fields, in its order, with `root` empty.
#[derive(Serialize)]
struct ManifestView<'a> {
    version: u32,
    name: &'a str,
    created_unix: u64,
    source: &'a SourceInfo,
    chunk_size: u32,
    areas: Areas<'a>,
    stats: &'a ImageStats,
    root: &'a str,
}

/// `AreaManifest`'s fields and attributes, in its order.
#[derive(Serialize)]
struct AreaView<'a> {
    name: &'a str,
    kind: AreaKind,
    offset: u64,
    len: u64,
    extents: &'a [ByteExtent],
    meta: &'a serde_json::Value,
    chunks: Chunks<'a>,
    unreadable: &'a [ByteExtent],
    #[serde(skip_serializing_if = "Option::is_none")]
    damage: Option<&'a DamageReport>,
}

struct Areas<'a> {
    areas: &'a [AreaManifest],
    ranges: &'a [Range<usize>],
    list: &'a ChunkList,
    /// The list's own error, kept typed (serde only carries a message).
    err: &'a RefCell<Option<RepoError>>,
}

struct Chunks<'a> {
    range: Range<usize>,
    list: &'a ChunkList,
    err: &'a RefCell<Option<RepoError>>,
}

impl Serialize for Areas<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.areas.len() != self.ranges.len() {
            return Err(S::Error::custom("an area without its chunk range"));
        }
        let mut seq = s.serialize_seq(Some(self.areas.len()))?;
        for (a, range) in self.areas.iter().zip(self.ranges) {
            seq.serialize_element(&AreaView {
                name: &a.name,
                kind: a.kind,
                offset: a.offset,
                len: a.len,
                extents: &a.extents,
                meta: &a.meta,
                chunks: Chunks {
                    range: range.clone(),
                    list: self.list,
                    err: self.err,
                },
                unreadable: &a.unreadable,
                damage: a.damage.as_ref(),
            })?;
        }
        seq.end()
    }
}

impl Serialize for Chunks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.range.len()))?;
        let mut r = self.list.read(self.range.clone());
        loop {
            match r.next_entry() {
                Ok(Some(e)) => seq.serialize_element(&ChunkRef {
                    offset: e.offset,
                    len: e.len,
                    id: e.id,
                })?,
                Ok(None) => break,
                Err(e) => {
                    let msg = e.to_string();
                    *self.err.borrow_mut() = Some(e);
                    return Err(S::Error::custom(msg));
                }
            }
        }
        seq.end()
    }
}

/// What the JSON with an empty root ends with.
const TAIL: &[u8] = br#""root":""}"#;

/// Hashes everything, passes all but the last `TAIL.len()` bytes on.
struct RootTee<W: Write> {
    hash: blake3::Hasher,
    out: W,
    held: Vec<u8>,
}

impl<W: Write> Write for RootTee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hash.update(buf);
        if buf.len() >= TAIL.len() {
            self.out.write_all(&self.held)?;
            let (pass, keep) = buf.split_at(buf.len() - TAIL.len());
            self.out.write_all(pass)?;
            self.held.clear();
            self.held.extend_from_slice(keep);
        } else {
            self.held.extend_from_slice(buf);
            let over = self.held.len().saturating_sub(TAIL.len());
            if over > 0 {
                self.out.write_all(&self.held[..over])?;
                self.held.drain(..over);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // The tail is held until the root is known; the rest is passed on already.
        Ok(())
    }
}

/// Writes the manifest `head` with the chunks of `list` as JSON to `out`; returns
/// `out` and the root hash (hex).
pub(super) fn write<W: Write>(head: &Head<'_>, list: &ChunkList, out: W) -> Result<(W, String)> {
    let err = RefCell::new(None);
    let view = ManifestView {
        version: head.version,
        name: head.name,
        created_unix: head.created_unix,
        source: head.source,
        chunk_size: head.chunk_size,
        areas: Areas {
            areas: head.areas,
            ranges: head.ranges,
            list,
            err: &err,
        },
        stats: head.stats,
        root: "",
    };
    let tee = RootTee {
        hash: blake3::Hasher::new(),
        out,
        held: Vec::with_capacity(2 * TAIL.len()),
    };
    let bad = |what: String| RepoError::Pipeline(format!("writing the manifest: {what}"));
    // Buffered: serde_json writes a few bytes at a time; blake3 and zstd want more.
    let mut buf = io::BufWriter::with_capacity(64 << 10, tee);
    if let Err(e) = serde_json::to_writer(&mut buf, &view) {
        return Err(err.into_inner().unwrap_or_else(|| bad(e.to_string())));
    }
    let mut tee = buf.into_inner().map_err(|e| bad(e.error().to_string()))?;
    if tee.held != TAIL {
        return Err(bad(format!(
            "the JSON ends with {:?}, not an empty root",
            String::from_utf8_lossy(&tee.held)
        )));
    }
    let root = tee.hash.finalize().to_hex().to_string();
    write!(tee.out, r#""root":"{root}"}}"#).map_err(|e| bad(e.to_string()))?;
    Ok((tee.out, root))
}

/// A store's object writer as an `io::Write`.
struct ObjOut(Box<dyn ObjectWriter>);

impl Write for ObjOut {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(b)?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The manifest's compressed JSON on its way to the store: sealed a segment at a
/// time in an encrypted repository (docs/FORMAT.md, "Encryption"), so it is never
/// held whole there either.
enum Sink<'a> {
    Plain(ObjOut),
    Sealed(crypto::StreamSealer<'a, ObjOut>),
}

impl Write for Sink<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(o) => o.write(b),
            Sink::Sealed(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the manifest (JSON through zstd, sealed when encrypted) to an unpublished
/// object `name` (a local repository: a temp file under `tmp/`; a remote one: an
/// unfinished multipart upload or an SFTP temp file, streamed in bounded parts; all
/// removed if dropped); returns it and the root hash. Publishing it (`finish(name)`)
/// is the caller's, last.
pub(super) fn write_object(
    repo: &Repository,
    head: &Head<'_>,
    list: &ChunkList,
    name: &str,
    path: &std::path::Path,
) -> Result<(Box<dyn ObjectWriter>, String)> {
    let io = |e: std::io::Error| RepoError::io(path)(e);
    let out = ObjOut(repo.store().named_writer(name).map_err(io)?);
    let sink = match repo.keys() {
        None => Sink::Plain(out),
        Some(k) => Sink::Sealed(
            k.image_sealer(head.name, out)
                .map_err(|e| RepoError::Crypto {
                    path: path.to_path_buf(),
                    source: e,
                })?,
        ),
    };
    // Level 3, as every metadata file (fsutil::compress_json).
    let enc = zstd::stream::Encoder::new(sink, 3).map_err(io)?;
    let (enc, root) = write(head, list, enc)?;
    let out = match enc.finish().map_err(io)? {
        Sink::Plain(o) => o,
        Sink::Sealed(s) => s.finish().map_err(io)?,
    };
    Ok((out.0, root))
}

/// Test knob (docs/FORMAT.md, "Concurrent writers and prune"): with
/// `IRONCLONE_TEST_HOLD_MANIFEST=<path>`, a backup whose packs are all published
/// creates `<path>.held` and waits (up to 10 minutes) for `<path>` to exist before
/// writing its manifest, so a test can run a prune while a backup is provably in
/// flight. Unset, this costs one environment lookup.
pub(super) fn hold_before_manifest() {
    let Some(path) = std::env::var_os("IRONCLONE_TEST_HOLD_MANIFEST") else {
        return;
    };
    let go = std::path::PathBuf::from(path);
    let mut held = go.clone().into_os_string();
    held.push(".held");
    let _ = std::fs::write(&held, b"");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !go.exists() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Times a manifest is streamed before its backup fails: the first try and two more.
const ATTEMPTS: u32 = 3;
/// The wait before the second try; doubled before the third.
const AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Streams the manifest (`write_object`), runs `before_publish` (the backup's last lock
/// check), writes the image's summary and publishes the manifest as `name`; returns
/// the root hash.
///
/// Why a whole second try: a store resumes a request, not an object. S3 retries each
/// part where it failed, but an SFTP file whose connection dropped mid-write has an
/// unknown length, and an S3 upload can be lost by the store. Both leave a manifest
/// that is not whole, while everything it lists is published already; failing there
/// would throw away a backup that needs only its last few MiB again. The chunk list is
/// still on disk, so the manifest is streamed again from its first byte to a new temp
/// object (the failed one is removed or aborted when its writer drops). Only failures
/// the store calls temporary get another try: a full disk or a refused login would fail
/// again the same way.
pub(super) fn publish(
    repo: &Repository,
    (head, summary): (&Head<'_>, &ImageSummary),
    list: &ChunkList,
    name: &str,
    path: &std::path::Path,
    before_publish: &mut dyn FnMut() -> Result<()>,
    progress: &dyn Progress,
) -> Result<String> {
    let mut wait = AGAIN_AFTER;
    let mut attempt = 1;
    loop {
        let tried = write_object(repo, head, list, name, path).and_then(|(body, root)| {
            before_publish()?;
            super::super::summary::write(repo, summary, &root)?;
            body.finish(name).map_err(RepoError::io(path))?;
            Ok(root)
        });
        match tried {
            Err(RepoError::Io { source, .. })
                if attempt < ATTEMPTS && super::super::storage::is_temporary(&source) =>
            {
                progress.report(ProgressEvent::Warning {
                    message: format!(
                        "Writing the image's manifest {} failed ({source}); writing it again in {} s (try {} of {ATTEMPTS})",
                        path.display(),
                        wait.as_secs(),
                        attempt + 1
                    ),
                });
                std::thread::sleep(wait);
                wait = wait.saturating_mul(2);
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::list::Entry;
    use super::*;
    use crate::repo::id::ChunkId;
    use crate::repo::manifest::Manifest;
    use std::path::Path;

    fn area(name: &str, chunks: Vec<ChunkRef>) -> AreaManifest {
        AreaManifest {
            name: name.into(),
            kind: AreaKind::Partition,
            offset: 1 << 20,
            len: 64 << 20,
            extents: vec![ByteExtent {
                offset: 0,
                len: 64 << 20,
            }],
            meta: serde_json::json!({"z": [1, {"b": null, "a": "x"}], "a": 2}),
            chunks,
            unreadable: vec![],
            damage: None,
        }
    }

    #[test]
    fn streamed_json_is_the_manifests_own_and_its_root_checks() {
        let chunks = |n: u64| -> Vec<ChunkRef> {
            (0..n)
                .map(|i| ChunkRef {
                    offset: i * 4096,
                    len: 4096,
                    id: (i % 4 != 0).then(|| ChunkId::of(&i.to_le_bytes())),
                })
                .collect()
        };
        let mut damaged = area("p2", chunks(3));
        damaged.unreadable = vec![ByteExtent {
            offset: 4096,
            len: 512,
        }];
        damaged.damage = Some(DamageReport {
            fs: "ext4".into(),
            files: vec![],
            metadata: vec![],
            unowned_bytes: 512,
            warnings: vec!["w".into()],
        });
        let mut m = Manifest {
            version: 1,
            name: "img".into(),
            created_unix: 1_800_000_000,
            source: SourceInfo::default(),
            chunk_size: 8 << 20,
            areas: vec![area("p1", chunks(5000)), area("empty", vec![]), damaged],
            stats: ImageStats {
                bytes_read: 7,
                unchanged_bytes: 3,
                ..ImageStats::default()
            },
            root: String::new(),
        };
        m.seal();
        let dir = tempfile::tempdir().unwrap();
        let total: usize = m.areas.iter().map(|a| a.chunks.len()).sum();
        let list = ChunkList::new(dir.path(), total).unwrap();
        let (mut heads, mut ranges) = (Vec::new(), Vec::new());
        let mut at = 0;
        for a in &m.areas {
            let entries: Vec<Entry> = a.chunks.iter().map(Entry::from).collect();
            list.put(at, &entries).unwrap();
            let mut h = a.clone();
            h.chunks.clear();
            heads.push(h);
            ranges.push(at..at + entries.len());
            at += entries.len();
        }
        let head = Head {
            version: m.version,
            name: &m.name,
            created_unix: m.created_unix,
            source: &m.source,
            chunk_size: m.chunk_size,
            areas: &heads,
            ranges: &ranges,
            stats: &m.stats,
        };
        let (json, root) = write(&head, &list, Vec::new()).unwrap();
        assert_eq!(root, m.root);
        assert_eq!(json, serde_json::to_vec(&m).unwrap());
        assert_eq!(
            Manifest::parse("img", Path::new("img.json"), &json).unwrap(),
            m
        );
        // A chunk the list lacks fails the manifest with the list's own error.
        let short = ChunkList::new(dir.path(), total).unwrap();
        let e = write(&head, &short, Vec::new()).unwrap_err().to_string();
        assert!(e.contains("chunk 0 of the image was never hashed"), "{e}");
    }
}

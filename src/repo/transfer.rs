//! An image's records outside a repository, and back in: what `deploy` streams.
//!
//! `export_image` reads the distinct records one image needs, in the order the image
//! first uses them, opened (an encrypted repository's records are decrypted here, so
//! the key stays with the sender) and checked (decompressed, every chunk hashed). In
//! an encrypted repository chunk ids are keyed hashes a receiver without the key
//! cannot check, so the exported records and manifest carry plain blake3 ids instead;
//! the compressed bytes themselves are the same, never recompressed.
//!
//! `SpoolWriter` is the other end: a plaintext repository (a spool in RAM on a deploy
//! client) filled record by record, each decompressed and its ids checked before it is
//! written. The manifest comes last: a spool cut short never holds a manifest, so it
//! never looks like a complete image.

use super::config::{RepoConfig, DEFAULT_PACK_SIZE, MAX_CHUNK_SIZE};
use super::crypto;
use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::manifest::Manifest;
use super::pack::{self, Compression, Member, PackWriter, RecordInfo, FRAME_HEADER_LEN};
use super::{fsutil, index, Repository};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// One record as it travels: plaintext stored bytes, plain ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainRecord {
    /// The chunk's blake3 id, or the frame id of `members`.
    pub id: ChunkId,
    pub raw_len: u32,
    pub compression: Compression,
    /// The member chunks' lengths of a frame; empty for a single-chunk record.
    pub member_lens: Vec<u32>,
    /// The stored (compressed, never encrypted) bytes.
    pub data: Vec<u8>,
}

/// Calls `sink` with every distinct record image `name` needs, in order of first use,
/// and returns the image's manifest with plain ids (unchanged for a plaintext repository).
pub fn export_image(
    repo: &Repository,
    name: &str,
    mut sink: impl FnMut(PlainRecord) -> Result<()>,
) -> Result<Manifest> {
    let mut m = std::sync::Arc::unwrap_or_clone(repo.load_manifest(name)?);
    // Only this image's chunks: a fleet's repository holds many machines' (the whole
    // index was about 90 bytes for every chunk of every image).
    let idx = index::Index::load_only(repo, m.chunk_ids())?;
    let keys = repo.keys();
    let mut seen: HashSet<(PackId, u64)> = HashSet::new();
    // Keyed id -> plain id (encrypted repositories only).
    let mut plain: HashMap<ChunkId, ChunkId> = HashMap::new();
    let mut open: Option<(PackId, std::sync::Arc<dyn super::storage::ObjectReader>)> = None;
    let mut d =
        zstd::bulk::Decompressor::new().map_err(|e| RepoError::Pipeline(format!("zstd: {e}")))?;
    let max_stored = MAX_CHUNK_SIZE.saturating_mul(2);
    for area in &m.areas {
        for c in &area.chunks {
            let Some(id) = c.id else { continue };
            let bad = |what: String| RepoError::BadChunk {
                image: name.to_string(),
                area: area.name.clone(),
                id: id.to_string(),
                offset: c.offset,
                len: u64::from(c.len),
                what,
            };
            let loc = idx
                .locate(&id)
                .ok_or_else(|| bad("not in the index".into()))?;
            if !seen.insert((loc.pack, loc.record.offset)) {
                continue;
            }
            let pname = pack::pack_name(&loc.pack);
            let path = repo.loc(&pname);
            let file = match &open {
                Some((p, f)) if *p == loc.pack => f.clone(),
                _ => {
                    let f = repo.store().open(&pname).map_err(RepoError::io(&path))?;
                    open = Some((loc.pack, f.clone()));
                    f
                }
            };
            let info = loc.record;
            let stored = pack::read_record(file.as_ref(), &path, &info, max_stored)?;
            let lens = if info.is_frame() {
                frame_lens(file.as_ref(), &path, &info)?
            } else {
                Vec::new()
            };
            let data = match keys {
                None => stored,
                Some(k) => pack::open_record(k, &info, &stored)
                    .map_err(|e| bad(format!("pack {pname}: {e}")))?,
            };
            // Decompressed and hashed: the sender sends nothing it has not checked.
            let mut raw = Vec::new();
            let opened = RecordInfo {
                compression: info.compression,
                ..info
            };
            pack::decode_record_with(&mut d, &opened, &data, &mut raw, None)
                .or_else(|e| match (e, keys) {
                    // A keyed chunk id does not match a plain hash: checked below.
                    (pack::ChunkDecodeError::HashMismatch, Some(_)) => Ok(()),
                    (e, _) => Err(e),
                })
                .map_err(|e| bad(format!("pack {pname}: {e}")))?;
            let (pid, members) = plain_ids(&info, &lens, &raw, keys)
                .map_err(|e| bad(format!("pack {pname}: {e}")))?;
            if keys.is_some() {
                if info.is_frame() {
                    // The keyed member ids come from checking the frame with the key.
                    let keyed = pack::frame_members(&info, &lens, &raw, keys)
                        .map_err(|e| bad(format!("pack {pname}: {e}")))?;
                    for (k, p) in keyed.iter().zip(&members) {
                        plain.insert(k.id, p.id);
                    }
                } else {
                    plain.insert(info.id, pid);
                }
            }
            sink(PlainRecord {
                id: pid,
                raw_len: info.raw_len,
                compression: info.compression,
                member_lens: lens,
                data,
            })?;
        }
    }
    if keys.is_some() {
        for area in &mut m.areas {
            for c in &mut area.chunks {
                if let Some(id) = c.id.as_mut() {
                    *id = *plain.get(id).ok_or_else(|| RepoError::CorruptManifest {
                        image: name.to_string(),
                        path: repo.loc(&Repository::manifest_name(name)),
                        what: format!("chunk {id} was not exported"),
                    })?;
                }
            }
        }
        m.seal();
    }
    Ok(m)
}

/// A frame's member lengths, from its header in the pack.
fn frame_lens(
    file: &dyn super::storage::ObjectReader,
    path: &Path,
    info: &RecordInfo,
) -> Result<Vec<u32>> {
    let hlen = usize::try_from(info.header_len()).map_err(|_| RepoError::CorruptPack {
        path: path.to_path_buf(),
        offset: info.offset,
        what: "header length".into(),
    })?;
    let mut h = vec![0u8; hlen];
    file.read_exact_at(&mut h, info.offset)
        .map_err(RepoError::io(path))?;
    pack::decode_lens(
        path,
        info,
        h.get(FRAME_HEADER_LEN as usize..).unwrap_or(&[]),
    )
}

/// The plain id of a record and its members (one member for a chunk record), from its
/// raw bytes; with `keys` `None` also checks them against the record's own id.
fn plain_ids(
    info: &RecordInfo,
    lens: &[u32],
    raw: &[u8],
    keys: Option<&crypto::Keys>,
) -> std::result::Result<(ChunkId, Vec<Member>), pack::ChunkDecodeError> {
    if !info.is_frame() {
        let id = crypto::chunk_id(None, raw);
        if keys.is_none() && id != info.id {
            return Err(pack::ChunkDecodeError::HashMismatch);
        }
        return Ok((id, Vec::new()));
    }
    let members = pack::frame_members(info, lens, raw, None).or_else(|e| match (e, keys) {
        // Plain member ids never hash to a keyed frame id: recomputed below.
        (pack::ChunkDecodeError::FrameId, Some(_)) => plain_members(lens, raw),
        (e, _) => Err(e),
    })?;
    Ok((pack::frame_id(&members), members))
}

fn plain_members(
    lens: &[u32],
    raw: &[u8],
) -> std::result::Result<Vec<Member>, pack::ChunkDecodeError> {
    let mut start = 0usize;
    let mut out = Vec::with_capacity(lens.len());
    for &len in lens {
        let end = start.saturating_add(len as usize);
        let b = raw.get(start..end).ok_or(pack::ChunkDecodeError::Length {
            got: raw.len(),
            want: len,
        })?;
        out.push(Member {
            id: crypto::chunk_id(None, b),
            len,
        });
        start = end;
    }
    Ok(out)
}

/// Why a record offered to a spool was refused (the caller names the stream and byte).
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("record {id}: {source}")]
    Record {
        id: ChunkId,
        #[source]
        source: pack::ChunkDecodeError,
    },
    #[error("image {image}: chunk {id} is not in the stream")]
    MissingChunk { image: String, id: ChunkId },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// A plaintext repository filled from a stream of `PlainRecord`s.
pub struct SpoolWriter {
    repo: Repository,
    pack: Option<PackWriter>,
    have: HashSet<ChunkId>,
    d: zstd::bulk::Decompressor<'static>,
    raw: Vec<u8>,
}

impl SpoolWriter {
    /// A new repository in the empty directory `dir`, cut like the source (`chunk_size`).
    pub fn create(dir: &Path, chunk_size: u32) -> Result<SpoolWriter> {
        let repo = Repository::init_with(dir, RepoConfig::new(chunk_size, DEFAULT_PACK_SIZE))?;
        Ok(SpoolWriter {
            repo,
            pack: None,
            have: HashSet::new(),
            d: zstd::bulk::Decompressor::new()
                .map_err(|e| RepoError::Pipeline(format!("zstd: {e}")))?,
            raw: Vec::new(),
        })
    }

    /// Decompresses `r`, checks its ids and stores it.
    pub fn add(&mut self, r: PlainRecord) -> std::result::Result<(), SpoolError> {
        let members = u32::try_from(r.member_lens.len()).unwrap_or(u32::MAX);
        let info = RecordInfo {
            id: r.id,
            offset: 0,
            raw_len: r.raw_len,
            stored_len: u32::try_from(r.data.len()).unwrap_or(u32::MAX),
            compression: r.compression,
            crc32: 0,
            members,
        };
        let rec = |source| SpoolError::Record { id: r.id, source };
        pack::decode_record_with(&mut self.d, &info, &r.data, &mut self.raw, None).map_err(rec)?;
        let members = if info.is_frame() {
            pack::frame_members(&info, &r.member_lens, &self.raw, None).map_err(rec)?
        } else {
            Vec::new()
        };
        if members.is_empty() {
            self.have.insert(r.id);
        } else {
            self.have.extend(members.iter().map(|m| m.id));
        }
        let size = self.repo.config().pack_size;
        let w = match self.pack.as_mut() {
            Some(w) => w,
            None => self.pack.insert(PackWriter::create(self.repo.store())?),
        };
        w.add(&pack::Record {
            id: r.id,
            raw_len: r.raw_len,
            compression: r.compression,
            data: r.data,
            members,
        })?;
        if w.full(size) {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(w) = self.pack.take() {
            let (id, _name, records) = w.finish(self.repo.store())?;
            index::write(&self.repo, &id, records)?;
        }
        Ok(())
    }

    /// Publishes the image: `manifest_json` must name `image`, pass its root hash and
    /// use only chunks that came in the stream.
    pub fn finish(
        mut self,
        image: &str,
        manifest_json: &[u8],
    ) -> std::result::Result<Repository, SpoolError> {
        self.flush()?;
        let obj = Repository::manifest_name(image);
        let path = self.repo.loc(&obj);
        let m = Manifest::parse(image, &path, manifest_json)?;
        if let Some(id) = m.chunk_ids().find(|id| !self.have.contains(id)) {
            return Err(SpoolError::MissingChunk {
                image: image.to_string(),
                id,
            });
        }
        let body = fsutil::compress_json(&m).map_err(RepoError::io(&path))?;
        self.repo.put(&obj, &body)?;
        Ok(self.repo)
    }
}

/// The manifest as the stream carries it: the JSON through zstd.
pub fn manifest_bytes(m: &Manifest) -> Result<Vec<u8>> {
    fsutil::compress_json(m).map_err(|e| RepoError::CorruptManifest {
        image: m.name.clone(),
        path: Path::new("(stream)").to_path_buf(),
        what: e.to_string(),
    })
}

/// The most JSON a streamed manifest may unpack to: less than a repository's
/// (`manifest::MAX_MANIFEST`), because the receiver holds it whole and it comes from
/// the network (deploy/stream.rs takes 1 GiB compressed).
const STREAM_MANIFEST_JSON: u64 = 2 << 30;

/// The JSON of a streamed manifest, at most `STREAM_MANIFEST_JSON` bytes.
pub fn manifest_json(image: &str, bytes: Vec<u8>) -> Result<Vec<u8>> {
    fsutil::unpack_json(bytes, STREAM_MANIFEST_JSON).map_err(|what| RepoError::CorruptManifest {
        image: image.to_string(),
        path: Path::new("(stream)").to_path_buf(),
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(raw: &[u8], lens: Vec<u32>) -> PlainRecord {
        let members: Vec<Member> = {
            let mut at = 0usize;
            lens.iter()
                .map(|&l| {
                    let m = Member {
                        id: crypto::chunk_id(None, &raw[at..at + l as usize]),
                        len: l,
                    };
                    at += l as usize;
                    m
                })
                .collect()
        };
        PlainRecord {
            id: if lens.is_empty() {
                crypto::chunk_id(None, raw)
            } else {
                pack::frame_id(&members)
            },
            raw_len: raw.len() as u32,
            compression: Compression::Zstd,
            member_lens: lens,
            data: zstd::bulk::compress(raw, 3).unwrap(),
        }
    }

    #[test]
    fn spool_checks_every_record() {
        let d = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(&d.path().join("r"), 1 << 20).unwrap();
        w.add(rec(b"one chunk of bytes", vec![])).unwrap();
        w.add(rec(b"frame: a and b", vec![9, 5])).unwrap();
        // Bytes that do not hash to the id, a frame whose lengths do not cut its members,
        // a corrupt zstd frame: each refused.
        let mut bad = rec(b"xyz", vec![]);
        bad.data = zstd::bulk::compress(b"xyw", 3).unwrap();
        assert!(matches!(w.add(bad), Err(SpoolError::Record { .. })));
        let mut bad = rec(b"frame: a and b", vec![9, 5]);
        bad.member_lens = vec![8, 6];
        assert!(matches!(w.add(bad), Err(SpoolError::Record { .. })));
        let mut bad = rec(b"abc", vec![]);
        bad.data[5] ^= 0xff;
        assert!(w.add(bad).is_err());
        // A manifest that does not parse is no image.
        assert!(w.finish("img", b"{}").is_err());
    }
}

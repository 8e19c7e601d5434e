//! Record headers, the one place they are encoded and decoded.
//!
//! Two kinds of record live in packs. A *chunk record* (`ICCK`, pack versions 1 and 2)
//! holds one chunk. A *frame record* (`ICFR`, pack version 3) holds several chunks
//! compressed together: the unit of deduplication (a chunk, cut on a file's own offsets)
//! is smaller than the unit of compression (a frame of up to 8 MiB), because a zstd
//! frame per small chunk loses the matches the 8 MiB window finds (docs/FORMAT.md).
//!
//! ```text
//! chunk record:  "ICCK" | chunk id [32] | raw_len u32 | stored_len u32 | compression u8
//!                | pad [3] | crc32 u32                                       (52 bytes)
//! frame record:  "ICFR" | frame id [32] | raw_len u32 | stored_len u32 | compression u8
//!                | pad [3] | crc32 u32 | members u32                       (56 bytes)
//!                | members × len u32
//! ```
//! then `stored_len` stored bytes. A frame's members are its chunks, back to back in its
//! raw bytes; their ids are not repeated in the pack (the index holds them, and a scan
//! recomputes them from the bytes). The frame id is the blake3 hash of the member list
//! (each id followed by its length, little-endian), so it commits to every chunk.

use super::super::error::{RepoError, Result};
use super::super::id::ChunkId;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const RECORD_MAGIC: &[u8; 4] = b"ICCK";
pub const FRAME_MAGIC: &[u8; 4] = b"ICFR";
pub const RECORD_HEADER_LEN: u64 = 52;
pub const FRAME_HEADER_LEN: u64 = 56;
/// Members of one frame: a frame holds at most 8 MiB of chunks of at least one block.
pub const MAX_MEMBERS: u32 = 1 << 16;

/// How a record's bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Stored as is (incompressible data).
    None,
    Zstd,
}

impl Compression {
    pub(crate) fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 1,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Compression::None),
            1 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a record lives, as the index stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordInfo {
    /// The chunk's id (chunk record) or the frame's id (frame record).
    pub id: ChunkId,
    /// Byte offset of the record header in the pack.
    pub offset: u64,
    pub raw_len: u32,
    pub stored_len: u32,
    pub compression: Compression,
    pub crc32: u32,
    /// 0 for a chunk record; the number of chunks of a frame record.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub members: u32,
}

impl RecordInfo {
    pub fn is_frame(&self) -> bool {
        self.members > 0
    }

    /// Bytes from the record's start to its stored bytes.
    pub fn header_len(&self) -> u64 {
        if self.is_frame() {
            FRAME_HEADER_LEN + 4 * u64::from(self.members)
        } else {
            RECORD_HEADER_LEN
        }
    }
}

/// One chunk of a frame: its id and length. Serialised as `["<hex id>", len]`, since
/// index files hold one per chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(ChunkId, u32)", into = "(ChunkId, u32)")]
pub struct Member {
    pub id: ChunkId,
    pub len: u32,
}

impl From<(ChunkId, u32)> for Member {
    fn from((id, len): (ChunkId, u32)) -> Self {
        Member { id, len }
    }
}
impl From<Member> for (ChunkId, u32) {
    fn from(m: Member) -> Self {
        (m.id, m.len)
    }
}

/// The id of a frame holding `members`, in order.
pub fn frame_id(members: &[Member]) -> ChunkId {
    let mut h = blake3::Hasher::new();
    for m in members {
        h.update(&m.id.0);
        h.update(&m.len.to_le_bytes());
    }
    ChunkId(*h.finalize().as_bytes())
}

/// The header of `r`, and for a frame the member lengths after it.
pub fn encode_header(r: &RecordInfo, members: &[Member]) -> Vec<u8> {
    let mut h = vec![0u8; r.header_len() as usize];
    h[0..4].copy_from_slice(if r.is_frame() {
        FRAME_MAGIC
    } else {
        RECORD_MAGIC
    });
    h[4..36].copy_from_slice(&r.id.0);
    h[36..40].copy_from_slice(&r.raw_len.to_le_bytes());
    h[40..44].copy_from_slice(&r.stored_len.to_le_bytes());
    h[44] = r.compression.code();
    h[48..52].copy_from_slice(&r.crc32.to_le_bytes());
    if r.is_frame() {
        h[52..56].copy_from_slice(&r.members.to_le_bytes());
        for (slot, m) in h[56..].chunks_exact_mut(4).zip(members) {
            slot.copy_from_slice(&m.len.to_le_bytes());
        }
    }
    h
}

/// Decodes the fixed part of a record header (52 bytes, or 56 for a frame; `h` may be
/// longer) found at `offset` in `path`. A frame's member lengths follow it
/// (`RecordInfo::header_len`) and are read by `decode_lens`.
pub fn decode_header(path: &Path, offset: u64, h: &[u8]) -> Result<RecordInfo> {
    let bad = |what: String| RepoError::CorruptPack {
        path: path.to_path_buf(),
        offset,
        what,
    };
    let magic = h
        .get(0..4)
        .ok_or_else(|| bad("short record header".into()))?;
    let frame = match magic {
        m if m == RECORD_MAGIC => false,
        m if m == FRAME_MAGIC => true,
        _ => return Err(bad("bad record magic".into())),
    };
    let fixed = if frame {
        FRAME_HEADER_LEN
    } else {
        RECORD_HEADER_LEN
    } as usize;
    let h = h
        .get(..fixed)
        .ok_or_else(|| bad("short record header".into()))?;
    let mut id = [0u8; 32];
    id.copy_from_slice(&h[4..36]);
    let u32_at = |i: usize| crate::bytes::le32(h, i).unwrap_or(0);
    let compression = Compression::from_code(h[44])
        .ok_or_else(|| bad(format!("unknown compression {}", h[44])))?;
    let members = if frame { u32_at(52) } else { 0 };
    if frame && !(1..=MAX_MEMBERS).contains(&members) {
        return Err(bad(format!("frame of {members} chunks")));
    }
    Ok(RecordInfo {
        id: ChunkId(id),
        offset,
        raw_len: u32_at(36),
        stored_len: u32_at(40),
        compression,
        crc32: u32_at(48),
        members,
    })
}

/// The member lengths of frame `r` from the bytes after its fixed header; they must add
/// up to the frame's raw length.
pub fn decode_lens(path: &Path, r: &RecordInfo, lens: &[u8]) -> Result<Vec<u32>> {
    let bad = |what: String| RepoError::CorruptPack {
        path: path.to_path_buf(),
        offset: r.offset,
        what,
    };
    let want = 4 * r.members as usize;
    let lens = lens
        .get(..want)
        .ok_or_else(|| bad("truncated frame member list".into()))?;
    let out: Vec<u32> = lens
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let sum = out.iter().try_fold(0u32, |a, &l| match l {
        0 => None,
        l => a.checked_add(l),
    });
    if sum != Some(r.raw_len) {
        return Err(bad(format!(
            "frame members do not add up to its {} bytes",
            r.raw_len
        )));
    }
    Ok(out)
}

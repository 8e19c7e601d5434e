//! A backup worker's job: hash the chunks of one piece and compress the new ones into
//! one frame (the pipeline around it is `super`).

use super::super::bufpool::Pools;
use super::super::compress::{is_zero, ChunkCompressor};
use super::super::crypto;
use super::super::error::{RepoError, Result};
use super::super::id::ChunkId;
use super::super::pack::{self, Member, Record};
use super::claimed::Claimed;
use super::known::KnownSet;

/// What a worker made of one piece: each chunk's id (`None`: all zeros) and the frame
/// of its new chunks, if any.
pub(super) struct Outcome {
    pub(super) ids: Vec<Option<ChunkId>>,
    pub(super) zero_bytes: u64,
    pub(super) known_bytes: u64,
    pub(super) new_bytes: u64,
    pub(super) frame: Option<Record>,
}

/// Hashes each chunk of one piece (`data`, chunk lengths `lens`) and compresses the
/// new ones, back to back, as one frame. A piece whose chunks are all new is its own
/// frame buffer; otherwise the new chunks are gathered into a pooled one.
pub(super) fn hash_piece(
    c: &mut ChunkCompressor,
    data: &[u8],
    lens: &[u32],
    known: &KnownSet,
    claimed: &Claimed,
    pools: &Pools,
    keys: Option<&crypto::Keys>,
) -> Result<Outcome> {
    let mut out = Outcome {
        ids: Vec::with_capacity(lens.len()),
        zero_bytes: 0,
        known_bytes: 0,
        new_bytes: 0,
        frame: None,
    };
    let mut members: Vec<Member> = Vec::new();
    // New chunks as (start, len) in `data`.
    let mut fresh: Vec<(usize, usize)> = Vec::new();
    let mut at = 0usize;
    for &len in lens {
        let n = len as usize;
        let bytes = data.get(at..at + n).ok_or_else(|| {
            RepoError::Pipeline(format!(
                "piece of {} bytes holds no chunk at {at}+{n}",
                data.len()
            ))
        })?;
        if is_zero(bytes) {
            out.zero_bytes += u64::from(len);
            out.ids.push(None);
        } else {
            let id = crypto::chunk_id(keys, bytes);
            let new = !known.contains(&id) && claimed.insert(id);
            if new {
                out.new_bytes += u64::from(len);
                members.push(Member { id, len });
                fresh.push((at, n));
            } else {
                out.known_bytes += u64::from(len);
            }
            out.ids.push(Some(id));
        }
        at += n;
    }
    if members.is_empty() {
        return Ok(out);
    }
    let total: usize = fresh.iter().map(|f| f.1).sum();
    let mut frame = pools.chunks.take_dirty(total);
    frame.clear();
    for &(s, n) in &fresh {
        frame.extend_from_slice(data.get(s..s + n).unwrap_or(&[]));
    }
    let mut record = c.record(frame, members, pools)?;
    if let Some(k) = keys {
        pack::seal_record(k, &mut record)?;
    }
    out.frame = Some(record);
    Ok(out)
}

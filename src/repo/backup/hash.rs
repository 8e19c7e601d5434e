//! A backup worker's job: hash the chunks of one piece and compress the new ones into
//! one frame (the pipeline around it is `super`).

use super::super::bufpool::Pools;
use super::super::compress::{is_zero, ChunkCompressor, Room};
use super::super::crypto;
use super::super::error::{RepoError, Result};
use super::super::pack::{self, Member, Record};
use super::claimed::Claimed;
use super::cut::Piece;
use super::known::KnownSet;
use super::list::{ChunkList, Entry};
use std::sync::atomic::{AtomicU64, Ordering};

/// What every worker shares.
pub(super) struct Shared<'a> {
    pub known: &'a KnownSet,
    /// One bit per known chunk: set when the image references it (distinct chunks
    /// are counted without a set of ids).
    pub seen: &'a [AtomicU64],
    pub claimed: &'a Claimed<'a>,
    pub list: &'a ChunkList,
    pub pools: &'a Pools,
    pub keys: Option<&'a crypto::Keys>,
}

impl Shared<'_> {
    /// Marks known chunk `i` as referenced.
    pub(super) fn see(&self, i: usize) {
        if let Some(w) = self.seen.get(i / 64) {
            w.fetch_or(1 << (i % 64), Ordering::Relaxed);
        }
    }
}

/// What a worker made of one piece (its chunks' ids are in the chunk list): the
/// bytes by kind and the frame of its new chunks, if any.
pub(super) struct Outcome {
    pub(super) zero_bytes: u64,
    pub(super) known_bytes: u64,
    pub(super) new_bytes: u64,
    pub(super) frame: Option<Record>,
}

/// Hashes each chunk of `piece` (`data`, chunk lengths `lens`), records them in the
/// chunk list, and compresses the new ones, back to back, as one frame. The records
/// are written before any chunk is claimed: the claimed table confirms a match by
/// reading the full id from the list.
pub(super) fn hash_piece(
    c: &mut ChunkCompressor,
    data: &[u8],
    piece: &Piece,
    lens: &[u32],
    sh: &Shared<'_>,
) -> Result<Outcome> {
    let mut out = Outcome {
        zero_bytes: 0,
        known_bytes: 0,
        new_bytes: 0,
        frame: None,
    };
    // The lengths are found again from the piece's offset (cut.rs): they must cover
    // the piece exactly, or a chunk would be listed with bytes it does not hold.
    let sum: u64 = lens.iter().map(|&l| u64::from(l)).sum();
    if lens.len() != piece.count as usize || sum != data.len() as u64 {
        return Err(RepoError::Pipeline(format!(
            "piece at {} of {} bytes in {} chunks, cut again into {} chunks of {sum} bytes",
            piece.offset,
            data.len(),
            piece.count,
            lens.len()
        )));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(lens.len());
    let mut at = 0usize;
    let mut offset = piece.offset;
    for &len in lens {
        let n = len as usize;
        let bytes = data.get(at..at + n).ok_or_else(|| {
            RepoError::Pipeline(format!(
                "piece of {} bytes holds no chunk at {at}+{n}",
                data.len()
            ))
        })?;
        let id = (!is_zero(bytes)).then(|| crypto::chunk_id(sh.keys, bytes));
        entries.push(Entry { offset, len, id });
        at += n;
        offset += u64::from(len);
    }
    sh.list.put(piece.first, &entries)?;
    let mut members: Vec<Member> = Vec::new();
    // New chunks as (start, len) in `data`.
    let mut fresh: Vec<(usize, usize)> = Vec::new();
    let mut at = 0usize;
    for (k, e) in entries.iter().enumerate() {
        let n = e.len as usize;
        match e.id {
            None => out.zero_bytes += u64::from(e.len),
            Some(id) => {
                let new = match sh.known.position(&id)? {
                    Some(i) => {
                        sh.see(i);
                        false
                    }
                    None => sh.claimed.insert(id, piece.first + k)?,
                };
                if new {
                    out.new_bytes += u64::from(e.len);
                    members.push(Member { id, len: e.len });
                    fresh.push((at, n));
                } else {
                    out.known_bytes += u64::from(e.len);
                }
            }
        }
        at += n;
    }
    if members.is_empty() {
        return Ok(out);
    }
    let pools = sh.pools;
    // Sealed, a record is nonce ‖ ciphertext ‖ tag: its buffer keeps room for both, so
    // sealing in place moves no byte (shifting every record by the nonce's 24 bytes
    // was a tenth of the cipher's own time, docs/BENCH.md "Branch encgap").
    let room = match sh.keys {
        Some(_) => Room {
            front: crypto::NONCE_LEN,
            back: crypto::TAG_LEN,
        },
        None => Room::default(),
    };
    let total: usize = fresh.iter().map(|f| f.1).sum();
    let mut record = if fresh.len() == lens.len() {
        // Every chunk is new (a first backup's pieces): the frame is the piece as read,
        // compressed from the reader's buffer without a copy.
        let frame = data.get(..total).ok_or_else(|| {
            RepoError::Pipeline(format!("piece of {} bytes, its chunks {total}", data.len()))
        })?;
        c.record_in(frame, room, members, pools)?
    } else {
        let mut frame = pools.chunks.take(total);
        for &(s, n) in &fresh {
            frame.extend_from_slice(data.get(s..s + n).unwrap_or(&[]));
        }
        let record = c.record_in(&frame, room, members, pools);
        pools.chunks.give(frame);
        record?
    };
    if let Some(k) = sh.keys {
        pack::seal_record(k, &mut record)?;
    }
    out.frame = Some(record);
    Ok(out)
}

//! Additional authenticated data: what each sealed object is and where it belongs, so
//! an object moved to another name or place fails to open instead of being misread.

use crate::repo::id::{ChunkId, PackId};

/// The AAD of one sealed object. Each starts with a distinct tag, so two kinds can
/// never share an AAD.
pub struct Aad(Vec<u8>);

impl Aad {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn tagged(tag: &[u8], rest: &[&[u8]]) -> Aad {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(b"ironclone/");
        v.extend_from_slice(tag);
        v.push(0);
        for r in rest {
            v.extend_from_slice(r);
        }
        Aad(v)
    }

    /// A pack record: the header fields that say what the bytes are (kind, id, raw
    /// length, compression, member count). `stored_len` and the CRC describe the
    /// sealed bytes themselves, and the offset changes when prune copies a record.
    pub fn record(frame: bool, id: &ChunkId, raw_len: u32, compression: u8, members: u32) -> Aad {
        Aad::tagged(
            b"record",
            &[
                &[u8::from(frame)],
                &id.0,
                &raw_len.to_le_bytes(),
                &[compression],
                &members.to_le_bytes(),
            ],
        )
    }

    /// The index file of pack `pack`.
    pub fn index(pack: &PackId) -> Aad {
        Aad::tagged(b"index", &[&pack.0])
    }

    /// The manifest of image `name`.
    pub fn image(name: &str) -> Aad {
        Aad::tagged(b"image", &[name.as_bytes()])
    }

    /// The summary of image `name` (repo/summary.rs).
    pub fn image_summary(name: &str) -> Aad {
        Aad::tagged(b"image-summary", &[name.as_bytes()])
    }

    /// Segment `index` of image `name`'s manifest sealed as a stream (stream.rs):
    /// the fixed-size fields first, then the name to the end, so no two differ only
    /// in where one field stops.
    pub fn image_segment(name: &str, index: u64, last: bool, segment: u32) -> Aad {
        Aad::tagged(
            b"image-stream",
            &[
                &index.to_le_bytes(),
                &[u8::from(last)],
                &segment.to_le_bytes(),
                name.as_bytes(),
            ],
        )
    }

    /// A key slot: the repository id and the slot's own fields (`slot::aad_of`).
    pub fn slot(repo_id: &str, slot_fields: &[u8]) -> Aad {
        Aad::tagged(b"key-slot", &[repo_id.as_bytes(), &[0], slot_fields])
    }
}

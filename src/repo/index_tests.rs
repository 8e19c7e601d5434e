//! `Index::add` into a whole index and into one that keeps only some chunks.

use super::*;
use crate::repo::pack::{Compression, Member};

fn id(n: u8) -> ChunkId {
    ChunkId::of(&[n])
}

/// A frame record at `offset` holding chunks `ids`, each `n * 100` bytes long.
fn frame(offset: u64, ids: &[u8]) -> Entry {
    let chunks: Vec<Member> = ids
        .iter()
        .map(|&n| Member {
            id: id(n),
            len: u32::from(n) * 100,
        })
        .collect();
    Entry {
        record: RecordInfo {
            id: ChunkId::of(&offset.to_le_bytes()),
            offset,
            raw_len: chunks.iter().map(|m| m.len).sum(),
            stored_len: 1,
            compression: Compression::Zstd,
            crc32: 0,
            members: chunks.len() as u32,
        },
        chunks,
    }
}

/// Indexes keeping only chunks `ids`: owning the ids (verify's), and referring to
/// a list of chunk references (a restore's; here with a repeat and a zero chunk).
fn onlies(ids: &[u8]) -> [Index; 2] {
    let (wanted, buckets) = Wanted::owned(ids.iter().map(|&n| id(n)));
    let owned = Index::only(wanted, buckets);
    let refs: Vec<crate::repo::manifest::ChunkRef> = ids
        .iter()
        .chain(ids.first())
        .map(|&n| Some(id(n)))
        .chain([None])
        .map(|id| crate::repo::manifest::ChunkRef {
            offset: 0,
            len: 1,
            id,
        })
        .collect();
    let (wanted, buckets) = Wanted::refs(Arc::new(refs)).unwrap();
    [owned, Index::only(wanted, buckets)]
}

#[test]
fn an_index_of_some_chunks_keeps_them_and_their_records_only() {
    for idx in onlies(&[2, 5, 9]) {
        some_chunks_kept(idx);
    }
}

fn some_chunks_kept(mut idx: Index) {
    let pack = PackId::of(b"p");
    idx.add(
        pack,
        &[
            frame(0, &[1, 2, 3]),
            frame(64, &[4, 6]),
            frame(128, &[7, 5]),
        ],
    );
    let l = idx.locate(&id(2)).expect("a wanted chunk is located");
    assert_eq!((l.record.offset, l.start, l.len), (0, 100, 200));
    let l = idx.locate(&id(5)).expect("a wanted chunk is located");
    assert_eq!((l.record.offset, l.start, l.len), (128, 700, 500));
    for n in [1, 3, 4, 6, 7] {
        assert!(idx.locate(&id(n)).is_none(), "chunk {n} was not asked for");
    }
    assert!(idx.locate(&id(9)).is_none(), "no index file holds chunk 9");
    assert_eq!(idx.records.len(), 2, "the frame of 4 and 6 is not kept");
    assert_eq!(
        idx.packs.get(&pack),
        Some(&7),
        "a pack still counts all its chunks"
    );
    let known: Vec<ChunkId> = idx.chunk_packs().map(|(i, _)| i).collect();
    assert_eq!(known.len(), 2);
    // The whole index knows every chunk.
    let mut all = Index::default();
    all.add(pack, &[frame(0, &[1, 2, 3]), frame(64, &[4, 6])]);
    assert!([1, 2, 3, 4, 6]
        .iter()
        .all(|&n| all.locate(&id(n)).is_some()));
    assert_eq!(all.wanted_len(), 0);
}

#[test]
fn a_present_copy_wins_over_a_lost_pack_in_either_order_and_either_index() {
    let (lost, here) = (PackId::of(b"lost"), PackId::of(b"here"));
    for first_lost in [true, false] {
        let [owned, refs] = onlies(&[2, 3]);
        for mut idx in [Index::default(), owned, refs] {
            idx.missing_packs.insert(lost);
            let order = match first_lost {
                true => [(lost, 0), (here, 512)],
                false => [(here, 512), (lost, 0)],
            };
            for (p, at) in order {
                idx.add(p, &[frame(at, &[2, 3])]);
            }
            for n in [2, 3] {
                let l = idx.locate(&id(n)).expect("located");
                assert_eq!((l.pack, l.record.offset), (here, 512), "chunk {n}");
            }
        }
    }
    // Two present copies: the first one read stays.
    let (a, b) = (PackId::of(b"a"), PackId::of(b"b"));
    for mut idx in onlies(&[2]) {
        idx.add(a, &[frame(0, &[2])]);
        idx.add(b, &[frame(8, &[2])]);
        assert_eq!(idx.locate(&id(2)).map(|l| l.pack), Some(a));
    }
}

#[test]
fn a_numbered_index_finds_each_chunk_by_number_repeats_too() {
    // Chunks 0..4: ids 2, 5, 2 (a repeat), none (zero), 7 (in no index file).
    let ids = [Some(2u8), Some(5), Some(2), None, Some(7)];
    let refs: Vec<crate::repo::manifest::ChunkRef> = ids
        .iter()
        .map(|n| crate::repo::manifest::ChunkRef {
            offset: 0,
            len: 1,
            id: n.map(id),
        })
        .collect();
    let (wanted, buckets) = Wanted::refs(Arc::new(refs.clone())).unwrap();
    let mut idx = Index::only(wanted, buckets);
    let pack = PackId([1; 32]);
    idx.add(pack, &[frame(0, &[1, 2]), frame(500, &[5])]);
    let before: Vec<Option<(u64, u32)>> = ids
        .iter()
        .map(|n| {
            n.and_then(|n| idx.locate(&id(n)))
                .map(|l| (l.record.offset, l.start))
        })
        .collect();
    assert_eq!(
        before,
        vec![Some((0, 100)), Some((500, 0)), Some((0, 100)), None, None]
    );
    idx.number(&refs);
    let after: Vec<Option<(u64, u32)>> = (0..ids.len())
        .map(|g| idx.locate_number(g).map(|l| (l.record.offset, l.start)))
        .collect();
    assert_eq!(after, before);
    assert!(idx.locate_number(ids.len()).is_none());
    // Nothing is found by id any more: the ids' tags are gone.
    assert!(idx.locate(&id(2)).is_none());
}

#[test]
fn the_checksum_is_blake3_of_the_json_of_pack_and_entries() {
    // docs/FORMAT.md defines it on the JSON text; the hash is taken as it is written.
    let pack = PackId([7; 32]);
    let entries: Vec<Entry> = (0..3000u64).map(|i| frame(i * 10, &[1, 2, 3])).collect();
    let json = serde_json::to_vec(&(&pack, &entries)).unwrap();
    assert!(json.len() > 128 << 10, "more than the buffer");
    assert_eq!(
        checksum(&pack, &entries),
        blake3::hash(&json).to_hex().to_string()
    );
}

#[test]
fn an_entry_is_never_longer_than_its_bound() {
    for n in [0usize, 1, 64] {
        let chunks: Vec<Member> = (0..n)
            .map(|i| Member {
                id: id(i as u8),
                len: u32::MAX,
            })
            .collect();
        let widest = Entry {
            record: RecordInfo {
                id: id(0),
                offset: u64::MAX,
                raw_len: u32::MAX,
                stored_len: u32::MAX,
                compression: Compression::Zstd,
                crc32: u32::MAX,
                members: u32::MAX,
            },
            chunks,
        };
        // The comma between entries too.
        let len = serde_json::to_vec(&widest).unwrap().len() as u64 + 1;
        assert!(len <= entry_json_bound(n), "{n} chunks: {len} bytes");
        // Not so loose that packs close far too early: 64 bytes a record, 16 a chunk.
        let slack = entry_json_bound(n) - len;
        assert!(
            slack < 64 + 16 * n as u64,
            "{n} chunks: {len} bytes, bound loose"
        );
    }
}

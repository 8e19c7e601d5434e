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

fn only(ids: &[u8]) -> Index {
    let mut ids: Vec<ChunkId> = ids.iter().map(|&n| id(n)).collect();
    ids.sort_unstable();
    let slots = vec![Slot::EMPTY; ids.len()];
    let buckets = Buckets::new(&ids);
    Index {
        chunks: Chunks::Only {
            ids,
            slots,
            buckets,
        },
        ..Index::default()
    }
}

#[test]
fn an_index_of_some_chunks_keeps_them_and_their_records_only() {
    let pack = PackId::of(b"p");
    let mut idx = only(&[2, 5, 9]);
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
    let known: Vec<&ChunkId> = idx.chunk_packs().map(|(i, _)| i).collect();
    assert_eq!(known.len(), 2);
    // The whole index knows every chunk.
    let mut all = Index::default();
    all.add(pack, &[frame(0, &[1, 2, 3]), frame(64, &[4, 6])]);
    assert!([1, 2, 3, 4, 6]
        .iter()
        .all(|&n| all.locate(&id(n)).is_some()));
    assert!(all.wanted().is_empty());
}

#[test]
fn a_present_copy_wins_over_a_lost_pack_in_either_order_and_either_index() {
    let (lost, here) = (PackId::of(b"lost"), PackId::of(b"here"));
    for first_lost in [true, false] {
        for mut idx in [Index::default(), only(&[2, 3])] {
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
    let mut idx = only(&[2]);
    idx.add(a, &[frame(0, &[2])]);
    idx.add(b, &[frame(8, &[2])]);
    assert_eq!(idx.locate(&id(2)).map(|l| l.pack), Some(a));
}

#[test]
fn buckets_find_every_id_and_nothing_else() {
    for n in [0usize, 1, 2, 3, 5, 64, 1000, 4097] {
        let mut ids: Vec<ChunkId> = (0..n).map(|i| ChunkId::of(&i.to_le_bytes())).collect();
        // Ids at both ends of the range of leading bits.
        if n > 1 {
            ids[0] = ChunkId([0; 32]);
            ids[1] = ChunkId([0xff; 32]);
        }
        ids.sort_unstable();
        let b = Buckets::new(&ids);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(b.find(&ids, id), Some(i), "{n} ids, id {i}");
        }
        for i in n..n + 100 {
            assert_eq!(b.find(&ids, &ChunkId::of(&i.to_le_bytes())), None);
        }
        assert!(
            b.starts.len() <= n.max(4) + 1,
            "{} buckets for {n} ids",
            b.starts.len()
        );
    }
}

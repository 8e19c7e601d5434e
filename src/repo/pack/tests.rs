//! Pack naming: version 2 by its headers, version 1 (older repositories) by the whole
//! file, and what a scan says when either no longer matches.

use super::record::RECORD_HEADER_LEN;
use super::*;
use crate::repo::storage::LocalStorage;

/// A pack file read whole and scanned (the repository's `scan` reads the object).
fn scan(
    path: &Path,
    id: Option<&PackId>,
    max: u32,
    keys: Option<&crate::repo::crypto::Keys>,
) -> Result<PackScan> {
    let data = std::fs::read(path).map_err(RepoError::io(path))?;
    Ok(scan_bytes(path, &data, id, max, keys))
}

/// Writes `w`'s pack into the directory `dir`; returns its id, file and records.
fn finish(w: PackWriter, dir: &Path) -> (PackId, PathBuf, Vec<Entry>) {
    let (id, name, records) = w.finish(&LocalStorage::new(dir.to_path_buf())).unwrap();
    (id, dir.join(name), records)
}

fn record(byte: u8, len: usize) -> Record {
    let data = vec![byte; len];
    Record {
        id: ChunkId::of(&data),
        raw_len: len as u32,
        compression: Compression::None,
        data,
        members: vec![],
    }
}

/// A frame of three chunks (4 KiB of 1s, 8 KiB of text, 4 KiB of 2s), zstd.
fn frame() -> (Record, Vec<u8>) {
    let parts = [
        vec![1u8; 4096],
        b"frame "
            .iter()
            .copied()
            .cycle()
            .take(8192)
            .collect::<Vec<u8>>(),
        vec![2u8; 4096],
    ];
    let members: Vec<Member> = parts
        .iter()
        .map(|p| Member {
            id: ChunkId::of(p),
            len: p.len() as u32,
        })
        .collect();
    let raw = parts.concat();
    let data = zstd::bulk::compress(&raw, 3).unwrap();
    let rec = Record {
        id: frame_id(&members),
        raw_len: raw.len() as u32,
        compression: Compression::Zstd,
        data,
        members,
    };
    (rec, raw)
}

#[test]
fn a_frame_record_scans_back_to_its_chunks_and_any_flip_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PackWriter::create(&LocalStorage::new(dir.path().to_path_buf())).unwrap();
    let (rec, raw) = frame();
    w.add(&rec).unwrap();
    w.add(&record(7, 3000)).unwrap();
    let (id, path, entries) = finish(w, dir.path());
    assert_eq!(entries[0].chunks, rec.members);
    assert_eq!(entries[0].record.header_len(), FRAME_HEADER_LEN + 12);
    let s = scan(&path, Some(&id), 1 << 20, None).unwrap();
    assert!(s.bad.is_empty() && s.name_matches);
    assert_eq!(
        s.good, entries,
        "a scan recomputes the member ids the writer listed"
    );
    // The record reads back through the index entry, and decodes to the chunks.
    let f = std::fs::File::open(&path).unwrap();
    let stored = read_record(&f, &path, &entries[0].record, 1 << 20).unwrap();
    let got = decode_record(&entries[0].record, &stored, None).unwrap();
    assert_eq!(got, raw);
    check_members(&entries[0].record, &rec.members, &got, None).unwrap();
    let mut swapped = rec.members.clone();
    swapped.swap(0, 2);
    assert!(check_members(&entries[0].record, &swapped, &got, None).is_err());
    let lens: Vec<u32> = rec.members.iter().map(|m| m.len).collect();
    let info = &entries[0].record;
    assert_eq!(frame_members(info, &lens, &got, None).unwrap(), rec.members);
    let short = frame_members(info, &lens[..2], &got, None);
    assert!(
        matches!(short, Err(ChunkDecodeError::Length { .. })),
        "{short:?}"
    );
    let long = frame_members(info, &[lens[0], lens[1], lens[2], 1], &got, None);
    assert!(
        matches!(long, Err(ChunkDecodeError::Length { .. })),
        "{long:?}"
    );
    // A member length changed (the lengths still add up: 4096+8192 → 8192+4096).
    let lens_at = (PACK_HEADER_LEN + FRAME_HEADER_LEN) as usize;
    let mut b = std::fs::read(&path).unwrap();
    b[lens_at..lens_at + 4].copy_from_slice(&8192u32.to_le_bytes());
    b[lens_at + 4..lens_at + 8].copy_from_slice(&4096u32.to_le_bytes());
    let s = scan_bytes(&path, &b, None, 1 << 20, None);
    assert_eq!(s.good.len(), 1, "the chunk record after it is fine");
    assert!(s.bad[0].2.contains("member list"), "{:?}", s.bad);
    // A stored byte flipped: the CRC.
    flip(&path, lens_at + 12 + 5);
    let s = scan(&path, Some(&id), 1 << 20, None).unwrap();
    assert!(s.bad[0].2.contains("CRC"), "{:?}", s.bad);
}

/// Writes a version-2 pack of two records; returns its id and path.
fn write_pack(dir: &Path) -> (PackId, PathBuf) {
    let mut w = PackWriter::create(&LocalStorage::new(dir.to_path_buf())).unwrap();
    w.add(&record(1, 5000)).unwrap();
    w.add(&record(2, 7000)).unwrap();
    let (id, path, records) = finish(w, dir);
    assert_eq!(records.len(), 2);
    (id, path)
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x40;
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_version_2_pack_is_named_by_its_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (id, path) = write_pack(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let mut headers = bytes[..PACK_HEADER_LEN as usize].to_vec();
    let second = (PACK_HEADER_LEN + RECORD_HEADER_LEN + 5000) as usize;
    headers.extend_from_slice(&bytes[16..16 + RECORD_HEADER_LEN as usize]);
    headers.extend_from_slice(&bytes[second..second + RECORD_HEADER_LEN as usize]);
    assert_eq!(id, PackId::of(&headers));
    assert_ne!(id, PackId::of(&bytes), "not the hash of the whole file");

    let s = scan(&path, Some(&id), 1 << 20, None).unwrap();
    assert!(s.name_matches);
    assert_eq!((s.good.len(), s.bad.len()), (2, 0));
}

#[test]
fn damage_to_stored_bytes_is_a_bad_record_and_to_a_header_a_wrong_name() {
    let dir = tempfile::tempdir().unwrap();
    let (id, path) = write_pack(dir.path());
    // A byte of the first record's data: its CRC catches it; the name still holds.
    flip(&path, 16 + RECORD_HEADER_LEN as usize + 100);
    let s = scan(&path, Some(&id), 1 << 20, None).unwrap();
    assert!(s.name_matches);
    assert_eq!(s.good.len(), 1);
    assert_eq!(s.bad.len(), 1);
    assert_eq!((s.bad[0].0, s.bad[0].2.as_str()), (16, "CRC mismatch"));

    // The second record's CRC field: the record no longer checks and the pack's name
    // no longer matches its headers.
    let (id, path) = write_pack(dir.path());
    let second = (PACK_HEADER_LEN + RECORD_HEADER_LEN + 5000) as usize;
    flip(&path, second + 48);
    let s = scan(&path, Some(&id), 1 << 20, None).unwrap();
    assert!(!s.name_matches);
    assert_eq!((s.good.len(), s.bad.len()), (1, 1));
}

#[test]
fn a_version_1_pack_is_still_named_by_its_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = write_pack(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let v1 = dir.path().join("v1.pack");
    std::fs::write(&v1, &bytes).unwrap();
    let id = PackId::of(&bytes);
    let s = scan(&v1, Some(&id), 1 << 20, None).unwrap();
    assert!(s.name_matches);
    assert_eq!((s.good.len(), s.bad.len()), (2, 0));
    // Any byte changes a version 1 name, data included.
    flip(&v1, 16 + RECORD_HEADER_LEN as usize + 100);
    assert!(!scan(&v1, Some(&id), 1 << 20, None).unwrap().name_matches);
}

#[test]
fn an_unknown_version_is_named_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let (id, path) = write_pack(dir.path());
    for v in [0u32, 4] {
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8..12].copy_from_slice(&v.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let s = scan(&path, Some(&id), 1 << 20, None).unwrap();
        assert!(!s.name_matches);
        assert!(s.good.is_empty());
        assert_eq!(
            s.bad[0].2,
            format!("pack version {v}, not one this ironclone reads (1 to 3)")
        );
    }
}

#[test]
fn a_pack_of_tiny_frames_is_full_before_its_index_is_too_large_to_read() {
    // 64 distinct chunks a frame, stored in a few bytes: the pack's bytes stay far
    // under any pack size while its index grows 5 KB a frame.
    let members: Vec<Member> = (0..64u32)
        .map(|i| Member {
            id: ChunkId::of(&i.to_le_bytes()),
            len: 65536,
        })
        .collect();
    let rec = Record {
        id: frame_id(&members),
        raw_len: 64 * 65536,
        compression: Compression::Zstd,
        data: vec![0; 40],
        members,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut w = PackWriter::create(&LocalStorage::new(dir.path().to_path_buf())).unwrap();
    let mut n = 0;
    while !w.full(128 << 20) {
        w.add(&rec).unwrap();
        n += 1;
    }
    let (id, _, entries) = finish(w, dir.path());
    let json = serde_json::to_vec(&crate::repo::index::IndexFile {
        version: crate::repo::index::INDEX_VERSION,
        pack: id,
        entries,
        checksum: "0".repeat(64),
    })
    .unwrap()
    .len() as u64;
    let max = crate::repo::index::MAX_INDEX_JSON;
    assert!(json <= max, "{n} frames: {json} bytes of index");
    assert!(
        json > max / 2,
        "{n} frames closed early: {json} bytes of index"
    );
}

/// `bytes` scanned whole and a window at a time for each of `windows`: the results
/// agree, and the whole file's is returned.
fn same_in_windows(path: &Path, bytes: &[u8], id: &PackId, windows: &[usize]) -> PackScan {
    let whole = scan_bytes(path, bytes, Some(id), 1 << 20, None);
    for &w in windows {
        let s = scan_bytes_windowed(path, bytes, w, Some(id), 1 << 20, None);
        let what = format!("window {w}, {} bytes", bytes.len());
        assert_eq!(s.good, whole.good, "{what}");
        assert_eq!(s.bad, whole.bad, "{what}");
        assert_eq!(s.name_matches, whole.name_matches, "{what}");
    }
    whole
}

#[test]
fn a_pack_read_a_window_at_a_time_scans_as_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PackWriter::create(&LocalStorage::new(dir.path().to_path_buf())).unwrap();
    w.add(&record(7, 3000)).unwrap();
    w.add(&frame().0).unwrap();
    w.add(&record(9, 20_000)).unwrap();
    w.add(&record(3, 100)).unwrap();
    let (id, path, entries) = finish(w, dir.path());
    let bytes = std::fs::read(&path).unwrap();
    // Windows shorter than the pack header, a record header, a frame's header with its
    // lengths, and longer than the pack.
    let windows = [1, 5, 52, 57, 100, 4099, 1 << 20];
    let s = same_in_windows(&path, &bytes, &id, &windows);
    assert_eq!(s.good, entries);
    assert!(s.bad.is_empty() && s.name_matches);

    // Damage read in pieces is found as in the whole file: every header byte, the
    // stored bytes at a stride, and the file cut short anywhere.
    let header = |i: usize| {
        i < PACK_HEADER_LEN as usize
            || entries.iter().any(|e| {
                let at = e.record.offset as usize;
                (at..at + e.record.header_len() as usize).contains(&i)
            })
    };
    let mut found = 0;
    for at in (0..bytes.len()).filter(|&i| header(i) || i % 61 == 0) {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        let s = same_in_windows(&path, &b, &id, &[1, 57, 4099]);
        found += usize::from(!s.bad.is_empty() || !s.name_matches);
    }
    assert!(found > 300, "{found} flips found");
    for cut in (0..bytes.len())
        .step_by(97)
        .chain([16, 68, 3068, bytes.len() - 1])
    {
        let s = same_in_windows(&path, &bytes[..cut], &id, &[1, 57, 4099]);
        assert!(
            !s.name_matches || !s.bad.is_empty() || s.good.len() < 4,
            "cut at {cut}"
        );
    }

    // A version 1 pack is named by every byte, which are read to the end even when a
    // header stops the framing.
    let mut v1 = bytes.clone();
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    let id1 = PackId::of(&v1);
    assert!(same_in_windows(&path, &v1, &id1, &windows).name_matches);
    let last = entries[3].record.offset as usize;
    v1[last] ^= 0x40;
    let s = same_in_windows(&path, &v1, &id1, &windows);
    assert!(!s.name_matches && s.bad.len() == 1 && s.good.len() == 3);
}

//! `verify --read-data-subset`: which packs are read, and that the structure of the
//! others is still checked.

use super::prune_tests::{back_up, data};
use super::{verify_subset, DataSubset, Repository};
use crate::progress::{NoProgress, ProgressEvent};

fn pack_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir.join("packs")).unwrap().flatten() {
        out.extend(
            std::fs::read_dir(sub.path())
                .unwrap()
                .flatten()
                .map(|e| e.path()),
        );
    }
    out.sort();
    out
}

#[test]
fn subsets_parse_and_buckets_cover_every_pack_once() {
    assert_eq!("1/10".parse(), Ok(DataSubset::Bucket { n: 1, m: 10 }));
    assert_eq!("25%".parse(), Ok(DataSubset::Percent(25.0)));
    for bad in ["0/3", "4/3", "1/0", "x/3", "3", "0%", "101%", "%"] {
        assert!(bad.parse::<DataSubset>().is_err(), "{bad}");
    }
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB packs: each image of random bytes makes at least one.
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 20).unwrap();
    for i in 0..8 {
        back_up(repo, &format!("m{i}"), data(40 + 2 * i, 3 << 19));
    }
    let total = pack_files(dir.path()).len();
    assert!(total >= 8, "{total} packs");
    let mut sum = 0;
    for n in 1..=3 {
        let subset = DataSubset::Bucket { n, m: 3 };
        let r = verify_subset(repo, None, subset, &NoProgress).unwrap();
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.packs_checked + r.packs_not_read, total);
        sum += r.packs_checked;
    }
    assert_eq!(sum, total, "1/3, 2/3, 3/3 read each pack once");
    let r = verify_subset(repo, None, DataSubset::Percent(30.0), &NoProgress).unwrap();
    assert_eq!(r.packs_checked, (total * 3).div_ceil(10));
    let r = verify_subset(repo, None, DataSubset::Percent(100.0), &NoProgress).unwrap();
    assert_eq!((r.packs_checked, r.packs_not_read), (total, 0));

    // A flipped byte is found by the bucket holding its pack only; a truncated pack
    // is found whatever the subset (structure).
    let packs = pack_files(dir.path());
    let victim = &packs[0];
    let id = super::PackId::from_hex(victim.file_stem().unwrap().to_str().unwrap()).unwrap();
    let bucket = u32::from_be_bytes([id.0[0], id.0[1], id.0[2], id.0[3]]) % 3 + 1;
    let mut b = std::fs::read(victim).unwrap();
    let at = b.len() - 10;
    b[at] ^= 0x10;
    std::fs::write(victim, &b).unwrap();
    for n in 1..=3 {
        let r = verify_subset(repo, None, DataSubset::Bucket { n, m: 3 }, &NoProgress).unwrap();
        assert_eq!(
            r.ok(),
            n != bucket,
            "bucket {n}: {:?} {:?}",
            r.problems,
            r.damages
        );
    }
    b.truncate(b.len() - 100);
    std::fs::write(victim, &b).unwrap();
    for n in 1..=3 {
        let r = verify_subset(repo, None, DataSubset::Bucket { n, m: 3 }, &NoProgress).unwrap();
        assert!(!r.ok(), "bucket {n} misses a truncated pack");
    }
}

#[test]
fn an_index_entry_naming_the_wrong_place_is_the_images_damage() {
    use super::index;
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 20).unwrap();
    back_up(repo, "a", data(7, 3 << 19));
    assert!(super::verify(repo, None, &NoProgress).unwrap().ok());
    // One frame's first two chunks swapped in its index file (lengths with them, so
    // the frame still adds up): the file is well-formed and its checksum right, but it
    // places each of the two where the other is.
    let name = index::file_names(repo).unwrap().remove(0);
    let mut f = index::read(repo, &name).unwrap();
    let e = f
        .entries
        .iter_mut()
        .find(|e| e.chunks.len() >= 2)
        .expect("a frame");
    e.chunks.swap(0, 1);
    let swapped = [e.chunks[0].id, e.chunks[1].id];
    std::fs::remove_file(repo.loc(&name)).unwrap();
    index::write(repo, &f.pack, f.entries).unwrap();
    let r = super::verify(repo, None, &NoProgress).unwrap();
    assert!(!r.ok());
    assert!(!r.damages.is_empty(), "{r:?}");
    for d in &r.damages {
        assert!(d.chunk.is_some_and(|c| swapped.contains(&c)), "{d:?}");
        assert!(d.what.contains("where this chunk is not"), "{d:?}");
    }
    for id in swapped {
        assert!(
            r.damages.iter().any(|d| d.chunk == Some(id)),
            "{id} not named"
        );
    }
}

#[test]
fn damage_shared_by_two_images_is_named_in_each() {
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 20).unwrap();
    back_up(repo, "a", data(9, 3 << 19));
    back_up(repo, "b", data(9, 3 << 19));
    let r = super::verify(repo, None, &NoProgress).unwrap();
    assert!(r.ok() && r.damages.is_empty(), "{r:?}");
    let victim = &pack_files(dir.path())[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(victim, &bytes).unwrap();
    let r = super::verify(repo, None, &NoProgress).unwrap();
    for image in ["a", "b"] {
        let named: Vec<_> = r.damages.iter().filter(|d| d.image == image).collect();
        assert!(!named.is_empty(), "{image}: {r:?}");
        assert!(named.iter().all(|d| d.chunk.is_some()), "{named:?}");
    }
    let (a, b): (Vec<_>, Vec<_>) = r.damages.iter().partition(|d| d.image == "a");
    let ids = |v: &[&super::Damage]| v.iter().map(|d| d.chunk).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b), "the same chunks in both images");
}

/// `verify` gathers the ids of every image by merging each image's into the sorted,
/// distinct ids so far: the result must be the sorted union, whatever the overlap.
#[test]
fn merged_ids_are_the_sorted_union() {
    use super::id_set::merge_distinct;
    use super::ChunkId;
    let ids =
        |ns: &[u32]| -> Vec<ChunkId> { ns.iter().map(|n| ChunkId::of(&n.to_le_bytes())).collect() };
    let cases: [(&[u32], &[u32]); 6] = [
        (&[], &[]),
        (&[], &[3, 1, 3, 2]),
        (&[1, 2, 3], &[]),
        (&[1, 2, 3], &[3, 2, 1, 1]),
        (&[5, 6, 7, 8], &[1, 9, 6, 10, 2, 2]),
        (&[10, 20, 30], &[11, 21, 31, 9, 40, 0]),
    ];
    for (have, add) in cases {
        let mut into = ids(have);
        into.sort_unstable();
        into.dedup();
        let mut want = ids(have);
        want.extend(ids(add));
        want.sort_unstable();
        want.dedup();
        merge_distinct(&mut into, ids(add));
        assert_eq!(into, want, "{have:?} + {add:?}");
    }
    // Larger, overlapping by half.
    let (a, b): (Vec<u32>, Vec<u32>) = ((0..5000).collect(), (2500..9000).rev().collect());
    let mut into = ids(&a);
    into.sort_unstable();
    merge_distinct(&mut into, ids(&b));
    let mut want = ids(&(0..9000).collect::<Vec<_>>());
    want.sort_unstable();
    assert_eq!(into, want);
}

#[test]
fn a_manifest_read_whole_or_streamed_names_the_same_damage() {
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 20).unwrap();
    back_up(repo, "a", data(11, 3 << 20));
    back_up(repo, "b", data(12, 3 << 19));
    let clean = super::verify(repo, None, &NoProgress).unwrap();
    assert!(clean.ok(), "{:?} {:?}", clean.problems, clean.damages);
    assert!(clean.chunks_checked > 20, "{}", clean.chunks_checked);
    // A byte flipped in image a's first pack.
    let m = repo.load_manifest("a").unwrap();
    let first = m.areas[0].chunks[0].id.unwrap();
    let idx = repo.load_index().unwrap();
    let victim = repo.loc(&super::pack::pack_name(&idx.locate(&first).unwrap().pack));
    let mut b = std::fs::read(&victim).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x40;
    std::fs::write(&victim, &b).unwrap();
    let streamed = super::verify(repo, None, &NoProgress).unwrap();
    assert!(!streamed.damages.is_empty(), "{streamed:?}");
    // The same manifest pretty-printed (not the form the stream reads): read whole,
    // the same report.
    let path = dir.path().join("images/a.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&*m).unwrap()).unwrap();
    let whole = super::verify(&Repository::open(dir.path()).unwrap(), None, &NoProgress).unwrap();
    assert_eq!(whole.damages, streamed.damages);
    for d in &streamed.damages {
        let c = m.areas.iter().find(|a| a.name == d.area).and_then(|a| {
            a.chunks
                .iter()
                .find(|c| c.offset == d.area_offset && c.id == d.chunk)
        });
        assert!(c.is_some() || d.image == "b", "{d:?} is no chunk of a's");
    }
}

/// `verify` of one image names its chunks by number in its scratch file where the
/// whole repository's verify gathers ids: both must find the same damage in it.
#[test]
fn one_image_names_the_damage_the_whole_repository_verify_names_in_it() {
    use super::index;
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 20).unwrap();
    back_up(repo, "a", data(11, 3 << 19));
    let of_a_pack = index::file_names(repo).unwrap().remove(0);
    back_up(repo, "b", data(12, 5 << 18));
    let one = super::verify(repo, Some("a"), &NoProgress).unwrap();
    assert!(one.ok(), "{one:?}");
    assert_eq!(one.images, ["a"]);
    let whole = super::verify(repo, None, &NoProgress).unwrap();
    assert!(one.chunks_checked > 0 && one.packs_checked < whole.packs_checked);
    let of_a = |r: &super::VerifyReport| -> Vec<super::Damage> {
        r.damages
            .iter()
            .filter(|d| d.image == "a")
            .cloned()
            .collect()
    };
    // A frame's first two chunks swapped in its index file (as in the test above),
    // then a byte of a pack flipped: each time the same damage, by either way.
    let mut f = index::read(repo, &of_a_pack).unwrap();
    let e = f.entries.iter_mut().find(|e| e.chunks.len() >= 2).unwrap();
    e.chunks.swap(0, 1);
    std::fs::remove_file(repo.loc(&of_a_pack)).unwrap();
    index::write(repo, &f.pack, f.entries).unwrap();
    let victim = &repo.loc(&super::pack::pack_name(&f.pack));
    for step in ["index", "pack"] {
        if step == "pack" {
            let mut bytes = std::fs::read(victim).unwrap();
            let at = bytes.len() / 3;
            bytes[at] ^= 0x20;
            std::fs::write(victim, &bytes).unwrap();
        }
        let one = super::verify(repo, Some("a"), &NoProgress).unwrap();
        let whole = super::verify(repo, None, &NoProgress).unwrap();
        assert!(!of_a(&whole).is_empty(), "{step}: {whole:?}");
        assert_eq!(one.damages, of_a(&whole), "{step}");
        // A subset reads fewer packs and still names damage in those it reads.
        let part = verify_subset(repo, Some("a"), DataSubset::Percent(100.0), &NoProgress);
        assert_eq!(part.unwrap().damages, one.damages, "{step}");
        // In passes of a few chunks (each pass scanning the packs of its own chunks,
        // a pack of two passes scanned by both): the same damage, problems and
        // counts, and progress that still adds up to the job's total.
        for pass_chunks in [1, 3, 50] {
            let ev = crate::progress::Collect::default();
            let all = DataSubset::All;
            let passes = super::verify::verify_in_passes(repo, Some("a"), all, pass_chunks, &ev);
            let passes = passes.unwrap();
            assert_eq!(passes.damages, one.damages, "{step} {pass_chunks}");
            let sorted = |r: &super::VerifyReport| {
                let mut p = r.problems.clone();
                p.sort();
                p
            };
            assert_eq!(sorted(&passes), sorted(&one), "{step} {pass_chunks}");
            let counts =
                |r: &super::VerifyReport| (r.packs_checked, r.chunks_checked, r.bytes_checked);
            assert_eq!(counts(&passes), counts(&one), "{step} {pass_chunks}");
            let ev = ev.events();
            let total = match ev.first() {
                Some(ProgressEvent::JobStart { total_bytes, .. }) => *total_bytes,
                e => panic!("first event {e:?}"),
            };
            let advanced: u64 = ev
                .iter()
                .filter_map(|e| match e {
                    ProgressEvent::Advance { bytes } => Some(*bytes),
                    _ => None,
                })
                .sum();
            assert_eq!(advanced, total, "{step} {pass_chunks}");
        }
    }
}

/// A record one pass of a verify in passes needs and another scans beside its own
/// (every pack holds several frames here) is the image's damage, never a problem
/// "not in any image", however the passes fall.
#[test]
fn damage_in_passes_is_the_images_whoever_scans_its_pack() {
    let dir = tempfile::tempdir().unwrap();
    // 256 KiB frames of four 64 KiB chunks, about four to a 1 MiB pack.
    let config = super::config::RepoConfig::with_chunks(1 << 18, 1 << 20, 1 << 16);
    let repo = &Repository::init_with(dir.path(), config).unwrap();
    back_up(repo, "a", data(21, 3 << 20));
    let packs = pack_files(dir.path());
    assert!(packs.len() >= 2, "{packs:?}");
    let victim = &packs[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(victim, &bytes).unwrap();
    let one = super::verify(repo, Some("a"), &NoProgress).unwrap();
    assert!(
        !one.damages.is_empty() && one.problems.is_empty(),
        "{one:?}"
    );
    for pass_chunks in [1, 2, 3, 7, 1000] {
        let all = DataSubset::All;
        let r = super::verify::verify_in_passes(repo, Some("a"), all, pass_chunks, &NoProgress);
        let r = r.unwrap();
        assert_eq!(r.damages, one.damages, "{pass_chunks}");
        assert!(r.problems.is_empty(), "{pass_chunks}: {:?}", r.problems);
    }
}

//! `verify --read-data-subset`: which packs are read, and that the structure of the
//! others is still checked.

use super::prune_tests::{back_up, data};
use super::{verify_subset, DataSubset, Repository};
use crate::progress::NoProgress;

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

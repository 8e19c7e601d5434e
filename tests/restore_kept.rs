//! A restore keeps the records its check read for the write phase, and when their
//! stored bytes fit with room to spare it decodes and hashes some of them in the check
//! and keeps them decoded (src/repo/restore_cache.rs). Forced on a local repository
//! with IRONCLONE_RESTORE_CACHE_MIB: with no budget nothing is decoded by the check,
//! with a budget the stored bytes alone do not fit nothing is either, with a middle
//! one some records are and with a large one all are; every restore is byte-identical
//! to the source, plaintext and encrypted.

use ironclone::device::{open_path, Access};
use ironclone::progress::NoProgress;
use ironclone::repo::{self, Repository, RestoreOptions};
use std::path::Path;
use std::process::{Command, Output};

const MIB: usize = 1 << 20;

fn ironclone(args: &[&str], cache_mib: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ironclone"));
    c.args(args)
        .env("IRONCLONE_KDF", "8,1,1")
        .env("IRONCLONE_PASSWORD", "kept records pass");
    if let Some(m) = cache_mib {
        c.env("IRONCLONE_RESTORE_CACHE_MIB", m);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "ironclone {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// 48 MiB: 16 of noise (stored as it is), 16 of text (compresses), 16 of zeros.
fn source(path: &Path) -> Vec<u8> {
    let mut data = vec![0u8; 48 * MIB];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for b in data[..16 * MIB].iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    // Words picked at random: compresses several times over, repeats nowhere.
    const WORDS: [&[u8]; 8] = [
        b"quick ", b"brown ", b"fox ", b"jumps ", b"over ", b"the ", b"lazy ", b"dog ",
    ];
    let mut text = Vec::with_capacity(16 * MIB + 8);
    while text.len() < 16 * MIB {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.extend_from_slice(WORDS[(x % 8) as usize]);
    }
    data[16 * MIB..32 * MIB].copy_from_slice(&text[..16 * MIB]);
    std::fs::write(path, &data).unwrap();
    data
}

/// Restores through the library (for the report) with the budget `mib`.
fn restore_lib(repo: &Path, target: &Path, len: usize, mib: &str) -> (Vec<u8>, u64) {
    let f = std::fs::File::create(target).unwrap();
    f.set_len(len as u64).unwrap();
    drop(f);
    std::env::set_var("IRONCLONE_RESTORE_CACHE_MIB", mib);
    let r = Repository::open(repo).unwrap();
    let dev = open_path(target, Access::ReadWrite).unwrap();
    let rep = repo::restore(
        &r,
        "img",
        &dev,
        &|a| Some(a.offset),
        &RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    drop(dev);
    (std::fs::read(target).unwrap(), rep.records_decoded_by_check)
}

#[test]
fn records_decoded_by_the_check_restore_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src.img");
    let data = source(&src);
    let repo = d.path().join("repo");
    let (s, r) = (src.to_str().unwrap(), repo.to_str().unwrap());
    ironclone(&["backup", "--name", "img", s, r], None);
    let target = d.path().join("target.img");
    // What the packs hold: a budget 1 MiB over it keeps every record's stored bytes
    // and leaves room to decode the noise records (stored as they are: nothing more
    // to hold) but not the text ones (8 MiB each decoded).
    let stored: u64 = walk(&repo.join("packs"))
        .iter()
        .map(|f| f.metadata().unwrap().len())
        .sum();
    let middle = (stored as usize).div_ceil(MIB) + 1;
    let middle = middle.to_string();
    let mut counts = Vec::new();
    for mib in ["0", "4", &middle, "512"] {
        let (got, decoded) = restore_lib(&repo, &target, data.len(), mib);
        assert!(got == data, "budget {mib} MiB: the restore differs");
        counts.push(decoded);
    }
    assert_eq!(
        counts[0], 0,
        "no budget, yet records were decoded: {counts:?}"
    );
    assert_eq!(
        counts[1], 0,
        "the stored bytes do not fit 4 MiB: {counts:?}"
    );
    assert!(
        counts[2] > 0 && counts[2] < counts[3],
        "{middle} MiB holds the stored bytes and some decoded ones: {counts:?}"
    );

    // Encrypted: the same through the binary, every record decoded by the check.
    let erepo = d.path().join("erepo");
    let e = erepo.to_str().unwrap();
    ironclone(&["backup", "--encrypt", "--name", "img", s, e], None);
    let f = std::fs::File::create(&target).unwrap();
    f.set_len(data.len() as u64).unwrap();
    drop(f);
    let t = target.to_str().unwrap();
    ironclone(&["restore", e, "img", t, "--yes"], Some("512"));
    assert!(
        std::fs::read(&target).unwrap() == data,
        "encrypted restore with decoded records differs"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .flat_map(|e| match e.path().is_dir() {
                    true => walk(&e.path()),
                    false => vec![e.path()],
                })
                .collect()
        })
        .unwrap_or_default()
}

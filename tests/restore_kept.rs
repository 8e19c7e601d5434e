//! A restore keeps the records its check read for the write phase, up to a budget
//! (src/repo/restore_cache.rs; on a remote store the write phase then downloads only
//! what did not fit). Forced on a local repository with IRONCLONE_RESTORE_CACHE_MIB:
//! none kept, some kept (the budget smaller than the stored bytes), all kept; each
//! restore byte-identical to the source, plaintext and encrypted.

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

fn restored(repo: &str, target: &Path, len: usize, mib: &str) -> Vec<u8> {
    let f = std::fs::File::create(target).unwrap();
    f.set_len(len as u64).unwrap();
    drop(f);
    ironclone(
        &["restore", repo, "img", target.to_str().unwrap(), "--yes"],
        Some(mib),
    );
    std::fs::read(target).unwrap()
}

#[test]
fn kept_records_restore_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src.img");
    let data = source(&src);
    let s = src.to_str().unwrap();
    let target = d.path().join("target.img");
    for (repo, extra) in [("repo", None), ("erepo", Some("--encrypt"))] {
        let r = d.path().join(repo);
        let r = r.to_str().unwrap();
        let mut args = vec!["backup", "--name", "img", s, r];
        args.extend(extra);
        ironclone(&args, None);
        // 0: nothing kept; 10 MiB: some of the ~19 MiB stored; 512: everything.
        for mib in ["0", "10", "512"] {
            assert!(
                restored(r, &target, data.len(), mib) == data,
                "{repo}, budget {mib} MiB: the restore differs"
            );
        }
    }
}

//! Encrypted repositories through the binary: backup --encrypt, restore byte-identical,
//! verify; every tampered object detected and named; wrong or missing passphrase;
//! key add/list/remove. Argon2 runs with tiny parameters (IRONCLONE_KDF) to stay fast.

mod repo_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PASS: &str = "correct horse battery";
const SIZE: usize = 6 << 20;

fn run(pass: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ironclone"));
    c.args(args)
        .env("IRONCLONE_KDF", "8,1,1")
        .env_remove("IRONCLONE_PASSWORD")
        .stdin(Stdio::null());
    if let Some(p) = pass {
        c.env("IRONCLONE_PASSWORD", p);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "unexpected success: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walk(dir);
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<PathBuf> {
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

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let at = at.min(b.len() - 1);
    b[at] ^= 0x04;
    std::fs::write(path, b).unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    src: PathBuf,
    repo: PathBuf,
    out: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("disk.img");
        std::fs::write(&src, repo_common::mixed_data(SIZE, 11)).unwrap();
        let (repo, out) = (dir.path().join("repo"), dir.path().join("out.img"));
        let f = Fixture {
            _dir: dir,
            src,
            repo,
            out,
        };
        ok(&run(
            Some(PASS),
            &["backup", f.s(&f.src), f.r(), "--encrypt", "--name", "one"],
        ));
        f
    }
    fn s<'a>(&self, p: &'a Path) -> &'a str {
        p.to_str().unwrap()
    }
    fn r(&self) -> &str {
        self.repo.to_str().unwrap()
    }
    fn restore(&self, pass: Option<&str>, image: &str) -> Output {
        std::fs::write(&self.out, vec![0u8; SIZE]).unwrap();
        run(
            pass,
            &["restore", self.r(), image, self.s(&self.out), "--yes"],
        )
    }
    fn only(&self, sub: &str) -> Vec<PathBuf> {
        files(&self.repo.join(sub))
    }
}

#[test]
fn round_trip_dedup_and_nothing_plain_on_disk() {
    let f = Fixture::new();
    ok(&f.restore(Some(PASS), "one"));
    assert!(std::fs::read(&f.src).unwrap() == std::fs::read(&f.out).unwrap());
    assert!(ok(&run(Some(PASS), &["verify", f.r()])).contains("ok"));
    assert!(ok(&run(Some(PASS), &["images", f.r()])).contains("one"));
    // The same disk again: every chunk deduplicated against the keyed ids.
    let o = run(
        Some(PASS),
        &["backup", f.s(&f.src), f.r(), "--name", "two", "--json"],
    );
    let out = ok(&o);
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["stats"]["new_bytes"], 0, "{last}");
    // No plaintext JSON or zstd frame under images/ or index/, and the source's text
    // never appears in a pack.
    for p in f.only("images").into_iter().chain(f.only("index")) {
        let b = std::fs::read(&p).unwrap();
        assert!(
            !b.starts_with(b"{") && !b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
            "{p:?}"
        );
    }
    let src = std::fs::read(&f.src).unwrap();
    let needle = &src[SIZE / 2..SIZE / 2 + 64];
    for p in f.only("packs") {
        let b = std::fs::read(&p).unwrap();
        assert!(!b.windows(64).any(|w| w == needle), "plaintext in {p:?}");
    }
}

#[test]
fn wrong_or_missing_passphrase_is_one_clear_error() {
    let f = Fixture::new();
    let e = err(&run(Some("guess"), &["images", f.r()]));
    assert!(
        e.contains("wrong passphrase for repository") && e.contains("no key slot opens with it"),
        "{e}"
    );
    assert!(!e.contains("guess") && !e.contains("panicked"), "{e}");
    let e = err(&run(None, &["verify", f.r()]));
    assert!(
        e.contains("no passphrase was given") && e.contains("$IRONCLONE_PASSWORD"),
        "{e}"
    );
    // A new key's passphrase never comes from the old one's variable.
    let e = err(&run(Some(PASS), &["key", "add", f.r()]));
    assert!(e.contains("$IRONCLONE_NEW_PASSWORD"), "{e}");
    let pw = f.repo.with_file_name("pw");
    std::fs::write(&pw, format!("{PASS}\n")).unwrap();
    ok(&run(None, &["images", f.r(), "--password-file", f.s(&pw)]));
}

#[test]
fn a_flipped_byte_in_a_pack_is_refused_before_restore_writes() {
    let f = Fixture::new();
    let pack = f.only("packs").remove(0);
    let len = std::fs::metadata(&pack).unwrap().len() as usize;
    flip(&pack, len / 2);
    let e = err(&f.restore(Some(PASS), "one"));
    assert!(
        e.contains("refused before writing") && e.contains("CRC"),
        "{e}"
    );
    assert!(std::fs::read(&f.out).unwrap().iter().all(|&b| b == 0));
    let v = run(Some(PASS), &["verify", f.r()]);
    assert!(
        ok_or_out(&v).contains(pack.file_name().unwrap().to_str().unwrap())
            || ok_or_out(&v).contains("CRC")
    );
}

fn ok_or_out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_resealed_crc_does_not_help_a_forged_record() {
    // Flip a byte of the sealed bytes AND fix the CRC: only the AEAD can tell.
    let f = Fixture::new();
    let pack = f.only("packs").remove(0);
    let mut b = std::fs::read(&pack).unwrap();
    let hl = 56 + 4 * u32::from_le_bytes(b[16 + 52..16 + 56].try_into().unwrap()) as usize;
    let stored = u32::from_le_bytes(b[16 + 40..16 + 44].try_into().unwrap()) as usize;
    let start = 16 + hl;
    b[start + 30] ^= 1;
    let crc = crc32fast::hash(&b[start..start + stored]);
    b[16 + 48..16 + 52].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&pack, b).unwrap();
    // The index (sealed) holds the old CRC, so restore refuses at the header...
    let e = err(&f.restore(Some(PASS), "one"));
    assert!(e.contains("record header does not match the index"), "{e}");
    // ...and a scan, which trusts the header's CRC, fails on the tag.
    let v = ok_or_out(&run(Some(PASS), &["verify", f.r()]));
    assert!(
        v.contains("sealed record") && v.contains("authentication failed"),
        "{v}"
    );
}

#[test]
fn tampered_index_manifest_config_and_slot_are_named() {
    let f = Fixture::new();
    let index = f.only("index").remove(0);
    let saved = std::fs::read(&index).unwrap();
    flip(&index, 40);
    let v = ok_or_out(&run(Some(PASS), &["verify", f.r()]));
    assert!(
        v.contains("corrupt index file") && v.contains("authentication failed"),
        "{v}"
    );
    std::fs::write(&index, &saved).unwrap();

    let manifest = f.repo.join("images/one.json");
    let saved = std::fs::read(&manifest).unwrap();
    // Sealed as a stream (docs/FORMAT.md, "Stream objects"): one cut short fails at
    // the segment that now ends it, by its number.
    assert!(saved.starts_with(b"ICSTREAM"));
    std::fs::write(&manifest, &saved[..saved.len() - 1]).unwrap();
    let e = err(&f.restore(Some(PASS), "one"));
    assert!(
        e.contains("corrupt manifest: segment 1 of 1: authentication failed"),
        "{e}"
    );
    flip(&manifest, 100);
    let e = err(&f.restore(Some(PASS), "one"));
    assert!(
        e.contains("image one") && e.contains("corrupt manifest"),
        "{e}"
    );
    // A manifest put under another image's name does not open either.
    std::fs::write(&manifest, &saved).unwrap();
    std::fs::copy(&manifest, f.repo.join("images/other.json")).unwrap();
    let e = err(&f.restore(Some(PASS), "other"));
    assert!(
        e.contains("image other") && e.contains("authentication failed"),
        "{e}"
    );
    std::fs::remove_file(f.repo.join("images/other.json")).unwrap();

    let config = f.repo.join("config");
    let saved = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        saved.replace("\"pack_size\": 134217728", "\"pack_size\": 134217729"),
    )
    .unwrap();
    let e = err(&run(Some(PASS), &["images", f.r()]));
    assert!(
        e.contains("config") && e.contains("MAC does not match"),
        "{e}"
    );
    std::fs::write(&config, &saved).unwrap();

    let slot = f.only("keys").remove(0);
    let saved = std::fs::read_to_string(&slot).unwrap();
    std::fs::write(&slot, saved.replace("\"initial\"", "\"initiaL\"")).unwrap();
    let e = err(&run(Some(PASS), &["images", f.r()]));
    assert!(e.contains("no key slot opens with it"), "{e}");
    std::fs::write(&slot, &saved).unwrap();
    ok(&run(Some(PASS), &["verify", f.r()]));
}

#[test]
fn swapped_and_replayed_index_files_are_detected() {
    let f = Fixture::new();
    // A second pack: other data.
    let src2 = f.repo.with_file_name("disk2.img");
    std::fs::write(&src2, repo_common::mixed_data(SIZE, 12)).unwrap();
    ok(&run(
        Some(PASS),
        &["backup", f.s(&src2), f.r(), "--name", "b"],
    ));
    let idx = f.only("index");
    assert_eq!(idx.len(), 2);
    let (a, b) = (
        std::fs::read(&idx[0]).unwrap(),
        std::fs::read(&idx[1]).unwrap(),
    );
    std::fs::write(&idx[0], &b).unwrap();
    std::fs::write(&idx[1], &a).unwrap();
    let v = ok_or_out(&run(Some(PASS), &["verify", f.r()]));
    for p in &idx {
        assert!(v.contains(p.to_str().unwrap()), "{v}");
    }
    std::fs::write(&idx[0], &a).unwrap();
    std::fs::write(&idx[1], &b).unwrap();
    ok(&run(Some(PASS), &["verify", f.r()]));

    // Image "one" deleted and pruned; its pack's old index file put back.
    std::fs::remove_file(f.repo.join("images/one.json")).unwrap();
    ok(&run(Some(PASS), &["prune", f.r()]));
    let gone: Vec<&PathBuf> = idx.iter().filter(|p| !p.exists()).collect();
    assert_eq!(gone.len(), 1, "prune removed one pack's index");
    std::fs::write(gone[0], if gone[0] == &idx[0] { &a } else { &b }).unwrap();
    let v = ok_or_out(&run(Some(PASS), &["verify", f.r()]));
    assert!(
        v.contains("stale or replayed index file") && v.contains(gone[0].to_str().unwrap()),
        "{v}"
    );
    // Restoring what is left still works: the stale file's chunks are not used.
    ok(&f.restore(Some(PASS), "b"));
}

#[test]
fn key_add_list_remove() {
    let f = Fixture::new();
    let o = run(Some(PASS), &["key", "list", f.r(), "--json"]);
    let slots: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    let first = slots[0]["id"].as_str().unwrap().to_string();
    assert_eq!(slots[0]["current"], true);
    // Adding needs a passphrase that opens the repository.
    let mut add = Command::new(env!("CARGO_BIN_EXE_ironclone"));
    add.args(["key", "add", f.r(), "--label", "backup admin"])
        .env("IRONCLONE_KDF", "8,1,1")
        .env("IRONCLONE_NEW_PASSWORD", "second")
        .stdin(Stdio::null());
    let e = err(&add.env("IRONCLONE_PASSWORD", "nope").output().unwrap());
    assert!(e.contains("wrong passphrase"), "{e}");
    ok(&add.env("IRONCLONE_PASSWORD", PASS).output().unwrap());
    let list = ok(&run(Some("second"), &["key", "list", f.r()]));
    assert!(
        list.contains("backup admin") && list.lines().count() == 2,
        "{list}"
    );
    // The slot one unlocked with needs --force; the last slot is never removed.
    let e = err(&run(Some(PASS), &["key", "remove", f.r(), &first]));
    assert!(e.contains("--force"), "{e}");
    ok(&run(Some("second"), &["key", "remove", f.r(), &first]));
    assert!(err(&run(Some(PASS), &["images", f.r()])).contains("wrong passphrase"));
    let o = run(Some("second"), &["key", "list", f.r(), "--json"]);
    let slots: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    let last = slots[0]["id"].as_str().unwrap().to_string();
    let e = err(&run(
        Some("second"),
        &["key", "remove", f.r(), &last, "--force"],
    ));
    assert!(e.contains("last one"), "{e}");
    // Data untouched by all of it.
    ok(&f.restore(Some("second"), "one"));
    assert!(std::fs::read(&f.src).unwrap() == std::fs::read(&f.out).unwrap());
}

#[test]
fn a_first_backup_that_fails_still_leaves_a_repository_that_opens() {
    // The slot is wrapped beside the backup and written before the first publish
    // (repo/keys_deferred.rs); a backup that fails before any leaves the empty
    // repository creating it always left, openable with its passphrase only.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("disk.img");
    std::fs::write(&src, repo_common::mixed_data(SIZE, 12)).unwrap();
    let repo = dir.path().join("repo");
    let (s, r) = (src.to_str().unwrap(), repo.to_str().unwrap());
    let e = err(&run(
        Some(PASS),
        &["backup", s, r, "--encrypt", "--name", "no/slash"],
    ));
    assert!(!e.contains(PASS), "{e}");
    assert_eq!(files(&repo.join("keys")).len(), 1);
    assert!(ok(&run(Some(PASS), &["images", r])).contains("no images"));
    let e = err(&run(Some("guess"), &["images", r]));
    assert!(e.contains("wrong passphrase for repository"), "{e}");
}

#[test]
fn a_wrong_passphrase_backup_leaves_the_repository_as_it_was() {
    let f = Fixture::new();
    let before: Vec<(PathBuf, Vec<u8>)> = files(&f.repo)
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let e = err(&run(
        Some("guess"),
        &["backup", f.s(&f.src), f.r(), "--name", "two"],
    ));
    assert!(
        e.contains("wrong passphrase for repository") && !e.contains("guess"),
        "{e}"
    );
    // No lock, temp pack, slot or image: every file as it was, and no other.
    let after: Vec<(PathBuf, Vec<u8>)> = files(&f.repo)
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    assert!(before == after, "the repository changed");
}

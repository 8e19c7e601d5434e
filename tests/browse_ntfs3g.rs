//! `ironclone browse` of an NTFS written by ntfs-3g, as a Linux user fills one: a
//! tree of a few hundred files copied onto the FUSE mount.
//!
//! `browse get` must give back the same bytes and must decode each stored chunk at
//! most once however many files it copies (the cost, counted without a clock).

mod fsfixture;

use fsfixture::{prng_bytes, run, sparse_file, Mount};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MIB: u64 = 1 << 20;

fn ironclone(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(args)
        .output()
        .expect("run ironclone")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    tree: PathBuf,
    repo: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::Builder::new()
        .prefix("ironclone-test-")
        .tempdir()
        .unwrap();
    let root = dir.path().to_path_buf();
    // 6 directories of 2 x 20 files, 200 B to 96 KiB each, and one of 3 MiB: enough
    // files that the MFT, the directory indexes and the data sit in different chunks.
    let tree = root.join("tree");
    let sizes = [200usize, 1500, 4000, 12_000, 30_000, 60_000, 98_304];
    let mut n = 0u64;
    for d in 0..6 {
        for sub in ["", "sub"] {
            let p = tree.join(format!("d{d}")).join(sub);
            std::fs::create_dir_all(&p).unwrap();
            for i in 0..20 {
                n += 1;
                let len = sizes[(i + d) % sizes.len()];
                std::fs::write(p.join(format!("f{i:02}.bin")), prng_bytes(n, len)).unwrap();
            }
        }
    }
    std::fs::write(tree.join("big.bin"), prng_bytes(999, (3 * MIB) as usize)).unwrap();

    let img = root.join("ntfs.img");
    sparse_file(&img, 48 * MIB);
    run("mkntfs", &["-F", "-f", "-q", s(&img)]);
    let mnt = root.join("mnt");
    {
        let _m = Mount::new(&img, &mnt);
        run("cp", &["-r", &format!("{}/.", s(&tree)), s(&mnt)]);
    }
    let repo = root.join("repo");
    ok(
        &ironclone(&["backup", s(&img), s(&repo), "--name", "img"]),
        "backup",
    );
    Fixture {
        _dir: dir,
        root,
        tree,
        repo,
    }
}

fn browse(f: &Fixture, args: &[&str]) -> Output {
    let mut a = vec!["browse", s(&f.repo), "img", "disk-fs"];
    a.extend_from_slice(args);
    ironclone(&a)
}

/// Stored chunks of the image's area (zero chunks are never decoded).
fn stored_chunks(f: &Fixture) -> u64 {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.repo.join("images/img.json")).unwrap()).unwrap();
    let area = m["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "disk-fs")
        .expect("area disk-fs");
    let mut ids: Vec<&str> = area["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    ids.sort();
    ids.dedup();
    ids.len() as u64
}

/// Every regular file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                out.push(e.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn browse_get_of_an_ntfs_tree_decodes_each_chunk_once() {
    let f = fixture();
    let got = f.root.join("got");
    let out = browse(&f, &["get", "/", s(&got), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&out, "browse get")).unwrap();

    // The bytes: every file of the tree, and nothing else.
    let want = files(&f.tree);
    assert_eq!(want.len(), 241);
    for p in &want {
        assert!(
            std::fs::read(got.join(p)).unwrap() == std::fs::read(f.tree.join(p)).unwrap(),
            "{} differs",
            p.display()
        );
    }

    // The cost: 241 files, but no chunk decoded twice. Before the cache kept chunks
    // by bytes and recency, each file decoded the MFT, index and data chunks again.
    let stored = stored_chunks(&f);
    let decoded = v["chunks_decoded"].as_u64().expect("chunks_decoded");
    assert!(
        decoded <= stored,
        "get decoded {decoded} chunks for {stored} stored ones"
    );
}

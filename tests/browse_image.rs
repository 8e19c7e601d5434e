//! `ironclone browse`: a GPT disk image with an ext4 (made by `mkfs.ext4 -d`), an
//! NTFS (mkntfs + ntfscp) and a FAT ESP (mkfs.fat + mtools) partition is backed up
//! with the CLI; listing and copying files straight out of the repository must agree
//! with the independent tools (`debugfs`, `ntfsls`, `ntfscat`, `mdir`, `mcopy`) run
//! on the filesystems themselves, and a flipped byte in a pack record a file needs
//! must fail `cat` with the image, area and byte named, never give wrong bytes.

mod common;

use common::{path_str, require_tool, run, sparse, tempdir, Rng};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MIB: u64 = 1 << 20;
/// Partition 2 (NTFS) starts at this sector of the disk.
const P2_SECTOR: u64 = 67584;
/// Partition 3 (FAT, an EFI system partition) starts here.
const P3_SECTOR: u64 = 116736;

fn ironclone(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(args)
        .output()
        .expect("run ironclone")
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Bytes a tool writes to stdout (binary-safe), asserting success.
fn tool_bytes(cmd: &str, args: &[&str]) -> Vec<u8> {
    require_tool(cmd);
    let out = Command::new(cmd).args(args).output().expect("spawn tool");
    ok(&out, cmd);
    out.stdout
}

/// Deterministic incompressible-ish bytes.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Rng::new(seed).fill(&mut v);
    v
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    ext: PathBuf,
    ntfs: PathBuf,
    fat: PathBuf,
    repo: PathBuf,
}

fn dd_into(src: &Path, disk: &Path, seek_bytes: u64) {
    run(
        "dd",
        &[
            &format!("if={}", path_str(src)),
            &format!("of={}", path_str(disk)),
            "bs=512",
            &format!("seek={}", seek_bytes / 512),
            "conv=notrunc,sparse",
            "status=none",
        ],
    );
}

fn fixture() -> Fixture {
    for t in [
        "mkfs.ext4",
        "debugfs",
        "mkntfs",
        "ntfscp",
        "ntfsls",
        "ntfscat",
        "sgdisk",
    ] {
        require_tool(t);
    }
    let dir = tempdir();
    let root = dir.path().to_path_buf();
    let tree = root.join("tree");
    std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
    // Larger than one 8 MiB chunk, so a read crosses chunks.
    std::fs::write(tree.join("a/big.bin"), pattern((10 * MIB) as usize, 1)).unwrap();
    std::fs::write(tree.join("a/b/c/small.txt"), b"hello from an image\n").unwrap();
    std::fs::write(tree.join("empty"), b"").unwrap();
    std::os::unix::fs::symlink("a/b/c/small.txt", tree.join("link")).unwrap();

    let ext = sparse(&root, "ext.img", 32 * MIB);
    run(
        "mkfs.ext4",
        &["-q", "-F", "-d", path_str(&tree), path_str(&ext)],
    );
    let ntfs = sparse(&root, "ntfs.img", 24 * MIB);
    run(
        "mkntfs",
        &[
            "-q",
            "-F",
            "-Q",
            "-p",
            &P2_SECTOR.to_string(),
            "-H",
            "255",
            "-S",
            "63",
            path_str(&ntfs),
        ],
    );
    let small = root.join("notes.txt");
    std::fs::write(&small, b"ntfs small file\n").unwrap();
    let empty = root.join("zero.txt");
    std::fs::write(&empty, b"").unwrap();
    for (src, name) in [
        (tree.join("a/big.bin"), "big.bin"),
        (small, "notes.txt"),
        (empty, "zero.txt"),
    ] {
        run("ntfscp", &["-q", path_str(&ntfs), path_str(&src), name]);
    }

    let fat = sparse(&root, "fat.img", 16 * MIB);
    run("mkfs.fat", &["-n", "ESP", path_str(&fat)]);
    let fi = path_str(&fat);
    run("mmd", &["-i", fi, "::/EFI", "::/EFI/BOOT"]);
    let efi = root.join("boot.efi");
    std::fs::write(&efi, pattern(9_000_000, 2)).unwrap();
    run(
        "mcopy",
        &["-i", fi, path_str(&efi), "::/EFI/BOOT/BOOTX64.EFI"],
    );
    run(
        "mcopy",
        &[
            "-i",
            fi,
            path_str(&root.join("notes.txt")),
            "::/long-file-name.txt",
        ],
    );

    let disk = sparse(&root, "disk.img", 80 * MIB);
    run(
        "sgdisk",
        &[
            "-o",
            "-n1:2048:+32M",
            "-t1:8300",
            "-n2:0:+24M",
            "-t2:0700",
            "-n3:0:+16M",
            "-t3:ef00",
            path_str(&disk),
        ],
    );
    dd_into(&ext, &disk, MIB);
    dd_into(&ntfs, &disk, P2_SECTOR * 512);
    dd_into(&fat, &disk, P3_SECTOR * 512);
    let repo = root.join("repo");
    let out = ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    ok(&out, "backup");
    Fixture {
        _dir: dir,
        root,
        ext,
        ntfs,
        fat,
        repo,
    }
}

fn browse(f: &Fixture, area: &str, args: &[&str]) -> Output {
    let mut a = vec!["browse", path_str(&f.repo), "img", area];
    a.extend_from_slice(args);
    ironclone(&a)
}

/// (name, kind, size) of `browse ls --json`.
fn ls_json(f: &Fixture, area: &str, path: &str) -> Vec<(String, String, u64)> {
    let out = browse(f, area, &["ls", path, "--json"]);
    ok(&out, "browse ls");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut got: Vec<_> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
                e["size"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    got
}

/// (name, kind, size) of `debugfs -R 'ls -p PATH'`; directory sizes are not printed
/// by debugfs, so they are compared as 0 on both sides.
fn debugfs_ls(img: &Path, path: &str) -> Vec<(String, String, u64)> {
    let out = run("debugfs", &["-R", &format!("ls -p {path}"), path_str(img)]);
    let mut v: Vec<_> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('/').collect();
            let (mode, name, size) = (f.get(2)?, f.get(5)?, f.get(6)?);
            if *name == "." || *name == ".." {
                return None;
            }
            let kind = match &mode[..mode.len().saturating_sub(4)] {
                "04" => "dir",
                "10" => "file",
                "12" => "symlink",
                _ => "other",
            };
            Some((
                name.to_string(),
                kind.to_string(),
                size.parse().unwrap_or(0),
            ))
        })
        .collect();
    v.sort();
    v
}

fn without_dir_sizes(v: Vec<(String, String, u64)>) -> Vec<(String, String, u64)> {
    v.into_iter()
        .map(|(n, k, s)| {
            let s = if k == "dir" { 0 } else { s };
            (n, k, s)
        })
        .collect()
}

#[test]
fn browse_ext4_ntfs_fat_agree_with_reference_tools_and_damage_is_an_error() {
    let f = fixture();

    // ext4: listings match debugfs, at the root and in nested directories.
    for p in ["/", "/a", "/a/b", "/a/b/c"] {
        let want = debugfs_ls(&f.ext, p);
        assert!(!want.is_empty(), "debugfs lists {p}");
        assert_eq!(without_dir_sizes(ls_json(&f, "p1", p)), want, "ls {p}");
    }
    // cat / get return what debugfs dumps.
    for p in ["/a/big.bin", "/a/b/c/small.txt", "/empty"] {
        let want = f.root.join("dump");
        run(
            "debugfs",
            &[
                "-R",
                &format!("dump {p} {}", path_str(&want)),
                path_str(&f.ext),
            ],
        );
        let want = std::fs::read(&want).unwrap();
        let out = browse(&f, "p1", &["cat", p]);
        ok(&out, "browse cat");
        assert!(
            out.stdout == want,
            "cat {p}: {} bytes vs {}",
            out.stdout.len(),
            want.len()
        );
    }
    let got = f.root.join("got");
    ok(
        &browse(&f, "p1", &["get", "/", path_str(&got)]),
        "browse get /",
    );
    assert_eq!(
        std::fs::read(got.join("a/big.bin")).unwrap(),
        std::fs::read(f.root.join("tree/a/big.bin")).unwrap()
    );
    assert_eq!(
        std::fs::read_link(got.join("link")).unwrap(),
        PathBuf::from("a/b/c/small.txt")
    );
    assert_eq!(std::fs::metadata(got.join("empty")).unwrap().len(), 0);
    assert!(got.join("a/b/c").is_dir());
    // ls names a link's target, as `ls -l` does.
    let text = String::from_utf8_lossy(&browse(&f, "p1", &["ls", "/"]).stdout).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("symlink") && l.ends_with("  link -> a/b/c/small.txt")),
        "{text}"
    );
    // An existing destination is kept unless --force.
    let again = browse(
        &f,
        "p1",
        &["get", "/a/b/c/small.txt", path_str(&got.join("empty"))],
    );
    assert_eq!(
        again.status.code(),
        Some(3),
        "get onto an existing file must refuse"
    );
    assert_eq!(std::fs::metadata(got.join("empty")).unwrap().len(), 0);
    let forced = browse(
        &f,
        "p1",
        &[
            "get",
            "/a/b/c/small.txt",
            path_str(&got.join("empty")),
            "--force",
        ],
    );
    ok(&forced, "get --force");
    assert_eq!(
        std::fs::read(got.join("empty")).unwrap(),
        b"hello from an image\n"
    );

    // NTFS: listing matches ntfsls, contents match ntfscat.
    let ntfsls = run("ntfsls", &["-l", path_str(&f.ntfs)]);
    let mut want: Vec<(String, String, u64)> = ntfsls
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some((
                w.last()?.to_string(),
                "file".to_string(),
                w.first()?.parse().ok()?,
            ))
        })
        .collect();
    want.sort();
    assert_eq!(want.len(), 3, "ntfsls: {ntfsls}");
    assert_eq!(ls_json(&f, "p2", "/"), want);
    for name in ["big.bin", "notes.txt", "zero.txt"] {
        let want = tool_bytes("ntfscat", &[path_str(&f.ntfs), name]);
        let out = browse(&f, "p2", &["cat", name]);
        ok(&out, "browse cat ntfs");
        assert!(out.stdout == want, "ntfs cat {name}");
    }

    // FAT (an ESP): names (long ones too) as mdir lists them, bytes as mcopy reads them.
    for dir in ["/", "/EFI", "/EFI/BOOT"] {
        let mdir = run("mdir", &["-b", "-i", path_str(&f.fat), &format!("::{dir}")]);
        let mut want: Vec<(String, String)> = mdir
            .lines()
            .filter_map(|l| {
                let dirish = l.ends_with('/');
                let name = l.trim_end_matches('/').rsplit('/').next()?;
                Some((
                    name.to_string(),
                    if dirish { "dir" } else { "file" }.to_string(),
                ))
            })
            .collect();
        want.sort();
        assert!(!want.is_empty(), "mdir {dir}");
        let got: Vec<(String, String)> = ls_json(&f, "p3", dir)
            .into_iter()
            .map(|(n, k, _)| (n, k))
            .collect();
        assert_eq!(got, want, "fat ls {dir}");
    }
    for p in ["/EFI/BOOT/BOOTX64.EFI", "/long-file-name.txt"] {
        let want = tool_bytes(
            "mcopy",
            &["-n", "-i", path_str(&f.fat), &format!("::{p}"), "-"],
        );
        let out = browse(&f, "p3", &["cat", p]);
        ok(&out, "browse cat fat");
        assert!(out.stdout == want, "fat cat {p}");
    }

    // Clear failures: a missing path, a missing area, an area without a filesystem.
    let e = browse(&f, "p1", &["cat", "/nope"]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("/nope: no such file"));
    let e = browse(&f, "p9", &["ls"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("has no area p9"));
    let e = browse(&f, "table-head", &["ls"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("cannot browse"));

    damaged_chunk_fails_cat(&f);
}

/// Flips one byte in the pack record holding big.bin's 9000th block.
fn damaged_chunk_fails_cat(f: &Fixture) {
    let bmap = run("debugfs", &["-R", "bmap /a/big.bin 9000", path_str(&f.ext)]);
    let block: u64 = bmap.trim().parse().expect("debugfs bmap");
    let at = block * 1024; // mkfs.ext4 picks 1 KiB blocks for a 32 MiB filesystem
    let m: serde_json::Value = serde_json::from_slice(&common::json_file_bytes(
        std::fs::read(f.repo.join("images/img.json")).unwrap(),
    ))
    .unwrap();
    let p1 = m["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "p1")
        .unwrap();
    let chunk = p1["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            let o = c["offset"].as_u64().unwrap();
            o <= at && at < o + c["len"].as_u64().unwrap()
        })
        .expect("a chunk holds the block");
    let id = chunk["id"].as_str().expect("a stored chunk");
    let mut hit = None;
    for e in std::fs::read_dir(f.repo.join("index")).unwrap() {
        let ix: serde_json::Value = serde_json::from_slice(&common::json_file_bytes(
            std::fs::read(e.unwrap().path()).unwrap(),
        ))
        .unwrap();
        for r in ix["entries"].as_array().unwrap() {
            // A frame record lists its chunks; its header is 56 bytes and 4 per chunk.
            let chunks = r["chunks"].as_array().cloned().unwrap_or_default();
            let header = if chunks.is_empty() {
                52
            } else {
                56 + 4 * chunks.len() as u64
            };
            if r["id"] == id || chunks.iter().any(|c| c[0] == id) {
                hit = Some((
                    ix["pack"].as_str().unwrap().to_string(),
                    r["offset"].as_u64().unwrap() + header,
                ));
            }
        }
    }
    let (pack, stored_at) = hit.expect("chunk in the index");
    let path = f
        .repo
        .join("packs")
        .join(&pack[..2])
        .join(format!("{pack}.pack"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(stored_at + 100) as usize] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();

    let out = browse(f, "p1", &["cat", "/a/big.bin"]);
    assert!(!out.status.success(), "cat of a damaged chunk must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    let area_off = chunk["offset"].as_u64().unwrap();
    // The damaged record is a frame of several chunks: the first of them the walk
    // reads is named, at most one frame (8 MiB) before the chosen one.
    let named: u64 = err
        .split("I/O error at byte ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(
        err.contains("image img, area p1")
            && named <= area_off
            && area_off - named < 8 << 20
            && err.contains("CRC mismatch"),
        "error must name image, area and byte: {err}"
    );
    // What did come out is a true prefix of the file: no wrong bytes.
    let truth = std::fs::read(f.root.join("tree/a/big.bin")).unwrap();
    assert!(out.stdout.len() < truth.len());
    assert!(truth.starts_with(&out.stdout), "cat wrote wrong bytes");
    // get leaves no half-written file.
    let dest = f.root.join("big-from-damaged");
    let out = browse(f, "p1", &["get", "/a/big.bin", path_str(&dest)]);
    assert!(!out.status.success());
    assert!(!dest.exists());
}

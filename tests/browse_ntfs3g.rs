//! `ironclone browse` of an NTFS written by ntfs-3g, as a Linux user fills one: a
//! tree of a few hundred files copied onto the FUSE mount, and links of every kind
//! Windows and ntfs-3g make (Interix symlinks from `ln -s`, and reparse points set
//! through ntfs-3g's `system.ntfs_reparse_data`: symlinks, junctions, WSL symlinks),
//! and entries that cannot be copied (a FIFO, a device, a WOF-compressed file, a
//! junction whose reparse data is broken in the image).
//!
//! `browse get` must give back the same bytes, must decode each stored chunk at most
//! once however many files it copies (the cost, counted without a clock), and must
//! make the links links, whose targets name what ntfs-3g itself resolves them to.

mod common;
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

/// A reparse buffer as `setfattr -v` takes it: tag, data length, reserved, data.
fn reparse_hex(tag: u32, data: &[u8]) -> String {
    let mut b = tag.to_le_bytes().to_vec();
    b.extend_from_slice(&(data.len() as u16).to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(data);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("0x{hex}")
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// IO_REPARSE_TAG_SYMLINK (flags 1: relative) or IO_REPARSE_TAG_MOUNT_POINT data:
/// name offsets and lengths, then the substitute and print names.
fn names_data(substitute: &str, print: &str, flags: Option<u32>) -> Vec<u8> {
    let (sub, pr) = (utf16(substitute), utf16(print));
    let mut d = Vec::new();
    for v in [0, sub.len(), sub.len(), pr.len()] {
        d.extend_from_slice(&(v as u16).to_le_bytes());
    }
    if let Some(f) = flags {
        d.extend_from_slice(&f.to_le_bytes());
    }
    d.extend_from_slice(&sub);
    d.extend_from_slice(&pr);
    d
}

const SYMLINK: u32 = 0xA000_000C;
const MOUNT_POINT: u32 = 0xA000_0003;
const LX_SYMLINK: u32 = 0xA000_001D;

fn set_reparse(path: &Path, tag: u32, data: &[u8]) {
    run(
        "setfattr",
        &[
            "-n",
            "system.ntfs_reparse_data",
            "-v",
            &reparse_hex(tag, data),
            s(path),
        ],
    );
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    tree: PathBuf,
    repo: PathBuf,
    /// Link path in the volume -> what ntfs-3g's `readlink` gives, the mount point
    /// replaced by `/`.
    links: Vec<(String, String)>,
}

/// The links made on the volume: (path, how).
fn make_links(mnt: &Path) {
    // Interix symlinks, as ntfs-3g writes them for `ln -s`.
    std::os::unix::fs::symlink("d0/f00.bin", mnt.join("intx_rel")).unwrap();
    std::os::unix::fs::symlink("../d1", mnt.join("d0/intx_up")).unwrap();
    // A Windows relative symlink to a file.
    std::fs::write(mnt.join("win_rel"), b"").unwrap();
    set_reparse(
        &mnt.join("win_rel"),
        SYMLINK,
        &names_data("d1\\sub\\f01.bin", "d1\\sub\\f01.bin", Some(1)),
    );
    // A Windows absolute symlink to a directory of this volume, from a subdirectory:
    // a directory itself, as `mklink /D` makes it (ntfs-3g resolves it only then).
    std::fs::create_dir(mnt.join("d3/win_abs")).unwrap();
    set_reparse(
        &mnt.join("d3/win_abs"),
        SYMLINK,
        &names_data("\\??\\C:\\d2\\SUB", "C:\\d2\\SUB", Some(0)),
    );
    // A junction onto a directory of this volume, and one onto another drive.
    std::fs::create_dir(mnt.join("junc")).unwrap();
    set_reparse(
        &mnt.join("junc"),
        MOUNT_POINT,
        &names_data("\\??\\C:\\d4", "C:\\d4", None),
    );
    std::fs::create_dir(mnt.join("d5/junc_away")).unwrap();
    set_reparse(
        &mnt.join("d5/junc_away"),
        MOUNT_POINT,
        &names_data("\\??\\D:\\Users\\Public", "D:\\Users\\Public", None),
    );
    // A WSL symlink: version 2, then the UTF-8 target.
    std::fs::write(mnt.join("lx"), b"").unwrap();
    let mut lx = 2u32.to_le_bytes().to_vec();
    lx.extend_from_slice(b"d5/sub/f02.bin");
    set_reparse(&mnt.join("lx"), LX_SYMLINK, &lx);
}

/// Entries `get` must skip: Interix FIFO and device (ntfs-3g's `mkfifo`, `mknod`),
/// a file behind a WOF-compression reparse point (its data only Windows can read),
/// and a junction whose reparse data `corrupt` breaks after unmounting.
fn make_specials(mnt: &Path) {
    let d5 = mnt.join("d5");
    run("mkfifo", &[s(&d5.join("fifo"))]);
    run("mknod", &[s(&d5.join("null")), "c", "1", "3"]);
    std::fs::write(d5.join("wof.bin"), prng_bytes(5, 5000)).unwrap();
    let wof: Vec<u8> = [1u32, 2, 3, 4]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    set_reparse(&d5.join("wof.bin"), 0x8000_0017, &wof);
    std::fs::create_dir(d5.join("bad")).unwrap();
    set_reparse(
        &d5.join("bad"),
        MOUNT_POINT,
        &names_data(BAD_TARGET, "", None),
    );
}

/// The broken junction's target: unique, so that its bytes can be found in the image.
const BAD_TARGET: &str = "\\??\\C:\\corrupt-me";

/// Sets the substitute name length of the junction to `BAD_TARGET` far past its
/// reparse data, in the image (its MFT record holds the data resident).
fn corrupt(img: &Path) {
    let mut b = std::fs::read(img).unwrap();
    let name = utf16(BAD_TARGET);
    let at = b
        .windows(name.len())
        .position(|w| w == name.as_slice())
        .expect("the junction's target in the image");
    // Path buffer at 16 bytes into the reparse data; the length field at 10.
    let len_at = at - 6;
    assert!(len_at % 512 < 510, "not on a fixup");
    b[len_at..len_at + 2].copy_from_slice(&0x4000u16.to_le_bytes());
    std::fs::write(img, b).unwrap();
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
    let links = {
        let _m = Mount::new(&img, &mnt);
        run("cp", &["-r", &format!("{}/.", s(&tree)), s(&mnt)]);
        make_links(&mnt);
        make_specials(&mnt);
        Vec::new()
    };
    // ntfs-3g reads reparse points it did not cache: the targets it resolves them to.
    let links = {
        let _m = Mount::new(&img, &mnt);
        let mut l = links;
        for p in [
            "intx_rel",
            "d0/intx_up",
            "win_rel",
            "d3/win_abs",
            "junc",
            "d5/junc_away",
            "lx",
        ] {
            let t = std::fs::read_link(mnt.join(p)).unwrap_or_else(|e| panic!("readlink {p}: {e}"));
            let t = t.to_string_lossy().replacen(s(&mnt), "", 1);
            l.push((p.to_string(), t));
        }
        l
    };
    corrupt(&img);
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
        links,
    }
}

fn browse(f: &Fixture, args: &[&str]) -> Output {
    let mut a = vec!["browse", s(&f.repo), "img", "disk-fs"];
    a.extend_from_slice(args);
    ironclone(&a)
}

/// Stored chunks of the image's area (zero chunks are never decoded).
fn stored_chunks(f: &Fixture) -> u64 {
    let m: serde_json::Value = serde_json::from_slice(&common::json_file_bytes(
        std::fs::read(f.repo.join("images/img.json")).unwrap(),
    ))
    .unwrap();
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
#[ignore = "needs root"]
fn browse_get_of_an_ntfs_tree_decodes_each_chunk_once_and_keeps_links_links() {
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

    // The links: none of them a file.
    assert_eq!(v["files"], 241, "{v}");
    assert_eq!(v["symlinks"], 6, "{v}");
    links_are_links(&f, &got, &v);
    ls_shows_links(&f);
    specials_are_skipped(&f, &got, &v);
}

/// `p` with `.` and `..` taken out (lexically, as the links are relative).
fn normalize(p: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    format!("/{}", out.join("/"))
}

fn links_are_links(f: &Fixture, got: &Path, v: &serde_json::Value) {
    for (p, theirs) in &f.links {
        if p == "d5/junc_away" {
            // ntfs-3g points a junction onto another drive into its `.NTFS-3G`
            // directory, for the user to fill; here it is not made, and said so.
            assert!(theirs.starts_with("/.NTFS-3G/D:"), "ntfs-3g: {theirs}");
            assert!(std::fs::symlink_metadata(got.join(p)).is_err());
            let skipped = v["skipped"].as_array().expect("skipped");
            assert!(
                skipped.iter().any(|s| s["path"] == "/d5/junc_away"
                    && s["why"].as_str().unwrap().contains("D:\\Users\\Public")),
                "{v}"
            );
            continue;
        }
        let meta = std::fs::symlink_metadata(got.join(p)).unwrap();
        assert!(meta.file_type().is_symlink(), "{p} is not a symlink");
        let ours = std::fs::read_link(got.join(p)).unwrap();
        let ours = ours.to_str().unwrap();
        if theirs.starts_with('/') {
            // ntfs-3g: <mount point>/target; here: relative to the link's directory.
            assert!(!ours.starts_with('/'), "{p} -> {ours}");
            let dir = Path::new("/").join(Path::new(p).parent().unwrap());
            assert_eq!(normalize(&dir.join(ours)), *theirs, "{p} -> {ours}");
        } else {
            assert_eq!(ours, theirs, "{p}");
        }
    }
    // Followed in the copy, they reach the same bytes and directories.
    for (link, file) in [
        ("intx_rel", "d0/f00.bin"),
        ("win_rel", "d1/sub/f01.bin"),
        ("lx", "d5/sub/f02.bin"),
        ("junc/f03.bin", "d4/f03.bin"),
        ("d3/win_abs/f04.bin", "d2/sub/f04.bin"),
        ("d0/intx_up/f05.bin", "d1/f05.bin"),
    ] {
        assert!(
            std::fs::read(got.join(link)).unwrap() == std::fs::read(f.tree.join(file)).unwrap(),
            "{link} does not lead to {file}"
        );
    }
}

fn ls_shows_links(f: &Fixture) {
    let out = browse(f, &["ls", "/", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&out, "browse ls")).unwrap();
    let entry = |name: &str| {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {v}"))
            .clone()
    };
    for (name, target) in [
        ("intx_rel", "d0/f00.bin"),
        ("win_rel", "d1/sub/f01.bin"),
        ("junc", "d4"),
        ("lx", "d5/sub/f02.bin"),
    ] {
        let e = entry(name);
        assert_eq!(e["kind"], "symlink", "{e}");
        assert_eq!(e["target"], target, "{e}");
    }
    assert_eq!(entry("d0")["kind"], "dir");
    let text = ok(&browse(f, &["ls", "/d5"]), "browse ls /d5");
    let line = text
        .lines()
        .find(|l| l.contains("junc_away"))
        .unwrap_or_else(|| panic!("junc_away listed: {text}"));
    assert!(
        line.starts_with("symlink")
            && line.contains("junc_away -> D:\\Users\\Public")
            && line.contains("get skips it"),
        "{line}"
    );
}

/// FIFOs, devices, data behind other reparse points and malformed reparse data
/// are listed as `other` with the reason, and `get` skips them, naming it.
fn specials_are_skipped(f: &Fixture, got: &Path, v: &serde_json::Value) {
    let out = browse(f, &["ls", "/d5", "--json"]);
    let l: serde_json::Value = serde_json::from_str(&ok(&out, "browse ls /d5")).unwrap();
    for (name, why) in [
        ("fifo", "Interix FIFO"),
        ("null", "Interix device"),
        ("wof.bin", "0x80000017"),
        ("bad", "substitute name"),
    ] {
        let e = l["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {l}"));
        assert_eq!(e["kind"], "other", "{e}");
        assert!(e["skip"].as_str().unwrap().contains(why), "{e}");
        assert!(std::fs::symlink_metadata(got.join("d5").join(name)).is_err());
        let path = format!("/d5/{name}");
        assert!(
            v["skipped"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["path"] == path && s["why"].as_str().unwrap().contains(why)),
            "{path} not in {v}"
        );
    }
}

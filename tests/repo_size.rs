//! The image of a small ext4 against `partclone.ext4 | zstd -3` (issue 16, item 5): a
//! chunk that zstd shrinks is never stored raw, however random its sampled spots look.
//! The fixture holds what made a four-spot sample wrong: photos each stored twice (a
//! 32 KiB random block and its copy, so no 16 KiB spot sees a repeat) and a text file.

mod common;
mod fsfixture;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

fn ironclone(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(args)
        .output()
        .expect("run ironclone");
    assert!(
        out.status.success(),
        "ironclone {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// 48 MiB ext4 made by mkfs.ext4 -d: 16 MiB of twice-stored random blocks, 2 MiB of text.
fn fixture(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut photos = Vec::with_capacity(16 * MIB);
    for i in 0..(16 * MIB / (64 * KIB)) as u64 {
        let block = fsfixture::prng_bytes(1000 + i, 32 * KIB);
        photos.extend_from_slice(&block);
        photos.extend_from_slice(&block);
    }
    std::fs::write(data.join("photos.bin"), &photos).unwrap();
    let words: Vec<String> = (0..3000u64)
        .map(|i| {
            let b = fsfixture::prng_bytes(i, 9);
            let n = 2 + usize::from(b[0]) % 8;
            b[1..=n.min(8)]
                .iter()
                .map(|x| char::from(b'a' + x % 26))
                .collect()
        })
        .collect();
    let picks = fsfixture::prng_bytes(77, 2 * MIB);
    let mut text = String::with_capacity(2 * MIB + 16);
    for p in picks.chunks_exact(2) {
        if text.len() >= 2 * MIB {
            break;
        }
        text.push_str(&words[usize::from(u16::from_le_bytes([p[0], p[1]])) % words.len()]);
        text.push(' ');
    }
    std::fs::write(data.join("notes.txt"), text).unwrap();
    let img = dir.join("small.img");
    fsfixture::sparse_file(&img, 48 * MIB as u64);
    fsfixture::run(
        "mkfs.ext4",
        // 4 KiB blocks: with the 1 KiB that mkfs picks for small filesystems, group
        // metadata every 8 MiB would lie under the first sampled spot of a chunk.
        &[
            "-q",
            "-F",
            "-b",
            "4096",
            "-d",
            data.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
    );
    img
}

/// Bytes of `zstd -3` with the chunk's 8 MiB window, run on `bytes` alone.
fn zstd_len(bytes: &[u8]) -> usize {
    let mut child = Command::new("zstd")
        .args(["-3", "-q", "-c", "--zstd=wlog=23"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zstd (scripts/setup.sh)");
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.len()
}

fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_small_ext4_image_keeps_every_byte_zstd_saves() {
    for tool in ["mkfs.ext4", "partclone.ext4", "zstd", "cmp"] {
        common::require_tool(tool);
    }
    let dir = common::tempdir();
    let img = fixture(dir.path());
    let repo = dir.path().join("repo");
    let (is, rs) = (img.to_str().unwrap(), repo.to_str().unwrap());
    ironclone(&["backup", is, rs, "--name", "small"]);

    // Every record stored raw must be one that zstd, run independently on the same
    // bytes from the source, cannot shrink either.
    let source = std::fs::read(&img).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&common::json_file_bytes(
        std::fs::read(repo.join("images/small.json")).unwrap(),
    ))
    .unwrap();
    let mut where_is: HashMap<String, (usize, usize)> = HashMap::new();
    for area in manifest["areas"].as_array().unwrap() {
        let base = area["offset"].as_u64().unwrap() as usize;
        for c in area["chunks"].as_array().unwrap() {
            if let Some(id) = c["id"].as_str() {
                let at = base + c["offset"].as_u64().unwrap() as usize;
                where_is.insert(id.into(), (at, c["len"].as_u64().unwrap() as usize));
            }
        }
    }
    let mut raw = 0;
    for index in files_under(&repo.join("index"), "json") {
        let v: serde_json::Value =
            serde_json::from_slice(&common::json_file_bytes(std::fs::read(&index).unwrap()))
                .unwrap();
        for e in v["entries"].as_array().unwrap() {
            if e["compression"] == "none" {
                raw += 1;
                // A frame's bytes are its chunks' bytes back to back.
                let ids: Vec<String> = match e["chunks"].as_array() {
                    Some(c) => c
                        .iter()
                        .map(|m| m[0].as_str().unwrap().to_string())
                        .collect(),
                    None => vec![e["id"].as_str().unwrap().to_string()],
                };
                let bytes: Vec<u8> = ids
                    .iter()
                    .flat_map(|id| {
                        let (at, len) = where_is[id];
                        source[at..at + len].to_vec()
                    })
                    .collect();
                let (at, len) = where_is[&ids[0]];
                let z = zstd_len(&bytes);
                assert!(
                    z >= bytes.len(),
                    "a {}-byte record from byte {at} (first chunk {len} bytes) was stored raw; zstd -3 makes it {z} bytes",
                    bytes.len()
                );
            }
        }
    }

    // The pack against the peer on the same file. Frames restart every 8 MiB, so a
    // photo whose copy lies across a chunk border costs up to 32 KiB here that the
    // peer's stream keeps (docs/BENCH.md, "Small partitions"); hence the 1%.
    let peer = dir.path().join("peer.zst");
    let log = dir.path().join("partclone.log");
    // -L: partclone's own log, by default /var/log/partclone.log, which needs root.
    let sh = format!(
        "set -o pipefail; partclone.ext4 -c -s '{is}' -L '{}' -o - 2>'{}' | zstd -3 -T0 -q > '{}'",
        dir.path().join("partclone-own.log").display(),
        log.display(),
        peer.display()
    );
    let (ok, err) = common::run_status("bash", &["-c", &sh]);
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ok, "partclone.ext4 | zstd: {err}\n{log}");
    let peer_len = std::fs::metadata(&peer).unwrap().len();
    let pack_len: u64 = files_under(&repo.join("packs"), "pack")
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    eprintln!(
        "pack {pack_len} bytes, partclone.ext4 | zstd -3 {peer_len} bytes, {raw} raw records"
    );
    assert!(
        pack_len * 100 <= peer_len * 101,
        "pack {pack_len} bytes vs partclone.ext4 | zstd -3 {peer_len} bytes"
    );

    // And the image still restores to the same bytes.
    let out = dir.path().join("restored.img");
    fsfixture::sparse_file(&out, 48 * MIB as u64);
    ironclone(&["restore", rs, "small", out.to_str().unwrap(), "--yes"]);
    fsfixture::run("cmp", &[is, out.to_str().unwrap()]);
}

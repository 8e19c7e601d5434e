//! `ironclone backup` of a GPT disk image holding ext4 and a LUKS2 partition, on the
//! host (no device-mapper): without a key the LUKS partition is imaged raw and says
//! so; with a wrong key (`--unlock` with $IRONCLONE_LUKS_PASSPHRASE, or `--key-file`)
//! the backup fails before anything is stored, and the key appears in no output.
//! Opening with the right key needs device-mapper: tests/qemu/test-live-luks.sh.

mod common;

use common::{path_str, require_tool, run, run_in, sparse};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ironclone");
const MIB: u64 = 1 << 20;
const PASS: &str = "correct horse battery staple";

/// A 64 MiB GPT disk: p1 ext4 (20 MiB), p2 LUKS2 (the rest), formatted with `PASS`.
fn disk(dir: &Path) -> PathBuf {
    for t in ["sfdisk", "mkfs.ext4", "cryptsetup", "dd"] {
        require_tool(t);
    }
    let disk = sparse(dir, "disk.img", 64 * MIB);
    run_in(
        "sfdisk",
        &["-q", path_str(&disk)],
        Some("label: gpt\n,20M,L\n,,CA7D7CCB-63ED-4C53-861C-1742536059CC\n"),
    );
    let p1 = sparse(dir, "p1.img", 20 * MIB);
    run("mkfs.ext4", &["-q", "-F", path_str(&p1)]);
    let p2 = sparse(dir, "p2.img", 40 * MIB);
    let key = dir.join("key");
    std::fs::write(&key, PASS).unwrap();
    run(
        "cryptsetup",
        &[
            "luksFormat",
            "-q",
            "--type",
            "luks2",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            path_str(&key),
            path_str(&p2),
        ],
    );
    std::fs::remove_file(&key).unwrap();
    for (img, at) in [(&p1, MIB), (&p2, 21 * MIB)] {
        run(
            "dd",
            &[
                &format!("if={}", path_str(img)),
                &format!("of={}", path_str(&disk)),
                "bs=1M",
                "oflag=seek_bytes",
                &format!("seek={at}"),
                "conv=notrunc,sparse",
                "status=none",
            ],
        );
    }
    disk
}

fn ironclone(args: &[&str], passphrase: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("IRONCLONE_LUKS_PASSPHRASE");
    if let Some(p) = passphrase {
        c.env("IRONCLONE_LUKS_PASSPHRASE", p);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn images(repo: &Path) -> Vec<String> {
    std::fs::read_dir(repo.join("images"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn without_a_key_luks_is_imaged_raw_and_says_so() {
    let d = common::tempdir();
    let disk = disk(d.path());
    let repo = d.path().join("repo");
    let out = ironclone(
        &["backup", path_str(&disk), path_str(&repo), "--name", "k0"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("encrypted (LUKS2), imaged raw: no key given"),
        "{t}"
    );
    let out = ironclone(&["inspect", path_str(&disk)], None);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("encrypted (LUKS2), imaged raw: no key given"),
        "{t}"
    );
    let out = ironclone(&["images", path_str(&repo), "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["images"][0].get("plaintext_of_encrypted").is_none(),
        "{v}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_wrong_key_stores_nothing_and_is_never_printed() {
    require_tool("losetup");
    let d = common::tempdir();
    let disk = disk(d.path());
    let repo = d.path().join("repo");
    let wrong = "wrong passphrase 12345";
    let out = ironclone(
        &["backup", path_str(&disk), path_str(&repo), "--unlock"],
        Some(wrong),
    );
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("does not open the LUKS volume"), "{t}");
    assert!(!t.contains(wrong), "the key was printed: {t}");
    assert!(
        images(&repo).is_empty(),
        "an image was stored: {:?}",
        images(&repo)
    );
    let kf = d.path().join("wrong.key");
    std::fs::write(&kf, wrong).unwrap();
    let out = ironclone(
        &[
            "backup",
            path_str(&disk),
            path_str(&repo),
            "--key-file",
            path_str(&kf),
        ],
        Some(PASS),
    );
    let t = text(&out);
    assert!(
        !out.status.success(),
        "--key-file must win over the environment: {t}"
    );
    assert!(t.contains("does not open the LUKS volume"), "{t}");
    assert!(images(&repo).is_empty());
    let missing = d.path().join("no-such.key");
    let out = ironclone(
        &[
            "backup",
            path_str(&disk),
            path_str(&repo),
            "--key-file",
            path_str(&missing),
        ],
        None,
    );
    assert!(
        text(&out).contains("reading the key file"),
        "{}",
        text(&out)
    );
    // The loop devices made for the test are gone again.
    let loops = run("losetup", &["-j", path_str(&disk)]);
    assert!(loops.trim().is_empty(), "loop devices left: {loops}");
}

//! Clonezilla 3.x images of a LUKS partition (tests/clonezilla_fixture: GPT, FAT ESP
//! sda1; here sda2 made LUKS2 as Clonezilla saves an opened volume: `luks-dev.list`,
//! `sda2-luksHeader.bin` by `cryptsetup luksHeaderBackup`, the decrypted ext4 as
//! `ocs_luks_Ab1.ext4-ptcl-img.zst`, `MD5SUMS` listing the header):
//! - `images` lists sda2 as LUKS2 with ext4 inside; `browse` reads the inner files by
//!   the partition's name and by the mapping's;
//! - `import` stores the native layout and says the repository holds plaintext:
//!   `verify` passes, the header area is the header file byte for byte, the plaintext
//!   area's files are the source's;
//! - a restore without a key, or with a key the header refuses, writes nothing;
//! - swap inside the volume (`swappt-<mapper>.info`): the imported plaintext area
//!   starts with a swap header carrying the saved UUID and label;
//! - a missing or cut header file, a UUID that is not the list's, a flipped byte in
//!   the header (MD5SUMS) or in the inner image: the import is refused naming the
//!   file, the repository unchanged;
//! - the TUI's real services: the image and its import need a key; a wrong passphrase
//!   is refused by the header before anything (no target picked yet), the right one taken.
//!
//! A restore with the key needs device-mapper: tests/qemu/test-live-clonezilla-luks.sh.

mod clonezilla_fixture;
mod fsfixture;

use clonezilla_fixture::{browse, cli, run_with_scratch, Fixture};
use fsfixture::{prng_bytes, run, run_status};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_ironclone");
const MIB: u64 = 1 << 20;
const PASS: &str = "correct horse battery staple";
const MAPPER: &str = "ocs_luks_Ab1";
const SEED: u64 = 7;
const NAME: &str = "img";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Luks {
    fx: Fixture,
    uuid: String,
}

/// The fixture's folder with sda2 made a LUKS2 partition saved opened.
fn build(dir: &Path) -> Luks {
    let fx = clonezilla_fixture::build(dir, NAME, SEED, false);
    let uuid = clonezilla_fixture::shapes::make_luks(dir, &fx, NAME, PASS, MAPPER);
    Luks { fx, uuid }
}

/// Every file under `dir` with its size and hash (what "unchanged" compares); the
/// repository's tmp/ and lock files come and go.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, blake3::Hash> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "tmp" || name.contains("lock") {
                continue;
            }
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), blake3::hash(&fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn a_luks_image_lists_browses_imports_and_refuses_a_restore_without_its_key() {
    let d = tempfile::tempdir().unwrap();
    let l = build(d.path());
    let root = &l.fx.root;
    let scratch = d.path().join("scratch");
    let cache = d.path().join("cache");

    let (ok, _, text) = cli(&["images", s(root)]);
    assert!(ok, "{text}");
    assert!(
        text.contains("clonezilla: sda2 (LUKS2, ext4 inside)"),
        "{text}"
    );
    let (ok, out, text) = cli(&["images", s(root), "--json"]);
    assert!(ok, "{text}");
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let v = &j["images"][0]["luks"][0];
    assert_eq!(v["version"], 2, "{j}");
    assert_eq!(v["uuid"], l.uuid.as_str(), "{j}");
    assert_eq!(v["inner"], "ext4", "{j}");

    let want = prng_bytes(SEED * 10, 2_000_000);
    assert!(browse(root, NAME, "sda2", &["cat", "/data0"], &cache) == want);
    let ls = browse(root, NAME, MAPPER, &["ls", "/"], &cache);
    assert!(String::from_utf8_lossy(&ls).contains("data3"));

    // import: the native layout, and the plaintext warning
    let repo = d.path().join("repo");
    let (ok, out) = run_with_scratch(
        &["import", s(root), NAME, s(&repo), "--name", "luks"],
        &scratch,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("PLAINTEXT") && out.contains("backup --encrypt"),
        "{out}"
    );
    let (ok, _, text) = cli(&["verify", s(&repo), "luks"]);
    assert!(ok, "verify: {text}");
    {
        use ironclone::device::BlockDevice;
        let r = ironclone::repo::Repository::open(&repo).unwrap();
        let head = ironclone::repo::ImageDevice::open(&r, "luks", "p2").unwrap();
        let saved = fs::read(l.fx.image.join("sda2-luksHeader.bin")).unwrap();
        let got = head.read_vec(0, saved.len()).unwrap();
        assert!(got == saved, "the header area differs from the header file");
    }
    let got = browse(&repo, "luks", "p2-plaintext", &["cat", "/data2"], &cache);
    assert!(got == prng_bytes(SEED * 10 + 2, 2_000_000));

    // a restore without the key, then with a wrong one: nothing written
    let target = d.path().join("target.img");
    fs::File::create(&target)
        .unwrap()
        .set_len(240 * MIB)
        .unwrap();
    let before = blake3::hash(&fs::read(&target).unwrap());
    let (ok, out) = run_with_scratch(
        &["restore", s(root), NAME, s(&target), "--yes", "--no-nvram"],
        &scratch,
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("sda2") && out.contains("--unlock") && out.contains("--key-file"),
        "{out}"
    );
    let wrong = d.path().join("wrong-key");
    fs::write(&wrong, "not the passphrase").unwrap();
    let (ok, out) = run_with_scratch(
        &[
            "restore",
            s(root),
            NAME,
            s(&target),
            "--yes",
            "--no-nvram",
            "--key-file",
            s(&wrong),
        ],
        &scratch,
    );
    assert!(!ok, "{out}");
    assert!(
        !out.contains("not the passphrase"),
        "the key was printed: {out}"
    );
    // The restore's temporary repository is deleted after: no plaintext warning, which
    // the import (above) gives. The planner ran (its "checked" line is there).
    assert!(out.contains("checked in"), "{out}");
    assert!(
        !out.contains("PLAINTEXT") && !out.contains("whoever reads the repository"),
        "a restore warns that a repository holds plaintext: {out}"
    );
    let o = run_status(
        BIN,
        &[
            "restore",
            s(&repo),
            "luks",
            s(&target),
            "--yes",
            "--no-nvram",
            "--scratch",
            s(&scratch),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--unlock"));
    assert_eq!(
        blake3::hash(&fs::read(&target).unwrap()),
        before,
        "the target was written"
    );
}

/// Flips one byte 5000 bytes before the end of the decoded zstd image `zst`.
fn damage_zst(zst: &Path) {
    let mut raw = run("zstd", &["-dc", s(zst)]).stdout;
    let at = raw.len() - 5000;
    raw[at] ^= 0x10;
    let plain = zst.with_extension("");
    fs::write(&plain, &raw).unwrap();
    run("zstd", &["-q", "-f", "--rm", s(&plain)]);
}

#[test]
fn a_damaged_luks_image_is_refused_naming_the_file_and_the_repository_is_unchanged() {
    let d = tempfile::tempdir().unwrap();
    let l = build(d.path());
    let scratch = d.path().join("scratch");
    let repo = d.path().join("repo");
    let (ok, out) = run_with_scratch(
        &["import", s(&l.fx.root), NAME, s(&repo), "--name", "good"],
        &scratch,
    );
    assert!(ok, "{out}");
    let before = snapshot(&repo);
    let header = "sda2-luksHeader.bin";
    let zst = format!("{MAPPER}.ext4-ptcl-img.zst");
    type Break = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "header missing",
            Box::new(move |i: &Path| fs::remove_file(i.join(header)).unwrap()),
            header,
        ),
        (
            "header cut short",
            Box::new(move |i: &Path| {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(i.join(header))
                    .unwrap();
                f.set_len(8 * MIB).unwrap();
            }),
            "cut short",
        ),
        (
            "UUID not the list's",
            Box::new(|i: &Path| {
                let p = i.join("luks-dev.list");
                let t = fs::read_to_string(&p).unwrap();
                let (head, rest) = t.split_once("/dev/sda2 ").unwrap();
                let bad = format!(
                    "{head}/dev/sda2 00000000-0000-4000-8000-000000000000 {}",
                    &rest[37..]
                );
                fs::write(&p, bad).unwrap();
            }),
            "differs",
        ),
        (
            "header byte flipped (MD5SUMS)",
            Box::new(move |i: &Path| {
                let p = i.join(header);
                let mut b = fs::read(&p).unwrap();
                b[(8 * MIB) as usize] ^= 1;
                fs::write(&p, b).unwrap();
            }),
            header,
        ),
        (
            "inner image byte flipped",
            Box::new(move |i: &Path| damage_zst(&i.join(&zst))),
            MAPPER,
        ),
    ];
    for (what, breaks, names) in cases {
        let root = d.path().join(format!("broken-{}", what.replace(' ', "-")));
        fs::create_dir_all(&root).unwrap();
        run("cp", &["-a", s(&l.fx.image), s(&root.join(NAME))]);
        breaks(&root.join(NAME));
        let (ok, out) = run_with_scratch(
            &["import", s(&root), NAME, s(&repo), "--name", "bad"],
            &scratch,
        );
        assert!(!ok, "{what}: imported: {out}");
        assert!(
            out.contains(names),
            "{what}: the error names no {names}: {out}"
        );
        assert!(snapshot(&repo) == before, "{what}: the repository changed");
        eprintln!("{what}: refused: {}", out.lines().last().unwrap_or(""));
    }
}

/// The swap header mkswap writes: UUID at byte 1036, label at 1052 (16 bytes each),
/// "SWAPSPACE2" ending the first 4 KiB page.
fn swap_ids(page: &[u8]) -> (String, String) {
    assert_eq!(&page[4086..4096], b"SWAPSPACE2", "no swap signature");
    let u = &page[1036..1052];
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        hex(&u[0..4]),
        hex(&u[4..6]),
        hex(&u[6..8]),
        hex(&u[8..10]),
        hex(&u[10..16])
    );
    let label = &page[1052..1068];
    let end = label.iter().position(|&b| b == 0).unwrap_or(label.len());
    (uuid, String::from_utf8_lossy(&label[..end]).into_owned())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn swap_inside_a_luks_volume_is_imported_with_its_saved_uuid_and_label() {
    const SWAP_UUID: &str = "0b5c1f3e-8d2a-4c6b-9e7f-1a2b3c4d5e6f";
    const LABEL: &str = "cryptswap";
    let d = tempfile::tempdir().unwrap();
    let l = build(d.path());
    let img = &l.fx.image;
    // The opened volume held swap: Clonezilla saves only its UUID and label.
    fs::remove_file(img.join(format!("{MAPPER}.ext4-ptcl-img.zst"))).unwrap();
    fs::write(
        img.join(format!("swappt-{MAPPER}.info")),
        format!("UUID=\"{SWAP_UUID}\"\nLABEL=\"{LABEL}\"\n"),
    )
    .unwrap();
    fs::write(
        img.join("dev-fs.list"),
        format!("# <Device name>   <File system>   <Size>\n/dev/sda1 vfat 32M\n/dev/sda2 crypto_LUKS 127.9M\n/dev/mapper/{MAPPER} swap 111.9M\n"),
    )
    .unwrap();
    let (ok, _, text) = cli(&["images", s(&l.fx.root)]);
    assert!(ok, "{text}");
    assert!(text.contains("sda2 (LUKS2, swap inside)"), "{text}");

    let scratch = d.path().join("scratch");
    let repo = d.path().join("repo");
    let (ok, out) = run_with_scratch(
        &["import", s(&l.fx.root), NAME, s(&repo), "--name", "sw"],
        &scratch,
    );
    assert!(ok, "{out}");
    let (ok, _, text) = cli(&["verify", s(&repo), "sw"]);
    assert!(ok, "verify: {text}");
    use ironclone::device::BlockDevice;
    let r = ironclone::repo::Repository::open(&repo).unwrap();
    let plain = ironclone::repo::ImageDevice::open(&r, "sw", "p2-plaintext").unwrap();
    let page = plain.read_vec(0, 4096).unwrap();
    let (uuid, label) = swap_ids(&page);
    assert_eq!(uuid, SWAP_UUID, "the swap's UUID is not the saved one");
    assert_eq!(label, LABEL, "the swap's label is not the saved one");
}

/// The TUI's real services (no disk offered): the Clonezilla image and its import
/// are listed as needing a LUKS key; a wrong passphrase is refused by the image's own
/// header (nothing is written: no target is even picked yet), the right one accepted.
/// In the app, a wrong key keeps the passphrase screen with the refusal on it.
#[test]
fn the_tui_checks_the_luks_passphrase_against_the_images_header() {
    use ironclone::share::Password;
    use ironclone::tui::Services;
    let d = tempfile::tempdir().unwrap();
    let l = build(d.path());
    let root = &l.fx.root;
    let scratch = d.path().join("scratch");
    // Only this test reads IRONCLONE_SCRATCH (the services' scratch folder).
    std::env::set_var("IRONCLONE_SCRATCH", &scratch);
    let repo = d.path().join("repo");
    let (ok, out) = run_with_scratch(
        &["import", s(root), NAME, s(&repo), "--name", "luks"],
        &scratch,
    );
    assert!(ok, "{out}");
    let services = ironclone::tui::real::RealServices::new(Some(vec![]));
    for (dir, image) in [(root.as_path(), NAME), (repo.as_path(), "luks")] {
        let row = services
            .list_images(dir)
            .unwrap()
            .into_iter()
            .find(|i| i.name == image)
            .unwrap_or_else(|| panic!("{image} not listed"));
        assert!(row.needs_luks_key, "{image}: no key asked");
        let e = services
            .check_luks_key(dir, &row, &Password::new("not the passphrase"))
            .expect_err("a wrong key accepted");
        assert!(e.to_string().contains("Wrong passphrase"), "{image}: {e}");
        services
            .check_luks_key(dir, &row, &Password::new(PASS))
            .unwrap_or_else(|e| panic!("{image}: the right key refused: {e}"));
    }
    let leftovers: Vec<_> = fs::read_dir(&scratch)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("luks-check"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "scratch header files left: {leftovers:?}"
    );

    // The app: the image picked, a wrong key: the screen says so and asks again.
    use crossterm::event::KeyCode;
    use ironclone::tui::app::Screen;
    let mut app = ironclone::tui::App::new(std::sync::Arc::new(services));
    app.press(KeyCode::Char('r'));
    app.press(KeyCode::Char('/'));
    app.type_str(s(root));
    app.press(KeyCode::Enter);
    app.settle(std::time::Duration::from_secs(30));
    assert!(
        matches!(app.screen(), Screen::Images { .. }),
        "{:?}",
        app.screen()
    );
    app.press(KeyCode::Enter);
    clonezilla_fixture::tui_wrong_then_right_key(&mut app, PASS);
    assert!(
        matches!(app.screen(), Screen::Disks { .. }),
        "{:?}",
        app.screen()
    );
}

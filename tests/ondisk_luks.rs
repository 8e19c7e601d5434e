//! The LUKS header decoder against headers `cryptsetup luksFormat` writes on plain files
//! (no device-mapper needed), checked field by field against `cryptsetup luksDump`, and
//! against damaged copies: each must fail with an error naming the structure and field.

use ironclone::device::MemDevice;
use ironclone::ondisk::luks::{read_header, Json, LuksError, LuksHeader};
use std::path::Path;
use std::process::Command;

const KEY: &[u8] = b"not a secret, only a test key";

fn format(dir: &Path, name: &str, size_mib: u64, args: &[&str]) -> Vec<u8> {
    let key = dir.join("key");
    std::fs::write(&key, KEY).unwrap();
    let img = dir.join(name);
    std::fs::File::create(&img)
        .unwrap()
        .set_len(size_mib << 20)
        .unwrap();
    let out = Command::new("cryptsetup")
        .args(["luksFormat", "-q", "--pbkdf-force-iterations", "1000"])
        .args(args)
        .arg("--key-file")
        .arg(&key)
        .arg(&img)
        .output()
        .expect("cryptsetup is installed (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "luksFormat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&img).unwrap()
}

/// `cryptsetup luksDump` of the bytes, as (key, value) lines.
fn dump(dir: &Path, bytes: &[u8]) -> String {
    let p = dir.join("dump.img");
    std::fs::write(&p, bytes).unwrap();
    let out = Command::new("cryptsetup")
        .arg("luksDump")
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn field<'a>(dump: &'a str, key: &str) -> &'a str {
    dump.lines()
        .find_map(|l| l.trim_start().strip_prefix(key))
        .map(|v| v.trim_start_matches(':').trim())
        .unwrap_or_else(|| panic!("no {key} in luksDump:\n{dump}"))
}

fn decode(bytes: &[u8]) -> Result<LuksHeader, LuksError> {
    read_header(&MemDevice::from_vec(bytes.to_vec(), 512))
}

#[test]
fn luks1_matches_luksdump() {
    let d = tempfile::tempdir().unwrap();
    for (name, extra) in [("a", vec![]), ("b", vec!["--align-payload", "8192"])] {
        let mut args = vec!["--type", "luks1"];
        args.extend(extra);
        let img = format(d.path(), name, 8, &args);
        let h = decode(&img).unwrap();
        let dump = dump(d.path(), &img);
        assert_eq!(h.version, 1);
        assert_eq!(h.uuid, field(&dump, "UUID"));
        let payload: u64 = field(&dump, "Payload offset").parse().unwrap();
        assert_eq!(h.data_offset, payload * 512);
        assert_eq!(h.data_size, None);
        assert_eq!(
            h.data_len(img.len() as u64),
            Some(img.len() as u64 - payload * 512)
        );
        let cipher = format!(
            "{}-{}",
            field(&dump, "Cipher name"),
            field(&dump, "Cipher mode")
        );
        assert_eq!(h.cipher, cipher);
    }
}

#[test]
fn luks2_matches_luksdump() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 3] = [
        (
            "default",
            &["--type", "luks2", "--pbkdf", "pbkdf2", "--label", "vault"],
        ),
        (
            "small",
            &[
                "--type",
                "luks2",
                "--pbkdf",
                "pbkdf2",
                "--luks2-metadata-size",
                "64k",
                "--luks2-keyslots-size",
                "1m",
                "--sector-size",
                "512",
            ],
        ),
        (
            "offset",
            &["--type", "luks2", "--pbkdf", "pbkdf2", "--offset", "65536"],
        ),
    ];
    for (name, args) in cases {
        let img = format(d.path(), name, 40, args);
        let h = decode(&img).unwrap();
        let dump = dump(d.path(), &img);
        assert_eq!(h.version, 2, "{name}");
        assert_eq!(h.uuid, field(&dump, "UUID"), "{name}");
        let label = field(&dump, "Label");
        assert_eq!(h.label.as_deref().unwrap_or("(no label)"), label, "{name}");
        let offset = field(&dump, "offset").trim_end_matches(" [bytes]");
        assert_eq!(h.data_offset.to_string(), offset, "{name}");
        assert_eq!(field(&dump, "length"), "(whole device)", "{name}");
        assert_eq!(h.data_size, None, "{name}");
        let sector = field(&dump, "sector").trim_end_matches(" [bytes]");
        assert_eq!(h.sector_size.to_string(), sector, "{name}");
        assert_eq!(h.cipher, field(&dump, "cipher"), "{name}");
    }
}

fn err(bytes: &[u8]) -> String {
    decode(bytes)
        .expect_err("damaged header decoded")
        .to_string()
}

#[test]
fn damaged_luks1_is_refused_naming_the_field() {
    let d = tempfile::tempdir().unwrap();
    let img = format(d.path(), "l1", 4, &["--type", "luks1"]);
    let head = &img[..8192];
    let mut b = head.to_vec();
    b[0] = b'X';
    assert!(matches!(decode(&b), Err(LuksError::NoMagic)));
    let mut b = head.to_vec();
    b[7] = 3;
    assert!(matches!(decode(&b), Err(LuksError::Version(3))));
    let mut b = head.to_vec();
    b[104..108].copy_from_slice(&8u32.to_be_bytes());
    assert!(err(&b).contains("LUKS1 phdr: payloadOffset"), "{}", err(&b));
    let mut b = head.to_vec();
    b[208..212].copy_from_slice(&0x1234u32.to_be_bytes());
    assert!(err(&b).contains("key slot 0: active"), "{}", err(&b));
    let mut b = head.to_vec();
    b[168] = b'?';
    assert!(err(&b).contains("LUKS1 phdr: uuid"), "{}", err(&b));
    let mut b = head.to_vec();
    b[108..112].copy_from_slice(&0u32.to_be_bytes());
    assert!(err(&b).contains("keyBytes"), "{}", err(&b));
    // The header alone: payloadOffset (2 MiB) is past the end of these 8 KiB.
    assert!(err(head).contains("does not fit"), "{}", err(head));
    assert!(decode(&img[..300]).is_err());
}

#[test]
fn damaged_luks2_is_refused_naming_the_field() {
    let d = tempfile::tempdir().unwrap();
    let img = format(
        d.path(),
        "l2",
        20,
        &["--type", "luks2", "--pbkdf", "pbkdf2"],
    );
    let mut b = img.clone();
    b[8..16].copy_from_slice(&12345u64.to_be_bytes());
    assert!(err(&b).contains("at byte 0: hdr_size"), "{}", err(&b));
    let mut b = img.clone();
    b[256..264].copy_from_slice(&4096u64.to_be_bytes());
    assert!(err(&b).contains("hdr_offset"), "{}", err(&b));
    let mut b = img.clone();
    b[4096] = b'[';
    assert!(err(&b).contains("LUKS2 JSON area"), "{}", err(&b));
    let json_at = |b: &[u8], pat: &str| {
        b.windows(pat.len())
            .position(|w| w == pat.as_bytes())
            .unwrap()
    };
    let mut b = img.clone();
    let at = json_at(&b, "\"offset\":\"16777216\"");
    b[at..at + 19].copy_from_slice(b"\"offset\":\"16777217\"");
    assert!(err(&b).contains("segment 0: offset"), "{}", err(&b));
    let mut b = img.clone();
    let at = json_at(&b, "\"type\":\"crypt\"");
    b[at..at + 14].copy_from_slice(b"\"type\":\"linea\"");
    assert!(err(&b).contains("segment 0: type"), "{}", err(&b));
    let mut b = img.clone();
    let at = json_at(&b, "\"offset\":\"32768\"");
    b[at..at + 16].copy_from_slice(b"\"offset\":\"9x768\"");
    assert!(err(&b).contains("keyslot 0: area.offset"), "{}", err(&b));
    // The data segment starts at 16 MiB: a 10 MiB device cannot hold it.
    assert!(err(&img[..10 << 20]).contains("does not fit"));
    // A device shorter than the JSON area.
    assert!(err(&img[..8192]).contains("runs past the device's end"));
}

#[test]
fn fixed_segment_size_and_two_segments() {
    let json = |segs: &str| {
        format!(r#"{{"keyslots":{{}},"segments":{{{segs}}},"config":{{"json_size":"12288"}}}}"#)
    };
    let one = json(
        r#""0":{"type":"crypt","offset":"16777216","size":"1048576","sector_size":4096,"encryption":"aes-xts-plain64"}"#,
    );
    let j = Json::parse(one.as_bytes(), 12288).unwrap();
    assert_eq!(j.segment.size, Some(1 << 20));
    let odd = json(r#""0":{"type":"crypt","offset":"16777216","size":"1000","sector_size":4096}"#);
    let e = Json::parse(odd.as_bytes(), 12288).unwrap_err().to_string();
    assert!(e.contains("segment 0: size"), "{e}");
    let two = json(concat!(
        r#""0":{"type":"crypt","offset":"16777216","size":"1048576"},"#,
        r#""1":{"type":"linear","offset":"17825792","size":"dynamic"}"#
    ));
    let e = Json::parse(two.as_bytes(), 12288).unwrap_err().to_string();
    assert!(e.contains("reencryption"), "{e}");
    let e = Json::parse(one.as_bytes(), 4096).unwrap_err().to_string();
    assert!(e.contains("json_size"), "{e}");
}

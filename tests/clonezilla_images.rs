//! A Clonezilla folder as ocs-sr writes it (tests/clonezilla_fixture) is parsed and
//! listed by `ironclone images`, plain and --json; a missing or bad file is refused
//! naming it.

mod clonezilla_fixture;
mod fsfixture;

use ironclone::foreign::clonezilla::{ClonezillaImage, Label, PartImageKind};
use std::fs;
use std::process::Command;

#[test]
fn folder_is_parsed_and_listed() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "2026-11-30-12-img", 1, false);
    let img = ClonezillaImage::open(&fx.image).unwrap();
    assert_eq!(img.disks, ["sda"]);
    assert_eq!(img.parts, ["sda1", "sda2"]);
    assert_eq!(img.created.as_deref(), Some("2026-1130-1200"));
    assert_eq!(img.disk_bytes(), Some(160 << 20));
    let l = &img.layouts[0];
    assert_eq!(l.table.label, Label::Gpt);
    assert_eq!(l.table.entries.len(), 2);
    assert_eq!(l.table.entries[1].start, 2048 + 32 * 2048);
    assert_eq!(
        img.partitions[0].kind,
        PartImageKind::Partclone { fs: "vfat".into() }
    );
    assert!(img.partitions[1].path.ends_with("sda2.ext4-ptcl-img.gz"));

    let bin = env!("CARGO_BIN_EXE_ironclone");
    let out = Command::new(bin)
        .args(["images", fx.root.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("2026-11-30-12-img")
            && text.contains("clonezilla")
            && text.contains("2026-1130-1200")
            && text.contains("disk sda (160.0 MiB)"),
        "{text}"
    );
    let out = Command::new(bin)
        .args(["images", "--json", fx.root.to_str().unwrap()])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let i = &v["images"][0];
    assert_eq!(i["format"], "clonezilla");
    assert_eq!(i["disk_bytes"], 160 << 20);
    assert_eq!(i["partitions"][1]["fs"], "ext4");

    // damage: each refusal names the file
    fs::remove_file(fx.image.join("sda-gpt-1st")).unwrap();
    let e = ClonezillaImage::open(&fx.image).unwrap_err().to_string();
    assert!(e.contains("sda-gpt-1st"), "{e}");
    let out = Command::new(bin)
        .args(["images", fx.root.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("DAMAGED"),
        "listing hides a damaged image"
    );
    fs::write(fx.image.join("sda-gpt-1st"), b"x").unwrap();
    fs::write(
        fx.image.join("sda-pt.sf"),
        "label: gpt\n/dev/sda1 : start=oops, size=3\n",
    )
    .unwrap();
    let e = ClonezillaImage::open(&fx.image).unwrap_err().to_string();
    assert!(e.contains("sda-pt.sf line 2"), "{e}");
    fs::remove_file(fx.image.join("sda2.ext4-ptcl-img.gz")).unwrap();
    fs::remove_file(fx.image.join("sda-pt.sf")).unwrap();
    let e = ClonezillaImage::open(&fx.image).unwrap_err().to_string();
    assert!(e.contains("sda-pt.sf"), "{e}");
    fs::write(fx.image.join("disk"), "").unwrap();
    let e = ClonezillaImage::open(&fx.image).unwrap_err().to_string();
    assert!(e.contains("partition sda2"), "{e}");
}

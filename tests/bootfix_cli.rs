//! `ironclone bootfix efi-entry/efi-list` on an efivarfs-like directory seeded with a
//! Boot#### entry the firmware itself wrote (OVMF shell `bcfg`, see
//! qemu/machines/mk-gpt-uefi-nvram.sh), and the --yes guard of the writing subcommands.

use std::path::Path;
use std::process::Command;

const GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// Boot0003 written by OVMF's shell for the ESP 1C0EC1A5-0003-4000-8000-000000000001.
const BCFG_BOOT0003: &str = "010000008400690072006f006e0063006c006f006e006500000002010c00d041030a0000000001010600021f03120a000000ffff000004012a000100000000080000000000000000020000000000a5c10e1c030000408000000000000001020204043a005c004500460049005c00690072006f006e0063006c006f006e0065005c0067007200750062007800360034002e0065006600690000007fff0400";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ironclone(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn write_var(dir: &Path, name: &str, value: &[u8]) {
    let mut v = vec![7, 0, 0, 0];
    v.extend_from_slice(value);
    std::fs::write(dir.join(format!("{name}-{GLOBAL}")), v).unwrap();
}

#[test]
fn efi_entry_replaces_the_stale_firmware_entry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    write_var(dir.path(), "Boot0003", &hex(BCFG_BOOT0003));
    write_var(dir.path(), "BootOrder", &[3, 0]);

    let (code, out) = ironclone(&["bootfix", "efi-list", "--efivars-dir", d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("BootOrder: 0003"), "{out}");
    assert!(
        out.contains("HD(1,GPT,1C0EC1A5-0003-4000-8000-000000000001,0x800,0x20000)"),
        "{out}"
    );

    // Refused without --yes, and nothing changes.
    let new_guid = "1c0ec1a5-0003-4000-8000-0000000000aa";
    let base = [
        "bootfix",
        "efi-entry",
        "--efivars-dir",
        d,
        "--part-number",
        "1",
        "--part-start",
        "4096",
        "--part-size",
        "131072",
        "--part-guid",
        new_guid,
        "--keep-guids",
        new_guid,
    ];
    let (code, _) = ironclone(&base);
    assert_eq!(code, 3);
    assert!(dir.path().join(format!("Boot0003-{GLOBAL}")).exists());

    let mut args = base.to_vec();
    args.extend(["--yes", "--json"]);
    let (code, out) = ironclone(&args);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["added"], 0);
    assert_eq!(v["removed"][0]["number"], 3);
    assert_eq!(v["boot_order"], serde_json::json!([0]));
    assert!(!dir.path().join(format!("Boot0003-{GLOBAL}")).exists());
    let raw = std::fs::read(dir.path().join(format!("Boot0000-{GLOBAL}"))).unwrap();
    assert_eq!(&raw[..4], &[7, 0, 0, 0], "attribute prefix NV|BS|RT");
    // Independent of our decoder: the UCS-2 file path and the GUID's on-disk bytes are in there.
    let path_utf16: Vec<u8> = "\\EFI\\BOOT\\BOOTX64.EFI"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    assert!(raw
        .windows(path_utf16.len())
        .any(|w| w == path_utf16.as_slice()));
    let guid_le = [
        0xa5, 0xc1, 0x0e, 0x1c, 0x03, 0x00, 0x00, 0x40, 0x80, 0, 0, 0, 0, 0, 0, 0xaa,
    ];
    assert!(raw.windows(16).any(|w| w == guid_le));
}

#[test]
fn efi_entry_for_an_mbr_disk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let base = [
        "bootfix",
        "efi-entry",
        "--efivars-dir",
        d,
        "--part-number",
        "1",
        "--part-start",
        "2048",
        "--part-size",
        "131072",
        "--mbr-signature",
        "0x1c0ec1a5",
        "--yes",
    ];
    // A GUID and a signature at once is a usage error.
    let mut both = base.to_vec();
    both.extend(["--part-guid", "1c0ec1a5-0003-4000-8000-0000000000aa"]);
    assert_eq!(ironclone(&both).0, 2);
    let (code, out) = ironclone(&base);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("HD(1,MBR,0x1c0ec1a5,0x800,0x20000)/\\EFI\\BOOT\\BOOTX64.EFI"),
        "{out}"
    );
    // The HD() node as UEFI spec 10.3.5.1 lays it out, found in the raw variable.
    let raw = std::fs::read(dir.path().join(format!("Boot0000-{GLOBAL}"))).unwrap();
    let mut node = vec![4, 1, 42, 0, 1, 0, 0, 0];
    node.extend_from_slice(&2048u64.to_le_bytes());
    node.extend_from_slice(&131_072u64.to_le_bytes());
    node.extend_from_slice(&[0xa5, 0xc1, 0x0e, 0x1c]);
    node.extend_from_slice(&[0; 12]);
    node.extend_from_slice(&[1, 1]);
    assert!(raw.windows(node.len()).any(|w| w == node.as_slice()));
    let (code, out) = ironclone(&["bootfix", "efi-list", "--efivars-dir", d, "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["entries"][0]["mbr_signature"], "0x1c0ec1a5", "{v}");
    assert_eq!(v["entries"][0]["partition_guid"], serde_json::Value::Null);
}

#[test]
fn writing_subcommands_need_yes() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("d.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let before = std::fs::read(&img).unwrap();
    let i = img.to_str().unwrap();
    assert_eq!(
        ironclone(&[
            "bootfix",
            "grub-relocate",
            "--disk",
            i,
            "--from",
            "1",
            "--to",
            "2"
        ])
        .0,
        3
    );
    assert_eq!(
        ironclone(&["bootfix", "esp-fallback", "--disk", i, "--esp-start", "0"]).0,
        3
    );
    // With --yes on a disk that has no GRUB: an error, still nothing written.
    let (code, out) = ironclone(&[
        "bootfix",
        "grub-relocate",
        "--disk",
        i,
        "--from",
        "1",
        "--to",
        "2",
        "--yes",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("boot.img"), "{out}");
    assert_eq!(std::fs::read(&img).unwrap(), before);
}

#[test]
fn hidden_sectors_follows_the_partition_start() {
    let dir = tempfile::tempdir().unwrap();
    let (vol, disk, back) = (
        dir.path().join("v.fat"),
        dir.path().join("d.img"),
        dir.path().join("b.fat"),
    );
    let tool = |cmd: &str, args: &[&str]| {
        let o = Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
        assert!(
            o.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    tool(
        "mkfs.fat",
        &[
            "-F",
            "32",
            "-s",
            "1",
            "-h",
            "63",
            "-C",
            vol.to_str().unwrap(),
            "40960",
        ],
    );
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let (d, v, b) = (
        disk.to_str().unwrap(),
        vol.to_str().unwrap(),
        back.to_str().unwrap(),
    );
    tool(
        "dd",
        &[
            &format!("if={v}"),
            &format!("of={d}"),
            "bs=512",
            "seek=4096",
            "conv=notrunc",
            "status=none",
        ],
    );
    let (code, out) = ironclone(&[
        "bootfix",
        "hidden-sectors",
        "--disk",
        d,
        "--part-start",
        "4096",
        "--part-sectors",
        "81920",
        "--yes",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (j["fs"].as_str(), j["old_hidden_sectors"].as_u64()),
        (Some("fat"), Some(63))
    );
    tool(
        "dd",
        &[
            &format!("if={d}"),
            &format!("of={b}"),
            "bs=512",
            "skip=4096",
            "count=81920",
            "status=none",
        ],
    );
    assert!(tool("file", &["-b", b]).contains("hidden sectors 4096"));
    assert!(!tool("fsck.fat", &["-n", b]).contains("differences"));
    // Not a FAT or NTFS partition: an error, exit 1.
    let (code, out) = ironclone(&[
        "bootfix",
        "hidden-sectors",
        "--disk",
        d,
        "--part-start",
        "1",
        "--part-sectors",
        "100",
        "--yes",
    ]);
    assert_eq!(code, 1, "{out}");
}

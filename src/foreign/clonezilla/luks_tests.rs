use super::*;

const UUID: &str = "0d1c5a8e-1111-4222-8333-944455556666";

/// A LUKS1 header as cryptsetup lays it out (phdr, eight key slots, one enabled),
/// with its data at 2 MiB: enough for `read_header`; the key material is not real.
fn luks1(uuid: &str) -> Vec<u8> {
    let mut b = vec![0u8; 2 << 20];
    b[..6].copy_from_slice(b"LUKS\xba\xbe");
    b[6..8].copy_from_slice(&1u16.to_be_bytes());
    b[8..11].copy_from_slice(b"aes");
    b[40..51].copy_from_slice(b"xts-plain64");
    b[72..78].copy_from_slice(b"sha256");
    b[104..108].copy_from_slice(&4096u32.to_be_bytes());
    b[108..112].copy_from_slice(&64u32.to_be_bytes());
    b[168..168 + uuid.len()].copy_from_slice(uuid.as_bytes());
    for slot in 0..8usize {
        let at = 208 + slot * 48;
        let active: u32 = if slot == 0 { 0x00AC_71F3 } else { 0x0000_DEAD };
        b[at..at + 4].copy_from_slice(&active.to_be_bytes());
        let km = 8 + slot as u32 * 512;
        b[at + 40..at + 44].copy_from_slice(&km.to_be_bytes());
        b[at + 44..at + 48].copy_from_slice(&4000u32.to_be_bytes());
    }
    b
}

fn volume(dir: &Path, bytes: &[u8], uuid: &str) -> LuksVolume {
    let header = dir.join("sda3-luksHeader.bin");
    std::fs::write(&header, bytes).unwrap();
    LuksVolume {
        part: "sda3".into(),
        uuid: uuid.into(),
        mapper: "ocs_luks_Ab1".into(),
        header,
        inner: LuksInner::Pv { vg: "vg0".into() },
    }
}

#[test]
fn parses_the_list() {
    let p = Path::new("luks-dev.list");
    let l = parse_list(
        p,
        "# <Block device> <UUID> <Device mapped name>\n/dev/sda3 0D1C5A8E-1111-4222-8333-944455556666 ocs_luks_Ab1\n\n/dev/nvme0n1p3 abcd luks-abcd\n",
    )
    .unwrap();
    assert_eq!(
        l[0],
        LuksLine {
            part: "sda3".into(),
            uuid: UUID.into(),
            mapper: "ocs_luks_Ab1".into()
        }
    );
    assert_eq!(l[1].part, "nvme0n1p3");
    assert_eq!(l[1].mapper, "luks-abcd");
    for (text, why, line) in [
        ("/dev/sda3 abcd\n", "expected", 2),
        ("sda3 abcd m\n", "device path", 2),
        ("/dev/../x abcd m\n", "device path", 2),
        ("/dev/sda3 not-hex! m\n", "UUID", 2),
        ("/dev/sda3 abcd m/x\n", "mapper", 2),
        ("/dev/sda3 abcd m\n/dev/sda3 abcd n\n", "twice", 3),
    ] {
        let e = parse_list(p, &format!("# c\n{text}"))
            .unwrap_err()
            .to_string();
        let at = format!("line {line}:");
        assert!(e.contains(why) && e.contains(&at), "{text}: {e}");
    }
}

#[test]
fn checks_the_header_file() {
    let d = tempfile::tempdir().unwrap();
    let part_len = 64 << 20;
    let v = volume(d.path(), &luks1(UUID), UUID);
    let (h, dev) = check_header(&v, part_len).unwrap();
    assert_eq!((h.version, h.data_offset), (1, 2 << 20));
    assert_eq!(h.data_len(part_len), Some(62 << 20));
    // The header area reads; the ciphertext after it was never saved.
    let mut b = [0u8; 512];
    dev.read_at(0, &mut b).unwrap();
    assert_eq!(&b[..4], b"LUKS");
    let e = dev.read_at(2 << 20, &mut b).unwrap_err().to_string();
    assert!(e.contains("ciphertext"), "{e}");

    // Cut short: shorter than its data offset.
    let v = volume(d.path(), &luks1(UUID)[..1 << 20], UUID);
    let e = check_header(&v, part_len).unwrap_err().to_string();
    assert!(
        e.contains("cut short") && e.contains("sda3-luksHeader.bin"),
        "{e}"
    );
    // Another partition's header.
    let other = "0d1c5a8e-1111-4222-8333-000000000000";
    let v = volume(d.path(), &luks1(other), UUID);
    let e = check_header(&v, part_len).unwrap_err().to_string();
    assert!(e.contains("differs") && e.contains(other), "{e}");
    // Not a LUKS header at all.
    let mut bytes = luks1(UUID);
    bytes[0] = b'X';
    let v = volume(d.path(), &bytes, UUID);
    let e = check_header(&v, part_len).unwrap_err().to_string();
    assert!(e.contains("not a LUKS header"), "{e}");
    // A partition smaller than the header's data offset.
    let v = volume(d.path(), &luks1(UUID), UUID);
    assert!(check_header(&v, 1 << 20).is_err());
}

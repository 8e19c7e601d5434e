//! The never-used end of ext inode tables (issue 16.6): a big sparse ext4 copies what its
//! data costs, not what its size costs, and the restore's INODE_ZEROED marking leaves
//! descriptors e2fsck accepts for every checksum kind.

mod ext_fixture;
mod fsfixture;

use ext_fixture::{check_counts, check_restore, dumpe2fs_field, make_tree, map_file, run, sparse};
use fsfixture::itable_tails;
use ironclone::device::{open_path, Access, BlockDevice};
use ironclone::usedmap::mark_tails_unzeroed;
use std::fs;
use std::path::Path;
use std::process::Command;

#[test]
fn big_sparse_ext4_reads_what_its_data_costs() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    let files = make_tree(&tree, 64);
    let data: u64 = fs::read_dir(tree.join("sub/deeper"))
        .unwrap()
        .chain(fs::read_dir(tree.join("sub")).unwrap())
        .chain(fs::read_dir(&tree).unwrap())
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let img = tmp.path().join("big.img");
    sparse(&img, 64 << 30);
    run(Command::new("mkfs.ext4")
        .args(["-F", "-q", "-J", "size=64", "-E", "lazy_itable_init=1"])
        .arg("-d")
        .arg(&tree)
        .arg(&img));
    let map = map_file(&img);
    let tails: u64 = itable_tails(&img).iter().map(|&(s, e)| e - s).sum();
    let journal = 64u64 << 20;
    // Superblock, descriptor and reserved-GDT copies, as dumpe2fs places them.
    let bs = dumpe2fs_field(&img, "Block size");
    let dump = run(Command::new("dumpe2fs").arg(&img));
    let copies: u64 = dump
        .lines()
        .flat_map(|l| l.split(", "))
        .filter_map(|p| {
            let p = p.trim();
            let r = p
                .strip_prefix("Group descriptors at ")
                .or_else(|| p.strip_prefix("Reserved GDT blocks at "))?;
            let (a, b) = r.split_once('-')?;
            Some(b.trim().parse::<u64>().ok()? - a.parse::<u64>().ok()? + 1)
        })
        .sum::<u64>()
        + dump.matches("uperblock at").count() as u64;
    // And 16 MiB for the bitmaps (2 x 4 KiB a group), the used inode-table blocks and
    // the directories.
    let rest = copies * bs + (16 << 20);
    eprintln!(
        "64 GiB ext4, {data} bytes of files: {} bytes used, {} to copy, {tails} in \
         never-used inode-table tails",
        map.used_bytes,
        map.copy_bytes()
    );
    assert!(
        tails > 1000 << 20,
        "the fixture should have 1 GiB of unused tables"
    );
    assert!(
        map.copy_bytes() <= data + journal + rest,
        "copies {} bytes for {data} bytes of files, a {journal}-byte journal and {rest} \
         bytes of other metadata",
        map.copy_bytes()
    );
    check_counts(&img, &map);
    check_restore(&img, &map, &files, tmp.path());
}

/// The restore's step for the tails it did not write: INODE_ZEROED cleared exactly in
/// the groups that have a never-used tail, with descriptor checksums e2fsck accepts, for
/// each checksum kind (crc32c with metadata_csum, crc16 over 64- and 32-byte
/// descriptors with uninit_bg). Without checksums there is nothing to leave out.
#[test]
fn tails_marked_unzeroed_with_valid_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    make_tree(&tree, 9);
    for (name, features) in [
        ("csum", "metadata_csum,64bit"),
        ("gdt64", "^metadata_csum,uninit_bg,64bit"),
        ("gdt32", "^metadata_csum,uninit_bg,^64bit"),
        ("nocsum", "^metadata_csum,^uninit_bg"),
    ] {
        let img = tmp.path().join(format!("{name}.img"));
        sparse(&img, 256 << 20);
        run(Command::new("mkfs.ext4")
            .args(["-F", "-q", "-b", "4096", "-g", "8192", "-O", features])
            .args(["-E", "lazy_itable_init=0", "-d"])
            .arg(&tree)
            .arg(&img));
        let zeroed = |img: &Path| -> Vec<bool> {
            run(Command::new("dumpe2fs").arg(img))
                .lines()
                .filter(|l| l.starts_with("Group ") && l.contains("(Blocks "))
                .map(|l| l.contains("ITABLE_ZEROED"))
                .collect()
        };
        let before = zeroed(&img);
        let with_tail = itable_tails(&img).len() as u64;
        let dev = open_path(&img, Access::ReadWrite).unwrap();
        let n = mark_tails_unzeroed(&dev).unwrap();
        dev.flush().unwrap();
        drop(dev);
        let fsck = Command::new("e2fsck")
            .arg("-fn")
            .arg(&img)
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "{name}: e2fsck -fn after marking: {}{}",
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        );
        let after = zeroed(&img);
        if name == "nocsum" {
            assert_eq!((n, with_tail), (0, 0), "{name}");
            assert_eq!(after, before, "{name}");
            continue;
        }
        assert!(
            before.iter().all(|&z| z),
            "{name}: mkfs should zero every table"
        );
        assert!(with_tail > 1, "{name}: fixture should have tails");
        assert_eq!(n, with_tail, "{name}: groups marked");
        assert_eq!(
            after.iter().filter(|&&z| !z).count() as u64,
            with_tail,
            "{name}: groups left claiming zeroed tables: {after:?}"
        );
    }
}

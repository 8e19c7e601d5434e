//! The partclone reader against images written by Debian's partclone.ext4 (every
//! option it has: CRC32 with several group sizes, no reseed, no checksum), compressed
//! by the real compressors and split by split(1): every block read back equals the
//! source filesystem's block. XXH64/XXH128 and format 0001, which this partclone cannot
//! write, are re-encoded here from a real image. Damage in the header, bitmap and data,
//! a missing volume and a truncated file are each refused naming the file.

mod fsfixture;

use fsfixture::{prng_bytes, run};
use ironclone::foreign::compress::{open_image, Compression};
use ironclone::foreign::partclone::{PartcloneError, PartcloneImage};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

const BS: usize = 4096;

/// A 48 MiB ext4 filesystem holding ~9 MB of files, made without mounting.
fn make_fs(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    for i in 0..6u64 {
        fs::write(
            tree.join(format!("f{i}")),
            prng_bytes(i, 1_000_000 + i as usize * 77_777),
        )
        .unwrap();
    }
    fs::write(tree.join("sub/small"), b"hello partclone").unwrap();
    let img = dir.join("fs.img");
    run("truncate", &["-s", "48M", img.to_str().unwrap()]);
    run(
        "mke2fs",
        &[
            "-F",
            "-q",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-d",
            tree.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
    );
    img
}

fn clone(fs_img: &Path, out: &Path, opts: &[&str]) {
    let log = out.with_extension("log");
    let mut args = vec![
        "-c",
        "-s",
        fs_img.to_str().unwrap(),
        "-O",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(&["-L", log.to_str().unwrap(), "-q"]);
    args.extend_from_slice(opts);
    run("partclone.ext4", &args);
}

/// Reads every block of the image and compares it with the source; the count read.
fn compare<R: Read>(mut img: PartcloneImage<R>, source: &[u8]) -> u64 {
    let mut buf = vec![0u8; img.block_size()];
    let mut n = 0u64;
    while let Some(b) = img.next_block(&mut buf).unwrap() {
        let at = b as usize * BS;
        assert_eq!(
            &buf[..],
            &source[at..at + BS],
            "block {b} differs from the source"
        );
        n += 1;
    }
    assert_eq!(n, img.bitmap().used());
    n
}

#[test]
fn every_partclone_mode_reads_back_block_for_block() {
    let d = tempfile::tempdir().unwrap();
    let fs_img = make_fs(d.path());
    let source = fs::read(&fs_img).unwrap();
    let modes: &[&[&str]] = &[
        &[],
        &["-a0"],
        &["-a1", "-k", "1"],
        &["-a1", "-k", "7"],
        &["-a1", "-k", "7", "-K"],
    ];
    let mut used = None;
    for (i, opts) in modes.iter().enumerate() {
        let out = d.path().join(format!("m{i}.pc"));
        clone(&fs_img, &out, opts);
        let img = PartcloneImage::open("m.pc", fs::File::open(&out).unwrap()).unwrap();
        let h = img.header().clone();
        assert_eq!(h.fs, "EXTFS");
        assert_eq!(h.block_size as usize, BS);
        assert_eq!(h.total_blocks * BS as u64, source.len() as u64);
        let n = compare(img, &source);
        assert!(n > 2000, "only {n} blocks: the files are not in the image");
        assert_eq!(
            *used.get_or_insert(n),
            n,
            "mode {opts:?} holds another block count"
        );
        // partclone's own count of used space agrees with the bitmap we decoded
        assert_eq!(
            fsfixture::partclone_used("partclone.ext4", &fs_img),
            n * BS as u64
        );
    }
}

#[test]
fn compressed_and_split_images_read_as_one_stream() {
    let d = tempfile::tempdir().unwrap();
    let fs_img = make_fs(d.path());
    let source = fs::read(&fs_img).unwrap();
    let raw = d.path().join("sda1.ext4-ptcl-img");
    clone(&fs_img, &raw, &[]);
    let r = raw.to_str().unwrap();
    for (tool, args, ext, kind) in [
        ("zstd", &["-q", "-k", "-f"][..], "zst", Compression::Zstd),
        ("gzip", &["-k", "-f"][..], "gz", Compression::Gzip),
        ("xz", &["-k", "-f", "-T2"][..], "xz", Compression::Xz),
        ("bzip2", &["-k", "-f"][..], "bz2", Compression::Bzip2),
        ("lz4", &["-q", "-f"][..], "lz4", Compression::Lz4),
        // Clonezilla's -z4, -z3, -z6 and -z7, written the way it does (from a pipe).
        ("lzma", &[][..], "lzma", Compression::Lzma),
        ("lzop", &[][..], "lzo", Compression::Lzop),
        ("lzip", &[][..], "lzip", Compression::Lzip),
        ("lrzip", &[][..], "lrz", Compression::Lrzip),
    ] {
        let mut a = args.to_vec();
        a.push(r);
        if tool == "lz4" {
            a.push("/dev/stdout");
            let out = run(tool, &a);
            fs::write(format!("{r}.lz4"), out.stdout).unwrap();
        } else if a.len() == 1 {
            piped(tool, &raw, &PathBuf::from(format!("{r}.{ext}")));
        } else {
            run(tool, &a);
        }
        let path = PathBuf::from(format!("{r}.{ext}"));
        let (name, got, stream) = open_image(&path).unwrap();
        assert_eq!(got, kind, "{name}");
        compare(PartcloneImage::open(name, stream).unwrap(), &source);
    }
    // split -b into .aa, .ab, ... beside the zstd image's name, the whole file removed
    let zst = format!("{r}.zst");
    run("split", &["-a", "2", "-b", "1M", &zst, &format!("{zst}.")]);
    fs::rename(&zst, d.path().join("whole.zst")).unwrap();
    assert!(
        Path::new(&format!("{zst}.ac")).exists(),
        "split made fewer than 3 volumes"
    );
    let (name, _, stream) = open_image(Path::new(&zst)).unwrap();
    assert!(name.contains("split volumes"), "{name}");
    compare(PartcloneImage::open(name, stream).unwrap(), &source);
}

/// `cat in | tool -q > out`: how Clonezilla compresses (partclone writes to a pipe), so
/// lzma writes its "size unknown" header and lrzip its stdin format.
fn piped(tool: &str, input: &Path, out: &Path) {
    let st = std::process::Command::new("sh")
        .args(["-c", &format!("{tool} -q < \"$1\" > \"$2\""), "sh"])
        .arg(input)
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success(), "{tool} failed");
}

/// Opens and reads the whole image at `path`, returning the error it stops with.
fn refusal(path: &Path) -> String {
    let (name, _, stream) = match open_image(path) {
        Ok(x) => x,
        Err(e) => return e.to_string(),
    };
    match PartcloneImage::open(name, stream).and_then(|mut i| i.verify()) {
        Ok(n) => panic!(
            "{} read fine ({n} blocks) despite the damage",
            path.display()
        ),
        Err(e) => e.to_string(),
    }
}

#[test]
fn damage_is_refused_naming_file_and_place() {
    let d = tempfile::tempdir().unwrap();
    let fs_img = make_fs(d.path());
    let good = d.path().join("good.pc");
    clone(&fs_img, &good, &["-a1", "-k", "16"]);
    let bytes = fs::read(&good).unwrap();
    let total = u64::from_le_bytes(bytes[60..68].try_into().unwrap());
    let bitmap_len = total.div_ceil(8) as usize;
    let data = 110 + bitmap_len + 4;
    let flip = |name: &str, at: usize| {
        let p = d.path().join(name);
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        fs::write(&p, b).unwrap();
        p
    };
    let e = refusal(&flip("hdr.pc", 70));
    assert!(e.contains("hdr.pc") && e.contains("header CRC32"), "{e}");
    let e = refusal(&flip("bmp.pc", 110 + 3));
    assert!(
        e.contains("bmp.pc")
            && e.contains("bitmap CRC32")
            && e.contains(&format!("byte {}", 110 + bitmap_len)),
        "{e}"
    );
    // a byte in the 20th data block: the checksum after the second group of 16 catches it
    let at = data + 19 * BS + 100 + 4; // one 4-byte checksum precedes block 16
    let e = refusal(&flip("data.pc", at));
    let cs_at = data + 32 * BS + 4;
    assert!(
        e.contains("data.pc")
            && e.contains("CRC32 checksum mismatch")
            && e.contains(&format!("image byte {cs_at}")),
        "{e}"
    );
    let cut = d.path().join("cut.pc");
    fs::write(&cut, &bytes[..bytes.len() - 5000]).unwrap();
    let e = refusal(&cut);
    assert!(e.contains("cut.pc") && e.contains("truncated"), "{e}");
    let e = refusal(&{
        let p = d.path().join("magic.pc");
        let mut b = bytes.clone();
        b[0] = b'X';
        fs::write(&p, b).unwrap();
        p
    });
    assert!(
        e.contains("magic.pc") && e.contains("not a partclone image"),
        "{e}"
    );
    // split volumes with the middle one gone
    run(
        "zstd",
        &[
            "-q",
            "-f",
            good.to_str().unwrap(),
            "-o",
            d.path().join("v.zst").to_str().unwrap(),
        ],
    );
    let v = d.path().join("v.zst");
    run(
        "split",
        &[
            "-a",
            "2",
            "-b",
            "200K",
            v.to_str().unwrap(),
            &format!("{}.", v.display()),
        ],
    );
    fs::remove_file(&v).unwrap();
    fs::remove_file(format!("{}.ab", v.display())).unwrap();
    let e = refusal(&v);
    assert!(e.contains("v.zst.ab") && e.contains("missing"), "{e}");
}

fn pc_crc(b: &[u8]) -> u32 {
    !crc32fast::hash(b)
}

/// Re-encodes a real format-0002 image with another checksum or bitmap mode, computing
/// the checksums as partclone's writer does (XXH64 seed 0, XXH3-128 default secret,
/// both little-endian; a final checksum after a partial group).
fn reencode(real: &[u8], mode: u16, size: u16, per: u32, bitmap_mode: u8) -> Vec<u8> {
    let mut img = PartcloneImage::open("real", real).unwrap();
    let used: Vec<bool> = (0..img.bitmap().total())
        .map(|b| img.bitmap().is_used(b))
        .collect();
    let mut blocks = Vec::new();
    let mut buf = vec![0u8; BS];
    while img.next_block(&mut buf).unwrap().is_some() {
        blocks.push(buf.clone());
    }
    let mut h = real[..110].to_vec();
    h[96..98].copy_from_slice(&mode.to_le_bytes());
    h[98..100].copy_from_slice(&size.to_le_bytes());
    h[100..104].copy_from_slice(&per.to_le_bytes());
    h[104] = 1;
    h[105] = bitmap_mode;
    let crc = pc_crc(&h[..106]);
    h[106..110].copy_from_slice(&crc.to_le_bytes());
    let mut bits = vec![0u8; used.len().div_ceil(8)];
    for (i, &u) in used.iter().enumerate() {
        if u {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    match bitmap_mode {
        1 => h.extend_from_slice(&bits),
        _ => h.extend(used.iter().map(|&u| u as u8)),
    }
    h.extend_from_slice(&pc_crc(&bits).to_le_bytes());
    let sum = |g: &[Vec<u8>]| -> Vec<u8> {
        match mode {
            0x30 => {
                let mut x = xxhash_rust::xxh64::Xxh64::new(0);
                g.iter().for_each(|b| x.update(b));
                x.digest().to_le_bytes().to_vec()
            }
            _ => {
                let mut x = xxhash_rust::xxh3::Xxh3::new();
                g.iter().for_each(|b| x.update(b));
                x.digest128().to_le_bytes().to_vec()
            }
        }
    };
    for g in blocks.chunks(per as usize) {
        g.iter().for_each(|b| h.extend_from_slice(b));
        h.extend(sum(g));
    }
    h
}

#[test]
fn xxhash_modes_byte_bitmap_and_format_0001() {
    let d = tempfile::tempdir().unwrap();
    let fs_img = make_fs(d.path());
    let source = fs::read(&fs_img).unwrap();
    let real_path = d.path().join("real.pc");
    clone(&fs_img, &real_path, &[]);
    let real = fs::read(&real_path).unwrap();
    for (mode, size, bm) in [(0x30u16, 8u16, 1u8), (0x31, 16, 1), (0x30, 8, 8)] {
        let mut bytes = reencode(&real, mode, size, 5, bm);
        let img = PartcloneImage::open("x.pc", &bytes[..]).unwrap();
        compare(img, &source);
        // the last checksum covers the final partial group: flip its last byte
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let e = PartcloneImage::open("x.pc", &bytes[..])
            .and_then(|mut i| i.verify())
            .unwrap_err();
        assert!(matches!(e, PartcloneError::DataChecksum { .. }), "{e}");
    }

    // format 0001: 4160-byte descriptor, byte bitmap + "BiTmAgIc", a running CRC after
    // every block computed over the block's first byte repeated
    let v2 = PartcloneImage::open("real", &real[..]).unwrap();
    let total = v2.bitmap().total();
    let used: Vec<bool> = (0..total).map(|b| v2.bitmap().is_used(b)).collect();
    let mut v1 = vec![0u8; 4160];
    v1[..15].copy_from_slice(b"partclone-image");
    v1[15..20].copy_from_slice(b"EXTFS");
    v1[30..34].copy_from_slice(b"0001");
    v1[36..40].copy_from_slice(&(BS as u32).to_le_bytes());
    v1[40..48].copy_from_slice(&(total * BS as u64).to_le_bytes());
    v1[48..56].copy_from_slice(&total.to_le_bytes());
    v1[56..64].copy_from_slice(&(used.iter().filter(|&&u| u).count() as u64).to_le_bytes());
    v1.extend(used.iter().map(|&u| u as u8));
    v1.extend_from_slice(b"BiTmAgIc");
    let mut crc = 0xFFFF_FFFFu32;
    for (b, _) in used.iter().enumerate().filter(|(_, &u)| u) {
        let block = &source[b * BS..(b + 1) * BS];
        v1.extend_from_slice(block);
        let mut h = crc32fast::Hasher::new_with_initial(!crc);
        h.update(&vec![block[0]; BS]);
        crc = !h.finalize();
        v1.extend_from_slice(&crc.to_le_bytes());
    }
    compare(PartcloneImage::open("v1.pc", &v1[..]).unwrap(), &source);
    let mut bad = v1.clone();
    bad[4160 + total as usize] = b'X';
    let e = PartcloneImage::open("v1.pc", &bad[..]).err().unwrap();
    assert!(e.to_string().contains("BiTmAgIc"), "{e}");
}

/// The decoders run as processes (lzop, lzip, lrzip) and the in-process lzma one: a
/// flipped byte in the compressed file or a cut-off file is refused naming the file,
/// never read as a shorter image.
#[test]
fn damaged_lzma_lzop_lzip_lrzip_images_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let fs_img = make_fs(d.path());
    let good = d.path().join("good.pc");
    clone(&fs_img, &good, &[]);
    for (tool, ext) in [
        ("lzma", "lzma"),
        ("lzop", "lzo"),
        ("lzip", "lzip"),
        ("lrzip", "lrz"),
    ] {
        let whole = d.path().join(format!("whole.{ext}"));
        piped(tool, &good, &whole);
        let bytes = fs::read(&whole).unwrap();
        let flipped = d.path().join(format!("flipped.{ext}"));
        let mut b = bytes.clone();
        let mid = b.len() / 2;
        b[mid] ^= 0x5a;
        fs::write(&flipped, b).unwrap();
        let e = refusal(&flipped);
        assert!(e.contains(&format!("flipped.{ext}")), "{tool}: {e}");
        let cut = d.path().join(format!("cut.{ext}"));
        fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let e = refusal(&cut);
        assert!(e.contains(&format!("cut.{ext}")), "{tool}: {e}");
        eprintln!("{tool}: {e}");
    }
}

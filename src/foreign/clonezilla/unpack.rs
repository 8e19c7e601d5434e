//! One partition of a Clonezilla image unpacked into a sparse file in a cache, so that
//! `ironclone browse` reads it by random access.
//!
//! Why not seek in the image itself: Clonezilla compresses each partition image as one
//! stream (gzip, xz, bzip2, lz4, and zstd as a single frame, which is what `zstdmt`
//! writes), and none of them can be entered in the middle. Random access needs either
//! decoder checkpoints (zran-style, gzip only, and each checkpoint holds a 32 KiB
//! window) or the decoded blocks. The decoded blocks are what a browser wants anyway,
//! so one sequential decode of the partition image writes its used blocks at their
//! offsets into a sparse file (free blocks stay holes): it costs one decode (the same
//! as an import's; every partclone checksum is checked on the way) and the
//! partition's used bytes of space in the cache. Every later `ls`/`cat`/`get` opens
//! the cached file and costs nothing more.
//!
//! A cached file is named by a hash of the folder, the partition and each of its
//! image files' name, size and modification time, so a changed or replaced image is
//! never served from an old unpack. The unpack goes to a temporary name, renamed
//! only when the image decoded to its end, so a cached file is always whole. The image
//! folder is only read.
//!
//! A standalone partition image file (`sda1.ext4-ptcl-img.zst` handed over without its
//! folder, or an ntfsclone image) is unpacked the same way into a scratch file that
//! `ironclone backup` then reads like a partition (`unpack_standalone`).

use super::assemble::{write_partition, AssembleError, PartDone};
use super::checksums::ChecksumList;
use super::{ClonezillaError, ClonezillaImage, PartImage, PartImageKind};
use crate::foreign::volumes;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, UNIX_EPOCH};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum UnpackError {
    #[error(transparent)]
    Assemble(#[from] AssembleError),
    #[error(transparent)]
    Checksum(#[from] ClonezillaError),
    #[error("{dir}: no partition {area} in this image (it has {have})")]
    NoSuchPart {
        dir: PathBuf,
        area: String,
        have: String,
    },
    #[error("{dir}: {area} could be {have}; name the partition")]
    Ambiguous {
        dir: PathBuf,
        area: String,
        have: String,
    },
    #[error("{part} is swap: Clonezilla saved no data for it")]
    Swap { part: String },
    #[error("the unpack cache {file}: {source}")]
    Cache {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{file}: {source}")]
    Image {
        file: PathBuf,
        #[source]
        source: crate::foreign::error::SourceError,
    },
}

/// A partition's unpacked file.
#[derive(Debug)]
pub struct Unpacked {
    pub path: PathBuf,
    pub part: String,
    /// Set when this call decoded the image (not found in the cache).
    pub fresh: Option<(PartDone, Duration)>,
}

/// The trailing number of a partition name (`sda2`, `nvme0n1p2` -> 2).
fn part_number(part: &str) -> Option<u32> {
    let digits = part.len() - part.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    part.get(part.len() - digits..)?.parse().ok()
}

/// The partition `area` names: its own name (`sda2`) or `pN` by number, as ironclone
/// names the areas of its own images.
pub fn find_part<'a>(img: &'a ClonezillaImage, area: &str) -> Result<&'a PartImage, UnpackError> {
    if let Some(p) = img.partitions.iter().find(|p| p.part == area) {
        return Ok(p);
    }
    let have = || {
        img.partitions
            .iter()
            .map(|p| p.part.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let by_number: Vec<&PartImage> = match area.strip_prefix('p').and_then(|n| n.parse().ok()) {
        Some(n) => img
            .partitions
            .iter()
            .filter(|p| part_number(&p.part) == Some(n))
            .collect(),
        None => Vec::new(),
    };
    match by_number.as_slice() {
        [one] => Ok(one),
        [] => Err(UnpackError::NoSuchPart {
            dir: img.dir.clone(),
            area: area.to_string(),
            have: have(),
        }),
        many => Err(UnpackError::Ambiguous {
            dir: img.dir.clone(),
            area: area.to_string(),
            have: many
                .iter()
                .map(|p| p.part.as_str())
                .collect::<Vec<_>>()
                .join(" or "),
        }),
    }
}

/// The partition's length in bytes from a saved table, when the image has one
/// (saveparts images have none: the file then takes the filesystem's size).
fn table_len(img: &ClonezillaImage, part: &str) -> Option<u64> {
    let node = format!("/dev/{part}");
    img.layouts.iter().find_map(|l| {
        let e = l.table.entries.iter().find(|e| e.node == node)?;
        e.size.checked_mul(u64::from(l.table.sector_size))
    })
}

/// The files of `p`'s image: itself, or its `.aa`, `.ab`, ... volumes.
fn image_files(p: &PartImage) -> Result<Vec<PathBuf>, UnpackError> {
    volumes::find(&p.path).map_err(|source| UnpackError::Image {
        file: p.path.clone(),
        source,
    })
}

/// The cache key: folder, partition, and each image file's name, size and mtime.
fn cache_key(
    img: &ClonezillaImage,
    p: &PartImage,
    files: &[PathBuf],
) -> Result<String, UnpackError> {
    let mut h = blake3::Hasher::new();
    let dir = img.dir.canonicalize().unwrap_or_else(|_| img.dir.clone());
    h.update(dir.as_os_str().as_encoded_bytes());
    h.update(b"\0");
    h.update(p.part.as_bytes());
    for f in files {
        let m = std::fs::metadata(f).map_err(|source| UnpackError::Cache {
            file: f.clone(),
            source,
        })?;
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        h.update(b"\0");
        h.update(f.as_os_str().as_encoded_bytes());
        h.update(&m.len().to_le_bytes());
        h.update(&mtime.as_nanos().to_le_bytes());
    }
    Ok(h.finalize().to_hex().as_str()[..24].to_string())
}

/// The unpacked file of partition `area` of `img` in `cache`: found there, or made.
pub fn unpacked(img: &ClonezillaImage, area: &str, cache: &Path) -> Result<Unpacked, UnpackError> {
    let p = find_part(img, area)?;
    if p.kind == PartImageKind::Swap {
        return Err(UnpackError::Swap {
            part: p.part.clone(),
        });
    }
    let files = image_files(p)?;
    let cache_err = |file: &Path| {
        let file = file.to_path_buf();
        move |source| UnpackError::Cache { file, source }
    };
    let path = cache.join(format!(
        "{}-{}-{}.img",
        img.name,
        p.part,
        cache_key(img, p, &files)?
    ));
    if path.is_file() {
        return Ok(Unpacked {
            path,
            part: p.part.clone(),
            fresh: None,
        });
    }
    std::fs::create_dir_all(cache).map_err(cache_err(cache))?;
    let mut tmp = path.clone().into_os_string();
    tmp.push(format!(".partial-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let t = Instant::now();
    let done = unpack_into(img, p, &files, &tmp);
    let done = match done {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &path).map_err(cache_err(&path))?;
    Ok(Unpacked {
        path,
        part: p.part.clone(),
        fresh: Some((done, t.elapsed())),
    })
}

/// Checks what the folder's checksum lists say about this partition's files only: a
/// browse of one partition should not read every other partition's image.
fn verify_listed(img: &ClonezillaImage, files: &[PathBuf]) -> Result<(), UnpackError> {
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name()?.to_str().map(str::to_string))
        .collect();
    for l in &img.checksums {
        let mine = ChecksumList {
            entries: l
                .entries
                .iter()
                .filter(|(n, _)| names.contains(n))
                .cloned()
                .collect(),
            ..l.clone()
        };
        mine.verify(&img.dir)?;
    }
    Ok(())
}

fn unpack_into(
    img: &ClonezillaImage,
    p: &PartImage,
    files: &[PathBuf],
    tmp: &Path,
) -> Result<PartDone, UnpackError> {
    verify_listed(img, files)?;
    write_unpacked(p, tmp, table_len(img, &p.part), &AtomicBool::new(false))
}

/// Decodes `p` into the new file `out`, `len` bytes long when known (a partition from
/// a saved table), else as long as what the image describes.
fn write_unpacked(
    p: &PartImage,
    out: &Path,
    len: Option<u64>,
    cancel: &AtomicBool,
) -> Result<PartDone, UnpackError> {
    let out_err = |source| UnpackError::Cache {
        file: out.to_path_buf(),
        source,
    };
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(out_err)?;
    if let Some(len) = len {
        file.set_len(len).map_err(out_err)?;
    }
    // Without a length the image's own size bounds it (checked by the reader against
    // what it decodes); half the u64 range keeps offset sums from overflowing.
    let done = write_partition(p, &file, 0, len.unwrap_or(u64::MAX / 2), out, cancel)?;
    if len.is_none() {
        file.set_len(done.image_bytes).map_err(out_err)?;
    }
    file.sync_all().map_err(out_err)?;
    Ok(done)
}

/// The kind of a standalone partition image file (`sda1.ext4-ptcl-img.zst`, an
/// ntfsclone image), by the magic of its decompressed start; `None` for anything else
/// (a disk image, a block device, a VM disk), which is then read as it is.
pub fn standalone_kind(path: &Path) -> Option<PartImageKind> {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let (_, _, mut r) = crate::foreign::compress::open_image(path).ok()?;
    let mut head = [0u8; 16];
    r.read_exact(&mut head).ok()?;
    if head.starts_with(crate::foreign::partclone::MAGIC) {
        // Clonezilla's name says the filesystem (`<part>.<fs>-ptcl-img...`).
        let name = path.file_name()?.to_string_lossy().into_owned();
        let fs = name
            .split('.')
            .find_map(|c| c.strip_suffix("-ptcl-img"))
            .filter(|f| !f.is_empty())
            .unwrap_or("partclone");
        return Some(PartImageKind::Partclone { fs: fs.to_string() });
    }
    (&head == crate::foreign::ntfsclone::MAGIC).then_some(PartImageKind::Ntfsclone)
}

/// Decodes the standalone image `path` (of `kind`) into the new sparse file `out`,
/// checking every checksum it carries; `out` is removed again on failure.
pub fn unpack_standalone(
    path: &Path,
    kind: PartImageKind,
    out: &Path,
) -> Result<PartDone, UnpackError> {
    unpack_standalone_until(path, kind, out, &AtomicBool::new(false))
}

/// `unpack_standalone`, ended (and `out` removed) once `cancel` is set: an import or
/// a backup of a partition image polls Ctrl-C while it unpacks.
pub fn unpack_standalone_until(
    path: &Path,
    kind: PartImageKind,
    out: &Path,
    cancel: &AtomicBool,
) -> Result<PartDone, UnpackError> {
    let p = PartImage {
        part: path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        kind,
        path: path.to_path_buf(),
    };
    let done = write_unpacked(&p, out, None, cancel);
    if done.is_err() {
        let _ = std::fs::remove_file(out);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::part_number;

    #[test]
    fn partition_numbers() {
        assert_eq!(part_number("sda2"), Some(2));
        assert_eq!(part_number("nvme0n1p12"), Some(12));
        assert_eq!(part_number("sda"), None);
        assert_eq!(part_number(""), None);
    }
}

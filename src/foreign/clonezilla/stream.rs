//! One partition image of a Clonezilla folder decoded as a stream of runs: each run is
//! some of the partition's bytes and where they lie in it (a partclone block, an
//! ntfsclone cluster, a non-zero stretch of a dd image), in ascending order. Free
//! blocks are never handed out: whoever places the runs leaves them as holes or zeros.
//!
//! Every checksum the format carries is checked as the stream passes it, so a stream
//! read to its end is a checked image; the same stream feeds the precheck (runs
//! dropped), the scratch disk (`assemble`), and a restore or import straight from the
//! folder (`device::ImageDevice`).

use super::assemble::AssembleError;
use super::partimg::{PartImage, PartImageKind};
use crate::foreign::compress::open_image;
use crate::foreign::ntfsclone::NtfscloneImage;
use crate::foreign::partclone::PartcloneImage;
use crate::progress::{Progress, ProgressEvent};
use std::io::{self, Read};
use std::path::PathBuf;

type Reader = Box<dyn Read + Send>;

/// Bytes of a dd image read (and handed out, when not all zero) at a time.
const DD_PIECE: usize = 1 << 20;

enum Kind {
    Partclone(Box<PartcloneImage<Reader>>),
    Ntfsclone(Box<NtfscloneImage<Reader>>),
    Dd {
        r: Reader,
        file: String,
        at: u64,
    },
    /// Swap: Clonezilla saves no data for it.
    Empty,
}

/// The decoded runs of one partition image.
pub struct PartStream {
    part: String,
    path: PathBuf,
    len: u64,
    kind: Kind,
    /// What the image describes: the filesystem (partclone, ntfsclone), the bytes read
    /// so far (dd), 0 for swap.
    image_bytes: u64,
    filesystem: String,
}

impl PartStream {
    /// Opens `p`'s image for a partition of `len` bytes; refuses a filesystem larger
    /// than that before anything is decoded.
    pub fn open(p: &PartImage, len: u64) -> Result<Self, AssembleError> {
        let open_err = |source| AssembleError::Open {
            part: p.part.clone(),
            source,
        };
        let too_big = |what: &str, bytes: u64| AssembleError::Layout {
            file: p.path.clone(),
            why: format!(
                "the {what} ({bytes} bytes) is larger than partition {} ({len})",
                p.part
            ),
        };
        let (kind, image_bytes, filesystem) = match &p.kind {
            PartImageKind::Swap => (Kind::Empty, 0, "swap".to_string()),
            PartImageKind::Partclone { fs } => {
                let (name, _, r) = open_image(&p.path).map_err(open_err)?;
                let img =
                    PartcloneImage::open(name, r).map_err(|source| AssembleError::Partclone {
                        part: p.part.clone(),
                        source: Box::new(source),
                    })?;
                let fs_bytes = img.header().fs_bytes();
                if fs_bytes > len {
                    return Err(too_big("filesystem", fs_bytes));
                }
                (Kind::Partclone(Box::new(img)), fs_bytes, fs.clone())
            }
            PartImageKind::Ntfsclone => {
                let (name, _, r) = open_image(&p.path).map_err(open_err)?;
                let img =
                    NtfscloneImage::open(name, r).map_err(|source| AssembleError::Ntfsclone {
                        part: p.part.clone(),
                        source: Box::new(source),
                    })?;
                let size = img.header().device_size;
                if size > len {
                    return Err(too_big("NTFS volume", size));
                }
                (Kind::Ntfsclone(Box::new(img)), size, "ntfs".to_string())
            }
            PartImageKind::Dd => {
                let (file, _, r) = open_image(&p.path).map_err(open_err)?;
                (Kind::Dd { r, file, at: 0 }, 0, "dd".to_string())
            }
        };
        Ok(PartStream {
            part: p.part.clone(),
            path: p.path.clone(),
            len,
            kind,
            image_bytes,
            filesystem,
        })
    }

    pub fn part(&self) -> &str {
        &self.part
    }

    pub fn filesystem(&self) -> &str {
        &self.filesystem
    }

    /// See the field; for dd, final only once the stream has ended.
    pub fn image_bytes(&self) -> u64 {
        self.image_bytes
    }

    /// The used bytes the image's header announces (partclone's used blocks,
    /// ntfsclone's clusters in use), before anything is decoded; `None` for dd and swap.
    pub fn used_hint(&self) -> Option<u64> {
        match &self.kind {
            Kind::Partclone(img) => img
                .header()
                .used_blocks
                .checked_mul(img.block_size() as u64),
            Kind::Ntfsclone(img) => {
                let h = img.header();
                h.inuse.checked_mul(u64::from(h.cluster_size))
            }
            Kind::Dd { .. } | Kind::Empty => None,
        }
    }

    /// The next run: its bytes in `buf` (replaced) and its offset in the partition, or
    /// `None` at the end of the image. Every run lies inside the partition.
    pub fn next_run(&mut self, buf: &mut Vec<u8>) -> Result<Option<u64>, AssembleError> {
        match &mut self.kind {
            Kind::Empty => Ok(None),
            Kind::Partclone(img) => {
                buf.resize(img.block_size(), 0);
                let bs = img.block_size() as u64;
                let got = img
                    .next_block(buf)
                    .map_err(|source| AssembleError::Partclone {
                        part: self.part.clone(),
                        source: Box::new(source),
                    })?;
                // b < total blocks and total x bs <= partition length (checked at open).
                Ok(got.map(|b| b * bs))
            }
            Kind::Ntfsclone(img) => {
                let cs = u64::from(img.header().cluster_size);
                let got = img
                    .next_cluster(buf)
                    .map_err(|source| AssembleError::Ntfsclone {
                        part: self.part.clone(),
                        source: Box::new(source),
                    })?;
                // lcn x cluster size + buf.len() <= device size <= partition length.
                Ok(got.map(|lcn| lcn * cs))
            }
            Kind::Dd { r, file, at } => loop {
                buf.resize(DD_PIECE, 0);
                let n = read_full(r, buf).map_err(|source| AssembleError::Read {
                    file: PathBuf::from(file.as_str()),
                    source,
                })?;
                if n == 0 {
                    return Ok(None);
                }
                buf.truncate(n);
                let start = *at;
                let end = start
                    .checked_add(n as u64)
                    .filter(|&e| e <= self.len)
                    .ok_or_else(|| AssembleError::Layout {
                        file: self.path.clone(),
                        why: format!(
                            "the dd image is larger than partition {} ({} bytes)",
                            self.part, self.len
                        ),
                    })?;
                *at = end;
                self.image_bytes = end;
                // All-zero stretches are holes: the reader of the runs sees zeros there.
                if buf.iter().any(|&b| b != 0) {
                    return Ok(Some(start));
                }
            },
        }
    }
}

/// Reads until `buf` is full or the stream ends; the bytes read.
fn read_full(r: &mut Reader, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Decoded bytes told to a `Progress` in steps of `REPORT_BYTES`: one event per 4 KiB
/// block would cost more than the block. `finish` tells the rest.
pub(super) struct Advance<'a> {
    progress: &'a dyn Progress,
    unreported: u64,
}

/// The step, in decoded bytes.
const REPORT_BYTES: u64 = 8 << 20;

impl<'a> Advance<'a> {
    pub(super) fn new(progress: &'a dyn Progress) -> Self {
        Advance {
            progress,
            unreported: 0,
        }
    }

    pub(super) fn add(&mut self, bytes: u64) {
        self.unreported = self.unreported.saturating_add(bytes);
        if self.unreported >= REPORT_BYTES {
            self.finish();
        }
    }

    pub(super) fn finish(&mut self) {
        if self.unreported > 0 {
            self.progress.report(ProgressEvent::Advance {
                bytes: self.unreported,
            });
            self.unreported = 0;
        }
    }
}

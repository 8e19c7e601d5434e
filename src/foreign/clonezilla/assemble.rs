//! Rebuilds a Clonezilla savedisk image as a sparse disk file, so the ordinary backup
//! path (table, per-filesystem used maps, dedup) can take it like any disk: the saved
//! boot areas at their sectors, then each partition's used blocks from its partclone
//! image at the partition's offset. Free blocks are never written and stay holes.
//!
//! Every partition image is decoded to its end on the way, which checks every CRC and
//! checksum it carries; the caller stores nothing until this has succeeded, so a
//! damaged image leaves the repository as it was. The image folder is only read.

use super::error::ClonezillaError;
use super::partimg::PartImage;
use super::sfdisk::Label;
use super::stream::PartStream;
use super::{ClonezillaImage, DiskLayout};
use crate::foreign::error::SourceError;
use crate::foreign::ntfsclone::NtfscloneError;
use crate::foreign::partclone::PartcloneError;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use thiserror::Error;

/// Used blocks are gathered into writes of up to this many bytes.
const WRITE_BATCH: usize = 4 << 20;

#[derive(Debug, Error)]
pub enum AssembleError {
    #[error(transparent)]
    Folder(#[from] ClonezillaError),
    #[error("partition {part}: {source}")]
    Open {
        part: String,
        #[source]
        source: SourceError,
    },
    #[error("partition {part}: {source}")]
    Partclone {
        part: String,
        // Boxed: the partclone error is large and this one travels through every `?`.
        #[source]
        source: Box<PartcloneError>,
    },
    #[error("partition {part}: {source}")]
    Ntfsclone {
        part: String,
        #[source]
        source: Box<NtfscloneError>,
    },
    #[error("{file}: {why}")]
    Layout { file: PathBuf, why: String },
    #[error("writing the scratch disk {file}: {source}")]
    Scratch {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("rebuilding the extended partition's boot records with sfdisk: {0}")]
    Sfdisk(#[from] crate::resize::ToolError),
    #[error("{file}: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The cancel flag was set (Ctrl-C, SIGTERM) while the image was being decoded.
    #[error("partition {part}: decoding {file} cancelled by the user")]
    Cancelled { part: String, file: PathBuf },
}

/// Fails once `cancel` is set: long decodes (a whole partition image before anything is
/// stored or written) poll it between runs, so a Ctrl-C ends them through their error
/// paths, which remove their scratch files.
pub(super) fn poll(cancel: &AtomicBool, p: &PartImage) -> Result<(), AssembleError> {
    if cancel.load(Ordering::Relaxed) {
        return Err(AssembleError::Cancelled {
            part: p.part.clone(),
            file: p.path.clone(),
        });
    }
    Ok(())
}

/// What was written for one partition.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PartDone {
    pub part: String,
    pub filesystem: String,
    pub offset: u64,
    /// Bytes of used blocks written (the partclone bitmap's count x block size).
    pub used_bytes: u64,
    /// Size of what the image describes: the filesystem (partclone, ntfsclone) or
    /// the bytes read (dd); 0 for swap.
    #[serde(skip)]
    pub image_bytes: u64,
}

/// The one disk of `img` (savedisk of a single disk), or why not.
pub fn single_layout(img: &ClonezillaImage) -> Result<&DiskLayout, AssembleError> {
    match img.layouts.as_slice() {
        [one] => Ok(one),
        [] => Err(AssembleError::Layout {
            file: img.dir.join("disk"),
            why: "a saveparts image (no disk saved): only savedisk images can be imported".into(),
        }),
        _ => Err(AssembleError::Layout {
            file: img.dir.join("disk"),
            why: "more than one disk saved: import handles one disk".into(),
        }),
    }
}

/// Writes the disk of `img` into `scratch` (created, sparse, of the source disk's
/// size); the partitions written.
pub fn assemble(img: &ClonezillaImage, scratch: &Path) -> Result<Vec<PartDone>, AssembleError> {
    let layout = single_layout(img)?;
    // The folder's own checksum lists first: they also cover the boot areas and list
    // files, which nothing else checks, and nothing is written before they pass.
    img.verify_checksums()?;
    let (out, size) = table_disk(img, layout, scratch)?;
    let mut done = Vec::new();
    for p in &img.partitions {
        let (offset, len) = placement(img, layout, p, size)?;
        let never = AtomicBool::new(false);
        done.push(write_partition(p, &out, offset, len, scratch, &never)?);
    }
    // No fsync: the scratch disk is read back through the page cache by this process
    // and removed afterwards; syncing it cost writing every used byte to the disk.
    Ok(done)
}

/// Creates `scratch` as a sparse file of the disk's size holding only the boot areas
/// and the table (boot code, hidden data after the MBR, GPT copies, logical
/// partitions' boot records); the file and the disk's size.
pub(super) fn table_disk(
    img: &ClonezillaImage,
    layout: &DiskLayout,
    scratch: &Path,
) -> Result<(File, u64), AssembleError> {
    let size = layout.disk_bytes().ok_or_else(|| AssembleError::Layout {
        file: img.dir.join(format!("{}-pt.sf", layout.disk)),
        why: "the disk size is unknown (no pt.parted, no last-lba, no partitions)".into(),
    })?;
    let scratch_err = |source| AssembleError::Scratch {
        file: scratch.to_path_buf(),
        source,
    };
    let out = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(scratch)
        .map_err(scratch_err)?;
    out.set_len(size).map_err(scratch_err)?;
    rebuild_ebrs(img, layout, scratch)?;
    write_head(layout, &out, size, scratch)?;
    Ok((out, size))
}

/// Where partition `p` lies on the disk of `layout` (`size` bytes): its byte offset
/// and length, from the saved table.
pub(super) fn placement(
    img: &ClonezillaImage,
    layout: &DiskLayout,
    p: &PartImage,
    size: u64,
) -> Result<(u64, u64), AssembleError> {
    let ss = u64::from(layout.table.sector_size);
    let node = format!("/dev/{}", p.part);
    let entry = layout
        .table
        .entries
        .iter()
        .find(|e| e.node == node)
        .ok_or_else(|| AssembleError::Layout {
            file: img.dir.join(format!("{}-pt.sf", layout.disk)),
            why: format!("partition {} is in `parts` but not in the table", p.part),
        })?;
    let bad_extent = || AssembleError::Layout {
        file: img.dir.join(format!("{}-pt.sf", layout.disk)),
        why: format!(
            "partition {} lies past the end of the {size}-byte disk",
            p.part
        ),
    };
    let offset = entry.start.checked_mul(ss).ok_or_else(bad_extent)?;
    let len = entry.size.checked_mul(ss).ok_or_else(bad_extent)?;
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(bad_extent());
    }
    Ok((offset, len))
}

/// Logical partitions hang off boot records inside the extended partition, which
/// Clonezilla does not save as files: sfdisk writes them again from the saved dump
/// (byte for byte what it wrote on the source). The MBR written afterwards restores
/// the saved boot code.
fn rebuild_ebrs(
    img: &ClonezillaImage,
    l: &DiskLayout,
    scratch: &Path,
) -> Result<(), AssembleError> {
    let extended = l
        .table
        .entries
        .iter()
        .any(|e| matches!(e.type_.to_ascii_lowercase().as_str(), "5" | "f" | "85"));
    if l.table.label != Label::Dos || !extended {
        return Ok(());
    }
    let sf = img.dir.join(format!("{}-pt.sf", l.disk));
    let text = super::read_text(&sf)?;
    let path = scratch.to_string_lossy();
    crate::resize::run_tool(
        "sfdisk",
        &["--no-reread", "--no-tell-kernel", "-q", &path],
        Some(&text),
        &[0],
    )?;
    Ok(())
}

fn read_exact_file(path: &Path, want: u64) -> Result<Vec<u8>, AssembleError> {
    let data = std::fs::read(path).map_err(|source| AssembleError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    if data.len() as u64 != want {
        return Err(AssembleError::Layout {
            file: path.to_path_buf(),
            why: format!("{} bytes, expected {want}", data.len()),
        });
    }
    Ok(data)
}

fn write_head(l: &DiskLayout, out: &File, size: u64, scratch: &Path) -> Result<(), AssembleError> {
    let ss = u64::from(l.table.sector_size);
    let put = |data: &[u8], at: u64| {
        out.write_all_at(data, at)
            .map_err(|source| AssembleError::Scratch {
                file: scratch.to_path_buf(),
                source,
            })
    };
    match l.table.label {
        Label::Gpt => {
            // Parsing made sure both files exist for a GPT disk.
            if let (Some(first), Some(second)) = (&l.gpt_1st, &l.gpt_2nd) {
                put(&read_exact_file(first, 34 * ss)?, 0)?;
                let tail = size
                    .checked_sub(33 * ss)
                    .ok_or_else(|| AssembleError::Layout {
                        file: second.clone(),
                        why: "the disk is smaller than the backup GPT".into(),
                    })?;
                put(&read_exact_file(second, 33 * ss)?, tail)?;
            }
        }
        Label::Dos => {
            if let Some(mbr) = &l.mbr {
                put(&read_exact_file(mbr, 512)?, 0)?;
            }
            if let Some(hidden) = &l.hidden_after_mbr {
                let len = std::fs::metadata(hidden).map(|m| m.len()).unwrap_or(0);
                let first = l.table.entries.iter().map(|e| e.start).min().unwrap_or(1);
                let room = first.saturating_sub(1).saturating_mul(ss);
                if len > room {
                    return Err(AssembleError::Layout {
                        file: hidden.clone(),
                        why: format!("{len} bytes do not fit before the first partition ({room})"),
                    });
                }
                put(&read_exact_file(hidden, len)?, ss)?;
            }
        }
    }
    Ok(())
}

pub(super) fn write_partition(
    p: &PartImage,
    out: &File,
    offset: u64,
    len: u64,
    scratch: &Path,
    cancel: &AtomicBool,
) -> Result<PartDone, AssembleError> {
    let mut stream = PartStream::open(p, len)?;
    let mut w = RunWriter::new(out, scratch);
    let mut buf = Vec::new();
    let mut used = 0u64;
    while let Some(at) = stream.next_run(&mut buf)? {
        poll(cancel, p)?;
        // Runs lie inside the partition (the stream checks), which lies on the disk.
        w.put(offset + at, &buf)?;
        used += buf.len() as u64;
    }
    w.finish()?;
    Ok(PartDone {
        part: p.part.clone(),
        filesystem: stream.filesystem().to_string(),
        offset,
        used_bytes: used,
        image_bytes: stream.image_bytes(),
    })
}

/// Writes runs of bytes into the scratch disk, gathering adjacent ones into writes of
/// up to WRITE_BATCH bytes: the images hand out one block or cluster at a time, and a
/// write per 4 KiB block costs more than decoding it.
struct RunWriter<'a> {
    out: &'a File,
    scratch: &'a Path,
    batch: Vec<u8>,
    at: u64,
}

impl<'a> RunWriter<'a> {
    fn new(out: &'a File, scratch: &'a Path) -> Self {
        RunWriter {
            out,
            scratch,
            batch: Vec::with_capacity(WRITE_BATCH),
            at: 0,
        }
    }

    /// `bytes` belong at `at`; written now or with the run they continue.
    fn put(&mut self, at: u64, bytes: &[u8]) -> Result<(), AssembleError> {
        let next = self.at + self.batch.len() as u64;
        if at != next || self.batch.len() + bytes.len() > WRITE_BATCH {
            self.finish()?;
            self.at = at;
        }
        self.batch.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes what is gathered.
    fn finish(&mut self) -> Result<(), AssembleError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.out
            .write_all_at(&self.batch, self.at)
            .map_err(|source| AssembleError::Scratch {
                file: self.scratch.to_path_buf(),
                source,
            })?;
        self.batch.clear();
        Ok(())
    }
}

//! Why a Clonezilla image folder was refused: each error names the file (and line)
//! that is missing or wrong.

use std::io;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClonezillaError {
    #[error("{file}: missing: {why}")]
    Missing { file: PathBuf, why: &'static str },
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{file} line {line}: {why}: {text:?}")]
    BadLine {
        file: PathBuf,
        line: usize,
        why: &'static str,
        text: String,
    },
    #[error("{file}: {why}")]
    Bad { file: PathBuf, why: String },
    #[error("{file}: its {algo} differs from the one {list} records: the file is damaged")]
    ChecksumMismatch {
        file: PathBuf,
        list: PathBuf,
        algo: &'static str,
    },
    #[error("{dir}: no image file for partition {part} (looked for {part}.<fs>-ptcl-img.*, {part}.ntfs-img.*, {part}.dd-img.*)")]
    NoPartitionImage { dir: PathBuf, part: String },
    #[error("{dir}: the image holds {n} disks ({have}): name the one to use with --disk")]
    ChooseDisk {
        dir: PathBuf,
        n: usize,
        have: String,
    },
    #[error("{dir}: no disk {disk} in this image (it holds {have})")]
    NoSuchDisk {
        dir: PathBuf,
        disk: String,
        have: String,
    },
    #[error(
        "{dir}: partition {part} is in `parts` but in none of the saved disks' tables ({have})"
    )]
    PartOnNoDisk {
        dir: PathBuf,
        part: String,
        have: String,
    },
}

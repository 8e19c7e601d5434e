//! Why a foreign image file could not be opened as a stream: each error names the file.

use std::io;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: neither the file nor its split volumes ({path}.aa, ...) exist")]
    NotFound { path: PathBuf },
    #[error("{missing}: split volume missing (found {found} later)")]
    MissingVolume { missing: PathBuf, found: PathBuf },
    #[error(
        "{path}: {format} compression is not supported (zstd, gzip, xz, lzma, bzip2, lz4, lzop, lzip, lrzip and none are)"
    )]
    Unsupported { path: PathBuf, format: &'static str },
}

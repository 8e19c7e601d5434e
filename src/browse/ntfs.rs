//! NTFS through the `ntfs` crate. It wants `Read + Seek`, so a small cursor over the
//! positional `BlockDevice` lives here, with the walk from a path to a file record
//! and the mapping onto `browse::Entry`. NTFS metafiles (`$MFT`, ..., records below
//! 16) and DOS 8.3 duplicate names are left out of listings, as `ntfsls` does.

use super::cursor::Cursor;
use super::{components, BrowseError, Entry, Kind, Result};
use crate::device::BlockDevice;
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::NtfsFileNamespace;
use ntfs::{Ntfs, NtfsFile, NtfsReadSeek, NtfsTime};
use std::io::Write;
use std::sync::Arc;

/// The first file record that is not a metafile.
const FIRST_USER_RECORD: u64 = 16;

pub struct NtfsFs<'a> {
    device: String,
    ntfs: Ntfs,
    cur: Cursor<'a>,
}

/// NT time (100 ns since 1601) to Unix seconds.
fn unix(t: NtfsTime) -> i64 {
    (t.nt_timestamp() / 10_000_000) as i64 - 11_644_473_600
}

impl<'a> NtfsFs<'a> {
    pub fn open(dev: Arc<dyn BlockDevice + 'a>) -> Result<NtfsFs<'a>> {
        let device = dev.describe();
        let mut cur = Cursor::new(dev);
        let fail = |e: ntfs::NtfsError| BrowseError::Fs {
            device: device.clone(),
            path: "/".into(),
            what: format!("cannot open the NTFS filesystem: {e}"),
        };
        let mut ntfs = Ntfs::new(&mut cur).map_err(fail)?;
        ntfs.read_upcase_table(&mut cur).map_err(fail)?;
        Ok(NtfsFs { device, ntfs, cur })
    }
}

fn fs_err(device: &str, path: &str, e: ntfs::NtfsError) -> BrowseError {
    BrowseError::Fs {
        device: device.to_string(),
        path: path.to_string(),
        what: e.to_string(),
    }
}

/// The file record `path` names.
fn walk<'n>(
    device: &str,
    ntfs: &'n Ntfs,
    cur: &mut Cursor<'_>,
    path: &str,
) -> Result<NtfsFile<'n>> {
    let mut file = ntfs
        .root_directory(cur)
        .map_err(|e| fs_err(device, "/", e))?;
    for name in components(path) {
        if !file.is_directory() {
            return Err(BrowseError::NotADirectory {
                device: device.to_string(),
                path: path.to_string(),
            });
        }
        let index = file
            .directory_index(cur)
            .map_err(|e| fs_err(device, path, e))?;
        let mut finder = index.finder();
        let found = NtfsFileNameIndex::find(&mut finder, ntfs, cur, name).ok_or_else(|| {
            BrowseError::NotFound {
                device: device.to_string(),
                path: path.to_string(),
            }
        })?;
        let entry = found.map_err(|e| fs_err(device, path, e))?;
        let next = entry
            .to_file(ntfs, cur)
            .map_err(|e| fs_err(device, path, e))?;
        file = next;
    }
    Ok(file)
}

/// Size of the unnamed $DATA stream (0 for directories).
fn data_len(device: &str, path: &str, f: &NtfsFile, cur: &mut Cursor<'_>) -> Result<u64> {
    if f.is_directory() {
        return Ok(0);
    }
    match f.data(cur, "") {
        None => Ok(0),
        Some(item) => {
            let item = item.map_err(|e| fs_err(device, path, e))?;
            let attr = item.to_attribute().map_err(|e| fs_err(device, path, e))?;
            Ok(attr.value_length())
        }
    }
}

fn describe(
    device: &str,
    path: &str,
    name: String,
    f: &NtfsFile,
    cur: &mut Cursor<'_>,
) -> Result<Entry> {
    let mtime = f.info().ok().map(|i| unix(i.modification_time()));
    Ok(Entry {
        name,
        kind: if f.is_directory() {
            Kind::Dir
        } else {
            Kind::File
        },
        size: data_len(device, path, f, cur)?,
        mtime_unix: mtime,
    })
}

impl super::Browse for NtfsFs<'_> {
    fn fs_name(&self) -> &'static str {
        "ntfs"
    }

    fn stat(&mut self, path: &str) -> Result<Entry> {
        let NtfsFs { device, ntfs, cur } = self;
        let f = walk(device, ntfs, cur, path)?;
        describe(device, path, super::base_name(path), &f, cur)
    }

    fn list(&mut self, path: &str) -> Result<Vec<Entry>> {
        let NtfsFs { device, ntfs, cur } = self;
        let dir = walk(device, ntfs, cur, path)?;
        if !dir.is_directory() {
            return Err(BrowseError::NotADirectory {
                device: device.clone(),
                path: path.to_string(),
            });
        }
        let index = dir
            .directory_index(cur)
            .map_err(|e| fs_err(device, path, e))?;
        let mut it = index.entries();
        let mut out = Vec::new();
        while let Some(e) = it.next(cur) {
            let e = e.map_err(|e| fs_err(device, path, e))?;
            if e.file_reference().file_record_number() < FIRST_USER_RECORD {
                continue;
            }
            let Some(key) = e.key() else { continue };
            let key = key.map_err(|e| fs_err(device, path, e))?;
            if key.namespace() == NtfsFileNamespace::Dos {
                continue;
            }
            let name = key.name().to_string_lossy();
            let f = e.to_file(ntfs, cur).map_err(|e| fs_err(device, path, e))?;
            out.push(describe(device, path, name, &f, cur)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn copy_to(&mut self, path: &str, out: &mut dyn Write) -> Result<u64> {
        let NtfsFs { device, ntfs, cur } = self;
        let f = walk(device, ntfs, cur, path)?;
        let not_file = || BrowseError::NotAFile {
            device: device.clone(),
            path: path.to_string(),
        };
        if f.is_directory() {
            return Err(not_file());
        }
        let item = f
            .data(cur, "")
            .ok_or_else(not_file)?
            .map_err(|e| fs_err(device, path, e))?;
        let attr = item.to_attribute().map_err(|e| fs_err(device, path, e))?;
        let mut value = attr.value(cur).map_err(|e| fs_err(device, path, e))?;
        super::copy_stream(path, out, |buf| {
            value.read(cur, buf).map_err(|e| fs_err(device, path, e))
        })
    }

    fn read_link(&mut self, path: &str) -> Result<String> {
        Err(BrowseError::Fs {
            device: self.device.clone(),
            path: path.to_string(),
            what: "NTFS reparse points (links) are not read".into(),
        })
    }
}

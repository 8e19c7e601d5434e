//! FAT12/16/32 (EFI system partitions, USB sticks) through the `fatfs` crate, over
//! the read-only `Cursor` (its writes are refused, so the "clean unmount" flag that
//! `fatfs` may try to write on drop can never reach an image).

use super::cursor::Cursor;
use super::{components, BrowseError, Entry, Kind, Result};
use crate::device::BlockDevice;
use fatfs::{Dir, DirEntry, FileSystem, FsOptions};
use std::io::{Read, Write};
use std::sync::Arc;

pub struct FatFs {
    device: String,
    fs: FileSystem<Cursor<'static>>,
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// FAT stores local time without a zone; it is shown as if it were UTC.
fn unix(t: fatfs::DateTime) -> i64 {
    let days = days_from_civil(
        i64::from(t.date.year),
        i64::from(t.date.month),
        i64::from(t.date.day),
    );
    days * 86_400
        + i64::from(t.time.hour) * 3600
        + i64::from(t.time.min) * 60
        + i64::from(t.time.sec)
}

fn entry(e: &DirEntry<Cursor<'static>>) -> Entry {
    Entry {
        name: e.file_name(),
        kind: if e.is_dir() { Kind::Dir } else { Kind::File },
        size: if e.is_dir() { 0 } else { e.len() },
        mtime_unix: Some(unix(e.modified())),
        target: None,
        skip: None,
    }
}

/// `fatfs` over `dev`, read-only: for browsing, and as the source when an ESP is
/// re-created with another sector size.
pub(crate) fn open_fatfs(dev: Arc<dyn BlockDevice>) -> Result<FileSystem<Cursor<'static>>> {
    let device = dev.describe();
    FileSystem::new(Cursor::new(dev), FsOptions::new()).map_err(|e| BrowseError::Fs {
        device,
        path: "/".into(),
        what: format!("cannot open the FAT filesystem: {e}"),
    })
}

impl FatFs {
    pub fn open(dev: Arc<dyn BlockDevice>) -> Result<FatFs> {
        let device = dev.describe();
        let fs = open_fatfs(dev)?;
        Ok(FatFs { device, fs })
    }
}

fn err(device: &str, path: &str, e: std::io::Error) -> BrowseError {
    let (device, path) = (device.to_string(), path.to_string());
    if e.kind() == std::io::ErrorKind::NotFound {
        BrowseError::NotFound { device, path }
    } else {
        BrowseError::Fs {
            device,
            path,
            what: e.to_string(),
        }
    }
}

fn open_dir<'a>(
    device: &str,
    fs: &'a FileSystem<Cursor<'static>>,
    path: &str,
) -> Result<Dir<'a, Cursor<'static>>> {
    let c = components(path);
    if c.is_empty() {
        return Ok(fs.root_dir());
    }
    fs.root_dir()
        .open_dir(&c.join("/"))
        .map_err(|e| err(device, path, e))
}

impl super::Browse for FatFs {
    fn fs_name(&self) -> &'static str {
        "fat"
    }

    fn stat(&mut self, path: &str) -> Result<Entry> {
        let c = components(path);
        let Some((last, parent)) = c.split_last() else {
            return Ok(Entry {
                name: "/".into(),
                kind: Kind::Dir,
                size: 0,
                mtime_unix: None,
                target: None,
                skip: None,
            });
        };
        let dir = open_dir(&self.device, &self.fs, &parent.join("/"))?;
        for e in dir.iter() {
            let e = e.map_err(|e| err(&self.device, path, e))?;
            if e.file_name().eq_ignore_ascii_case(last)
                || e.short_file_name().eq_ignore_ascii_case(last)
            {
                return Ok(entry(&e));
            }
        }
        Err(BrowseError::NotFound {
            device: self.device.clone(),
            path: path.to_string(),
        })
    }

    fn list(&mut self, path: &str) -> Result<Vec<Entry>> {
        let dir = open_dir(&self.device, &self.fs, path)?;
        let mut out = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(|e| err(&self.device, path, e))?;
            let name = e.file_name();
            if name == "." || name == ".." {
                continue;
            }
            out.push(entry(&e));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn copy_to(&mut self, path: &str, out: &mut dyn Write) -> Result<u64> {
        let me = self.stat(path)?;
        if me.kind != Kind::File {
            return Err(BrowseError::NotAFile {
                device: self.device.clone(),
                path: path.to_string(),
            });
        }
        let mut f = self
            .fs
            .root_dir()
            .open_file(&components(path).join("/"))
            .map_err(|e| err(&self.device, path, e))?;
        super::copy_stream(path, out, |buf| {
            f.read(buf).map_err(|e| err(&self.device, path, e))
        })
    }

    fn read_link(&mut self, path: &str) -> Result<String> {
        Err(BrowseError::Fs {
            device: self.device.clone(),
            path: path.to_string(),
            what: "FAT has no symlinks".into(),
        })
    }
}

//! ext2/3/4 through the `ext4-view` crate (read-only, checks metadata checksums and
//! replays nothing onto the image). Only the glue lives here: a positional reader
//! over a `BlockDevice` and the mapping of its types onto `browse::Entry`.

use super::{components, BrowseError, Entry, Kind, Result};
use crate::device::BlockDevice;
use ext4_view::{Ext4, Ext4Error, Ext4Read, FileType, Metadata};
use std::io::Write;
use std::sync::Arc;

struct DevReader(Arc<dyn BlockDevice>);

impl Ext4Read for DevReader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.0.read_at(start_byte, dst).map_err(|e| e.into())
    }
}

pub struct ExtFs {
    device: String,
    fs: Ext4,
}

fn kind(t: FileType) -> Kind {
    if t.is_regular_file() {
        Kind::File
    } else if t.is_dir() {
        Kind::Dir
    } else if t.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    }
}

/// `/a/b`, as ext4-view wants absolute paths.
fn abs(path: &str) -> String {
    format!("/{}", components(path).join("/"))
}

fn entry(name: String, m: &Metadata) -> Entry {
    Entry {
        name,
        kind: kind(m.file_type()),
        size: m.len(),
        mtime_unix: Some(m.modified().seconds()),
        target: None,
        skip: None,
    }
}

impl ExtFs {
    pub fn open(dev: Arc<dyn BlockDevice>) -> Result<ExtFs> {
        let device = dev.describe();
        let fs = Ext4::load(Box::new(DevReader(dev))).map_err(|e| BrowseError::Fs {
            device: device.clone(),
            path: "/".into(),
            what: format!("cannot open the ext filesystem: {e}"),
        })?;
        Ok(ExtFs { device, fs })
    }

    fn err(&self, path: &str, e: Ext4Error) -> BrowseError {
        let (device, path) = (self.device.clone(), abs(path));
        match e {
            Ext4Error::NotFound => BrowseError::NotFound { device, path },
            Ext4Error::NotADirectory => BrowseError::NotADirectory { device, path },
            Ext4Error::IsADirectory | Ext4Error::IsASpecialFile => {
                BrowseError::NotAFile { device, path }
            }
            e => BrowseError::Fs {
                device,
                path,
                what: e.to_string(),
            },
        }
    }
}

impl super::Browse for ExtFs {
    fn fs_name(&self) -> &'static str {
        "ext"
    }

    fn stat(&mut self, path: &str) -> Result<Entry> {
        let p = abs(path);
        let m = self
            .fs
            .symlink_metadata(p.as_str())
            .map_err(|e| self.err(path, e))?;
        let mut e = entry(super::base_name(path), &m);
        if e.kind == Kind::Symlink {
            e.target = Some(self.read_link(path)?);
        }
        Ok(e)
    }

    fn list(&mut self, path: &str) -> Result<Vec<Entry>> {
        let p = abs(path);
        let rd = self
            .fs
            .read_dir(p.as_str())
            .map_err(|e| self.err(path, e))?;
        let mut out = Vec::new();
        for de in rd {
            let de = de.map_err(|e| self.err(path, e))?;
            let name = de.file_name().display().to_string();
            if name == "." || name == ".." {
                continue;
            }
            let m = de.metadata().map_err(|e| self.err(path, e))?;
            let mut e = entry(name, &m);
            if e.kind == Kind::Symlink {
                let p = format!("{}/{}", abs(path).trim_end_matches('/'), e.name);
                e.target = Some(self.read_link(&p)?);
            }
            out.push(e);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn copy_to(&mut self, path: &str, out: &mut dyn Write) -> Result<u64> {
        let p = abs(path);
        let m = self
            .fs
            .symlink_metadata(p.as_str())
            .map_err(|e| self.err(path, e))?;
        if !m.file_type().is_regular_file() {
            return Err(BrowseError::NotAFile {
                device: self.device.clone(),
                path: p,
            });
        }
        let mut f = self.fs.open(p.as_str()).map_err(|e| self.err(path, e))?;
        super::copy_stream(&p, out, |buf| {
            f.read_bytes(buf).map_err(|e| self.err(path, e))
        })
    }

    fn read_link(&mut self, path: &str) -> Result<String> {
        let p = abs(path);
        let t = self
            .fs
            .read_link(p.as_str())
            .map_err(|e| self.err(path, e))?;
        Ok(t.display().to_string())
    }
}

//! Split volumes: Clonezilla cuts a large image with `split -a 2 -b <N>MB` into
//! `<name>.aa`, `<name>.ab`, ...; read back to back they are the one stream. A gap in
//! the sequence is named before anything is read; a missing last volume can only show
//! as the stream ending early, which the image reader reports as truncation.

use super::error::SourceError;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The files that make up `path`: itself, or its `.aa`, `.ab`, ... volumes in order.
pub fn find(path: &Path) -> Result<Vec<PathBuf>, SourceError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let (dir, base) = match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(d), Some(b)) => (
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            },
            b,
        ),
        _ => {
            return Err(SourceError::NotFound {
                path: path.to_path_buf(),
            })
        }
    };
    let io_err = |source| SourceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut suffixes: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(base).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        if rest.len() == 2 && rest.bytes().all(|c| c.is_ascii_lowercase()) {
            suffixes.push(rest.to_string());
        }
    }
    suffixes.sort();
    if suffixes.is_empty() {
        return Err(SourceError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let mut out = Vec::with_capacity(suffixes.len());
    for (i, found) in suffixes.iter().enumerate() {
        let want = suffix(i);
        if *found != want {
            return Err(SourceError::MissingVolume {
                missing: dir.join(format!("{base}.{want}")),
                found: dir.join(format!("{base}.{found}")),
            });
        }
        out.push(dir.join(format!("{base}.{found}")));
    }
    Ok(out)
}

/// The i-th two-letter suffix of split(1): aa, ab, ..., az, ba, ...
fn suffix(i: usize) -> String {
    let hi = u8::try_from(i / 26 % 26).unwrap_or(0);
    let lo = u8::try_from(i % 26).unwrap_or(0);
    format!("{}{}", char::from(b'a' + hi), char::from(b'a' + lo))
}

/// Reads the volumes one after another, opening each read-only when reached.
pub struct Volumes {
    paths: Vec<PathBuf>,
    next: usize,
    current: Option<File>,
}

impl Volumes {
    pub fn open(paths: Vec<PathBuf>) -> Self {
        Self {
            paths,
            next: 0,
            current: None,
        }
    }
}

impl Read for Volumes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(f) = self.current.as_mut() {
                let n = f.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            let Some(path) = self.paths.get(self.next) else {
                return Ok(0);
            };
            let f = File::open(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            self.current = Some(f);
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_follow_split() {
        assert_eq!(suffix(0), "aa");
        assert_eq!(suffix(1), "ab");
        assert_eq!(suffix(26), "ba");
    }

    #[test]
    fn a_gap_names_the_missing_volume_and_volumes_read_as_one() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("sda1.ext4-ptcl-img.zst");
        for (s, body) in [("aa", "one"), ("ab", "two"), ("ac", "three")] {
            std::fs::write(d.path().join(format!("sda1.ext4-ptcl-img.zst.{s}")), body).unwrap();
        }
        let paths = find(&base).unwrap();
        let mut all = String::new();
        Volumes::open(paths).read_to_string(&mut all).unwrap();
        assert_eq!(all, "onetwothree");
        std::fs::remove_file(d.path().join("sda1.ext4-ptcl-img.zst.ab")).unwrap();
        let err = find(&base).unwrap_err().to_string();
        assert!(err.contains("sda1.ext4-ptcl-img.zst.ab"), "{err}");
        assert!(matches!(
            find(&d.path().join("nothing")),
            Err(SourceError::NotFound { .. })
        ));
    }
}

//! The checksum lists Clonezilla can write into an image folder (`MD5SUMS`, `SHA1SUMS`,
//! `B2SUMS`, in the format of `md5sum`/`sha1sum`/`b2sum`: `<hex>  <file>` per line, a
//! `*` instead of the second space in binary mode). They cover every file of the
//! folder, the boot areas and list files included, which partclone's own checksums
//! do not; so when a list is there, every file it names is hashed and compared before
//! the image is used, and a mismatch names the file and the list.

use super::error::ClonezillaError;
use md5::Md5;
use rayon::prelude::*;
use sha1::Sha1;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The lists Clonezilla writes, by file name.
pub const LISTS: [(&str, Algo); 3] = [
    ("MD5SUMS", Algo::Md5),
    ("SHA1SUMS", Algo::Sha1),
    ("B2SUMS", Algo::Blake2b),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    Md5,
    Sha1,
    /// BLAKE2b-512, `b2sum`'s default.
    Blake2b,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Md5 => "MD5",
            Algo::Sha1 => "SHA-1",
            Algo::Blake2b => "BLAKE2b",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Algo::Md5 => 16,
            Algo::Sha1 => 20,
            Algo::Blake2b => 64,
        }
    }

    fn hash(self, r: &mut dyn Read) -> std::io::Result<Vec<u8>> {
        // The digest crates of two generations (md-5/sha1 0.11, blake2 0.10) do not share
        // a trait version, so each is fed by its own loop over the same buffer.
        let mut buf = vec![0u8; 1 << 20];
        macro_rules! feed {
            ($h:expr, $update:path) => {{
                let mut h = $h;
                loop {
                    let n = r.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    $update(&mut h, &buf[..n]);
                }
                h
            }};
        }
        Ok(match self {
            Algo::Md5 => {
                use md5::Digest;
                feed!(Md5::new(), Digest::update).finalize().to_vec()
            }
            Algo::Sha1 => {
                use sha1::Digest;
                feed!(Sha1::new(), Digest::update).finalize().to_vec()
            }
            Algo::Blake2b => {
                use blake2::Digest;
                feed!(blake2::Blake2b512::new(), Digest::update)
                    .finalize()
                    .to_vec()
            }
        })
    }
}

/// One list: which algorithm, and (file name, digest) per line.
#[derive(Clone, Debug)]
pub struct ChecksumList {
    pub path: PathBuf,
    pub algo: Algo,
    pub entries: Vec<(String, Vec<u8>)>,
}

fn hex_digest(s: &str, len: usize) -> Option<Vec<u8>> {
    if s.len() != len * 2 {
        return None;
    }
    (0..len)
        .map(|i| {
            s.get(i * 2..i * 2 + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

impl ChecksumList {
    /// Parses a list; a line that is not `<hex> <file>` with a digest of the right
    /// length and a plain file name of this folder is an error naming it.
    pub fn parse(path: &Path, algo: Algo, text: &str) -> Result<Self, ClonezillaError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |why| ClonezillaError::BadLine {
                file: path.to_path_buf(),
                line: i + 1,
                why,
                text: line.chars().take(200).collect(),
            };
            let (hex, rest) = line
                .split_once(' ')
                .ok_or_else(|| bad("not <checksum> <file>"))?;
            let digest = hex_digest(hex, algo.digest_len())
                .ok_or_else(|| bad("not a checksum of this list's length"))?;
            // "  name" (text mode) or " *name" (binary mode); "./" as find(1) prints it.
            let name = rest
                .strip_prefix(' ')
                .or_else(|| rest.strip_prefix('*'))
                .ok_or_else(|| bad("no file name after the checksum"))?;
            let name = name.strip_prefix("./").unwrap_or(name);
            if name.is_empty() || name.contains('/') || name == ".." || name == "." {
                return Err(bad("not a file of the image folder"));
            }
            entries.push((name.to_string(), digest));
        }
        Ok(ChecksumList {
            path: path.to_path_buf(),
            algo,
            entries,
        })
    }

    /// Hashes every listed file of `dir` (files in parallel) and compares. Returns the
    /// bytes read.
    pub fn verify(&self, dir: &Path) -> Result<u64, ClonezillaError> {
        let sizes = self
            .entries
            .par_iter()
            .map(|(name, want)| {
                let file = dir.join(name);
                let io = |source| ClonezillaError::Io {
                    file: file.clone(),
                    source,
                };
                let mut f = std::fs::File::open(&file).map_err(io)?;
                let len = f.metadata().map_err(io)?.len();
                let got = self.algo.hash(&mut f).map_err(io)?;
                if &got != want {
                    return Err(ClonezillaError::ChecksumMismatch {
                        file: file.clone(),
                        list: self.path.clone(),
                        algo: self.algo.name(),
                    });
                }
                Ok(len)
            })
            .collect::<Result<Vec<u64>, _>>()?;
        Ok(sizes.iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_binary_mode_lines() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        let text = format!("{md5}  sda-mbr\n{md5} *sda1.ext4-ptcl-img.zst.aa\n{md5}  ./parts\n");
        let l = ChecksumList::parse(Path::new("MD5SUMS"), Algo::Md5, &text).unwrap();
        let names: Vec<&str> = l.entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["sda-mbr", "sda1.ext4-ptcl-img.zst.aa", "parts"]);
        assert_eq!(l.entries[0].1.len(), 16);
    }

    #[test]
    fn bad_lines_are_named() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        for (text, why) in [
            (
                format!("{md5}  ../etc/passwd"),
                "not a file of the image folder",
            ),
            (format!("{md5}  sub/file"), "not a file of the image folder"),
            (
                "abcd  parts".to_string(),
                "not a checksum of this list's length",
            ),
            (md5.to_string(), "not <checksum> <file>"),
            (
                format!("{md5}x parts"),
                "not a checksum of this list's length",
            ),
        ] {
            let e = ChecksumList::parse(Path::new("MD5SUMS"), Algo::Md5, &text).unwrap_err();
            assert!(e.to_string().contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn known_answers() {
        // The digests of "abc" from RFC 1321, FIPS 180-1 and RFC 7693.
        let h = |a: Algo| {
            a.hash(&mut &b"abc"[..])
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(h(Algo::Md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(h(Algo::Sha1), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert!(h(Algo::Blake2b).starts_with("ba80a53f981c4d0d6a2797b69f12f6e9"));
    }
}

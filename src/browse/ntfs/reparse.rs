//! The value of a `$REPARSE_POINT` attribute (a reparse data buffer), for the three
//! kinds that are links: Windows symbolic links, junctions (mount points) and WSL
//! symlinks. Any other tag is only named: it marks data a Windows filter driver
//! interprets (deduplication, WOF compression, cloud placeholders), which this
//! reader cannot.
//!
//! Layout (MS-FSCC 2.1.2): tag (u32), data length (u16), reserved (u16), then the
//! data. Symlinks and junctions hold four u16 (substitute name offset and length,
//! print name offset and length, in bytes into the path buffer), symlinks a u32 of
//! flags, then the UTF-16LE path buffer. The flags (1: relative) are not kept: the
//! substitute name's own form (`\??\C:\x`, `C:\x`, `\x` or `x\y`) says what it
//! is, and that is what `browse::ntfs::link` maps, as ntfs-3g does. A WSL symlink
//! (`IO_REPARSE_TAG_LX_SYMLINK`) holds a u32 version (2) and the UTF-8 target.

use crate::bytes::{le16, le32};
use thiserror::Error;

pub const TAG_MOUNT_POINT: u32 = 0xA000_0003;
pub const TAG_SYMLINK: u32 = 0xA000_000C;
pub const TAG_LX_SYMLINK: u32 = 0xA000_001D;

/// Tag, data length and reserved field.
const HEADER: usize = 8;
/// The largest reparse data buffer Windows writes (MAXIMUM_REPARSE_DATA_BUFFER_SIZE):
/// callers read no more than this from disk.
pub const MAX_LEN: usize = 16 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReparseError {
    #[error("reparse point: {len} bytes, shorter than the {need} its {what} needs")]
    Short {
        len: usize,
        need: usize,
        what: &'static str,
    },
    #[error(
        "reparse point: data length field (byte 4) says {said} bytes, {have} follow the header"
    )]
    Length { said: usize, have: usize },
    #[error("reparse point tag {tag:#010x}: {name} name at path buffer bytes [{at}, {end}) is not whole UTF-16 units within its {have} bytes")]
    NameOutside {
        tag: u32,
        name: &'static str,
        at: usize,
        end: usize,
        have: usize,
    },
    #[error("reparse point tag {tag:#010x}: {name} name is not valid UTF-16")]
    BadUtf16 { tag: u32, name: &'static str },
    #[error("WSL symlink: version {0} (byte 8), only version 2 is known")]
    LxVersion(u32),
    #[error("WSL symlink: target is not valid UTF-8")]
    LxUtf8,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reparse {
    /// `IO_REPARSE_TAG_SYMLINK`: `substitute` is the path Windows follows
    /// (`\??\C:\x` when absolute), `print` the one it shows.
    Symlink { substitute: String, print: String },
    /// `IO_REPARSE_TAG_MOUNT_POINT`: a junction (`\??\C:\x`) or a volume mount point
    /// (`\??\Volume{guid}\`).
    MountPoint { substitute: String, print: String },
    /// `IO_REPARSE_TAG_LX_SYMLINK`: a Linux target, stored as WSL wrote it.
    LxSymlink { target: String },
    /// Any other tag.
    Other { tag: u32 },
}

/// Decodes a reparse data buffer.
pub fn decode(b: &[u8]) -> Result<Reparse, ReparseError> {
    let short = |need, what| ReparseError::Short {
        len: b.len(),
        need,
        what,
    };
    let (Some(tag), Some(said)) = (le32(b, 0), le16(b, 4)) else {
        return Err(short(HEADER, "header"));
    };
    let (said, have) = (usize::from(said), b.len().saturating_sub(HEADER));
    let data = match b.get(HEADER..HEADER + said) {
        Some(d) if matches!(tag, TAG_MOUNT_POINT | TAG_SYMLINK | TAG_LX_SYMLINK) => d,
        // Other tags (and non-Microsoft ones, with a GUID after the header) are
        // only named, whatever their data.
        _ if !matches!(tag, TAG_MOUNT_POINT | TAG_SYMLINK | TAG_LX_SYMLINK) => {
            return Ok(Reparse::Other { tag })
        }
        _ => return Err(ReparseError::Length { said, have }),
    };
    match tag {
        TAG_LX_SYMLINK => {
            let version = le32(data, 0).ok_or(short(HEADER + 4, "WSL symlink"))?;
            if version != 2 {
                return Err(ReparseError::LxVersion(version));
            }
            let target = data.get(4..).unwrap_or_default();
            let target = std::str::from_utf8(target).map_err(|_| ReparseError::LxUtf8)?;
            Ok(Reparse::LxSymlink {
                target: target.to_string(),
            })
        }
        _ => {
            let symlink = tag == TAG_SYMLINK;
            let fixed = if symlink { 12 } else { 8 };
            let what = if symlink { "symlink" } else { "junction" };
            let field = |off| le16(data, off).map(usize::from);
            let (Some(so), Some(sl), Some(po), Some(pl)) = (field(0), field(2), field(4), field(6))
            else {
                return Err(short(HEADER + fixed, what));
            };
            if symlink && le32(data, 8).is_none() {
                return Err(short(HEADER + fixed, what));
            }
            let buffer = data.get(fixed..).unwrap_or_default();
            let name = |name, at: usize, len: usize| -> Result<String, ReparseError> {
                let end = at.saturating_add(len);
                let raw = buffer.get(at..end).filter(|r| r.len() % 2 == 0).ok_or(
                    ReparseError::NameOutside {
                        tag,
                        name,
                        at,
                        end,
                        have: buffer.len(),
                    },
                )?;
                let units: Vec<u16> = raw.chunks_exact(2).filter_map(|c| le16(c, 0)).collect();
                // Junction names may end in a NUL that the length counts.
                let units = units.strip_suffix(&[0]).unwrap_or(&units);
                String::from_utf16(units).map_err(|_| ReparseError::BadUtf16 { tag, name })
            };
            let substitute = name("substitute", so, sl)?;
            let print = name("print", po, pl)?;
            Ok(if symlink {
                Reparse::Symlink { substitute, print }
            } else {
                Reparse::MountPoint { substitute, print }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn buffer(tag: u32, data: &[u8]) -> Vec<u8> {
        let mut b = tag.to_le_bytes().to_vec();
        b.extend_from_slice(&(data.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(data);
        b
    }

    /// Names data as Windows writes it: print name first, then the substitute.
    fn names(sub: &str, print: &str, flags: Option<u32>) -> Vec<u8> {
        let (s, p) = (utf16(sub), utf16(print));
        let mut d = Vec::new();
        for v in [p.len(), s.len(), 0, p.len()] {
            d.extend_from_slice(&(v as u16).to_le_bytes());
        }
        if let Some(f) = flags {
            d.extend_from_slice(&f.to_le_bytes());
        }
        d.extend_from_slice(&p);
        d.extend_from_slice(&s);
        d
    }

    #[test]
    fn decodes_symlinks_junctions_and_wsl_links() {
        let b = buffer(TAG_SYMLINK, &names("..\\a b\\é", "..\\a b\\é", Some(1)));
        assert_eq!(
            decode(&b),
            Ok(Reparse::Symlink {
                substitute: "..\\a b\\é".into(),
                print: "..\\a b\\é".into(),
            })
        );
        let b = buffer(
            TAG_MOUNT_POINT,
            &names("\\??\\C:\\Users\0", "C:\\Users", None),
        );
        assert_eq!(
            decode(&b),
            Ok(Reparse::MountPoint {
                substitute: "\\??\\C:\\Users".into(),
                print: "C:\\Users".into()
            })
        );
        let mut lx = 2u32.to_le_bytes().to_vec();
        lx.extend_from_slice("/usr/lib/ö".as_bytes());
        assert_eq!(
            decode(&buffer(TAG_LX_SYMLINK, &lx)),
            Ok(Reparse::LxSymlink {
                target: "/usr/lib/ö".into()
            })
        );
        assert_eq!(
            decode(&buffer(0x8000_0017, &[1, 2, 3])),
            Ok(Reparse::Other { tag: 0x8000_0017 })
        );
    }

    #[test]
    fn malformed_buffers_are_errors_naming_the_field() {
        assert!(matches!(decode(&[1, 2]), Err(ReparseError::Short { .. })));
        // The length field claims more than follows.
        let mut b = buffer(TAG_SYMLINK, &names("a", "a", Some(1)));
        b.truncate(b.len() - 1);
        assert!(matches!(decode(&b), Err(ReparseError::Length { .. })));
        // A name past the path buffer.
        let mut d = names("a", "a", Some(1));
        d[2] = 200;
        assert!(matches!(
            decode(&buffer(TAG_SYMLINK, &d)),
            Err(ReparseError::NameOutside {
                name: "substitute",
                ..
            })
        ));
        // Too short for the symlink's fixed fields.
        assert!(matches!(
            decode(&buffer(TAG_SYMLINK, &[0; 10])),
            Err(ReparseError::Short { .. })
        ));
        // An odd length cannot be UTF-16; an unpaired surrogate is not text.
        let mut d = names("ab", "ab", None);
        d[2] = 3;
        assert!(decode(&buffer(TAG_MOUNT_POINT, &d)).is_err());
        let mut d = names("a", "a", None);
        d[8..10].copy_from_slice(&0xD800u16.to_le_bytes());
        assert!(matches!(
            decode(&buffer(TAG_MOUNT_POINT, &d)),
            Err(ReparseError::BadUtf16 { .. })
        ));
        let mut lx = 1u32.to_le_bytes().to_vec();
        lx.push(b'x');
        assert_eq!(
            decode(&buffer(TAG_LX_SYMLINK, &lx)),
            Err(ReparseError::LxVersion(1))
        );
        let mut lx = 2u32.to_le_bytes().to_vec();
        lx.push(0xFF);
        assert_eq!(
            decode(&buffer(TAG_LX_SYMLINK, &lx)),
            Err(ReparseError::LxUtf8)
        );
    }
}

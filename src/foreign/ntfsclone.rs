//! ntfsclone "special image" files (`ntfsclone --save-image`, Clonezilla's
//! `<part>.ntfs-img.*`), read as a stream: a 50-byte header (magic
//! "\0ntfsclone-image", version 10.x, cluster size, device size, cluster count, in-use
//! count, data offset), then commands: 0 = skip the next N clusters (i64), 1 = the next
//! cluster's bytes follow. The slot after the last cluster holds the backup boot
//! sector (format 10.1; a shortened cluster when the device ends inside it). The format
//! carries no checksums, so only its structure can be checked.
//! Hand-written: no Rust crate reads it; the layout follows ntfs-3g's ntfsclone.c.

use crate::bytes::{le32, le64, u8_at};
use std::io::{ErrorKind, Read};
use thiserror::Error;

pub const MAGIC: &[u8; 16] = b"\0ntfsclone-image";
const HEADER_LEN: usize = 50;
/// NTFS clusters are at most 2 MiB; the cap bounds the buffer a header can demand.
const MAX_CLUSTER: u32 = 2 << 20;

#[derive(Debug, Error)]
pub enum NtfscloneError {
    #[error("{file}: reading at image byte {offset}: {source}")]
    Io {
        file: String,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: truncated: the image ends inside the {what} at image byte {offset}")]
    Truncated {
        file: String,
        what: &'static str,
        offset: u64,
    },
    #[error("{file}: not an ntfsclone image (no \"\\0ntfsclone-image\" at byte 0)")]
    BadMagic { file: String },
    #[error("{file}: header field {field} (byte {offset}) = {value}: {why}")]
    BadField {
        file: String,
        field: &'static str,
        offset: u64,
        value: u64,
        why: &'static str,
    },
    #[error(
        "{file}: command byte {value} at image byte {offset} is neither 0 (gap) nor 1 (cluster)"
    )]
    BadCommand {
        file: String,
        offset: u64,
        value: u8,
    },
    #[error("{file}: a gap of {count} clusters at image byte {offset} runs from cluster {at} past the last ({last})")]
    BadGap {
        file: String,
        offset: u64,
        count: i64,
        at: u64,
        last: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NtfscloneHeader {
    pub major: u8,
    pub minor: u8,
    pub cluster_size: u32,
    pub device_size: u64,
    pub nr_clusters: u64,
    pub inuse: u64,
}

pub struct NtfscloneImage<R> {
    r: R,
    file: String,
    offset: u64,
    header: NtfscloneHeader,
    /// The cluster the next command applies to.
    pos: u64,
    done: bool,
}

impl<R: Read> NtfscloneImage<R> {
    pub fn open(file: impl Into<String>, r: R) -> Result<Self, NtfscloneError> {
        let mut img = Self {
            r,
            file: file.into(),
            offset: 0,
            header: NtfscloneHeader {
                major: 0,
                minor: 0,
                cluster_size: 0,
                device_size: 0,
                nr_clusters: 0,
                inuse: 0,
            },
            pos: 0,
            done: false,
        };
        let mut h = [0u8; HEADER_LEN];
        img.fill(&mut h, "header")?;
        if h.get(..16) != Some(&MAGIC[..]) {
            return Err(NtfscloneError::BadMagic { file: img.file });
        }
        let bad = |file: &str, field, offset, value: u64, why| NtfscloneError::BadField {
            file: file.to_string(),
            field,
            offset,
            value,
            why,
        };
        let get = |o: usize, n: usize| -> u64 {
            match n {
                1 => u8_at(&h, o).map(u64::from),
                4 => le32(&h, o).map(u64::from),
                _ => le64(&h, o),
            }
            .unwrap_or(0)
        };
        let major = get(16, 1) as u8;
        if major != 10 {
            return Err(bad(
                &img.file,
                "major_ver",
                16,
                major.into(),
                "only format 10.x (little-endian) is read",
            ));
        }
        let cs = get(18, 4) as u32;
        if !cs.is_power_of_two() || !(512..=MAX_CLUSTER).contains(&cs) {
            return Err(bad(
                &img.file,
                "cluster_size",
                18,
                cs.into(),
                "not a power of two from 512 to 2 MiB",
            ));
        }
        let device_size = get(22, 8);
        let nr_clusters = get(30, 8);
        if nr_clusters
            .checked_mul(cs.into())
            .is_none_or(|b| b > device_size)
        {
            return Err(bad(
                &img.file,
                "nr_clusters",
                30,
                nr_clusters,
                "more clusters than the device holds",
            ));
        }
        let data_at = get(46, 4);
        if !(HEADER_LEN as u64..=4096).contains(&data_at) {
            return Err(bad(
                &img.file,
                "offset_to_image_data",
                46,
                data_at,
                "outside 50..=4096",
            ));
        }
        let mut pad = vec![0u8; (data_at - HEADER_LEN as u64) as usize];
        img.fill(&mut pad, "header padding")?;
        img.header = NtfscloneHeader {
            major,
            minor: get(17, 1) as u8,
            cluster_size: cs,
            device_size,
            nr_clusters,
            inuse: get(38, 8),
        };
        Ok(img)
    }

    pub fn header(&self) -> &NtfscloneHeader {
        &self.header
    }

    /// Reads exactly `buf`; `Ok(false)` at a clean end of stream before any byte.
    fn fill_or_end(&mut self, buf: &mut [u8], what: &'static str) -> Result<bool, NtfscloneError> {
        let mut got = 0;
        while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
            match self.r.read(rest) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    return Err(NtfscloneError::Truncated {
                        file: self.file.clone(),
                        what,
                        offset: self.offset,
                    })
                }
                Ok(n) => {
                    got += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(NtfscloneError::Io {
                        file: self.file.clone(),
                        offset: self.offset,
                        source,
                    })
                }
            }
        }
        Ok(true)
    }

    fn fill(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), NtfscloneError> {
        if buf.is_empty() || self.fill_or_end(buf, what)? {
            return Ok(());
        }
        Err(NtfscloneError::Truncated {
            file: self.file.clone(),
            what,
            offset: self.offset,
        })
    }

    /// The next stored cluster into `buf` (resized to its length): its number.
    pub fn next_cluster(&mut self, buf: &mut Vec<u8>) -> Result<Option<u64>, NtfscloneError> {
        let cs = u64::from(self.header.cluster_size);
        while !self.done && self.pos <= self.header.nr_clusters {
            let mut cmd = [0u8; 1];
            let at = self.offset;
            if !self.fill_or_end(&mut cmd, "command")? {
                // Images before format 10.1 end without the backup boot sector slot.
                if self.pos == self.header.nr_clusters {
                    break;
                }
                return Err(NtfscloneError::Truncated {
                    file: self.file.clone(),
                    what: "command",
                    offset: at,
                });
            }
            match cmd[0] {
                0 => {
                    let mut c = [0u8; 8];
                    self.fill(&mut c, "gap count")?;
                    let count = i64::from_le_bytes(c);
                    let end = u64::try_from(count)
                        .ok()
                        .filter(|&n| n > 0)
                        .and_then(|n| self.pos.checked_add(n));
                    match end.filter(|&e| e <= self.header.nr_clusters) {
                        Some(e) => self.pos = e,
                        None => {
                            return Err(NtfscloneError::BadGap {
                                file: self.file.clone(),
                                offset: at,
                                count,
                                at: self.pos,
                                last: self.header.nr_clusters,
                            })
                        }
                    }
                }
                1 => {
                    // The last slot may be cut short where the device ends.
                    let start = self.pos * cs;
                    let len = cs.min(self.header.device_size.saturating_sub(start));
                    buf.resize(len as usize, 0);
                    self.fill(buf, "cluster data")?;
                    let lcn = self.pos;
                    self.pos += 1;
                    return Ok(Some(lcn));
                }
                v => {
                    return Err(NtfscloneError::BadCommand {
                        file: self.file.clone(),
                        offset: at,
                        value: v,
                    })
                }
            }
        }
        self.done = true;
        Ok(None)
    }
}

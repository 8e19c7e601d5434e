//! The deploy stream: one image's records, sent once to every client (docs/DEPLOY.md,
//! "Stream format", is the exact layout).
//!
//! ```text
//! header:   "ICDEPLOY" | version u32 | chunk_size u32 | name_len u16 | name
//! record:   "ICSR" | id [32] | raw_len u32 | stored_len u32 | compression u8 | pad [3]
//!           | members u32 | members × len u32 | stored bytes
//! manifest: "ICSM" | len u32 | zstd JSON manifest
//! trailer:  "ICSE" | records u64 | raw bytes u64 | stored bytes u64
//!           | blake3 of every byte before the trailer [32]
//! ```
//! Little-endian. The manifest comes after the records: with an encrypted repository
//! its plain ids are known only once every record has been opened, and a receiver that
//! stops early has no manifest, so nothing it spooled looks like a complete image.
//! Every length is bounded before anything is allocated, so a damaged or hostile
//! stream is an error, never a panic or a huge allocation (fuzz/fuzz_targets/deploy.rs).

use crate::repo::transfer::PlainRecord;
use crate::repo::{ChunkId, Compression};
use std::io::{Read, Write};
use thiserror::Error;

pub const MAGIC: &[u8; 8] = b"ICDEPLOY";
pub const VERSION: u32 = 1;
const RECORD: &[u8; 4] = b"ICSR";
const MANIFEST: &[u8; 4] = b"ICSM";
const END: &[u8; 4] = b"ICSE";
/// Limits of one record, as a repository's (repo/config.rs, pack/record.rs).
pub const MAX_RAW: u32 = 16 << 20;
/// zstd's worst case for 16 MiB is a little over it; an incompressible record is stored raw.
pub const MAX_STORED: u32 = MAX_RAW + (1 << 20);
pub const MAX_MEMBERS: u32 = 1 << 16;
/// The compressed manifest (the JSON itself is bounded again when unpacked).
pub const MAX_MANIFEST: u32 = 1 << 30;
pub const MAX_NAME: u16 = 255;

#[derive(Debug, Error)]
pub enum StreamError {
    #[error("stream byte {at}: {what}")]
    Bad { at: u64, what: String },
    #[error("stream byte {at}: {source}")]
    Io {
        at: u64,
        #[source]
        source: std::io::Error,
    },
}

/// What the header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub image: String,
    pub chunk_size: u32,
}

/// The counts the trailer checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub records: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

/// Writes a stream: `header`, then `record` for each record, then `finish`.
pub struct Encoder<W: Write> {
    w: W,
    hash: blake3::Hasher,
    counts: Counts,
    len: u64,
}

impl<W: Write> Encoder<W> {
    pub fn new(mut w: W, h: &Header) -> std::io::Result<Self> {
        let name = h.image.as_bytes();
        let nlen = u16::try_from(name.len())
            .ok()
            .filter(|&n| n <= MAX_NAME)
            .ok_or_else(|| std::io::Error::other("image name over 255 bytes"))?;
        let mut b = Vec::with_capacity(18 + name.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&h.chunk_size.to_le_bytes());
        b.extend_from_slice(&nlen.to_le_bytes());
        b.extend_from_slice(name);
        let mut hash = blake3::Hasher::new();
        hash.update(&b);
        w.write_all(&b)?;
        Ok(Encoder {
            w,
            hash,
            counts: Counts::default(),
            len: b.len() as u64,
        })
    }

    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.hash.update(b);
        self.len += b.len() as u64;
        self.w.write_all(b)
    }

    pub fn record(&mut self, r: &PlainRecord) -> std::io::Result<()> {
        let too_big = |what: &str| std::io::Error::other(format!("record {}: {what}", r.id));
        let stored = u32::try_from(r.data.len())
            .ok()
            .filter(|&n| n <= MAX_STORED)
            .ok_or_else(|| too_big("stored bytes over the limit"))?;
        let members = u32::try_from(r.member_lens.len())
            .ok()
            .filter(|&n| n <= MAX_MEMBERS)
            .ok_or_else(|| too_big("too many members"))?;
        if r.raw_len > MAX_RAW {
            return Err(too_big("raw length over the limit"));
        }
        let mut h = Vec::with_capacity(56 + 4 * r.member_lens.len());
        h.extend_from_slice(RECORD);
        h.extend_from_slice(&r.id.0);
        h.extend_from_slice(&r.raw_len.to_le_bytes());
        h.extend_from_slice(&stored.to_le_bytes());
        h.push(compression_code(r.compression));
        h.extend_from_slice(&[0; 3]);
        h.extend_from_slice(&members.to_le_bytes());
        for l in &r.member_lens {
            h.extend_from_slice(&l.to_le_bytes());
        }
        self.put(&h)?;
        self.put(&r.data)?;
        self.counts.records += 1;
        self.counts.raw_bytes += u64::from(r.raw_len);
        self.counts.stored_bytes += u64::from(stored);
        Ok(())
    }

    /// Writes the manifest and the trailer; returns the writer, the counts and the
    /// stream's length.
    pub fn finish(mut self, manifest: &[u8]) -> std::io::Result<(W, Counts, u64)> {
        let len = u32::try_from(manifest.len())
            .ok()
            .filter(|&n| n <= MAX_MANIFEST)
            .ok_or_else(|| std::io::Error::other("manifest over 1 GiB"))?;
        let mut m = Vec::with_capacity(8);
        m.extend_from_slice(MANIFEST);
        m.extend_from_slice(&len.to_le_bytes());
        self.put(&m)?;
        self.put(manifest)?;
        let mut t = Vec::with_capacity(60);
        t.extend_from_slice(END);
        t.extend_from_slice(&self.counts.records.to_le_bytes());
        t.extend_from_slice(&self.counts.raw_bytes.to_le_bytes());
        t.extend_from_slice(&self.counts.stored_bytes.to_le_bytes());
        t.extend_from_slice(self.hash.finalize().as_bytes());
        self.w.write_all(&t)?;
        self.w.flush()?;
        Ok((self.w, self.counts, self.len + t.len() as u64))
    }
}

fn compression_code(c: Compression) -> u8 {
    match c {
        Compression::None => 0,
        Compression::Zstd => 1,
    }
}

/// One item read after the header.
#[derive(Debug)]
pub enum Item {
    Record(PlainRecord),
    /// The compressed manifest; the trailer has been read and checked after it.
    Manifest(Vec<u8>),
}

/// Reads a stream item by item, checking the trailer at the end.
pub struct Decoder<R: Read> {
    r: R,
    hash: blake3::Hasher,
    at: u64,
    counts: Counts,
    done: bool,
}

impl<R: Read> Decoder<R> {
    /// Reads and checks the header.
    pub fn new(r: R) -> Result<(Self, Header), StreamError> {
        let mut d = Decoder {
            r,
            hash: blake3::Hasher::new(),
            at: 0,
            counts: Counts::default(),
            done: false,
        };
        let mut h = [0u8; 18];
        d.read(&mut h)?;
        if &h[..8] != MAGIC {
            return Err(d.bad(0, "not an ironclone deploy stream (bad magic)"));
        }
        let version = le32(&h[8..12]);
        if version != VERSION {
            return Err(d.bad(
                8,
                &format!("stream version {version}, this build reads {VERSION}"),
            ));
        }
        let chunk_size = le32(&h[12..16]);
        if chunk_size == 0 || chunk_size > MAX_RAW {
            return Err(d.bad(12, &format!("chunk size {chunk_size}")));
        }
        let nlen = u16::from_le_bytes([h[16], h[17]]);
        if nlen > MAX_NAME {
            return Err(d.bad(16, "image name over 255 bytes"));
        }
        let mut name = vec![0u8; usize::from(nlen)];
        d.read(&mut name)?;
        let image = String::from_utf8(name).map_err(|_| d.bad(18, "image name is not UTF-8"))?;
        Ok((d, Header { image, chunk_size }))
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.at
    }

    fn bad(&self, at: u64, what: &str) -> StreamError {
        StreamError::Bad {
            at,
            what: what.to_string(),
        }
    }

    fn read(&mut self, b: &mut [u8]) -> Result<(), StreamError> {
        self.read_raw(b)?;
        self.hash.update(b);
        Ok(())
    }

    fn read_raw(&mut self, b: &mut [u8]) -> Result<(), StreamError> {
        let at = self.at;
        self.r.read_exact(b).map_err(|source| match source.kind() {
            std::io::ErrorKind::UnexpectedEof => StreamError::Bad {
                at,
                what: "the stream ends early (sender stopped or this client dropped out)".into(),
            },
            _ => StreamError::Io { at, source },
        })?;
        self.at = self.at.saturating_add(b.len() as u64);
        Ok(())
    }

    /// The next item; after `Item::Manifest` the stream is complete and checked.
    pub fn next_item(&mut self) -> Result<Item, StreamError> {
        if self.done {
            return Err(self.bad(self.at, "read past the end of the stream"));
        }
        let start = self.at;
        let mut tag = [0u8; 4];
        self.read(&mut tag)?;
        if &tag == RECORD {
            return self.record(start).map(Item::Record);
        }
        if &tag != MANIFEST {
            return Err(self.bad(start, "expected a record or the manifest"));
        }
        let mut l = [0u8; 4];
        self.read(&mut l)?;
        let len = le32(&l);
        if len > MAX_MANIFEST {
            return Err(self.bad(start, &format!("manifest of {len} bytes")));
        }
        let mut m = Vec::new();
        self.read_vec(&mut m, len)?;
        self.trailer()?;
        self.done = true;
        Ok(Item::Manifest(m))
    }

    /// Reads `len` bytes into `v`, growing it as they arrive (a lying length costs
    /// no more memory than the bytes actually sent).
    fn read_vec(&mut self, v: &mut Vec<u8>, len: u32) -> Result<(), StreamError> {
        let mut left = len as usize;
        while left > 0 {
            let n = left.min(1 << 20);
            let old = v.len();
            v.resize(old + n, 0);
            let (_, tail) = v.split_at_mut(old);
            self.read(tail)?;
            left -= n;
        }
        Ok(())
    }

    fn record(&mut self, start: u64) -> Result<PlainRecord, StreamError> {
        let mut h = [0u8; 48];
        self.read(&mut h)?;
        let mut id = [0u8; 32];
        id.copy_from_slice(&h[..32]);
        let raw_len = le32(&h[32..36]);
        let stored = le32(&h[36..40]);
        let compression = match h[40] {
            0 => Compression::None,
            1 => Compression::Zstd,
            c => return Err(self.bad(start, &format!("compression code {c}"))),
        };
        let members = le32(&h[44..48]);
        if raw_len > MAX_RAW || stored > MAX_STORED || members > MAX_MEMBERS {
            return Err(self.bad(
                start,
                &format!(
                    "record over the limits (raw {raw_len}, stored {stored}, {members} members)"
                ),
            ));
        }
        let mut lens = Vec::new();
        let mut sum = 0u64;
        for _ in 0..members {
            let mut l = [0u8; 4];
            self.read(&mut l)?;
            let l = le32(&l);
            sum = sum.saturating_add(u64::from(l));
            lens.push(l);
        }
        if members > 0 && sum != u64::from(raw_len) {
            return Err(self.bad(start, "member lengths do not add up to the raw length"));
        }
        let mut data = Vec::new();
        self.read_vec(&mut data, stored)?;
        self.counts.records = self.counts.records.saturating_add(1);
        self.counts.raw_bytes = self.counts.raw_bytes.saturating_add(u64::from(raw_len));
        self.counts.stored_bytes = self.counts.stored_bytes.saturating_add(u64::from(stored));
        Ok(PlainRecord {
            id: ChunkId(id),
            raw_len,
            compression,
            member_lens: lens,
            data,
        })
    }

    fn trailer(&mut self) -> Result<(), StreamError> {
        let start = self.at;
        let mut t = [0u8; 60];
        self.read_raw(&mut t)?;
        if &t[..4] != END {
            return Err(self.bad(start, "no trailer after the manifest"));
        }
        let got = Counts {
            records: le64(&t[4..12]),
            raw_bytes: le64(&t[12..20]),
            stored_bytes: le64(&t[20..28]),
        };
        if got != self.counts {
            return Err(self.bad(
                start,
                &format!("trailer counts {got:?}, the stream held {:?}", self.counts),
            ));
        }
        if self.hash.finalize().as_bytes() != &t[28..60] {
            return Err(self.bad(start, "checksum mismatch: the stream was damaged"));
        }
        Ok(())
    }
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b.get(..4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(a)
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(a)
}

/// Decodes a whole stream held in memory, discarding records (fuzz target, tests).
pub fn check_bytes(b: &[u8]) -> Result<(Header, Counts), StreamError> {
    let (mut d, h) = Decoder::new(b)?;
    loop {
        if let Item::Manifest(_) = d.next_item()? {
            return Ok((h, d.counts));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let h = Header {
            image: "pc".into(),
            chunk_size: 1 << 20,
        };
        let mut e = Encoder::new(Vec::new(), &h).unwrap();
        for i in 0..3u8 {
            e.record(&PlainRecord {
                id: ChunkId([i; 32]),
                raw_len: 8,
                compression: Compression::None,
                member_lens: if i == 1 { vec![3, 5] } else { vec![] },
                data: vec![i; 8],
            })
            .unwrap();
        }
        let (v, c, len) = e.finish(b"manifest").unwrap();
        assert_eq!(c.records, 3);
        assert_eq!(len, v.len() as u64);
        v
    }

    #[test]
    fn roundtrip() {
        let v = sample();
        let (mut d, h) = Decoder::new(&v[..]).unwrap();
        assert_eq!(h.image, "pc");
        let mut n = 0;
        loop {
            match d.next_item().unwrap() {
                Item::Record(r) => {
                    assert_eq!(r.data, vec![n as u8; 8]);
                    n += 1;
                }
                Item::Manifest(m) => {
                    assert_eq!(m, b"manifest");
                    break;
                }
            }
        }
        assert_eq!(n, 3);
        assert!(d.next_item().is_err());
    }

    #[test]
    fn every_flipped_byte_and_every_cut_is_an_error() {
        let v = sample();
        for i in 0..v.len() {
            let mut b = v.clone();
            b[i] ^= 0x40;
            assert!(check_bytes(&b).is_err(), "byte {i} flipped was accepted");
            assert!(check_bytes(&v[..i]).is_err(), "cut at {i} was accepted");
        }
        assert!(check_bytes(&v).is_ok());
    }

    #[test]
    fn huge_lengths_are_refused_before_allocating() {
        let mut v = sample();
        // The first record's stored length (header 18 + "pc" + tag 4 + id 32 + raw 4).
        let at = 20 + 4 + 32 + 4;
        v[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = check_bytes(&v).unwrap_err().to_string();
        assert!(e.contains("over the limits"), "{e}");
    }
}

//! A sealed object written as it is produced (a manifest of millions of chunks is never
//! held whole to be sealed in one piece): a STREAM-like segmented construction.
//!
//! ```text
//! header:   "ICSTREAM" (8) | version u8 = 1 | 0 0 0 | segment u32 | nonce prefix (16)
//! segments: ciphertext ‖ tag (16), each of `segment` plaintext bytes but the last,
//!           which holds 1..=segment (0 only when the whole plaintext is empty)
//! ```
//!
//! Segment `i` is XChaCha20-Poly1305 with nonce = prefix ‖ i (u64 LE) and an AAD
//! naming the object, `i`, whether it is the last segment, and the segment size
//! (`Aad::stream_segment`). The counter in the nonce and AAD makes a reordered or
//! spliced segment fail; the last flag makes a stream cut after any segment fail
//! (the segment that now ends it was sealed as not last), and a stream with
//! segments appended fails the same way at the old last one. The prefix is random per
//! object (16 bytes: a repeat across objects is negligible, and within one object
//! the counter never repeats), so no nonce is ever used twice under the key.

use super::aad::Aad;
use super::error::CryptoError;
use super::seal::TAG_LEN;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use std::io::{self, Write};

pub const MAGIC: &[u8; 8] = b"ICSTREAM";
const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 32;
/// The segment size a backup writes: the buffer it holds, and 16 bytes per MiB.
pub const SEGMENT: u32 = 1 << 20;
/// Segment sizes a reader accepts (a damaged header must not make it allocate much).
const MIN_SEGMENT: u32 = 16;
const MAX_SEGMENT: u32 = 16 << 20;

/// What a stream object seals: the AAD of segment `index`.
pub type SegmentAad<'a> = dyn Fn(u64, bool, u32) -> Aad + 'a;

fn nonce(prefix: &[u8; 16], index: u64) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..16].copy_from_slice(prefix);
    n[16..].copy_from_slice(&index.to_le_bytes());
    n
}

/// Whether `bytes` is a stream object (an older one-piece object starts with its
/// random nonce: 2^-64 of them would start with the magic, and are still opened by
/// the caller's fallback).
pub fn is_stream(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Seals what is written to it, a segment at a time, into `out`.
pub struct StreamSealer<'a, W: Write> {
    cipher: XChaCha20Poly1305,
    aad: Box<SegmentAad<'a>>,
    prefix: [u8; 16],
    segment: u32,
    index: u64,
    buf: Vec<u8>,
    out: W,
}

impl<'a, W: Write> StreamSealer<'a, W> {
    /// Writes the header; `prefix` is random unless given (known-answer tests).
    pub fn new(
        key: &[u8; 32],
        aad: Box<SegmentAad<'a>>,
        segment: u32,
        prefix: Option<[u8; 16]>,
        mut out: W,
    ) -> Result<Self, CryptoError> {
        let prefix = match prefix {
            Some(p) => p,
            None => {
                let mut p = [0u8; 16];
                getrandom::fill(&mut p).map_err(|e| CryptoError::Random(e.to_string()))?;
                p
            }
        };
        let segment = segment.clamp(MIN_SEGMENT, MAX_SEGMENT);
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(MAGIC);
        header[8] = VERSION;
        header[12..16].copy_from_slice(&segment.to_le_bytes());
        header[16..].copy_from_slice(&prefix);
        out.write_all(&header)
            .map_err(|e| CryptoError::Write(e.to_string()))?;
        Ok(StreamSealer {
            cipher: XChaCha20Poly1305::new(key.into()),
            aad,
            prefix,
            segment,
            index: 0,
            buf: Vec::with_capacity(segment as usize + TAG_LEN),
            out,
        })
    }

    fn seal_segment(&mut self, last: bool) -> io::Result<()> {
        let aad = (self.aad)(self.index, last, self.segment);
        let n = nonce(&self.prefix, self.index);
        let tag = self
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(&n), aad.bytes(), &mut self.buf)
            .map_err(|_| io::Error::other(CryptoError::Seal))?;
        self.buf.extend_from_slice(&tag);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| io::Error::other("stream segment counter overflow"))?;
        Ok(())
    }

    /// Seals the last segment; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_segment(true)?;
        Ok(self.out)
    }
}

impl<W: Write> Write for StreamSealer<'_, W> {
    fn write(&mut self, mut b: &[u8]) -> io::Result<usize> {
        let n = b.len();
        while !b.is_empty() {
            // A full segment is sealed only once more bytes come: the last one must
            // be known as last.
            if self.buf.len() == self.segment as usize {
                self.seal_segment(false)?;
            }
            let room = self.segment as usize - self.buf.len();
            let (now, rest) = b.split_at(room.min(b.len()));
            self.buf.extend_from_slice(now);
            b = rest;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A stream object's header and the shape of its body.
struct Shape {
    segment: u32,
    prefix: [u8; 16],
    /// Sealed segments, and the sealed length of the last.
    count: usize,
    last_len: usize,
}

impl Shape {
    fn sealed_seg(&self) -> usize {
        self.segment as usize + TAG_LEN
    }
}

fn shape(header: &[u8; HEADER_LEN], body_len: u64) -> Result<Shape, CryptoError> {
    let bad = |what: String| CryptoError::BadStream(what);
    if &header[..8] != MAGIC {
        return Err(bad("no stream header".into()));
    }
    if header[8] != VERSION || header[9..12] != [0, 0, 0] {
        return Err(bad(format!("unknown stream version {}", header[8])));
    }
    let mut s = [0u8; 4];
    s.copy_from_slice(&header[12..16]);
    let segment = u32::from_le_bytes(s);
    if !(MIN_SEGMENT..=MAX_SEGMENT).contains(&segment) {
        return Err(bad(format!("segment size {segment} out of range")));
    }
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&header[16..]);
    let sealed_seg = segment as u64 + TAG_LEN as u64;
    // Every segment but the last is full; the last holds at least its tag.
    let count = body_len.div_ceil(sealed_seg).max(1);
    let last_len = body_len - (count - 1) * sealed_seg;
    let count = usize::try_from(count).map_err(|_| bad(format!("{body_len} bytes")))?;
    if last_len < TAG_LEN as u64 {
        return Err(bad(format!(
            "{body_len} bytes after the header do not end in a whole segment"
        )));
    }
    Ok(Shape {
        segment,
        prefix,
        count,
        last_len: last_len as usize,
    })
}

/// The plaintext of stream object `sealed`; the error names the segment that fails.
pub fn open(key: &[u8; 32], aad: &SegmentAad<'_>, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let bad = |what: String| CryptoError::BadStream(what);
    let Some((header, body)) = sealed.split_first_chunk::<HEADER_LEN>() else {
        return Err(bad(format!(
            "{} bytes, shorter than its header",
            sealed.len()
        )));
    };
    let Shape {
        segment,
        prefix,
        count,
        ..
    } = shape(header, body.len() as u64)?;
    let sealed_seg = segment as usize + TAG_LEN;
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut out = Vec::with_capacity(body.len() - count * TAG_LEN);
    for (i, seg) in body.chunks(sealed_seg).enumerate() {
        let last = i + 1 == count;
        let (ct, tag) = seg.split_at(seg.len() - TAG_LEN);
        let start = out.len();
        out.extend_from_slice(ct);
        let aad = aad(i as u64, last, segment);
        if let Err(e) = open_segment(&cipher, &prefix, &aad, (i, count), &mut out[start..], tag) {
            // Nothing of an unauthenticated plaintext leaves this function.
            out.clear();
            return Err(e);
        }
    }
    Ok(out)
}

/// Opens segment `at.0` of `at.1` in place (`buf`, its ciphertext, with its `tag`).
fn open_segment(
    cipher: &XChaCha20Poly1305,
    prefix: &[u8; 16],
    aad: &Aad,
    at: (usize, usize),
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), CryptoError> {
    let (i, count) = at;
    let n = nonce(prefix, i as u64);
    cipher
        .decrypt_in_place_detached(
            XNonce::from_slice(&n),
            aad.bytes(),
            buf,
            Tag::from_slice(tag),
        )
        .map_err(|_| CryptoError::Segment {
            number: i + 1,
            count,
        })
}

/// Fills a buffer from a sealed object's bytes at an offset.
pub type ReadAt<'a> = Box<dyn FnMut(&mut [u8], u64) -> io::Result<()> + 'a>;

/// Reads a stream object's plaintext a segment at a time (a 1 TB image's manifest is
/// hundreds of MB: `open` would hold it twice). `read_at` fills a buffer from the
/// sealed object's bytes at an offset. No byte of a segment is handed out before its
/// tag is checked, and the object's end is checked by the last segment's flag, as in
/// `open`: a reader sees an error, never a plaintext cut short.
pub struct Opener<'a> {
    cipher: XChaCha20Poly1305,
    aad: Box<SegmentAad<'a>>,
    read_at: ReadAt<'a>,
    shape: Shape,
    /// The next segment to open.
    next: usize,
    plain: Vec<u8>,
    pos: usize,
}

impl<'a> Opener<'a> {
    /// An opener of the `len`-byte stream object that `read_at` reads, whose first
    /// `HEADER_LEN` bytes the caller read (to tell a stream from a one-piece object).
    pub fn new(
        key: &[u8; 32],
        aad: Box<SegmentAad<'a>>,
        len: u64,
        header: &[u8; HEADER_LEN],
        read_at: ReadAt<'a>,
    ) -> Result<Opener<'a>, CryptoError> {
        let Some(body_len) = len.checked_sub(HEADER_LEN as u64) else {
            return Err(CryptoError::BadStream(format!(
                "{len} bytes, shorter than its header"
            )));
        };
        let shape = shape(header, body_len)?;
        Ok(Opener {
            cipher: XChaCha20Poly1305::new(key.into()),
            aad,
            read_at,
            shape,
            next: 0,
            plain: Vec::new(),
            pos: 0,
        })
    }

    fn open_next(&mut self) -> io::Result<()> {
        let i = self.next;
        let count = self.shape.count;
        let last = i + 1 == count;
        let sealed_seg = self.shape.sealed_seg();
        let len = if last {
            self.shape.last_len
        } else {
            sealed_seg
        };
        let at = (HEADER_LEN as u64).saturating_add((i as u64).saturating_mul(sealed_seg as u64));
        self.plain.resize(len, 0);
        (self.read_at)(&mut self.plain, at)?;
        let tag_at = len - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&self.plain[tag_at..]);
        self.plain.truncate(tag_at);
        let aad = (self.aad)(i as u64, last, self.shape.segment);
        let at = (i, count);
        let opened = open_segment(
            &self.cipher,
            &self.shape.prefix,
            &aad,
            at,
            &mut self.plain,
            &tag,
        );
        self.pos = 0;
        if let Err(e) = opened {
            self.plain.clear();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        self.next += 1;
        Ok(())
    }
}

impl io::Read for Opener<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.plain.len() {
            if self.next >= self.shape.count {
                return Ok(0);
            }
            self.open_next()?;
        }
        let n = buf.len().min(self.plain.len() - self.pos);
        buf[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

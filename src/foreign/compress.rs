//! Decompression chosen by the stream's first bytes, as Clonezilla names its
//! compressor only in the file name and users rename files. Every decoder accepts
//! concatenated frames or members, which the parallel compressors (pzstd, pigz, pixz,
//! pbzip2, plzip) write. zstd, gzip, xz, lzma, bzip2 and lz4 are decoded in process;
//! lzop, lzip and lrzip by their own tools (tool_decode.rs).

use super::error::SourceError;
use super::tool_decode::{self, ToolReader};
use super::volumes::{self, Volumes};
use std::io::{self, BufReader, Cursor, Read};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
    Gzip,
    Xz,
    Bzip2,
    Lz4,
    /// The legacy `.lzma` ("lzma alone") format: Clonezilla's `-z4`.
    Lzma,
    Lzop,
    Lzip,
    Lrzip,
}

/// Known magics we do not decode, named in the refusal.
const UNSUPPORTED: &[(&[u8], &str)] = &[(b"\x02\x21\x4c\x18", "lz4 legacy")];

/// Bytes of a stream's start that `detect` looks at (the lzma header's length).
const HEAD: usize = 13;

/// The compression of a stream starting with `head` (at least HEAD bytes when the
/// stream has them); `Err(name)` for a known compressor we cannot decode.
pub fn detect(head: &[u8]) -> Result<Compression, &'static str> {
    if head.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        return Ok(Compression::Zstd);
    }
    if head.starts_with(&[0x1F, 0x8B]) {
        return Ok(Compression::Gzip);
    }
    if head.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
        return Ok(Compression::Xz);
    }
    if head.starts_with(b"BZh") {
        return Ok(Compression::Bzip2);
    }
    if head.starts_with(&[0x04, 0x22, 0x4D, 0x18]) {
        return Ok(Compression::Lz4);
    }
    if head.starts_with(b"\x89LZO\x00\r\n\x1a\n") {
        return Ok(Compression::Lzop);
    }
    if head.starts_with(b"LZIP") {
        return Ok(Compression::Lzip);
    }
    if head.starts_with(b"LRZI") {
        return Ok(Compression::Lrzip);
    }
    // The lzma format has no magic. What xz-utils' `lzma`, fed from a pipe as
    // Clonezilla does, writes: its default properties byte (lc=3 lp=0 pb=2), a
    // dictionary size, and "size unknown" (eight 0xFF). A raw image starting so is
    // not a filesystem any of the readers take.
    if head.len() >= HEAD && head[0] == 0x5D && head[5..HEAD].iter().all(|&b| b == 0xFF) {
        return Ok(Compression::Lzma);
    }
    match UNSUPPORTED.iter().find(|(m, _)| head.starts_with(m)) {
        Some((_, name)) => Err(name),
        None => Ok(Compression::None),
    }
}

/// `reader` decompressed according to its first bytes; `path` names it in errors.
pub fn decompressed<R: Read + Send + 'static>(
    path: &Path,
    mut reader: R,
) -> Result<(Compression, Box<dyn Read + Send>), SourceError> {
    let mut head = [0u8; HEAD];
    let mut got = 0;
    while let Some(rest) = head.get_mut(got..).filter(|r| !r.is_empty()) {
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(SourceError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
    let head = head.get(..got).unwrap_or_default().to_vec();
    let kind = detect(&head).map_err(|format| SourceError::Unsupported {
        path: path.to_path_buf(),
        format,
    })?;
    let whole = BufReader::with_capacity(1 << 20, Cursor::new(head).chain(reader));
    let out: Box<dyn Read + Send> = match kind {
        Compression::None => Box::new(whole),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(whole).map_err(
            |source| SourceError::Io {
                path: path.to_path_buf(),
                source,
            },
        )?),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(whole)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(whole)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(whole)),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(whole)),
        Compression::Lzma => {
            let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX).map_err(|e| {
                SourceError::Io {
                    path: path.to_path_buf(),
                    source: e.into(),
                }
            })?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(whole, stream))
        }
        Compression::Lzop | Compression::Lzip | Compression::Lrzip => {
            let tool = match kind {
                Compression::Lzop => tool_decode::LZOP,
                Compression::Lzip => tool_decode::LZIP,
                _ => tool_decode::LRZIP,
            };
            let r = ToolReader::spawn(tool, Box::new(whole)).map_err(|source| SourceError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            Box::new(r)
        }
    };
    Ok((kind, out))
}

/// An image file (or its split volumes) as one decompressed stream, with the name to
/// use for it in messages.
pub fn open_image(path: &Path) -> Result<(String, Compression, Box<dyn Read + Send>), SourceError> {
    let paths = volumes::find(path)?;
    let name = match paths.as_slice() {
        [one] => one.display().to_string(),
        many => format!("{} ({} split volumes .aa..)", path.display(), many.len()),
    };
    let (kind, r) = decompressed(path, Volumes::open(paths))?;
    // Decompression gets its own thread: the partclone and ntfsclone readers (CRC,
    // placing blocks) then run beside it instead of after it, block by block.
    let r: Box<dyn Read + Send> = match kind {
        Compression::None => r,
        _ => Box::new(ReadAhead::spawn(r)),
    };
    Ok((name, kind, r))
}

/// Buffers decoded ahead by the decompressing thread.
const AHEAD_BUFFERS: usize = 8;
const AHEAD_BYTES: usize = 1 << 20;

/// A stream read by a thread of its own into 1 MiB buffers, handed over through a
/// bounded channel. The thread ends at the stream's end, at its first error (passed
/// on to the reader) or when the reader is dropped (its next send fails). Used
/// buffers go back to the thread to be filled again: a fresh 1 MiB buffer per MiB
/// decoded is a map, 256 page faults and an unmap each (musl maps every large
/// allocation), a measurable part of a partition image's decode.
pub struct ReadAhead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    pub fn spawn(mut inner: Box<dyn Read + Send>) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(AHEAD_BUFFERS);
        let (back, used) = std::sync::mpsc::sync_channel::<Vec<u8>>(AHEAD_BUFFERS + 2);
        std::thread::spawn(move || loop {
            let mut buf = used.try_recv().unwrap_or_default();
            buf.resize(AHEAD_BYTES, 0);
            let mut got = 0;
            let res = loop {
                match buf.get_mut(got..).filter(|r| !r.is_empty()) {
                    None => break Ok(()),
                    Some(rest) => match inner.read(rest) {
                        Ok(0) => break Ok(()),
                        Ok(n) => got += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    },
                }
            };
            buf.truncate(got);
            let last = got == 0 || res.is_err();
            if got > 0 && tx.send(Ok(buf)).is_err() {
                return;
            }
            if let Err(e) = res {
                let _ = tx.send(Err(e));
            }
            if last {
                return;
            }
        });
        ReadAhead {
            rx,
            back,
            cur: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(buf)) => {
                    let used = std::mem::replace(&mut self.cur, buf);
                    // Full or gone: the buffer is just freed.
                    let _ = self.back.try_send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The thread ended after the last buffer.
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let avail = self.cur.get(self.pos..).unwrap_or_default();
        let n = avail.len().min(out.len());
        out.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(avail.get(..n).unwrap_or_default());
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that gives `good` bytes in odd-sized reads, then fails.
    struct Failing {
        left: usize,
    }

    impl Read for Failing {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("disk gone"));
            }
            let n = out.len().min(self.left).min(777);
            out.get_mut(..n).unwrap_or_default().fill(7);
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn read_ahead_passes_bytes_in_order_then_the_end() {
        let data: Vec<u8> = (0..3_000_001u32).map(|i| (i % 253) as u8).collect();
        let mut r = ReadAhead::spawn(Box::new(Cursor::new(data.clone())));
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert!(got == data);
        assert_eq!(r.read(&mut [0u8; 10]).unwrap(), 0);
    }

    #[test]
    fn read_ahead_passes_the_error_after_the_good_bytes() {
        let mut r = ReadAhead::spawn(Box::new(Failing { left: 2_500_000 }));
        let mut got = vec![0u8; 2_500_000];
        r.read_exact(&mut got).unwrap();
        let e = r.read(&mut [0u8; 10]).unwrap_err();
        assert_eq!(e.to_string(), "disk gone");
    }
}

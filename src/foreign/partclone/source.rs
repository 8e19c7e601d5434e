//! The image stream as partclone's structures are read from it: counts the bytes taken
//! so every error can say where, and turns a short read into `Truncated` naming the
//! structure that was cut.

use super::error::PartcloneError;
use std::io::{ErrorKind, Read};

pub struct Source<R> {
    inner: R,
    file: String,
    offset: u64,
}

impl<R: Read> Source<R> {
    pub fn new(file: String, inner: R) -> Self {
        Self {
            inner,
            file,
            offset: 0,
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Bytes consumed so far: the image offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn read_exact(
        &mut self,
        buf: &mut [u8],
        structure: &dyn Fn() -> String,
    ) -> Result<(), PartcloneError> {
        let mut done = 0usize;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            match self.inner.read(rest) {
                Ok(0) => {
                    return Err(PartcloneError::Truncated {
                        file: self.file.clone(),
                        structure: structure(),
                        offset: self.offset,
                    })
                }
                Ok(n) => {
                    done += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    return Err(PartcloneError::Truncated {
                        file: self.file.clone(),
                        structure: structure(),
                        offset: self.offset,
                    })
                }
                Err(source) => {
                    return Err(PartcloneError::Io {
                        file: self.file.clone(),
                        structure: structure(),
                        offset: self.offset,
                        source,
                    })
                }
            }
        }
        Ok(())
    }
}

//! The data area: the used blocks in block order, a checksum after every
//! `blocks_per_checksum` of them and one more after a final partial group (partclone's
//! clone loop in src/main.c). Every checksum is checked as its group completes, so a
//! caller that consumes the whole stream has verified the whole image.

use super::bitmap::Bitmap;
use super::checksum::{hex, Running};
use super::error::PartcloneError;
use super::header::{ChecksumMode, Header};
use super::source::Source;
use std::io::Read;

pub struct Blocks<R> {
    src: Source<R>,
    mode: ChecksumMode,
    checksum_size: usize,
    per_group: u32,
    reseed: bool,
    block_size: usize,
    /// Where the search for the next used block starts.
    cursor: u64,
    running: Running,
    in_group: u32,
    group_first: u64,
    last_block: u64,
    finished: bool,
}

impl<R: Read> Blocks<R> {
    pub fn new(src: Source<R>, h: &Header) -> Self {
        Self {
            src,
            mode: h.checksum_mode,
            checksum_size: usize::from(h.checksum_size),
            per_group: h.blocks_per_checksum,
            reseed: h.reseed,
            // Header::check_geometry bounds this to 16 MiB.
            block_size: usize::try_from(h.block_size).unwrap_or(0),
            cursor: 0,
            running: Running::new(h.checksum_mode),
            in_group: 0,
            group_first: 0,
            last_block: 0,
            finished: false,
        }
    }

    /// Image bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.src.offset()
    }

    /// Reads the next used block into `buf` (exactly one block long) and returns its
    /// block number; `None` once every used block was read and the last checksum checked.
    pub fn next_block(
        &mut self,
        bitmap: &Bitmap,
        buf: &mut [u8],
    ) -> Result<Option<u64>, PartcloneError> {
        if self.finished {
            return Ok(None);
        }
        let Some(block) = bitmap.next_used(self.cursor) else {
            self.finished = true;
            if self.in_group > 0 {
                self.check_group()?;
            }
            return Ok(None);
        };
        let out = buf.get_mut(..self.block_size).unwrap_or_default();
        self.src
            .read_exact(out, &|| format!("data of block {block}"))?;
        if self.in_group == 0 {
            self.group_first = block;
        }
        self.last_block = block;
        self.cursor = block + 1;
        if self.mode != ChecksumMode::None {
            self.running.update(out);
            self.in_group += 1;
            if self.in_group == self.per_group {
                self.check_group()?;
            }
        }
        Ok(Some(block))
    }

    fn check_group(&mut self) -> Result<(), PartcloneError> {
        let at = self.src.offset();
        let mut stored = vec![0u8; self.checksum_size];
        let (first, last) = (self.group_first, self.last_block);
        self.src.read_exact(&mut stored, &|| {
            format!("checksum of blocks {first}..={last}")
        })?;
        let computed = self.running.finish();
        if stored != computed {
            return Err(PartcloneError::DataChecksum {
                file: self.src.file().to_string(),
                mode: self.mode.name(),
                offset: at,
                first_block: first,
                last_block: last,
                stored: hex(&stored),
                computed: hex(&computed),
            });
        }
        self.in_group = 0;
        if self.reseed {
            self.running = Running::new(self.mode);
        }
        Ok(())
    }
}

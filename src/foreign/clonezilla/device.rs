//! A Clonezilla savedisk image read as the disk it was saved from, without rebuilding
//! that disk anywhere: the boot areas and table come from a sparse file that holds only
//! them (a few KiB allocated), each partition's bytes from its image, decoded on
//! demand. So the planner reads the table and the filesystems' metadata, and a restore
//! or an import then reads the used blocks in ascending order, which is one sequential
//! decode straight into the target or the backup pipeline: the used data is never
//! written to a scratch disk and read back.
//!
//! Partition images are single compressed streams that cannot be entered in the
//! middle, so each partition keeps one decoder and where it stands. A read at or after
//! that point moves the decoder forward (the runs passed over are dropped); a read
//! before it starts the decoder again from the image's start (`restarts` counts
//! those: the planner's reads jump around the metadata, a restore's copy and an
//! import's backup each cost one). Small reads (the planner's) are also kept, up to
//! CACHE_BYTES, so reading the same metadata twice does not start a decode again.
//! Blocks the image does not hold (free blocks, past the filesystem) read as zeros, as
//! they were holes in the scratch disk.
//!
//! A damaged image shows up as a read error naming the image file and the partition;
//! it is not a media error, so the backup's rescue reader does not zero-fill it.

use super::assemble::{placement, poll, single_layout, table_disk, AssembleError, PartDone};
use super::kept::{Budget, Kept};
use super::lvm_place;
use super::stream::PartStream;
use super::{ClonezillaImage, PartImage};
use crate::device::{Access, BlockDevice, DeviceError};
use crate::progress::Progress;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

// Opening a saveparts image's PV alone (`ImageDevice::open_pv`).
#[path = "device_pv.rs"]
mod pv;
// LUKS partitions: the header file and the plaintext's own device.
#[path = "device_luks.rs"]
mod luks;

/// Reads up to this long are kept for reading again.
const CACHE_READ: usize = 1 << 20;
/// The most bytes kept per partition; the cache starts over when full.
const CACHE_BYTES: usize = 256 << 20;

/// One partition, or one segment of an LVM LV: its place on the disk and its decoder.
struct Slot {
    image: PartImage,
    offset: u64,
    len: u64,
    /// Where the slot starts in what the image holds (an LV segment's place in its LV;
    /// 0 for a partition), and that whole's length.
    base: u64,
    whole: u64,
    /// Its decoded runs are kept (`kept.rs`): a partition, or an LV in one segment
    /// (a segment of a longer LV decodes runs outside itself).
    keeps: bool,
    /// A LUKS partition: read from its header file, never decoded (device_luks.rs).
    header: Option<super::luks::HeaderFile>,
    cursor: Mutex<Cursor>,
}

#[derive(Default)]
struct Cursor {
    stream: Option<PartStream>,
    /// Everything before this partition offset has been handed out by `stream`.
    pos: u64,
    /// The last run read but not used up: its offset (its bytes are in `buf`).
    pending: Option<u64>,
    buf: Vec<u8>,
    cache: BTreeMap<u64, Vec<u8>>,
    cached: usize,
    /// Bytes of runs `stream` has handed out since it started.
    used: u64,
    /// The decoded runs kept while planning and checking.
    kept: Kept,
    /// A decoder started again past a budget overrun, moving to `kept.upto()` on a
    /// thread of its own while the kept part is copied (`end_planning`).
    ahead: Option<std::thread::JoinHandle<Result<Ahead, AssembleError>>>,
}

/// A decoder moved forward to where the kept runs end: what `Cursor` holds of it.
struct Ahead {
    stream: PartStream,
    pos: u64,
    pending: Option<u64>,
    buf: Vec<u8>,
    used: u64,
}

/// Opens `image` again and reads runs until the first that starts at or after `upto`
/// (left pending in `buf`): the kept runs hold everything before.
fn decode_to(
    image: &PartImage,
    whole: u64,
    upto: u64,
    cancel: &AtomicBool,
) -> Result<Ahead, AssembleError> {
    let mut a = Ahead {
        stream: PartStream::open(image, whole)?,
        pos: 0,
        pending: None,
        buf: Vec::new(),
        used: 0,
    };
    while let Some(run) = a.stream.next_run(&mut a.buf)? {
        poll(cancel, image)?;
        a.used += a.buf.len() as u64;
        if run >= upto {
            a.pending = Some(run);
            a.pos = run;
            return Ok(a);
        }
        a.pos = run + a.buf.len() as u64;
    }
    Ok(a)
}

/// The disk of a Clonezilla savedisk image, read-only.
pub struct ImageDevice {
    name: String,
    table: File,
    table_path: PathBuf,
    size: u64,
    sector: u32,
    /// Sorted by offset.
    slots: Vec<Slot>,
    restarts: AtomicU64,
    /// Small reads and decoded runs are kept while this is set (see `end_planning`).
    planning: AtomicBool,
    /// What the partitions' kept runs may take.
    budget: Budget,
    /// Set by a Ctrl-C (`cancel_with`): every decode stops at its next run.
    cancel: Arc<AtomicBool>,
    /// Each LUKS partition's plaintext (device_luks.rs).
    inner: Vec<luks::Inner>,
}

impl ImageDevice {
    /// Opens `img`'s disk; the table's sparse file goes to `scratch` (a new name there,
    /// removed when the device is dropped).
    pub fn open(img: &ClonezillaImage, scratch: &Path) -> Result<Self, AssembleError> {
        Self::open_with_budget(img, scratch, Budget::from_env())
    }

    /// `open`, keeping at most `budget` bytes of decoded runs.
    pub fn open_with_budget(
        img: &ClonezillaImage,
        scratch: &Path,
        budget: Budget,
    ) -> Result<Self, AssembleError> {
        let layout = single_layout(img)?;
        let (table, size) = table_disk(img, layout, scratch)?;
        let mut dev = ImageDevice {
            name: format!("Clonezilla image {}", img.dir.display()),
            table,
            table_path: scratch.to_path_buf(),
            size,
            sector: layout.table.sector_size,
            slots: Vec::new(),
            restarts: AtomicU64::new(0),
            planning: AtomicBool::new(true),
            budget,
            cancel: Arc::new(AtomicBool::new(false)),
            inner: Vec::new(),
        };
        for p in &img.partitions {
            let (offset, len) = placement(img, layout, p, size)?;
            dev.slots.push(Slot {
                image: p.clone(),
                offset,
                len,
                base: 0,
                whole: len,
                keeps: true,
                header: None,
                cursor: Mutex::new(Cursor::default()),
            });
        }
        dev.add_luks(img, layout, size, scratch)?;
        // A physical volume: lvm2's label and metadata in the table's file, its LVs'
        // segments as slots (lvm_place.rs).
        let pvs = lvm_place::place(img, layout, size)?;
        dev.add_pvs(pvs, scratch)?;
        Ok(dev)
    }

    /// Decodes stop at their next run once `cancel` is set: reads then fail, and the
    /// check (`check_all`) ends with `AssembleError::Cancelled`. An import's planning
    /// and check decode whole partition images before anything is stored; without
    /// this a Ctrl-C there waited for them (a second one ended the process, leaving
    /// its scratch files).
    pub fn cancel_with(mut self, cancel: Arc<AtomicBool>) -> Self {
        for i in &mut self.inner {
            if let Some(d) = Arc::get_mut(&mut i.dev) {
                d.cancel = Arc::clone(&cancel);
            }
        }
        self.cancel = cancel;
        self
    }

    /// Ends the planner's small-read cache and frees it: the bulk reads that follow
    /// (a restore's copy, an import's backup) pass each byte once, and keeping the
    /// backup's small pieces cost a copy of each and up to CACHE_BYTES per partition.
    /// The decoded runs kept so far stay (the bulk reads take them from memory), but
    /// no more are kept: what comes after them is read once.
    ///
    /// A partition whose decoder has ended (the check ran) with only part of it kept
    /// (the budget ran out) starts its second decode now, on a thread of its own: it
    /// passes the kept prefix while the copy writes that prefix from memory, so the
    /// copy finds it at the first byte not kept instead of waiting for it there.
    pub fn end_planning(&self) {
        self.inner_devices().for_each(Self::end_planning);
        self.planning.store(false, Ordering::Relaxed);
        for slot in &self.slots {
            if let Ok(mut c) = slot.cursor.lock() {
                c.cache = BTreeMap::new();
                c.cached = 0;
                c.kept.stop();
                let upto = c.kept.upto();
                if slot.keeps && c.pos == u64::MAX && !c.kept.complete() && c.ahead.is_none() {
                    self.restarts.fetch_add(1, Ordering::Relaxed);
                    let (image, whole) = (slot.image.clone(), slot.whole);
                    let cancel = Arc::clone(&self.cancel);
                    c.ahead = Some(std::thread::spawn(move || {
                        decode_to(&image, whole, upto, &cancel)
                    }));
                }
            }
        }
        self.budget.stop_making();
    }

    /// Bytes of decoded runs held in memory, and whether every kept partition is
    /// held whole (then a restore's copy or an import's backup decodes nothing again).
    pub fn kept(&self) -> (u64, bool) {
        let (mut bytes, mut whole) = self
            .inner_devices()
            .map(Self::kept)
            .fold((0, true), |(b, w), (ib, iw)| (b + ib, w && iw));
        for slot in self.slots.iter().filter(|s| s.keeps) {
            if let Ok(c) = slot.cursor.lock() {
                bytes += c.kept.bytes();
                whole &= c.kept.complete();
            }
        }
        (bytes, whole)
    }

    /// Frees the kept runs (after the copy or the backup that needed them).
    pub fn release_kept(&self) {
        self.inner_devices().for_each(Self::release_kept);
        self.budget.stop_making();
        for slot in &self.slots {
            if let Ok(mut c) = slot.cursor.lock() {
                c.kept.release(&self.budget);
            }
        }
    }

    /// How many times a partition's decode started over (see the module comment).
    pub fn restarts(&self) -> u64 {
        let inner: u64 = self.inner_devices().map(Self::restarts).sum();
        self.restarts.load(Ordering::Relaxed) + inner
    }

    fn query(&self, what: String) -> DeviceError {
        DeviceError::Query {
            device: self.name.clone(),
            what,
        }
    }

    /// Fills `out` with partition bytes `[at, at + out.len())` of `slot`.
    fn read_part(&self, slot: &Slot, at: u64, out: &mut [u8]) -> Result<(), DeviceError> {
        let mut c = slot
            .cursor
            .lock()
            .map_err(|_| self.query(format!("partition {}: a reader failed", slot.image.part)))?;
        // What the kept runs hold comes from memory; only the rest needs the decoder.
        let upto = c.kept.upto();
        let (at, out) = if at < upto {
            let n = usize::try_from(upto - at).map_or(out.len(), |n| n.min(out.len()));
            let (head, tail) = out.split_at_mut(n);
            c.kept.read(at, head);
            if tail.is_empty() {
                return Ok(());
            }
            (upto, tail)
        } else {
            (at, out)
        };
        let end = at + out.len() as u64;
        let keeping = slot.keeps && self.planning.load(Ordering::Relaxed);
        if let Some((&from, data)) = c.cache.range(..=at).next_back() {
            let off = (at - from) as usize;
            if let Some(src) = data.get(off..off + out.len()) {
                out.copy_from_slice(src);
                return Ok(());
            }
        }
        if let Some(h) = c.ahead.take() {
            let a = h
                .join()
                .map_err(|_| {
                    self.query(format!("partition {}: a decoder failed", slot.image.part))
                })?
                .map_err(|e| self.bad(e))?;
            c.stream = Some(a.stream);
            c.pos = a.pos;
            c.pending = a.pending;
            c.buf = a.buf;
            c.used = a.used;
        }
        if c.stream.is_none() || at < c.pos {
            if c.stream.is_some() {
                self.restarts.fetch_add(1, Ordering::Relaxed);
            }
            // Drops the old decoder first: its read-ahead thread ends with it.
            c.stream = None;
            c.stream = Some(PartStream::open(&slot.image, slot.whole).map_err(|e| self.bad(e))?);
            c.pos = 0;
            c.pending = None;
            c.used = 0;
        }
        out.fill(0);
        let Cursor {
            stream,
            pos,
            pending,
            buf,
            used,
            kept,
            ..
        } = &mut *c;
        let Some(stream) = stream.as_mut() else {
            return Ok(());
        };
        loop {
            let run = match pending.take() {
                Some(r) => r,
                None => match stream.next_run(buf).map_err(|e| self.bad(e))? {
                    Some(r) => {
                        poll(&self.cancel, &slot.image).map_err(|e| self.bad(e))?;
                        *used += buf.len() as u64;
                        if keeping {
                            kept.keep(r, buf, &self.budget);
                        }
                        r
                    }
                    None => {
                        if keeping {
                            kept.finish();
                        }
                        break;
                    }
                },
            };
            let run_end = run + buf.len() as u64;
            if run >= end {
                *pending = Some(run);
                *pos = run;
                break;
            }
            let (s, e) = (run.max(at), run_end.min(end));
            if s < e {
                let src = buf.get((s - run) as usize..(e - run) as usize);
                let dst = out.get_mut((s - at) as usize..(e - at) as usize);
                if let (Some(src), Some(dst)) = (src, dst) {
                    dst.copy_from_slice(src);
                }
            }
            if run_end > end {
                *pending = Some(run);
                *pos = run;
                break;
            }
            *pos = run_end;
        }
        // Not what the kept runs hold now: those are read from there.
        if out.len() <= CACHE_READ && self.planning.load(Ordering::Relaxed) && end > c.kept.upto() {
            if c.cached + out.len() > CACHE_BYTES {
                c.cache.clear();
                c.cached = 0;
            }
            c.cached += out.len();
            c.cache.insert(at, out.to_vec());
        }
        Ok(())
    }

    /// The check before a restore or import writes anything: the folder's checksum
    /// lists, and every partition image decoded to its end. Each partition's decoder
    /// goes on from where the planner left it (a decoder always starts at the image's
    /// start, so its end means the whole image was decoded), which makes planning and
    /// checking one decode. Lists and partitions are checked side by side (and each
    /// decompression has its own thread, `foreign::compress::ReadAhead`). The
    /// partitions as they decoded; the first error found wins (it names the file, the
    /// partition and, for a damaged block, the byte offset).
    pub fn check_all(&self, img: &ClonezillaImage) -> Result<Vec<PartDone>, AssembleError> {
        self.check_all_progress(img, &crate::progress::NoProgress)
    }

    /// `check_all`, reporting the decoded bytes to `progress` as `Advance` events.
    pub fn check_all_progress(
        &self,
        img: &ClonezillaImage,
        progress: &dyn Progress,
    ) -> Result<Vec<PartDone>, AssembleError> {
        std::thread::scope(|s| {
            let lists = s.spawn(|| img.verify_checksums());
            // An LV's later segments decode the image its first segment decodes whole;
            // a LUKS volume's inner image is decoded by its own device.
            let parts: Vec<_> = self
                .decoding_slots()
                .into_iter()
                .map(|(dev, slot)| s.spawn(move || dev.drain(slot, progress)))
                .collect();
            let mut done = Vec::new();
            let mut first: Option<AssembleError> = None;
            for h in parts {
                match h.join() {
                    Ok(Ok(d)) => done.push(d),
                    Ok(Err(e)) => {
                        first.get_or_insert(e);
                    }
                    Err(_) => {
                        first.get_or_insert(AssembleError::Layout {
                            file: img.dir.clone(),
                            why: "a checking thread panicked".into(),
                        });
                    }
                }
            }
            if let Ok(Err(e)) = lists.join() {
                first.get_or_insert(e.into());
            }
            match first {
                Some(e) => Err(e),
                None => Ok(done),
            }
        })
    }

    /// Decodes `slot`'s image to its end, on from where its decoder stands.
    fn drain(&self, slot: &Slot, progress: &dyn Progress) -> Result<PartDone, AssembleError> {
        let mut c = slot.cursor.lock().map_err(|_| AssembleError::Layout {
            file: slot.image.path.clone(),
            why: "a reader failed".into(),
        })?;
        let c = &mut *c;
        if c.stream.is_none() {
            c.stream = Some(PartStream::open(&slot.image, slot.whole)?);
            c.pos = 0;
            c.pending = None;
            c.used = 0;
        }
        let Some(stream) = c.stream.as_mut() else {
            return Err(AssembleError::Layout {
                file: slot.image.path.clone(),
                why: "no decoder".into(),
            });
        };
        let keeping = slot.keeps && self.planning.load(Ordering::Relaxed);
        let mut advance = super::stream::Advance::new(progress);
        while let Some(run) = stream.next_run(&mut c.buf)? {
            poll(&self.cancel, &slot.image)?;
            if keeping {
                c.kept.keep(run, &c.buf, &self.budget);
            }
            c.used += c.buf.len() as u64;
            advance.add(c.buf.len() as u64);
        }
        advance.finish();
        if keeping {
            c.kept.finish();
        }
        let d = PartDone {
            part: slot.image.part.clone(),
            filesystem: stream.filesystem().to_string(),
            offset: slot.offset,
            used_bytes: c.used,
            image_bytes: stream.image_bytes(),
        };
        // The decoder is at its end: the next read starts it again.
        c.pending = None;
        c.pos = u64::MAX;
        Ok(d)
    }

    fn bad(&self, e: AssembleError) -> DeviceError {
        self.query(e.to_string())
    }
}

impl Drop for ImageDevice {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.table_path);
    }
}

impl BlockDevice for ImageDevice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| DeviceError::OutOfRange {
                device: self.name.clone(),
                offset,
                len: buf.len() as u64,
                size: self.size,
            })?;
        // Outside the partitions: the table's file (boot areas, boot records, GPT).
        let mut at = offset;
        for slot in &self.slots {
            let (ps, pe) = (slot.offset, slot.offset + slot.len);
            if pe <= at || ps >= end {
                continue;
            }
            if ps > at {
                self.read_table(at, ps, offset, buf)?;
            }
            let (s, e) = (at.max(ps), end.min(pe));
            if let Some(out) = buf.get_mut((s - offset) as usize..(e - offset) as usize) {
                match &slot.header {
                    Some(h) => h.read_at(s - ps, out)?,
                    None => self.read_part(slot, s - ps + slot.base, out)?,
                }
            }
            at = e;
        }
        if at < end {
            self.read_table(at, end, offset, buf)?;
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, _buf: &[u8]) -> Result<(), DeviceError> {
        Err(DeviceError::ReadOnly {
            device: self.name.clone(),
            offset,
        })
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn logical_sector_size(&self) -> u32 {
        self.sector
    }

    fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }

    fn access(&self) -> Access {
        Access::ReadOnly
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

impl ImageDevice {
    /// Disk bytes `[from, to)` from the table's file into `buf` (which holds the disk
    /// from `base`).
    fn read_table(&self, from: u64, to: u64, base: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let Some(out) = buf.get_mut((from - base) as usize..(to - base) as usize) else {
            return Ok(());
        };
        self.table
            .read_exact_at(out, from)
            .map_err(|source| DeviceError::Io {
                device: self.table_path.display().to_string(),
                offset: from,
                len: to - from,
                source,
            })
    }
}

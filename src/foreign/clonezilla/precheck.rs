//! The check a restore makes before the target's first byte is written: the folder's
//! checksum lists (MD5SUMS, SHA1SUMS, B2SUMS) and every partition image decoded to its
//! end, which checks every CRC and checksum it carries and that its volumes are all
//! there. Nothing is kept: the restore then decodes again, straight onto the target
//! (`device::ImageDevice`). Reading twice costs a decode but no disk space and no
//! writes, which is what a scratch copy of the used data cost.
//!
//! The work runs side by side: the checksum lists on one thread, the partitions on
//! the others (each partition's decompression has its own thread besides, see
//! `foreign::compress::ReadAhead`).

use super::assemble::{placement, single_layout, AssembleError, PartDone};
use super::stream::PartStream;
use super::{ClonezillaImage, PartImage};
use std::sync::Mutex;

/// Checks `img` whole; the partitions as they decoded. The first error found wins
/// (it names the file, the partition and, for a damaged block, the byte offset).
pub fn precheck(img: &ClonezillaImage) -> Result<Vec<PartDone>, AssembleError> {
    let layout = single_layout(img)?;
    let size = layout.disk_bytes().ok_or_else(|| AssembleError::Layout {
        file: img.dir.join(format!("{}-pt.sf", layout.disk)),
        why: "the disk size is unknown (no pt.parted, no last-lba, no partitions)".into(),
    })?;
    let mut jobs: Vec<(&PartImage, u64, u64)> = Vec::new();
    for p in &img.partitions {
        let (offset, len) = placement(img, layout, p, size)?;
        jobs.push((p, offset, len));
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, jobs.len().max(1));
    let next = Mutex::new(jobs.iter());
    let done: Mutex<Vec<PartDone>> = Mutex::new(Vec::new());
    let failed: Mutex<Option<AssembleError>> = Mutex::new(None);
    let fail = |e: AssembleError| {
        if let Ok(mut f) = failed.lock() {
            f.get_or_insert(e);
        }
    };
    let stop = || failed.lock().map_or(true, |f| f.is_some());
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Err(e) = img.verify_checksums() {
                fail(e.into());
            }
        });
        for _ in 0..workers {
            s.spawn(|| loop {
                let job = next.lock().ok().and_then(|mut it| it.next().copied());
                let Some((p, offset, len)) = job else { break };
                if stop() {
                    break;
                }
                match drain(p, offset, len, &stop) {
                    Ok(d) => {
                        if let Ok(mut all) = done.lock() {
                            all.push(d);
                        }
                    }
                    Err(e) => fail(e),
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut done = done.into_inner().unwrap_or_default();
    done.sort_by_key(|d| d.offset);
    Ok(done)
}

/// Decodes `p` to its end, dropping the runs; stops early (with what it has) once
/// another check has failed.
fn drain(
    p: &PartImage,
    offset: u64,
    len: u64,
    stop: &dyn Fn() -> bool,
) -> Result<PartDone, AssembleError> {
    let mut stream = PartStream::open(p, len)?;
    let mut buf = Vec::new();
    let mut used = 0u64;
    let mut n = 0u32;
    while stream.next_run(&mut buf)?.is_some() {
        used += buf.len() as u64;
        n = n.wrapping_add(1);
        if n % 4096 == 0 && stop() {
            break;
        }
    }
    Ok(PartDone {
        part: p.part.clone(),
        filesystem: stream.filesystem().to_string(),
        offset,
        used_bytes: used,
        image_bytes: stream.image_bytes(),
    })
}

//! The data runs of every user file of an NTFS volume, for chunking on each file's own
//! grid (`usedmap::file_runs`): one pass over the MFT, through the record, attribute and
//! run-list decoders of `ondisk::ntfs`.
//!
//! Every non-resident `$DATA` (the unnamed stream and named ones) of an in-use record that
//! is neither a directory nor a system file counts. Compressed and encrypted streams do
//! not (their clusters do not hold the bytes the file reads), nor do sparse runs. A
//! stream too fragmented for one record continues in extension records listed by its
//! `$ATTRIBUTE_LIST`; each extension carries its own run list from its `lowest_vcn`, so
//! those are gathered in the pass and joined to their file's sizes afterwards.

use super::{NtfsError, Volume};
use crate::device::BlockDevice;
use crate::ondisk::ntfs::attribute::{
    AttrValue, Attribute, ATTR_COMPRESSION_MASK, ATTR_IS_ENCRYPTED, AT_DATA, AT_FILE_NAME,
};
use crate::ondisk::ntfs::{FileName, MftRecord, Mode};
use crate::usedmap::files::Collector;
use std::collections::{HashMap, HashSet};

/// Records 0-15 are the system files and 16-23 are reserved for them (ntfs-3g
/// `FILE_first_user`).
const FIRST_USER_RECORD: u64 = 24;
/// `$Extend`, the directory of the later system files (`$UsnJrnl`, `$Quota`, ...).
const FILE_EXTEND: u64 = 11;
const AT_ATTRIBUTE_LIST: u32 = 0x20;
/// A sparse file may be larger than the volume, so its VCNs may exceed the cluster
/// count, which `Strict` refuses. LCNs past the volume are not checked here either: the
/// runs are clipped to the used map afterwards.
const RUN_MODE: Mode = Mode::Lenient;
/// Records read at once (1 MiB with 1 KiB records).
const BATCH: u64 = 1024;

/// A stream's piece kept until the whole MFT has been read: its file's sizes may sit in
/// another record.
struct Piece {
    file: u64,
    name: Vec<u8>,
    lowest_vcn: u64,
    /// `min(data_size, initialized_size)`, only in the piece at VCN 0.
    valid: Option<u64>,
    runs: Vec<crate::ondisk::ntfs::Run>,
}

struct Walk<'v, 'a> {
    vol: &'v Volume<'a>,
    sink: &'v mut Collector,
    /// Base records with an `$ATTRIBUTE_LIST` that are user files, as far as the base
    /// record says.
    listed_files: HashSet<u64>,
    /// Base records named in `$Extend` by one of their extension records.
    system_files: HashSet<u64>,
    pieces: Vec<Piece>,
}

/// Hands the runs of every user file's streams to `sink`, up to each stream's
/// initialized size rounded up to a cluster. Returns the walk's warnings.
pub(crate) fn walk(dev: &dyn BlockDevice, sink: &mut Collector) -> Result<Vec<String>, NtfsError> {
    let vol = Volume::open(dev)?;
    let rs = vol.boot.mft_record_size;
    let mut w = Walk {
        vol: &vol,
        sink,
        listed_files: HashSet::new(),
        system_files: HashSet::new(),
        pieces: Vec::new(),
    };
    let mut first = 0u64;
    while first < vol.mft_records {
        let count = BATCH.min(vol.mft_records - first);
        match vol.read_raw(first, count) {
            Ok(raw) => {
                for (i, chunk) in raw.chunks_exact(rs as usize).enumerate() {
                    w.record(first + i as u64, chunk.to_vec());
                }
            }
            // One unreadable cluster must not hide the rest of the batch.
            Err(_) => {
                for n in first..first + count {
                    match vol.read_raw(n, 1) {
                        Ok(raw) => w.record(n, raw),
                        Err(e) => w.sink.skip(format!("MFT record {n}: {e}")),
                    }
                }
            }
        }
        first += count;
    }
    w.join_pieces();
    Ok(Vec::new())
}

impl Walk<'_, '_> {
    fn record(&mut self, n: u64, raw: Vec<u8>) {
        let rec = match MftRecord::parse(n, raw) {
            Ok(r) => r,
            Err(e) if e.is_not_a_record() => return,
            Err(e) => return self.sink.skip(e.to_string()),
        };
        if !rec.in_use() || rec.is_directory() {
            return;
        }
        let attrs = match rec.attributes() {
            Ok(a) => a,
            Err(e) => return self.sink.skip(e.to_string()),
        };
        if rec.base_mft_record != 0 {
            // An extension record: its pieces count once its base is known to be a file.
            // A listed file's name may sit here too (a large `$UsnJrnl` is listed).
            if in_extend(&attrs) {
                self.system_files.insert(rec.base_mft_record);
            }
            for a in attrs.iter().filter(|a| a.type_code == AT_DATA) {
                self.keep_piece(rec.base_mft_record, n, a);
            }
            return;
        }
        if n < FIRST_USER_RECORD || in_extend(&attrs) {
            return;
        }
        let listed = attrs.iter().any(|a| a.type_code == AT_ATTRIBUTE_LIST);
        if listed {
            self.listed_files.insert(n);
        }
        for a in attrs.iter().filter(|a| a.type_code == AT_DATA) {
            match a.value {
                AttrValue::NonResident {
                    lowest_vcn: 0,
                    data_size,
                    initialized_size,
                    ..
                } if !listed => self.stream(n, a, data_size.min(initialized_size)),
                _ => self.keep_piece(n, n, a),
            }
        }
    }

    /// Keeps a non-resident piece of file `file`'s stream found in record `rec`.
    fn keep_piece(&mut self, file: u64, rec: u64, a: &Attribute<'_>) {
        let AttrValue::NonResident {
            lowest_vcn,
            data_size,
            initialized_size,
            ..
        } = a.value
        else {
            return;
        };
        if !readable_as_is(a) {
            return;
        }
        match a.runs(rec, u64::MAX, RUN_MODE) {
            Some(Ok(runs)) => self.pieces.push(Piece {
                file,
                name: a.name.to_vec(),
                lowest_vcn,
                valid: (lowest_vcn == 0).then_some(data_size.min(initialized_size)),
                runs,
            }),
            Some(Err(e)) => self.sink.skip(e.to_string()),
            None => {}
        }
    }

    /// Hands the runs of a whole stream of file `file` (in its base record) to the
    /// sink, within its first `valid` bytes.
    fn stream(&mut self, file: u64, a: &Attribute<'_>, valid: u64) {
        if !readable_as_is(a) {
            return;
        }
        match a.runs(file, u64::MAX, RUN_MODE) {
            Some(Ok(runs)) => self.push_runs(file, &runs, valid),
            Some(Err(e)) => self.sink.skip(e.to_string()),
            None => {}
        }
    }

    fn push_runs(&mut self, file: u64, runs: &[crate::ondisk::ntfs::Run], valid: u64) {
        let cs = self.vol.boot.cluster_size;
        let clusters = valid.div_ceil(cs);
        for r in runs {
            let Some(lcn) = r.lcn else { continue };
            let n = r.length.min(clusters.saturating_sub(r.vcn));
            match (
                lcn.checked_mul(cs),
                n.checked_mul(cs),
                r.vcn.checked_mul(cs),
            ) {
                (Some(offset), Some(len), Some(logical)) => {
                    self.sink.push(file, offset, len, logical)
                }
                _ => self
                    .sink
                    .skip(format!("MFT record {file}: LCN {lcn} overflows")),
            }
        }
    }

    /// Joins the pieces of attribute-listed streams to their size (in the piece at
    /// VCN 0) and keeps those of user files.
    fn join_pieces(&mut self) {
        let pieces = std::mem::take(&mut self.pieces);
        let mut valid: HashMap<(u64, &[u8]), u64> = HashMap::new();
        for p in &pieces {
            if let Some(v) = p.valid {
                valid.insert((p.file, &p.name), v);
            }
        }
        for p in &pieces {
            if !self.listed_files.contains(&p.file) || self.system_files.contains(&p.file) {
                continue; // a directory's, a system file's or a deleted file's piece
            }
            match valid.get(&(p.file, p.name.as_slice())) {
                Some(&v) => self.push_runs(p.file, &p.runs, v),
                None => self.sink.skip(format!(
                    "MFT record {}: a stream piece at VCN {} has no first piece",
                    p.file, p.lowest_vcn
                )),
            }
        }
    }
}

/// True for a stream whose clusters hold its bytes as the file reads them.
fn readable_as_is(a: &Attribute<'_>) -> bool {
    a.flags & (ATTR_COMPRESSION_MASK | ATTR_IS_ENCRYPTED) == 0
}

/// True when a `$FILE_NAME` puts the record in `$Extend` (a system file).
fn in_extend(attrs: &[Attribute<'_>]) -> bool {
    attrs.iter().any(|a| match (a.type_code, &a.value) {
        (AT_FILE_NAME, AttrValue::Resident(v)) => {
            FileName::parse(v).is_some_and(|f| f.parent_record == FILE_EXTEND)
        }
        _ => false,
    })
}

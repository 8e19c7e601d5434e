//! NTFS used-cluster map from `$Bitmap`, read without mounting and without ntfs-3g.
//!
//! Why not the `ntfs` crate (0.4.0 in Cargo.lock, which `browse` uses): it decodes
//! the geometry fine (including cluster sizes above 64 KiB, stored as a negative
//! exponent), but imaging reads disks that may be dying or crafted, and there the
//! crate (a) panics instead of failing when a read error reaches one of its binrw
//! parsers (`impl From<binrw::Error> for NtfsError` calls `unreachable!` on anything
//! but a bare I/O error, and binrw wraps errors from nested fields; `browse::cursor`
//! zero-fills reads to work around it), (b) allocates buffers sized by on-disk fields
//! without a bound (an index record of `index_record_size` bytes, up to 4 GiB, from a
//! garbage `$INDEX_ROOT`), and (c) reads only the primary boot sector, while a lost
//! primary must be mapped through the backup one. The used map needs only the boot
//! sector, three MFT records and one non-resident stream, decoded by
//! `crate::ondisk::ntfs` (shared with probe, rescue and bootfix), where every
//! malformed field is an error naming the record and byte offset.
//!
//! The map is: every cluster set in `$Bitmap`, plus the backup boot sector, which lives
//! in the sector just past `number_of_sectors` and is in no cluster (partclone#69:
//! images without it restore one sector short and Windows' chkdsk complains).

pub mod backup;
mod bitmap;
pub(crate) mod files;
mod hiber;
mod stream;

use crate::device::{BlockDevice, DeviceError};
use crate::ondisk::ntfs::attribute::{AttrValue, AT_DATA};
use crate::ondisk::ntfs::{
    BootSector, DecodeError, MftRecord, Mode, Run, FILE_BITMAP, FILE_MFT, FILE_VOLUME,
};
use crate::usedmap::{ExtentBuilder, UsedMap};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NtfsError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("NTFS volume claims {fs_bytes} bytes but the device has only {device_bytes}")]
    Truncated { fs_bytes: u64, device_bytes: u64 },
    #[error("reading {what} at byte {offset}: {source}")]
    Device {
        what: &'static str,
        offset: u64,
        #[source]
        source: DeviceError,
    },
    #[error("MFT record {record}: {reason}")]
    MftRecord { record: u64, reason: String },
    #[error("{what} at stream byte {pos}: {reason}")]
    Stream {
        what: &'static str,
        pos: u64,
        reason: String,
    },
    #[error("MFT record {record}: no usable {what}")]
    MissingAttribute { record: u64, what: &'static str },
    #[error("$Bitmap holds {have} bytes but the volume needs {need}")]
    BitmapTooSmall { have: u64, need: u64 },
}

/// Warning text for a hibernated / Fast Startup volume.
pub const WARN_HIBERNATED: &str = "NTFS: Windows is hibernated or was shut down with Fast Startup \
(hiberfil.sys holds a hibernation image). Imaging is allowed and the image is crash-consistent, \
but unsaved state lives only in hiberfil.sys. For a clean image, boot Windows and shut it down \
fully with Fast Startup off. The source is never modified.";

/// Warning text for a volume whose dirty flag is set.
pub const WARN_DIRTY: &str =
    "NTFS: the volume is marked dirty (not cleanly unmounted, or chkdsk is \
scheduled). Imaging is allowed and the image is crash-consistent; the flag is kept as is and the \
source is never \"fixed\". For a clean image, shut Windows down fully with Fast Startup off.";

/// An opened volume: geometry plus the `$MFT` run list, to read records by number.
struct Volume<'a> {
    dev: &'a dyn BlockDevice,
    boot: BootSector,
    mft_runs: Vec<Run>,
    mft_records: u64,
    /// Set when `boot` is the backup boot sector.
    primary_lost: Option<crate::usedmap::PrimaryLost>,
}

impl<'a> Volume<'a> {
    fn open(dev: &'a dyn BlockDevice) -> Result<Self, NtfsError> {
        let (boot, primary_lost) = backup::open(dev)?;
        let fs_bytes = boot.backup_boot_offset();
        if fs_bytes > dev.size() {
            return Err(NtfsError::Truncated {
                fs_bytes,
                device_bytes: dev.size(),
            });
        }
        let rs = boot.mft_record_size;
        // Record 0 ($MFT) is read from mft_lcn directly: its own runs are what we need.
        let at = boot.mft_offset()?;
        let raw = dev
            .read_vec(at, rs as usize)
            .map_err(|source| NtfsError::Device {
                what: "$MFT record 0",
                offset: at,
                source,
            })?;
        let rec0 = MftRecord::parse(FILE_MFT, raw)?;
        let (runs, data_size) = nonresident_runs(&rec0, &boot)?;
        let mft_records = data_size / rs;
        Ok(Volume {
            dev,
            boot,
            mft_runs: runs,
            mft_records,
            primary_lost,
        })
    }

    /// Reads `count` consecutive raw records starting at `first`.
    fn read_raw(&self, first: u64, count: u64) -> Result<Vec<u8>, NtfsError> {
        let rs = self.boot.mft_record_size;
        let len = count
            .checked_mul(rs)
            .filter(|l| *l <= 64 << 20)
            .ok_or(NtfsError::Stream {
                what: "$MFT",
                pos: first,
                reason: "record batch too large".into(),
            })?;
        stream::read_stream(
            self.dev,
            &self.mft_runs,
            self.boot.cluster_size,
            first.saturating_mul(rs),
            len as usize,
            false,
            "$MFT",
        )
    }

    fn record(&self, n: u64) -> Result<MftRecord, NtfsError> {
        if n >= self.mft_records {
            return Err(NtfsError::MftRecord {
                record: n,
                reason: format!("past the end of $MFT ({} records)", self.mft_records),
            });
        }
        Ok(MftRecord::parse(n, self.read_raw(n, 1)?)?)
    }
}

/// The runs and data size of the unnamed, non-resident `$DATA` of `rec`. Only the
/// base extent is used: an `$ATTRIBUTE_LIST` spreading `$MFT` or `$Bitmap` over several
/// records (extremely fragmented volumes) ends in an unmapped-VCN error, never in a
/// silently short map, because the data size is checked against what the runs cover.
fn nonresident_runs(rec: &MftRecord, boot: &BootSector) -> Result<(Vec<Run>, u64), NtfsError> {
    let what = "non-resident unnamed $DATA";
    let attr = rec.unnamed(AT_DATA)?.ok_or(NtfsError::MissingAttribute {
        record: rec.number,
        what,
    })?;
    match attr.value {
        AttrValue::NonResident {
            lowest_vcn: 0,
            highest_vcn,
            data_size,
            mapping_pairs,
            mapping_pairs_at,
            ..
        } => {
            let runs = crate::ondisk::ntfs::runlist::decode(
                mapping_pairs,
                0,
                boot.total_clusters(),
                Mode::Strict,
                crate::ondisk::ntfs::runlist::Origin {
                    record: rec.number,
                    at: mapping_pairs_at,
                },
            )?;
            let mapped = runs.last().map_or(0, |r| r.vcn + r.length);
            // Runs continuing in another record ($ATTRIBUTE_LIST) are not followed.
            if highest_vcn.checked_add(1) != Some(mapped)
                && !(mapped == 0 && highest_vcn == u64::MAX)
            {
                return Err(NtfsError::MftRecord {
                    record: rec.number,
                    reason: format!(
                        "$DATA runs map {mapped} clusters but highest_vcn is {highest_vcn} \
                         (attribute list extents are not supported)"
                    ),
                });
            }
            Ok((runs, data_size))
        }
        _ => Err(NtfsError::MissingAttribute {
            record: rec.number,
            what,
        }),
    }
}

/// Reads the used-cluster map of the NTFS volume on `dev` (a partition).
///
/// `total_bytes` is `(number_of_sectors + 1) × bytes_per_sector`: the filesystem's
/// footprint including its backup boot sector, which is what a restore must write;
/// it is `number_of_sectors × bytes_per_sector` when the device ends before the backup,
/// and the device's size when a volume resized by ntfsresize keeps its copy in the
/// device's last sector, past `number_of_sectors` (`backup::trailing_copy`).
/// `used_bytes` is clusters set in `$Bitmap` × cluster size (partclone's count); the
/// backup boot sector is in the extents but not in `used_bytes`.
pub fn map_ntfs(dev: &dyn BlockDevice) -> Result<UsedMap, NtfsError> {
    let vol = Volume::open(dev)?;
    let boot = &vol.boot;
    let total_clusters = boot.total_clusters();
    let mut warnings = Vec::new();
    if let Some(lost) = &vol.primary_lost {
        warnings.push(format!("NTFS: {}", lost.line()));
    }

    let bm_rec = vol.record(FILE_BITMAP)?;
    let need = total_clusters.div_ceil(8);
    let mut builder = ExtentBuilder::new();
    let bm_attr = bm_rec
        .unnamed(AT_DATA)?
        .ok_or(NtfsError::MissingAttribute {
            record: FILE_BITMAP,
            what: "$DATA",
        })?;
    let bm_runs;
    let src = match bm_attr.value {
        AttrValue::Resident(v) => bitmap::BitmapSource::Resident(v),
        AttrValue::NonResident { .. } => {
            let (runs, data_size) = nonresident_runs(&bm_rec, boot)?;
            if data_size < need {
                return Err(NtfsError::BitmapTooSmall {
                    have: data_size,
                    need,
                });
            }
            bm_runs = runs;
            bitmap::BitmapSource::Runs(&bm_runs)
        }
    };
    let scan = bitmap::scan(dev, src, boot.cluster_size, total_clusters, &mut builder)?;

    let backup = boot.backup_boot_offset();
    let mut total_bytes = backup;
    match backup.checked_add(boot.bytes_per_sector) {
        Some(end) if end <= dev.size() => {
            builder.add(backup, boot.bytes_per_sector);
            total_bytes = end;
        }
        _ => warnings.push(format!(
            "NTFS: the device ends at byte {} before the backup boot sector at byte {backup}; \
             a restore will have no backup boot sector",
            dev.size()
        )),
    }
    if let Some(at) = backup::trailing_copy(dev, boot) {
        builder.add(at, boot.bytes_per_sector);
        total_bytes = dev.size();
    }

    match vol.record(FILE_VOLUME).map(|r| hiber::volume_flags(&r)) {
        Ok(Some(f)) if f & hiber::VOLUME_IS_DIRTY != 0 => warnings.push(WARN_DIRTY.into()),
        Ok(_) => {}
        Err(e) => warnings.push(format!("NTFS: cannot read $Volume flags: {e}")),
    }
    if hibernated(&vol)? {
        warnings.push(WARN_HIBERNATED.into());
    }

    let used_bytes = scan
        .used_clusters
        .checked_mul(boot.cluster_size)
        .ok_or(NtfsError::BitmapTooSmall { have: 0, need })?;
    Ok(UsedMap {
        block_size: boot.cluster_size,
        total_bytes,
        used_bytes,
        extents: builder.finish(total_bytes),
        raw: false,
        raw_reason: None,
        warnings,
        primary_lost: vol.primary_lost.clone(),
        lvm: None,
        fs_sector: None,
    })
}

/// Looks for a root `hiberfil.sys` among the first records and checks its header.
fn hibernated(vol: &Volume<'_>) -> Result<bool, NtfsError> {
    const BATCH: u64 = 256;
    let rs = vol.boot.mft_record_size;
    let last = vol.mft_records.min(hiber::HIBER_SCAN_RECORDS);
    let mut first = 0;
    while first < last {
        let count = BATCH.min(last - first);
        // An unreadable or unmapped stretch of $MFT only ends the search.
        let Ok(raw) = vol.read_raw(first, count) else {
            return Ok(false);
        };
        for (i, chunk) in raw.chunks_exact(rs as usize).enumerate() {
            let Ok(rec) = MftRecord::parse(first + i as u64, chunk.to_vec()) else {
                continue;
            };
            if !hiber::is_root_hiberfil(&rec) {
                continue;
            }
            let head = match hiber::data_attr(&rec).map(|a| a.value) {
                Some(AttrValue::Resident(v)) => v.get(..4).map(<[u8]>::to_vec),
                Some(AttrValue::NonResident {
                    initialized_size, ..
                }) if initialized_size >= 4 => {
                    let Ok((runs, _)) = nonresident_runs(&rec, &vol.boot) else {
                        return Ok(false);
                    };
                    stream::read_stream(
                        vol.dev,
                        &runs,
                        vol.boot.cluster_size,
                        0,
                        4,
                        true,
                        "hiberfil.sys",
                    )
                    .ok()
                }
                _ => None,
            };
            return Ok(head.is_some_and(|h| hiber::is_hibernated_magic(&h)));
        }
        first += count;
    }
    Ok(false)
}

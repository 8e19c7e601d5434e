//! NTFS: which MFT records own unreadable clusters.
//!
//! Every file's data outside the MFT is described by the run lists of its
//! non-resident attributes, and its name and parent by its `$FILE_NAME`. So one pass
//! over the MFT (located through record 0's own `$DATA` runs) finds the records
//! whose runs touch bad clusters, and parent links up to the root (record 5) give
//! their paths. A bad record itself, and above all a bad `$MFT`, is said plainly.

use super::bad::BadSet;
use super::{DamageReport, DamagedFile, DamagedMeta, OwnerError, Warnings};
use crate::device::BlockDevice;
use crate::ondisk::ntfs::attribute::{AttrValue, AT_DATA, AT_FILE_NAME};
use crate::ondisk::ntfs::boot_sector;
use crate::ondisk::ntfs::{
    AttrFault, BootSector, DecodeError, FileName, MftRecord, Mode, Run, FILE_ROOT as ROOT,
};
use crate::rescue::BadRange;
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

const FS: &str = "ntfs";
const MAX_RECORDS: u64 = 1 << 24;
const MAX_PATH_DEPTH: usize = 256;

const SYSTEM_NAMES: [&str; 12] = [
    "$MFT", "$MFTMirr", "$LogFile", "$Volume", "$AttrDef", ".", "$Bitmap", "$Boot", "$BadClus",
    "$Secure", "$UpCase", "$Extend",
];

pub fn looks_like_ntfs(dev: &dyn BlockDevice) -> bool {
    dev.read_vec(0, 512)
        .is_ok_and(|b| boot_sector::has_oem_id(&b))
}

/// Why one MFT record could not be examined.
#[derive(Debug, Error)]
enum RecordError {
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl RecordError {
    /// A never-used MFT slot: not worth a warning.
    fn is_not_a_record(&self) -> bool {
        matches!(self, RecordError::Decode(e) if e.is_not_a_record())
    }
}

/// What one MFT record says about itself.
#[derive(Default)]
struct Record {
    base: u64,
    in_use: bool,
    /// (parent record, name) of the best `$FILE_NAME` (Win32 over DOS).
    name: Option<FileName>,
    /// Every non-resident attribute's runs (data, index allocation, ...).
    runs: Vec<Run>,
    /// Runs of the unnamed `$DATA` (used for record 0: where the MFT lives).
    data_runs: Vec<Run>,
    data_size: u64,
}

/// Reads what rescue needs from a fixed-up record. Runs are decoded leniently: the
/// boot sector's size may be the damaged part, and a run past it just hits nothing.
fn parse_record(rec: &MftRecord) -> Result<Record, DecodeError> {
    let mut r = Record {
        base: rec.base_mft_record,
        in_use: rec.in_use(),
        ..Default::default()
    };
    for attr in rec.attributes()? {
        if let Some(runs) = attr.runs(rec.number, u64::MAX, Mode::Lenient) {
            let runs = runs?;
            if let AttrValue::NonResident {
                lowest_vcn,
                data_size,
                ..
            } = attr.value
            {
                if attr.type_code == AT_DATA && attr.name_length == 0 {
                    r.data_runs.extend_from_slice(&runs);
                    if lowest_vcn == 0 {
                        r.data_size = data_size;
                    }
                }
            }
            r.runs.extend(runs);
        } else if let (AT_FILE_NAME, AttrValue::Resident(v)) = (attr.type_code, &attr.value) {
            let name = FileName::parse(v).ok_or(DecodeError::Attribute {
                record: rec.number,
                offset: attr.offset,
                fault: AttrFault::FileName,
            })?;
            // A DOS 8.3 alias is kept only until any other name turns up.
            if r.name.as_ref().is_none_or(FileName::is_dos_alias) {
                r.name = Some(name);
            }
        }
    }
    Ok(r)
}

/// Names the owners of `bad` (bytes relative to the start of the NTFS volume).
pub fn ntfs_owners(dev: &dyn BlockDevice, bad: &[BadRange]) -> Result<DamageReport, OwnerError> {
    let set = BadSet::new(bad);
    let raw_boot = dev.read_vec(0, 512)?;
    let boot = BootSector::parse(&raw_boot, Mode::Lenient).map_err(|e| match e {
        DecodeError::BootSector { field, value } => OwnerError::BadField {
            device: dev.describe(),
            fs: FS,
            field,
            value,
        },
        other => OwnerError::NotFs {
            device: dev.describe(),
            fs: FS,
            why: other.to_string(),
        },
    })?;
    let (bps, cs, rec_size) = (
        boot.bytes_per_sector,
        boot.cluster_size,
        boot.mft_record_size,
    );
    let mut report = DamageReport {
        fs: "ntfs".into(),
        ..Default::default()
    };
    if set.is_empty() {
        return Ok(report);
    }
    let boot_hit = set.hits(0, bps);
    if boot_hit > 0 {
        report.metadata.push(DamagedMeta {
            what: "boot sector".into(),
            bad_bytes: boot_hit,
        });
    }
    // mkntfs counts one sector less than the partition and keeps a copy of the
    // boot sector in that last sector.
    let backup_at = boot.backup_boot_offset();
    let backup_hit = set.hits(backup_at, bps);
    if backup_hit > 0 {
        report.metadata.push(DamagedMeta {
            what: "backup boot sector".into(),
            bad_bytes: backup_hit,
        });
    }
    // Record sizes are at most 64 KiB (checked by the parser).
    let read_rec = |number: u64, at: u64| -> Result<Record, RecordError> {
        let raw = dev.read_vec(at, rec_size as usize)?;
        Ok(parse_record(&MftRecord::parse(number, raw)?)?)
    };
    let mft0 = boot.mft_offset().map_err(|_| OwnerError::BadField {
        device: dev.describe(),
        fs: FS,
        field: "mft_lcn",
        value: boot.mft_lcn,
    })?;
    let mft = read_rec(0, mft0).map_err(|why| OwnerError::NotFs {
        device: dev.describe(),
        fs: FS,
        why: format!("$MFT record 0 at byte {mft0}: {why}"),
    })?;
    // Byte ranges of the MFT, in VCN order, to find record N on disk.
    let mut mft_ranges: Vec<(u64, u64)> = Vec::new();
    let mut mft_hit = 0u64;
    for run in &mft.data_runs {
        if let Some(l) = run.lcn {
            let (s, n) = (l.saturating_mul(cs), run.length.saturating_mul(cs));
            mft_hit += set.hits(s, n);
            mft_ranges.push((s, n));
        }
    }
    if mft_hit > 0 {
        report.metadata.push(DamagedMeta {
            what: "$MFT (the master file table itself: the records it holds are lost)".into(),
            bad_bytes: mft_hit,
        });
    }
    let mut warnings = Warnings::default();
    let records = (mft.data_size / rec_size).min(MAX_RECORDS);
    if mft.data_size / rec_size > MAX_RECORDS {
        warnings.push(format!(
            "only the first {MAX_RECORDS} MFT records were examined"
        ));
    }
    let mut names: HashMap<u64, (u64, String)> = HashMap::new();
    let mut hits: BTreeMap<u64, DamagedFile> = BTreeMap::new();
    let (mut range_idx, mut range_off) = (0usize, 0u64);
    for i in 0..records {
        // Walk the MFT ranges sequentially instead of searching for each record.
        while mft_ranges
            .get(range_idx)
            .is_some_and(|&(_, n)| range_off + rec_size > n)
        {
            range_idx += 1;
            range_off = 0;
        }
        let Some(&(start, _)) = mft_ranges.get(range_idx) else {
            report
                .warnings
                .push(format!("MFT runs end before record {i}"));
            break;
        };
        let at = start.saturating_add(range_off);
        if at >= dev.size() {
            warnings.push(format!(
                "MFT record {i} would lie at byte {at}, past the volume"
            ));
            break;
        }
        range_off += rec_size;
        let record_hit = set.hits(at, rec_size) > 0;
        let rec = match read_rec(i, at) {
            Ok(r) => r,
            Err(e) => {
                if record_hit {
                    hits.insert(
                        i,
                        DamagedFile {
                            id: i,
                            path: None,
                            bad_bytes: 0,
                            record_hit: true,
                        },
                    );
                } else if !e.is_not_a_record() {
                    warnings.push(format!("MFT record {i}: {e}"));
                }
                continue;
            }
        };
        if !rec.in_use {
            continue;
        }
        let owner = if rec.base != 0 { rec.base } else { i };
        if let Some(f) = rec.name {
            names.entry(owner).or_insert((f.parent_record, f.name));
        }
        let mut n = 0u64;
        for run in &rec.runs {
            if let Some(l) = run.lcn {
                n = n.saturating_add(set.hits(l.saturating_mul(cs), run.length.saturating_mul(cs)));
            }
        }
        if n > 0 || record_hit {
            let e = hits.entry(owner).or_insert(DamagedFile {
                id: owner,
                path: None,
                bad_bytes: 0,
                record_hit: false,
            });
            // Record 0's runs are the MFT, already named above.
            if owner != 0 {
                e.bad_bytes = e.bad_bytes.saturating_add(n);
            }
            e.record_hit |= record_hit;
        }
    }
    let path_of = |mut r: u64| -> Option<String> {
        let mut parts = Vec::new();
        for _ in 0..MAX_PATH_DEPTH {
            if r == ROOT {
                parts.reverse();
                return Some(format!("/{}", parts.join("/")));
            }
            let (parent, name) = names.get(&r)?;
            parts.push(name.clone());
            r = *parent;
        }
        None
    };
    for (id, f) in hits {
        if id < 16 && id != ROOT {
            let name = SYSTEM_NAMES.get(id as usize).copied().unwrap_or("reserved");
            let how = if f.record_hit { "MFT record" } else { "data" };
            if id != 0 || f.record_hit {
                report.metadata.push(DamagedMeta {
                    what: format!("{name} (system file, record {id}: {how})"),
                    bad_bytes: f.bad_bytes,
                });
            }
            continue;
        }
        let path = if id == ROOT {
            Some("/".to_string())
        } else {
            path_of(id)
        };
        report.files.push(DamagedFile { path, ..f });
    }
    let owned = report.metadata.iter().map(|m| m.bad_bytes).sum::<u64>()
        + report.files.iter().map(|f| f.bad_bytes).sum::<u64>();
    report.unowned_bytes = set.total().saturating_sub(owned);
    report.warnings = warnings.into_vec();
    Ok(report)
}

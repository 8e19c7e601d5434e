//! NTFS: which MFT records own unreadable clusters.
//!
//! Every file's data outside the MFT is described by the run lists of its
//! non-resident attributes, and its name and parent by its `$FILE_NAME`. So one pass
//! over the MFT (located through record 0's own `$DATA` runs) finds the records
//! whose runs touch bad clusters, and parent links up to the root (record 5) give
//! their paths. A bad record itself, and above all a bad `$MFT`, is said plainly.

use super::bad::BadSet;
use super::{le16, le32, le64, DamageReport, DamagedFile, DamagedMeta, OwnerError, Warnings};
use crate::device::BlockDevice;
use crate::rescue::BadRange;
use std::collections::{BTreeMap, HashMap};

const FS: &str = "ntfs";
const MAX_RECORDS: u64 = 1 << 24;
const MAX_RUNS: usize = 1 << 16;
const MAX_PATH_DEPTH: usize = 256;
const ROOT: u64 = 5;
const AT_FILE_NAME: u64 = 0x30;
const AT_END: u64 = 0xFFFF_FFFF;

const SYSTEM_NAMES: [&str; 12] = [
    "$MFT", "$MFTMirr", "$LogFile", "$Volume", "$AttrDef", ".", "$Bitmap", "$Boot", "$BadClus",
    "$Secure", "$UpCase", "$Extend",
];

pub fn looks_like_ntfs(dev: &dyn BlockDevice) -> bool {
    dev.read_vec(3, 8).is_ok_and(|b| b == b"NTFS    ")
}

fn bad_field(dev: &dyn BlockDevice, field: &'static str, value: u64) -> OwnerError {
    OwnerError::BadField {
        device: dev.describe(),
        fs: FS,
        field,
        value,
    }
}

/// (first VCN, LCN or None for sparse, cluster count).
type Run = (u64, Option<u64>, u64);

/// Decodes a mapping-pairs array; offsets are signed and relative to the previous LCN.
fn decode_runs(b: &[u8], start_vcn: u64) -> Result<Vec<Run>, String> {
    let mut runs = Vec::new();
    let (mut pos, mut vcn, mut lcn) = (0usize, start_vcn, 0i64);
    loop {
        let h = *b.get(pos).ok_or("run list without terminator")?;
        if h == 0 {
            return Ok(runs);
        }
        let (nl, no) = ((h & 0xF) as usize, (h >> 4) as usize);
        if nl == 0 || nl > 8 || no > 8 {
            return Err(format!("bad run header {h:#x}"));
        }
        let field = |at: usize, n: usize| -> Option<u64> {
            let s = b.get(at..at + n)?;
            Some(s.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
        };
        let len = field(pos + 1, nl).ok_or("run length past the attribute")?;
        let target = if no == 0 {
            None
        } else {
            let raw = field(pos + 1 + nl, no).ok_or("run offset past the attribute")?;
            let shift = 64 - 8 * no as u32;
            let delta = ((raw << shift) as i64) >> shift;
            lcn = lcn.checked_add(delta).ok_or("run offset overflows")?;
            Some(u64::try_from(lcn).map_err(|_| "negative LCN")?)
        };
        runs.push((vcn, target, len));
        if runs.len() > MAX_RUNS {
            return Err("too many runs".into());
        }
        vcn = vcn.checked_add(len).ok_or("VCN overflows")?;
        pos += 1 + nl + no;
    }
}

/// Undoes the update sequence: the last two bytes of every sector were swapped
/// out for a check value when the record was written.
fn apply_fixups(rec: &mut [u8], sector: usize) -> Result<(), String> {
    if rec.get(0..4) != Some(b"FILE") {
        return Err("no FILE signature".into());
    }
    let usa = le16(rec, 4).unwrap_or(0) as usize;
    let count = le16(rec, 6).unwrap_or(0) as usize;
    if count == 0 || (count - 1) * sector > rec.len() {
        return Err(format!("update sequence count {count} does not fit"));
    }
    let check = rec
        .get(usa..usa + 2)
        .ok_or("update sequence outside the record")?
        .to_vec();
    for i in 1..count {
        let end = i * sector;
        let fix = rec
            .get(usa + 2 * i..usa + 2 * i + 2)
            .ok_or("update sequence outside the record")?
            .to_vec();
        let tail = rec
            .get_mut(end - 2..end)
            .ok_or("sector outside the record")?;
        if tail != check.as_slice() {
            return Err(format!("torn write in sector {i} of the record"));
        }
        tail.copy_from_slice(&fix);
    }
    Ok(())
}

/// What one MFT record says about itself.
#[derive(Default)]
struct Record {
    base: u64,
    in_use: bool,
    /// (parent record, name) of the best `$FILE_NAME` (Win32 over DOS).
    name: Option<(u64, String, u8)>,
    /// Every non-resident attribute's runs (data, index allocation, ...).
    runs: Vec<Run>,
    /// Runs of the unnamed `$DATA` (used for record 0: where the MFT lives).
    data_runs: Vec<Run>,
    data_size: u64,
}

fn parse_record(rec: &[u8]) -> Result<Record, String> {
    let mut r = Record {
        base: le64(rec, 0x20).unwrap_or(0) & 0xFFFF_FFFF_FFFF,
        in_use: le16(rec, 0x16).unwrap_or(0) & 1 != 0,
        ..Default::default()
    };
    let mut pos = le16(rec, 0x14).unwrap_or(0) as usize;
    for _ in 0..1024 {
        let ty = le32(rec, pos).ok_or("attribute past the record")?;
        if ty == AT_END {
            return Ok(r);
        }
        let len = le32(rec, pos + 4).unwrap_or(0) as usize;
        let attr = rec
            .get(pos..pos.saturating_add(len))
            .filter(|_| len >= 16)
            .ok_or("bad attribute length")?;
        let non_resident = attr.get(8).copied().unwrap_or(0) != 0;
        let name_len = attr.get(9).copied().unwrap_or(0);
        if non_resident {
            let start_vcn = le64(attr, 0x10).unwrap_or(0);
            let mp = le16(attr, 0x20).unwrap_or(0) as usize;
            let runs = decode_runs(
                attr.get(mp..)
                    .ok_or("mapping pairs outside the attribute")?,
                start_vcn,
            )?;
            if ty == 0x80 && name_len == 0 {
                r.data_runs.extend_from_slice(&runs);
                if start_vcn == 0 {
                    r.data_size = le64(attr, 0x30).unwrap_or(0);
                }
            }
            r.runs.extend(runs);
        } else if ty == AT_FILE_NAME {
            let off = le16(attr, 0x14).unwrap_or(0) as usize;
            let v = attr.get(off..).ok_or("file name outside the attribute")?;
            let parent = le64(v, 0).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
            let n = v.get(0x40).copied().unwrap_or(0) as usize;
            let space = v.get(0x41).copied().unwrap_or(0);
            let units: Vec<u16> = v
                .get(0x42..0x42 + 2 * n)
                .ok_or("file name longer than its attribute")?
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            // Namespace 2 is the DOS 8.3 alias; any other name is better.
            if r.name.as_ref().is_none_or(|(_, _, s)| *s == 2) {
                r.name = Some((parent, String::from_utf16_lossy(&units), space));
            }
        }
        pos = pos.checked_add(len).ok_or("attribute offset overflows")?;
    }
    Err("too many attributes".into())
}

/// Names the owners of `bad` (bytes relative to the start of the NTFS volume).
pub fn ntfs_owners(dev: &dyn BlockDevice, bad: &[BadRange]) -> Result<DamageReport, OwnerError> {
    let set = BadSet::new(bad);
    let boot = dev.read_vec(0, 512)?;
    if boot.get(3..11) != Some(b"NTFS    ".as_slice()) {
        return Err(OwnerError::NotFs {
            device: dev.describe(),
            fs: FS,
            why: "no NTFS OEM id".into(),
        });
    }
    let bps = le16(&boot, 0x0B).unwrap_or(0);
    if !(256..=4096).contains(&bps) || !bps.is_power_of_two() {
        return Err(bad_field(dev, "bytes_per_sector", bps));
    }
    let spc_raw = u64::from(boot.get(0x0D).copied().unwrap_or(0));
    let spc = if spc_raw > 0x80 {
        1u64 << (256 - spc_raw).min(31)
    } else {
        spc_raw
    };
    let cs = bps * spc;
    if cs == 0 || cs > (2 << 20) {
        return Err(bad_field(dev, "sectors_per_cluster", spc_raw));
    }
    let cpr = boot.get(0x40).copied().unwrap_or(0) as i8;
    let rec_size = if cpr < 0 {
        1u64 << (-(cpr as i64)).min(31)
    } else {
        (cpr as u64) * cs
    };
    if !(256..=65536).contains(&rec_size) {
        return Err(bad_field(dev, "clusters_per_mft_record", cpr as u64));
    }
    let mft_lcn = le64(&boot, 0x30).unwrap_or(0);
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
    let backup_at = le64(&boot, 0x28).unwrap_or(0).saturating_mul(bps);
    let backup_hit = set.hits(backup_at, bps);
    if backup_hit > 0 {
        report.metadata.push(DamagedMeta {
            what: "backup boot sector".into(),
            bad_bytes: backup_hit,
        });
    }
    let read_rec = |at: u64| -> Result<Record, String> {
        let mut rec = dev
            .read_vec(at, rec_size as usize)
            .map_err(|e| e.to_string())?;
        apply_fixups(&mut rec, bps as usize)?;
        parse_record(&rec)
    };
    let mft0 = mft_lcn
        .checked_mul(cs)
        .ok_or_else(|| bad_field(dev, "mft_lcn", mft_lcn))?;
    let mft = read_rec(mft0).map_err(|why| OwnerError::NotFs {
        device: dev.describe(),
        fs: FS,
        why: format!("$MFT record 0 at byte {mft0}: {why}"),
    })?;
    // Byte ranges of the MFT, in VCN order, to find record N on disk.
    let mut mft_ranges: Vec<(u64, u64)> = Vec::new();
    let mut mft_hit = 0u64;
    for &(_, lcn, len) in &mft.data_runs {
        if let Some(l) = lcn {
            let (s, n) = (l.saturating_mul(cs), len.saturating_mul(cs));
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
        let rec = match read_rec(at) {
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
                } else if !e.contains("FILE signature") {
                    warnings.push(format!("MFT record {i}: {e}"));
                }
                continue;
            }
        };
        if !rec.in_use {
            continue;
        }
        let owner = if rec.base != 0 { rec.base } else { i };
        if let Some((parent, name, _)) = &rec.name {
            names.entry(owner).or_insert((*parent, name.clone()));
        }
        let mut n = 0u64;
        for &(_, lcn, len) in &rec.runs {
            if let Some(l) = lcn {
                n = n.saturating_add(set.hits(l.saturating_mul(cs), len.saturating_mul(cs)));
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

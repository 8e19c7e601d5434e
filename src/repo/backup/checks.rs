//! What a backup refuses before it stores anything: a plan that does not fit its
//! source, and a source cut into more chunks than a manifest may list.

use super::super::error::{RepoError, Result};
use super::super::manifest;
use super::super::plan::BackupPlan;
use crate::device::BlockDevice;
use std::collections::HashSet;

/// The plan's areas: distinct names, inside the source; each area's extents sorted,
/// not overlapping, inside the area.
pub(super) fn plan(plan: &BackupPlan, dev: &dyn BlockDevice) -> Result<()> {
    let mut names = HashSet::new();
    for a in &plan.areas {
        let bad = |what: String| RepoError::BadPlan {
            area: a.name.clone(),
            what,
        };
        if !names.insert(a.name.as_str()) {
            return Err(bad("duplicate area name".into()));
        }
        match a.offset.checked_add(a.len) {
            Some(end) if end <= dev.size() => {}
            _ => {
                return Err(bad(format!(
                    "[{}, +{}) is outside the source ({} bytes)",
                    a.offset,
                    a.len,
                    dev.size()
                )))
            }
        }
        let mut prev_end = 0u64;
        for e in &a.extents {
            if e.offset < prev_end {
                return Err(bad(format!(
                    "extent at {} overlaps or is unsorted",
                    e.offset
                )));
            }
            match e.offset.checked_add(e.len) {
                Some(end) if end <= a.len => prev_end = end,
                _ => {
                    return Err(bad(format!(
                        "extent {}+{} is outside the area",
                        e.offset, e.len
                    )))
                }
            }
        }
    }
    Ok(())
}

/// A manifest longer than readers take would be an image no job could open.
pub(super) fn chunk_count(chunks: usize) -> Result<()> {
    let max = manifest::max_chunks();
    if chunks as u64 > max {
        return Err(RepoError::TooManyChunks {
            chunks: chunks as u64,
            max,
        });
    }
    Ok(())
}

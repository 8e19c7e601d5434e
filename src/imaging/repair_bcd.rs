//! Windows' BCD after a restore onto an MBR disk: its device elements name partitions
//! by disk signature and byte offset, so when a named partition's start moved (the
//! target could not keep it) or the signature changed (`--new-ids`), the elements are
//! pointed at the new place. The planner keeps those starts wherever the target
//! allows (src/plan), so on most restores this only confirms that nothing moved.
//!
//! The hive is read through ironclone's NTFS reader, edited by `hivexsh` (the
//! maintained hive writer; see bootfix::bcd) in a temporary file, copied back with
//! `ntfscp` through a loop device over the partition, and read back to check that
//! every element now names the new place before the restore calls it done.

use super::meta::WindowsBoot;
use super::plan_restore::{DiskRestorePlan, PartTarget};
use super::ImagingError;
use crate::bootfix::bcd::{self, BcdDeviceRef, BCD_PATH};
use crate::browse;
use crate::device::{BlockDevice, Window};
use crate::resize::{run_tool, LoopDevice};
use crate::table::DiskLayout;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Where one BCD descriptor must point after the restore.
struct Move<'a> {
    r: &'a BcdDeviceRef,
    new_offset: u64,
}

fn err(what: String) -> ImagingError {
    ImagingError::Other(format!("Windows boot store (\\Boot\\BCD): {what}"))
}

/// The source start of every partition mapped to its planned start.
fn new_start(plan: &DiskRestorePlan, old: u64) -> Option<u64> {
    plan.plan
        .partitions
        .iter()
        .find(|p| p.old_start == old)
        .map(|p| p.new_start)
}

/// What the repair will do, for the plan shown before writing: one line per store.
pub fn plan_lines(plan: &DiskRestorePlan, new_signature: Option<u32>) -> Vec<String> {
    let mut lines = Vec::new();
    for (number, w, _) in stores(plan) {
        let moved: Vec<String> = w
            .bcd
            .iter()
            .filter_map(|r| new_start(plan, r.offset).filter(|n| *n != r.offset))
            .map(|n| n.to_string())
            .collect();
        let resigned = new_signature.is_some_and(|s| w.bcd.iter().any(|r| r.signature != s));
        lines.push(if let Some(why) = &w.unreadable {
            format!("partition {number}: Windows boot store could not be read at backup ({why}); it keeps its size, the BCD is left as it is")
        } else if w.bcd.is_empty() {
            format!("partition {number}: Windows boot store names no partition of this disk; left as it is")
        } else if moved.is_empty() && !resigned {
            format!(
                "partition {number}: Windows boot store (BCD): the {} partition start(s) it names are kept; left as it is",
                distinct_offsets(&w.bcd)
            )
        } else {
            format!(
                "partition {number}: Windows boot store (BCD): {} device entr{} rewritten ({})",
                w.bcd.len(),
                if w.bcd.len() == 1 { "y" } else { "ies" },
                match (moved.is_empty(), resigned) {
                    (false, true) => "partitions move and the disk signature changes",
                    (false, false) => "partitions it names move",
                    _ => "the disk signature changes",
                }
            )
        });
    }
    lines
}

/// What the layout does for Windows' boot, for the notes under the plan table (the
/// TUI shows those): which partition is System Reserved, and whether the partitions
/// the BCD names keep their start.
pub fn layout_notes(plan: &DiskRestorePlan) -> Vec<String> {
    let mut notes = Vec::new();
    for (number, w, _) in stores(plan) {
        if !w.has_windows_dir {
            notes.push(format!(
                "partition {number} holds Windows' boot manager (System Reserved): it keeps its size"
            ));
        }
        let mut named: Vec<(u32, u64, u64)> = plan
            .plan
            .partitions
            .iter()
            .filter(|p| w.bcd.iter().any(|r| r.offset == p.old_start))
            .map(|p| (p.number, p.old_start, p.new_start))
            .collect();
        named.dedup();
        let (kept, moved): (Vec<_>, Vec<_>) = named.iter().partition(|(_, o, n)| o == n);
        if !kept.is_empty() {
            let list: Vec<String> = kept.iter().map(|(n, _, _)| n.to_string()).collect();
            notes.push(format!(
                "Windows' BCD names partition{} {} by its start: kept",
                if list.len() == 1 { "" } else { "s" },
                list.join(", ")
            ));
        }
        for (n, o, new) in moved {
            notes.push(format!(
                "partition {n} moves from {} to {}: the boot repair points Windows' BCD at it",
                crate::plan::mib(o),
                crate::plan::mib(new)
            ));
        }
    }
    notes
}

fn distinct_offsets(refs: &[BcdDeviceRef]) -> usize {
    let mut o: Vec<u64> = refs.iter().map(|r| r.offset).collect();
    o.sort_unstable();
    o.dedup();
    o.len()
}

/// (partition number, store) of every partition that holds a BCD naming this disk.
/// (partition number, store, where the partition goes) of every partition holding one.
fn stores(plan: &DiskRestorePlan) -> Vec<(u32, &WindowsBoot, &PartTarget)> {
    plan.parts
        .iter()
        .filter_map(|p| {
            let number = p.meta.partition.as_ref()?.number;
            Some((number, p.meta.windows_boot.as_ref()?, p))
        })
        .collect()
}

/// Rewrites every BCD whose named partitions moved or whose disk signature changed.
pub fn repair_bcd(
    plan: &DiskRestorePlan,
    written: &DiskLayout,
    target: &dyn BlockDevice,
    target_path: &Path,
) -> Result<Vec<String>, ImagingError> {
    let mut lines = Vec::new();
    let Some(signature) = written.disk_signature else {
        return Ok(lines);
    };
    for (number, w, pt) in stores(plan) {
        let mut moves = Vec::new();
        for r in &w.bcd {
            // A stale entry (a partition deleted since) names no partition: Windows
            // cannot use it either, so it is reported and left as it is.
            let Some(new_offset) = new_start(plan, r.offset) else {
                lines.push(format!(
                    "partition {number}: BCD {} element {} names byte {}, where no partition starts; left as it is",
                    r.object, r.element, r.offset
                ));
                continue;
            };
            if new_offset != r.offset || r.signature != signature {
                moves.push(Move { r, new_offset });
            }
        }
        if moves.is_empty() {
            if !w.bcd.is_empty() {
                lines.push(format!(
                    "partition {number}: Windows boot store (BCD): the partitions it names kept their start; left as it is"
                ));
            }
            continue;
        }
        rewrite(
            target,
            target_path,
            pt.new_offset,
            pt.new_size,
            &moves,
            signature,
        )?;
        for m in &moves {
            lines.push(format!(
                "partition {number}: BCD {} element {}: partition at byte {} -> {}, disk signature {:08x} -> {signature:08x} (read back)",
                m.r.object, m.r.element, m.r.offset, m.new_offset, m.r.signature
            ));
        }
    }
    Ok(lines)
}

/// The hive's working copy, removed however the rewrite ends.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn read_hive(target: &dyn BlockDevice, offset: u64, len: u64) -> Result<Vec<u8>, ImagingError> {
    let part: Arc<dyn BlockDevice + '_> = Arc::new(Window::new(target, offset, len)?);
    let mut fs = browse::open_ntfs(part).map_err(|e| err(e.to_string()))?;
    let mut hive = Vec::new();
    fs.copy_to(BCD_PATH, &mut hive)
        .map_err(|e| err(e.to_string()))?;
    Ok(hive)
}

fn rewrite(
    target: &dyn BlockDevice,
    target_path: &Path,
    offset: u64,
    len: u64,
    moves: &[Move<'_>],
    signature: u32,
) -> Result<(), ImagingError> {
    let hive = read_hive(target, offset, len)?;
    // One new value per element: an element may hold more than one descriptor.
    let mut values: BTreeMap<(&str, &str), Vec<u8>> = BTreeMap::new();
    for m in moves {
        let key = (m.r.object.as_str(), m.r.element.as_str());
        let data = match values.remove(&key) {
            Some(d) => d,
            None => bcd::element_data(&hive, key.0, key.1)?,
        };
        values.insert(key, bcd::repoint(&data, m.r.at, m.new_offset, signature)?);
    }
    let mut script = String::new();
    for ((object, element), data) in &values {
        script.push_str(&format!(
            "cd \\Objects\\{object}\\Elements\\{element}\nsetval 1\nElement\n{}\n",
            bcd::hivexsh_binary(data)
        ));
    }
    script.push_str("commit\n");
    let file = Scratch(
        std::env::temp_dir().join(format!("ironclone-bcd-{}-{offset}", std::process::id())),
    );
    std::fs::write(&file.0, &hive).map_err(|e| err(format!("{}: {e}", file.0.display())))?;
    let f = file.0.display().to_string();
    run_tool("hivexsh", &["-w", &f], Some(&script), &[0]).map_err(|e| err(e.to_string()))?;
    {
        let lo = LoopDevice::attach(target_path, offset, len).map_err(|e| err(e.to_string()))?;
        let dev = lo.path().display().to_string();
        run_tool("ntfscp", &["-q", "-f", &dev, &f, BCD_PATH], None, &[0])
            .map_err(|e| err(e.to_string()))?;
    }
    // Read back through the target: every moved descriptor names the new place.
    let back = read_hive(target, offset, len)?;
    let now = bcd::device_refs(&back, signature)?;
    for m in moves {
        let ok = now.iter().any(|r| {
            r.object == m.r.object
                && r.element == m.r.element
                && r.at == m.r.at
                && r.offset == m.new_offset
        });
        if !ok {
            return Err(err(format!(
                "{} element {} does not name byte {} after the rewrite",
                m.r.object, m.r.element, m.new_offset
            )));
        }
    }
    Ok(())
}

//! The demo's stand-in for the restore planner: system partitions keep their size,
//! data partitions scale, an explicit `max` takes what the others leave. Enough to
//! drive the TUI's plan screen without a disk.

use super::{FakeServices, MIB};
use crate::tui::model::{LayoutMode, PlanAction, PlanRow, PlanView, RestoreOptions, SizeChoice};
use crate::tui::services::ServiceError;

impl FakeServices {
    pub(super) fn layout(
        &self,
        rows: Vec<(u32, &str, &str, u64, u64)>,
        target_size: u64,
        options: &RestoreOptions,
    ) -> Result<PlanView, ServiceError> {
        // A small stand-in for the real planner: system partitions keep their size, data
        // partitions scale, an explicit `max` takes what the others leave.
        let usable = target_size.saturating_sub(2 * MIB);
        let old_total: u64 = rows.iter().map(|r| r.3).sum();
        let fixed = |fs: &str, label: &str| {
            fs == "vfat" || fs == "msr" || fs == "swap" || label == "Recovery"
        };
        let data_old: u64 = rows.iter().filter(|r| !fixed(r.1, r.2)).map(|r| r.3).sum();
        let fixed_total: u64 = rows.iter().filter(|r| fixed(r.1, r.2)).map(|r| r.3).sum();
        if options.mode == LayoutMode::Keep && old_total + 2 * MIB > target_size {
            return Err(format!(
                "The old layout does not fit: it needs {} and the disk has {}. Use the proportional layout.",
                crate::units::human_bytes(old_total + 2 * MIB),
                crate::units::human_bytes(target_size)
            ).into());
        }
        let has_max = options.sizes.iter().any(|(_, s)| *s == SizeChoice::Max);
        let sizes: Vec<Option<u64>> = rows
            .iter()
            .map(|(number, fs, label, size, _)| {
                let chosen = options.sizes.iter().find(|(n, _)| n == number).map(|x| x.1);
                match (options.mode, chosen) {
                    (_, Some(SizeChoice::Bytes(b))) => Some(b),
                    (_, Some(SizeChoice::Max)) => None,
                    (LayoutMode::Keep, None) => Some(*size),
                    (LayoutMode::Proportional, None) if has_max || fixed(fs, label) => Some(*size),
                    (LayoutMode::Proportional, None) => {
                        let room = usable.saturating_sub(fixed_total);
                        let scaled =
                            (*size as u128 * room as u128 / data_old.max(1) as u128) as u64;
                        Some(scaled / MIB * MIB)
                    }
                }
            })
            .collect();
        let taken: u64 = sizes.iter().flatten().sum();
        let rest = usable.saturating_sub(taken) / MIB * MIB;
        let mut out = Vec::new();
        let mut old_start = MIB;
        let mut new_start = MIB;
        for ((number, fs, label, size, used), new_size) in rows.iter().zip(sizes) {
            let new_size = new_size.unwrap_or(rest);
            if new_size < *used + *used / 20 {
                return Err(format!(
                    "Partition {number} ({fs}) would be {} but holds {} of data; it needs {} more.",
                    crate::units::human_bytes(new_size),
                    crate::units::human_bytes(*used),
                    crate::units::human_bytes(*used + *used / 20 - new_size)
                )
                .into());
            }
            let action = match new_size.cmp(size) {
                std::cmp::Ordering::Equal => PlanAction::Copy,
                std::cmp::Ordering::Greater => PlanAction::Grow,
                std::cmp::Ordering::Less => PlanAction::Shrink,
            };
            out.push(PlanRow {
                number: *number,
                fs: fs.to_string(),
                label: label.to_string(),
                old_start,
                old_size: *size,
                new_start,
                new_size,
                used: *used,
                action,
            });
            old_start += size;
            new_start += new_size;
        }
        if new_start > usable + MIB {
            return Err(format!(
                "The chosen sizes need {} more than the disk has.",
                crate::units::human_bytes(new_start - usable - MIB)
            )
            .into());
        }
        Ok(PlanView {
            table: "GPT".into(),
            target_size,
            rows: out,
            notes: vec!["Aligned to 1 MiB. Disk and partition GUIDs are kept.".into()],
        })
    }
}

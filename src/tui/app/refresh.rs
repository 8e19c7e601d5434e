//! The disk list's refresh (on open, on `r`, every two seconds on a picker) and the
//! highlight that must stay on the disk the person chose while rows come and go.

use super::*;

impl App {
    /// Re-reads the disks. The highlight follows the disk (or partition) it was on, not
    /// the row number: the list is re-read every two seconds, and a disk that appears
    /// (a stick plugged in, an NVMe disk that shows up late at boot and sorts first)
    /// shifts the rows, so keeping the number would make Enter pick a disk the person
    /// never chose. A row that is gone leaves the highlight on the nearest row.
    pub fn refresh_disks(&mut self) {
        self.last_refresh = Some(Instant::now());
        let before = self.highlighted_row();
        match self.services.list_disks() {
            Ok(d) => {
                self.disks = d;
                self.disks_error = None;
            }
            Err(e) => self.disks_error = Some(e.to_string()),
        }
        let targets = self.part_targets();
        let found = before.and_then(|(dev, part)| match part {
            None => self.disks.iter().position(|d| d.dev == dev),
            Some(n) => targets.iter().position(|&(d, p)| {
                self.disks[d].dev == dev && self.disks[d].partitions[p].number == n
            }),
        });
        let rows = match self.stack.last() {
            Some(Screen::PartTargets { .. }) => targets.len(),
            _ => self.disks.len(),
        };
        match self.stack.last_mut() {
            Some(Screen::Disks { sel, .. }) | Some(Screen::PartTargets { sel, .. }) => {
                *sel = found.unwrap_or(*sel).min(rows.saturating_sub(1));
            }
            _ => {}
        }
    }

    /// The disk (kernel path) and, on the partition list, the partition number under
    /// the highlight.
    fn highlighted_row(&self) -> Option<(String, Option<u32>)> {
        match self.stack.last() {
            Some(Screen::Disks { sel, .. }) => Some((self.disks.get(*sel)?.dev.clone(), None)),
            Some(Screen::PartTargets { sel, .. }) => {
                let &(d, p) = self.part_targets().get(*sel)?;
                let disk = self.disks.get(d)?;
                Some((disk.dev.clone(), Some(disk.partitions.get(p)?.number)))
            }
            _ => None,
        }
    }
}

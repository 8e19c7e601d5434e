//! The partition picker of a saved partition's restore (one partition of a Clonezilla
//! saveparts image): every partition of every disk, one row each, so the disk's
//! identity is beside each. Only the chosen partition is written and no table is;
//! its disk must still pass the whole-disk rules (not the boot medium, nothing on it
//! mounted, not the repository's disk), as the CLI's `restore --part` requires.

use super::*;

impl App {
    /// The picker's rows: (index into `disks`, index into its partitions).
    pub fn part_targets(&self) -> Vec<(usize, usize)> {
        self.disks
            .iter()
            .enumerate()
            .flat_map(|(d, disk)| (0..disk.partitions.len()).map(move |p| (d, p)))
            .collect()
    }

    pub(super) fn open_part_targets(&mut self) {
        self.push(Screen::PartTargets { sel: 0, note: None });
        self.refresh_disks();
    }

    fn set_part_sel(&mut self, v: usize) {
        if let Some(Screen::PartTargets { sel, note }) = self.stack.last_mut() {
            *sel = v;
            *note = None;
        }
    }

    pub(super) fn on_part_targets(&mut self, sel: usize, k: &KeyEvent) {
        let rows = self.part_targets();
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Char('r') => self.refresh_disks(),
            // An image without a table may also go onto a whole disk (one that is a
            // filesystem or LUKS as a whole): the disk picker, over this one.
            KeyCode::Char('w') if self.choices.image.as_ref().is_some_and(|i| i.table_less) => {
                self.choices.target_part = None;
                self.open_disks(DiskPurpose::RestoreTarget);
            }
            KeyCode::Up | KeyCode::Char('k') if sel > 0 => self.set_part_sel(sel - 1),
            KeyCode::Down | KeyCode::Char('j') if sel + 1 < rows.len() => {
                self.set_part_sel(sel + 1)
            }
            KeyCode::Enter => {
                let Some(&(d, p)) = rows.get(sel) else {
                    return;
                };
                let Some(disk) = self.disks.get(d).cloned() else {
                    return;
                };
                let Some(number) = disk.partitions.get(p).map(|p| p.number) else {
                    return;
                };
                if let Some(why) = self.refuse_target(&disk) {
                    self.set_note(Some(why));
                    return;
                }
                self.choices.target = Some(disk);
                self.choices.target_part = Some(number);
                self.choices.options = RestoreOptions::default();
                self.replan();
                self.push(Screen::Plan { sel: 0, size: None });
            }
            _ => {}
        }
    }
}

//! Savedisk images of more than one disk (`disk` reads `sda sdb`): each disk has its
//! own table dump and boot areas, and `parts` lists the partitions of all of them. A
//! restore or import handles one disk at a time, so the image is looked at through a
//! view of one disk: that disk's layout and the partitions its table holds. Every
//! other path (assemble, plan, browse) then works on the view unchanged.

use super::error::ClonezillaError;
use super::{ClonezillaImage, DiskLayout};

impl ClonezillaImage {
    /// A saveparts image: partitions only, no disk (table) saved.
    pub fn is_saveparts(&self) -> bool {
        self.disks.is_empty()
    }

    /// The saved disk whose table holds partition `part`.
    pub fn disk_of(&self, part: &str) -> Option<&DiskLayout> {
        let node = format!("/dev/{part}");
        self.layouts
            .iter()
            .find(|l| l.table.entries.iter().any(|e| e.node == node))
    }

    /// The image as seen for one disk: `disk` names it (it must be one of the image's),
    /// or may be left out when the image holds at most one. A saveparts image is
    /// returned whole (it has no disk to pick).
    pub fn for_disk(&self, disk: Option<&str>) -> Result<ClonezillaImage, ClonezillaError> {
        let have = || self.disks.join(", ");
        let chosen = match (disk, self.layouts.as_slice()) {
            (None, [] | [_]) => return Ok(self.clone()),
            (None, many) => {
                return Err(ClonezillaError::ChooseDisk {
                    dir: self.dir.clone(),
                    n: many.len(),
                    have: have(),
                })
            }
            (Some(d), ls) => {
                ls.iter()
                    .find(|l| l.disk == d)
                    .ok_or_else(|| ClonezillaError::NoSuchDisk {
                        dir: self.dir.clone(),
                        disk: d.to_string(),
                        have: if self.disks.is_empty() {
                            "no disk: it is a saveparts image".into()
                        } else {
                            have()
                        },
                    })?
            }
        };
        if self.layouts.len() > 1 {
            // A partition no table holds would be silently dropped from every view.
            if let Some(p) = self
                .partitions
                .iter()
                .find(|p| self.disk_of(&p.part).is_none())
            {
                return Err(ClonezillaError::PartOnNoDisk {
                    dir: self.dir.clone(),
                    part: p.part.clone(),
                    have: have(),
                });
            }
        }
        let mine = |part: &str| {
            let node = format!("/dev/{part}");
            chosen.table.entries.iter().any(|e| e.node == node)
        };
        let mut v = self.clone();
        v.elsewhere = self.parts.iter().filter(|p| !mine(p)).cloned().collect();
        v.disks = vec![chosen.disk.clone()];
        v.layouts = vec![chosen.clone()];
        v.parts.retain(|p| mine(p));
        v.partitions.retain(|p| mine(&p.part));
        v.luks.retain(|l| mine(&l.part));
        v.dev_fs.retain(|d| mine(&d.dev));
        Ok(v)
    }
}

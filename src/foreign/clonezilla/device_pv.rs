//! `ImageDevice::open_pv`: one LVM PV of a saveparts image, read as a disk without a
//! table that holds only the PV (lvm_place::place_bare), the table-less device it and
//! `open_luks` start from (`bare`), and the LVM slots it shares with
//! `ImageDevice::open` (`add_pvs`).

use super::super::lvm_place;
use super::super::ClonezillaImage;
use super::{AssembleError, Budget, Cursor, ImageDevice, Slot};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

impl ImageDevice {
    /// Opens the PV partition `part` of a saveparts image alone, as a disk without a
    /// table that holds only the PV (`lvm_place::place_bare`): lvm2's label and
    /// metadata in a sparse file of the PV's size at `scratch` (removed when the device
    /// is dropped), each LV's image decoded on demand at its extents.
    pub fn open_pv(
        img: &ClonezillaImage,
        part: &str,
        scratch: &Path,
    ) -> Result<Self, AssembleError> {
        let pv = lvm_place::place_bare(img, part)?;
        let name = format!("Clonezilla image {} PV {part}", img.dir.display());
        let mut dev = Self::bare(name, scratch, pv.len)?;
        dev.add_pvs(vec![pv], scratch)?;
        Ok(dev)
    }

    /// A device without a table of `size` bytes and no slots yet (a saveparts image's
    /// PV or LUKS partition alone): its sparse file at `scratch`, removed when the
    /// device is dropped; 512-byte sectors (lvm2 and LUKS count in them whatever the
    /// disk's).
    pub(super) fn bare(name: String, scratch: &Path, size: u64) -> Result<Self, AssembleError> {
        let scratch_err = |source| AssembleError::Scratch {
            file: scratch.to_path_buf(),
            source,
        };
        let table = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(scratch)
            .map_err(scratch_err)?;
        let dev = ImageDevice {
            name,
            table,
            table_path: scratch.to_path_buf(),
            size,
            sector: 512,
            slots: Vec::new(),
            restarts: AtomicU64::new(0),
            planning: AtomicBool::new(true),
            budget: Budget::from_env(),
            cancel: Arc::new(AtomicBool::new(false)),
            inner: Vec::new(),
        };
        // Set after `dev` owns the file: Drop removes it if this fails.
        dev.table.set_len(size).map_err(scratch_err)?;
        Ok(dev)
    }

    /// Writes the PVs' heads into the table's file and adds their LVs' segments as slots.
    pub(super) fn add_pvs(
        &mut self,
        pvs: Vec<lvm_place::PvPlace>,
        scratch: &Path,
    ) -> Result<(), AssembleError> {
        lvm_place::write_heads(&pvs, scratch)?;
        // Swap LVs hold only the header write_heads made (Clonezilla saves no data).
        for piece in pvs
            .into_iter()
            .flat_map(|p| p.pieces)
            .filter(|p| !p.is_swap())
        {
            self.slots.push(Slot {
                image: piece.image,
                offset: piece.offset,
                len: piece.len,
                base: piece.base,
                whole: piece.lv_len,
                keeps: piece.base == 0 && piece.len == piece.lv_len,
                header: None,
                cursor: Mutex::new(Cursor::default()),
            });
        }
        self.slots.sort_by_key(|s| s.offset);
        Ok(())
    }
}

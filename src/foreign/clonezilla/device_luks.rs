//! The LUKS partitions of a Clonezilla image (luks.rs) in `ImageDevice`: placed by the
//! table of a savedisk image, or (`open_luks`) a saveparts image's partition alone as
//! a table-less disk sized by its header and its inner image. The partition
//! reads its header file (bytes 0..data_offset as `luksHeaderBackup` saved them; the
//! ciphertext after them was never saved and reading it is an error, see
//! `luks::HeaderFile`), and the opened volume's plaintext is a device of its own, a
//! table-less `ImageDevice` over the inner image (like `open_pv`), handed to the
//! planner as an open volume (`imaging::LuksBackup::with_open_volumes`). So the plan is
//! ironclone's native "imaged with its key" layout: the header area and the
//! `-plaintext` area, restored by the native LUKS restore (luks_restore.rs).

use super::super::luks::{self, check_header, LuksInner, LuksVolume};
use super::super::lvm_place::{self, PvPlace};
use super::super::partimg::{PartImage, PartImageKind};
use super::super::stream::PartStream;
use super::super::{ClonezillaImage, DiskLayout};
use super::{placement, AssembleError, Cursor, ImageDevice, Slot};
use crate::imaging::{LuksBackup, OpenVolume};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

/// The LVM PV Clonezilla saved from inside a LUKS volume (`/dev/mapper/<mapper>` in
/// `lvm_vg_dev.list`): placed from byte 0 of the volume's plaintext as a saveparts PV
/// is (`lvm_place::place_bare`), over the whole volume, which lvm2's head and the LVs'
/// extents must fit.
fn luks_pv(
    img: &ClonezillaImage,
    mapper: &str,
    vg: &str,
    data_len: u64,
) -> Result<PvPlace, AssembleError> {
    let mut pv = lvm_place::place_bare(img, &format!("mapper/{mapper}"))?;
    let end = pv
        .pieces
        .iter()
        .map(|p| p.offset.saturating_add(p.len))
        .max()
        .unwrap_or(0);
    if pv.len.max(end) > data_len {
        return Err(AssembleError::Layout {
            file: pv.conf.clone(),
            why: format!(
                "VG {vg}: its PV ({} bytes) does not fit the {data_len}-byte LUKS volume \
                 {mapper}",
                pv.len.max(end)
            ),
        });
    }
    pv.len = data_len;
    Ok(pv)
}

/// The header file of `v` as the partition's slot image.
fn header_image(v: &LuksVolume) -> PartImage {
    PartImage {
        part: v.part.clone(),
        kind: PartImageKind::Dd,
        path: v.header.clone(),
    }
}

/// The opened volume's size as a saveparts image tells it (no table gives the
/// partition's): the inner filesystem's size from its image's header, or the inner
/// PV's from its VG's metadata. Swap and dd images inside carry no size.
fn saved_volume_len(img: &ClonezillaImage, v: &LuksVolume) -> Result<u64, AssembleError> {
    let unknown = |what: &str| AssembleError::Layout {
        file: img.dir.join(luks::LIST),
        why: format!(
            "partition {} is LUKS holding {what}, whose size the saveparts image does not \
             give (no table): not restored or imported",
            v.part
        ),
    };
    match &v.inner {
        LuksInner::Image(image) if image.kind == PartImageKind::Swap => Err(unknown("swap")),
        LuksInner::Image(image) => {
            let bytes = PartStream::open(image, u64::MAX)?.image_bytes();
            if bytes == 0 {
                return Err(unknown("a dd image"));
            }
            Ok(bytes)
        }
        LuksInner::Pv { .. } => {
            Ok(lvm_place::place_bare(img, &format!("mapper/{}", v.mapper))?.len)
        }
    }
}

/// One LUKS partition's plaintext, read from its inner image.
pub(super) struct Inner {
    /// The partition's byte offset on the image's disk.
    pub partition_offset: u64,
    pub mapper: String,
    pub dev: Arc<ImageDevice>,
}

impl ImageDevice {
    /// Adds each LUKS partition of `img` (on the disk `layout`, `size` bytes): its
    /// header slot, checked (luks::check_header), and its plaintext device, whose
    /// sparse table file is `<scratch>.<mapper>`.
    pub(super) fn add_luks(
        &mut self,
        img: &ClonezillaImage,
        layout: &DiskLayout,
        size: u64,
        scratch: &Path,
    ) -> Result<(), AssembleError> {
        for v in &img.luks {
            let header = header_image(v);
            let (offset, len) = placement(img, layout, &header, size)?;
            self.add_volume(img, v, offset, len, scratch)?;
        }
        self.slots.sort_by_key(|s| s.offset);
        Ok(())
    }

    /// Opens the LUKS partition `part` (or its mapping's name) of a saveparts image
    /// alone, as a disk without a table that is the partition: its header file, then
    /// the opened volume as the inner image's filesystem (or the inner PV) needs it,
    /// since the image saved no table that gives the partition's size. `scratch` is
    /// the sparse table file (removed when the device is dropped).
    pub fn open_luks(
        img: &ClonezillaImage,
        part: &str,
        scratch: &Path,
    ) -> Result<Self, AssembleError> {
        let v = img.luks_volume(part).ok_or_else(|| AssembleError::Layout {
            file: img.dir.join(luks::LIST),
            why: format!("no LUKS partition {part}"),
        })?;
        let (h, _) = check_header(v, u64::MAX >> 1)?;
        let data_len = saved_volume_len(img, v)?;
        let len = h
            .data_offset
            .checked_add(data_len)
            .ok_or_else(|| AssembleError::Layout {
                file: v.header.clone(),
                why: format!("partition {}: its size overflows", v.part),
            })?;
        let name = format!("Clonezilla image {} LUKS {}", img.dir.display(), v.part);
        let mut dev = Self::bare(name, scratch, len)?;
        dev.add_volume(img, v, 0, len, scratch)?;
        Ok(dev)
    }

    /// Adds LUKS partition `v` at `offset`, `len` bytes: its header slot, checked,
    /// and its plaintext device (sparse table file `<scratch>.<mapper>`).
    fn add_volume(
        &mut self,
        img: &ClonezillaImage,
        v: &LuksVolume,
        offset: u64,
        len: u64,
        scratch: &Path,
    ) -> Result<(), AssembleError> {
        let (h, hdr) = check_header(v, len)?;
        let data_len = h.data_len(len).ok_or_else(|| AssembleError::Layout {
            file: v.header.clone(),
            why: format!("partition {}: no room for its LUKS data", v.part),
        })?;
        let table = PathBuf::from(format!("{}.{}", scratch.display(), v.mapper));
        let dev = match &v.inner {
            LuksInner::Image(image) => {
                // The inner image must fit the volume: refused here, naming its
                // file, rather than as a failed probe (which would plan it raw).
                if image.kind != PartImageKind::Swap {
                    drop(PartStream::open(image, data_len)?);
                }
                self.open_inner(img, Some(image), &v.mapper, data_len, &table)?
            }
            LuksInner::Pv { vg } => {
                let pv = luks_pv(img, &v.mapper, vg, data_len)?;
                let mut dev = self.open_inner(img, None, &v.mapper, data_len, &table)?;
                dev.add_pvs(vec![pv], &table)?;
                dev
            }
        };
        self.slots.push(Slot {
            image: header_image(v),
            offset,
            len,
            base: 0,
            whole: len,
            keeps: false,
            header: Some(hdr),
            cursor: Mutex::new(Cursor::default()),
        });
        self.inner.push(Inner {
            partition_offset: offset,
            mapper: v.mapper.clone(),
            dev: Arc::new(dev),
        });
        Ok(())
    }

    /// The plaintext of one LUKS volume: `data_len` bytes, the inner image (if any)
    /// decoded on demand at offset 0 (swap: a fresh header with the saved UUID and
    /// label, zeros after it, as Clonezilla saved no data for it; an LVM PV's slots are
    /// added by the caller).
    fn open_inner(
        &self,
        img: &ClonezillaImage,
        image: Option<&PartImage>,
        mapper: &str,
        data_len: u64,
        table_path: &Path,
    ) -> Result<ImageDevice, AssembleError> {
        let scratch_err = |source| AssembleError::Scratch {
            file: table_path.to_path_buf(),
            source,
        };
        let table = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(table_path)
            .map_err(scratch_err)?;
        let mut dev = ImageDevice {
            name: format!(
                "Clonezilla image {} LUKS volume {mapper}",
                img.dir.display()
            ),
            table,
            table_path: table_path.to_path_buf(),
            size: data_len,
            sector: 512,
            slots: Vec::new(),
            restarts: AtomicU64::new(0),
            planning: AtomicBool::new(true),
            budget: self.budget.share(),
            cancel: Arc::clone(&self.cancel),
            inner: Vec::new(),
        };
        // Set after `dev` owns the file: Drop removes it if this fails.
        dev.table.set_len(data_len).map_err(scratch_err)?;
        // Swap: Clonezilla saved only its UUID and label; its header is made again at
        // the volume's start, as for a swap partition or LV (lvm_place::write_heads).
        if let Some(swappt) = image.filter(|i| i.kind == PartImageKind::Swap) {
            lvm_place::write_swap_header(
                swappt,
                &format!("swap inside LUKS volume {mapper}"),
                data_len,
                table_path,
                0,
            )?;
        }
        if let Some(image) = image.filter(|i| i.kind != PartImageKind::Swap) {
            dev.slots.push(Slot {
                image: image.clone(),
                offset: 0,
                len: data_len,
                base: 0,
                whole: data_len,
                keeps: true,
                header: None,
                cursor: Mutex::new(Cursor::default()),
            });
        }
        Ok(dev)
    }

    /// The planner's view of the LUKS partitions: each one's plaintext as an open
    /// volume; `None` when the image has none.
    pub fn luks_backup(&self) -> Option<LuksBackup> {
        if self.inner.is_empty() {
            return None;
        }
        let open = self
            .inner
            .iter()
            .map(|i| OpenVolume {
                partition_offset: i.partition_offset,
                name: i.mapper.clone(),
                plain: Box::new(Arc::clone(&i.dev)),
            })
            .collect();
        Some(LuksBackup::with_open_volumes(open, self.size))
    }

    /// The mapping names of the LUKS volumes this device holds.
    pub fn luks_mappers(&self) -> impl Iterator<Item = &str> {
        self.inner.iter().map(|i| i.mapper.as_str())
    }

    /// The plaintext devices, for the check and the planning switches.
    pub(super) fn inner_devices(&self) -> impl Iterator<Item = &ImageDevice> {
        self.inner.iter().map(|i| i.dev.as_ref())
    }

    /// Every slot that decodes an image, this device's and its LUKS volumes', each
    /// with the device that reads it.
    pub(super) fn decoding_slots(&self) -> Vec<(&ImageDevice, &Slot)> {
        let own = self.slots.iter().map(|s| (self, s));
        let inner = self
            .inner_devices()
            .flat_map(|d| d.slots.iter().map(move |s| (d, s)));
        own.chain(inner)
            .filter(|(_, s)| s.base == 0 && s.header.is_none())
            .collect()
    }
}

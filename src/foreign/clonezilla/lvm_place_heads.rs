//! Writing a placed image's LVM heads into the image disk's sparse table file: lvm2
//! lays down each PV's label and metadata (a VG's PVs together, stand-ins for PVs of the
//! image's other disks), and mkswap each swap LV's header (lvm_place.rs places them).

use super::{LvPiece, PvPlace};
use crate::foreign::clonezilla::assemble::AssembleError;
use crate::foreign::clonezilla::{read_text, PartImage, PartImageKind};
use crate::resize::{lvm_write_vg, LoopDevice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Has lvm2 write each PV's label and metadata into `table` (the image disk's sparse
/// file) at the PV's place, as Clonezilla's restore has it write them onto the
/// partition, and mkswap each swap LV's header there (Clonezilla saves no data for
/// swap, only its UUID and label). The PVs of one VG are written together, each on a
/// loop device of its own (`lvm_write_vg`). Needs root (loop devices).
pub fn write_heads(places: &[PvPlace], table: &Path) -> Result<(), AssembleError> {
    let mut vgs: Vec<&str> = places.iter().map(|p| p.vg.as_str()).collect();
    vgs.sort_unstable();
    vgs.dedup();
    for vg in vgs {
        let pvs: Vec<&PvPlace> = places.iter().filter(|p| p.vg == vg).collect();
        let Some(first) = pvs.first() else { continue };
        let names: Vec<&str> = pvs.iter().map(|p| p.part.as_str()).collect();
        let fail = |why: String| AssembleError::Layout {
            file: first.conf.clone(),
            why: format!(
                "re-creating PV {} of VG {vg} with lvm2 (pvcreate --restorefile, vgcfgrestore): \
                 {why}",
                names.join(" and ")
            ),
        };
        {
            let mut loops = Vec::new();
            let mut ids: Vec<String> = Vec::new();
            for p in &pvs {
                loops.push(
                    LoopDevice::attach(table, p.offset, p.len).map_err(|e| fail(e.to_string()))?,
                );
                ids.push(p.uuid.clone());
            }
            // PVs on the image's other disks: written when those disks are restored.
            let stand_ins = stand_ins(first, &ids, table).map_err(fail)?;
            for s in &stand_ins {
                loops.push(LoopDevice::attach(&s.path, 0, s.len).map_err(|e| fail(e.to_string()))?);
                ids.push(s.uuid.clone());
            }
            let devs: Vec<(&Path, &str)> = loops
                .iter()
                .zip(&ids)
                .map(|(lo, id)| (lo.path(), id.as_str()))
                .collect();
            lvm_write_vg(&devs, vg, &first.conf).map_err(|e| fail(e.to_string()))?;
        }
        for piece in pvs
            .iter()
            .flat_map(|p| &p.pieces)
            .filter(|x| x.is_swap() && x.base == 0)
        {
            swap_header(piece, table)?;
        }
    }
    Ok(())
}

/// A sparse scratch file standing in for a PV of another disk while lvm2 writes this
/// disk's PVs (`vgcfgrestore` wants every PV of the VG in view); removed when dropped.
struct StandIn {
    path: PathBuf,
    len: u64,
    uuid: String,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A stand-in, beside `table`, for each PV of `place`'s VG whose id is not in `ids`, as
/// long as lvm2 last saw it (`PvPlace::vg_pvs`).
fn stand_ins(place: &PvPlace, ids: &[String], table: &Path) -> Result<Vec<StandIn>, String> {
    let mut out = Vec::new();
    for (n, (id, len)) in place.vg_pvs.iter().enumerate() {
        if ids.contains(id) {
            continue;
        }
        let mut name = table.as_os_str().to_owned();
        name.push(format!(".{}-pv{n}", place.vg));
        let s = StandIn {
            path: PathBuf::from(name),
            len: *len,
            uuid: id.clone(),
        };
        let f = std::fs::File::create(&s.path)
            .map_err(|e| format!("stand-in {}: {e}", s.path.display()))?;
        f.set_len(*len)
            .map_err(|e| format!("stand-in {}: {e}", s.path.display()))?;
        out.push(s);
    }
    Ok(out)
}

impl LvPiece {
    /// A swap LV: no data saved, its header is made again (`write_heads`).
    pub fn is_swap(&self) -> bool {
        self.image.kind == PartImageKind::Swap
    }
}

/// The header page mkswap writes (the signature ends the first 4 KiB page on x86).
const SWAP_HEADER: usize = 4096;

/// `UUID="..."` and `LABEL="..."` of a `swappt-<part>.info` file.
pub(super) fn swap_ids(text: &str) -> (Option<String>, Option<String>) {
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().trim_matches('"').to_string())
            .find(|v| !v.is_empty())
    };
    (get("UUID="), get("LABEL="))
}

/// Writes the header of swap LV `piece` (its first segment) into `table`.
fn swap_header(piece: &LvPiece, table: &Path) -> Result<(), AssembleError> {
    // The page goes into the first segment, which must hold it.
    if piece.len < SWAP_HEADER as u64 {
        return Err(AssembleError::Layout {
            file: piece.image.path.clone(),
            why: format!("swap LV {}: smaller than a page", piece.image.part),
        });
    }
    write_swap_header(
        &piece.image,
        &format!("swap LV {}", piece.image.part),
        piece.lv_len,
        table,
        piece.offset,
    )
}

/// Writes the header page of the swap `swappt` (`swappt-<name>.info`, Clonezilla saved
/// no data, only the UUID and label) for a swap area of `len` bytes into `table` at
/// byte `at`: mkswap on a sparse scratch file of that size with the saved UUID and
/// label, its first page copied. `what` names the area in errors ("swap LV vg0-swap").
pub(crate) fn write_swap_header(
    swappt: &PartImage,
    what: &str,
    len: u64,
    table: &Path,
    at: u64,
) -> Result<(), AssembleError> {
    let info = &swappt.path;
    let (uuid, label) = swap_ids(&read_text(info)?);
    if len < SWAP_HEADER as u64 {
        return Err(AssembleError::Layout {
            file: info.clone(),
            why: format!("{what}: smaller than a page"),
        });
    }
    let scratch = table.with_extension(format!("swap-{}", swappt.part));
    let io = |source| AssembleError::Scratch {
        file: scratch.clone(),
        source,
    };
    let result = (|| {
        let f = std::fs::File::create(&scratch).map_err(io)?;
        f.set_len(len).map_err(io)?;
        drop(f);
        // The page size the header is cut at (x86 systems swap in 4 KiB pages).
        let mut args: Vec<&str> = vec!["-q", "-p", "4096"];
        if let Some(u) = &uuid {
            args.extend(["-U", u.as_str()]);
        }
        if let Some(l) = &label {
            args.extend(["-L", l.as_str()]);
        }
        let path = scratch.display().to_string();
        args.push(&path);
        crate::resize::run_tool("mkswap", &args, None, &[0]).map_err(|e| {
            AssembleError::Layout {
                file: info.clone(),
                why: format!("{what}: {e}"),
            }
        })?;
        // Only the header page: the area may be gigabytes of holes.
        let mut page = vec![0u8; SWAP_HEADER];
        std::fs::File::open(&scratch)
            .and_then(|f| f.read_exact_at(&mut page, 0))
            .map_err(io)?;
        let out = std::fs::OpenOptions::new()
            .write(true)
            .open(table)
            .map_err(|source| AssembleError::Scratch {
                file: table.to_path_buf(),
                source,
            })?;
        out.write_all_at(&page, at)
            .map_err(|source| AssembleError::Scratch {
                file: table.to_path_buf(),
                source,
            })
    })();
    let _ = std::fs::remove_file(&scratch);
    result
}

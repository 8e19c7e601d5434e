//! Virtual machine disks (qcow2, VMDK, VHD/VHDX, VDI, QED) as backup sources and as
//! export targets: the format is read from the file's own magic (`format`), and the
//! disk is reached through qemu's block layer as a plain file (`attach`), so the rest
//! of ironclone sees a disk-image file like any other.

mod attach;
mod format;

pub use attach::Attached;
pub use format::{classify, sniff, VmFormat};

use crate::resize::{run_tool, ToolError};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum VdiskError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {tool}: {source} (is qemu installed? scripts/setup.sh installs it)")]
    Spawn {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("qemu-storage-daemon for {} {what}{}", image.display(), if log.is_empty() { String::new() } else { format!(":\n{log}") })]
    Daemon {
        image: PathBuf,
        what: String,
        log: String,
    },
    #[error("{}: unknown disk format for its extension (use .qcow2, .vhdx, .vhd, .vmdk, .vdi, or .img for raw)", path.display())]
    UnknownExtension { path: PathBuf },
    #[error("{} fails qemu-img check:\n{detail}", path.display())]
    Check { path: PathBuf, detail: String },
    #[error(transparent)]
    Tool(#[from] ToolError),
}

/// A backup source that is a VM disk, exported read-only for as long as this lives.
pub struct Source {
    pub format: VmFormat,
    pub attached: Attached,
}

/// `Some` when `path` is a VM disk container: it is then exported read-only (backing
/// files too) and the backup reads `attached.path()`. Raw files and block devices
/// give `None` and are read as they are.
pub fn open_source(path: &Path) -> Result<Option<Source>, VdiskError> {
    let Some(format) = sniff(path)? else {
        return Ok(None);
    };
    // qemu reads some damage as zeros instead of failing (an L1 table pointing past the
    // file's end): its own checker runs first, so such a disk is refused, not imaged
    // as an empty one. It reads only the metadata.
    check(path, format)?;
    let attached = Attached::start(path, format)?;
    Ok(Some(Source { format, attached }))
}

/// Options qemu-img is given for a new disk of `format`. VHD: without force_size qemu
/// rounds the size to a CHS geometry, and the disk the plan was made for would not be
/// the disk written. VHDX: 1 MiB blocks, as Microsoft advises for Linux guests; the
/// 32 MiB default made a 14 MiB image a 120 MiB file.
fn create_options(format: VmFormat) -> Option<&'static str> {
    match format {
        VmFormat::Vpc => Some("subformat=dynamic,force_size=on"),
        VmFormat::Vhdx => Some("subformat=dynamic,block_size=1M"),
        _ => None,
    }
}

/// Writes the raw disk `raw` as a new VM disk `out` (zeros left unallocated), then has
/// qemu compare the two, so a conversion that lost a byte is an error.
pub fn convert(raw: &Path, out: &Path, format: VmFormat) -> Result<(), VdiskError> {
    let (r, o) = (raw.display().to_string(), out.display().to_string());
    let mut args = vec!["convert", "-q", "-f", "raw", "-O", format.driver()];
    if let Some(opts) = create_options(format) {
        args.extend(["-o", opts]);
    }
    args.extend([r.as_str(), o.as_str()]);
    run_tool("qemu-img", &args, None, &[0])?;
    // 0 identical, 1 different, 2 an error (its message on stderr).
    let cmp = run_tool(
        "qemu-img",
        &["compare", "-q", "-f", "raw", "-F", format.driver(), &r, &o],
        None,
        &[0, 1],
    )?;
    if cmp.code != 0 {
        return Err(VdiskError::Check {
            path: out.to_path_buf(),
            detail: format!("qemu-img compare: its contents differ from {r}"),
        });
    }
    Ok(())
}

/// `qemu-img check`: `Ok(false)` when the format has no checker (VHD), an error
/// naming what it found when the image is inconsistent. Leaked clusters (left by a VM
/// that crashed) waste space but harm no data, so they pass.
pub fn check(path: &Path, format: VmFormat) -> Result<bool, VdiskError> {
    let p = path.display().to_string();
    // 0 clean, 1 check not completed, 2 corruptions, 3 leaked clusters only,
    // 63 the format cannot be checked.
    let out = run_tool(
        "qemu-img",
        &["check", "-f", format.driver(), &p],
        None,
        &[0, 1, 2, 3, 63],
    )?;
    match out.code {
        0 | 3 => Ok(true),
        63 => Ok(false),
        _ => Err(VdiskError::Check {
            path: path.to_path_buf(),
            detail: format!("{}{}", out.stdout.trim(), out.stderr.trim()),
        }),
    }
}

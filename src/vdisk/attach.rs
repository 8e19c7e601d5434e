//! A virtual disk seen as a plain file of its virtual size, through
//! `qemu-storage-daemon`'s FUSE export.
//!
//! qemu's block layer is the reference reader and writer of these formats (compressed
//! and encrypted-free qcow2 clusters, backing chains, VMDK extents, VHDX logs), so it is
//! used rather than a reader of our own. The FUSE export was chosen over `qemu-nbd`
//! (needs the nbd module, absent on many hosts) and over converting to a raw temporary
//! file (needs the whole virtual size in free space); docs/VDISK.md has the speeds.
//! The daemon runs as our child, so its exit status and messages are ours to check.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{VdiskError, VmFormat};

/// How long the daemon may take to open the image and mount the export.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it may take to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A running read-only export; the file at `path()` is the disk. Dropping it stops
/// the daemon.
pub struct Attached {
    child: Option<Child>,
    dir: PathBuf,
    mountpoint: PathBuf,
    image: PathBuf,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// qemu's option syntax splits on commas; a literal comma is written twice.
fn escape(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

impl Attached {
    /// Exports `image` (of format `format`) read-only, backing files included, at a
    /// fresh mount point. (Exports write a raw file and convert it: cli/export.rs says
    /// why writing through this export was dropped.)
    pub fn start(image: &Path, format: VmFormat) -> Result<Attached, VdiskError> {
        let image_abs = fs::canonicalize(image).map_err(|source| VdiskError::Read {
            path: image.to_path_buf(),
            source,
        })?;
        let dir = std::env::temp_dir().join(format!(
            "ironclone-vdisk-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VdiskError::Io { path, source }
        };
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mountpoint = dir.join("disk");
        File::create(&mountpoint).map_err(io(&mountpoint))?;
        let log = dir.join("daemon.log");
        let log_file = File::create(&log).map_err(io(&log))?;
        let args = [
            "--blockdev".to_string(),
            format!(
                "driver=file,node-name=file0,filename={},read-only=on",
                escape(&image_abs)
            ),
            "--blockdev".to_string(),
            format!(
                "driver={},node-name=disk0,file=file0,read-only=on",
                format.driver()
            ),
            "--export".to_string(),
            format!(
                "type=fuse,id=exp0,node-name=disk0,mountpoint={},writable=off",
                escape(&mountpoint)
            ),
        ];
        let child = Command::new("qemu-storage-daemon")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|source| VdiskError::Spawn {
                tool: "qemu-storage-daemon",
                source,
            })?;
        let mut a = Attached {
            child: Some(child),
            dir,
            mountpoint,
            image: image_abs,
        };
        a.wait_ready()?;
        Ok(a)
    }

    /// The disk as a file.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// The export is up once the mount point's device differs from its directory's:
    /// FUSE has mounted over it.
    fn wait_ready(&mut self) -> Result<(), VdiskError> {
        let start = Instant::now();
        let dir_dev = fs::metadata(&self.dir).map(|m| m.dev()).ok();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(VdiskError::Daemon {
                        image: self.image.clone(),
                        what: format!("exited ({status}) before the disk was exported"),
                        log: self.log(),
                    });
                }
            }
            let dev = fs::metadata(&self.mountpoint).map(|m| m.dev()).ok();
            if dev.is_some() && dev != dir_dev {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(VdiskError::Daemon {
                    image: self.image.clone(),
                    what: format!(
                        "did not export the disk within {} s",
                        READY_TIMEOUT.as_secs()
                    ),
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("daemon.log"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn stop(&mut self) -> Result<(), VdiskError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        // SIGTERM is the daemon's orderly shutdown: exports removed, images closed.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if start.elapsed() < EXIT_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        // A daemon that died without unmounting leaves a dead FUSE mount behind.
        let _ = nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH);
        let log = self.log();
        let _ = fs::remove_dir_all(&self.dir);
        match status {
            Some(s) if s.success() => Ok(()),
            Some(s) => Err(VdiskError::Daemon {
                image: self.image.clone(),
                what: format!("exited with {s} when stopped"),
                log,
            }),
            None => Err(VdiskError::Daemon {
                image: self.image.clone(),
                what: format!(
                    "did not stop within {} s and was killed",
                    EXIT_TIMEOUT.as_secs()
                ),
                log,
            }),
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

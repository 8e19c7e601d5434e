//! Drives one backup of a whole file through the repository engine, for the crash
//! test (killed with SIGKILL halfway) and for throughput measurements.
//!
//! usage: repo_backup_driver <SOURCE> <REPO> <NAME> [--chunk-size BYTES] [--pack-size BYTES] [--slow-ms N]
//!        [--level N] [--threads N]
//! `--slow-ms` sleeps that long per chunk read, so a test can kill it mid-way.

use ironclone::device::{self, Access, BlockDevice, DeviceError};
use ironclone::progress::NoProgress;
use ironclone::repo::{self, BackupOptions, BackupPlan, Repository, SourceInfo};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Slow<D> {
    inner: D,
    delay: Duration,
}

impl<D: BlockDevice> BlockDevice for Slow<D> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        std::thread::sleep(self.delay);
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.inner.write_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn logical_sector_size(&self) -> u32 {
        self.inner.logical_sector_size()
    }
    fn flush(&self) -> Result<(), DeviceError> {
        self.inner.flush()
    }
    fn access(&self) -> Access {
        self.inner.access()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Prints when each phase starts and ends, to see where the time goes.
struct Timing(Instant);

impl ironclone::progress::Progress for Timing {
    fn report(&self, e: ironclone::progress::ProgressEvent) {
        use ironclone::progress::ProgressEvent as E;
        if matches!(
            e,
            E::PhaseStart { .. } | E::PhaseEnd { .. } | E::JobEnd { .. }
        ) {
            eprintln!("{:8.3}s {e:?}", self.0.elapsed().as_secs_f64());
        }
    }
}

/// `--restore REPO NAME TARGET`: restores onto a (new, sparse) target file and times it.
fn restore(args: &[String]) -> anyhow::Result<()> {
    let (Some(repo_path), Some(name), Some(target)) = (args.get(2), args.get(3), args.get(4))
    else {
        anyhow::bail!("usage: repo_backup_driver --restore REPO NAME TARGET");
    };
    let r = Repository::open(repo_path.as_ref())?;
    let m = r.load_manifest(name)?;
    let f = std::fs::File::create(target)?;
    f.set_len(m.source.size)?;
    drop(f);
    let dev = device::open_path(target.as_ref(), Access::ReadWrite)?;
    let opts = repo::RestoreOptions {
        target_is_zeroed: true,
        verify_after: !args.iter().any(|a| a == "--no-verify"),
        ..Default::default()
    };
    let t = Instant::now();
    let rep = repo::restore(&r, name, &dev, &|a| Some(a.offset), &opts, &Timing(t))?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({ "seconds": secs, "mib_per_s": rep.bytes_written as f64 / 1048576.0 / secs, "report": rep })
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--restore") {
        return restore(&args);
    }
    let (Some(src), Some(repo_path), Some(name)) = (args.get(1), args.get(2), args.get(3)) else {
        anyhow::bail!("usage: repo_backup_driver SOURCE REPO NAME [--chunk-size B] [--pack-size B] [--slow-ms N] [--level N] [--threads N]");
    };
    let opt = |flag: &str| -> Option<u64> {
        let i = args.iter().position(|a| a == flag)?;
        args.get(i + 1)?.parse().ok()
    };
    let repo_path = PathBuf::from(repo_path);
    let repo = if repo_path.join("config").exists() {
        Repository::open(&repo_path)?
    } else {
        Repository::init(
            &repo_path,
            opt("--chunk-size")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(repo::DEFAULT_CHUNK_SIZE),
            opt("--pack-size").unwrap_or(repo::DEFAULT_PACK_SIZE),
        )?
    };
    let dev = device::open_path(src.as_ref(), Access::ReadOnly)?;
    let dev = Slow {
        inner: dev,
        delay: Duration::from_millis(opt("--slow-ms").unwrap_or(0)),
    };
    let plan = BackupPlan::whole_device(SourceInfo {
        path: src.clone(),
        size: dev.size(),
        sector_size: dev.logical_sector_size(),
        ..Default::default()
    });
    let mut o = BackupOptions::new(name.clone());
    o.level = opt("--level").map_or(3, |l| l as i32);
    o.threads = opt("--threads").unwrap_or(0) as usize;
    let t = Instant::now();
    let m = repo::backup(&repo, &dev, &plan, &o, &NoProgress)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "seconds": secs,
            "mib_per_s": m.stats.bytes_read as f64 / 1048576.0 / secs,
            "stats": m.stats,
        })
    );
    Ok(())
}

//! `ironclone backup <SOURCE> <REPO>`: images a disk (or one partition, or a disk
//! image file) by its filesystems' used blocks into a repository.

use super::progress::Renderer;
use anyhow::Context;
use clap::Args as ClapArgs;
use ironclone::device::{open_path, Access, BlockDevice};
use ironclone::discover::{self, SysPaths};
use ironclone::imaging::{plan_backup_unlocked, LuksBackup};
use ironclone::repo::{BackupOptions, SourceInfo};
use ironclone::rescue::{self, ReadOnlyState};
use ironclone::units::human_bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(ClapArgs)]
#[command(
    after_help = "Examples:\n  ironclone backup /dev/sda /mnt/repo --name office-pc\n  ironclone backup disk.img ./repo"
)]
pub struct Args {
    /// The disk, partition or disk-image file to back up (opened read-only).
    pub source: PathBuf,
    /// The repository directory (created if needed).
    pub repo: PathBuf,
    /// Image name (default: the disk's model or the file's name, plus date and time).
    #[arg(long)]
    pub name: Option<String>,
    /// zstd level (1 fastest .. 19 smallest).
    #[arg(long, default_value_t = 3)]
    pub level: i32,
    /// Logical sector size of an image file (a file has none of its own).
    #[arg(long)]
    pub sector_size: Option<u32>,
    /// Seconds spent re-reading failing sectors before giving them up.
    #[arg(long, default_value_t = 300)]
    pub retry_budget: u64,
    /// Reads of a lone failing sector before it is recorded as unreadable.
    #[arg(long, default_value_t = 3)]
    pub max_retries: u32,
    /// JSON-lines progress and a JSON result.
    #[arg(long)]
    pub json: bool,
    /// Open each LUKS partition read-only and image its plaintext by used blocks (the
    /// key from --key-file, $IRONCLONE_LUKS_PASSPHRASE or a prompt). The image then holds
    /// the PLAINTEXT of the encrypted volume.
    #[arg(long)]
    pub unlock: bool,
    /// The LUKS key file, used whole as cryptsetup's --key-file does (implies --unlock).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Create the (new) repository encrypted; its passphrase from --password-file,
    /// $IRONCLONE_PASSWORD or a prompt (asked twice). Existing encrypted
    /// repositories are opened the same way without this flag.
    #[arg(long)]
    pub encrypt: bool,
    #[command(flatten)]
    pub secret: super::repo_open::Secret,
    /// A folder for scratch files (default: $IRONCLONE_SCRATCH, else the temp
    /// directory, which is RAM on the live system): a partclone or ntfsclone image
    /// file given as the source is unpacked there (its used bytes), and a backup to an
    /// S3 or SFTP repository keeps its chunk list and known ids there (about 45 and 32
    /// bytes per chunk; a local repository uses its own tmp/).
    #[arg(long)]
    pub scratch: Option<PathBuf>,
}

fn default_name(source: &Path, model: Option<&str>) -> String {
    let base = model
        .map(str::to_string)
        .or_else(|| source.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "disk".into());
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{}-{}",
        ironclone::schedule::run::name_part(&base),
        super::time::utc_stamp(secs)
    )
}

pub fn run(a: Args) -> anyhow::Result<()> {
    // Before anything is opened: a Ctrl-C from here on unwinds through the destructors
    // (the VM disk's qemu, a staged image, LUKS mappings, the repository lock).
    let cancel = super::cancel::on_signals()?;
    // A VM disk (qcow2, VMDK, VHDX...) is read through qemu as a file of its virtual
    // size, read-only with its backing files, for as long as `_vm` lives.
    let vm = ironclone::vdisk::open_source(&a.source)
        .with_context(|| format!("opening the VM disk {}", a.source.display()))?;
    // A partclone/ntfsclone image file is unpacked first, for as long as `_staged` lives.
    let scratch = a
        .scratch
        .clone()
        .or_else(|| std::env::var_os("IRONCLONE_SCRATCH").map(Into::into))
        .unwrap_or_else(std::env::temp_dir);
    let staged = match &vm {
        Some(_) => None,
        None => super::backup_partimage::stage(&a.source, &scratch, a.json, &cancel)?,
    };
    let read_path = vm.as_ref().map_or_else(
        || staged.as_ref().map_or(a.source.as_path(), |s| s.path()),
        |v| v.attached.path(),
    );
    if let (Some(v), false) = (&vm, a.json) {
        eprintln!(
            "source {} is a {} disk, read through qemu",
            a.source.display(),
            v.format.label()
        );
    }
    let mut dev = open_path(read_path, Access::ReadOnly)
        .with_context(|| format!("opening the source {}", a.source.display()))?;
    if let Some(ss) = a.sector_size {
        dev = dev.with_sector_size(ss);
    }
    // The descriptor is O_RDONLY; on a block device the kernel flag is set as well for
    // the whole backup (restored when `_ro` drops), so nothing at all can write it.
    let _ro = match rescue::set_read_only(dev.file(), read_path) {
        Ok(g) => {
            if g.state() == ReadOnlyState::Set && !a.json {
                eprintln!("source {} set read-only for the backup", a.source.display());
            }
            Some(g)
        }
        Err(e) => {
            eprintln!("warning: {e} (the source is still opened read-only)");
            None
        }
    };
    // One discovery pass (it probes every partition of every disk) serves both the
    // source's identity and the check that the repository is not on it.
    let paths = SysPaths::default();
    let disks = if dev.is_block_device() {
        discover::list_disks(&paths).unwrap_or_default()
    } else {
        Vec::new()
    };
    let canon = std::fs::canonicalize(&a.source).unwrap_or_else(|_| a.source.clone());
    let disk = disks.iter().find(|d| d.path == canon).cloned();
    if let Some(d) = &disk {
        if let Ok(Some(h)) = discover::disk_holding_path(&paths, &disks, &a.repo) {
            if h.path == d.path {
                anyhow::bail!(
                    "the repository {} is on the disk being backed up ({}); put it on another disk",
                    a.repo.display(),
                    d.describe()
                );
            }
        }
    }
    let source = SourceInfo {
        path: a.source.display().to_string(),
        model: disk.as_ref().and_then(|d| d.model.clone()),
        serial: disk.as_ref().and_then(|d| d.serial.clone()),
        size: dev.size(),
        sector_size: dev.logical_sector_size(),
    };
    let size = dev.size();
    // Test hook (IRONCLONE_FAULTS, see docs/RESCUE.md): injects read errors and slow
    // reads into the source, and refuses and records any write to it.
    let dev: Arc<dyn BlockDevice> =
        rescue::wrap_from_env(Arc::new(dev)).context("IRONCLONE_FAULTS")?;
    // An existing encrypted repository is unlocked (one Argon2id) on its own thread
    // while the layout is read, which needs no key; the passphrase is asked for first.
    let opening = super::repo_open::start_open_or_init(&a.repo, &a.secret)?;
    // Planning opens the LUKS volumes (a wrong key fails here, before anything is
    // stored); `luks` keeps them open until the backup has read them.
    let key = ironclone::unlock::resolve_key(a.unlock, a.key_file.as_deref())?;
    let mut luks = key.map(|k| LuksBackup::new(k, read_path, size));
    let planned = plan_backup_unlocked(dev.as_ref(), source, luks.as_mut())
        .context("reading the source's layout")?;
    if luks.as_ref().is_some_and(|l| !l.any_opened()) {
        eprintln!("warning: --unlock: the source has no LUKS partition; nothing was opened");
    }
    if !a.json {
        eprintln!(
            "source: {} ({}), {} table",
            a.source.display(),
            human_bytes(size),
            planned.layout.kind.name()
        );
        for f in &planned.findings {
            eprintln!(
                "  {:8} {:28} {:>10} used, {:>10} to read",
                f.area,
                f.filesystem,
                human_bytes(f.used_bytes),
                human_bytes(f.copy_bytes)
            );
        }
        for w in &planned.warnings {
            eprintln!("warning: {w}");
        }
    }
    let repo = opening.finish(a.encrypt)?;
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| default_name(&a.source, disk.as_ref().and_then(|d| d.model.as_deref())));
    let mut opts = BackupOptions::new(&name);
    opts.level = a.level;
    opts.retry_budget = std::time::Duration::from_secs(a.retry_budget);
    opts.max_retries = a.max_retries;
    opts.scratch_dir = a.scratch.clone();
    let r = Renderer::new(a.json);
    let t = std::time::Instant::now();
    let stacked = luks.as_ref().map(|l| l.stacked(dev.as_ref())).transpose()?;
    let read_from: &dyn BlockDevice = match &stacked {
        Some(s) => s,
        None => dev.as_ref(),
    };
    let m = super::cancel::backup(&repo, read_from, &planned.plan, &opts, &r, &cancel)?;
    drop(stacked);
    if let Some(l) = luks {
        l.close().context("closing the LUKS volumes")?;
    }
    let secs = t.elapsed().as_secs_f64();
    let damage = m.damage_lines();
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "event": "result", "image": m.name, "root": m.root, "stats": m.stats,
                "seconds": secs, "partitions": planned.findings, "warnings": planned.warnings,
                "unreadable_bytes": m.stats.unreadable_bytes, "damage": damage,
            }))?
        );
    } else {
        let s = &m.stats;
        println!(
            "image {} done in {:.1} s: read {}, {} new stored as {}, {} deduplicated, {} zeros skipped",
            m.name,
            secs,
            human_bytes(s.bytes_read),
            human_bytes(s.new_bytes),
            human_bytes(s.new_stored_bytes),
            human_bytes(s.dedup_bytes),
            human_bytes(s.zero_bytes)
        );
        if !damage.is_empty() {
            println!(
                "DAMAGED SOURCE: {} could not be read and is stored as zeros; what it hit:",
                human_bytes(s.unreadable_bytes)
            );
            for l in &damage {
                println!("  {l}");
            }
        }
    }
    Ok(())
}

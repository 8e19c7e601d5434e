//! `ironclone schedule init|run|status`: scheduled image backups run by a systemd
//! timer (src/schedule; docs/SCHEDULE.md).

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use ironclone::schedule::config::CONFIG_VERSION;
use ironclone::schedule::state::ScheduleState;
use ironclone::schedule::{calendar, run, units, Roots, ScheduleConfig};
use ironclone::units::human_bytes;
use std::path::{Path, PathBuf};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Subcommand)]
pub enum Action {
    /// Configure the scheduled backup and install its systemd service and timer.
    Init(InitArgs),
    /// Perform one scheduled run now (what the timer starts).
    Run(RunArgs),
    /// Show the last run, its size and errors, and when the next one is due.
    Status(StatusArgs),
}

#[derive(ClapArgs)]
#[command(
    after_help = "Examples:\n  ironclone schedule init --repo uuid=4f1c...:/backups --disks /dev/disk/by-id/nvme-Samsung_SSD_980_S64 --budget 80%\n  ironclone schedule init --repo //nas/backups --disks /dev/disk/by-id/ata-WDC_WD10 --calendar 'Mon..Fri 02:00' --budget 500G"
)]
pub struct InitArgs {
    /// The repository: a local directory, uuid=<fs-uuid>:/path (a filesystem mounted for
    /// each run), or a share (//server/share, smb://server/share, server:/export).
    #[arg(long)]
    pub repo: String,
    /// Disks by stable name (/dev/disk/by-id/...) or disk image files, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub disks: Vec<PathBuf>,
    /// When to run, in systemd calendar syntax.
    #[arg(long, default_value = calendar::DEFAULT_CALENDAR)]
    pub calendar: String,
    /// The space the repository may take: a size (500G) or a percentage of its filesystem (20%).
    #[arg(long)]
    pub budget: String,
    /// Newest images kept (at least 1).
    #[arg(long, default_value_t = 7)]
    pub keep_last: u32,
    /// Weeks for which the newest image of the week is kept.
    #[arg(long, default_value_t = 4)]
    pub keep_weekly: u32,
    /// Months for which the newest image of the month is kept.
    #[arg(long, default_value_t = 6)]
    pub keep_monthly: u32,
    /// Run on battery power too.
    #[arg(long)]
    pub allow_battery: bool,
    /// Write the files under DIR instead of / and only enable the timer there.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[derive(ClapArgs)]
pub struct RootArg {
    /// The root the schedule's files are under (default /).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[derive(ClapArgs)]
pub struct RunArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// efivarfs, where a disk needing the rescue entry sets BootNext.
    #[arg(long, value_name = "DIR", default_value = ironclone::bootfix::efivars::DEFAULT_EFIVARS_DIR)]
    pub efivars: PathBuf,
    /// Ask for the rescue boot but do not reboot (tests, or to reboot later by hand).
    #[arg(long)]
    pub no_reboot: bool,
    /// The run the rescue entry makes in the live system: mount the installed root with
    /// this filesystem UUID read-only, image its schedule's disks, record, unmount.
    #[arg(long, value_name = "ROOT_UUID", conflicts_with = "root")]
    pub rescue: Option<String>,
    /// The same for a root on device-mapper (LUKS, LVM): mount the boot partition with
    /// this filesystem UUID, run the schedule mirrored there, record the outcome there.
    #[arg(long, value_name = "BOOT_UUID", conflicts_with_all = ["root", "rescue"])]
    pub rescue_boot: Option<String>,
}

#[derive(ClapArgs)]
pub struct StatusArgs {
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// Returns the exit code: FAILURE when the run (or the last run, for status) failed.
pub fn run(a: Args) -> anyhow::Result<u8> {
    match a.action {
        Action::Init(i) => init(i).map(|()| super::exit::OK),
        Action::Run(r) => match (&r.rescue, &r.rescue_boot) {
            (Some(uuid), _) => {
                let rec = ironclone::schedule::rescue_run::run(uuid)?;
                report(&rec)
            }
            (None, Some(uuid)) => {
                let rec = ironclone::schedule::rescue_run::run_boot(uuid)?;
                report(&rec)
            }
            (None, None) => run_now(
                &Roots::new(r.root.root.as_deref()),
                &run::RunOptions {
                    efivars: r.efivars,
                    reboot: !r.no_reboot,
                },
            ),
        },
        Action::Status(s) => status(&Roots::new(s.root.as_deref()), s.json),
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(match p.is_absolute() {
        true => p.to_path_buf(),
        false => std::env::current_dir()?.join(p),
    })
}

fn init(a: InitArgs) -> anyhow::Result<()> {
    let roots = Roots::new(a.root.as_deref());
    let mut disks = Vec::new();
    for d in &a.disks {
        let d = absolute(d)?;
        let meta =
            std::fs::metadata(&d).with_context(|| format!("disk {}: not found", d.display()))?;
        use std::os::unix::fs::FileTypeExt;
        let ft = meta.file_type();
        if !ft.is_block_device() && !ft.is_file() {
            anyhow::bail!(
                "disk {}: neither a block device nor a disk image file",
                d.display()
            );
        }
        // /dev/sdX and its kind are numbered in probe order; by-id names and LVM's
        // /dev/<vg>/<lv> are not.
        if ft.is_block_device() && d.parent() == Some(Path::new("/dev")) {
            eprintln!(
                "warning: {} can name another disk after a reboot; a /dev/disk/by-id/ name cannot",
                d.display()
            );
        }
        disks.push(d);
    }
    let repo_text = if Path::new(&a.repo).is_relative()
        && !a.repo.starts_with("uuid=")
        && !ironclone::share::is_share_location(&a.repo)
        && !a.repo.starts_with("nfs://")
    {
        absolute(Path::new(&a.repo))?.display().to_string()
    } else {
        a.repo.clone()
    };
    let repo = repo_text
        .parse()
        .map_err(|why| anyhow::anyhow!("--repo: {why}"))?;
    let budget = a
        .budget
        .parse()
        .map_err(|why| anyhow::anyhow!("--budget: {why}"))?;
    let cfg = ScheduleConfig {
        version: CONFIG_VERSION,
        repo,
        disks,
        calendar: a.calendar.clone(),
        budget,
        keep_last: a.keep_last,
        keep_weekly: a.keep_weekly,
        keep_monthly: a.keep_monthly,
        allow_battery: a.allow_battery,
    };
    let exe = std::env::current_exe().context("the path of this program")?;
    let done = ironclone::schedule::install::install(&roots, &cfg, &exe)?;
    if done.calendar_unchecked {
        eprintln!(
            "warning: systemd-analyze is not installed: the calendar \"{}\" is checked when systemd loads the timer",
            a.calendar
        );
    }
    for why in &done.needs_rescue_entry {
        eprintln!(
            "warning: {why}; no rescue entry is installed, so every run fails until `ironclone rescue install` (docs/SCHEDULE.md)"
        );
    }
    for d in &done.decrypted {
        eprintln!(
            "warning: {d}: its images hold the DECRYPTED filesystem (read through the open LUKS volume, no key needed); \
             whoever reads the repository reads the data, so keep the repository on an encrypted disk (docs/SCHEDULE.md)"
        );
    }
    println!("schedule saved in {}", done.config.display());
    println!(
        "units {} and {}",
        done.service.display(),
        done.timer.display()
    );
    match (roots.is_alternate(), done.next_run) {
        (true, _) if done.enabled => println!("timer enabled under {}", roots.root().display()),
        (true, _) => eprintln!(
            "warning: systemctl is not installed: enable the timer in that system with `systemctl enable {}`",
            units::TIMER
        ),
        (false, Some(n)) => println!("timer started; next run {n}"),
        (false, None) => println!("timer started"),
    }
    Ok(())
}

fn run_now(roots: &Roots, opts: &run::RunOptions) -> anyhow::Result<u8> {
    let rec = match run::run(roots, opts)? {
        run::Outcome::Done(rec) => rec,
        run::Outcome::RescueRequested(p) => {
            for w in &p.why {
                println!("{w}");
            }
            println!(
                "rescue run requested ({}): {}",
                p.how,
                if opts.reboot {
                    "rebooting into the rescue entry"
                } else {
                    "it runs at the next boot"
                }
            );
            if opts.reboot {
                // Said first: the journal keeps why the machine rebooted.
                std::io::Write::flush(&mut std::io::stdout())?;
                run::reboot()?;
            }
            return Ok(super::exit::OK);
        }
    };
    report(&rec)
}

fn report(rec: &ironclone::schedule::state::RunRecord) -> anyhow::Result<u8> {
    for i in &rec.images {
        println!(
            "image {} of {} ({}): read {}, {} new stored as {}",
            i.image,
            i.disk,
            i.mode,
            human_bytes(i.bytes_read),
            human_bytes(i.new_bytes),
            human_bytes(i.new_stored_bytes)
        );
        if i.unchanged_bytes > 0 {
            println!(
                "  {} unchanged since the previous image, not read ({} bytes read, {} not)",
                human_bytes(i.unchanged_bytes),
                i.bytes_read,
                i.unchanged_bytes
            );
        }
    }
    for p in &rec.pruned {
        println!("pruned image {p}");
    }
    for w in &rec.warnings {
        eprintln!("warning: {w}");
    }
    // A run that failed before it reached the repository knows neither.
    if rec.budget_bytes > 0 {
        println!(
            "repository {}: {} of a {} budget",
            rec.repo,
            human_bytes(rec.repo_bytes),
            human_bytes(rec.budget_bytes)
        );
    }
    match &rec.error {
        Some(e) => {
            eprintln!("ironclone: scheduled run failed: {e}");
            Ok(super::exit::FAILURE)
        }
        None => Ok(super::exit::OK),
    }
}

fn status(roots: &Roots, json: bool) -> anyhow::Result<u8> {
    let cfg = ScheduleConfig::load(&roots.config_path());
    // The outcome a rescue run left on the boot partition (a root on device-mapper),
    // unless a run holds the lock (it merges it itself).
    if let Err(e) = ironclone::schedule::boot_mirror::merge_unless_running(roots) {
        eprintln!("warning: the rescue run's outcome: {e}");
    }
    let state = ScheduleState::load(roots)?;
    let next = match (&cfg, roots.is_alternate()) {
        (Ok(_), false) => units::next_elapse_running(),
        // No systemd of that root to ask: what the calendar says from now.
        (Ok(c), true) => calendar::check(&c.calendar)
            .ok()
            .flatten()
            .and_then(|c| c.next_elapse),
        (Err(_), _) => None,
    };
    // A rescue request older than this boot was never answered: the rescue boot
    // happened (or failed to) before the system came back.
    let lost_rescue = state
        .pending_rescue
        .as_ref()
        .is_some_and(|p| boot_time_unix().is_some_and(|b| p.requested_unix < b));
    let failed = cfg.is_err() || lost_rescue || state.last_run.as_ref().is_some_and(|r| !r.ok);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "config_error": cfg.as_ref().err().map(|e| e.to_string()),
                "config": cfg.as_ref().ok(),
                "last_run": state.last_run,
                "last_success_unix": state.last_success_unix,
                "pending_rescue": state.pending_rescue,
                "pending_rescue_lost": lost_rescue,
                "next_elapse": next,
            }))?
        );
    } else {
        match &cfg {
            Ok(c) => println!(
                "schedule: {} to {} ({}), budget {}",
                c.disks
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                c.repo,
                c.calendar,
                String::from(c.budget)
            ),
            Err(e) => println!("schedule: BROKEN: {e}"),
        }
        match &state.last_run {
            None => println!("last run: never"),
            Some(r) => {
                println!(
                    "last run: {} ({} s{}): {}",
                    ironclone::timefmt::utc_human(r.start_unix),
                    r.end_unix.saturating_sub(r.start_unix),
                    if r.rescue {
                        ", in the rescue entry"
                    } else {
                        ""
                    },
                    if r.ok { "ok" } else { "FAILED" }
                );
                for i in &r.images {
                    println!(
                        "  image {}: {} new",
                        i.image,
                        human_bytes(i.new_stored_bytes)
                    );
                }
                println!(
                    "  repository {} of a {} budget",
                    human_bytes(r.repo_bytes),
                    human_bytes(r.budget_bytes)
                );
                if let Some(e) = &r.error {
                    println!("  error: {e}");
                }
            }
        }
        if let Some(p) = &state.pending_rescue {
            println!(
                "rescue run: requested {} ({}), {}",
                ironclone::timefmt::utc_human(p.requested_unix),
                p.how,
                if lost_rescue {
                    "NEVER REPORTED BACK (the system has booted since; did the rescue entry boot?)"
                } else {
                    "not reported yet"
                }
            );
        }
        if let Some(t) = state.last_success_unix {
            println!("last good image: {}", ironclone::timefmt::utc_human(t));
        }
        println!("next run: {}", next.as_deref().unwrap_or("unknown"));
    }
    Ok(if failed {
        super::exit::FAILURE
    } else {
        super::exit::OK
    })
}

/// When this system booted (`btime` of /proc/stat).
fn boot_time_unix() -> Option<u64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

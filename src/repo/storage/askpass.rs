//! SFTP password login without the password ever being in an argv, an environment, a
//! file or a log.
//!
//! opendal's SFTP service builds its own `openssh::SessionBuilder`, which runs
//! `ssh -M -f -N -o BatchMode=yes ...` found on `PATH`, with stdin from /dev/null, and
//! offers no hook for the environment or stdin. `BatchMode=yes` switches the
//! `password` method off, and ssh keeps the first value of an option it is given, so no
//! config file can undo it. `ssh` itself reads a password only from a terminal or an
//! askpass program. So:
//!
//! - `install` puts a private directory (mode 0700) first on this process's `PATH`,
//!   holding two symlinks to the ironclone binary: `ssh` and `ironclone-askpass`, and a
//!   unix socket this process answers on.
//! - Run as `ssh` (`ssh_main`), the binary asks the socket whether a password is
//!   registered for the `user@host:port` of its arguments. If not, or for anything but
//!   a master launch (`ssh -G`, `-O exit`), it runs the real `ssh` with its arguments
//!   unchanged. If so, it drops `BatchMode=yes` and adds `NumberOfPasswordPrompts=1`
//!   and `PreferredAuthentications=publickey,password` (one password attempt per
//!   connection: a wrong one is one clear error, not a retry loop), and sets
//!   `SSH_ASKPASS` to the askpass symlink with `SSH_ASKPASS_REQUIRE=force`.
//! - Run as `ironclone-askpass` (`askpass_main`) by that ssh, for a `...'s password:`
//!   prompt only (never a key's passphrase), it asks the socket for the password and
//!   writes it to ssh on its stdout, which is a pipe.
//!
//! Why a socket and not an inherited pipe: ssh closes every descriptor above stderr
//! when it starts (`closefrom`), so nothing inherited reaches its askpass child. The
//! socket answers only a peer (SO_PEERCRED) with this process's uid that descends from
//! this process within a few generations (askpass → ssh → this process), and its
//! directory is 0700. Another user sees the ssh command line and the names of the
//! socket and symlinks (in `ps`), never the password; root, or this same uid, can read
//! this process's memory anyway.

use crate::share::Password;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use zeroize::Zeroizing;

/// The name the binary is run under as the ssh wrapper.
const SSH_NAME: &str = "ssh";
/// The name ssh runs it under as its askpass program.
const ASKPASS_NAME: &str = "ironclone-askpass";
/// Where the wrapper and the askpass helper find this process's socket (a path).
const SOCK_ENV: &str = "IRONCLONE_ASKPASS_SOCK";
/// The `user@host:port` the askpass helper asks for (set by the wrapper).
const TARGET_ENV: &str = "IRONCLONE_ASKPASS_TARGET";
/// How many generations below this process a peer may be (askpass → ssh → us).
const MAX_DEPTH: usize = 4;
/// A request line is short; anything longer is not one of ours.
const MAX_LINE: u64 = 1024;
const IO_WAIT: Duration = Duration::from_secs(10);

struct Installed {
    dir: PathBuf,
    passwords: Mutex<Vec<(String, Password)>>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// `user@host:port` as the wrapper rebuilds it from ssh's `-l`, `-p` and destination
/// (empty user or port when none is given).
pub fn target(user: Option<&str>, host: &str, port: Option<u16>) -> String {
    let port = port.map_or(String::new(), |p| p.to_string());
    format!("{}@{host}:{port}", user.unwrap_or(""))
}

/// Sets up password login for SFTP in this process, once: `exe` is the ironclone binary
/// (the symlinks' target). Changes this process's `PATH`, so call it before other
/// threads start (the CLI's `main`, a test's start).
pub fn install(exe: &Path) -> io::Result<()> {
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!(
        "ironclone-ssh-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let named = |e: io::Error, p: &Path| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| named(e, &dir))?;
    let uid = std::fs::metadata(&dir).map_err(|e| named(e, &dir))?.uid();
    for name in [SSH_NAME, ASKPASS_NAME] {
        let link = dir.join(name);
        std::os::unix::fs::symlink(exe, &link).map_err(|e| named(e, &link))?;
    }
    let sock = dir.join("sock");
    let listener = UnixListener::bind(&sock).map_err(|e| named(e, &sock))?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| named(e, &sock))?;
    let installed = Installed {
        dir: dir.clone(),
        passwords: Mutex::new(Vec::new()),
    };
    if INSTALLED.set(installed).is_err() {
        // Another thread won the race; its directory serves.
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    let _serving = std::thread::Builder::new()
        .name("ironclone-askpass".into())
        .spawn(move || serve(listener, uid))?;
    let mut path = OsString::from(dir.as_os_str());
    if let Some(old) = std::env::var_os("PATH").filter(|p| !p.is_empty()) {
        path.push(":");
        path.push(old);
    }
    std::env::set_var("PATH", path);
    std::env::set_var(SOCK_ENV, &sock);
    Ok(())
}

/// Removes the private directory (the end of `main`); nothing secret is in it.
pub fn uninstall() {
    if let Some(i) = INSTALLED.get() {
        let _ = std::fs::remove_dir_all(&i.dir);
    }
}

/// The private directory `install` made, if it did (for tests).
pub fn installed_dir() -> Option<PathBuf> {
    INSTALLED.get().map(|i| i.dir.clone())
}

/// Makes `password` the one for `target` (see `target`), replacing an earlier one.
pub fn register(target: &str, password: &Password) -> io::Result<()> {
    let Some(i) = INSTALLED.get() else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "SFTP password login is not set up in this process (askpass::install)",
        ));
    };
    let mut m = i.passwords.lock().unwrap_or_else(|p| p.into_inner());
    m.retain(|(t, _)| t != target);
    m.push((target.to_string(), password.clone()));
    Ok(())
}

/// This process's parent's pid, from /proc (None when it is gone).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` is a child, grandchild... of this process (within `MAX_DEPTH`).
fn descends_from_us(mut pid: i32) -> bool {
    let me = i32::try_from(std::process::id()).unwrap_or(-1);
    for _ in 0..MAX_DEPTH {
        match parent_of(pid) {
            Some(p) if p == me => return true,
            Some(p) if p > 1 => pid = p,
            _ => return false,
        }
    }
    false
}

fn serve(listener: UnixListener, uid: u32) {
    // One bad client must not stop the others; its error goes nowhere (it could only
    // be a client that is not ours).
    for s in listener.incoming().flatten() {
        let _ = answer(s, uid);
    }
}

/// One request: `has TARGET` (the wrapper) → `yes`/`no`; `get TARGET` (the askpass
/// helper) → the password, or nothing.
fn answer(mut s: UnixStream, uid: u32) -> io::Result<()> {
    s.set_read_timeout(Some(IO_WAIT))?;
    s.set_write_timeout(Some(IO_WAIT))?;
    let cred = getsockopt(&s, PeerCredentials).map_err(io::Error::from)?;
    if cred.uid() != uid || !descends_from_us(cred.pid()) {
        return Ok(());
    }
    let mut line = String::new();
    BufReader::new((&s).take(MAX_LINE)).read_line(&mut line)?;
    let Some((verb, target)) = line.trim_end().split_once(' ') else {
        return Ok(());
    };
    let Some(i) = INSTALLED.get() else {
        return Ok(());
    };
    let m = i.passwords.lock().unwrap_or_else(|p| p.into_inner());
    let found = m.iter().find(|(t, _)| t == target).map(|(_, p)| p);
    match (verb, found) {
        ("has", f) => s.write_all(if f.is_some() { &b"yes\n"[..] } else { b"no\n" }),
        ("get", Some(p)) => {
            let mut out = Zeroizing::new(p.expose_for_storage().as_bytes().to_vec());
            out.push(b'\n');
            s.write_all(&out)
        }
        _ => Ok(()),
    }
}

/// Sends one request to the socket named in the environment; the whole answer.
fn ask(verb: &str, target: &str) -> io::Result<Zeroizing<Vec<u8>>> {
    let sock = std::env::var_os(SOCK_ENV)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no askpass socket"))?;
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(IO_WAIT))?;
    s.write_all(format!("{verb} {target}\n").as_bytes())?;
    let mut out = Zeroizing::new(Vec::new());
    s.take(MAX_LINE).read_to_end(&mut out)?;
    Ok(out)
}

/// Runs the helper this process was started as (by the name in argv[0]), or None when
/// it is ironclone itself. `main` calls it first.
pub fn dispatch() -> Option<ExitCode> {
    let argv0 = std::env::args_os().next()?;
    let name = Path::new(&argv0).file_name()?;
    if name == OsStr::new(ASKPASS_NAME) {
        Some(askpass_main())
    } else if name == OsStr::new(SSH_NAME) && std::env::var_os(SOCK_ENV).is_some() {
        Some(ssh_main())
    } else {
        None
    }
}

fn askpass_main() -> ExitCode {
    let prompt = std::env::args_os().nth(1).unwrap_or_default();
    let prompt = prompt.to_string_lossy();
    // ssh's own "user@host's password: " only: a key's passphrase or a confirmation
    // is not ours to answer.
    if !prompt.trim_end().ends_with("'s password:") {
        return ExitCode::from(1);
    }
    let Some(target) = std::env::var(TARGET_ENV).ok() else {
        return ExitCode::from(1);
    };
    match ask("get", &target) {
        Ok(p) if p.len() > 1 => match io::stdout().lock().write_all(&p) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(1),
        },
        _ => ExitCode::from(1),
    }
}

/// ssh options that take a value (`man ssh`), to find the destination and `-l`/`-p`.
const WITH_VALUE: &str = "BbcDEeFIiJLlmOoPpQRSWw";

/// What the wrapper needs from ssh's arguments.
#[derive(Debug, Default, PartialEq, Eq)]
struct SshArgs {
    user: Option<String>,
    port: Option<u16>,
    host: Option<String>,
    /// `-M` with `BatchMode=yes`: openssh's master launch.
    master_launch: bool,
}

fn parse_args(args: &[OsString]) -> SshArgs {
    let mut a = SshArgs::default();
    let (mut master, mut batch) = (false, false);
    let mut it = args.iter().map(|s| s.to_str().unwrap_or(""));
    while let Some(arg) = it.next() {
        let Some(opt) = arg.strip_prefix('-').filter(|o| !o.is_empty()) else {
            // The destination; what follows is a remote command.
            a.host = Some(arg.to_string());
            break;
        };
        let Some(flag) = opt.chars().next() else {
            continue;
        };
        if !WITH_VALUE.contains(flag) {
            master |= opt.contains('M');
            continue;
        }
        let value = match opt.get(1..).filter(|v| !v.is_empty()) {
            Some(v) => v.to_string(),
            None => it.next().unwrap_or("").to_string(),
        };
        match flag {
            'l' => a.user = Some(value),
            'p' => a.port = value.parse().ok(),
            'o' if value.eq_ignore_ascii_case("BatchMode=yes") => batch = true,
            _ => {}
        }
    }
    a.master_launch = master && batch;
    a
}

/// The real ssh: the first `ssh` on PATH that is not in the private directory and not
/// this binary.
fn real_ssh() -> PathBuf {
    let me = std::env::current_exe().and_then(std::fs::canonicalize).ok();
    let ours = std::env::var_os(SOCK_ENV).map(PathBuf::from);
    let ours = ours.as_deref().and_then(Path::parent);
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|d| Some(d.as_path()) != ours)
        .map(|d| d.join(SSH_NAME))
        .find(|c| {
            c.metadata()
                .is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
                && std::fs::canonicalize(c).ok() != me
        })
        .unwrap_or_else(|| PathBuf::from("/usr/bin/ssh"))
}

fn ssh_main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let real = real_ssh();
    let mut cmd = std::process::Command::new(&real);
    let parsed = parse_args(&args);
    let tgt = parsed
        .host
        .as_deref()
        .filter(|_| parsed.master_launch)
        .map(|h| target(parsed.user.as_deref(), h, parsed.port));
    let with_password = tgt
        .as_deref()
        .is_some_and(|t| ask("has", t).is_ok_and(|a| a.as_slice() == b"yes\n"));
    match (with_password, tgt) {
        (true, Some(t)) => {
            // ssh keeps the first value of an option: these come before openssh's own.
            for o in [
                "BatchMode=no",
                "NumberOfPasswordPrompts=1",
                "PreferredAuthentications=publickey,password",
            ] {
                cmd.arg("-o").arg(o);
            }
            let mut i = 0;
            while let Some(a) = args.get(i) {
                let batch = a == "-o" && args.get(i + 1).is_some_and(|v| v == "BatchMode=yes");
                if batch {
                    i += 2;
                    continue;
                }
                cmd.arg(a);
                i += 1;
            }
            let askpass = std::env::var_os(SOCK_ENV)
                .map(PathBuf::from)
                .and_then(|s| s.parent().map(|d| d.join(ASKPASS_NAME)))
                .unwrap_or_default();
            cmd.env("SSH_ASKPASS", askpass)
                .env("SSH_ASKPASS_REQUIRE", "force")
                .env(TARGET_ENV, t);
        }
        _ => {
            cmd.args(&args);
        }
    }
    let e = cmd.exec();
    eprintln!("ironclone: cannot run {}: {e}", real.display());
    ExitCode::from(255)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn openssh_master_launch_is_recognised_and_other_calls_are_not() {
        let launch = os(&[
            "-E",
            "/x/log",
            "-S",
            "/x/master",
            "-M",
            "-f",
            "-N",
            "-o",
            "ControlPersist=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-p",
            "2222",
            "-l",
            "bob",
            "127.0.0.1",
        ]);
        let a = parse_args(&launch);
        assert_eq!(
            a,
            SshArgs {
                user: Some("bob".into()),
                port: Some(2222),
                host: Some("127.0.0.1".into()),
                master_launch: true
            }
        );
        assert_eq!(
            target(a.user.as_deref(), "127.0.0.1", a.port),
            "bob@127.0.0.1:2222"
        );
        assert_eq!(target(None, "h", None), "@h:");
        // `ssh -G host`, and the mux's `-O exit`: passed through untouched.
        assert!(!parse_args(&os(&["-G", "-p", "22", "h"])).master_launch);
        assert!(!parse_args(&os(&["-S", "/x/m", "-O", "exit", "none"])).master_launch);
        let joined = parse_args(&os(&["-MfN", "-oBatchMode=yes", "-lroot", "-p22", "h"]));
        assert!(joined.master_launch);
        assert_eq!(joined.user.as_deref(), Some("root"));
        assert_eq!(joined.port, Some(22));
    }

    #[test]
    fn parent_pids_come_from_proc() {
        let me = i32::try_from(std::process::id()).unwrap();
        let parent = parent_of(me).expect("our own stat");
        assert!(parent >= 0);
        assert!(!descends_from_us(me), "a process is not its own descendant");
        assert!(!descends_from_us(1));
    }
}

//! A line read from the controlling terminal with echo off (the passphrase prompt).
//! Hand-written on `nix::sys::termios` (already a dependency) rather than adding a
//! crate for twenty lines; echo is restored on every path, a read error too.

use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};

/// Asks `prompt` on /dev/tty and reads one line without echo, without its line ending.
pub(super) fn read_secret(prompt: &str) -> std::io::Result<Vec<u8>> {
    let mut tty = OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    let saved = tcgetattr(&tty).map_err(std::io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    tcsetattr(&tty, SetArg::TCSAFLUSH, &quiet).map_err(std::io::Error::from)?;
    let mut line = Vec::new();
    let read = BufReader::new(&tty).read_until(b'\n', &mut line);
    let restored = tcsetattr(&tty, SetArg::TCSAFLUSH, &saved).map_err(std::io::Error::from);
    read?;
    restored?;
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

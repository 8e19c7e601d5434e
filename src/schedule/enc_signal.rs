//! While plain partitions are frozen or read-only for a scheduled run, SIGTERM (a
//! `systemctl stop`, a shutdown), SIGINT and SIGHUP undo that before the process ends:
//! otherwise /boot would stay frozen, and every writer to it (a kernel update) would
//! hang until the next run or a reboot. The signal handler only writes the signal's
//! number to a pipe (all a handler may safely do); a thread reads it, undoes what
//! `enc_disk`'s record lists, and exits with 128 + the signal. Dropping the guard puts
//! the previous handlers back and ends the thread.

use super::error::ScheduleError;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

const SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// The pipe's write end while a guard lives, else -1.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: nix::libc::c_int) {
    let fd = WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: the fd stays open while WRITE_FD holds it (reset before closing).
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = nix::unistd::write(b, &[u8::try_from(sig).unwrap_or(15)]);
    }
}

pub struct UndoOnSignal {
    old: Vec<(Signal, SigAction)>,
    write: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UndoOnSignal {
    pub fn install() -> Result<UndoOnSignal, ScheduleError> {
        let err = |e: nix::Error| ScheduleError::Rescue {
            why: format!("signal handling for the run: {e}"),
        };
        let (read, write) = nix::unistd::pipe().map_err(err)?;
        WRITE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        let thread = std::thread::spawn(move || {
            let mut b = [0u8; 1];
            // 0 is the guard's own "stop"; a read error or EOF ends the thread too.
            if matches!(nix::unistd::read(read.as_raw_fd(), &mut b), Ok(1)) && b[0] != 0 {
                super::enc_disk::undo_record();
                std::process::exit(128 + i32::from(b[0]));
            }
        });
        let mut g = UndoOnSignal {
            old: Vec::new(),
            write: Some(write),
            thread: Some(thread),
        };
        let act = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for s in SIGNALS {
            // SAFETY: the handler only loads an atomic and calls write(2).
            let old = unsafe { sigaction(s, &act) }.map_err(err)?;
            g.old.push((s, old));
        }
        Ok(g)
    }
}

impl Drop for UndoOnSignal {
    fn drop(&mut self) {
        for (s, old) in self.old.drain(..) {
            // SAFETY: puts back the handler that was there before.
            let _ = unsafe { sigaction(s, &old) };
        }
        if let Some(w) = self.write.take() {
            let _ = nix::unistd::write(&w, &[0]);
            WRITE_FD.store(-1, Ordering::SeqCst);
            drop(w);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

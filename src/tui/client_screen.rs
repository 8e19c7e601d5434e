//! `deploy-client --screen TTY`: the "waiting for the server" screen on a deploy
//! client's console, redrawn as the client's state and restore progress change. The
//! client's log lines still go to its standard output (the serial console and the
//! unattended log, where the tests and a lab's logging read them).
//!
//! TTY may be a virtual console (/dev/tty1) or a serial port (/dev/ttyS1: a lab
//! watched over IPMI serial-over-LAN). The screen is plain ANSI either way; what a
//! serial port needs besides is handled here: it is opened without becoming the
//! controlling terminal and without waiting for a carrier, and every state change
//! repaints the whole screen (clear, then every cell), so a viewer that attaches in
//! the middle (a SOL session opened later) sees a whole picture, not only what changed.

use super::deploy_model::{ClientStateView, ClientView};
use crate::deploy::client::ClientState;
use crate::progress::{Progress, ProgressEvent};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// The console a client draws on, and what it shows.
pub struct ClientScreen {
    term: Mutex<Terminal<CrosstermBackend<File>>>,
    view: Mutex<ClientView>,
}

impl ClientScreen {
    /// Opens `tty` for writing. The size is fixed at 80x25: the client runs with no
    /// controlling terminal to ask, and the Linux console's text mode is that size.
    pub fn open(tty: &Path, server: &str) -> std::io::Result<ClientScreen> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        // O_NONBLOCK only for the open (a serial port without CLOCAL would wait for
        // carrier); writes then block as usual, so no byte of a redraw is lost.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
            .open(tty)?;
        let flags = fcntl(f.as_raw_fd(), FcntlArg::F_GETFL)?;
        let flags = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
        fcntl(f.as_raw_fd(), FcntlArg::F_SETFL(flags))?;
        // Clear the console and hide the cursor; the kernel's boot text goes.
        f.write_all(b"\x1b[2J\x1b[H\x1b[?25l")?;
        let term = Terminal::with_options(
            CrosstermBackend::new(f),
            TerminalOptions {
                viewport: Viewport::Fixed(Rect::new(0, 0, 80, 25)),
            },
        )?;
        let s = ClientScreen {
            term: Mutex::new(term),
            view: Mutex::new(ClientView {
                server: server.to_string(),
                ..Default::default()
            }),
        };
        s.redraw();
        Ok(s)
    }

    fn redraw(&self) {
        self.draw(false);
    }

    /// Draws the view; `whole`: clear first and send every cell, not only the changes.
    fn draw(&self, whole: bool) {
        let view = self.view.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut t = self.term.lock().unwrap_or_else(|p| p.into_inner());
        // A console that went away only costs the picture; the deploy goes on.
        if whole {
            let _ = t.clear();
        }
        let _ = t.draw(|f| super::screens::deploy_client::draw(&view, f));
    }

    /// The client library's state changes: a whole repaint (a few per deploy, so a
    /// serial viewer that attached late catches up; progress only sends changes).
    pub fn state(&self, st: ClientState) {
        let repaint = !matches!(st, ClientState::Receiving { .. })
            || self.view.lock().unwrap_or_else(|p| p.into_inner()).state
                != ClientStateView::Receiving;
        apply_state(&mut self.view.lock().unwrap_or_else(|p| p.into_inner()), st);
        self.draw(repaint);
    }
}

/// Folds a client state into the view (a function of its own for the tests).
pub fn apply_state(v: &mut ClientView, st: ClientState) {
    match st {
        ClientState::Connecting => v.state = ClientStateView::Connecting,
        ClientState::Waiting {
            image,
            stream_bytes,
            disk,
        } => {
            v.state = ClientStateView::Waiting;
            v.image = Some(image);
            v.stream_bytes = stream_bytes;
            match disk {
                Ok(d) => {
                    let mut text = d.describe();
                    if d.erased_data {
                        text.push_str(" (holds data: ironclone.erase=any)");
                    }
                    v.disk = Some((text, d.size));
                }
                Err(why) => v.refused = Some(why),
            }
        }
        ClientState::Receiving { bytes } => {
            v.state = ClientStateView::Receiving;
            v.received = bytes;
        }
        ClientState::Restoring => v.state = ClientStateView::Restoring,
        ClientState::Done { ok, message } => {
            v.state = if ok {
                ClientStateView::Done
            } else {
                ClientStateView::Failed
            };
            v.message = message;
        }
    }
}

/// The restore's progress, per step: its name, bytes done of its total.
pub fn apply_progress(v: &mut ClientView, ev: ProgressEvent) {
    match ev {
        ProgressEvent::PhaseStart { name, total_bytes } => {
            if name.to_ascii_lowercase().contains("verif") {
                v.state = ClientStateView::Verifying;
            }
            v.step = name;
            v.restore_total = total_bytes;
            v.restore_done = 0;
        }
        ProgressEvent::Advance { bytes } => {
            v.restore_done = v.restore_done.saturating_add(bytes).min(v.restore_total);
        }
        _ => {}
    }
}

impl Progress for ClientScreen {
    fn report(&self, ev: ProgressEvent) {
        // Advance comes per chunk: redraw only when the percentage moves.
        let before = {
            let v = self.view.lock().unwrap_or_else(|p| p.into_inner());
            (
                v.step.clone(),
                super::widgets::percent(v.restore_done, v.restore_total),
            )
        };
        let mut v = self.view.lock().unwrap_or_else(|p| p.into_inner());
        apply_progress(&mut v, ev);
        let after = (
            v.step.clone(),
            super::widgets::percent(v.restore_done, v.restore_total),
        );
        drop(v);
        if before != after {
            self.redraw();
        }
    }
}

impl Drop for ClientScreen {
    fn drop(&mut self) {
        let mut t = self.term.lock().unwrap_or_else(|p| p.into_inner());
        let _ = t.backend_mut().write_all(b"\x1b[?25h\x1b[26;1H\n");
        let _ = t.backend_mut().flush();
    }
}

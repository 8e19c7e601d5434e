//! The interactive front end (`ironclone` with no arguments on a terminal).
//!
//! Shape (as in gitui): an input thread and a tick thread feed one channel, the main
//! loop hands each message to `App::event`/`App::update`, then calls `App::draw(&self)`.
//! Jobs run on their own threads through `Services` and report with the same
//! `Progress` trait as the CLI; their events land in the same channel. The terminal is
//! restored on every exit path, including a panic.

pub mod app;
pub mod client_screen;
pub mod demo;
pub mod deploy_model;
pub mod error;
pub mod model;
pub mod real;
pub mod remote;
pub mod screens;
pub mod services;
pub mod widgets;

#[cfg(test)]
mod tests;

pub use app::{Action, App, Msg};
pub use services::{JobHandle, ServiceError, Services};

use crossterm::event;
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

type Term = Terminal<CrosstermBackend<Stdout>>;

fn enter() -> io::Result<Term> {
    enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, crossterm::cursor::Hide)?;
    let mut t = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    t.clear()?;
    Ok(t)
}

/// Puts the terminal back the way the shell expects it. Safe to call twice.
pub fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

/// A panic must not leave the console in raw mode on the alternate screen: the user
/// would see nothing of the message and have a dead keyboard.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if services::IN_JOB.with(|j| j.get()) {
                // Caught by `JobHandle::spawn` and shown in the TUI; printing here
                // would scribble over the screen.
                return;
            }
            restore_terminal();
            previous(info);
        }));
    });
}

fn run_shell() {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
    println!("ironclone: type 'exit' to come back.");
    if let Err(e) = std::process::Command::new(&shell).status() {
        eprintln!("ironclone: could not start {shell}: {e}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Runs the TUI until the user quits.
pub fn run(services: Arc<dyn Services>) -> io::Result<()> {
    install_panic_hook();
    let mut terminal = enter()?;
    let result = main_loop(&mut terminal, services);
    restore_terminal();
    result
}

fn main_loop(terminal: &mut Term, services: Arc<dyn Services>) -> io::Result<()> {
    let mut app = App::new(services);
    let rx = app.receiver();
    // While a shell runs, the input thread must not read the shell's keys.
    let paused = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let tx = app.sender();
        let paused = Arc::clone(&paused);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if paused.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                match event::poll(Duration::from_millis(100)) {
                    Ok(true) => match event::read() {
                        Ok(ev) => {
                            if tx.send(Msg::Input(ev)).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    },
                    Ok(false) => {}
                    Err(_) => break,
                }
            }
        });
    }
    {
        let tx = app.sender();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(250));
                if tx.send(Msg::Tick).is_err() {
                    break;
                }
            }
        });
    }
    app.refresh_disks();
    let outcome = loop {
        if let Err(e) = terminal.draw(|f| app.draw(f)) {
            break Err(e);
        }
        let Ok(first) = rx.recv() else {
            break Ok(());
        };
        let mut action = app.update(first);
        // Apply everything queued before drawing again, so a fast job cannot flood
        // the terminal with redraws.
        while action == Action::None {
            match rx.try_recv() {
                Ok(m) => action = app.update(m),
                Err(_) => break,
            }
        }
        match action {
            Action::None => {}
            Action::Quit => break Ok(()),
            Action::Shell => {
                paused.store(true, Ordering::SeqCst);
                restore_terminal();
                run_shell();
                enable_raw_mode()?;
                execute!(io::stdout(), EnterAlternateScreen, crossterm::cursor::Hide)?;
                terminal.clear()?;
                paused.store(false, Ordering::SeqCst);
            }
        }
    };
    stop.store(true, Ordering::SeqCst);
    outcome
}

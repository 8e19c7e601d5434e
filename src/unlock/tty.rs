//! The one prompt that reads a secret without echo (LUKS passphrases, share passwords).
//! Built on crossterm's raw mode (the TUI's dependency): keys are read one by one, so
//! Ctrl-C cancels the prompt with the terminal restored instead of killing the process
//! with echo left off.

use crossterm::event::{read, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::terminal::{disable_raw_mode, enable_raw_mode};
use std::io::Write;

/// Asks `prompt` on stderr and reads one line from the terminal without echoing it.
pub fn read_secret(prompt: &str) -> std::io::Result<String> {
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    enable_raw_mode()?;
    let mut secret = String::new();
    let outcome = loop {
        match read() {
            Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => match k.code {
                KeyCode::Enter => break Ok(()),
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    break Err(std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        "cancelled at the password prompt",
                    ))
                }
                KeyCode::Char(c) => secret.push(c),
                KeyCode::Backspace => {
                    secret.pop();
                }
                _ => {}
            },
            Ok(_) => {}
            Err(e) => break Err(e),
        }
    };
    disable_raw_mode()?;
    eprintln!();
    outcome.map(|()| secret)
}

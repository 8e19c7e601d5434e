//! The passphrase of an encrypted repository, drawn as stars, never as text.

use crate::tui::widgets::{bold, chrome, para, selected, wrapped};
use ratatui::text::{Line, Span};
use ratatui::Frame;
use std::path::Path;

pub fn draw(repo: &Path, password_len: usize, note: Option<&str>, f: &mut Frame) {
    let body = chrome(
        f,
        "Unlock the encrypted repository",
        "type  Enter unlock  Esc back",
    );
    let mut lines = vec![
        Line::raw(""),
        Line::from(vec![
            Span::raw("  Repository: "),
            Span::styled(repo.display().to_string(), bold()),
        ]),
        Line::raw(""),
        Line::from(vec![
            Span::raw("  Passphrase: "),
            Span::styled(format!("{}_", "*".repeat(password_len)), selected()),
        ]),
        Line::raw(""),
        Line::raw("  Its images, index and chunks are encrypted; any of its passphrases"),
        Line::raw("  (key slots) opens it for the rest of this session."),
    ];
    if let Some(n) = note {
        lines.push(Line::raw(""));
        lines.extend(wrapped("  ", n, bold()));
    }
    f.render_widget(para(lines), body);
}

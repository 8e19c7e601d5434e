//! A passphrase field drawn as stars, never as text: the one layout of the screens that
//! ask for a secret (an encrypted repository's, an image's LUKS passphrase).

use crate::tui::widgets::{bold, chrome, para, selected, wrapped};
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// What one passphrase screen says around the field.
pub struct Prompt<'a> {
    pub title: &'a str,
    pub keys: &'a str,
    /// What the passphrase opens, and its name ("Repository", "/mnt/repo").
    pub label: &'a str,
    pub name: &'a str,
    /// Lines of explanation under the field.
    pub about: &'a [&'a str],
}

pub fn draw(p: &Prompt, password_len: usize, note: Option<&str>, f: &mut Frame) {
    let body = chrome(f, p.title, p.keys);
    let mut lines = vec![
        Line::raw(""),
        Line::from(vec![
            Span::raw(format!("  {}: ", p.label)),
            Span::styled(p.name.to_string(), bold()),
        ]),
        Line::raw(""),
        Line::from(vec![
            Span::raw("  Passphrase: "),
            Span::styled(format!("{}_", "*".repeat(password_len)), selected()),
        ]),
        Line::raw(""),
    ];
    lines.extend(p.about.iter().map(|l| Line::raw(format!("  {l}"))));
    if let Some(n) = note {
        lines.push(Line::raw(""));
        lines.extend(wrapped("  ", n, bold()));
    }
    f.render_widget(para(lines), body);
}

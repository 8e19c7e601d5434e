//! A backup's new repository: encrypted or not (asked once, when the location holds
//! none), and its passphrase typed twice as stars.

use crate::tui::widgets::{bold, chrome, para, plain, row, selected, wrapped};
use ratatui::text::{Line, Span};
use ratatui::Frame;
use std::path::Path;

fn heading(repo: &Path) -> Vec<Line<'static>> {
    vec![
        Line::raw(""),
        Line::from(vec![
            Span::raw("  Repository: "),
            Span::styled(repo.display().to_string(), bold()),
        ]),
        Line::raw("  There is no repository here yet; this backup makes one."),
        Line::raw(""),
    ]
}

pub fn choice(repo: &Path, sel: usize, f: &mut Frame) {
    let body = chrome(
        f,
        "Backup: a new repository",
        "Up/Down move  Enter choose  Esc back",
    );
    let mut lines = heading(repo);
    lines.push(Line::styled("  Encrypt it?", bold()));
    lines.push(row(
        sel == 0,
        "  Encrypt it with a passphrase (asked twice, next)".into(),
    ));
    lines.push(row(sel == 1, "  Do not encrypt it".into()));
    lines.push(Line::raw(""));
    for l in [
        "An image holds everything on the disk: passwords, keys, documents.",
        "Encrypted, its images, index and chunks are unreadable without the",
        "passphrase, wherever they are stored. This is chosen now, for good:",
        "a repository stays as it was made.",
    ] {
        lines.push(Line::raw(format!("  {l}")));
    }
    f.render_widget(para(lines), body);
}

pub fn passphrase(
    repo: &Path,
    lens: [usize; 2],
    on_again: bool,
    note: Option<&str>,
    f: &mut Frame,
) {
    let body = chrome(
        f,
        "Backup: the new repository's passphrase",
        "type  Tab other field  Enter next/accept  Esc back",
    );
    let mut lines = heading(repo);
    for (i, label) in ["  Passphrase: ", "  Again:      "].into_iter().enumerate() {
        let active = on_again == (i == 1);
        let stars = format!("{}{}", "*".repeat(lens[i]), if active { "_" } else { "" });
        let style = if active { selected() } else { plain() };
        lines.push(Line::from(vec![
            Span::raw(label),
            Span::styled(stars, style),
        ]));
    }
    lines.push(Line::raw(""));
    for l in [
        "Without it nothing in this repository can be restored: keep it safe.",
        "More passphrases or a key file can be added later (ironclone key add).",
    ] {
        lines.push(Line::raw(format!("  {l}")));
    }
    if let Some(n) = note {
        lines.push(Line::raw(""));
        lines.extend(wrapped("  ", n, bold()));
    }
    f.render_widget(para(lines), body);
}

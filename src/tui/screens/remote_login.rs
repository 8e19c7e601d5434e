//! The credentials of a typed `s3://` or `sftp://` repository. Only what the store
//! needs is asked; fields the environment already gives come prefilled, and the S3
//! secret key and the SFTP password are drawn as stars, never as text.

use crate::tui::remote::{RemoteForm, RemoteKind};
use crate::tui::widgets::{bold, chrome, para, plain, selected, wrapped};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn draw(form: &RemoteForm, f: &mut Frame) {
    let (title, keys) = match form.kind {
        RemoteKind::S3 => (
            "Connect to S3 object storage",
            "type  Tab next field  Space toggle  Enter connect  Esc back",
        ),
        RemoteKind::Sftp => (
            "Connect to an SFTP server",
            "type  Tab next field  Enter connect  Esc back",
        ),
    };
    let body = chrome(f, title, keys);
    let mut lines = vec![Line::raw("")];
    // A long location is cut into lines (a URL has no blanks to wrap at): host and
    // path are what the user checks before typing a secret, so none of it is clipped.
    let label = "  Repository:  ";
    let room = usize::from(body.width)
        .saturating_sub(label.len() + 2)
        .max(16);
    let chars: Vec<char> = form.location.chars().collect();
    for (i, piece) in chars.chunks(room).enumerate() {
        let lead = if i == 0 {
            label.to_string()
        } else {
            " ".repeat(label.len())
        };
        lines.push(Line::from(vec![
            Span::raw(lead),
            Span::styled(piece.iter().collect::<String>(), bold()),
        ]));
    }
    lines.push(Line::raw(""));
    for (i, field) in form.fields().into_iter().enumerate() {
        let active = i == form.field;
        let text = match active && !form.on_toggle() {
            true => format!("{}_", field.text),
            false => field.text,
        };
        let mut spans = vec![
            Span::raw(format!("  {:<13}", field.label)),
            match active {
                true => Span::styled(text, selected()),
                false => Span::raw(text),
            },
        ];
        if !field.hint.is_empty() {
            spans.push(Span::styled(format!("   ({})", field.hint), plain()));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::raw(""));
    match form.kind {
        RemoteKind::S3 => {
            lines.push(Line::raw(
                "  The keys stay in memory for this session only: never shown, logged or",
            ));
            lines.push(Line::raw("  written to disk."));
        }
        RemoteKind::Sftp => {
            lines.push(Line::raw(
                "  The login is by key, or by password when one is typed (kept in memory",
            ));
            lines.push(Line::raw(
                "  only). A server whose host key is not known yet shows its fingerprint",
            ));
            lines.push(Line::raw("  for you to check and accept."));
        }
    }
    if let Some(n) = &form.note {
        lines.push(Line::raw(""));
        lines.extend(wrapped("  ", n, bold()));
    }
    f.render_widget(para(lines), body);
}

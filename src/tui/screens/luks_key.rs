//! The LUKS passphrase of an image that holds the plaintext of encrypted volumes,
//! drawn as stars, never as text.

use crate::tui::model::ImageView;
use crate::tui::widgets::{bold, chrome, para, selected, wrapped};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn draw(image: Option<&ImageView>, password_len: usize, note: Option<&str>, f: &mut Frame) {
    let body = chrome(
        f,
        "The image's LUKS passphrase",
        "type  Enter check  Esc back",
    );
    let mut lines = vec![
        Line::raw(""),
        Line::from(vec![
            Span::raw("  Image: "),
            Span::styled(image.map_or("", |i| i.name.as_str()).to_string(), bold()),
        ]),
        Line::raw(""),
        Line::from(vec![
            Span::raw("  Passphrase: "),
            Span::styled(format!("{}_", "*".repeat(password_len)), selected()),
        ]),
        Line::raw(""),
        Line::raw("  The image holds the decrypted contents of encrypted (LUKS) volumes."),
        Line::raw("  Restoring writes their headers back and opens the volumes with a"),
        Line::raw("  passphrase the headers accept; it is checked now, before the plan."),
    ];
    if let Some(n) = note {
        lines.push(Line::raw(""));
        lines.extend(wrapped("  ", n, bold()));
    }
    f.render_widget(para(lines), body);
}

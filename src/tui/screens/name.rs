//! Backup step: the image's name, prefilled with "<model or host>-<date>".

use crate::tui::app::App;
use crate::tui::screens::images::image_lines;
use crate::tui::widgets::{chrome, para, selected};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn draw(app: &App, input: &str, note: Option<&str>, f: &mut Frame) {
    let body = chrome(
        f,
        "Backup: name the image",
        "type to edit  Backspace delete  Enter continue  Esc back",
    );
    let mut lines = vec![
        Line::raw(""),
        Line::from(vec![
            Span::raw("  Image name: "),
            Span::styled(format!("{input}_"), selected()),
        ]),
        Line::raw(""),
    ];
    if let Some(n) = note {
        lines.extend(crate::tui::widgets::wrapped(
            "  ",
            n,
            crate::tui::widgets::bold(),
        ));
        lines.push(Line::raw(""));
    }
    if app.choices.images.is_empty() {
        lines.push(Line::raw("  The repository holds no images yet."));
    } else {
        lines.push(Line::raw(
            "  Already in this repository (a new image shares their unchanged data):",
        ));
        lines.extend(image_lines(&app.choices.images, None));
    }
    f.render_widget(para(lines), body);
}

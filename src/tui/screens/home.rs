//! The first screen: what the rescuer came to do, one key each.

use crate::tui::app::{App, HOME_ITEMS};
use crate::tui::widgets::{bold, chrome, para, row};
use ratatui::text::Line;
use ratatui::Frame;

pub fn draw(_app: &App, sel: usize, f: &mut Frame) {
    let body = chrome(
        f,
        "What do you want to do?",
        "Up/Down move  Enter choose  letter = shortcut  q quit",
    );
    let mut lines = vec![
        Line::raw(""),
        Line::styled(
            "  Bare-metal backup and restore. Nothing is written without asking.",
            bold(),
        ),
        Line::raw(""),
    ];
    for (i, (label, key)) in HOME_ITEMS.iter().enumerate() {
        lines.push(row(i == sel, format!("  [{key}]  {label}")));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "  A backup reads only the used blocks and never writes to the source disk.",
    ));
    lines.push(Line::raw(
        "  A restore shows the new layout and asks you to type the disk's name first.",
    ));
    f.render_widget(para(lines), body);
}

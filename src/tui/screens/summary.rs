//! Backup step: everything chosen, once, before the backup starts.

use crate::tui::app::App;
use crate::tui::widgets::{bold, bytes, chrome, para};
use ratatui::text::Line;
use ratatui::Frame;

pub fn draw(app: &App, f: &mut Frame) {
    let body = chrome(f, "Backup: check and start", "Enter start backup  Esc back");
    let mut lines = vec![Line::raw("")];
    if let Some(d) = &app.choices.source {
        lines.push(Line::styled(
            format!("  From:   {}  {}  serial {}", d.dev, d.model, d.serial),
            bold(),
        ));
        let used: u64 = d.partitions.iter().filter_map(|p| p.used).sum();
        lines.push(Line::raw(format!(
            "          {}, about {} of used data to read",
            crate::units::count(d.partitions.len(), "partition", "partitions"),
            bytes(used)
        )));
    }
    let repo = app
        .choices
        .repo
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    lines.push(Line::styled(format!("  To:     {repo}"), bold()));
    if let Some((_, pass)) = &app.choices.new_repo {
        lines.push(Line::raw(match pass {
            Some(_) => "          a new repository, ENCRYPTED with the passphrase just typed",
            None => "          a new repository, not encrypted",
        }));
    }
    lines.push(Line::styled(
        format!("  Name:   {}", app.choices.name),
        bold(),
    ));
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "  The source disk is opened read-only; nothing on it is changed or repaired.",
    ));
    lines.push(Line::raw(
        "  Only used blocks are read. The new image is verified when the backup ends.",
    ));
    if let Some(d) = &app.choices.source {
        if !d.warnings.is_empty() {
            lines.push(Line::raw(""));
            lines.push(Line::styled("  Before you start:", bold()));
            for w in &d.warnings {
                lines.extend(crate::tui::widgets::wrapped(
                    "  ! ",
                    w,
                    crate::tui::widgets::plain(),
                ));
            }
        }
    }
    f.render_widget(para(lines), body);
}

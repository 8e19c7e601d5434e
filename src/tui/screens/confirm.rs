//! The destructive confirmation: names the target by model, serial and size and only
//! goes on when the user types the serial or the kernel name exactly. Kernel names move
//! between boots, so the identity is what is shown first.

use crate::tui::app::{App, Flow};
use crate::tui::widgets::{bold, chrome, disk_size_long, para, selected};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn draw(app: &App, input: &str, refused: bool, f: &mut Frame) {
    let body = chrome(
        f,
        if app.choices.target_part.is_some() {
            "ERASE A PARTITION? Check it is the right one"
        } else {
            "ERASE A DISK? Check it is the right one"
        },
        "type the name  Enter confirm  Esc back (nothing is written)",
    );
    let Some(t) = &app.choices.target else {
        return;
    };
    let what = if app.flow == Flow::Clone {
        "Cloning"
    } else {
        "Restoring"
    };
    let erases = match app.choices.target_part {
        Some(n) => format!("  {what} will ERASE EVERYTHING on partition {n} of this disk:"),
        None => format!("  {what} will ERASE EVERYTHING on this disk:"),
    };
    let mut lines = vec![
        Line::raw(""),
        Line::styled(erases, bold()),
        Line::raw(""),
        Line::styled(format!("      Model:   {}", t.model), bold()),
        Line::styled(
            format!(
                "      Serial:  {}",
                if t.serial.is_empty() {
                    "(none reported)"
                } else {
                    &t.serial
                }
            ),
            bold(),
        ),
        Line::styled(format!("      Size:    {}", disk_size_long(t.size)), bold()),
        Line::raw(format!("      Now at:  {} ({})", t.dev, t.transport)),
        Line::raw(""),
    ];
    if t.partitions.is_empty() {
        lines.push(Line::raw("  It has no partitions now."));
    } else {
        let parts: Vec<String> = t
            .partitions
            .iter()
            .map(|p| {
                format!("{} {} {}", p.number, p.fs, p.label)
                    .trim_end()
                    .to_string()
            })
            .collect();
        lines.push(Line::raw(format!("  It holds now: {}", parts.join(", "))));
    }
    lines.push(Line::raw(""));
    if t.serial.is_empty() {
        lines.push(Line::raw(format!(
            "  It reports no serial. To go on, type its name ({}):",
            t.short_name()
        )));
    } else {
        lines.push(Line::raw(format!(
            "  To go on, type its serial ({}) or its name ({}):",
            t.serial,
            t.short_name()
        )));
    }
    lines.push(Line::from(vec![
        Span::raw("  > "),
        Span::styled(format!("{input}_"), selected()),
    ]));
    if refused {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "  That does not match. Nothing was written. Type it exactly, or Esc.",
            bold(),
        ));
    }
    f.render_widget(para(lines), body);
}

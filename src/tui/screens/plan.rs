//! Restore/clone step: the planner's old and new layout, editable before anything is
//! written (layout mode, the size of one partition).

use crate::tui::app::App;
use crate::tui::widgets::{bold, bytes, chrome, disk_size, para, row, selected};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::tui::widgets::short_size as mib;

pub fn draw(app: &App, sel: usize, size: Option<&str>, f: &mut Frame) {
    let part = app.choices.target_part;
    let keys = if app.planning() {
        "Esc back"
    } else if size.is_some() {
        "type a size (40G, 512M, max)  Enter apply  Esc cancel"
    } else if part.is_some() {
        "Enter continue  Esc back"
    } else {
        "Up/Down row  s size  m mode  x reset  Enter continue  Esc back"
    };
    let body = chrome(f, "The new layout (nothing written yet)", keys);
    let mut lines = Vec::new();
    let from = match (&app.choices.image, &app.choices.source) {
        (Some(i), _) => format!("image {}", i.name),
        (None, Some(d)) => format!("{} {}", d.dev, d.model),
        _ => String::new(),
    };
    if let Some(t) = &app.choices.target {
        lines.push(Line::raw(format!("  From: {from}")));
        let to = format!(
            "{}{} {} ({}, serial {})",
            part.map_or(String::new(), |n| format!("partition {n} of ")),
            t.dev,
            t.model,
            disk_size(t.size),
            t.serial
        );
        lines.extend(crate::tui::widgets::wrapped(
            "  To:   ",
            &to,
            crate::tui::widgets::plain(),
        ));
    }
    if part.is_none() {
        lines.push(Line::raw(format!(
            "  Layout mode: {}{}",
            app.choices.options.mode.name(),
            if app.choices.options.sizes.is_empty() {
                String::new()
            } else {
                let s: Vec<String> = app
                    .choices
                    .options
                    .sizes
                    .iter()
                    .map(|(n, s)| match s {
                        crate::tui::model::SizeChoice::Max => format!("{n}=max"),
                        crate::tui::model::SizeChoice::Bytes(b) => format!("{n}={}", bytes(*b)),
                    })
                    .collect();
                format!("   sizes: {}", s.join(" "))
            }
        )));
    }
    lines.push(Line::raw(""));
    match &app.choices.plan {
        Some(Ok(p)) => {
            lines.push(Line::styled(
                "  #  fs    label     old start  old size  new start  new size    used action",
                bold(),
            ));
            for (i, r) in p.rows.iter().enumerate() {
                lines.push(row(
                    i == sel,
                    format!(
                        // "used" is 7 wide so that "recreate" fits the 78 columns.
                        "{:<2} {:<5} {:<9} {:>9} {:>9} {:>10} {:>9} {:>7} {}",
                        r.number,
                        crate::tui::widgets::fit(&r.fs, 5),
                        crate::tui::widgets::fit(&r.label, 9),
                        mib(r.old_start),
                        mib(r.old_size),
                        mib(r.new_start),
                        mib(r.new_size),
                        mib(r.used),
                        r.action.name()
                    ),
                ));
            }
            lines.push(Line::raw(""));
            lines.push(Line::raw(match part {
                Some(n) => format!(
                    "  partition {n}: {}; no partition table is written",
                    bytes(p.target_size)
                ),
                None => format!("  {} table, target {}", p.table, bytes(p.target_size)),
            }));
            for n in &p.notes {
                lines.extend(crate::tui::widgets::wrapped(
                    "  ",
                    n,
                    crate::tui::widgets::plain(),
                ));
            }
        }
        Some(Err(e)) => {
            lines.push(Line::styled("  This layout cannot be used:", bold()));
            lines.extend(crate::tui::widgets::wrapped(
                "  ",
                e,
                crate::tui::widgets::plain(),
            ));
            lines.push(Line::raw(""));
            lines.extend(crate::tui::widgets::wrapped(
                "  ",
                if part.is_some() {
                    "Press Esc for another partition."
                } else {
                    "Press m to switch the layout mode, x to reset sizes, or Esc for another disk."
                },
                crate::tui::widgets::plain(),
            ));
        }
        None if app.planning() => {
            lines.extend(crate::tui::widgets::wrapped(
                "  ",
                "Making the plan: reading the image's layout (from a network repository \
                 this can take a while)...",
                crate::tui::widgets::plain(),
            ));
        }
        None => {}
    }
    if let Some(s) = size {
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::raw("  New size of the selected partition: "),
            Span::styled(format!("{s}_"), selected()),
        ]));
    }
    f.render_widget(para(lines), body);
}

//! Partition picker for one saved partition (a Clonezilla saveparts image's row): every
//! partition of every disk with its disk's identity, and why a disk cannot be written.

use crate::tui::app::App;
use crate::tui::widgets::{bold, bytes, chrome, disk_size, fit, para, plain, row, wrapped};
use ratatui::text::Line;
use ratatui::Frame;

/// Rows shown at once, so the selected partition's disk always fits on 25 lines.
const ROWS: usize = 10;

pub fn draw(app: &App, sel: usize, note: Option<&str>, f: &mut Frame) {
    let table_less = app.choices.image.as_ref().is_some_and(|i| i.table_less);
    let body = chrome(
        f,
        "Restore: which PARTITION to OVERWRITE?",
        if table_less {
            "Up/Down move  Enter choose  w whole disk  r refresh  Esc back"
        } else {
            "Up/Down move  Enter choose  r refresh  Esc back"
        },
    );
    let mut lines = Vec::new();
    if let (Some(im), true) = (&app.choices.image, table_less) {
        let text = format!(
            "Image {} holds one filesystem without a partition table (backed up from {}). \
             Only the partition chosen here is written; the disk's table and its other \
             partitions are kept. Press w to restore onto a whole disk instead.",
            im.name, im.source_model,
        );
        lines.extend(wrapped("  ", &text, plain()));
    } else if let Some(im) = &app.choices.image {
        let text = format!(
            "Saved partition {} of {}. Only the partition chosen here is written; the \
             disk's table and its other partitions are kept.",
            im.source_model.trim_start_matches("clonezilla: "),
            im.name.split('/').next().unwrap_or(&im.name),
        );
        lines.extend(wrapped("  ", &text, plain()));
    }
    if let Some(e) = &app.disks_error {
        lines.push(Line::styled(format!("Could not list disks: {e}"), bold()));
    }
    let rows = app.part_targets();
    if rows.is_empty() {
        lines.push(Line::raw(
            "  No partitions found. Partition the target disk first (Shell), or plug one in.",
        ));
    }
    lines.push(Line::raw(""));
    let first = sel.saturating_sub(ROWS - 1);
    if first > 0 {
        lines.push(Line::raw(format!("  ... {first} more above")));
    }
    for (i, &(d, p)) in rows.iter().enumerate().skip(first).take(ROWS) {
        let (Some(disk), Some(part)) = (
            app.disks.get(d),
            app.disks.get(d).and_then(|x| x.partitions.get(p)),
        ) else {
            continue;
        };
        lines.push(row(
            i == sel,
            format!(
                "{} {:>2} {} {} {:>11}  on {} {}",
                fit(disk.short_name(), 8),
                part.number,
                fit(&part.fs, 6),
                fit(&part.label, 10),
                bytes(part.size),
                fit(&disk.model, 20),
                disk_size(disk.size)
            ),
        ));
    }
    let below = rows.len().saturating_sub(first + ROWS);
    if below > 0 {
        lines.push(Line::raw(format!("  ... {below} more below")));
    }
    if let Some(d) = rows.get(sel).and_then(|&(d, _)| app.disks.get(d)) {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!(
                "  Disk {}  {}  serial {}  {}",
                d.dev,
                d.model,
                d.serial,
                bytes(d.size)
            ),
            bold(),
        ));
        if let Some(why) = d.refuse_as_target() {
            lines.push(Line::raw(format!("  ! Cannot be a target: {why}")));
        }
    }
    if let Some(n) = note {
        lines.push(Line::raw(""));
        lines.extend(wrapped("  ", n, bold()));
    } else {
        lines.push(Line::raw(""));
        lines.extend(wrapped(
            "  ",
            "The partition's filesystem is replaced by the saved one, grown or shrunk to fit it \
             (checked before anything is written).",
            plain(),
        ));
    }
    f.render_widget(para(lines), body);
}

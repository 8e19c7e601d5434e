//! Disk picker: identity (model, serial, size, transport), partitions and every warning
//! a rescuer must see before choosing. Refreshed every 2 s so a plugged-in disk shows up.

use crate::tui::app::{App, DiskPurpose};
use crate::tui::widgets::{bold, bytes, chrome, disk_size, fit, para, row};
use ratatui::text::Line;
use ratatui::Frame;

fn flags(d: &crate::tui::model::DiskView) -> String {
    let mut v = Vec::new();
    if d.boot_medium {
        v.push("BOOT MEDIUM");
    }
    if d.mounted {
        v.push("MOUNTED");
    }
    if d.read_only {
        v.push("READ-ONLY");
    }
    if d.removable {
        v.push("removable");
    }
    v.join(", ")
}

pub fn draw(app: &App, purpose: DiskPurpose, sel: usize, note: Option<&str>, f: &mut Frame) {
    let title = match purpose {
        DiskPurpose::BackupSource => "Backup: which disk to back up?",
        DiskPurpose::RestoreTarget => "Restore: which disk to OVERWRITE?",
        DiskPurpose::CloneSource => "Clone: which disk to copy FROM?",
        DiskPurpose::CloneTarget => "Clone: which disk to OVERWRITE?",
        DiskPurpose::ScheduleSource => "Schedule: which disk to back up regularly?",
    };
    let body = chrome(f, title, "Up/Down move  Enter choose  r refresh  Esc back");
    let mut lines = Vec::new();
    match (purpose, &app.choices.image, &app.choices.source) {
        (DiskPurpose::RestoreTarget, Some(im), _) => lines.push(Line::raw(format!(
            "  Image {}: {} of data, from a {} disk",
            im.name,
            bytes(im.data_bytes),
            disk_size(im.source_size)
        ))),
        (DiskPurpose::CloneTarget, _, Some(src)) => lines.push(Line::raw(format!(
            "  Copying from {} {} ({})",
            src.dev,
            src.model,
            disk_size(src.size)
        ))),
        _ => {}
    }
    if let Some(e) = &app.disks_error {
        lines.push(Line::styled(format!("Could not list disks: {e}"), bold()));
    }
    if app.disks.is_empty() {
        lines.push(Line::raw(
            "No disks found. Plug one in; this list refreshes itself.",
        ));
    }
    // At most 8 rows so the selected disk's details always fit on 25 lines.
    const ROWS: usize = 8;
    let first = sel.saturating_sub(ROWS - 1);
    if first > 0 {
        lines.push(Line::raw(format!("  ... {first} more above")));
    }
    for (i, d) in app.disks.iter().enumerate().skip(first).take(ROWS) {
        let short = d.short_name();
        lines.push(row(
            i == sel,
            format!(
                "{} {} {:>9} {} {}",
                fit(short, 8),
                fit(&d.model, 26),
                disk_size(d.size),
                fit(&d.transport, 6),
                fit(&d.serial, 20)
            ),
        ));
    }
    let below = app.disks.len().saturating_sub(first + ROWS);
    if below > 0 {
        lines.push(Line::raw(format!("  ... {below} more below")));
    }
    lines.push(Line::raw(""));
    if let Some(d) = app.disks.get(sel) {
        let fl = flags(d);
        lines.push(Line::styled(
            format!(
                "  {}  {}  serial {}  {}",
                d.dev,
                d.model,
                d.serial,
                bytes(d.size)
            ),
            bold(),
        ));
        if !fl.is_empty() {
            lines.push(Line::styled(format!("  [{fl}]"), bold()));
        }
        if d.partitions.is_empty() {
            lines.push(Line::raw("  (no partitions: empty disk)"));
        }
        for p in &d.partitions {
            let used = p.used.map(bytes).unwrap_or_else(|| "?".into());
            lines.push(Line::raw(format!(
                "  {:>2}  {:<8} {:<12} {:>11}  used {:>11}",
                p.number,
                fit(&p.fs, 8),
                fit(&p.label, 12),
                bytes(p.size),
                used
            )));
            if let Some(lock) = &p.lock {
                lines.push(Line::raw(format!(
                    "      LUKS {lock}: imaged raw (the CLI's --unlock images its files)"
                )));
            }
            for v in &p.volumes {
                lines.push(Line::raw(format!(
                    "      LV {:<17} {:<5} {:>11}  read {:>11}",
                    fit(&v.name, 17),
                    fit(&v.fs, 5),
                    bytes(v.size),
                    bytes(v.used)
                )));
            }
        }
        for w in &d.warnings {
            lines.extend(crate::tui::widgets::wrapped(
                "  ! ",
                w,
                crate::tui::widgets::plain(),
            ));
        }
        if matches!(
            purpose,
            DiskPurpose::RestoreTarget | DiskPurpose::CloneTarget
        ) {
            if let Some(why) = d.refuse_as_target() {
                lines.push(Line::raw(format!("  ! Cannot be a target: {why}")));
            }
        }
    }
    if let Some(n) = note {
        lines.push(Line::raw(""));
        lines.extend(crate::tui::widgets::wrapped(
            "  ",
            n,
            crate::tui::widgets::bold(),
        ));
    }
    f.render_widget(para(lines), body);
}

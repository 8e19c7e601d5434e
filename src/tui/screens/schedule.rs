//! Scheduled backups: the form (when, how much space, what to keep), the summary of
//! what will be installed, and the result.

use crate::tui::app::schedule::SCHEDULE_FIELDS;
use crate::tui::app::{App, ScheduleForm};
use crate::tui::model::ScheduleRequest;
use crate::tui::widgets::{bold, bytes, chrome, para, plain, selected, wrapped};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn form(app: &App, form: &ScheduleForm, f: &mut Frame) {
    let body = chrome(
        f,
        "Schedule: when, and how much to keep",
        "type to edit  Up/Down field  Enter check  Esc back",
    );
    let mut lines = vec![Line::raw("")];
    if let Some(d) = &app.choices.source {
        lines.push(Line::raw(format!(
            "  Disk:   {}  {}  {}",
            d.dev,
            d.model,
            bytes(d.size)
        )));
    }
    let repo = app.choices.schedule_repo.as_deref().unwrap_or_default();
    lines.push(Line::raw(format!("  Into:   {repo}")));
    lines.push(Line::raw(""));
    for (i, ((label, _, help), value)) in SCHEDULE_FIELDS.iter().zip(&form.fields).enumerate() {
        let value = if i == form.focus {
            Span::styled(format!("{value}_"), selected())
        } else {
            Span::raw(value.clone())
        };
        lines.push(Line::from(vec![
            Span::raw(format!("  {label:<13} ")),
            value,
        ]));
        lines.push(Line::raw(format!("  {:<13} {help}", "")));
    }
    lines.push(Line::raw(""));
    match &form.note {
        Some(n) => lines.extend(wrapped("  ", n, bold())),
        None => lines.extend(wrapped(
            "  ",
            "Older images are pruned to keep the repository under the budget; the newest image is always kept.",
            plain(),
        )),
    }
    f.render_widget(para(lines), body);
}

pub fn summary(req: &ScheduleRequest, next_run: Option<&str>, f: &mut Frame) {
    let body = chrome(f, "Schedule: check and install", "Enter install  Esc back");
    let d = &req.disk;
    let mut lines = vec![
        Line::raw(""),
        Line::styled(
            format!("  Back up:  {}  {}  serial {}", d.dev, d.model, d.serial),
            bold(),
        ),
        Line::styled(format!("  Into:     {}", req.repo), bold()),
        Line::styled(
            format!(
                "  When:     {}{}",
                req.calendar,
                next_run
                    .map(|n| format!(" (next: {n})"))
                    .unwrap_or_default()
            ),
            bold(),
        ),
        Line::raw(format!("  Budget:   {}", req.budget)),
        Line::raw(format!(
            "  Keep:     the newest {}, one a week for {} weeks, one a month for {} months",
            req.keep_last, req.keep_weekly, req.keep_monthly
        )),
        Line::raw(""),
    ];
    for text in [
        "Installs /etc/ironclone/schedule.json and the systemd timer ironclone-backup.timer, which runs the backup at low CPU and disk priority, not on battery.",
        "A disk with a filesystem mounted read-write is backed up from an LVM snapshot, or through the rescue entry (`ironclone rescue install`) at the next reboot.",
        "Nothing asks you anything unless a run fails: `ironclone schedule status` tells.",
    ] {
        lines.extend(wrapped("  ", text, plain()));
    }
    f.render_widget(para(lines), body);
}

pub fn done(result: &[String], f: &mut Frame) {
    let body = chrome(f, "Schedule: installed", "Enter home");
    let mut lines = vec![Line::raw("")];
    for text in result {
        lines.extend(wrapped("  ", text, plain()));
    }
    f.render_widget(para(lines), body);
}

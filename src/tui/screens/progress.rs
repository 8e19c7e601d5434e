//! A running job: overall and per-partition bytes, rate, ETA, read errors, warnings.

use crate::tui::app::{App, Flow};
use crate::tui::widgets::{bar, bold, bytes, chrome, duration, fit, para, percent};
use ratatui::text::Line;
use ratatui::Frame;

pub fn draw(app: &App, f: &mut Frame) {
    let j = &app.job;
    let body = chrome(f, &j.title, "Ctrl-C or Esc: cancel (asks first)");
    let rate = j
        .rate()
        .map(|r| format!("{}/s", bytes(r as u64)))
        .unwrap_or_else(|| "-".into());
    let eta = j.eta_secs().map(duration).unwrap_or_else(|| "-".into());
    let mut lines = vec![
        Line::raw(""),
        Line::styled(
            format!(
                "  Overall  {} {:>3}%",
                bar(50, j.done, j.total),
                percent(j.done, j.total)
            ),
            bold(),
        ),
        Line::raw(format!(
            "           {} of {}   {}   elapsed {}   left {}",
            bytes(j.done),
            bytes(j.total),
            rate,
            duration(j.elapsed_secs as u64),
            eta
        )),
        Line::raw(""),
    ];
    for p in &j.phases {
        let state = if p.finished {
            "done".to_string()
        } else {
            format!("{:>3}%", percent(p.done, p.total))
        };
        lines.push(Line::raw(format!(
            "  {} {} {:>4} {:>11}",
            fit(&p.name, 24),
            if p.finished {
                bar(30, 1, 1)
            } else {
                bar(30, p.done, p.total)
            },
            state,
            bytes(p.total)
        )));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw(format!(
        "  Read errors: {}   unreadable: {}",
        j.read_errors,
        bytes(j.unreadable)
    )));
    for w in &j.warnings {
        lines.extend(crate::tui::widgets::wrapped(
            "  ! ",
            w,
            crate::tui::widgets::plain(),
        ));
    }
    if j.cancelling {
        let what = match j.kind.unwrap_or(app.flow) {
            Flow::Backup => "  Cancelling... the partial image will be removed.",
            _ => "  Cancelling... waiting for the job to stop safely.",
        };
        lines.push(Line::styled(what, bold()));
    }
    f.render_widget(para(lines), body);
}

//! The end of a job: what was done, boot repairs, warnings, or what failed and what next.

use crate::tui::app::{App, Flow};
use crate::tui::model::JobReport;
use crate::tui::widgets::{bold, chrome, para};
use ratatui::text::Line;
use ratatui::Frame;

fn report_lines(lines: &mut Vec<Line<'static>>, r: &JobReport) {
    for s in &r.summary {
        lines.extend(crate::tui::widgets::wrapped(
            "  ",
            s,
            crate::tui::widgets::plain(),
        ));
    }
    if !r.boot_repairs.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("  Boot repairs done:", bold()));
        for b in &r.boot_repairs {
            lines.extend(crate::tui::widgets::wrapped(
                "   - ",
                b,
                crate::tui::widgets::plain(),
            ));
        }
    }
    if !r.warnings.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("  Warnings:", bold()));
        for w in &r.warnings {
            lines.extend(crate::tui::widgets::wrapped(
                "  ! ",
                w,
                crate::tui::widgets::plain(),
            ));
        }
    }
}

pub fn draw(app: &App, f: &mut Frame) {
    let failed = matches!(app.report, Some(Err(_))) || matches!(app.verify_report, Some(Err(_)));
    let verify_cancelled =
        app.job.cancelling && app.flow == Flow::Backup && app.verify_report.is_some();
    let title = if verify_cancelled {
        "Backup done, not verified"
    } else if app.job.cancelling {
        "Cancelled"
    } else if failed {
        "The job did not finish"
    } else {
        "Done"
    };
    let body = chrome(f, title, "Enter: back to the start screen");
    let mut lines = vec![Line::raw("")];
    match &app.report {
        Some(Ok(r)) => report_lines(&mut lines, r),
        Some(Err(e)) => {
            lines.extend(crate::tui::widgets::wrapped(
                "  ",
                &e.to_string(),
                crate::tui::widgets::bold(),
            ));
            lines.push(Line::raw(""));
            lines.push(Line::raw(if app.job.cancelling {
                "  Nothing half-done was kept. You can start again from the start screen."
            } else if e.is_media_error() {
                "  Check the cables and the disk, then try again. A failed backup leaves no half image."
            } else {
                "  Fix what is named above, then try again. A failed backup leaves no half image."
            }));
        }
        None => {}
    }
    if app.flow == Flow::Backup {
        match &app.verify_report {
            Some(Ok(r)) => {
                lines.push(Line::raw(""));
                lines.push(Line::styled("  Verified:", bold()));
                report_lines(&mut lines, r);
            }
            Some(Err(_)) if verify_cancelled => {
                lines.push(Line::raw(""));
                lines.extend(crate::tui::widgets::wrapped(
                    "  ",
                    "The verification was cancelled. The image is complete but not verified: \
                     verify it later with \"Verify an image\" on the start screen.",
                    bold(),
                ));
            }
            Some(Err(e)) => {
                lines.push(Line::raw(""));
                lines.push(Line::styled(format!("  Verification FAILED: {e}"), bold()));
                lines.push(Line::raw(
                    "  Do not rely on this image. Check the repository disk and back up again.",
                ));
            }
            None => {}
        }
    }
    if !failed && matches!(app.flow, Flow::Restore | Flow::Clone) {
        lines.push(Line::raw(""));
        lines.push(Line::raw(
            "  You can now power off, remove the ironclone stick and boot the disk.",
        ));
    }
    f.render_widget(para(lines), body);
}

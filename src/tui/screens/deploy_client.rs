//! A deploy client's console while `deploy-client --screen` runs: which server, which
//! disk of this machine will be overwritten (or why none), and how far it is. Drawn
//! without an `App`: the client has no keyboard input to take.

use crate::tui::deploy_model::{ClientStateView, ClientView};
use crate::tui::widgets::{bar, bold, bytes, chrome, para, percent, plain, wrapped};
use ratatui::text::Line;
use ratatui::Frame;

fn state_text(s: ClientStateView) -> &'static str {
    match s {
        ClientStateView::Connecting => "connecting to the server",
        ClientStateView::Waiting => "waiting for the server to start the transfer",
        ClientStateView::Receiving => "receiving the image",
        ClientStateView::Restoring => "restoring onto this machine's disk",
        ClientStateView::Verifying => "verifying what was written",
        ClientStateView::Done => "done",
        ClientStateView::Failed => "FAILED",
    }
}

pub fn draw(v: &ClientView, f: &mut Frame) {
    let title = match v.state {
        ClientStateView::Done => "Deploy client: done",
        ClientStateView::Failed => "Deploy client: failed",
        _ => "Deploy client: waiting for the server",
    };
    let body = chrome(
        f,
        title,
        "nothing to type: the server starts and ends the deploy",
    );
    let mut lines = vec![
        Line::raw(""),
        Line::styled(format!("  Server:  {}", v.server), bold()),
    ];
    if let Some(im) = &v.image {
        lines.push(Line::raw(format!(
            "  Image:   {im}  ({} to receive)",
            bytes(v.stream_bytes)
        )));
    }
    match (&v.disk, &v.refused) {
        (Some((d, size)), _) => lines.push(Line::styled(
            format!("  Disk:    {d}  {}  (will be overwritten)", bytes(*size)),
            bold(),
        )),
        (None, Some(why)) => lines.extend(wrapped(
            "  Disk:    ",
            &format!("none chosen: {why}"),
            bold(),
        )),
        (None, None) => lines.push(Line::raw("  Disk:    (chosen when the server answers)")),
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!("  State:   {}", state_text(v.state)),
        bold(),
    ));
    let (done, total, what) = match v.state {
        ClientStateView::Receiving => (v.received, v.stream_bytes, "received"),
        ClientStateView::Restoring | ClientStateView::Verifying => {
            (v.restore_done, v.restore_total, "written")
        }
        _ => (0, 0, ""),
    };
    if total > 0 {
        lines.push(Line::raw(format!(
            "  {} {:>3}%  {} of {} {what}",
            bar(40, done, total),
            percent(done, total),
            bytes(done),
            bytes(total)
        )));
    }
    if !v.step.is_empty()
        && matches!(
            v.state,
            ClientStateView::Restoring | ClientStateView::Verifying
        )
    {
        lines.push(Line::raw(format!("  Step:    {}", v.step)));
    }
    if !v.message.is_empty() {
        lines.push(Line::raw(""));
        lines.extend(wrapped("  ", &v.message, plain()));
    }
    lines.push(Line::raw(""));
    lines.extend(wrapped(
        "  ",
        "Nothing is written to the disk before the whole image has arrived and checked out. The machine powers off when it is done.",
        plain(),
    ));
    f.render_widget(para(lines), body);
}

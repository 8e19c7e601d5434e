//! Repository picker: a partition on any disk (mounted for the user), a typed path, or a
//! typed network share (`//server/share`, mounted by the real services; one that wants a
//! login gets the share login screen).

use crate::tui::app::{App, Flow, PathField};
use crate::tui::model::RepoCandidate;
use crate::tui::widgets::{bold, bytes, chrome, fit, para, row, selected};
use ratatui::text::Line;
use ratatui::Frame;

pub fn draw(
    app: &App,
    cands: &[RepoCandidate],
    sel: usize,
    path: Option<&PathField>,
    note: Option<&str>,
    f: &mut Frame,
) {
    let title = match app.flow {
        Flow::Backup => "Backup: where to store the image?",
        Flow::Schedule => "Schedule: which repository keeps the images?",
        _ => "Which repository holds the image?",
    };
    let keys = if app.connecting() {
        "Esc stop waiting for the share"
    } else if path.is_some() {
        "type the path  Enter open  Esc cancel typing"
    } else {
        "Up/Down move  Enter choose  / type a path  Esc back"
    };
    let body = chrome(f, title, keys);
    let mut lines = vec![Line::styled(
        "  Partition   Disk                 Label      fs    Free / Size",
        bold(),
    )];
    for (i, c) in cands.iter().enumerate() {
        lines.push(row(
            i == sel,
            format!(
                "{} {} {} {:<6} {} / {}{}",
                fit(c.dev.trim_start_matches("/dev/"), 11),
                fit(&c.disk_model, 20),
                fit(&c.label, 10),
                fit(&c.fs, 5),
                bytes(c.free),
                bytes(c.size),
                if c.has_repo { "  *" } else { "" }
            ),
        ));
    }
    lines.push(row(sel == cands.len(), "Type a path...".into()));
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "  * holds ironclone images. A partition is mounted for you.",
    ));
    // Every remote kind the typed path opens (PathField::describe), named before a
    // person has to guess that `/` takes more than a folder.
    lines.push(Line::raw(
        "  Network: type //server/share, s3://bucket/prefix or sftp://user@host/path;",
    ));
    lines.push(Line::raw(
        "  a login screen follows when the location needs one.",
    ));
    if let Some(p) = path {
        lines.push(Line::raw(""));
        // A location longer than the line shows its end, where the typing is.
        let room = usize::from(body.width).saturating_sub(10).max(12);
        lines.push(Line::from(vec![
            ratatui::text::Span::raw("  Path:  "),
            ratatui::text::Span::styled(
                format!("{}_", crate::tui::widgets::tail(p.text(), room)),
                selected(),
            ),
        ]));
        // Said before Enter, so a folder is never taken for a share or back.
        lines.push(Line::raw(format!("  Opens: {}", p.describe())));
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

//! An SFTP server's host key that is not in known_hosts (a live system starts with
//! none): its fingerprints, to compare with the server's (`ssh-keygen -lf
//! /etc/ssh/ssh_host_ed25519_key.pub` there), and a typed "yes" to trust it.

use crate::tui::remote::HostKey;
use crate::tui::widgets::{bold, chrome, para, selected, wrapped};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn draw(key: &HostKey, input: &str, note: Option<&str>, f: &mut Frame) {
    let body = chrome(
        f,
        "Trust this SFTP server?",
        "type yes  Enter accept  Esc back",
    );
    let mut lines = vec![
        Line::raw(""),
        Line::from(vec![
            Span::raw("  Server:  "),
            Span::styled(key.host.clone(), bold()),
        ]),
        Line::raw(""),
        Line::raw("  Its host key is not in known_hosts yet. It offered:"),
    ];
    for fp in &key.fingerprints {
        lines.push(Line::styled(format!("    {fp}"), bold()));
    }
    lines.extend([
        Line::raw(""),
        Line::raw("  Compare with the server's own (ssh-keygen -lf on its host key). If they"),
        Line::raw("  match, type yes: the key is added to known_hosts and checked at every"),
        Line::raw("  later connection. If not, someone may be in between: press Esc."),
        Line::raw(""),
        Line::from(vec![
            Span::raw("  Trust it: "),
            Span::styled(format!("{input}_"), selected()),
        ]),
    ]);
    if let Some(n) = note {
        lines.push(Line::raw(""));
        lines.extend(wrapped("  ", n, bold()));
    }
    f.render_widget(para(lines), body);
}

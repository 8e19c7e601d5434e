//! Share login: user name and password for a typed `//server/share` that a guest could
//! not mount. The password is drawn as stars, never as text.

use crate::tui::widgets::{bold, chrome, para, selected, wrapped};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn draw(
    location: &str,
    user: &str,
    password_len: usize,
    on_password: bool,
    note: Option<&str>,
    f: &mut Frame,
) {
    let body = chrome(
        f,
        "Log in to the network share",
        "type  Tab next field  Enter log in  Esc back",
    );
    let field = |label: &str, text: String, active: bool| {
        let text = if active { format!("{text}_") } else { text };
        Line::from(vec![
            Span::raw(format!("  {label:<10}")),
            if active {
                Span::styled(text, selected())
            } else {
                Span::raw(text)
            },
        ])
    };
    let mut lines = vec![
        Line::raw(""),
        Line::from(vec![
            Span::raw("  Share:    "),
            Span::styled(location.to_string(), bold()),
        ]),
        Line::raw(""),
        field("User:", user.to_string(), !on_password),
        field("Password:", "*".repeat(password_len), on_password),
        Line::raw(""),
        Line::raw("  A Windows domain account is DOMAIN\\user. An empty user tries a guest"),
        Line::raw("  login again. The password goes only to the kernel's share client."),
    ];
    if let Some(n) = note {
        lines.push(Line::raw(""));
        lines.extend(wrapped("  ", n, bold()));
    }
    f.render_widget(para(lines), body);
}

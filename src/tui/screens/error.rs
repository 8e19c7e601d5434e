//! Errors in plain words plus what to do next; never a backtrace.

use crate::tui::widgets::{bold, chrome, para, plain, wrapped};
use ratatui::text::Line;
use ratatui::Frame;

pub fn draw(what: &str, next: &str, f: &mut Frame) {
    let body = chrome(f, "Something went wrong", "Enter or Esc: go back");
    let mut lines = vec![Line::raw(""), Line::styled("  What happened:", bold())];
    lines.extend(wrapped("  ", what, plain()));
    lines.push(Line::raw(""));
    lines.push(Line::styled("  What to do next:", bold()));
    lines.extend(wrapped("  ", next, plain()));
    f.render_widget(para(lines), body);
}

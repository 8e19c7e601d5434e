//! Yes/no questions that end the session (power off, quit).

use crate::tui::app::AskWhat;
use crate::tui::widgets::{bold, chrome, para};
use ratatui::text::Line;
use ratatui::Frame;

pub fn draw(what: AskWhat, f: &mut Frame) {
    let (title, q) = match what {
        AskWhat::PowerOff => ("Power off", "Power the machine off now?"),
        AskWhat::Quit => ("Quit", "Leave ironclone?"),
    };
    let body = chrome(f, title, "y yes  n or Esc no");
    f.render_widget(
        para(vec![
            Line::raw(""),
            Line::styled(format!("  {q}  (y/n)"), bold()),
        ]),
        body,
    );
}

//! Ctrl-C during a job: a box over the progress screen that asks before cancelling.

use crate::tui::app::Flow;
use crate::tui::widgets::{bold, para, ASCII};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear};
use ratatui::Frame;

pub fn draw(flow: Flow, f: &mut Frame) {
    let (what1, what2) = match flow {
        Flow::Restore | Flow::Clone => (
            " The target disk is then left incomplete and will not",
            " boot until you restore onto it again.",
        ),
        Flow::Verify => (" The image is not changed by a verify.", ""),
        Flow::Deploy => (
            " udp-sender and the boot server stop; clients still",
            " receiving stop too (their disks are not written).",
        ),
        _ => (
            " A cancel leaves no half image: what was written",
            " so far is removed.",
        ),
    };
    let a = f.area();
    let w = 60.min(a.width);
    let h = 7.min(a.height);
    let area = Rect::new(a.x + (a.width - w) / 2, a.y + (a.height - h) / 2, w, h);
    f.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_set(ASCII)
        .title(" Cancel? ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    f.render_widget(
        para(vec![
            Line::styled(" Stop the job now?", bold()),
            Line::raw(what1),
            Line::raw(what2),
            Line::styled(" y: cancel the job    n or Esc: keep going", bold()),
        ]),
        inner,
    );
}

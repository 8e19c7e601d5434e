//! Drawing helpers shared by the screens. Everything is plain ASCII (the Linux console
//! font and serial consoles lack box glyphs) and selection is shown with a `>` marker
//! plus bold/reverse, so the screens read the same without colour.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::border;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

pub const ASCII: border::Set = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

pub fn plain() -> Style {
    Style::default()
}

pub fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

pub fn selected() -> Style {
    Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
}

/// Draws the title line, a bordered body and the key line; returns the body's inside.
pub fn chrome(f: &mut Frame, title: &str, keys: &str) -> Rect {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" ironclone ", selected()),
            Span::styled(format!(" {title}"), bold()),
        ])),
        head,
    );
    let block = Block::default().borders(Borders::ALL).border_set(ASCII);
    let inner = block.inner(body);
    f.render_widget(block, body);
    f.render_widget(Paragraph::new(format!(" {keys}")), foot);
    inner
}

/// A list row: `> text` and reversed when selected, `  text` otherwise.
pub fn row(is_selected: bool, text: String) -> Line<'static> {
    if is_selected {
        Line::styled(format!("> {text}"), selected())
    } else {
        Line::raw(format!("  {text}"))
    }
}

pub fn para(lines: Vec<Line<'static>>) -> Paragraph<'static> {
    Paragraph::new(lines).wrap(Wrap { trim: false })
}

/// `[#######.......]` of `width` characters in total.
pub fn bar(width: usize, done: u64, total: u64) -> String {
    let inner = width.saturating_sub(2);
    let filled = if total == 0 {
        0
    } else {
        ((done.min(total) as u128 * inner as u128) / total as u128) as usize
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(inner - filled))
}

pub fn percent(done: u64, total: u64) -> u64 {
    if total == 0 {
        0
    } else {
        (done.min(total) as u128 * 100 / total as u128) as u64
    }
}

pub fn bytes(n: u64) -> String {
    crate::units::human_bytes(n)
}

/// Disk sizes as vendors print them (500 GB), next to the binary size. Below 1 GB a
/// rounded GB says nothing (a 333 MiB disk would read "0 GB"), so such disks get the
/// binary size, the same text `bytes` gives the detail line.
pub fn disk_size(n: u64) -> String {
    const GB: u64 = 1_000_000_000;
    if n < GB {
        return bytes(n);
    }
    let gb = n as f64 / GB as f64;
    if gb >= 1000.0 {
        format!("{:.1} TB", gb / 1000.0)
    } else {
        format!("{gb:.0} GB")
    }
}

/// The vendor size with the binary one after it, "500 GB (465.8 GiB)", or the binary
/// size alone where `disk_size` already gives it.
pub fn disk_size_long(n: u64) -> String {
    let (vendor, binary) = (disk_size(n), bytes(n));
    if vendor == binary {
        vendor
    } else {
        format!("{vendor} ({binary})")
    }
}

pub fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// Cuts `s` to `n` characters so table columns stay aligned.
pub fn fit(s: &str, n: usize) -> String {
    let cut: String = s.chars().take(n).collect();
    format!("{cut:<n$}")
}

/// The last characters of `s` that fit in `n` columns with a cursor after them,
/// "..." first when cut (ASCII: the Linux console): a text field longer than its line
/// shows the end being typed.
pub fn tail(s: &str, n: usize) -> String {
    let len = s.chars().count();
    if len < n {
        return s.to_string();
    }
    let keep = n.saturating_sub(4);
    let cut: String = s.chars().skip(len - keep).collect();
    format!("...{cut}")
}

/// Word-wraps `text` to the 78 columns inside the border, with `first` before the first
/// line and as many spaces before the others, so wrapped warnings stay indented.
pub fn wrapped(first: &str, text: &str, style: ratatui::style::Style) -> Vec<Line<'static>> {
    const WIDTH: usize = 78;
    let indent = " ".repeat(first.chars().count());
    let room = WIDTH.saturating_sub(indent.len()).max(20);
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > room {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out.into_iter()
        .enumerate()
        .map(|(i, l)| {
            let pre = if i == 0 { first } else { indent.as_str() };
            Line::styled(format!("{pre}{l}"), style)
        })
        .collect()
}

/// Sizes for the plan table's narrow columns: 512M, 465.0G, 1.82T.
pub fn short_size(n: u64) -> String {
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    if n < GIB {
        format!("{}M", n / MIB)
    } else if n < 1024 * GIB {
        format!("{:.1}G", n as f64 / GIB as f64)
    } else {
        format!("{:.2}T", n as f64 / (1024 * GIB) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_sizes_below_a_gigabyte_are_in_mib() {
        assert_eq!(disk_size(333 << 20), "333.0 MiB");
        assert_eq!(disk_size(512 << 20), bytes(512 << 20));
        assert_eq!(disk_size(999_999_999), "953.7 MiB");
        assert_eq!(disk_size(1_000_000_000), "1 GB");
        assert_eq!(disk_size(500_107_862_016), "500 GB");
        assert_eq!(disk_size(2_000_000_000_000), "2.0 TB");
        assert_eq!(disk_size_long(333 << 20), "333.0 MiB");
        assert_eq!(disk_size_long(500_107_862_016), "500 GB (465.8 GiB)");
    }
}

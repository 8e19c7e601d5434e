//! Images in the chosen repository: date, source disk, size and dedup.

use crate::tui::app::{App, Flow};
use crate::tui::model::ImageView;
use crate::tui::widgets::{bold, bytes, chrome, disk_size, fit, para, row};
use ratatui::text::Line;
use ratatui::Frame;

pub fn image_lines(images: &[ImageView], sel: Option<usize>) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(
        "  Name                     Date             Source disk          Stored Dedup",
        bold(),
    )];
    for (i, im) in images.iter().enumerate() {
        lines.push(row(
            Some(i) == sel,
            format!(
                "{} {} {} {:>10} {}",
                fit(&im.name, 24),
                fit(&im.date, 16),
                fit(&im.source_model, 16),
                bytes(im.stored_bytes),
                match im.clonezilla {
                    true => "    -".to_string(),
                    false => format!("{:>4.1}x", im.dedup_ratio),
                }
            ),
        ));
    }
    lines
}

pub fn draw(app: &App, sel: usize, f: &mut Frame) {
    let (title, keys) = match app.flow {
        Flow::Restore => (
            "Restore: which image?",
            "Up/Down move  Enter choose  Esc back",
        ),
        Flow::Verify => (
            "Verify: which image?",
            "Up/Down move  Enter verify  Esc back",
        ),
        Flow::Deploy => (
            "Deploy: which image goes to the machines?",
            "Up/Down move  Enter choose  Esc back",
        ),
        _ => (
            "Images in this repository",
            "Up/Down move  Enter restore this image  Esc back",
        ),
    };
    let body = chrome(f, title, keys);
    let repo = app
        .choices
        .repo
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut lines = vec![Line::raw(format!("  Repository: {repo}")), Line::raw("")];
    lines.extend(image_lines(&app.choices.images, Some(sel)));
    if let Some(im) = app
        .choices
        .images
        .get(sel)
        .filter(|im| im.partition.is_some())
    {
        lines.push(Line::raw(""));
        lines.push(Line::styled(format!("  {}", im.name), bold()));
        let text = format!(
            "partition {} saved alone (Clonezilla saveparts, {} in its folder): it restores \
             onto a partition you pick; no partition table is written.",
            im.source_model.trim_start_matches("clonezilla: "),
            bytes(im.stored_bytes)
        );
        lines.extend(crate::tui::widgets::wrapped(
            "  ",
            &text,
            crate::tui::widgets::plain(),
        ));
    } else if let Some(im) = app.choices.images.get(sel).filter(|im| im.clonezilla) {
        lines.push(Line::raw(""));
        lines.push(Line::styled(format!("  {}", im.name), bold()));
        lines.push(Line::raw(format!(
            "  a Clonezilla image of {} ({}), {} in its folder",
            im.source_model.trim_start_matches("clonezilla: "),
            disk_size(im.source_size),
            bytes(im.stored_bytes)
        )));
    } else if let Some(im) = app.choices.images.get(sel) {
        lines.push(Line::raw(""));
        lines.push(Line::styled(format!("  {}", im.name), bold()));
        lines.push(Line::raw(format!(
            "  from {} (serial {}, {})",
            im.source_model,
            im.source_serial,
            disk_size(im.source_size)
        )));
        lines.push(Line::raw(format!(
            "  {} of data, {} stored, dedup {:.1}x",
            bytes(im.data_bytes),
            bytes(im.stored_bytes),
            im.dedup_ratio
        )));
    }
    f.render_widget(para(lines), body);
}

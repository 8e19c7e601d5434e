//! Deploy to many machines, server side: the form, the summary, the live screen while
//! clients join and receive, and the sender's table at the end.

use crate::tui::app::{App, DeployForm, DEPLOY_BOOT_ROW, DEPLOY_FIELDS};
use crate::tui::deploy_model::{DeployLive, DeployRequest, DeployResult, LivePhase};
use crate::tui::widgets::{bold, bytes, chrome, duration, fit, para, plain, selected, wrapped};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn form(app: &App, form: &DeployForm, f: &mut Frame) {
    let body = chrome(
        f,
        "Deploy: how many machines, and which disk",
        "type to edit  Up/Down field  Left/Right choose  Enter check  Esc back",
    );
    let mut lines = vec![Line::raw("")];
    if let Some(im) = &app.choices.image {
        lines.push(Line::raw(format!("  Image:        {}", im.name)));
        lines.push(Line::raw(format!(
            "  {:<13} {} stored: each client holds it in RAM while receiving",
            "",
            bytes(im.stored_bytes)
        )));
    }
    lines.push(Line::raw(""));
    for (i, ((label, _, help), value)) in DEPLOY_FIELDS.iter().zip(&form.fields).enumerate() {
        let value = if i == form.focus {
            Span::styled(format!("{value}_"), selected())
        } else {
            Span::raw(value.clone())
        };
        lines.push(Line::from(vec![
            Span::raw(format!("  {label:<13} ")),
            value,
        ]));
        lines.push(Line::raw(format!("  {:<13} {help}", "")));
    }
    let boot = match form.boot_iface() {
        None => "no (the clients are booted some other way)".to_string(),
        Some(i) => format!(
            "on {} ({})",
            i.name,
            i.addr.as_deref().unwrap_or("no IPv4 address")
        ),
    };
    let boot = if form.focus == DEPLOY_BOOT_ROW {
        Span::styled(format!("< {boot} >"), selected())
    } else {
        Span::raw(boot)
    };
    lines.push(Line::from(vec![
        Span::raw(format!("  {:<13} ", "Network boot")),
        boot,
    ]));
    lines.push(Line::raw(format!(
        "  {:<13} {} interface(s); proxy DHCP beside the site's own server",
        "",
        form.ifaces.len()
    )));
    lines.push(Line::raw(""));
    match &form.note {
        Some(n) => lines.extend(wrapped("  ", n, bold())),
        None => lines.extend(wrapped(
            "  ",
            "A client never overwrites a disk with data unless its kernel line says ironclone.erase=any.",
            plain(),
        )),
    }
    f.render_widget(para(lines), body);
}

fn wait_text(s: Option<u32>) -> String {
    s.map_or("-".into(), |s| format!("{s} s"))
}

pub fn summary(req: &DeployRequest, f: &mut Frame) {
    let body = chrome(f, "Deploy: check and start", "Enter start  Esc back");
    let mut lines = vec![
        Line::raw(""),
        Line::styled(
            format!(
                "  Image:    {}  ({} stored)",
                req.image,
                bytes(req.stored_bytes)
            ),
            bold(),
        ),
        Line::raw(format!("  From:     {}", req.repo.display())),
        Line::styled(
            format!(
                "  Clients:  {}  (min wait {}, max wait {})",
                req.clients,
                wait_text(req.min_wait),
                wait_text(req.max_wait)
            ),
            bold(),
        ),
        Line::styled(
            format!(
                "  Disk:     {} ({})",
                req.target.text(),
                req.target.explain()
            ),
            bold(),
        ),
    ];
    match &req.serve_boot {
        Some(i) => {
            let addr = i.addr.as_deref().unwrap_or_default();
            let host = addr.split('/').next().unwrap_or_default();
            lines.push(Line::raw(format!(
                "  Boot:     network boot on {} ({addr}) until the deploy ends",
                i.name
            )));
            lines.push(Line::raw(""));
            lines.extend(wrapped(
                "  ",
                &format!(
                    "Switch the clients on with network (PXE) boot: they start the live system and run deploy-client --server {host} --target {} by themselves.",
                    req.target.text()
                ),
                plain(),
            ));
        }
        None => {
            lines.push(Line::raw("  Boot:     not served from here"));
            lines.push(Line::raw(""));
            lines.extend(wrapped(
                "  ",
                &format!(
                    "On each client, start the live system and run: ironclone deploy-client --server THIS-MACHINE --target {}",
                    req.target.text()
                ),
                plain(),
            ));
        }
    }
    lines.push(Line::raw(""));
    lines.extend(wrapped(
        "  ",
        "The network stream is NOT encrypted, even from an encrypted repository: deploy only on a network you trust.",
        bold(),
    ));
    f.render_widget(para(lines), body);
}

fn phase_text(p: LivePhase) -> &'static str {
    match p {
        LivePhase::Preparing => "preparing the stream",
        LivePhase::Waiting => "waiting for the clients",
        LivePhase::Sending => "sending (one multicast stream for all)",
        LivePhase::Reports => "stream sent; clients restore and report",
        LivePhase::Cancelling => "CANCELLING: stopping udp-sender and the boot server",
    }
}

pub fn live(l: &DeployLive, f: &mut Frame) {
    let body = chrome(
        f,
        "Deploy: clients joining and receiving",
        if l.phase == LivePhase::Cancelling {
            "cancelling: the table follows"
        } else {
            "the table follows when every client has reported  Esc/c cancel"
        },
    );
    let sent = match l.bytes_sent {
        Some(b) => format!("{} sent", bytes(b)),
        None => String::new(),
    };
    let mut lines = vec![
        Line::raw(""),
        Line::styled(format!("  State:   {}", phase_text(l.phase)), bold()),
        Line::raw(format!("  Stream:  {}  {sent}", bytes(l.stream_bytes))),
    ];
    if let Some(b) = &l.boot {
        lines.push(Line::raw(format!("  Boot:    {b}")));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!(
            "  {} {} {:>10}  state",
            fit("client", 15),
            fit("disk", 38),
            "size"
        ),
        bold(),
    ));
    // The machines are told apart by address (one client each); the port says nothing.
    const SHOWN: usize = 12;
    for c in l.clients.iter().take(SHOWN) {
        let host = c.addr.rsplit_once(':').map_or(c.addr.as_str(), |(h, _)| h);
        lines.push(Line::raw(format!(
            "  {} {} {:>10}  {}",
            fit(host, 15),
            fit(&c.disk, 38),
            bytes(c.size),
            c.state
        )));
    }
    if l.clients.len() > SHOWN {
        lines.push(Line::raw(format!(
            "  ... and {} more (all are in the table at the end)",
            l.clients.len() - SHOWN
        )));
    }
    if l.clients.is_empty() {
        lines.push(Line::raw("  (no client has joined yet)"));
    }
    lines.push(Line::raw(""));
    lines.extend(wrapped("  ", &l.last_line, plain()));
    f.render_widget(para(lines), body);
}

pub fn done(r: &DeployResult, f: &mut Frame) {
    let title = if r.cancelled {
        "Deploy: CANCELLED"
    } else if r.all_ok {
        "Deploy: every client is done"
    } else {
        "Deploy: NOT every client is done"
    };
    let body = chrome(f, title, "Enter home");
    let mut lines = vec![
        Line::raw(""),
        Line::styled(format!("  {}", r.count), bold()),
        Line::raw(""),
        Line::styled(
            format!(
                "  {} {:<8} {:>8} {:>10} {:>10}",
                fit("address", 21),
                "result",
                "time",
                "written",
                "disk size"
            ),
            bold(),
        ),
    ];
    for row in &r.rows {
        lines.push(Line::raw(format!(
            "  {} {:<8} {:>8} {:>10} {:>10}",
            fit(&row.addr, 21),
            row.result,
            duration(row.seconds as u64),
            bytes(row.written),
            bytes(row.size)
        )));
        lines.extend(wrapped("      ", &row.disk, plain()));
        if !row.message.is_empty() {
            lines.extend(wrapped("      ", &row.message, plain()));
        }
    }
    f.render_widget(para(lines), body);
}

//! Renders library progress events for a person or a program: an indicatif bar on a
//! terminal (bytes, rate, ETA, current area), plain timestamped lines when output is
//! redirected (logs of an unattended rescue), or JSON lines with `--json`.

use indicatif::{ProgressBar, ProgressStyle};
use ironclone::progress::{Progress, ProgressEvent};
use ironclone::units::human_bytes;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub enum Renderer {
    Bar(ProgressBar),
    Plain(Mutex<Plain>),
    Json,
}

pub struct Plain {
    start: Instant,
    last: Instant,
    done: u64,
    total: u64,
}

impl Renderer {
    /// JSON lines with `--json`, a bar on a terminal, plain lines otherwise.
    pub fn new(json: bool) -> Renderer {
        if json {
            Renderer::Json
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Renderer::Bar(bar)
        } else {
            let now = Instant::now();
            Renderer::Plain(Mutex::new(Plain {
                start: now,
                last: now,
                done: 0,
                total: 0,
            }))
        }
    }

    pub fn finish(&self) {
        if let Renderer::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

fn plain_line(p: &Plain, what: &str) {
    let secs = p.start.elapsed().as_secs_f64().max(0.001);
    eprintln!(
        "[{:>7.1}s] {what} {}/{} ({}/s)",
        secs,
        human_bytes(p.done),
        human_bytes(p.total),
        human_bytes((p.done as f64 / secs) as u64)
    );
}

impl Progress for Renderer {
    fn report(&self, event: ProgressEvent) {
        match self {
            Renderer::Json => {
                if let Ok(s) = serde_json::to_string(&event) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{s}");
                }
            }
            Renderer::Bar(bar) => match event {
                ProgressEvent::JobStart { total_bytes, .. } => {
                    bar.set_length(total_bytes);
                    bar.set_position(0);
                }
                ProgressEvent::PhaseStart { name, .. } => bar.set_message(name),
                ProgressEvent::Advance { bytes } => bar.inc(bytes),
                ProgressEvent::Warning { message } => bar.println(format!("warning: {message}")),
                ProgressEvent::ReadError { offset, len } => {
                    bar.println(format!("unreadable: byte {offset} (+{len})"))
                }
                ProgressEvent::PhaseEnd { .. } => {}
                ProgressEvent::JobEnd { .. } => bar.finish_and_clear(),
            },
            Renderer::Plain(m) => {
                let mut p = m.lock().unwrap_or_else(|e| e.into_inner());
                match event {
                    ProgressEvent::JobStart { job, total_bytes } => {
                        p.total = total_bytes;
                        p.done = 0;
                        eprintln!("{job}: {}", human_bytes(total_bytes));
                    }
                    ProgressEvent::PhaseStart { name, total_bytes } => {
                        eprintln!("  {name}: {}", human_bytes(total_bytes))
                    }
                    ProgressEvent::Advance { bytes } => {
                        p.done = p.done.saturating_add(bytes);
                        if p.last.elapsed() >= Duration::from_secs(5) {
                            p.last = Instant::now();
                            plain_line(&p, "progress");
                        }
                    }
                    ProgressEvent::Warning { message } => eprintln!("warning: {message}"),
                    ProgressEvent::ReadError { offset, len } => {
                        eprintln!("unreadable: byte {offset} (+{len})")
                    }
                    ProgressEvent::PhaseEnd { .. } => {}
                    ProgressEvent::JobEnd { ok } => {
                        plain_line(&p, if ok { "done" } else { "failed" })
                    }
                }
            }
        }
    }
}

//! The "Deploy to many machines" flow (server side): the repository and image (the
//! restore flow's pickers), then how many clients, how long to wait, which disk each
//! client takes and whether to serve network boot, a summary, the live screen while
//! clients join and receive, and the sender's table. The work is `crate::deploy`'s,
//! through `Services::start_deploy`, the same functions `ironclone deploy` runs.

use super::*;
use crate::tui::deploy_model::{
    DeployEvent, DeployLive, DeployRequest, DeployResult, IfaceView, LivePhase, TargetChoice,
};
use std::sync::atomic::{AtomicBool, Ordering};

/// The form's text fields, in screen order: label, default, help.
pub const DEPLOY_FIELDS: [(&str, &str, &str); 4] = [
    (
        "Clients",
        "",
        "machines to wait for: the transfer starts when all are there",
    ),
    (
        "Min wait",
        "",
        "seconds to wait even when all are there (blank: none)",
    ),
    (
        "Max wait",
        "600",
        "start after this many seconds with whoever came (blank: never)",
    ),
    (
        "Target",
        "auto",
        "auto (the only empty disk), largest (empty), or /dev/...",
    ),
];

/// Index of the network-boot row, after the text fields.
pub const DEPLOY_BOOT_ROW: usize = DEPLOY_FIELDS.len();

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployForm {
    pub fields: [String; 4],
    pub focus: usize,
    /// The interfaces network boot could be served on; `boot` 0 is "no", i is `ifaces[i-1]`.
    pub ifaces: Vec<IfaceView>,
    pub boot: usize,
    pub note: Option<String>,
}

impl DeployForm {
    pub fn new(ifaces: Vec<IfaceView>) -> Self {
        DeployForm {
            fields: DEPLOY_FIELDS.map(|(_, default, _)| default.to_string()),
            focus: 0,
            ifaces,
            boot: 0,
            note: None,
        }
    }

    /// The interface network boot is served on, if one is chosen.
    pub fn boot_iface(&self) -> Option<&IfaceView> {
        self.boot.checked_sub(1).and_then(|i| self.ifaces.get(i))
    }
}

/// Forwards the deploy job's events into the TUI's channel.
fn sink(tx: Sender<Msg>) -> Arc<dyn Fn(DeployEvent) + Send + Sync> {
    Arc::new(move |e| {
        let _ = tx.send(Msg::Deploy(e));
    })
}

impl App {
    /// The image is chosen: the deploy form.
    pub(super) fn open_deploy_form(&mut self) {
        let ifaces = self.services.list_interfaces();
        self.push(Screen::DeployForm(DeployForm::new(ifaces)));
    }

    pub(super) fn on_deploy_form(&mut self, k: &KeyEvent) {
        let Some(Screen::DeployForm(form)) = self.stack.last_mut() else {
            return;
        };
        let rows = DEPLOY_BOOT_ROW + 1;
        let choices = form.ifaces.len() + 1;
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Up => form.focus = (form.focus + rows - 1) % rows,
            KeyCode::Down | KeyCode::Tab => form.focus = (form.focus + 1) % rows,
            KeyCode::Left | KeyCode::Right | KeyCode::Char(' ')
                if form.focus == DEPLOY_BOOT_ROW =>
            {
                form.boot = if k.code == KeyCode::Left {
                    (form.boot + choices - 1) % choices
                } else {
                    (form.boot + 1) % choices
                };
                form.note = None;
            }
            KeyCode::Backspace if form.focus < DEPLOY_BOOT_ROW => {
                form.fields[form.focus].pop();
                form.note = None;
            }
            KeyCode::Char(c)
                if form.focus < DEPLOY_BOOT_ROW
                    && !c.is_control()
                    && form.fields[form.focus].len() < 64 =>
            {
                form.fields[form.focus].push(c);
                form.note = None;
            }
            KeyCode::Enter => {
                let form = form.clone();
                match self.deploy_request(&form) {
                    Ok(req) => self.push(Screen::DeploySummary(req)),
                    Err((field, why)) => {
                        if let Some(Screen::DeployForm(f)) = self.stack.last_mut() {
                            f.focus = field;
                            f.note = Some(why);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The request the form describes, or the field that is wrong and why.
    fn deploy_request(&self, form: &DeployForm) -> Result<DeployRequest, (usize, String)> {
        let seconds = |i: usize| -> Result<Option<u32>, (usize, String)> {
            let text = form.fields[i].trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse().map(Some).map_err(|_| {
                let what = DEPLOY_FIELDS[i].0;
                (i, format!("{what}: \"{text}\" is not a number of seconds."))
            })
        };
        let clients_text = form.fields[0].trim();
        let clients: u32 = match clients_text.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err((
                    0,
                    format!("Clients: \"{clients_text}\" is not a number of machines (1 or more)."),
                ))
            }
        };
        let (min_wait, max_wait) = (seconds(1)?, seconds(2)?);
        if let (Some(lo), Some(hi)) = (min_wait, max_wait) {
            if lo > hi {
                return Err((
                    2,
                    format!("Max wait: {hi} s is shorter than Min wait ({lo} s)."),
                ));
            }
        }
        let target = match form.fields[3].trim() {
            "auto" => TargetChoice::Auto,
            "largest" => TargetChoice::Largest,
            p if p.starts_with("/dev/") && p.len() > 5 && !p.contains(char::is_whitespace) => {
                TargetChoice::Device(p.to_string())
            }
            p => {
                return Err((
                    3,
                    format!("Target: \"{p}\" is not auto, largest or a /dev/ path."),
                ))
            }
        };
        let serve_boot = form.boot_iface().cloned();
        if let Some(i) = &serve_boot {
            if i.addr.is_none() {
                return Err((
                    DEPLOY_BOOT_ROW,
                    format!(
                        "Network boot: {} has no IPv4 address; give it one first.",
                        i.name
                    ),
                ));
            }
        }
        let image = self.choices.image.clone().unwrap_or_else(|| ImageView {
            name: String::new(),
            date: String::new(),
            source_model: String::new(),
            source_serial: String::new(),
            source_size: 0,
            stored_bytes: 0,
            data_bytes: 0,
            dedup_ratio: 1.0,
            clonezilla: false,
            partition: None,
            table_less: false,
            needs_luks_key: false,
        });
        Ok(DeployRequest {
            repo: self.choices.repo.clone().unwrap_or_default(),
            image: image.name,
            stored_bytes: image.stored_bytes,
            clients,
            min_wait,
            max_wait,
            target,
            serve_boot,
        })
    }

    pub(super) fn on_deploy_summary(&mut self, k: &KeyEvent) {
        let Some(Screen::DeploySummary(req)) = self.stack.last() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Enter => {
                let req = req.clone();
                self.push(Screen::DeployLive(DeployLive {
                    phase: LivePhase::Preparing,
                    stream_bytes: 0,
                    bytes_sent: None,
                    clients: Vec::new(),
                    boot: None,
                    last_line: format!("Building the stream of {} ...", req.image),
                }));
                let cancel = Arc::new(AtomicBool::new(false));
                self.deploy_cancel = Some(Arc::clone(&cancel));
                self.services
                    .start_deploy(req, cancel, sink(self.tx.clone()));
            }
            _ => {}
        }
    }

    /// The deploy job's news: the live screen follows it, its end shows the table.
    pub(super) fn deploy_event(&mut self, e: DeployEvent) {
        let on_live = matches!(self.stack.last(), Some(Screen::DeployLive(_)));
        match e {
            DeployEvent::Live(l) => {
                if let Some(Screen::DeployLive(cur)) = self.stack.last_mut() {
                    *cur = l;
                }
            }
            DeployEvent::Done(r) => {
                self.deploy_cancel = None;
                self.cancel_ask = false;
                if on_live {
                    self.stack.pop();
                }
                match r {
                    Ok(res) => self.push(Screen::DeployDone(res)),
                    Err(e) => self.error(
                        format!("The deploy stopped: {e}"),
                        "Press Enter to go back. Clients that were restoring finish or fail on their own; restore any that did not with Restore an image.",
                    ),
                }
            }
        }
    }

    /// A deploy is running (until its `Done` event).
    pub(super) fn deploy_running(&self) -> bool {
        self.deploy_cancel.is_some()
    }

    /// The live screen: Esc or c asks whether to cancel (the confirmation box's y
    /// does it, through `cancel_deploy`).
    pub(super) fn on_deploy_live(&mut self, k: &KeyEvent) {
        let cancelling = self
            .deploy_cancel
            .as_ref()
            .is_none_or(|c| c.load(Ordering::SeqCst));
        if matches!(k.code, KeyCode::Esc | KeyCode::Char('c')) && !cancelling {
            self.cancel_ask = true;
        }
    }

    /// Confirmed: the deploy job stops udp-sender and the boot server, tells the
    /// clients, and ends with its table (every client without a report: CANCELLED).
    pub(super) fn cancel_deploy(&mut self) {
        let Some(c) = &self.deploy_cancel else {
            return;
        };
        c.store(true, Ordering::SeqCst);
        if let Some(Screen::DeployLive(l)) = self.stack.last_mut() {
            l.phase = LivePhase::Cancelling;
        }
    }

    pub(super) fn on_deploy_done(&mut self, k: &KeyEvent) {
        if matches!(k.code, KeyCode::Enter | KeyCode::Esc) {
            self.home();
        }
    }
}

/// The result the done screen shows, for tests.
pub fn result_of(app: &App) -> Option<&DeployResult> {
    match app.screen() {
        Screen::DeployDone(r) => Some(r),
        _ => None,
    }
}

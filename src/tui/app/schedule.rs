//! The "Schedule backups of this machine" flow: the disk, the repository (picked with
//! the usual pickers), then when and how much to keep, a summary, and the install
//! (`ironclone schedule init`'s work, through `Services`). Everything the user types is
//! checked by the same code as the CLI's before anything is written.

use super::*;
use crate::tui::model::ScheduleRequest;

/// The form's fields, in screen order: label, default, what the field takes.
pub const SCHEDULE_FIELDS: [(&str, &str, &str); 5] = [
    (
        "When",
        "daily",
        "systemd calendar: daily, weekly, Mon..Fri 02:00",
    ),
    (
        "Space budget",
        "80%",
        "of the repository's filesystem, or a size: 500G",
    ),
    ("Keep newest", "7", "images, always at least one"),
    ("Keep weekly", "4", "weeks: the newest image of each"),
    ("Keep monthly", "6", "months: the newest image of each"),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleForm {
    pub fields: [String; 5],
    pub focus: usize,
    pub note: Option<String>,
}

impl Default for ScheduleForm {
    fn default() -> Self {
        ScheduleForm {
            fields: SCHEDULE_FIELDS.map(|(_, default, _)| default.to_string()),
            focus: 0,
            note: None,
        }
    }
}

impl App {
    /// The repository is open: how a scheduled run will name it, then the form.
    pub(super) fn schedule_repo_opened(
        &mut self,
        target: &RepoTarget,
        repo: &std::path::Path,
        locked: bool,
    ) {
        if locked {
            self.error(
                format!("{} is an encrypted repository.", repo.display()),
                "A scheduled run has nobody to type its passphrase: press Enter and pick an unencrypted one.",
            );
            return;
        }
        match self.services.schedule_location(target, repo) {
            Ok(location) => {
                self.choices.repo = Some(repo.to_path_buf());
                self.choices.schedule_repo = Some(location);
                self.push(Screen::ScheduleForm(ScheduleForm::default()));
            }
            Err(e) => self.error(
                format!("A scheduled run could not use {}: {e}", repo.display()),
                "Press Enter to go back and pick another repository.",
            ),
        }
    }

    pub(super) fn on_schedule_form(&mut self, k: &KeyEvent) {
        let Some(Screen::ScheduleForm(form)) = self.stack.last_mut() else {
            return;
        };
        let n = form.fields.len();
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Up => form.focus = (form.focus + n - 1) % n,
            KeyCode::Down | KeyCode::Tab => form.focus = (form.focus + 1) % n,
            KeyCode::Backspace => {
                form.fields[form.focus].pop();
                form.note = None;
            }
            KeyCode::Char(c) if !c.is_control() && form.fields[form.focus].len() < 64 => {
                form.fields[form.focus].push(c);
                form.note = None;
            }
            KeyCode::Enter => {
                let form = form.clone();
                match self.schedule_request(&form) {
                    Ok(req) => match self.services.check_schedule(&req) {
                        Ok(next_run) => self.push(Screen::ScheduleSummary { req, next_run }),
                        Err(e) => self.set_note(Some(e.to_string())),
                    },
                    Err((field, why)) => {
                        if let Some(Screen::ScheduleForm(f)) = self.stack.last_mut() {
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
    fn schedule_request(&self, form: &ScheduleForm) -> Result<ScheduleRequest, (usize, String)> {
        let number = |i: usize| -> Result<u32, (usize, String)> {
            let text = form.fields[i].trim();
            text.parse().map_err(|_| {
                let what = SCHEDULE_FIELDS[i].0;
                (i, format!("{what}: \"{text}\" is not a whole number."))
            })
        };
        let calendar = form.fields[0].trim().to_string();
        if calendar.is_empty() {
            return Err((0, "When: say when to run, e.g. daily.".into()));
        }
        let budget = form.fields[1].trim().to_string();
        if let Err(why) = budget.parse::<crate::schedule::Budget>() {
            return Err((1, format!("Space budget: {why}.")));
        }
        Ok(ScheduleRequest {
            disk: self.choices.source.clone().unwrap_or_default(),
            repo: self.choices.schedule_repo.clone().unwrap_or_default(),
            calendar,
            budget,
            keep_last: number(2)?,
            keep_weekly: number(3)?,
            keep_monthly: number(4)?,
        })
    }

    pub(super) fn on_schedule_summary(&mut self, k: &KeyEvent) {
        let Some(Screen::ScheduleSummary { req, .. }) = self.stack.last() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Enter => match self.services.install_schedule(req) {
                Ok(lines) => self.push(Screen::ScheduleDone { lines }),
                Err(e) => self.error(
                    format!("The schedule was not installed: {e}"),
                    "Press Enter to go back; nothing was changed unless it says so above.",
                ),
            },
            _ => {}
        }
    }
}

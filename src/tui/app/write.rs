//! Handlers that lead to a job: image name, the typed destructive confirmation, and
//! starting backup/restore/clone/verify jobs (the plan before them: `plan.rs`).

use super::*;

impl App {
    pub(super) fn on_name(&mut self, k: &KeyEvent) {
        let Some(Screen::Name { input, note }) = self.stack.last_mut() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Enter => {
                let name = input.trim().to_string();
                if !valid_name(&name) {
                    *note = Some("Use letters, digits, '-', '_' and '.' only (at most 64).".into());
                } else if self.choices.images.iter().any(|i| i.name == name) {
                    *note = Some(format!(
                        "An image called \"{name}\" exists; choose another name."
                    ));
                } else {
                    self.choices.name = name;
                    self.push(Screen::Summary);
                }
            }
            _ => {
                if edit(input, k) {
                    *note = None;
                }
            }
        }
    }

    pub(super) fn start_backup(&mut self) {
        let Some(src) = self.choices.source.clone() else {
            return;
        };
        let req = BackupRequest {
            source_dev: src.dev,
            source_serial: src.serial,
            repo: self.choices.repo.clone().unwrap_or_default(),
            name: self.choices.name.clone(),
            encrypt: self.choices.new_repo.as_ref().and_then(|(_, p)| p.clone()),
        };
        self.verify_next = true;
        let h = self.services.start_backup(req, self.progress_sink());
        self.begin_job(Flow::Backup, "Backing up", h);
    }

    /// The names the user may type to confirm: the serial or the kernel name.
    pub fn confirm_accepts(&self, typed: &str) -> bool {
        let Some(t) = &self.choices.target else {
            return false;
        };
        let typed = typed.trim();
        (!t.serial.is_empty() && typed == t.serial) || typed == t.short_name() || typed == t.dev
    }

    pub(super) fn on_confirm(&mut self, k: &KeyEvent) {
        let ok = match self.stack.last() {
            Some(Screen::Confirm { input, .. }) => self.confirm_accepts(input),
            _ => return,
        };
        let Some(Screen::Confirm { input, refused }) = self.stack.last_mut() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Enter if !ok => *refused = true,
            KeyCode::Enter => self.start_write(),
            _ => {
                if edit(input, k) {
                    *refused = false;
                }
            }
        }
    }

    pub(super) fn start_write(&mut self) {
        let Some(target) = self.choices.target.clone() else {
            return;
        };
        let options = self.choices.options.clone();
        let progress = self.progress_sink();
        let (kind, title, h) = if self.flow == Flow::Clone {
            let Some(src) = self.choices.source.clone() else {
                return;
            };
            let req = CloneRequest {
                source_dev: src.dev,
                source_serial: src.serial,
                target_dev: target.dev,
                target_serial: target.serial,
                target_size: target.size,
                options,
            };
            (
                Flow::Clone,
                "Cloning",
                self.services.start_clone(req, progress),
            )
        } else {
            let Some(img) = self.choices.image.clone() else {
                return;
            };
            let req = RestoreRequest {
                repo: self.choices.repo.clone().unwrap_or_default(),
                image: img.name,
                target_dev: target.dev,
                target_serial: target.serial,
                target_size: target.size,
                options,
                target_part: self.choices.target_part,
                luks_key: self.choices.luks_key.clone(),
            };
            (
                Flow::Restore,
                "Restoring",
                self.services.start_restore(req, progress),
            )
        };
        self.begin_job(kind, title, h);
    }
}

//! Handlers that lead to a job: image name, restore plan editing, the typed
//! destructive confirmation, and starting backup/restore/clone/verify jobs.

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

    pub fn replan(&mut self) {
        let Some(target) = self.choices.target.clone() else {
            return;
        };
        let repo = self.choices.repo.clone().unwrap_or_default();
        let plan = match (self.flow, &self.choices.image, &self.choices.source) {
            // A saved partition, or an image without a table going into a partition.
            (_, Some(img), _) if img.partition.is_some() || self.choices.target_part.is_some() => {
                match self.choices.target_part {
                    Some(part) => self
                        .services
                        .plan_part_restore(&repo, &img.name, &target, part),
                    None => Err("No target partition was chosen.".into()),
                }
            }
            (Flow::Clone, _, Some(src)) => {
                self.services
                    .plan_clone(src, &target, &self.choices.options)
            }
            (_, Some(img), _) => {
                self.services
                    .plan_restore(&repo, &img.name, &target, &self.choices.options)
            }
            _ => Err("Nothing to restore was chosen.".into()),
        };
        // Kept as text: the plan screen shows it, and `Choices` is cloned.
        self.choices.plan = Some(plan.map_err(|e| e.to_string()));
    }

    pub(super) fn on_plan(&mut self, k: &KeyEvent) {
        let rows = match &self.choices.plan {
            Some(Ok(p)) => p.rows.clone(),
            _ => Vec::new(),
        };
        // A partition restore has no layout to edit: the filesystem fills its partition.
        let editable = self.choices.target_part.is_none();
        let Some(Screen::Plan { sel, size }) = self.stack.last_mut() else {
            return;
        };
        if let Some(input) = size {
            match k.code {
                KeyCode::Esc => *size = None,
                KeyCode::Enter => {
                    let parsed = parse_size(input);
                    let number = rows.get(*sel).map(|r| r.number);
                    *size = None;
                    if let (Some(s), Some(n)) = (parsed, number) {
                        self.choices.options.set_size(n, s);
                        self.replan();
                    }
                }
                _ => {
                    edit(input, k);
                }
            }
            return;
        }
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Up | KeyCode::Char('k') => *sel = sel.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                *sel = (*sel + 1).min(rows.len().saturating_sub(1))
            }
            KeyCode::Char('s' | 'm' | 'x') if !editable => {}
            KeyCode::Char('s') if !rows.is_empty() => *size = Some(String::new()),
            KeyCode::Char('m') => {
                self.choices.options.mode = self.choices.options.mode.toggled();
                self.replan();
            }
            KeyCode::Char('x') => {
                self.choices.options.sizes.clear();
                self.replan();
            }
            KeyCode::Enter => {
                if matches!(self.choices.plan, Some(Ok(_))) {
                    self.push(Screen::Confirm {
                        input: String::new(),
                        refused: false,
                    });
                }
            }
            _ => {}
        }
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

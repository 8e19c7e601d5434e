//! The plan screen: the planner runs on a thread of its own (`Msg::Planned`), because
//! making a plan loads the image's manifest (from S3 or SFTP: a download of hundreds of
//! MB for a large disk) or reads a Clonezilla image's headers, which must not freeze
//! the screen. Edits (size, mode, reset) ask for a new plan; the answer to an older
//! request, or to one left with Esc, is dropped.

use super::*;

/// One question to the planner, asked on its thread.
type Ask = Box<dyn FnOnce(&dyn Services) -> Result<PlanView, ServiceError> + Send>;

impl App {
    /// Asks for the plan of the current choices; the screen shows it when it comes.
    pub fn replan(&mut self) {
        let Some(target) = self.choices.target.clone() else {
            return;
        };
        let repo = self.choices.repo.clone().unwrap_or_default();
        let options = self.choices.options.clone();
        let ask: Ask = match (self.flow, &self.choices.image, &self.choices.source) {
            // A saved partition, or an image without a table going into a partition.
            (_, Some(img), _) if img.partition.is_some() || self.choices.target_part.is_some() => {
                let image = img.name.clone();
                match self.choices.target_part {
                    Some(part) => {
                        Box::new(move |s| s.plan_part_restore(&repo, &image, &target, part))
                    }
                    None => Box::new(|_| Err("No target partition was chosen.".into())),
                }
            }
            (Flow::Clone, _, Some(src)) => {
                let src = src.clone();
                Box::new(move |s| s.plan_clone(&src, &target, &options))
            }
            (_, Some(img), _) => {
                let image = img.name.clone();
                Box::new(move |s| s.plan_restore(&repo, &image, &target, &options))
            }
            _ => Box::new(|_| Err("Nothing to restore was chosen.".into())),
        };
        self.plans_asked = self.plans_asked.wrapping_add(1);
        let seq = self.plans_asked;
        self.planning = Some(seq);
        self.choices.plan = None;
        self.ask_off_thread(move |services| Msg::Planned {
            seq,
            result: ask(services),
        });
    }

    /// The planner's answer to request `seq`.
    pub(super) fn planned(&mut self, seq: u64, result: Result<PlanView, ServiceError>) {
        if self.planning != Some(seq) {
            return;
        }
        self.planning = None;
        // Kept as text: the plan screen shows it, and `Choices` is cloned.
        self.choices.plan = Some(result.map_err(|e| e.to_string()));
    }

    pub(super) fn on_plan(&mut self, k: &KeyEvent) {
        let rows = match &self.choices.plan {
            Some(Ok(p)) => p.rows.clone(),
            _ => Vec::new(),
        };
        // A partition restore has no layout to edit: the filesystem fills its partition.
        let editable = self.choices.target_part.is_none();
        let planning = self.planning.is_some();
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
            KeyCode::Esc => {
                // A plan still being made is left to finish; its answer is dropped.
                self.planning = None;
                self.back();
            }
            // Nothing to edit or accept until the plan is there.
            _ if planning => {}
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
}

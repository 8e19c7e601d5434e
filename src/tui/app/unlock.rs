//! The passphrase of an encrypted repository: asked once the repository is found,
//! typed as stars (`share::Password` never prints itself), checked by the services,
//! and the pick goes on where it stopped.

use super::input::edit;
use super::{App, Screen};
use crate::share::Password;
use crate::tui::model::RepoTarget;
use crossterm::event::{KeyCode, KeyEvent};
use std::path::Path;

impl App {
    /// Asks the passphrase of `repo` when it is encrypted and still locked; true then.
    pub(super) fn ask_repo_passphrase(&mut self, target: &RepoTarget, repo: &Path) -> bool {
        if !self.services.repo_locked(repo) {
            return false;
        }
        self.push(Screen::RepoUnlock {
            target: target.clone(),
            repo: repo.to_path_buf(),
            password: Password::default(),
            note: None,
        });
        true
    }

    pub(super) fn on_repo_unlock(&mut self, k: &KeyEvent) {
        let Some(Screen::RepoUnlock {
            target,
            repo,
            password,
            note,
        }) = self.stack.last_mut()
        else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Enter => match self.services.unlock_repo(repo, password) {
                Ok(()) => {
                    let (target, repo) = (target.clone(), repo.clone());
                    self.stack.pop();
                    self.repo_opened(target, Ok(repo));
                }
                Err(e) => {
                    *password = Password::default();
                    *note = Some(e.to_string());
                }
            },
            _ => {
                edit(password, k);
            }
        }
    }
}

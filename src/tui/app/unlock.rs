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
    /// Asks the passphrase of `repo`, encrypted and still locked (`RepoFacts::locked`).
    pub(super) fn ask_repo_passphrase(&mut self, target: &RepoTarget, repo: &Path) {
        self.push(Screen::RepoUnlock {
            target: target.clone(),
            repo: repo.to_path_buf(),
            password: Password::default(),
            note: None,
        });
    }

    /// The picked image's LUKS passphrase: checked against the image's header by the
    /// services (nothing written); a wrong one empties the field and says so.
    pub(super) fn on_luks_key(&mut self, k: &KeyEvent) {
        let Some(Screen::LuksKey { password, note }) = self.stack.last_mut() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Enter => {
                let (Some(repo), Some(img)) = (&self.choices.repo, &self.choices.image) else {
                    return;
                };
                match self.services.check_luks_key(repo, img, password) {
                    Ok(()) => {
                        let key = std::mem::take(password);
                        let img = img.clone();
                        self.choices.luks_key = Some(key);
                        // Back from the target goes to the images, not to the key.
                        self.stack.pop();
                        self.image_chosen(img);
                    }
                    Err(e) => {
                        *password = Password::default();
                        *note = Some(e.to_string());
                    }
                }
            }
            _ => {
                edit(password, k);
            }
        }
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

//! The passphrase of an encrypted repository: asked once the repository is found,
//! typed as stars (`share::Password` never prints itself), checked by the services on
//! a thread of their own (Argon2id, and the key slots' request on a network store), and
//! the pick goes on where it stopped.

use super::input::edit;
use super::{App, Msg, Screen};
use crate::share::Password;
use crate::tui::model::RepoTarget;
use crate::tui::services::{RepoFacts, ServiceError};
use crossterm::event::{KeyCode, KeyEvent};
use std::path::{Path, PathBuf};

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
    /// services on a thread of their own (nothing written; the header's Argon2id takes
    /// seconds); the answer comes as `Msg::LuksChecked`.
    pub(super) fn on_luks_key(&mut self, k: &KeyEvent) {
        let depth = self.stack.len();
        let Some(Screen::LuksKey { password, note }) = self.stack.last_mut() else {
            return;
        };
        match k.code {
            KeyCode::Esc => {
                // A check still running is left to finish; its answer is dropped.
                self.checking_luks = None;
                self.back();
            }
            // One check at a time; typing waits for its answer.
            _ if self.checking_luks.is_some() => {}
            KeyCode::Enter => {
                let (Some(repo), Some(img)) = (&self.choices.repo, &self.choices.image) else {
                    return;
                };
                // Taken: the field is empty again whatever the answer.
                let key = std::mem::take(password);
                *note = Some("Checking the passphrase...".into());
                self.checking_luks = Some(depth);
                let (repo, img) = (repo.clone(), img.clone());
                self.ask_off_thread(move |services| {
                    let result = services.check_luks_key(&repo, &img, &key);
                    let image = img.name;
                    Msg::LuksChecked { image, key, result }
                });
            }
            _ => {
                edit(password, k);
            }
        }
    }

    /// The answer of the LUKS passphrase check: on to the restore targets with the key
    /// kept, or the error on the same screen, its field empty.
    pub(super) fn luks_checked(
        &mut self,
        image: &str,
        key: Password,
        result: Result<(), ServiceError>,
    ) {
        if self.checking_luks != Some(self.stack.len()) {
            return;
        }
        let Some(Screen::LuksKey { note, .. }) = self.stack.last_mut() else {
            return;
        };
        let Some(img) = self.choices.image.clone().filter(|i| i.name == image) else {
            return;
        };
        self.checking_luks = None;
        match result {
            Ok(()) => {
                self.choices.luks_key = Some(key);
                // Back from the target goes to the images, not to the key.
                self.stack.pop();
                self.image_chosen(img);
            }
            Err(e) => *note = Some(e.to_string()),
        }
    }

    pub(super) fn on_repo_unlock(&mut self, k: &KeyEvent) {
        let depth = self.stack.len();
        let Some(Screen::RepoUnlock {
            repo,
            password,
            note,
            ..
        }) = self.stack.last_mut()
        else {
            return;
        };
        match k.code {
            KeyCode::Esc => {
                // A check still running is left to finish; its answer is dropped.
                self.unlocking = None;
                self.back();
            }
            // One check at a time; typing waits for its answer.
            _ if self.unlocking.is_some() => {}
            KeyCode::Enter => {
                // Taken: the field is empty again whatever the answer.
                let password = std::mem::take(password);
                *note = Some("Checking the passphrase...".into());
                self.unlocking = Some(depth);
                let repo = repo.clone();
                self.ask_off_thread(move |services| {
                    let result = services
                        .unlock_repo(&repo, &password)
                        .map(|()| services.repo_facts(&repo));
                    Msg::RepoUnlocked { repo, result }
                });
            }
            _ => {
                edit(password, k);
            }
        }
    }

    /// The answer of the passphrase check: on to the images, or the error on the same
    /// screen, its field empty.
    pub(super) fn repo_unlocked(&mut self, repo: PathBuf, result: Result<RepoFacts, ServiceError>) {
        if self.unlocking != Some(self.stack.len()) {
            return;
        }
        let Some(Screen::RepoUnlock {
            target,
            repo: shown,
            note,
            ..
        }) = self.stack.last_mut()
        else {
            return;
        };
        if *shown != repo {
            return;
        }
        self.unlocking = None;
        match result {
            Ok(facts) => {
                let target = target.clone();
                self.stack.pop();
                // Asked on the unlocking thread: not asked again on this one.
                self.facts = Some((repo.clone(), facts));
                self.repo_opened(target, Ok(repo));
            }
            Err(e) => *note = Some(e.to_string()),
        }
    }
}
